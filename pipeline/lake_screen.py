"""Screening a ledger lake: whole, as of a date, or incrementally from its checkpoint (DESIGN §6).

The lake's partitions are the pieces of :mod:`pipeline.scale`; they are screened in this process
(``scheduler="none"``) or on a Dask cluster (a ``LocalCluster`` by default, an existing scheduler
by address, ``LocalCUDACluster`` for the GPU backend). Outputs are published all at once
(:mod:`pipeline.publish`): ``decisions.parquet/`` (the rows screened in this run, one file per
piece, in screening order), ``quarantine.parquet``, ``summary.json`` and ``report.html``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kernels.backend import select_backend
from pipeline.carry import Carry
from pipeline.checkpoint import (Checkpoint, CheckpointPart, Plan, after_position, checkpoint_dir, fingerprint,
                                 last_position, plan, tail_keys)
from pipeline.ingest import SCREENING_COLUMNS
from pipeline.lake import STORED_SCHEMA, Lake, Partition
from pipeline.parties import PartyScreen
from pipeline.policy import Policy
from pipeline.publish import absolute, current_run, destination_of, discard, new_run
from pipeline.publish import publish as publish_run
from pipeline.reference import CSL_PATH
from pipeline.scale import ScanResult, TablePiece, scan, scan_dask
from pipeline.screen import ScreenResult, build_summary, remember_names, remembered_names, write_output
from pipeline.tally import Tally

SCHEDULERS = ("local", "none")
"""``local``: a Dask LocalCluster on this machine; ``none``: one process, piece after piece.
Anything else is the address of a running Dask scheduler."""


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


NO_DASHBOARD = ":0"
"""Dask still serves its HTTP routes without a dashboard; a free port, so two clusters never clash on 8787."""


@contextmanager
def dask_client(scheduler: str, backend: str = "numpy", workers: int | None = None) -> Iterator:
    """A Dask client for ``scheduler`` (see :data:`SCHEDULERS`), closed afterwards.

    Raises
    ------
    RuntimeError
        If Dask (or dask-cuda, for the GPU backend) is not installed.
    """
    try:
        import distributed
    except ImportError:  # pragma: no cover - the orchestration extra is part of the install
        raise RuntimeError("distributed screening needs dask: pip install 'chipscreen[orchestration]'") from None
    if scheduler not in SCHEDULERS:
        check_scheduler(scheduler)
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            raise RuntimeError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S} s: "
                               f"{error}") from None
        with client:
            yield client
        return
    if backend == "cupy":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise RuntimeError("the GPU backend on Dask needs dask-cuda (and rmm): pip install dask-cuda") from None
        try:  # rmm is optional (not on every GPU image): without it, CuPy's own memory pool
            import rmm  # noqa: F401
            pool = {"rmm_pool_size": "0.8"}
        except ImportError:
            pool = {}
        with LocalCUDACluster(dashboard_address=NO_DASHBOARD, **pool) as cluster, \
                distributed.Client(cluster) as client:
            if pool:
                client.run(_route_cupy_through_rmm)
            yield client
        return
    n = workers or max(1, os.cpu_count() or 1)
    with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=NO_DASHBOARD) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _route_cupy_through_rmm() -> None:  # pragma: no cover - needs a GPU
    import cupy
    import rmm.allocators.cupy

    cupy.cuda.set_allocator(rmm.allocators.cupy.rmm_cupy_allocator)


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
        With ``publish=False``: the staged checkpoint to :func:`commit_checkpoint` once the
        outputs are published (None when the run keeps no checkpoint).
    """

    plan: Plan
    scan: ScanResult
    summary: dict
    out_dir: Path | None
    checkpoint: Path | None = None


def _lake_counts(lake: Lake, quarantine: pa.Table, screened: int, as_of: dt.date | None) -> dict:
    """Rows of the lake: read = accepted + quarantined + after ``as_of``; and those screened now."""
    in_lake = sum(p.rows for p in lake.partitions)
    reasons = quarantine.column("reason").to_pylist() if quarantine.num_rows else []
    excluded = in_lake - screened if as_of is not None else 0  # a replay screens every row up to the date
    return {"rows_read": in_lake + quarantine.num_rows, "accepted": in_lake - excluded,
            "quarantined": quarantine.num_rows, "excluded_after_as_of": excluded, "screened_this_run": screened,
            "by_reason": {r: reasons.count(r) for r in sorted(set(reasons))}}


def check_scheduler(scheduler: str) -> None:
    """Refuse a ``--scheduler`` that is neither in :data:`SCHEDULERS` nor a Dask address.

    Raises
    ------
    ValueError
        With the forms accepted.
    """
    if scheduler in SCHEDULERS:
        return
    match = SCHEDULER_ADDRESS.fullmatch(scheduler)
    port = int(match.group("port")) if match and match.group("port") else None
    if match is None or (match.group("scheme") != "inproc" and not (port and 0 < port < 65536)):
        raise ValueError(f"--scheduler {scheduler!r}: give `local`, `none` or a Dask scheduler address such as "
                         "tcp://HOST:8786")


SCHEDULER_ADDRESS = re.compile(r"(?:(?P<scheme>tcp|tls|ucx|ws|wss|inproc)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
                               r"(?::(?P<port>[0-9]{1,5}))?(?:/[A-Za-z0-9_./-]*)?")
"""A Dask scheduler address: ``[scheme://]host:port``."""
CONNECT_TIMEOUT_S = 10
"""Seconds to wait for a scheduler given by address before giving up."""


def screen_lake(lake_dir: str | Path, policy: Policy, out_dir: str | Path | None = None, *,
                scheduler: str = "local", workers: int | None = None, as_of: dt.date | None = None,
                incremental: bool = True, csl_path: str | Path = CSL_PATH, publish: bool = True,
                destination: str | Path | None = None, backend: str = "numpy",
                progress: Callable[[str], None] | None = None) -> LakeRun:
    """Screen a lake under one rule set, from its checkpoint where one fits.

    The checkpoint moves forward only with a published result: with ``publish`` it is saved
    after ``out_dir`` is switched to the new run; otherwise :attr:`LakeRun.checkpoint` holds
    it, staged, for the caller to :func:`commit_checkpoint` after publishing.

    Parameters
    ----------
    lake_dir : path
    policy : Policy
    out_dir : path, optional
        Published all at once when the run succeeds; a failed run leaves it as it was. Refused
        (:class:`pipeline.publish.PublishError`, before any work) when it is a folder with files
        the tool did not publish, or is or holds the lake.
    scheduler : str
        ``local`` (Dask LocalCluster), ``none`` (this process), or a scheduler address.
    workers : int, optional
        LocalCluster workers (default: one per core).
    as_of : date, optional
        Replay the rows up to this day (an audit); checkpoints are neither read nor written.
    incremental : bool
        Use and update the checkpoint (default); False screens everything and rewrites it.
    csl_path : path
    publish : bool
        Write into a run folder and switch ``out_dir`` to it at the end (default); False writes
        straight into ``out_dir`` (a run folder the caller publishes, see :mod:`pipeline.publish`).
    destination : path, optional
        With ``publish=False``: where the caller publishes ``out_dir`` (recorded in the checkpoint).
    backend : str
        Where the accumulators run: ``numpy``, ``cupy`` or ``auto`` (see :mod:`kernels.backend`);
        with Dask, ``cupy`` starts a ``LocalCUDACluster``.
    progress : callable, optional
        Called with a message per step.

    Returns
    -------
    LakeRun
    """
    check_scheduler(scheduler)
    if out_dir is None or not publish:
        return _screen_lake(lake_dir, policy, Path(out_dir) if out_dir is not None else None,
                            Path(destination) if destination is not None else None, scheduler=scheduler,
                            workers=workers, as_of=as_of, incremental=incremental, csl_path=csl_path,
                            backend=backend, progress=progress)
    keep = [lake_dir]
    run = new_run(out_dir, keep)
    outcome = None
    try:
        outcome = _screen_lake(lake_dir, policy, run, Path(out_dir), scheduler=scheduler, workers=workers,
                               as_of=as_of, incremental=incremental, csl_path=csl_path, backend=backend,
                               progress=progress)
        publish_run(run, out_dir, keep)
    except BaseException:
        discard(run)  # the previous results stay as they were, and so does the checkpoint
        if outcome is not None and outcome.checkpoint is not None:
            discard(outcome.checkpoint)
        raise
    if outcome.checkpoint is not None:  # after the publish: a crash before this line screens the rows again
        commit_checkpoint(outcome.checkpoint)
    outcome.out_dir = Path(out_dir)
    return outcome


def commit_checkpoint(staged: str | Path) -> None:
    """Make a checkpoint staged by a lake screen (:attr:`LakeRun.checkpoint`) the current one.

    Call it only after the run's outputs are published.
    """
    staged = Path(staged)
    publish_run(staged, destination_of(staged), replace_folder=True)


def _screen_lake(lake_dir: str | Path, policy: Policy, out: Path | None, destination: Path | None, *,
                 scheduler: str, workers: int | None, as_of: dt.date | None, incremental: bool,
                 csl_path: str | Path, backend: str, progress: Callable[[str], None] | None) -> LakeRun:
    """Screen a lake, writing into ``out`` (a run folder) and staging the checkpoint (see :func:`screen_lake`)."""
    report = progress or (lambda message: None)
    started = time.perf_counter()
    accounting = select_backend(backend)
    if scheduler == "local" and accounting.name == "cupy" and accounting.xp.cuda.runtime.getDeviceCount() == 1:
        scheduler = "none"  # one GPU: the in-process scan keeps the data on it, no cluster to start
    lake = Lake.open(lake_dir)
    csl_path = Path(csl_path)
    print_ = fingerprint(policy, csl_path)
    folder = checkpoint_dir(lake, print_)
    use_checkpoint = as_of is None
    checkpoint = Checkpoint.load(folder) if use_checkpoint and incremental else None
    todo = plan(lake, checkpoint) if as_of is None else Plan(0, None, "full", f"replay as of {as_of}")
    if checkpoint is not None and out is not None and not _holds_last_run(checkpoint, destination, todo):
        # The checkpoint's last results may never have been published here: never answer "unchanged"
        # with an empty publication, nor skip rows whose decisions nobody saw.
        todo = Plan(0, None, "full", "--out does not hold the checkpoint's last published run; screening everything")
    parts = [p for p in lake.partitions if as_of is None or p.first_date <= as_of]
    pieces = [LakePiece(lake, p, todo.after if i == todo.start else None, as_of)
              for i, p in enumerate(parts) if i >= todo.start]
    if todo.after is not None:  # an append: the partition's earlier rows are in the checkpoint too
        base = checkpoint.end
    else:
        base = checkpoint.carry_before(todo.start) if checkpoint is not None else Carry.empty()
    report(f"{todo.mode}: {todo.why}; {len(pieces)} piece(s) to screen")
    known_names = checkpoint.names if checkpoint is not None else None
    if known_names is not None:  # names screened on earlier nights are not matched again
        remember_names(policy, csl_path, known_names)
    names: list = []

    def run(out: Path | None) -> ScanResult:
        if not pieces:  # nothing (new) to screen: publish an empty decisions table, so readers find one
            empty = (lake.read(parts[-1]).slice(0, 0) if parts
                     else STORED_SCHEMA.empty_table().select(list(SCREENING_COLUMNS)))
            result = scan([TablePiece(empty, "nothing new")], policy, out, carry=base, csl_path=csl_path)
            return ScanResult([], result.carry_in, result.carry, Tally.empty()) if not parts else result
        if scheduler == "none":
            result = scan(pieces, policy, out, carry=base, csl_path=csl_path, backend=accounting,
                          progress=lambda done, total: report(f"screened {done}/{total} pieces"))
            names.append(remembered_names(policy, csl_path))
            return result
        with dask_client(scheduler, backend=accounting.name, workers=workers) as client:
            if known_names is not None:
                client.run(remember_names, policy, csl_path, known_names)
            result = scan_dask(pieces, policy, client, out, carry=base, csl_path=csl_path, progress=report,
                               backend=accounting.name)
            names.extend(client.run(remembered_names, policy, csl_path).values())
            return result

    result = run(out)
    # The whole history: the checkpoint's partitions before the run, then this run's pieces.
    kept = list(checkpoint.parts[:todo.start]) if checkpoint else []
    rest = result.pieces
    if todo.after is None:
        before = checkpoint.tally_before(todo.start) if checkpoint else None
    else:  # an append to the checkpoint's last partition: its rows so far, then tonight's
        appended, rest, before = checkpoint.parts[todo.start], result.pieces[1:], checkpoint.total
        kept.append(CheckpointPart(parts[todo.start].key, parts[todo.start].sha256, parts[todo.start].rows,
                                   appended.contribution.plus(result.pieces[0].contribution),
                                   Tally.merge([appended.tally, result.pieces[0].tally])))
    tallies = ([before] if before is not None else []) + [p.tally for p in result.pieces]
    whole = Tally.merge(tallies) if tallies else Tally.empty()
    new_parts = kept + [CheckpointPart(parts[i].key, parts[i].sha256, parts[i].rows, p.contribution, p.tally)
                        for i, p in zip(range(len(kept), len(parts)), rest)]
    quarantine = lake.quarantine()
    summary = build_summary(policy, result.tally if result.pieces else whole, result.carry,
                            _lake_counts(lake, quarantine, result.rows, as_of), lake.files, {},
                            csl_path, len(PartyScreen.from_path(csl_path).entries), as_of, accounting.name)
    summary["allocation_headroom"] = whole.headroom(result.carry)
    summary["lpp"] = whole.lpp(result.carry)
    summary["lake"] = {"path": str(lake.path), "generation": lake.generation, "partitions": len(lake.partitions),
                       "run": todo.mode, "why": todo.why, "pieces_screened": [p.name for p in result.pieces],
                       "scheduler": scheduler}
    summary["timings_s"] = {"total": round(time.perf_counter() - started, 3)}
    if out is not None:
        from pipeline.report import write_report
        from pipeline.report_content import screen_report

        write_output(quarantine, out / "quarantine.parquet")
        write_report(screen_report(ScreenResult(None, quarantine, summary, tally=whole)), out / "report.html")
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    staged = None
    if use_checkpoint and (todo.mode != "unchanged" or out is not None):
        known = [frame for frame in names + [known_names] if frame is not None]
        merged = (pd.concat(known, ignore_index=True).drop_duplicates(["name", "query_country"], ignore_index=True)
                  if known else None)
        published = ({"out": str(absolute(destination)) if destination is not None else None, "run": out.name}
                     if out is not None else None)
        staged = Checkpoint(new_parts, result.carry, whole, last_position(lake), tail_keys(lake),
                            merged, published).stage(folder, print_, lake.generation)
    return LakeRun(todo, result, summary, out, staged)


def _holds_last_run(checkpoint: Checkpoint, destination: Path | None, todo: Plan) -> bool:
    """Whether the checkpoint's last run was published and a run from it may publish only what is new.

    A checkpoint that does not say where its run was published (written by an earlier version,
    perhaps after a crash before the publish) is not trusted; an ``unchanged`` answer needs the
    destination to hold the checkpoint's run still.
    """
    record = checkpoint.published
    if not record or not record.get("run"):
        return False
    if todo.mode != "unchanged":
        return True
    return (destination is not None and record.get("out") == str(absolute(destination))
            and current_run(destination) == record["run"])
