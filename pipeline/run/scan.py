"""Screening time-ordered pieces from a carry-in: in this process, or on a Dask cluster (DESIGN §6).

Both ways give the decisions of one piece screened whole, row for row:

- :func:`scan` screens the pieces one after another, each from the totals the previous one
  ended with (a ledger in one piece, chunks, nightly increments, lake partitions);
- :func:`scan_dask` never moves rows between workers: one pass per accumulator stage
  (:data:`pipeline.decide.STAGES`) computes each piece's own totals of that stage from its
  carry-ins of the earlier stages (the first pass also screens its consignees); one carry task
  per stage turns them into per-piece carry-ins (exclusive prefix,
  :func:`pipeline.carry.carries_in`); the last pass screens each piece from all its carry-ins
  and writes its decisions.

The run's party-result cache travels as a task argument: pass 1 returns what each piece added,
one task merges it, and passes 1b and 2 read the merged cache (:mod:`pipeline.run.cache`).
"""
from __future__ import annotations

from typing import Callable, Sequence

from kernels.backend import Backend, select_backend
from pipeline.carry import Carry, carries_in
from pipeline.decide import stages
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
         timer: Timings | None = None, progress: Callable[[int, int], None] | None = None,
         contributions: bool = True) -> ScanResult:
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
    contributions : bool
        Record each piece's own totals (:attr:`PieceOutcome.contribution`, what a checkpoint
        keeps); False leaves them empty, sparing a pass over every key so far per piece.

    Returns
    -------
    ScanResult
    """
    start = carry if carry is not None else Carry.empty()
    running, outcomes = start, []
    for index, piece in enumerate(pieces):
        outcome, after = screen_piece(piece, index, policy, running, screen=run.screening_list, backend=run.backend,
                                      cache=run.parties if remember else None, parts=parts, keep=keep, timer=timer)
        outcome.contribution = after.since(running) if contributions else Carry.empty()
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


def stage_contribution(piece: Piece, policy: Policy, csl_path: str, backend: str, cache: PartyResultCache,
                       names: tuple[str, ...], carry: Carry | None) -> tuple[Carry, dict]:
    """One pass: the totals of a piece's own rows for the accumulators ``names``, given its carry-in
    of the earlier stages; and the party results it added."""
    totals, added = _screened_carry(piece, policy, csl_path, backend, cache, carry)
    if carry is not None:
        totals = totals.since(carry)
    return totals.only(names), added


def _carry_task(base: Carry, contributions: list[tuple[Carry, dict]], names: tuple[str, ...]
                ) -> tuple[list[Carry], Carry]:
    """The carry task: per-piece carry-ins after ``base``, and the totals after the last piece."""
    carries, total = carries_in([base.only(names)] + [c for c, _ in contributions])
    return carries[1:], total


def _nth(carries: tuple[list[Carry], Carry], index: int) -> Carry:
    return carries[0][index]


def _joined(*carries: Carry) -> Carry:
    """Carries of disjoint accumulators as one."""
    return Carry({name: series for carry in carries for name, series in carry.totals.items()})


def _merged_cache(cache: PartyResultCache, contributions: list[tuple[Carry, dict]]) -> PartyResultCache:
    """The run's cache with what every piece of pass 1 added."""
    merged = cache.copy()
    for _, added in contributions:
        merged.merge(added)
    return merged


def _decide_pass(piece: Piece, index: int, policy: Policy, csl_path: str, backend: str, cache: PartyResultCache,
                 parts: PartWriter | None, carry_in: Carry) -> PieceOutcome:
    """Last pass: screen a piece from its carry-ins and write its decisions."""
    outcome, _ = screen_piece(piece, index, policy, carry_in, screen=PartyScreen.from_path(csl_path),
                              backend=select_backend(backend), cache=cache.copy(), parts=parts)
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

    stage_carries, stage_parts, cache_now = [], [], cache
    carry_in = [None] * n
    for number, names in enumerate(stages(policy)):
        report(f"pass {number + 1}: {', '.join(n for n in names if '.' not in n)} totals per piece")
        contributions = client.map(stage_contribution, piece_futures, [policy] * n, [csl] * n, [backend] * n,
                                   [cache_now] * n, [names] * n, carry_in, pure=False)
        carries = client.submit(_carry_task, base, contributions, names, pure=False)
        mine = [client.submit(_nth, carries, i, pure=False) for i in range(n)]
        carry_in = mine if number == 0 else [client.submit(_joined, a, b, pure=False) for a, b in zip(carry_in, mine)]
        if number == 0:
            cache_now = client.submit(_merged_cache, cache, contributions, pure=False)
        stage_carries.append(carries)
        stage_parts.append(contributions)

    report(f"pass {len(stage_carries) + 1}: decisions per piece")
    finals = client.map(_decide_pass, piece_futures, list(range(n)), [policy] * n, [csl] * n, [backend] * n,
                        [cache_now] * n, [parts] * n, carry_in, pure=False)
    outcomes = client.gather(finals)
    contributions = [client.gather(parts_of_stage) for parts_of_stage in stage_parts]
    totals = [total for _, total in client.gather(stage_carries)]
    everything = client.gather(cache_now)
    run.parties.merge(everything.added_since(run.parties.marks()))
    for i, outcome in enumerate(outcomes):
        outcome.contribution = _joined(*[stage[i][0] for stage in contributions])
        outcome.contribution = Carry({k: v[v != 0] for k, v in outcome.contribution.totals.items() if (v != 0).any()})
    return ScanResult(list(outcomes), base, _joined(*totals), Tally.merge([o.tally for o in outcomes]))
