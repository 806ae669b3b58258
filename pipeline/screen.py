"""The screening job: ingest → parties → enrich → kernels → decide → outputs.

Writes ``decisions.parquet``, ``quarantine.parquet``, ``parties.parquet``, ``summary.json`` and
``report.html`` (DESIGN §3) into a run folder published all at once (:mod:`pipeline.publish`).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kernels import TotalsOverflowError, warm_up
from kernels.backend import Backend, select_backend
from pipeline import __version__
from pipeline.carry import Carry
from pipeline.decide import AUTHORIZATIONS, DECISIONS, Decisions, decide
from pipeline.enrich import Features, build_features, codes_and_values
from pipeline.ingest import Ledger, file_digest, read_ledgers
from pipeline.parties import PartyScreen
from pipeline.policy import Policy
from pipeline.reference import CATALOG_PATH, CSL_PATH
from pipeline.tally import Tally

BACKEND = "numpy"


@dataclass
class ScreenResult:
    """What one screening run produced.

    Attributes
    ----------
    decisions : pyarrow.Table
        One row per accepted ledger row, in screening order.
    quarantine : pyarrow.Table
    summary : dict
        The content of ``summary.json``.
    ledger : Ledger
        The validated rows behind the decisions (for audits and reports).
    outcome : Decisions
        The per-row arrays behind the decisions table (keys, totals, allocations).
    tally : Tally
        The counts behind the summary and the report's charts.
    parties : pandas.DataFrame
        Party results of the distinct consignees (``parties.parquet``).
    """

    decisions: pa.Table
    quarantine: pa.Table
    summary: dict
    ledger: Ledger | None = None
    outcome: Decisions | None = None
    tally: Tally | None = None
    parties: pd.DataFrame | None = None


class _Timer:
    def __init__(self, progress: Callable[[str], None] | None):
        self.timings: dict[str, float] = {}
        self.progress = progress or (lambda message: None)

    @contextmanager
    def stage(self, name: str):
        self.progress(name)
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 4)


def _labels(codes: np.ndarray, names: Sequence[str | None]) -> pa.DictionaryArray:
    present = [n for n in names if n is not None]
    shift = len(names) - len(present)  # a leading None means "no value" (code 0)
    indices = pa.array(codes.astype(np.int32) - shift, mask=codes < shift)
    return pa.DictionaryArray.from_arrays(indices, pa.array(present, pa.string()))


def _per_name(values: pd.Series, name_codes: np.ndarray) -> pa.DictionaryArray:
    """Gather a per-name value to rows as a dictionary column (null where the name has none)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    per_row = codes.astype(np.int32)[name_codes]
    return pa.DictionaryArray.from_arrays(pa.array(per_row, mask=per_row < 0),
                                          pa.array(list(uniques), pa.string()))


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.int64(), mask=values < 0)


def decisions_table(rows: pa.Table, policy: Policy, result: Decisions, parties: pd.DataFrame,
                    name_codes: np.ndarray, tpp: np.ndarray) -> pa.Table:
    """Assemble ``decisions.parquet`` with the DESIGN §3 columns (join to the ledger on ``shipment_id``)."""
    n = rows.num_rows
    party_list = _per_name(parties["party_list"], name_codes)
    match = _per_name(parties["party_match"], name_codes)
    score = parties["party_score"].to_numpy(np.float64)[name_codes]
    tier = (pa.array(result.tier, type=pa.int8()) if result.tier is not None else pa.nulls(n, pa.int8()))
    return pa.table({
        "shipment_id": rows.column("shipment_id"),
        "status": rows.column("status"),
        "ship_date": rows.column("ship_date"),
        "destination_country": rows.column("destination_country"),
        "policy_id": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([policy.id])),
        "decision": _labels(result.decision, DECISIONS),
        "authorization": _labels(result.authorization, AUTHORIZATIONS),
        "reasons": pa.DictionaryArray.from_arrays(pa.array(result.reasons), pa.array(result.reason_labels, pa.string())),
        "tier": tier,
        "tpp": pa.array(tpp, pa.int64()),
        "lpp_cum_tpp": _nullable(result.lpp_cum_tpp),
        "country_cum_tpp": _nullable(result.country_cum_tpp),
        "party_match": match,
        "party_list": party_list,
        "party_score": pa.array(score, pa.float64(), mask=np.isnan(score)),
    })


def build_summary(policy: Policy, tally: Tally, carry: Carry, counts: dict, inputs: list[dict], timings: dict,
                  csl_path: Path, party_entries: int, as_of: dt.date | None, backend: str = BACKEND) -> dict:
    """The content of ``summary.json``.

    Parameters
    ----------
    policy : Policy
    tally : Tally
        Counts of the screened rows (merged over pieces).
    carry : Carry
        Per-key totals after the last screened row.
    counts : dict
        Rows read, accepted and quarantined (:attr:`pipeline.ingest.Ledger.counts`).
    inputs : list of dict
        Input files with their hashes.
    timings : dict
    csl_path : path
    party_entries : int
        Searchable entries of the screening list.
    as_of : date or None
    backend : str
        Where the accumulators ran (``numpy`` or ``cupy``).
    """
    return {
        "policy": {"id": policy.id, "title": policy.params.get("title"), "version": policy.params.get("version"),
                   "framework": policy.framework, "file": policy.path.name, "sha256": file_digest(policy.path),
                   "overrides": list(policy.overrides)},
        "reference": {"catalog": {"file": CATALOG_PATH.name, "sha256": file_digest(CATALOG_PATH)},
                      "screening_list": {"file": csl_path.name, "sha256": file_digest(csl_path),
                                         "entries": party_entries}},
        "inputs": inputs,
        "as_of": as_of.isoformat() if as_of else None,
        "rows": counts,
        "decisions": tally.decision_counts(),
        "decisions_by_status": tally.by_status(),
        "by_destination": tally.by_destination(),
        "allocation_headroom": tally.headroom(carry),
        "lpp": tally.lpp(carry),
        "tpp_total": tally.tpp_total,
        "backend": backend,
        "code_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "timings_s": timings,
    }


STATISTICS_COLUMNS = ["ship_date", "status", "destination_country", "decision", "authorization", "party_list"]
"""Columns whose Parquet min/max statistics are written (row-group pruning for auditors' queries);
statistics on the high-cardinality columns cost more to write than they save."""


def write_output(table: pa.Table, path: Path) -> None:
    """Write a table as Parquet under ``path`` in one step (a ``.partial`` file renamed into place)."""
    partial = path.with_name(path.name + ".partial")
    # Dictionary-encode only what already is a dictionary: trying it on ids and totals is wasted work.
    dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    pq.write_table(table, partial, use_dictionary=dictionary,
                   write_statistics=[c for c in STATISTICS_COLUMNS if c in table.column_names])
    os.replace(partial, path)


def _prepare(csl_path: Path) -> PartyScreen:
    """Start-up work that does not need the ledger: the screening list and the compiled kernels."""
    warm_up()
    return PartyScreen.from_path(csl_path)


@dataclass
class ScreenedRows:
    """Rows screened in one process: their features, decisions and party results.

    Attributes
    ----------
    rows : pyarrow.Table
    features : Features
    result : Decisions
    name_codes : ndarray of int32
        Consignee-name code per row (into ``features.parties``).
    """

    rows: pa.Table
    features: Features
    result: Decisions
    name_codes: np.ndarray

    def decisions_table(self, policy: Policy) -> pa.Table:
        """The rows' ``decisions.parquet`` content."""
        return decisions_table(self.rows, policy, self.result, self.features.parties, self.name_codes,
                               self.features.tpp)


_NAME_RESULTS: dict[tuple, tuple] = {}
"""Party results per screening-list file and ``[parties]`` settings, kept for the life of the
process: the pieces of one run (and the runs of one worker) share most consignee names."""


def _names_key(policy: Policy, csl_path: Path) -> tuple:
    settings = policy.get("parties")
    reviews = settings.get("reviews_file")
    return (str(Path(csl_path).resolve()), json.dumps(settings, sort_keys=True, default=str),
            file_digest(Path(reviews)) if reviews else None)


def remembered_names(policy: Policy, csl_path: Path) -> pd.DataFrame | None:
    """The party results this process keeps for ``policy`` and list (to store with a checkpoint)."""
    return _NAME_RESULTS.get(_names_key(policy, csl_path), (None, None))[1]


def remember_names(policy: Policy, csl_path: Path, results: pd.DataFrame) -> None:
    """Add party results screened earlier (e.g. by an earlier night) to what this process keeps.

    ``results`` must come from the same list and ``[parties]`` settings (checkpoints are keyed so).
    """
    key = _names_key(policy, csl_path)
    position, known = _NAME_RESULTS.get(key, ({}, None))
    names = results["name"].to_numpy(dtype=object, na_value=None).tolist()
    countries = (results["query_country"].to_numpy(dtype=object, na_value=None).tolist()
                 if "query_country" in results.columns else [None] * len(names))
    pairs = list(zip(names, countries))
    fresh = [i for i, pair in enumerate(pairs) if pair not in position]
    if not fresh:
        return
    add = results.iloc[fresh].reset_index(drop=True)
    start = 0 if known is None else len(known)
    position.update({pairs[i]: start + j for j, i in enumerate(fresh)})
    _NAME_RESULTS[key] = (position, add if known is None else pd.concat([known, add], ignore_index=True))


def consignees(rows: pa.Table, policy: Policy) -> tuple[np.ndarray, list, list | None]:
    """The distinct consignees party screening sees, and each row's code among them.

    A consignee is its name; when the rule set moves fuzzy scores by country
    (``parties.country_bonus`` / ``country_penalty``), it is the name with the row's destination,
    so a row's party result never depends on which other rows are screened with it.

    Returns
    -------
    codes : ndarray of int32
        Consignee code per row.
    names : list of str or None
    countries : list of str, or None when countries do not move scores
    """
    name_codes, names = codes_and_values(rows.column("consignee_name"))
    settings = policy.get("parties")
    if not (settings.get("country_bonus") or settings.get("country_penalty")):
        return name_codes, list(names), None
    dest_codes, destinations = codes_and_values(rows.column("destination_country"))
    width = len(destinations) + 1  # code -1: no destination
    pair_codes, pairs = pd.factorize(name_codes.astype(np.int64) * width + (dest_codes.astype(np.int64) + 1))
    name_of, dest_of = np.divmod(np.asarray(pairs, dtype=np.int64), width)
    names_array = np.asarray(list(names), dtype=object)
    dest_array = np.asarray([None] + list(destinations), dtype=object)
    return pair_codes.astype(np.int32), names_array[name_of].tolist(), dest_array[dest_of].tolist()


def screened_names(screen: PartyScreen, names: Sequence[str | None], policy: Policy, csl_path: Path,
                   backend: Backend | None = None, countries: Sequence[str | None] | None = None) -> pd.DataFrame:
    """Party results of distinct names, in their order, screening only names not seen before.

    Parameters
    ----------
    screen : PartyScreen
    names : sequence of str or None
    policy : Policy
        Its ``[parties]`` section (lists, thresholds, reviewed decisions) keys the results.
    csl_path : path
        The screening list behind ``screen``.
    backend : Backend, optional
        Where fuzzy pairs are scored; the CPU when omitted (the scores are the same).
    countries : sequence of str or None, optional
        Country of each name (see :func:`consignees`); part of what is remembered.

    Returns
    -------
    pandas.DataFrame
        As :meth:`pipeline.parties.PartyScreen.screen_policy` returns for ``names``, plus
        ``query_country``.
    """
    key = _names_key(policy, csl_path)
    position, known = _NAME_RESULTS.get(key, ({}, None))
    wanted = list(zip(names, countries if countries is not None else [None] * len(names)))
    new = [pair for pair in dict.fromkeys(wanted) if pair not in position]
    if new or known is None:
        new_countries = [c for _, c in new]
        found = screen.screen_policy([n for n, _ in new], policy, backend=backend,
                                     countries=new_countries if countries is not None else None)
        found.attrs.clear()  # the per-name candidate lists stay with single-process runs
        found["query_country"] = pd.Series(new_countries, dtype="str")
        start = 0 if known is None else len(known)
        position.update({pair: start + i for i, pair in enumerate(new)})
        known = found if known is None else pd.concat([known, found], ignore_index=True)
        _NAME_RESULTS[key] = (position, known)
    return known.iloc[[position[pair] for pair in wanted]].reset_index(drop=True)


def screen_rows(rows: pa.Table, policy: Policy, *, carry: Carry | None = None, csl_path: str | Path = CSL_PATH,
                timer: _Timer | None = None, remember_names: bool = False,
                backend: Backend | None = None) -> ScreenedRows:
    """Screen validated rows (a whole ledger, or one piece of it after ``carry``).

    Parameters
    ----------
    rows : pyarrow.Table
        Rows in screening order, as in :attr:`pipeline.ingest.Ledger.rows`.
    policy : Policy
    carry : Carry, optional
        Totals of the rows screened before these.
    csl_path : path
    timer : optional
        Stage timer of the calling run.
    remember_names : bool
        Keep party results per name for later pieces in this process (:func:`screened_names`);
        the results then carry no per-name candidate lists (``attrs["matches"]``).
    backend : Backend, optional
        Where the accumulators and the fuzzy party scoring run; NumPy when omitted.

    Returns
    -------
    ScreenedRows
    """
    timer = timer or _Timer(None)
    with timer.stage("parties_and_enrich"):
        name_codes, names, countries = consignees(rows, policy)
        screen = PartyScreen.from_path(Path(csl_path))
        # Party screening (Python) runs in a thread while the row features (NumPy, Arrow) are built.
        with ThreadPoolExecutor(max_workers=1) as helper:
            pending = (helper.submit(screened_names, screen, names, policy, Path(csl_path), backend, countries)
                       if remember_names else helper.submit(screen.screen_policy, names, policy, backend=backend,
                                                            countries=countries))
            features = build_features(rows, policy, pending.result, name_codes)
    with timer.stage("decide"):
        try:
            result = decide(features, policy, carry, backend=backend)
        except TotalsOverflowError as error:
            if error.row is None:
                raise
            shipment = rows.column("shipment_id")[error.row].as_py()
            raise TotalsOverflowError(f"running total overflows int64 at shipment {shipment!r} (row {error.row} "
                                      "of this piece in screening order)", row=error.row) from None
    return ScreenedRows(rows, features, result, name_codes)


def screen_ledgers(paths: Sequence[str | Path], policy: Policy, out_dir: str | Path | None = None, *,
                   as_of: dt.date | None = None, csl_path: str | Path = CSL_PATH,
                   progress: Callable[[str], None] | None = None, backend: str | Backend = BACKEND,
                   publish: bool = True) -> ScreenResult:
    """Screen ledger files under one rule set and write the outputs.

    Parameters
    ----------
    paths : sequence of path
        Ledger files (CSV, Parquet, JSON Lines).
    policy : Policy
        Rule set, overrides applied (:func:`pipeline.policy.load_policy`).
    out_dir : path, optional
        Where ``decisions.parquet``, ``quarantine.parquet``, ``parties.parquet``, ``summary.json``
        and ``report.html`` are published, all at once (:mod:`pipeline.publish`); its run folder
        is made before the ledger is read. Nothing is written when omitted.
    as_of : date, optional
        Screen only rows dated up to this day.
    csl_path : path
        Consolidated Screening List file.
    progress : callable, optional
        Called with the name of each stage.
    backend : {"numpy", "auto", "cupy"} or Backend
        Where the accumulators run (:func:`kernels.backend.select_backend`); ``auto`` uses a GPU
        when one works. Decisions are the same on every backend.
    publish : bool
        False: write straight into ``out_dir`` (a run folder the caller publishes).

    Returns
    -------
    ScreenResult

    Raises
    ------
    kernels.backend.BackendUnavailableError
        ``cupy`` was asked for and no CUDA device works (raised before the ledger is read).
    pipeline.publish.PublishError
        ``out_dir`` is refused or not writable (raised before the ledger is read).
    """
    backend = select_backend(backend)
    timer = _Timer(progress)
    with output_folder(out_dir, publish, keep=paths) as out:
        with ThreadPoolExecutor(max_workers=1) as helper:
            # Loads the screening list and the compiled kernels (both cached per process) while the
            # ledger is read: Arrow reads without holding the GIL.
            preparing = helper.submit(_prepare, Path(csl_path))
            with timer.stage("ingest"):
                ledger = read_ledgers(paths, as_of=as_of)
            preparing.result()
        return screen_ledger(ledger, policy, out, as_of=as_of, csl_path=csl_path, timer=timer, backend=backend,
                             publish=False)


@contextmanager
def output_folder(out_dir: str | Path | None, publish: bool = True, keep: Sequence[str | Path] = ()):
    """The folder a command writes into: a fresh run folder published at ``out_dir`` on success
    (``publish``), ``out_dir`` itself (not ``publish``), or None (no ``out_dir``)."""
    if out_dir is None:
        yield None
    elif not publish:
        yield Path(out_dir)
    else:
        from pipeline.publish import run_folder

        with run_folder(out_dir, keep) as run:
            yield run


def screen_ledger(ledger: Ledger, policy: Policy, out_dir: str | Path | None = None, *,
                  as_of: dt.date | None = None, csl_path: str | Path = CSL_PATH,
                  progress: Callable[[str], None] | None = None, timer: _Timer | None = None,
                  backend: str | Backend = BACKEND, publish: bool = True) -> ScreenResult:
    """Screen validated ledger rows under one rule set (see :func:`screen_ledgers`).

    One ledger can be screened under several rule sets without reading it again. On a GPU the
    accumulators take the rows in time-ordered chunks sized from free device memory, with
    per-key carry-in (:meth:`kernels.backend.Backend.accumulate`), so any ledger that fits in
    host memory runs; larger ones go through :func:`pipeline.scale.scan`. ``publish=False``
    writes straight into ``out_dir`` (a run folder the caller publishes).
    """
    backend = select_backend(backend)
    timer = timer or _Timer(progress)
    with output_folder(out_dir, publish) as out:
        piece = screen_rows(ledger.rows, policy, csl_path=csl_path, timer=timer, backend=backend)
        with timer.stage("assemble"):
            table = piece.decisions_table(policy)
            tally = Tally.of(ledger.rows, piece.result, piece.features.tpp)
        result, screen = piece.result, PartyScreen.from_path(Path(csl_path))
        summary = build_summary(policy, tally, result.carry, ledger.counts, ledger.files, timer.timings,
                                Path(csl_path), len(screen.entries), as_of, backend=backend.name)
        screened = ScreenResult(decisions=table, quarantine=ledger.quarantine, summary=summary, ledger=ledger,
                                outcome=result, tally=tally, parties=piece.features.parties)
        if out is not None:
            write_screen_outputs(screened, out, timer=timer)
    return screened


def write_screen_outputs(result: ScreenResult, out: Path, *, timer: _Timer | None = None,
                         report: bool = True) -> None:
    """Write a screening's outputs into a run folder, each file once.

    Parameters
    ----------
    result : ScreenResult
    out : Path
        An unpublished run folder (created when missing).
    timer : optional
        Stage timer; its timings go into ``summary.json``.
    report : bool
        Also write ``report.html`` and ``summary.json`` (an audit writes its own).
    """
    timer = timer or _Timer(None)
    out.mkdir(exist_ok=True)
    with timer.stage("write"):
        write_output(result.decisions, out / "decisions.parquet")
        write_output(result.quarantine, out / "quarantine.parquet")
        write_parties(result.parties, out / "parties.parquet")
        if report:
            from pipeline.report import write_report
            from pipeline.report_content import screen_report

            write_report(screen_report(result), out / "report.html")
    if report:
        result.summary["timings_s"] = dict(timer.timings)
        (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str) + "\n")


def write_parties(parties: pd.DataFrame | None, path: Path) -> None:
    """Write ``parties.parquet`` (:func:`pipeline.parties.write_party_matches`); no consignee: no rows."""
    from pipeline.parties import MATCH_COLUMNS, write_party_matches

    if parties is not None and len(parties):
        write_party_matches(parties, path)
        return
    text = [c for c in MATCH_COLUMNS if c not in ("rank", "score")] + ["outcome", "party_tokens", "review_status"]
    empty = {c: pa.array([], pa.string()) for c in text}
    empty.update({"rank": pa.array([], pa.int8()), "score": pa.array([], pa.float64()),
                  "chosen": pa.array([], pa.bool_())})
    pq.write_table(pa.table({c: empty[c] for c in MATCH_COLUMNS + ["outcome", "party_tokens", "review_status",
                                                                     "chosen"]}), path)
