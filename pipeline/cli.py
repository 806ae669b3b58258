"""The ``chipscreen`` command line."""
from __future__ import annotations

import datetime as dt
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.ingest import LedgerReadError
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


def _run_screen(ledgers, policy, out, as_of, csl, quiet):
    from pipeline.screen import screen_ledgers  # heavy imports only when screening

    with _stages(quiet) as progress:
        return screen_ledgers(ledgers, policy, out, as_of=as_of, csl_path=csl, progress=progress)


@app.command()
def screen(
    ledgers: list[Path] = typer.Argument(..., help="Ledger files: .parquet, .csv or .jsonl."),
    policy: str = typer.Option(..., "--policy", "-p", help="Rule-set id (see `chipscreen policies`) or a TOML file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    set_: list[str] = typer.Option([], "--set", help="Override a policy parameter: KEY=VALUE (repeatable)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Screen only rows dated up to this day (YYYY-MM-DD)."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display or summary table."),
) -> None:
    """Screen ledgers under one rule set; write decisions, quarantine and summary."""
    as_of_date = _parse_date(as_of, "--as-of")
    try:
        rules = load_policy(policy, set_)
        result = _run_screen(ledgers, rules, out, as_of_date, csl, quiet)
    except (PolicyError, LedgerReadError, OverflowError) as error:
        _fail(str(error))
    if not quiet:
        print_summary(result.summary)
    rows = result.summary["rows"]
    console.print(f"{rows['rows_read']:,} rows read, {rows['accepted']:,} screened, "
                  f"{rows['quarantined']:,} quarantined → {out}")


@app.command()
def audit(
    ledgers: list[Path] = typer.Argument(..., help="Ledger files with recorded_authorization on shipped rows."),
    policy: str = typer.Option(..., "--policy", "-p", help="Rule set to replay the history under."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    set_: list[str] = typer.Option([], "--set", help="Override a policy parameter: KEY=VALUE (repeatable)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Replay rows dated up to this day (YYYY-MM-DD)."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Recompute a history under a rule set and list what should not have shipped."""
    from pipeline.audit import audit_ledgers

    as_of_date = _parse_date(as_of, "--as-of")
    try:
        rules = load_policy(policy, set_)
        with _stages(quiet) as progress:
            result = audit_ledgers(ledgers, rules, out, as_of=as_of_date, csl_path=csl, progress=progress)
    except (PolicyError, LedgerReadError, OverflowError) as error:
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
    ledgers: list[Path] = typer.Argument(..., help="Ledger files."),
    policy: list[str] = typer.Option(..., "--policy", "-p", help="Two rule sets: --policy A --policy B."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    set_: list[str] = typer.Option([], "--set", help="Override for the second rule set: KEY=VALUE (repeatable)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Compare rows dated up to this day (YYYY-MM-DD)."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Screen the same rows under two rule sets and report how decisions move."""
    from pipeline.audit import diff_ledgers

    if len(policy) != 2:
        raise typer.BadParameter("give exactly two rule sets: --policy A --policy B", param_hint="--policy")
    as_of_date = _parse_date(as_of, "--as-of")
    try:
        first, second = load_policy(policy[0]), load_policy(policy[1], set_)
        with _stages(quiet) as progress:
            result = diff_ledgers(ledgers, first, second, out, as_of=as_of_date, csl_path=csl, progress=progress)
    except (PolicyError, LedgerReadError, OverflowError, ValueError) as error:
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


def _generate(path: Path, rows: int, seed: int, bad_rows: int, chunk_rows: int, listed: bool, quiet: bool) -> dict:
    from pipeline.generate import generate_ledger

    names = listed_party_names() if listed else ()
    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("rows", total=rows + bad_rows)
        return generate_ledger(path, rows, seed=seed, bad_rows=bad_rows, chunk_rows=chunk_rows,
                               listed_names=names, progress=lambda done: bar.update(task, completed=done))


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
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Write a synthetic shipment ledger (deterministic by seed)."""
    stats = _generate(out, rows, seed, bad_rows, chunk_rows, listed, quiet)
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
        result = _run_screen([ledger], rules, out / rules.id, None, CSL_PATH, False)
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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
