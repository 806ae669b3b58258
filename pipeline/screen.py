"""Screening ledger files: the ``screen`` command's run (DESIGN §9).

One :class:`~pipeline.run.run.Run` reads the files (source), screens the rows in one piece
(scan) and writes ``decisions.parquet``, ``quarantine.parquet``, ``parties.parquet``,
``summary.json`` and ``report.html`` once each (sink) into a run folder published all at once
(:mod:`pipeline.publish`). The entry points here are the stable API; the run lives in
:mod:`pipeline.run`.
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kernels import warm_up
from kernels.backend import Backend, select_backend
from pipeline.carry import Carry
from pipeline.ingest import Ledger, LedgerReadError, file_digest, read_ledgers  # noqa: F401  (file_digest: kept for callers)
from pipeline.ingest.formats import ledger_format
from pipeline.parties import PartyScreen
from pipeline.policy import Policy
from pipeline.reference import CSL_PATH
from pipeline.results import ScreenResult
from pipeline.run.cache import PartyResultCache
from pipeline.run.rows import ScreenedRows, consignees, decisions_table  # noqa: F401  (public names)
from pipeline.run.rows import screen_rows as _screen_rows
from pipeline.run.run import Run
from pipeline.run.screening import screen_streamed, screen_whole, streams, write_screening
from pipeline.run.sink import STATISTICS_COLUMNS, write_output  # noqa: F401  (public names)
from pipeline.run.summary import build_summary  # noqa: F401  (public name)
from pipeline.run.timings import Timings

__all__ = ["ScreenResult", "ScreenedRows", "build_summary", "consignees", "decisions_table", "screen_ledger",
           "screen_ledgers", "screen_rows", "write_output"]

BACKEND = "numpy"
PIECE_ROWS = 2_000_000
"""Rows per piece of the ``screen`` command (``--piece-rows``): memory grows with the piece, and a
piece's decisions are written while the next one is screened."""


def _prepare(csl_path: Path, paths: Sequence[str | Path] = (), policy: Policy | None = None,
             backend: Backend | None = None) -> PartyScreen:
    """Start-up work beside the reading of the ledger: the screening list, the compiled kernels,
    and the fuzzy candidates of the consignee names of Parquet ledgers (:meth:`PartyScreen.warm`)."""
    warm_up()
    screen = PartyScreen.from_path(csl_path)
    if policy is not None:
        names = consignee_names(paths)
        if names:
            screen.warm(names, policy, backend=backend)
    return screen


def consignee_names(paths: Sequence[str | Path]) -> list[str]:
    """Distinct ``consignee_name`` values of the Parquet files among ``paths``, blanks trimmed (a
    superset of the names their valid rows hold); other formats and unreadable files give none."""
    found: set[str] = set()
    for path in paths:
        try:
            if ledger_format(Path(path)) != "parquet" or "consignee_name" not in pq.read_schema(path).names:
                continue
            column = pq.read_table(path, columns=["consignee_name"], read_dictionary=["consignee_name"]).column(0)
            if not pa.types.is_dictionary(column.type) or not pa.types.is_string(column.type.value_type):
                continue
            values = pa.chunked_array([chunk.dictionary for chunk in column.chunks], pa.string()).unique()
            found.update(v for v in pc.utf8_trim_whitespace(values).to_pylist() if v)
        except (OSError, pa.ArrowException, LedgerReadError):
            continue  # the ledger read itself reports what is wrong
    return sorted(found)


def screen_rows(rows: pa.Table, policy: Policy, *, carry: Carry | None = None, csl_path: str | Path = CSL_PATH,
                timer: Timings | None = None, remember_names: bool = False,
                backend: Backend | None = None) -> ScreenedRows:
    """Screen validated rows (a whole ledger, or one piece of it after ``carry``).

    Parameters
    ----------
    rows : pyarrow.Table
        Rows in screening order, as in :attr:`pipeline.ingest.Ledger.rows`.
    policy : Policy
    carry : Carry, optional
        Totals of the rows screened before these.
    csl_path : path
    timer : Timings, optional
        Stage timer of the calling run.
    remember_names : bool
        Screen consignees through a party-result cache (the results then carry no per-name
        candidate lists); runs keep one for all their pieces (:attr:`pipeline.run.run.Run.parties`).
    backend : Backend, optional
        Where the accumulators and the fuzzy party scoring run; NumPy when omitted.

    Returns
    -------
    ScreenedRows
    """
    return _screen_rows(rows, policy, PartyScreen.from_path(csl_path), select_backend(backend or BACKEND), carry=carry,
                        cache=PartyResultCache(csl_path) if remember_names else None, timer=timer)


def screen_ledgers(paths: Sequence[str | Path], policy: Policy, out_dir: str | Path | None = None, *,
                   as_of: dt.date | None = None, csl_path: str | Path = CSL_PATH,
                   progress: Callable[[str], None] | None = None, backend: str | Backend = BACKEND,
                   publish: bool = True, piece_rows: int | None = None) -> ScreenResult:
    """Screen ledger files under one rule set and write the outputs.

    Parameters
    ----------
    paths : sequence of path
        Ledger files (CSV, Parquet, JSON Lines).
    policy : Policy
        Rule set, overrides applied (:func:`pipeline.policy.load_policy`).
    out_dir : path, optional
        Where ``decisions.parquet``, ``quarantine.parquet``, ``parties.parquet``, ``summary.json``
        and ``report.html`` are published, all at once (:mod:`pipeline.publish`); its run folder
        is made before the ledger is read. Nothing is written when omitted.
    as_of : date, optional
        Screen only rows dated up to this day.
    csl_path : path
        Consolidated Screening List file.
    progress : callable, optional
        Called with the name of each stage.
    backend : {"numpy", "auto", "cupy"} or Backend
        Where the accumulators run (:func:`kernels.backend.select_backend`); ``auto`` uses a GPU
        when one works. Decisions are the same on every backend.
    publish : bool
        False: write straight into ``out_dir`` (a run folder the caller publishes).
    piece_rows : int, optional
        With ``out_dir``: screen a ledger of more rows than this in pieces of this many rows, each
        piece's decisions written as it finishes (:func:`pipeline.run.screening.screen_streamed`:
        the same outputs in less memory); the result then holds no ``decisions``, ``outcome`` or
        ``features``. Default: one piece.

    Returns
    -------
    ScreenResult

    Raises
    ------
    kernels.backend.BackendUnavailableError
        ``cupy`` was asked for and no CUDA device works (raised before the ledger is read).
    pipeline.publish.PublishError
        ``out_dir`` is refused or not writable (raised before the ledger is read).
    """
    with Run.open(out_dir, backend=backend, csl_path=csl_path, keep=paths, publish=publish,
                  progress=progress) as run:
        with ThreadPoolExecutor(max_workers=1) as helper:
            # Loads the screening list and the compiled kernels (both cached per process) and scores
            # the consignee names while the ledger is read: Arrow reads without holding the GIL.
            preparing = helper.submit(_prepare, run.csl_path, paths, policy, run.backend)
            with run.stage("ingest"):
                ledger = read_ledgers(paths, as_of=as_of)
            run.timings.update({f"ingest.{stage}": value for stage, value in ledger.seconds.items()})
            with run.stage("parties_wait"):  # the names screened beside the ingest, where that took longer
                preparing.result()
        return _screen_and_write(run, ledger, policy, as_of, piece_rows)


def screen_ledger(ledger: Ledger, policy: Policy, out_dir: str | Path | None = None, *,
                  as_of: dt.date | None = None, csl_path: str | Path = CSL_PATH,
                  progress: Callable[[str], None] | None = None, timer: Timings | None = None,
                  backend: str | Backend = BACKEND, publish: bool = True) -> ScreenResult:
    """Screen validated ledger rows under one rule set (see :func:`screen_ledgers`).

    One ledger can be screened under several rule sets without reading it again. On a GPU the
    accumulators take the rows in time-ordered chunks sized from free device memory, with
    per-key carry-in (:meth:`kernels.backend.Backend.accumulate`), so any ledger that fits in
    host memory runs; larger ones go through :func:`pipeline.scale.scan`. ``publish=False``
    writes straight into ``out_dir`` (a run folder the caller publishes); ``timer`` holds the
    timings of stages run before (they go into ``summary.json``).
    """
    with Run.open(out_dir, backend=backend, csl_path=csl_path, publish=publish, progress=progress) as run:
        if timer is not None:
            run.timings.update(timer.timings)
        return _screen_and_write(run, ledger, policy, as_of)


def _screen_and_write(run: Run, ledger: Ledger, policy: Policy, as_of: dt.date | None,
                      piece_rows: int | None = None) -> ScreenResult:
    if run.sink is not None and streams(policy, ledger, piece_rows):
        return screen_streamed(run, ledger, policy, piece_rows, as_of)
    result = screen_whole(run, ledger, policy, as_of)
    if run.sink is not None:
        write_screening(run.sink, result, run)
    return result
