"""Screening a ledger cut into time-ordered pieces, in one process or on a Dask cluster (DESIGN §6).

A piece is any slice of the screening order (a chunk of rows, a lake partition, a night's new
rows). Both ways give the decisions of the single-process path row for row:

- :func:`scan` screens the pieces one after another, each starting from the totals the previous
  one ended with (one read per piece; what nightly runs and one-machine runs use);
- :func:`scan_dask` never moves rows between workers: pass 1 computes each piece's own LPP
  totals; one carry task turns them into per-piece carry-ins (exclusive prefix); pass 1b does
  the same for the allocation totals, whose candidates depend on the LPP outcome; pass 2 screens
  each piece from its carry-ins and writes its decisions.

Each piece's decisions go to ``decisions.parquet/part-NNNNN.parquet`` under the output folder,
in screening order, so the folder reads as one table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import pyarrow as pa

from kernels.backend import select_backend
from pipeline.carry import Carry, _allocation_series, _lpp_series, carries_in
from pipeline.policy import Policy
from pipeline.reference import CSL_PATH
from pipeline.screen import screen_rows, write_output
from pipeline.tally import Tally

DECISIONS_DIR = "decisions.parquet"


class Piece(Protocol):
    """A slice of the screening order that a worker can read on its own."""

    name: str

    def read(self) -> pa.Table:
        """The piece's validated rows, in screening order."""


@dataclass(frozen=True)
class TablePiece:
    """Rows already in memory (tests, chunks of a ledger read in one go)."""

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
    """

    name: str
    rows: int
    tally: Tally
    contribution: Carry = field(default_factory=Carry.empty)
    path: str | None = None


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


def _part_path(index: int) -> str:
    return f"{DECISIONS_DIR}/part-{index:05d}.parquet"


def _write_part(table: pa.Table, out_dir: Path, index: int) -> str:
    relative = _part_path(index)
    path = out_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    write_output(table, path)
    return relative


def screen_piece(piece: Piece, index: int, policy: Policy, carry: Carry | None, *, csl_path: str | Path = CSL_PATH,
                 out_dir: str | Path | None = None, backend=None) -> tuple[PieceOutcome, Carry]:
    """Screen one piece from its carry-in; write its decisions when ``out_dir`` is given.

    ``backend`` (a :class:`kernels.backend.Backend`) runs the accumulators; NumPy when omitted.

    Returns
    -------
    outcome : PieceOutcome
        ``contribution`` left empty (the callers know it).
    carry : Carry
        Totals after the piece (keys not in it kept as carried in).
    """
    rows = piece.read()
    screened = screen_rows(rows, policy, carry=carry, csl_path=csl_path, remember_names=True, backend=backend)
    path = None
    if out_dir is not None:
        path = _write_part(screened.decisions_table(policy), Path(out_dir), index)
    tally = Tally.of(rows, screened.result, screened.features.tpp)
    return PieceOutcome(piece.name, rows.num_rows, tally, path=path), screened.result.carry


def scan(pieces: Sequence[Piece], policy: Policy, out_dir: str | Path | None = None, *, carry: Carry | None = None,
         csl_path: str | Path = CSL_PATH, progress: Callable[[int, int], None] | None = None,
         backend=None) -> ScanResult:
    """Screen pieces one after another in this process, each from the totals the last one ended with.

    Parameters
    ----------
    pieces : sequence of Piece
        Consecutive slices of the screening order.
    policy : Policy
    out_dir : path, optional
        Where ``decisions.parquet/`` is written.
    carry : Carry, optional
        Totals of the rows before the first piece (a checkpoint).
    csl_path : path
    progress : callable, optional
        Called with (pieces done, pieces) after each piece.
    backend : Backend, optional
        Where the accumulators run (:func:`kernels.backend.select_backend`); NumPy when omitted.

    Returns
    -------
    ScanResult
    """
    start = carry if carry is not None else Carry.empty()
    running, outcomes = start, []
    for index, piece in enumerate(pieces):
        outcome, after = screen_piece(piece, index, policy, running, csl_path=csl_path, out_dir=out_dir,
                                      backend=backend)
        outcome.contribution = after.since(running)
        outcomes.append(outcome)
        running = after
        if progress:
            progress(index + 1, len(pieces))
    return ScanResult(outcomes, start, running, Tally.merge([o.tally for o in outcomes]))


# ---------------------------------------------------------------------------------------- Dask
def lpp_contribution(piece: Piece, policy: Policy, csl_path: str | Path, backend: str = "numpy") -> Carry:
    """Pass 1: the LPP totals of a piece's own rows (LPP candidacy needs no carry)."""
    rows = piece.read()
    result = screen_rows(rows, policy, csl_path=csl_path, remember_names=True,
                         backend=select_backend(backend)).result
    return Carry(result.carry.lpp, _allocation_series())


def allocation_contribution(piece: Piece, policy: Policy, csl_path: str | Path, lpp_carry: Carry,
                            backend: str = "numpy") -> Carry:
    """Pass 1b: the allocation totals of a piece's own rows, given its LPP carry-in."""
    rows = piece.read()
    result = screen_rows(rows, policy, carry=Carry(lpp_carry.lpp, _allocation_series()), csl_path=csl_path,
                         remember_names=True, backend=select_backend(backend)).result
    return Carry(_lpp_series(), result.carry.allocation)


def _carry_task(base: Carry, contributions: list[Carry]) -> tuple[list[Carry], Carry]:
    """The carry task: per-piece carry-ins after ``base``, and the totals after the last piece."""
    carries, total = carries_in([base] + list(contributions))
    return carries[1:], total


def _nth(carries: tuple[list[Carry], Carry], index: int) -> Carry:
    return carries[0][index]


def _decide_pass(piece: Piece, index: int, policy: Policy, csl_path: str | Path, out_dir: str | None,
                 lpp_in: Carry, allocation_in: Carry, backend: str = "numpy") -> PieceOutcome:
    """Pass 2: screen a piece from its carry-ins and write its decisions."""
    outcome, _ = screen_piece(piece, index, policy, Carry(lpp_in.lpp, allocation_in.allocation),
                              csl_path=csl_path, out_dir=out_dir, backend=select_backend(backend))
    return outcome


def scan_dask(pieces: Sequence[Piece], policy: Policy, client, out_dir: str | Path | None = None, *,
              carry: Carry | None = None, csl_path: str | Path = CSL_PATH,
              progress: Callable[[str], None] | None = None, backend: str = "numpy") -> ScanResult:
    """Screen pieces on a Dask cluster in two passes per stage, without a shuffle.

    Parameters
    ----------
    pieces : sequence of Piece
        Consecutive slices of the screening order; each must be readable on any worker.
    policy : Policy
    client : distributed.Client
    out_dir : path, optional
        Where ``decisions.parquet/`` is written (a folder all workers can write to).
    carry : Carry, optional
        Totals of the rows before the first piece.
    csl_path : path
    progress : callable, optional
        Called with the name of each pass.
    backend : str
        Backend name each worker selects (``numpy``, ``cupy``, ``auto``).

    Returns
    -------
    ScanResult
        The same as :func:`scan` on the same pieces.
    """
    report = progress or (lambda message: None)
    base = carry if carry is not None else Carry.empty()
    out = str(out_dir) if out_dir is not None else None
    csl = str(csl_path)
    n = len(pieces)
    piece_futures = client.scatter(list(pieces)) if pieces and isinstance(pieces[0], TablePiece) else list(pieces)

    report("pass 1: LPP totals per piece")
    lpp_parts = client.map(lpp_contribution, piece_futures, policy=policy, csl_path=csl, backend=backend, pure=False)
    lpp_carries = client.submit(_carry_task, base, lpp_parts, pure=False)
    lpp_in = [client.submit(_nth, lpp_carries, i, pure=False) for i in range(n)]

    report("pass 1b: allocation totals per piece")
    allocation_parts = client.map(allocation_contribution, piece_futures, [policy] * n, [csl] * n, lpp_in,
                                  [backend] * n, pure=False)
    allocation_carries = client.submit(_carry_task, base, allocation_parts, pure=False)
    allocation_in = [client.submit(_nth, allocation_carries, i, pure=False) for i in range(n)]

    report("pass 2: decisions per piece")
    finals = client.map(_decide_pass, piece_futures, list(range(n)), [policy] * n, [csl] * n, [out] * n,
                        lpp_in, allocation_in, [backend] * n, pure=False)
    outcomes = client.gather(finals)
    lpp_contributions, allocation_contributions = client.gather(lpp_parts), client.gather(allocation_parts)
    (_, lpp_total), (_, allocation_total) = client.gather([lpp_carries, allocation_carries])
    for outcome, lpp, allocation in zip(outcomes, lpp_contributions, allocation_contributions):
        outcome.contribution = Carry(lpp.lpp[lpp.lpp != 0], allocation.allocation[allocation.allocation != 0])
    return ScanResult(list(outcomes), base, Carry(lpp_total.lpp, allocation_total.allocation),
                      Tally.merge([o.tally for o in outcomes]))
