"""The audit flow: replay a lake under a rule set as of a date, publish the report as an artifact."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.artifacts import _cell, run_markdown
from flows.nightly import log
from pipeline.audit import audit_in
from pipeline.policy import load_policy
from pipeline.reference import CSL_PATH
from pipeline.run.run import Run


@task(name="replay and audit", cache_policy=NO_CACHE)
def replay(run: Run, lake: str, policy_id: str, overrides: list[str], as_of: Optional[str]) -> dict:
    """Recompute the lake's rows as of a date and list the discrepancies, within the flow's run."""
    import datetime as dt

    day = dt.date.fromisoformat(as_of) if as_of else None
    return audit_in(run, [lake], load_policy(policy_id, overrides), as_of=day).summary


@flow(name="audit")
def audit(lake: str, out: str, policy: str = "ai-diffusion-2025", as_of: Optional[str] = None,
          overrides: Optional[list[str]] = None, csl: str = str(CSL_PATH), backend: str = "numpy") -> dict:
    """Replay a ledger lake under ``policy`` as of ``as_of`` and publish the audit.

    Parameters
    ----------
    lake : str
        The ledger lake folder.
    out : str
        Where the audit is published (``report.html``, ``discrepancies.parquet``, ...).
    policy : str
        Rule-set id.
    as_of : str, optional
        ``YYYY-MM-DD``: only rows dated up to this day.
    overrides : list of str, optional
    csl : str
        Screening-list file.
    backend : str
        ``numpy``, ``auto`` (a working GPU, else the CPU) or ``cupy``; resolved once, first.

    Returns
    -------
    dict
        The audit's ``summary.json``.
    """
    with Run.open(out, backend=backend, csl_path=csl, keep=[lake], progress=log) as run:
        summary = replay(run, lake, policy, overrides or [], as_of)
    published = Path(out)
    found = summary["discrepancies"]
    kinds = "\n".join(f"| {_cell(kind)} | {count:,} |" for kind, count in found["by_kind"].items())
    create_markdown_artifact(
        key="audit", description="chipscreen audit report",
        markdown=run_markdown(
            f"Audit: {found['rows_with_discrepancies']:,} of {found['shipped_rows']:,} shipped rows with discrepancies",
            summary, published,
            f"As of **{_cell(as_of or 'the last row')}**. Full report: "
            f"[report.html]({(published / 'report.html').absolute().as_uri()})\n\n"
            "| discrepancy | rows |\n|---|---|\n" + kinds))
    create_link_artifact(key="audit-report", link=(published / "report.html").absolute().as_uri(),
                         link_text="audit report.html", description="The self-contained audit report")
    return summary
