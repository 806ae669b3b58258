"""What screening runs produce: the result types, apart from the jobs that make them.

The report (:mod:`pipeline.report_content`) and callers import these types without importing
any job module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from pipeline.carry import Carry
from pipeline.tally import Tally

if TYPE_CHECKING:
    from pipeline.checkpoint import Plan
    from pipeline.decide import Decisions
    from pipeline.ingest import Ledger
    from pipeline.run.rows import ScreenedRows


@dataclass
class ScreenResult:
    """What one screening of a ledger produced.

    Attributes
    ----------
    decisions : pyarrow.Table
        One row per accepted ledger row, in screening order.
    quarantine : pyarrow.Table
    summary : dict
        The content of ``summary.json``.
    ledger : Ledger
        The validated rows behind the decisions (for audits and reports).
    outcome : Decisions
        The per-row arrays behind the decisions table (keys, totals, allocations).
    tally : Tally
        The counts behind the summary and the report's charts.
    parties : pandas.DataFrame
        Party results of the distinct consignees (``parties.parquet``).
    policy : Policy
        The rule set the rows were screened under.
    affiliates : pipeline.ownership.affiliates.AffiliateWindows or None
        The ownership graph's affiliates (with an ownership file); ``features`` the rows' features.
    """

    decisions: pa.Table | None
    quarantine: pa.Table
    summary: dict
    ledger: Ledger | None = None
    outcome: Decisions | None = None
    tally: Tally | None = None
    parties: pd.DataFrame | None = None
    policy: object = None
    affiliates: object = None
    features: object = None

    @property
    def affiliates_quarantine(self):
        """The ownership file's quarantined rows (None without one)."""
        if self.affiliates is None or self.policy is None:
            return None
        from pipeline.policy import load_holdings

        return load_holdings(self.policy.get("affiliates.ownership")).quarantine


@dataclass
class PieceOutcome:
    """What screening one piece produced.

    Attributes
    ----------
    name : str
    rows : int
    tally : Tally
    contribution : Carry
        The totals of the piece's own rows, per key (what it adds to the carry).
    path : str or None
        Its decisions file, relative to the output folder.
    screened : ScreenedRows or None
        The piece's rows, features and decisions, when the scan keeps them (one-piece ledger runs).
    """

    name: str
    rows: int
    tally: Tally
    contribution: Carry = field(default_factory=Carry.empty)
    path: str | None = None
    screened: ScreenedRows | None = None


@dataclass
class ScanResult:
    """A screening of consecutive pieces.

    Attributes
    ----------
    pieces : list of PieceOutcome
    carry_in : Carry
        Totals before the first piece.
    carry : Carry
        Totals after the last piece.
    tally : Tally
        Merged counts of all pieces.
    """

    pieces: list[PieceOutcome]
    carry_in: Carry
    carry: Carry
    tally: Tally

    @property
    def rows(self) -> int:
        """Rows screened."""
        return sum(p.rows for p in self.pieces)


@dataclass
class LakeRun:
    """A screening run over a lake.

    Attributes
    ----------
    plan : Plan
        Where the run started and why.
    scan : ScanResult
        The pieces screened in this run.
    summary : dict
    out_dir : Path or None
    checkpoint : Path or None
        With ``publish=False``: the staged checkpoint to commit (:func:`pipeline.lake_screen.commit_checkpoint`)
        once the outputs are published (None when the run keeps no checkpoint).
    """

    plan: Plan
    scan: ScanResult
    summary: dict
    out_dir: Path | None
    checkpoint: Path | None = None


@dataclass
class AuditResult:
    """An audit's screening run and its discrepancies (one row per discrepant shipped line)."""

    screening: ScreenResult
    discrepancies: pd.DataFrame
    summary: dict


@dataclass
class DiffResult:
    """Two screenings of the same rows and what changed between them."""

    first: ScreenResult
    second: ScreenResult
    transitions: pd.DataFrame
    changes: pd.DataFrame
    summary: dict
