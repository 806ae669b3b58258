"""Screening a ledger lake: whole, as of a date, or incrementally from its checkpoint (DESIGN §6).

The ``screen --lake`` and nightly run: a :class:`~pipeline.run.source.LakeSource` cuts the lake's
partitions (after the checkpoint, or up to a date) into pieces; they are screened in this process
(``scheduler="none"``) or on a Dask cluster (a ``LocalCluster`` by default, an existing scheduler
by address, ``LocalCUDACluster`` for the GPU backend); the sink writes ``decisions.parquet/`` (one file per
piece, in screening order, after those carried from the checkpoint), ``quarantine.parquet``,
``summary.json`` and ``report.html``, published all at once; then the checkpoint moves forward.

Every published ``decisions.parquet/`` is complete: the decisions of rows screened by earlier
runs are carried from the checkpoint (hard links to the files those runs published, in
screening order, never screened again), followed by this run's files; ``summary["lake"]
["decisions"]`` says how many files were carried and which ones this run screened.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.checkpoint import Checkpoint, CheckpointPart, last_position, tail_keys
from pipeline.policy import Policy
from pipeline.publish import absolute, destination_of, discard
from pipeline.publish import publish as publish_run
from pipeline.reference import CSL_PATH
from pipeline.report_content import screen_report
from pipeline.results import LakeRun, ScanResult, ScreenResult
from pipeline.run.run import Run
from pipeline.run.scan import scan, scan_dask
from pipeline.run.source import LakePiece, LakeSource
from pipeline.run.summary import build_summary
from pipeline.tally import Tally

__all__ = ["LakePiece", "LakeRun", "SCHEDULERS", "check_scheduler", "commit_checkpoint", "dask_client",
           "screen_lake", "screen_lake_in", "screened_in_run"]

SCHEDULERS = ("local", "none")
"""``local``: a Dask LocalCluster on this machine; ``none``: one process, piece after piece.
Anything else is the address of a running Dask scheduler."""


NO_DASHBOARD = ":0"
"""Dask still serves its HTTP routes without a dashboard; a free port, so two clusters never clash on 8787."""


@contextmanager
def dask_client(scheduler: str, backend: str = "numpy", workers: int | None = None) -> Iterator:
    """A Dask client for ``scheduler`` (see :data:`SCHEDULERS`), closed afterwards.

    Raises
    ------
    ValueError
        ``scheduler`` is not a scheduler address (see :func:`check_scheduler`).
    RuntimeError
        If Dask (or dask-cuda, for the GPU backend) is not installed, or no Dask scheduler answers
        at ``scheduler`` within :data:`CONNECT_TIMEOUT_S` (plus a few seconds' grace).
    """
    try:
        import distributed
    except ImportError:  # pragma: no cover - the orchestration extra is part of the install
        raise RuntimeError("distributed screening needs dask: pip install 'chipscreen[orchestration]'") from None
    if scheduler not in SCHEDULERS:
        check_scheduler(scheduler)
        client = _connect(distributed, scheduler)
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
        quiet = _quiet_worker_logs()
        if quiet is not None:
            client.register_plugin(quiet, name="chipscreen-worker-logs")
        yield client


class _WorkerLogLevels:
    """A worker plugin: set logger levels in each worker process (those started later too)."""

    def __init__(self, levels: dict[str, int]):
        self.levels = levels

    def setup(self, worker) -> None:  # pragma: no cover - runs in the worker processes
        import logging

        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def _quiet_worker_logs() -> "_WorkerLogLevels | None":
    """The levels this process gives the Dask worker loggers, for LocalCluster workers to follow.

    ``chipscreen`` without ``-v`` raises ``distributed.worker`` to CRITICAL
    (``flows.cli.base._library_logs``): a task failure the command reports as ``error:`` is
    then not logged again, with its traceback, by the worker process. None when this process
    leaves them as they are (library use, ``-v``).
    """
    import logging

    from distributed.diagnostics.plugin import WorkerPlugin

    level = logging.getLogger("distributed.worker").level
    if level < logging.CRITICAL:
        return None
    plugin = type("_QuietWorkerLogs", (_WorkerLogLevels, WorkerPlugin), {})
    return plugin({"distributed.worker": level, "distributed.nanny": logging.WARNING})


def _connect(distributed, scheduler: str):
    """A client of the Dask scheduler at ``scheduler``, under a hard wall-clock limit.

    First a probe (a Dask handshake and an ``identity`` request, in its own event loop in a
    daemon thread) checks that a Dask scheduler answers: whatever else is there (a closed port, a
    service sending a banner, an HTTP server that never completes the handshake), the caller
    gets a :class:`RuntimeError` within :data:`CONNECT_TIMEOUT_S` plus :data:`CONNECT_GRACE_S`,
    and no half-made client is left to close at exit. Then the client connects, under the same limit.
    """
    limit = CONNECT_TIMEOUT_S

    def failure(detail: str) -> RuntimeError:
        return RuntimeError(f"cannot reach the Dask scheduler at {scheduler} within {limit} s: {detail}")

    def why(error: BaseException) -> str:
        if isinstance(error, MemoryError):
            return "the service at that address does not speak the Dask protocol"
        if isinstance(error, TimeoutError):
            return "no answer from a Dask scheduler"
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__

    async def probe() -> None:
        from distributed.comm import connect
        from distributed.security import Security

        args = Security().get_connection_args("client")
        comm = await connect(scheduler, timeout=limit, **args)
        try:
            await comm.write({"op": "identity"})
            reply = await comm.read()
        finally:
            comm.abort()
        if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
            raise ConnectionError("the service at that address is not a Dask scheduler")

    def in_thread(work):
        outcome: dict = {}

        def target() -> None:
            try:
                outcome["value"] = work()
            except BaseException as error:  # noqa: BLE001 - any failure (MemoryError on a banner) is reported
                outcome["error"] = error

        thread = threading.Thread(target=target, name="chipscreen-dask-connect", daemon=True)
        thread.start()
        thread.join(limit + CONNECT_GRACE_S)
        if thread.is_alive():
            raise failure("no answer")
        if "error" in outcome:
            raise failure(why(outcome["error"]))
        return outcome["value"]

    import asyncio

    in_thread(lambda: asyncio.run(asyncio.wait_for(probe(), limit)))
    return in_thread(lambda: distributed.Client(scheduler, timeout=limit))


def _route_cupy_through_rmm() -> None:  # pragma: no cover - needs a GPU
    import cupy
    import rmm.allocators.cupy

    cupy.cuda.set_allocator(rmm.allocators.cupy.rmm_cupy_allocator)


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
    port = int(match.group("port")) if match else None
    if match is None or not 0 < port < 65536 or not _dask_parses(scheduler):
        raise ValueError(f"--scheduler {scheduler!r}: give `local`, `none` or a Dask scheduler address "
                         "tcp://HOST:PORT, tls://HOST:PORT or HOST:PORT")


def _dask_parses(address: str) -> bool:
    """Whether distributed itself reads ``address`` as a TCP/TLS host and port (True without Dask)."""
    try:
        from distributed.comm import parse_address
        from distributed.comm.addressing import parse_host_port
    except ImportError:  # pragma: no cover - the orchestration extra is part of the install
        return True
    try:
        scheme, location = parse_address(address)
        parse_host_port(location)
    except (ValueError, TypeError):
        return False
    return scheme in ("tcp", "tls")


SCHEDULER_ADDRESS = re.compile(r"(?:(?P<scheme>tcp|tls)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_-][A-Za-z0-9_.-]*)"
                               r":(?P<port>[0-9]{1,5})")
"""A Dask scheduler address: ``[tcp:// or tls://]host:port``, nothing after the port."""
CONNECT_TIMEOUT_S = 10
"""Seconds to wait for a scheduler given by address before giving up."""
CONNECT_GRACE_S = 3
"""Seconds past :data:`CONNECT_TIMEOUT_S` after which a connect still running is abandoned."""


def screen_lake(lake_dir: str | Path, policy: Policy, out_dir: str | Path | None = None, *,
                scheduler: str = "local", workers: int | None = None, as_of: dt.date | None = None,
                incremental: bool = True, csl_path: str | Path = CSL_PATH, publish: bool = True,
                destination: str | Path | None = None, backend: str = "numpy",
                progress: Callable[[str], None] | None = None) -> LakeRun:
    """Screen a lake under one rule set, from its checkpoint where one fits.

    The checkpoint moves forward only with a published result: with ``publish`` it is saved
    after ``out_dir`` is switched to the new run; otherwise :attr:`LakeRun.checkpoint` holds
    it, staged, for the caller to :func:`commit_checkpoint` after publishing. A run that finds
    nothing new while ``out_dir`` holds the checkpoint's run publishes nothing: ``out_dir`` keeps
    its results, and ``summary["lake"]`` says so (``published`` False, ``why``).

    Parameters
    ----------
    lake_dir : path or str
        A folder, or a URL in an object store (:mod:`pipeline.lake.store`).
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
    backend : str or Backend
        Where the accumulators run: ``numpy``, ``cupy`` or ``auto`` (see :mod:`kernels.backend`),
        resolved once here; with Dask, ``cupy`` starts a ``LocalCUDACluster``.
    progress : callable, optional
        Called with a message per step.

    Returns
    -------
    LakeRun
    """
    check_scheduler(scheduler)
    with Run.open(out_dir, backend=backend, csl_path=csl_path, keep=[lake_dir], publish=publish,
                  progress=progress) as run:
        outcome = screen_lake_in(run, lake_dir, policy, destination=destination, scheduler=scheduler,
                                 workers=workers, as_of=as_of, incremental=incremental)
    if run.destination is not None:
        outcome.out_dir = run.destination
    return outcome


def screened_in_run(out_dir: str | Path) -> pa.Table:
    """The decisions of the rows the run published in ``out_dir`` screened itself (not carried).

    Raises
    ------
    ValueError
        ``out_dir`` holds no lake screening's outputs.
    """
    import pyarrow.dataset as ds

    out_dir = Path(out_dir)
    try:
        files = json.loads((out_dir / "summary.json").read_text())["lake"]["decisions"]["screened_files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"{out_dir}: no lake screening's summary.json with its decisions files") from None
    try:
        tables = [pq.read_table(out_dir / name) for name in files]
        if tables:
            return pa.concat_tables(tables, promote_options="permissive")
        return ds.dataset(out_dir / "decisions.parquet", format="parquet").schema.empty_table()
    except (OSError, pa.ArrowException) as error:
        raise ValueError(f"{out_dir}: cannot read the decisions files of its run: {error}") from None


def commit_checkpoint(staged: str | Path) -> None:
    """Make a checkpoint staged by a lake screen (:attr:`LakeRun.checkpoint`) the current one.

    Call it only after the run's outputs are published.
    """
    staged = Path(staged)
    publish_run(staged, destination_of(staged), replace_folder=True)


def _scan(run: Run, source: LakeSource, policy: Policy, scheduler: str, workers: int | None) -> ScanResult:
    """Screen the source's pieces in this process or on Dask; decisions go to the run's sink."""
    parts = run.sink.parts(source.carried) if run.sink is not None else None
    if not source.pieces:
        if source.carried or parts is None:
            return ScanResult([], source.carry_in, source.carry_in, Tally.empty())
        # No row at all: publish an empty decisions table, so that readers find one.
        result = scan(run, [source.empty_piece()], policy, carry=source.carry_in, parts=parts)
        return ScanResult([], result.carry_in, result.carry, Tally.empty()) if not source.parts else result
    if scheduler == "none":
        return scan(run, source.pieces, policy, carry=source.carry_in, parts=parts,
                    progress=lambda done, total: run.progress(f"screened {done}/{total} pieces"))
    with dask_client(scheduler, backend=run.backend.name, workers=workers) as client:
        return scan_dask(run, source.pieces, policy, client, carry=source.carry_in, parts=parts,
                         progress=run.progress)


def screen_lake_in(run: Run, lake_dir: str | Path, policy: Policy, *, destination: str | Path | None = None,
                   scheduler: str = "local", workers: int | None = None, as_of: dt.date | None = None,
                   incremental: bool = True) -> LakeRun:
    """Screen a lake within ``run`` (see :func:`screen_lake`): outputs into its folder, checkpoint staged.

    When the run publishes (:attr:`Run.destination`), the staged checkpoint is committed right
    after the publication (and discarded if the run fails); otherwise :attr:`LakeRun.checkpoint`
    holds it for the caller. ``destination`` says where a caller publishes the run's folder.
    """
    check_scheduler(scheduler)
    started = time.perf_counter()
    destination = run.destination if run.destination is not None else destination
    destination = Path(destination) if destination is not None else None
    if scheduler == "local" and run.backend.name == "cupy" and run.backend.xp.cuda.runtime.getDeviceCount() == 1:
        scheduler = "none"  # one GPU: the in-process scan keeps the data on it, no cluster to start
    source = LakeSource(lake_dir, policy, run.csl_path, as_of=as_of, incremental=incremental,
                        destination=destination, writes=run.sink is not None)
    lake, todo, checkpoint, parts = source.lake, source.plan, source.checkpoint, source.parts
    run.progress(f"{todo.mode}: {todo.why}; {len(source.pieces)} piece(s) to screen")
    if checkpoint is not None and checkpoint.names is not None:  # names screened on earlier nights
        run.parties.add(policy, checkpoint.names)
    result = _scan(run, source, policy, scheduler, workers)
    # The whole history: the checkpoint's partitions before the run, then this run's pieces.
    kept = list(checkpoint.parts[:todo.start]) if checkpoint else []
    rest = result.pieces

    def written(*pieces) -> list[Path] | None:
        return [run.folder / p.path for p in pieces] if run.sink is not None else None

    if todo.after is None:
        before = checkpoint.tally_before(todo.start) if checkpoint else None
    else:  # an append to the checkpoint's last partition: its rows so far, then tonight's
        appended, rest, before = checkpoint.parts[todo.start], result.pieces[1:], checkpoint.total
        tonight = written(result.pieces[0])
        kept.append(CheckpointPart(parts[todo.start].key, parts[todo.start].sha256, parts[todo.start].rows,
                                   appended.contribution.plus(result.pieces[0].contribution),
                                   Tally.merge([appended.tally, result.pieces[0].tally]),
                                   decisions=appended.decisions + tonight if tonight is not None else None))
    tallies = ([before] if before is not None else []) + [p.tally for p in result.pieces]
    whole = Tally.merge(tallies) if tallies else Tally.empty()
    new_parts = kept + [CheckpointPart(parts[i].key, parts[i].sha256, parts[i].rows, p.contribution, p.tally,
                                       decisions=written(p))
                        for i, p in zip(range(len(kept), len(parts)), rest)]
    quarantine = lake.quarantine()
    # The outputs hold every row of the lake (carried and screened now): the counts are of all of them.
    summary = build_summary(policy, whole, result.carry, source.counts(quarantine, result.rows), lake.files, {},
                            run.csl_path, len(run.screening_list.entries), as_of, run.backend.name)
    summary["allocation_headroom"] = whole.headroom(result.carry)
    summary["lpp"] = whole.lpp(result.carry)
    summary["china_volume"] = whole.china_volume()
    summary["flagged_rows"] = whole.flagged()
    summary["licenses"] = whole.licenses(result.carry, policy.license_register())
    summary["lake"] = {"path": str(lake.path), "generation": lake.generation, "partitions": len(lake.partitions),
                       "run": todo.mode, "why": todo.why, "pieces_screened": [p.name for p in result.pieces],
                       "scheduler": scheduler,
                       "decisions": {"carried_files": len(source.carried),
                                     "screened_files": [p.path for p in result.pieces if p.path is not None]}}
    summary["timings_s"] = {"total": round(time.perf_counter() - started, 3)}
    sink = run.sink
    if source.current and sink is not None and run.destination is not None:
        # --out holds the checkpoint's run, intact: its decisions stay published.
        current = f"the published results at {absolute(run.destination)} are current"
        summary["lake"]["why"] = f"{todo.why}; {current}"
        summary["lake"]["published"] = False
        run.keep_published(f"unchanged: {current}")
        run.progress(f"unchanged: {current}")
        return LakeRun(todo, result, summary, run.destination, None)
    if sink is not None:
        sink.table("quarantine.parquet", quarantine)
        sink.report(screen_report(ScreenResult(None, quarantine, summary, tally=whole)))
        sink.json("summary.json", summary)
    staged = None
    if source.keeps_checkpoint and (todo.mode != "unchanged" or sink is not None):
        published = ({"out": str(absolute(destination)) if destination is not None else None,
                      "run": run.folder.name} if sink is not None else None)
        staged = Checkpoint(new_parts, result.carry, whole, last_position(lake), tail_keys(lake),
                            run.parties.known(policy), published).stage(source.checkpoint_folder,
                                                                        source.fingerprint, lake.generation)
    if staged is not None and run.destination is not None:  # a crash before the publish screens the rows again
        run.after_publish(lambda: commit_checkpoint(staged), lambda: discard(staged))
    return LakeRun(todo, result, summary, run.folder, staged)
