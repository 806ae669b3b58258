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

from flows.artifacts import run_markdown
from pipeline.lake import ingest
from pipeline.lake_screen import check_scheduler, commit_checkpoint, screen_lake
from pipeline.parties import refresh_screening_list
from pipeline.policy import load_policy
from pipeline.publish import discard, new_run, publish
from pipeline.reference import CSL_PATH


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
    kept = refresh_screening_list(csl_source, Path(lake) / "reference")
    get_run_logger().info("screening list %s", kept.name)
    return str(kept)


@task(name="screen lake")
def screen(lake: str, policy_id: str, overrides: list[str], run_dir: str, out: str, csl: str, scheduler: str,
           workers: Optional[int], backend: str = "auto") -> dict:
    """Screen what is new in the lake into ``run_dir`` (the Dask work runs inside this task).

    Returns the run's summary under ``summary`` and the staged checkpoint folder under
    ``checkpoint`` (committed only after the publish).
    """
    policy = load_policy(policy_id, overrides)
    logger = get_run_logger()
    result = screen_lake(lake, policy, run_dir, scheduler=scheduler, workers=workers, csl_path=csl, publish=False,
                         destination=out, backend=backend, progress=lambda message: logger.info(message))
    return {"summary": result.summary, "checkpoint": str(result.checkpoint) if result.checkpoint else None}


@task(name="publish")
def publish_run(run_dir: str, out: str, keep: Optional[list[str]] = None) -> str:
    """Move the run's outputs into place in one step."""
    publish(Path(run_dir), Path(out), keep or [])
    return str(Path(out).absolute())


@task(name="commit checkpoint")
def commit(staged: str) -> None:
    """Move the lake's checkpoint forward, once the results it stands for are published."""
    commit_checkpoint(staged)


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
        The ledger lake folder (created on first use).
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
    run_dir = new_run(out, [lake])  # before any work: a refused or unwritable --out stops here
    staged = None
    try:
        ingested = ingest_files(files, lake)
        csl = refresh_reference(lake, csl_source)
        screened = screen(lake, policy, overrides or [], str(run_dir), out, csl, scheduler, workers, backend)
        summary, staged = screened["summary"], screened["checkpoint"]
        published = publish_run(str(run_dir), out, [lake])
    except BaseException:
        discard(run_dir)  # the previous results stay as they were, and so does the checkpoint
        if staged:
            discard(Path(staged))
        raise
    if staged:
        commit(staged)
    summary["ingest"] = ingested
    run = summary["lake"]
    create_markdown_artifact(
        key="nightly-screen", description=f"chipscreen nightly screen {dt.date.today().isoformat()}",
        markdown=run_markdown(
            f"Nightly screen: {summary['rows']['screened_this_run']:,} rows screened", summary, Path(published),
            f"Lake generation {run['generation']}, run **{run['run']}** ({run['why']}); ingest added "
            f"{ingested['counts'].get('accepted', 0):,} rows, quarantined {ingested['counts'].get('quarantined', 0):,}."))
    return summary
