"""The nightly screening flow: ingest new ledger files → refresh reference data → screen → publish.

Run it once, in Prefect's embedded mode (no server): ``chipscreen nightly LEDGER... --lake DIR
--out DIR``. Serve it on a schedule: see ``flows/serve.py`` and the README.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.artifacts import run_markdown
from pipeline.lake import ingest
from pipeline.lake.store import LakeStore
from pipeline.lake_screen import check_scheduler, screen_lake_in
from pipeline.parties import refresh_screening_list
from pipeline.policy import load_policy
from pipeline.reference import CSL_PATH
from pipeline.run.run import Run


@task(name="ingest ledger files")
def ingest_files(files: list[str], lake: str) -> dict:
    """Add new ledger files to the lake (idempotent: files seen before add nothing)."""
    if not files:
        return {"committed": False, "counts": {}, "partitions_written": []}
    report = ingest(files, lake)
    get_run_logger().info("ingest: %s", report.counts)
    return {"committed": report.committed, "counts": report.counts, "partitions_written": report.partitions_written,
            "generation": report.generation}


@task(name="refresh reference data", retries=3, retry_delay_seconds=10)
def refresh_reference(lake: str, csl_source: Optional[str]) -> str:
    """The screening list to use tonight: a checked copy of ``csl_source``, or the packaged one.

    Retried: the source is typically a file a download job is still writing.
    """
    if csl_source is None:
        return str(CSL_PATH)
    kept = refresh_screening_list(csl_source, LakeStore.at(lake).beside / "reference")
    get_run_logger().info("screening list %s", kept.name)
    return str(kept)


@task(name="screen lake", cache_policy=NO_CACHE)
def screen(run: Run, lake: str, policy_id: str, overrides: list[str], csl: str, scheduler: str,
           workers: Optional[int]) -> dict:
    """Screen what is new in the lake within the flow's run (the Dask work runs inside this task).

    The run's checkpoint is committed once the run is published.
    """
    run.use_screening_list(csl)
    return screen_lake_in(run, lake, load_policy(policy_id, overrides), scheduler=scheduler, workers=workers).summary


def log(message: str) -> None:
    """Report a run's progress to the Prefect run logger."""
    get_run_logger().info(message)


@flow(name="nightly-screen", log_prints=False)
def nightly_screen(files: list[str], lake: str, out: str, policy: str = "post-rescission-2025",
                   overrides: Optional[list[str]] = None, csl_source: Optional[str] = None,
                   scheduler: str = "local", workers: Optional[int] = None, inbox: Optional[str] = None,
                   backend: str = "auto") -> dict:
    """Screen tonight's ledger files against the lake's history and publish the results.

    Parameters
    ----------
    files : list of str
        New ledger files (may be empty: screen what the lake already holds).
    lake : str
        The ledger lake: a folder or an ``s3://`` URL (created on first use).
    out : str
        Where the results are published (a link switched to the new run when it succeeds); a
        folder with files the tool did not publish, or one holding the lake, is refused first.
    policy : str
        Rule-set id.
    overrides : list of str, optional
        ``KEY=VALUE`` policy overrides.
    csl_source : str, optional
        A newly downloaded screening list to check and use.
    scheduler : str
        ``local`` (Dask LocalCluster), ``none`` (one process) or a Dask scheduler address.
    workers : int, optional
    inbox : str, optional
        A folder whose ledger files (``.parquet``, ``.csv``, ``.jsonl``) are ingested too; files
        ingested before add nothing.
    backend : str
        ``auto`` (a working GPU, else the CPU), ``numpy`` or ``cupy``.

    Returns
    -------
    dict
        The run's ``summary.json``, plus the ingest report under ``ingest``.
    """
    check_scheduler(scheduler)
    if inbox:
        files = list(files) + sorted(str(p) for p in Path(inbox).iterdir() if p.suffix in (".parquet", ".csv", ".jsonl"))
    # Before any work: the backend is resolved, and a refused or unwritable --out stops here.
    with Run.open(out, backend=backend, keep=[lake], progress=log) as run:
        ingested = ingest_files(files, lake)
        csl = refresh_reference(lake, csl_source)
        summary = screen(run, lake, policy, overrides or [], csl, scheduler, workers)
    published = str(Path(out).absolute())
    summary["ingest"] = ingested
    lake_run = summary["lake"]
    create_markdown_artifact(
        key="nightly-screen", description=f"chipscreen nightly screen {dt.date.today().isoformat()}",
        markdown=run_markdown(
            f"Nightly screen: {summary['rows']['screened_this_run']:,} rows screened", summary, Path(published),
            f"Lake generation {lake_run['generation']}, run **{lake_run['run']}** ({lake_run['why']}); "
            f"ingest added "
            f"{ingested['counts'].get('accepted', 0):,} rows, quarantined {ingested['counts'].get('quarantined', 0):,}."))
    return summary
