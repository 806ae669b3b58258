"""The ``chipscreen`` command line."""
from __future__ import annotations

import datetime as dt
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernels.backend import BACKENDS
from pipeline.ingest import LedgerReadError
from pipeline.parties import ScreeningListError
from pipeline.policy import PolicyError, list_policies, load_policy
from pipeline.reference import CSL_PATH

app = typer.Typer(help="Screen AI-chip shipment ledgers against U.S. export controls.",
                  no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)
out_console = Console(width=None if sys.stdout.isatty() else 120)  # logs and pipes get room for the tables


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


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


def _run_screen(ledgers, policy, out, as_of, csl, quiet, backend="numpy"):
    from pipeline.screen import screen_ledgers  # heavy imports only when screening

    with _stages(quiet) as progress:
        return screen_ledgers(ledgers, policy, out, as_of=as_of, csl_path=csl, progress=progress, backend=backend)


def _run_lake_screen(lake, policy, out, as_of, csl, quiet, scheduler, workers, full, backend) -> dict:
    from pipeline.lake_screen import screen_lake

    with _stages(quiet) as progress:  # a LakeError is a RuntimeError: the command reports it
        return screen_lake(lake, policy, out, scheduler=scheduler, workers=workers, as_of=as_of,
                           incremental=not full, csl_path=csl, backend=backend, progress=progress).summary


@app.command()
def screen(
    ledgers: Optional[list[Path]] = typer.Argument(None, help="Ledger files: .parquet, .csv or .jsonl."),
    policy: str = typer.Option(..., "--policy", "-p", help="Rule-set id (see `chipscreen policies`) or a TOML file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    lake: Optional[Path] = typer.Option(None, "--lake", help="Screen a ledger lake (see `chipscreen ingest`) "
                                        "instead of files; incremental from its checkpoint."),
    scheduler: str = typer.Option("local", "--scheduler", help="With --lake: `local` (a Dask LocalCluster), "
                                  "`none` (this process, piece after piece) or a Dask scheduler address."),
    workers: Optional[int] = typer.Option(None, "--workers", help="With --lake and a LocalCluster: worker processes."),
    full: bool = typer.Option(False, "--full", help="With --lake: screen everything, ignoring the checkpoint."),
    set_: list[str] = typer.Option([], "--set", help="Override a policy parameter: KEY=VALUE (repeatable)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Screen only rows dated up to this day (YYYY-MM-DD)."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV."),
    allow_short_list: bool = typer.Option(False, "--allow-short-list", help="Use a screening list that is empty or "
                                          "much shorter than the packaged one (refused otherwise: a truncated file?)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display or summary table."),
    reviews: Optional[Path] = typer.Option(None, "--reviews", help="Analysts' reviewed party decisions (CSV)."),
    backend: str = typer.Option("auto", "--backend", help="Where the running totals and fuzzy party scores run: "
                                "`auto` (running totals on a working CUDA GPU, party scores on the CPU; else all on "
                                "the CPU), `numpy`, or `cupy` (both on the GPU). Decisions are the same."),
) -> None:
    """Screen ledgers under one rule set; write decisions, quarantine and summary."""
    set_ = [*set_, *_check_screening_list(csl, allow_short_list)]
    as_of_date = _parse_date(as_of, "--as-of")
    if backend not in BACKENDS:
        _fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if reviews is not None:
        from pipeline.review import ReviewFileError, read_reviews

        try:
            read_reviews(reviews)
        except ReviewFileError as error:
            _fail(str(error))
        set_ = [*set_, f"parties.reviews_file={json.dumps(str(reviews))}"]
    if bool(ledgers) == (lake is not None):
        _fail("give ledger files or --lake DIR (one of them)")
    if lake is not None:
        _check_scheduler(scheduler)
        _library_logs(verbose=False)  # Dask's INFO logs would flood the console
    try:
        rules = load_policy(policy, set_)
        if lake is not None:
            summary = _run_lake_screen(lake, rules, out, as_of_date, csl, quiet, scheduler, workers, full, backend)
        else:
            summary = _run_screen(ledgers, rules, out, as_of_date, csl, quiet, backend).summary
    except (PolicyError, LedgerReadError, OverflowError, RuntimeError, ScreeningListError) as error:
        _fail(str(error))
    if not quiet:
        print_summary(summary)
    if lake is not None:
        run = summary["lake"]
        console.print(f"lake generation {run['generation']}: {run['run']} ({run['why']}); "
                      f"{summary['rows']['screened_this_run']:,} rows screened → {out}")
        return
    rows = summary["rows"]
    console.print(f"{rows['rows_read']:,} rows read, {rows['accepted']:,} screened, "
                  f"{rows['quarantined']:,} quarantined → {out}")


@app.command()
def audit(
    ledgers: list[Path] = typer.Argument(..., help="Ledger files with recorded_authorization on shipped rows, "
                                         "or one ledger lake folder."),
    policy: str = typer.Option(..., "--policy", "-p", help="Rule set to replay the history under."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    set_: list[str] = typer.Option([], "--set", help="Override a policy parameter: KEY=VALUE (repeatable)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Replay rows dated up to this day (YYYY-MM-DD)."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV."),
    allow_short_list: bool = typer.Option(False, "--allow-short-list", help="Use a screening list that is empty or "
                                          "much shorter than the packaged one (refused otherwise: a truncated file?)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Recompute a history under a rule set and list what should not have shipped."""
    set_ = [*set_, *_check_screening_list(csl, allow_short_list)]
    from pipeline.audit import audit_ledgers

    as_of_date = _parse_date(as_of, "--as-of")
    try:
        rules = load_policy(policy, set_)
        with _stages(quiet) as progress:
            result = audit_ledgers(ledgers, rules, out, as_of=as_of_date, csl_path=csl, progress=progress)
    except (PolicyError, LedgerReadError, OverflowError, RuntimeError, ScreeningListError) as error:
        _fail(str(error))
    found = result.summary["discrepancies"]
    if not quiet:
        print_summary(result.summary)
        table = Table(title="Discrepancies by kind", title_justify="left")
        table.add_column("kind")
        table.add_column("rows", justify="right")
        for kind, count in found["by_kind"].items():
            table.add_row(kind, f"{count:,}")
        out_console.print(table)
    console.print(f"{found['rows_with_discrepancies']:,} of {found['shipped_rows']:,} shipped rows have "
                  f"discrepancies → {out / 'discrepancies.parquet'}, {out / 'report.html'}")


@app.command()
def diff(
    ledgers: list[Path] = typer.Argument(..., help="Ledger files, or one ledger lake folder."),
    policy: list[str] = typer.Option(..., "--policy", "-p", help="Two rule sets: --policy A --policy B."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    set_: list[str] = typer.Option([], "--set", help="Override for the second rule set: KEY=VALUE (repeatable)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Compare rows dated up to this day (YYYY-MM-DD)."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV."),
    allow_short_list: bool = typer.Option(False, "--allow-short-list", help="Use a screening list that is empty or "
                                          "much shorter than the packaged one (refused otherwise: a truncated file?)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Screen the same rows under two rule sets and report how decisions move."""
    short_list = _check_screening_list(csl, allow_short_list)  # for both rule sets
    from pipeline.audit import diff_ledgers

    if len(policy) != 2:
        raise typer.BadParameter("give exactly two rule sets: --policy A --policy B", param_hint="--policy")
    as_of_date = _parse_date(as_of, "--as-of")
    try:
        first, second = load_policy(policy[0], short_list), load_policy(policy[1], [*set_, *short_list])
        with _stages(quiet) as progress:
            result = diff_ledgers(ledgers, first, second, out, as_of=as_of_date, csl_path=csl, progress=progress)
    except (PolicyError, LedgerReadError, OverflowError, ValueError, RuntimeError) as error:
        _fail(str(error))
    if not quiet:
        labels = result.summary["policies"]
        table = Table(title=f"Decisions: {labels[0]} (rows) → {labels[1]} (columns)", title_justify="left")
        table.add_column("from \\ to")
        for name in result.transitions.columns:
            table.add_column(name, justify="right")
        for name, row in result.transitions.iterrows():
            table.add_row(name, *[f"{int(v):,}" for v in row])
        out_console.print(table)
    console.print(f"{result.summary['changed_rows']:,} of {result.summary['rows']['accepted']:,} rows change "
                  f"→ {out / 'changes.parquet'}, {out / 'report.html'}")


@app.command()
def policies() -> None:
    """List the rule sets with their parameters."""
    try:
        rule_sets = list_policies()
    except PolicyError as error:
        _fail(str(error))
    for rules in rule_sets:
        table = Table(title=f"{rules.id} ({rules.framework}): {rules.params.get('title', '')}",
                      title_justify="left", show_header=True)
        table.add_column("parameter")
        table.add_column("value", overflow="fold")
        for key, value in _flatten(rules.params):
            if key not in ("id", "framework", "title"):
                table.add_row(key, value)
        out_console.print(table)


def _flatten(params: dict, prefix: str = ""):
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, name + ".")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value):
                yield from _flatten(item, f"{name}[{i}].")
        else:
            yield name, ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _generate(path: Path, rows: int, seed: int, bad_rows: int, chunk_rows: int, listed: bool, quiet: bool,
              after: Optional[Path] = None) -> dict:
    from pipeline.generate import generate_ledger, generate_next

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


def listed_party_names(count: int = 60, lists: tuple[str, ...] = ("EL", "UVL", "MEU", "SSI")) -> list[str]:
    """A deterministic sample of real screening-list names (deny and review lists alike), for
    synthetic consignee pools."""
    from pipeline.parties import PartyScreen

    entries = PartyScreen.from_path(CSL_PATH).entries
    per_list = max(1, count // len(lists))
    sample = []
    for code in lists:
        names = sorted(set(entries.loc[entries["list_code"] == code, "listed_name"]))
        step = max(1, len(names) // per_list)
        sample += names[::step][:per_list]
    return sample


@app.command()
def generate(
    out: Path = typer.Argument(..., help="Ledger file to write (.parquet, .csv or .jsonl)."),
    rows: int = typer.Option(1_000_000, "--rows", "-n", min=1, help="Valid rows to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same file."),
    bad_rows: int = typer.Option(0, "--bad-rows", min=0, help="Malformed rows to mix in."),
    chunk_rows: int = typer.Option(1_000_000, "--chunk-rows", min=1000, help="Rows per written chunk."),
    listed: bool = typer.Option(True, "--listed/--no-listed", help="Use some real CSL names as consignees."),
    after: Optional[Path] = typer.Option(
        None, "--after", help="Continue this ledger (.parquet, .csv or .jsonl): the next night, dated after its "
                              "last row, new ids, its consignees (--listed does not apply)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Write a synthetic shipment ledger (deterministic by seed)."""
    if seed < 0:
        _fail("--seed must be non-negative")
    try:
        stats = _generate(out, rows, seed, bad_rows, chunk_rows, listed, quiet, after)
    except (LedgerReadError, ValueError) as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write {out}: {error}")
    if after is not None:
        console.print(f"wrote {stats['rows']:,} rows to {out}: {stats['first_date']}..{stats['last_date']} "
                      f"({stats['shipped']:,} shipped, {stats['pending']:,} pending), ids from {stats['first_id']}, "
                      f"after {after}'s last date {stats['after_last_date']}")
        return
    console.print(f"wrote {stats.get('rows', rows):,} rows to {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", "-o", help="Output folder."),
    rows: int = typer.Option(200_000, "--rows", "-n", min=1000, help="Rows in the sample ledger."),
    seed: int = typer.Option(2025, "--seed"),
) -> None:
    """Generate a sample ledger, screen it under every rule set and print the summaries."""
    out.mkdir(parents=True, exist_ok=True)
    ledger = out / "ledger.parquet"
    _generate(ledger, rows, seed, max(10, rows // 5000), 100_000, True, False)
    console.print(f"sample ledger: {ledger}")
    for rules in list_policies():
        console.rule(f"[bold]{rules.id}")
        try:
            result = _run_screen([ledger], rules, out / rules.id, None, CSL_PATH, False)
        except (LedgerReadError, RuntimeError) as error:  # e.g. a folder left by an older version
            _fail(str(error))
        print_summary(result.summary)
        console.print(f"outputs: {out / rules.id}")


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
        out_console.print(f"this run screened {rows['screened_this_run']:,} of them (decisions below); cap headroom "
                          "and LPP are of the whole history")
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


@app.command()
def ingest(
    ledgers: list[Path] = typer.Argument(..., help="Ledger files: .parquet, .csv or .jsonl."),
    lake: Path = typer.Option(..., "--lake", help="Lake folder (created when absent)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Validate ledgers into a time-partitioned Parquet lake (idempotent; atomic)."""
    from pipeline.lake import LakeError
    from pipeline.lake import ingest as ingest_ledgers

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        try:
            report = ingest_ledgers(ledgers, lake, progress=progress)
        except (LedgerReadError, LakeError) as error:
            _fail(str(error))
    counts = report.counts
    console.print(f"{counts['rows_read']:,} rows read = {counts['accepted']:,} added "
                  f"({counts['superseded']:,} superseding pending rows) + {counts['duplicates']:,} already in "
                  f"the lake + {counts['quarantined']:,} quarantined ({counts['quarantine_added']:,} new)")
    for reason, count in counts["by_reason"].items():
        console.print(f"  quarantined: {count:,} × {reason}")
    state = (f"generation {report.generation}, {len(report.partitions_written)} partition(s) written"
             if report.committed else f"unchanged (generation {report.generation})")
    console.print(f"lake {lake}: {state} in {report.seconds:.1f} s")


PREFECT_QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                 "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
"""Prefect settings for an offline, embedded run (each is kept when already set)."""

LIBRARY_LOGGERS = ("prefect", "distributed", "dask", "httpx", "httpcore", "uvicorn", "fastapi", "asyncio",
                   "tornado", "bokeh", "fsspec", "sqlalchemy", "aiosqlite", "alembic", "docket", "urllib3")
"""Third-party loggers ``nightly`` keeps at WARNING unless ``--verbose``."""
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
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if verbose:
            if name in _saved_levels:
                logger.setLevel(_saved_levels.pop(name))
        else:
            _saved_levels.setdefault(name, logger.level)
            logger.setLevel(logging.WARNING)
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        logger.removeFilter(_NoTraceback)
        if not verbose:
            logger.addFilter(_NoTraceback)


@app.command()
def nightly(
    ledgers: Optional[list[Path]] = typer.Argument(None, help="Tonight's ledger files (none: screen what is new)."),
    lake: Path = typer.Option(..., "--lake", help="Ledger lake folder (created when absent)."),
    out: Path = typer.Option(..., "--out", "-o", help="Published results: switched to the new run when it succeeds."),
    policy: str = typer.Option("post-rescission-2025", "--policy", "-p", help="Rule-set id."),
    set_: list[str] = typer.Option([], "--set", help="Override a policy parameter: KEY=VALUE (repeatable)."),
    csl_source: Optional[Path] = typer.Option(None, "--csl-source", help="A newly downloaded screening list to use."),
    allow_short_list: bool = typer.Option(False, "--allow-short-list", help="Use a screening list that is empty or "
                                          "much shorter than the packaged one (refused otherwise: a truncated file?)."),
    inbox: Optional[Path] = typer.Option(None, "--inbox", help="Also ingest every ledger file in this folder."),
    scheduler: str = typer.Option("local", "--scheduler", help="`local` (Dask LocalCluster), `none` or an address."),
    workers: Optional[int] = typer.Option(None, "--workers", help="LocalCluster worker processes."),
    backend: str = typer.Option("auto", "--backend", help="`auto` (a working GPU, else the CPU), `numpy` or `cupy`."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's and Dask's INFO logs and tracebacks."),
) -> None:
    """Run the nightly Prefect flow once, embedded (no server): ingest, refresh, screen, publish."""
    set_ = [*set_, *_check_screening_list(csl_source or CSL_PATH, allow_short_list)]
    import os

    for key, value in PREFECT_QUIET.items():
        os.environ.setdefault(key, value)
    _check_scheduler(scheduler)
    from pipeline.publish import PublishError, check_destination

    try:  # before Prefect starts: a refused --out is a quick error
        check_destination(out, [lake])
    except PublishError as error:
        _fail(str(error))
    from flows.nightly import nightly_screen

    _library_logs(verbose)
    try:
        load_policy(policy, set_)
        summary = nightly_screen([str(p) for p in ledgers or []], str(lake), str(out), policy=policy,
                                 overrides=list(set_), csl_source=str(csl_source) if csl_source else None,
                                 scheduler=scheduler, workers=workers, inbox=str(inbox) if inbox else None,
                                 backend=backend)
    except (PolicyError, LedgerReadError, OverflowError, RuntimeError, ValueError) as error:
        _fail(str(error))
    run = summary["lake"]
    console.print(f"nightly: {run['run']} ({run['why']}); {summary['rows']['screened_this_run']:,} rows screened, "
                  f"{summary['decisions'].get('DENIED', 0):,} denied, {summary['decisions'].get('REVIEW', 0):,} "
                  f"held for review → {out}")


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
    from pipeline.parties import PartyScreen, ScreeningListError, check_list_size

    try:
        check_list_size(PartyScreen.from_path(csl).entries, allow_short_list)
    except ScreeningListError as error:
        _fail(str(error))
    return [ALLOW_SHORT_LIST] if allow_short_list else []


# --- restricted-party matching (issue 4) -------------------------------------------------------------
@app.command("match-names")
def match_names(
    pairs: Path = typer.Option(..., "--pairs", help="CSV with `query` and `candidate` columns (other columns kept)."),
    out: Path = typer.Option(..., "--out", "-o", help="CSV to write: the input rows, in order, plus score and outcome."),
    policy: str = typer.Option("ai-diffusion-2025", "--policy", "-p", help="Rule set whose [parties] thresholds apply."),
    block: Optional[float] = typer.Option(None, "--block", min=0.0, max=1.0, help="Block threshold (default: the policy's)."),
    review: Optional[float] = typer.Option(None, "--review", min=0.0, max=1.0, help="Review threshold (default: the policy's)."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV (token weights)."),
    backend: str = typer.Option("auto", "--backend", help="Where the pairs are scored: `auto` and `numpy` (the "
                                "CPU), or `cupy` (a CUDA GPU). Scores are the same."),
) -> None:
    """Score name pairs: write each with `score` in [0, 1] and `outcome` (block, review or clear)."""
    import numpy as np
    import pandas as pd

    from kernels.backend import BackendUnavailableError, select_backend
    from pipeline.parties import PartyScreen, ScreeningListError
    from pipeline.report import write_csv

    if backend not in BACKENDS:
        _fail(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    try:
        scorer = select_backend(backend)
    except BackendUnavailableError as error:
        _fail(str(error))

    try:
        rules = load_policy(policy)
        frame = pd.read_csv(pairs, dtype=str, keep_default_na=False)
    except PolicyError as error:
        _fail(str(error))
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        _fail(f"cannot read pairs file {pairs}: {error}")
    missing = [column for column in ("query", "candidate") if column not in frame.columns]
    if missing:
        _fail(f"{pairs}: missing columns {missing} (need query,candidate)")
    block_score = rules.get("parties.block_score") if block is None else block
    review_score = rules.get("parties.review_score") if review is None else review
    if review_score > block_score:
        _fail(f"review threshold {review_score} is above block threshold {block_score}")
    try:
        scores = PartyScreen.from_path(csl).pair_scores(frame["query"].tolist(), frame["candidate"].tolist(),
                                                        backend=scorer)
    except ScreeningListError as error:
        _fail(str(error))
    frame["score"] = np.round(scores, 6)
    frame["outcome"] = np.where(scores >= block_score, "block", np.where(scores >= review_score, "review", "clear"))
    try:
        write_csv(frame, out)  # formulas neutralised, as in the reports' CSV exports
    except OSError as error:
        _fail(f"cannot write {out}: {error.strerror or error}")
    counts = frame["outcome"].value_counts()
    console.print(f"{len(frame):,} pairs → {out}: " + ", ".join(f"{counts.get(k, 0):,} {k}" for k in ("block", "review", "clear")))


@app.command("review-party")
def review_party(
    reviews: Path = typer.Option(..., "--reviews", help="Reviewed-decisions CSV (created when absent)."),
    party: str = typer.Option(..., "--party", help="Consignee name as in the ledger."),
    entry_id: str = typer.Option(..., "--entry", help="CSL entry id (party_entry_id of parties.parquet)."),
    decision: str = typer.Option(..., "--decision", help="clear (false positive) or confirm (true match)."),
    analyst: str = typer.Option(..., "--analyst", help="Who decides."),
    reason: str = typer.Option(..., "--reason", help="Why."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV."),
    only_this_entry: bool = typer.Option(False, "--only-this-entry", help="Record the decision for this entry "
                                         "alone, not for the other entries listed under the same name."),
) -> None:
    """Record an analyst's decision on a party match (appended, with each entry's fingerprint).

    The lists publish some parties as many entries under one name (one per address, or on
    several lists): the decision covers every entry whose listed name normalizes the same, each
    recorded with its own fingerprint, unless --only-this-entry.
    """
    from pipeline.parties import PartyScreen, ScreeningListError
    from pipeline.review import DECISIONS, Review, append_review

    if decision not in DECISIONS:
        _fail(f"--decision must be one of {DECISIONS}")
    try:
        screen = PartyScreen.from_path(csl)
    except ScreeningListError as error:
        _fail(str(error))
    fingerprints = screen.fingerprints()
    if entry_id not in fingerprints:
        _fail(f"no entry {entry_id!r} in {csl}")
    entries = screen.entries
    chosen = [entry_id]
    if not only_this_entry:
        from pipeline.parties import normalize_name

        listed = entries["listed_name"].map(normalize_name)
        name = listed[entries["entry_id"] == entry_id].iloc[0]
        chosen = list(dict.fromkeys([entry_id] + entries.loc[listed == name, "entry_id"].tolist()))
    when = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    for entry in chosen:
        append_review(reviews, Review(party, entry, decision, analyst, when, reason, fingerprints[entry]))
    console.print(f"{decision} {party!r} / {entry_id}" + (f" and {len(chosen) - 1} other entries listed under the "
                                                          "same name" if len(chosen) > 1 else "")
                  + f" recorded in {reviews}")


lake_app = typer.Typer(help="Look after a ledger lake (see `chipscreen ingest`).", no_args_is_help=True)
app.add_typer(lake_app, name="lake")


@lake_app.command("verify")
def lake_verify(lake: Path = typer.Argument(..., help="Lake folder.")) -> None:
    """Check every partition, index and quarantine file of a lake against its manifest (SHA-256)."""
    from pipeline.lake import LakeError
    from pipeline.lake import verify

    try:
        result = verify(lake)
    except LakeError as error:
        _fail(str(error))
    total = len(result.verified) + len(result.bad)
    if result.bad:
        for path, problem in result.bad:
            out_console.print(f"{path}: {problem}", markup=False, highlight=False)
        _fail(f"{len(result.bad)} of {total} files of {lake} (generation {result.generation}) do not match "
              "the manifest; restore them from a backup, or ingest the source ledgers into a new lake")
    note = f" ({len(result.unchecked)} id indexes without a recorded SHA-256: row counts checked)" \
        if result.unchecked else ""
    out_console.print(f"{total} files verified (lake generation {result.generation}){note}", highlight=False)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
