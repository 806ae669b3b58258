"""The ``chipscreen`` application and what its commands share: messages, checks, progress, summaries."""
from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernels.backend import BACKENDS
from pipeline.lake.manifest import LakeWarning
from pipeline.parties import ScreeningListError
from pipeline.publish import PublishWarning

app = typer.Typer(help="Screen AI-chip shipment ledgers against U.S. export controls.",
                  no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)
out_console = Console(width=None if sys.stdout.isatty() else 120)  # logs and pipes get room for the tables


_show_warning = warnings.showwarning


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print chipscreen's own warnings (a kept run folder, a lake's clean-up after a commit) as
    ``warning: ...``; others as Python does."""
    if issubclass(category, (PublishWarning, LakeWarning)):
        from rich.markup import escape

        console.print(f"[bold yellow]warning:[/] {escape(str(message))}", highlight=False)
    else:
        _show_warning(message, category, filename, lineno, file, line)


warnings.showwarning = _print_warning


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


BACKEND_HELP = ("Where the running totals and fuzzy party scores run: `auto` (running totals on a working CUDA "
                "GPU, party scores on the CPU; else all on the CPU), `numpy`, or `cupy` (both on the GPU). Decisions "
                "are the same.")


def _check_backend(backend: str) -> None:
    """``error:`` unless ``--backend`` names a backend."""
    if backend not in BACKENDS:
        _fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


def _check_scheduler(scheduler: str) -> None:
    """``error:`` unless ``--scheduler`` is ``local``, ``none`` or a Dask address."""
    from pipeline.lake_screen import check_scheduler

    try:
        check_scheduler(scheduler)
    except ValueError as error:
        _fail(str(error))


def _parse_date(value: Optional[str], option: str) -> Optional[dt.date]:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


@contextmanager
def _stages(quiet: bool):
    """A spinner naming the current stage; each finished stage is printed with its time."""
    if quiet:
        yield lambda name: None
        return
    with console.status("starting") as status:
        yield lambda name: status.update(f"[cyan]{name}[/]")


def _run_screen(ledgers, policy, out, as_of, csl, quiet, backend="numpy", piece_rows=None):
    from pipeline.screen import PIECE_ROWS, screen_ledgers  # heavy imports only when screening

    with _stages(quiet) as progress:
        return screen_ledgers(ledgers, policy, out, as_of=as_of, csl_path=csl, progress=progress, backend=backend,
                              piece_rows=piece_rows or PIECE_ROWS)


def _run_lake_screen(lake, policy, out, as_of, csl, quiet, scheduler, workers, full, backend) -> dict:
    from pipeline.lake_screen import screen_lake

    with _stages(quiet) as progress:  # a LakeError is a RuntimeError: the command reports it
        return screen_lake(lake, policy, out, scheduler=scheduler, workers=workers, as_of=as_of,
                           incremental=not full, csl_path=csl, backend=backend, progress=progress).summary


def print_summary(summary: dict, top: int = 12) -> None:
    """Readable tables: row reconciliation, decisions by destination, cap headroom."""
    rows = summary["rows"]
    out_console.print(
        f"[bold]{summary['policy']['id']}[/]: {rows['rows_read']:,} read = {rows['accepted']:,} screened "
        f"+ {rows['quarantined']:,} quarantined" + (f" + {rows['excluded_after_as_of']:,} after --as-of"
                                                    if rows["excluded_after_as_of"] else ""))
    for reason, count in rows["by_reason"].items():
        out_console.print(f"  quarantined: {count:,} × {reason}")
    if "screened_this_run" in rows:
        out_console.print(f"this run screened {rows['screened_this_run']:,} of them; the decisions below, cap "
                          "headroom and LPP are of the whole history (earlier decisions carried from the checkpoint)")
    decisions = ["DENIED", "REVIEW", "CAP_EXCEEDED", "LICENSE_REQUIRED", "AUTHORIZED", "NLR"]
    table = Table(title="Decisions by destination", title_justify="left")
    table.add_column("destination")
    for name in decisions:
        table.add_column(name, justify="right")
    for destination, counts in list(summary["by_destination"].items())[:top]:
        table.add_row(destination, *[f"{counts.get(name, 0):,}" for name in decisions])
    totals = summary["decisions"]
    table.add_row("[bold]all", *[f"[bold]{totals.get(name, 0):,}" for name in decisions])
    out_console.print(table)
    headroom = summary["allocation_headroom"]
    if headroom:
        table = Table(title="Cap headroom (TPP), least remaining first", title_justify="left")
        for column in ("destination", "window", "cap", "allocated", "remaining", "used", "rows over"):
            table.add_column(column, justify="left" if column in ("destination", "window") else "right")
        for item in headroom[:top]:
            used = item["allocated_tpp"] / item["cap_tpp"] if item["cap_tpp"] else 1.0
            table.add_row(item["destination"], f"{item['window_start']}..{item['window_end']}",
                          f"{item['cap_tpp']:,}", f"{item['allocated_tpp']:,}", f"{item['remaining_tpp']:,}",
                          f"{used:.0%}", f"{item['exceeded_rows']:,}")
        out_console.print(table)
    lpp = summary.get("lpp")
    if lpp:
        out_console.print(f"LPP: {lpp['consignee_years_over_limit']:,} of {lpp['consignee_years']:,} "
                          f"consignee-years crossed {lpp['limit_tpp']:,} TPP ({lpp['rows_over_limit']:,} rows over)")
    volume = summary.get("china_volume")
    if volume and volume["keys"]:
        table = Table(title=f"China volume condition ({volume['max_share_percent']}% of US shipments, in "
                            f"{volume['unit']}), least headroom first", title_justify="left")
        for column in ("exporter", "sku", "us", "cn", "headroom", "rows over"):
            table.add_column(column, justify="left" if column in ("exporter", "sku") else "right")
        for item in volume["keys"][:top]:
            table.add_row(item["exporter"] or "(no exporter)", item["sku"], f"{item['us']:,}", f"{item['cn']:,}",
                          f"{item['headroom']:,}", f"{item['rows_over']:,}")
        out_console.print(table)
    licenses = summary.get("licenses")
    if licenses:
        out_console.print(f"licenses: {licenses['drawn_on']:,} of {licenses['licenses']:,} drawn on, "
                          f"{licenses['lines_over']:,} lines over; not covered: "
                          + ", ".join(f"{count:,} {code}" for code, count in licenses["lines_not_covered"].items()))
    ownership = summary.get("ownership")
    if ownership:
        out_console.print(f"ownership: {ownership['consignee_affiliates']:,} consignees are affiliates "
                          f"({ownership['rows_of_affiliates']:,} rows), {ownership['consignee_minority']:,} minority "
                          f"holdings; {ownership['holdings']['quarantined']:,} holdings quarantined")
    for code, count in (summary.get("flagged_rows") or {}).items():
        if count:
            out_console.print(f"{code}: {count:,} rows")


PREFECT_QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                 "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
"""Prefect settings for an offline, embedded run (each is kept when already set)."""

LIBRARY_LOGGERS = ("prefect", "distributed", "dask", "httpx", "httpcore", "uvicorn", "fastapi", "asyncio",
                   "tornado", "bokeh", "fsspec", "sqlalchemy", "aiosqlite", "alembic", "docket", "urllib3")
"""Third-party loggers ``nightly`` keeps at WARNING unless ``--verbose``."""
QUIET_LOGGERS = ("distributed.worker", "distributed.scheduler")
"""Dask loggers kept at CRITICAL unless ``--verbose`` (task failures come back as ``error:``)."""
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
"""Prefect's flow- and task-run loggers: their tracebacks are left out unless ``--verbose``."""
_saved_levels: dict[str, int] = {}


class _NoTraceback:
    """A logging filter that drops a record's traceback (the message says what failed)."""

    @staticmethod
    def filter(record) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _library_logs(verbose: bool) -> None:
    """Keep third-party logs at WARNING without tracebacks; ``verbose`` restores their own levels.

    Call it after importing Prefect and Dask: both set their loggers' levels on import.
    """
    import logging

    try:
        import distributed  # noqa: F401 - sets the distributed loggers to INFO on import
    except ImportError:  # pragma: no cover - part of the install
        pass
    for name in LIBRARY_LOGGERS + QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if verbose:
            if name in _saved_levels:
                logger.setLevel(_saved_levels.pop(name))
        else:
            _saved_levels.setdefault(name, logger.level)
            # A failed Dask task is reported as `error:`; its worker/scheduler ERROR log would repeat it.
            # (LocalCluster workers follow these levels: see pipeline.lake_screen.dask_client.)
            logger.setLevel(logging.CRITICAL if name in QUIET_LOGGERS else logging.WARNING)
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        logger.removeFilter(_NoTraceback)
        if not verbose:
            logger.addFilter(_NoTraceback)


ALLOW_SHORT_LIST = "parties.allow_short_list=true"
"""The override ``--allow-short-list`` adds (recorded in ``summary.json`` with the others)."""


def _check_screening_list(csl: Path, allow_short_list: bool) -> list[str]:
    """Load the screening list a run will use and check it (``error:`` when it cannot be used).

    Returns
    -------
    list of str
        The overrides that pass ``--allow-short-list`` on to the rule set: ``[ALLOW_SHORT_LIST]``
        or none. The run checks the list again with them (``PartyScreen.screen_policy``).
    """
    from pipeline.parties import PartyScreen, check_list_size

    try:
        check_list_size(PartyScreen.from_path(csl).entries, allow_short_list)
    except ScreeningListError as error:
        _fail(str(error))
    return [ALLOW_SHORT_LIST] if allow_short_list else []


# --- restricted-party matching (issue 4) -------------------------------------------------------------


def _generate(path: Path, rows: int, seed: int, bad_rows: int, chunk_rows: int, listed: bool, quiet: bool,
              after: Optional[Path] = None) -> dict:
    from pipeline.generate import generate_ledger, generate_next, listed_party_names

    names = listed_party_names() if listed and after is None else ()
    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("rows", total=rows + bad_rows)
        progress = lambda done: bar.update(task, completed=done)  # noqa: E731
        if after is not None:
            return generate_next(path, after, rows, seed=seed, bad_rows=bad_rows, chunk_rows=chunk_rows,
                                 progress=progress)
        return generate_ledger(path, rows, seed=seed, bad_rows=bad_rows, chunk_rows=chunk_rows,
                               listed_names=names, progress=progress)


LICENSES_OPTION = typer.Option(None, "--licenses", help="License register (CSV or Parquet): licensed lines are checked "
                               "against it and draw on their license.")
OWNERSHIP_OPTION = typer.Option(None, "--ownership", help="Ownership holdings (CSV or Parquet): consignees owned 50% "
                                "or more by listed parties are affiliates (in-force).")


def _license_register(path: Optional[Path]) -> list[str]:
    """The override that puts a license register into the rule set (none without ``path``); the
    rule set reads and checks it once, and a bad register stops the run with an ``error:``."""
    if path is None:
        return []
    return [f"licenses.register={json.dumps(str(path.resolve()))}"]


def _ownership(path: Optional[Path]) -> list[str]:
    """The override that puts an ownership file into the rule set (none without ``path``); the
    rule set reads and checks it once."""
    if path is None:
        return []
    return [f"affiliates.ownership={json.dumps(str(path.resolve()))}"]
