"""Commands for restricted-party analysts: ``match-names`` and ``review-party``."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from flows.cli.base import (
    _check_backend,
    _fail,
    app,
    console,
)
from pipeline.parties import ScreeningListError
from pipeline.policy import PolicyError, load_policy
from pipeline.reference import CSL_PATH


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
    from pipeline.parties import PartyScreen
    from pipeline.report import write_csv

    from pipeline.publish import PublishError, check_output_file

    _check_backend(backend)
    try:  # never over the pairs, the screening list, a folder or into a lake
        check_output_file(out, [pairs, csl], what="--out")
    except PublishError as error:
        _fail(str(error))
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
    from pipeline.parties import PartyScreen
    from pipeline.review import DECISIONS, Review, ReviewFileError, append_review, check_reviews_file

    if decision not in DECISIONS:
        _fail(f"--decision must be one of {DECISIONS}")
    for option, value in (("--party", party), ("--entry", entry_id), ("--analyst", analyst), ("--reason", reason)):
        if not value.strip():
            _fail(f"{option} is empty; a reviewed decision needs it")
    try:  # before anything is appended: a file `screen` would refuse is left as it is
        check_reviews_file(reviews)
    except ReviewFileError as error:
        _fail(str(error))
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
    try:
        for entry in chosen:
            append_review(reviews, Review(party, entry, decision, analyst, when, reason, fingerprints[entry]))
    except ReviewFileError as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write reviews file {reviews}: {error.strerror or error}")
    console.print(f"{decision} {party!r} / {entry_id}" + (f" and {len(chosen) - 1} other entries listed under the "
                                                          "same name" if len(chosen) > 1 else "")
                  + f" recorded in {reviews}")
