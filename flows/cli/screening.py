"""Commands that screen: ``screen``, ``audit``, ``diff``, ``demo``, and ``policies``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from flows.cli.base import (
    BACKEND_HELP,
    _check_backend,
    _check_scheduler,
    _check_screening_list,
    _fail,
    _generate,
    _library_logs,
    LICENSES_OPTION,
    OWNERSHIP_OPTION,
    _license_register,
    _ownership,
    _parse_date,
    _run_lake_screen,
    _run_screen,
    _stages,
    app,
    console,
    out_console,
    print_summary,
)
from pipeline.ingest import LedgerReadError
from pipeline.parties import ScreeningListError
from pipeline.policy import PolicyError, list_policies, load_policy
from pipeline.lake.store import is_url
from pipeline.reference import CSL_PATH


@app.command()
def screen(
    ledgers: Optional[list[Path]] = typer.Argument(None, help="Ledger files: .parquet, .csv or .jsonl."),
    policy: str = typer.Option(..., "--policy", "-p", help="Rule-set id (see `chipscreen policies`) or a TOML file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    lake: Optional[str] = typer.Option(None, "--lake", help="Screen a ledger lake (see `chipscreen ingest`) "
                                       "instead of files; incremental from its checkpoint. A folder, or a URL "
                                       "(s3://BUCKET/PREFIX; gs://, abfs:// with gcsfs, adlfs)."),
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
    licenses: Optional[Path] = LICENSES_OPTION,
    ownership: Optional[Path] = OWNERSHIP_OPTION,
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    piece_rows: Optional[int] = typer.Option(None, "--piece-rows", min=1,
                                             help="Ledger files: screen this many rows at a time, writing each "
                                             "piece's decisions as it finishes (default 2,000,000)."),
) -> None:
    """Screen ledgers under one rule set; write decisions, quarantine and summary."""
    set_ = [*set_, *_check_screening_list(csl, allow_short_list), *_license_register(licenses), *_ownership(ownership)]
    as_of_date = _parse_date(as_of, "--as-of")
    _check_backend(backend)
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
            summary = _run_screen(ledgers, rules, out, as_of_date, csl, quiet, backend, piece_rows).summary
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
    ledgers: list[str] = typer.Argument(..., help="Ledger files with recorded_authorization on shipped rows, "
                                        "or one ledger lake: a folder or a URL (s3://BUCKET/PREFIX)."),
    policy: str = typer.Option(..., "--policy", "-p", help="Rule set to replay the history under."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    set_: list[str] = typer.Option([], "--set", help="Override a policy parameter: KEY=VALUE (repeatable)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Replay rows dated up to this day (YYYY-MM-DD)."),
    csl: Path = typer.Option(CSL_PATH, "--csl", help="Consolidated Screening List CSV."),
    allow_short_list: bool = typer.Option(False, "--allow-short-list", help="Use a screening list that is empty or "
                                          "much shorter than the packaged one (refused otherwise: a truncated file?)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    licenses: Optional[Path] = LICENSES_OPTION,
    ownership: Optional[Path] = OWNERSHIP_OPTION,
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
) -> None:
    """Recompute a history under a rule set and list what should not have shipped."""
    set_ = [*set_, *_check_screening_list(csl, allow_short_list), *_license_register(licenses), *_ownership(ownership)]
    from pipeline.audit import audit_ledgers

    as_of_date = _parse_date(as_of, "--as-of")
    _check_backend(backend)
    try:
        rules = load_policy(policy, set_)
        with _stages(quiet) as progress:
            result = audit_ledgers([p if is_url(p) else Path(p) for p in ledgers], rules, out, as_of=as_of_date,
                                   csl_path=csl, progress=progress, backend=backend)
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
    licenses: Optional[Path] = LICENSES_OPTION,
    ownership: Optional[Path] = OWNERSHIP_OPTION,
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
) -> None:
    """Screen the same rows under two rule sets and report how decisions move."""
    short_list = [*_check_screening_list(csl, allow_short_list), *_license_register(licenses)]  # for both
    from pipeline.audit import diff_ledgers

    if len(policy) != 2:
        raise typer.BadParameter("give exactly two rule sets: --policy A --policy B", param_hint="--policy")
    as_of_date = _parse_date(as_of, "--as-of")
    _check_backend(backend)
    try:
        # The ownership file goes to the rule sets that have the Affiliates rule (in-force).
        owned = [load_policy(p).params.get("affiliates") is not None for p in policy]
        if ownership is not None and not any(owned):
            _fail("--ownership needs a rule set with the Affiliates rule (in-force)")
        first = load_policy(policy[0], [*short_list, *(_ownership(ownership) if owned[0] else [])])
        second = load_policy(policy[1], [*set_, *short_list, *(_ownership(ownership) if owned[1] else [])])
        with _stages(quiet) as progress:
            result = diff_ledgers(ledgers, first, second, out, as_of=as_of_date, csl_path=csl, progress=progress,
                                  backend=backend)
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
def policies(
    rule_set: Optional[str] = typer.Argument(None, metavar="[RULE_SET]",
                                             help="Show one rule set (with its timeline); all when omitted."),
) -> None:
    """List the rule sets with their parameters; for a dated rule set, which component applies when."""
    try:
        rule_sets = [load_policy(rule_set)] if rule_set else list_policies()
    except PolicyError as error:
        _fail(str(error))
    for rules in rule_sets:
        timeline = rules.timeline()
        if timeline:
            table = Table(title=f"{rules.id}: rules in force by ship date (timeline from "
                                f"{rules.params['timeline_start']})", title_justify="left")
            for column in ("from", "until", "component", "title", "status"):
                table.add_column(column, overflow="fold")
            for item in timeline:
                table.add_row(item["from"] or "—", item["until"] or "—", item["component"], item["title"],
                              item["status"] or "")
            out_console.print(table)
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


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", "-o", help="Output folder."),
    rows: int = typer.Option(200_000, "--rows", "-n", min=1000, help="Rows in the sample ledger."),
    seed: int = typer.Option(2025, "--seed"),
    licenses: Optional[Path] = typer.Option(None, "--licenses", help="A license register to add to the generated "
                                            "one (its licenses get a few sample lines each), e.g. "
                                            "data/licenses-example.csv."),
) -> None:
    """Generate a sample ledger, its license register and an ownership graph around it, screen it under every
    rule set and print the summaries."""
    import pandas as pd

    from pipeline.generate import generate_ownership, generate_register
    from pipeline.licenses import LicenseRegisterError, read_register

    out.mkdir(parents=True, exist_ok=True)
    ledger = out / "ledger.parquet"
    _generate(ledger, rows, seed, max(10, rows // 5000), 100_000, True, False)
    register = out / "licenses.csv"
    generate_register(ledger, register, seed=seed)
    ledgers = [ledger]
    if licenses is not None:
        try:
            extra = read_register(licenses)
        except LicenseRegisterError as error:
            _fail(str(error))
        frames = [pd.read_csv(register, dtype=str, keep_default_na=False),
                  pd.read_csv(licenses, dtype=str, keep_default_na=False)]
        pd.concat(frames, ignore_index=True).to_csv(register, index=False)
        ledgers.append(_lines_for(extra, out / "licensed-lines.csv"))
    ownership = out / "ownership.csv"
    generate_ownership(ownership, ledger=ledger, seed=seed)
    console.print(f"sample ledger: {', '.join(map(str, ledgers))}; license register: {register}; "
                  f"ownership: {ownership}")
    for rules in list_policies():
        console.rule(f"[bold]{rules.id}")
        try:
            extra = [f"licenses.register={json.dumps(str(register.resolve()))}"]
            if rules.params.get("affiliates") is not None:  # the dated rule set has the Affiliates rule
                extra.append(f"affiliates.ownership={json.dumps(str(ownership.resolve()))}")
            rules = load_policy(rules.id, extra)
            result = _run_screen(ledgers, rules, out / rules.id, None, CSL_PATH, False)
        except (LedgerReadError, RuntimeError, PolicyError) as error:  # e.g. a folder left by an older version
            _fail(str(error))
        print_summary(result.summary)
        console.print(f"outputs: {out / rules.id}")


def _lines_for(register, path: Path) -> Path:
    """Sample lines drawing on each license of ``register``: monthly shipments from its first valid
    day of its first SKU (or the GB300) to its consignee, the last ones past its maximum."""
    from pipeline.generate import licensed_lines

    licensed_lines(register, path)
    return path
