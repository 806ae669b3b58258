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
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kernels.backend import select_backend
from pipeline.carry import Carry
from pipeline.checkpoint import (Checkpoint, CheckpointPart, Plan, after_position, checkpoint_dir, fingerprint,
                                 last_position, plan, tail_keys)
from pipeline.lake import Lake, Partition
from pipeline.parties import PartyScreen
from pipeline.policy import Policy
from pipeline.publish import run_folder
from pipeline.reference import CSL_PATH
from pipeline.scale import ScanResult, TablePiece, scan, scan_dask
from pipeline.screen import ScreenResult, build_summary, remember_names, remembered_names
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
        with distributed.Client(scheduler) as client:
            yield client
        return
    if backend == "cupy":
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise RuntimeError("the GPU backend on Dask needs dask-cuda (and rmm): pip install dask-cuda") from None
        with LocalCUDACluster(rmm_pool_size="0.8", dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            client.run(_route_cupy_through_rmm)
            yield client
        return
    n = workers or max(1, os.cpu_count() or 1)
    with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
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
    """

    plan: Plan
    scan: ScanResult
    summary: dict
    out_dir: Path | None


def _lake_counts(lake: Lake, quarantine: pa.Table, screened: int, as_of: dt.date | None) -> dict:
    """Rows of the lake: read = accepted + quarantined + after ``as_of``; and those screened now."""
    in_lake = sum(p.rows for p in lake.partitions)
    reasons = quarantine.column("reason").to_pylist() if quarantine.num_rows else []
    excluded = in_lake - screened if as_of is not None else 0  # a replay screens every row up to the date
    return {"rows_read": in_lake + quarantine.num_rows, "accepted": in_lake - excluded,
            "quarantined": quarantine.num_rows, "excluded_after_as_of": excluded, "screened_this_run": screened,
            "by_reason": {r: reasons.count(r) for r in sorted(set(reasons))}}


def screen_lake(lake_dir: str | Path, policy: Policy, out_dir: str | Path | None = None, *,
                scheduler: str = "local", workers: int | None = None, as_of: dt.date | None = None,
                incremental: bool = True, csl_path: str | Path = CSL_PATH, publish: bool = True,
                backend: str = "numpy", progress: Callable[[str], None] | None = None) -> LakeRun:
    """Screen a lake under one rule set, from its checkpoint where one fits.

    Parameters
    ----------
    lake_dir : path
    policy : Policy
    out_dir : path, optional
        Published all at once when the run succeeds; a failed run leaves it as it was.
    scheduler : str
        ``local`` (Dask LocalCluster), ``none`` (this process), or a scheduler address.
    workers : int, optional
        LocalCluster workers (default: one per core).
    as_of : date, optional
        Replay the rows up to this day (an audit); checkpoints are neither read nor written.
    incremental : bool
        Use and update the checkpoint (default); False screens everything and rewrites it.
    csl_path : path
    backend : str
        Where the accumulators run: ``numpy``, ``cupy`` or ``auto`` (see :mod:`kernels.backend`);
        with Dask, ``cupy`` starts a ``LocalCUDACluster``.
    publish : bool
        Write into a run folder and switch ``out_dir`` to it at the end (default); False writes
        straight into ``out_dir`` (a run folder the caller publishes, see :mod:`pipeline.publish`).
    progress : callable, optional
        Called with a message per step.

    Returns
    -------
    LakeRun
    """
    report = progress or (lambda message: None)
    started = time.perf_counter()
    accounting = select_backend(backend)
    lake = Lake.open(lake_dir)
    csl_path = Path(csl_path)
    print_ = fingerprint(policy, csl_path)
    folder = checkpoint_dir(lake, print_)
    use_checkpoint = as_of is None
    checkpoint = Checkpoint.load(folder) if use_checkpoint and incremental else None
    todo = plan(lake, checkpoint) if as_of is None else Plan(0, None, "full", f"replay as of {as_of}")
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
        if not pieces and not parts:
            return ScanResult([], base, base, Tally.empty())
        if not pieces:  # nothing new: publish an empty decisions table, so readers find one
            nothing = TablePiece(lake.read(parts[-1]).slice(0, 0), "nothing new")
            return scan([nothing], policy, out, carry=base, csl_path=csl_path)
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

    def finish(out: Path | None) -> LakeRun:
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
            pq.write_table(quarantine, out / "quarantine.parquet")
            from pipeline.report import write_report
            from pipeline.report_content import screen_report

            write_report(screen_report(ScreenResult(None, quarantine, summary, tally=whole)), out / "report.html")
            (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if use_checkpoint and todo.mode != "unchanged":
            known = [frame for frame in names + [known_names] if frame is not None]
            merged = (pd.concat(known, ignore_index=True).drop_duplicates(["name", "query_country"], ignore_index=True)
                      if known else None)
            Checkpoint(new_parts, result.carry, whole, last_position(lake), tail_keys(lake),
                       merged).save(folder, print_, lake.generation)
        return LakeRun(todo, result, summary, out)

    if out_dir is None or not publish:
        return finish(Path(out_dir) if out_dir is not None else None)
    with run_folder(out_dir) as out:
        outcome = finish(out)
    outcome.out_dir = Path(out_dir)
    return outcome
