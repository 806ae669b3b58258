"""Screening time-ordered pieces from a carry-in: in this process, or on a Dask cluster (DESIGN §6).

Both ways give the decisions of one piece screened whole, row for row:

- :func:`scan` screens the pieces one after another, each from the totals the previous one
  ended with (a ledger in one piece, chunks, nightly increments, lake partitions);
- :func:`scan_dask` never moves rows between workers: pass 1 computes each piece's own LPP
  totals (and screens its consignees); one carry task turns them into per-piece carry-ins
  (exclusive prefix, :func:`pipeline.carry.carries_in`); pass 1b does the same for the
  allocation totals, whose candidates depend on the LPP outcome; pass 2 screens each piece from
  its carry-ins and writes its decisions.

The run's party-result cache travels as a task argument: pass 1 returns what each piece added,
one task merges it, and passes 1b and 2 read the merged cache (:mod:`pipeline.run.cache`).
"""
from __future__ import annotations

from typing import Callable, Sequence

from kernels.backend import Backend, select_backend
from pipeline.carry import Carry, _allocation_series, _lpp_series, carries_in
from pipeline.parties import PartyScreen
from pipeline.policy import Policy
from pipeline.results import PieceOutcome, ScanResult
from pipeline.run.cache import PartyResultCache
from pipeline.run.rows import screen_rows
from pipeline.run.run import Run
from pipeline.run.sink import PartWriter
from pipeline.run.source import Piece, TablePiece
from pipeline.run.timings import Timings
from pipeline.tally import Tally


def screen_piece(piece: Piece, index: int, policy: Policy, carry: Carry | None, *, screen: PartyScreen,
                 backend: Backend, cache: PartyResultCache | None, parts: PartWriter | None = None,
                 keep: bool = False, timer: Timings | None = None) -> tuple[PieceOutcome, Carry]:
    """Screen one piece from its carry-in; write its decisions when ``parts`` is given.

    Parameters
    ----------
    piece : Piece
    index : int
        The piece's place in the screening order (names its decisions file).
    policy : Policy
    carry : Carry or None
        Totals before the piece.
    screen : PartyScreen
    backend : Backend
    cache : PartyResultCache or None
        Party results of the run (None: screen every consignee, keeping candidate lists).
    parts : PartWriter, optional
    keep : bool
        Keep the screened rows on the outcome (:attr:`PieceOutcome.screened`).
    timer : Timings, optional

    Returns
    -------
    outcome : PieceOutcome
        ``contribution`` left empty (the callers know it).
    carry : Carry
        Totals after the piece (keys not in it kept as carried in).
    """
    timer = timer or Timings()
    rows = piece.read()
    screened = screen_rows(rows, policy, screen, backend, carry=carry, cache=cache, timer=timer)
    with timer.stage("assemble"):
        path = parts.write(screened.decisions_table(policy), index) if parts is not None else None
        tally = Tally.of(rows, screened.result, screened.features.tpp)
    outcome = PieceOutcome(piece.name, rows.num_rows, tally, path=path, screened=screened if keep else None)
    return outcome, screened.result.carry


def scan(run: Run, pieces: Sequence[Piece], policy: Policy, *, carry: Carry | None = None,
         parts: PartWriter | None = None, keep: bool = False, remember: bool = True,
         timer: Timings | None = None, progress: Callable[[int, int], None] | None = None) -> ScanResult:
    """Screen pieces one after another in this process, each from the totals the last one ended with.

    Parameters
    ----------
    run : Run
        Its backend, screening list and party-result cache serve every piece.
    pieces : sequence of Piece
        Consecutive slices of the screening order.
    policy : Policy
    carry : Carry, optional
        Totals of the rows before the first piece (a checkpoint).
    parts : PartWriter, optional
        Where each piece's decisions are written.
    keep : bool
        Keep each piece's screened rows on its outcome.
    remember : bool
        Screen each consignee once through the run's cache (False: every piece screens its own,
        keeping per-name candidate lists for ``parties.parquet``).
    timer : Timings, optional
        Times the stages of each piece (a one-piece run passes itself).
    progress : callable, optional
        Called with (pieces done, pieces) after each piece.

    Returns
    -------
    ScanResult
    """
    start = carry if carry is not None else Carry.empty()
    running, outcomes = start, []
    for index, piece in enumerate(pieces):
        outcome, after = screen_piece(piece, index, policy, running, screen=run.screening_list, backend=run.backend,
                                      cache=run.parties if remember else None, parts=parts, keep=keep, timer=timer)
        outcome.contribution = after.since(running)
        outcomes.append(outcome)
        running = after
        if progress:
            progress(index + 1, len(pieces))
    return ScanResult(outcomes, start, running, Tally.merge([o.tally for o in outcomes]))


# ---------------------------------------------------------------------------------------- Dask
def _screened_carry(piece: Piece, policy: Policy, csl_path: str, backend: str, cache: PartyResultCache,
                    carry: Carry | None) -> tuple[Carry, dict]:
    """Screen a piece on a worker with a copy of the run's cache: its totals, and the party results it added."""
    mine = cache.copy()
    marks = mine.marks()
    rows = piece.read()
    result = screen_rows(rows, policy, PartyScreen.from_path(csl_path), select_backend(backend), carry=carry,
                         cache=mine).result
    return result.carry, mine.added_since(marks)


def lpp_contribution(piece: Piece, policy: Policy, csl_path: str, backend: str,
                     cache: PartyResultCache) -> tuple[Carry, dict]:
    """Pass 1: the LPP totals of a piece's own rows (LPP candidacy needs no carry), and the party results added."""
    totals, added = _screened_carry(piece, policy, csl_path, backend, cache, None)
    return Carry(totals.lpp, _allocation_series()), added


def allocation_contribution(piece: Piece, policy: Policy, csl_path: str, backend: str, cache: PartyResultCache,
                            lpp_carry: Carry) -> tuple[Carry, dict]:
    """Pass 1b: the allocation totals of a piece's own rows, given its LPP carry-in."""
    totals, added = _screened_carry(piece, policy, csl_path, backend, cache,
                                    Carry(lpp_carry.lpp, _allocation_series()))
    return Carry(_lpp_series(), totals.allocation), added


def _carry_task(base: Carry, contributions: list[tuple[Carry, dict]]) -> tuple[list[Carry], Carry]:
    """The carry task: per-piece carry-ins after ``base``, and the totals after the last piece."""
    carries, total = carries_in([base] + [c for c, _ in contributions])
    return carries[1:], total


def _nth(carries: tuple[list[Carry], Carry], index: int) -> Carry:
    return carries[0][index]


def _merged_cache(cache: PartyResultCache, contributions: list[tuple[Carry, dict]]) -> PartyResultCache:
    """The run's cache with what every piece of pass 1 added."""
    merged = cache.copy()
    for _, added in contributions:
        merged.merge(added)
    return merged


def _decide_pass(piece: Piece, index: int, policy: Policy, csl_path: str, backend: str, cache: PartyResultCache,
                 parts: PartWriter | None, lpp_in: Carry, allocation_in: Carry) -> PieceOutcome:
    """Pass 2: screen a piece from its carry-ins and write its decisions."""
    outcome, _ = screen_piece(piece, index, policy, Carry(lpp_in.lpp, allocation_in.allocation),
                              screen=PartyScreen.from_path(csl_path), backend=select_backend(backend),
                              cache=cache.copy(), parts=parts)
    return outcome


def scan_dask(run: Run, pieces: Sequence[Piece], policy: Policy, client, *, carry: Carry | None = None,
              parts: PartWriter | None = None, progress: Callable[[str], None] | None = None) -> ScanResult:
    """Screen pieces on a Dask cluster in two passes per stage, without a shuffle.

    Parameters
    ----------
    run : Run
        Its backend (by name: each worker selects it on its own device), screening list and
        party-result cache (sent with the tasks, and given back merged).
    pieces : sequence of Piece
        Consecutive slices of the screening order; each must be readable on any worker.
    policy : Policy
    client : distributed.Client
    carry : Carry, optional
        Totals of the rows before the first piece.
    parts : PartWriter, optional
        Where each piece's decisions are written (a folder all workers can write to).
    progress : callable, optional
        Called with the name of each pass.

    Returns
    -------
    ScanResult
        The same as :func:`scan` on the same pieces.
    """
    report = progress or (lambda message: None)
    base = carry if carry is not None else Carry.empty()
    csl, backend, n = str(run.csl_path), run.backend.name, len(pieces)
    piece_futures = client.scatter(list(pieces)) if pieces and isinstance(pieces[0], TablePiece) else list(pieces)
    [cache] = client.scatter([run.parties], broadcast=True, hash=False)

    report("pass 1: LPP totals per piece")
    lpp_parts = client.map(lpp_contribution, piece_futures, [policy] * n, [csl] * n, [backend] * n, [cache] * n,
                           pure=False)
    lpp_carries = client.submit(_carry_task, base, lpp_parts, pure=False)
    lpp_in = [client.submit(_nth, lpp_carries, i, pure=False) for i in range(n)]
    merged = client.submit(_merged_cache, cache, lpp_parts, pure=False)

    report("pass 1b: allocation totals per piece")
    allocation_parts = client.map(allocation_contribution, piece_futures, [policy] * n, [csl] * n, [backend] * n,
                                  [merged] * n, lpp_in, pure=False)
    allocation_carries = client.submit(_carry_task, base, allocation_parts, pure=False)
    allocation_in = [client.submit(_nth, allocation_carries, i, pure=False) for i in range(n)]

    report("pass 2: decisions per piece")
    finals = client.map(_decide_pass, piece_futures, list(range(n)), [policy] * n, [csl] * n, [backend] * n,
                        [merged] * n, [parts] * n, lpp_in, allocation_in, pure=False)
    outcomes = client.gather(finals)
    lpp_contributions, allocation_contributions = client.gather(lpp_parts), client.gather(allocation_parts)
    (_, lpp_total), (_, allocation_total) = client.gather([lpp_carries, allocation_carries])
    everything = client.gather(merged)
    run.parties.merge(everything.added_since(run.parties.marks()))
    for outcome, (lpp, _), (allocation, _) in zip(outcomes, lpp_contributions, allocation_contributions):
        outcome.contribution = Carry(lpp.lpp[lpp.lpp != 0], allocation.allocation[allocation.allocation != 0])
    return ScanResult(list(outcomes), base, Carry(lpp_total.lpp, allocation_total.allocation),
                      Tally.merge([o.tally for o in outcomes]))
