"""Commands that make and keep ledgers: ``generate``, ``generate-ownership``, ``ingest``, ``nightly``,
``lake verify``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.cli.base import (
    PREFECT_QUIET,
    _check_scheduler,
    _check_screening_list,
    _fail,
    _generate,
    _library_logs,
    LICENSES_OPTION,
    OWNERSHIP_OPTION,
    _license_register,
    _ownership,
    app,
    console,
    out_console,
)
from pipeline.ingest import LedgerReadError
from pipeline.policy import PolicyError, load_policy
from pipeline.reference import CSL_PATH


LEDGER_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")
"""Ledger files ``generate`` writes (the format follows the extension)."""
REGISTER_SUFFIXES = (".csv", ".parquet", ".pq")
"""License registers ``generate --licenses-out`` writes (:data:`pipeline.licenses.REGISTER_SUFFIXES`)."""


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
    licenses_out: Optional[Path] = typer.Option(
        None, "--licenses-out", help="Also write a license register (.csv or .parquet) for the ledger's license ids, "
                                     "with every branch of the license checks: most licenses cover their lines, some "
                                     "run out, some are expired or not yet valid, some out of scope, a few ids left "
                                     "out (deterministic by seed)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Write a synthetic shipment ledger (deterministic by seed)."""
    if seed < 0:
        _fail("--seed must be non-negative")
    from pipeline.publish import PublishError, check_output_file

    try:  # never over an input, into a lake, over a folder, or under a name of another format
        check_output_file(out, [after], suffixes=LEDGER_SUFFIXES, what="generate: output")
        if licenses_out is not None:  # nor over the ledger it is made from
            check_output_file(licenses_out, [after, out], suffixes=REGISTER_SUFFIXES, what="generate: --licenses-out")
    except PublishError as error:
        _fail(str(error))
    try:
        stats = _generate(out, rows, seed, bad_rows, chunk_rows, listed, quiet, after)
    except (LedgerReadError, ValueError) as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write {out}: {error}")
    register = None
    if licenses_out is not None:
        from pipeline.generate import generate_register

        try:
            register = generate_register(out, licenses_out, seed=seed)
        except (LedgerReadError, ValueError) as error:
            _fail(str(error))
        except OSError as error:
            _fail(f"cannot write {licenses_out}: {error}")
    if quiet:
        return
    if after is not None:
        console.print(f"wrote {stats['rows']:,} rows to {out}: {stats['first_date']}..{stats['last_date']} "
                      f"({stats['shipped']:,} shipped, {stats['pending']:,} pending), ids from {stats['first_id']}, "
                      f"after {after}'s last date {stats['after_last_date']}")
    else:
        console.print(f"wrote {stats.get('rows', rows):,} rows to {out}")
    if register is not None:
        b = register["branches"]
        console.print(f"wrote {register['licenses']:,} licenses to {licenses_out} for {register['license_ids']:,} "
                      f"license ids: {b['covered']:,} covering their lines, "
                      f"{b['exhausted_units'] + b['exhausted_tpp']:,} running out, "
                      f"{b['expired'] + b['not_yet_valid']:,} outside their window, "
                      f"{sum(v for k, v in b.items() if k.startswith('out_of_scope')):,} out of scope, "
                      f"{b['unknown']:,} ids left out")


OWNERSHIP_SUFFIXES = (".csv", ".parquet")
"""Ownership files ``generate-ownership`` writes (the format follows the extension)."""


@app.command("generate-ownership")
def generate_ownership(
    out: Path = typer.Argument(..., help="Ownership file to write (.csv or .parquet)."),
    ledger: Optional[Path] = typer.Option(
        None, "--ledger", help="A ledger (.parquet, .csv or .jsonl, e.g. from `chipscreen generate`): some of its "
                               "consignees become owned by listed parties (affiliates, minority stakes) or decoys, "
                               "so screening it with the file finds them."),
    holdings: int = typer.Option(2000, "--holdings", "-n", min=1, help="Valid holdings to write (at least the "
                                 "structures' minimum, about 450)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same file."),
    bad_rows: int = typer.Option(0, "--bad-rows", min=0, help="Bad rows to mix in (self-ownership, percent 0, 120, "
                                 "'abc' or 12.345, no owner, an entity held over 100%), for quarantine tests."),
) -> None:
    """Write a synthetic ownership graph around the real screening list (deterministic by seed): chains,
    aggregation, fan-out, cycles, decoys, minority and dated stakes among EL, MEU and SDN names."""
    if seed < 0:
        _fail("--seed must be non-negative")
    from pipeline.publish import PublishError, check_output_file

    try:  # never over the ledger, into a lake, over a folder, or under a name of another format
        check_output_file(out, [ledger], suffixes=OWNERSHIP_SUFFIXES, what="generate-ownership: output")
    except PublishError as error:
        _fail(str(error))
    from pipeline.generate import generate_ownership as generate_graph
    from pipeline.generate.ownership import CHECK_DATES

    try:
        stats = generate_graph(out, ledger=ledger, holdings=holdings, seed=seed, bad_rows=bad_rows)
    except (LedgerReadError, ValueError) as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write {out}: {error}")
    s = stats["structures"]
    cycles = s["cycle_listed"] + s["cycle_unlisted"] + s["cycle_decoy"]
    decoys = s["decoy_40"] + s["decoy_4999"] + s["decoy_parent"] + s["cycle_decoy"]
    line = (f"wrote {stats['holdings']:,} holdings among {stats['entities']:,} entities "
            f"({stats['listed_owners']:,} listed owners) to {out}: {s['chain']:,} chains (up to "
            f"{stats['longest_chain']} levels), {s['aggregation'] + s['aggregation_affiliate']:,} aggregations, "
            f"{s['fan_out']:,} fan-outs, {cycles:,} cycles, {decoys:,} decoys, {s['minority']:,} minority and "
            f"{s['dated_2025'] + s['dated_2026']:,} dated stakes; {stats['affiliates'][CHECK_DATES[0]]:,} "
            f"affiliates expected on {CHECK_DATES[0]}")
    if ledger is not None:
        line += (f"; {stats['ledger_consignees']:,} consignees of {ledger} placed: "
                 f"{len(stats['ledger_affiliates']) + len(stats['ledger_dated']):,} affiliates "
                 f"({len(stats['ledger_dated']):,} dated), {len(stats['ledger_minority']):,} minority, "
                 f"{len(stats['ledger_decoys']):,} decoys")
    if bad_rows:
        line += f"; {stats['expected_quarantined']:,} bad rows"
    console.print(line, markup=False, highlight=False)


@app.command()
def ingest(
    ledgers: list[Path] = typer.Argument(..., help="Ledger files: .parquet, .csv or .jsonl."),
    lake: str = typer.Option(..., "--lake", help="Lake: a folder or an s3:// URL (created when absent)."),
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


@app.command()
def nightly(
    ledgers: Optional[list[Path]] = typer.Argument(None, help="Tonight's ledger files (none: screen what is new)."),
    lake: str = typer.Option(..., "--lake", help="Ledger lake: a folder or an s3:// URL (created when absent)."),
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
    licenses: Optional[Path] = LICENSES_OPTION,
    ownership: Optional[Path] = OWNERSHIP_OPTION,
) -> None:
    """Run the nightly Prefect flow once, embedded (no server): ingest, refresh, screen, publish."""
    set_ = [*set_, *_check_screening_list(csl_source or CSL_PATH, allow_short_list), *_license_register(licenses), *_ownership(ownership)]
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


lake_app = typer.Typer(help="Look after a ledger lake (see `chipscreen ingest`).", no_args_is_help=True)
app.add_typer(lake_app, name="lake")


@lake_app.command("verify")
def lake_verify(lake: str = typer.Argument(..., help="Lake folder, or its URL (s3://BUCKET/PREFIX).")) -> None:
    """Check every partition, index and quarantine file of a lake against its manifest (SHA-256)."""
    from pipeline.lake import LakeError, verify

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
