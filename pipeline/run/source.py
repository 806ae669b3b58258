"""Where a run's rows come from, cut into time-ordered pieces (DESIGN §9).

A piece is any slice of the screening order that a worker can read on its own: rows in memory
(:class:`TablePiece`: a ledger read in one go, or chunks of it) or a lake partition, possibly
only its rows after a position or up to a date (:class:`LakePiece`). Sources:

- :class:`LedgerSource`: ledger files (or a lake folder read whole), as of a date;
- :class:`LakeSource`: a lake, incrementally from its checkpoint, in full, or as of a date.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.carry import Carry
from pipeline.checkpoint import Checkpoint, Plan, after_position, checkpoint_dir, fingerprint, plan
from pipeline.ingest import SCREENING_COLUMNS, Ledger, read_ledgers
from pipeline.lake import STORED_SCHEMA, Lake, Partition
from pipeline.lake.store import is_url
from pipeline.policy import Policy
from pipeline.publish import absolute, current_run, run_is_intact


class Piece(Protocol):
    """A slice of the screening order that a worker can read on its own."""

    name: str

    def read(self) -> pa.Table:
        """The piece's validated rows, in screening order."""


@dataclass(frozen=True)
class TablePiece:
    """Rows already in memory (a ledger read in one go, chunks of it, tests)."""

    rows: pa.Table
    name: str

    def read(self) -> pa.Table:
        """The rows."""
        return self.rows


def split_rows(rows: pa.Table, rows_per_piece: int) -> list[TablePiece]:
    """Cut rows in screening order into consecutive pieces of at most ``rows_per_piece`` rows."""
    if rows_per_piece < 1:
        raise ValueError("rows_per_piece must be at least 1")
    return [TablePiece(rows.slice(start, rows_per_piece), f"rows {start}..{min(start + rows_per_piece, rows.num_rows) - 1}")
            for start in range(0, rows.num_rows, rows_per_piece)] or [TablePiece(rows, "empty")]


@dataclass(frozen=True)
class LakePiece:
    """One lake partition, or the rows of it after a position / up to a date."""

    lake: Lake
    partition: Partition
    after: tuple[dt.date, str] | None = None
    as_of: dt.date | None = None

    @property
    def name(self) -> str:
        """The partition key."""
        return self.partition.key

    def read(self) -> pa.Table:
        """The piece's rows in screening order."""
        rows = self.lake.read(self.partition)
        if self.after is not None:
            rows = rows.filter(pa.array(after_position(rows, self.after)))
        if self.as_of is not None and self.partition.last_date > self.as_of:
            rows = rows.filter(pc.less_equal(rows.column("ship_date"), pa.scalar(self.as_of, pa.date32())))
        return rows


@dataclass
class LedgerSource:
    """Ledger files, or one lake (a folder or a URL) read whole, as of a date: one piece, read at once.

    Attributes
    ----------
    paths : sequence of path
    as_of : date or None
    """

    paths: Sequence[str | Path]
    as_of: dt.date | None = None

    def read(self) -> Ledger:
        """The validated rows, quarantine, counts and inputs."""
        if len(self.paths) == 1 and (is_url(self.paths[0]) or Path(self.paths[0]).is_dir()):
            return Lake.open(self.paths[0]).ledger(as_of=self.as_of)
        return read_ledgers(self.paths, as_of=self.as_of)

    @staticmethod
    def pieces(ledger: Ledger) -> list[TablePiece]:
        """The ledger as one piece (the GPU kernels chunk it further, DESIGN §5)."""
        return [TablePiece(ledger.rows, "ledger")]


class LakeSource:
    """The pieces of a lake a run screens, and the carry-in before the first.

    Incremental runs start from the checkpoint (:func:`pipeline.checkpoint.plan`); a replay as of a
    date reads every partition that starts by then and keeps no checkpoint.

    Parameters
    ----------
    lake_dir : path
    policy : Policy
    csl_path : path
    as_of : date, optional
    incremental : bool
        Start from the checkpoint where one fits.
    destination : path, optional
        Where the run is published: a run that finds nothing new keeps the published results
        when the destination holds the checkpoint's last run (:attr:`current`).
    writes : bool
        Whether the run writes outputs at all.

    Attributes
    ----------
    lake : Lake
    parts : list of Partition
        The partitions in the run's view (all, or those starting by ``as_of``).
    checkpoint : Checkpoint or None
    plan : Plan
    pieces : list of LakePiece
    carry_in : Carry
        Totals before the first piece.
    carried : list of Path
        Decisions files of the rows before the first piece, kept by the checkpoint: every run
        that writes outputs publishes them with its own, so each output holds the whole lake.
    current : bool
        Nothing changed and ``destination`` holds the checkpoint's run: nothing to publish.
    """

    def __init__(self, lake_dir: str | Path, policy: Policy, csl_path: Path, *, as_of: dt.date | None = None,
                 incremental: bool = True, destination: Path | None = None, writes: bool = True):
        self.lake = Lake.open(lake_dir)
        self.as_of = as_of
        self.keeps_checkpoint = as_of is None
        self.fingerprint = fingerprint(policy, Path(csl_path))
        self.checkpoint_folder = checkpoint_dir(self.lake, self.fingerprint)
        checkpoint = Checkpoint.load(self.checkpoint_folder) if self.keeps_checkpoint and incremental else None
        todo = plan(self.lake, checkpoint) if as_of is None else Plan(0, None, "full", f"replay as of {as_of}")
        if as_of is None and not incremental:
            todo = Plan(0, None, "full", "--full: screening everything, ignoring the checkpoint")
        if checkpoint is not None and writes and not checkpoint.carries:
            # Without the decisions of the rows screened before, the outputs could not be complete.
            todo = Plan(0, None, "full", "the checkpoint does not hold the decisions of every partition; "
                                         "screening everything")
        self.checkpoint, self.plan = checkpoint, todo
        self.current = checkpoint is not None and todo.mode == "unchanged" and _holds_last_run(checkpoint, destination)
        """Whether nothing changed and ``destination`` still holds the checkpoint's run, intact."""
        self.carried = checkpoint.decisions_before(todo.start + (todo.after is not None)) \
            if checkpoint is not None and writes else []
        """Decisions files of the rows screened before, carried into this run's complete set."""
        self.parts = [p for p in self.lake.partitions if as_of is None or p.first_date <= as_of]
        self.pieces = [LakePiece(self.lake, p, todo.after if i == todo.start else None, as_of)
                       for i, p in enumerate(self.parts) if i >= todo.start]
        if todo.after is not None:  # an append: the partition's earlier rows are in the checkpoint too
            self.carry_in = checkpoint.end
        else:
            self.carry_in = checkpoint.carry_before(todo.start) if checkpoint is not None else Carry.empty()

    def empty_piece(self) -> TablePiece:
        """A piece of no rows with the lake's columns (so a run with nothing new still writes a table)."""
        empty = (self.lake.read(self.parts[-1]).slice(0, 0) if self.parts
                 else STORED_SCHEMA.empty_table().select(list(SCREENING_COLUMNS)))
        return TablePiece(empty, "nothing new")

    def counts(self, quarantine: pa.Table, screened: int) -> dict:
        """Rows of the lake: read = accepted + quarantined + after ``as_of``; and those screened now."""
        in_lake = sum(p.rows for p in self.lake.partitions)
        reasons = quarantine.column("reason").to_pylist() if quarantine.num_rows else []
        excluded = in_lake - screened if self.as_of is not None else 0  # a replay screens every row up to the date
        return {"rows_read": in_lake + quarantine.num_rows, "accepted": in_lake - excluded,
                "quarantined": quarantine.num_rows, "excluded_after_as_of": excluded,
                "screened_this_run": screened, "by_reason": {r: reasons.count(r) for r in sorted(set(reasons))}}


def _holds_last_run(checkpoint: Checkpoint, destination: Path | None) -> bool:
    """Whether ``destination`` holds the checkpoint's last published run, every file as published."""
    record = checkpoint.published
    if not record or not record.get("run"):
        return False
    return (destination is not None and record.get("out") == str(absolute(destination))
            and current_run(destination) == record["run"] and run_is_intact(destination))
