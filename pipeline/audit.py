"""Retrospective audit (recorded vs recomputed authorizations) and rule-set diffs.

An audit replays shipped rows under a rule set as of a date and lists every **discrepancy**
between the authorization a row shipped under and what the rules say, with the running totals
that prove it. A diff screens the same rows under two rule sets and reports the transitions.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from kernels.backend import Backend

from pipeline.decide import (
    AUTH_AIA, AUTH_LICENSE, AUTH_LPP, AUTH_NLR, AUTH_VEU, AUTHORIZATIONS, CAP_EXCEEDED, DECISIONS, DENIED, LICENSE_REQUIRED, NLR, NO_AUTH,
    REVIEW,
)
from pipeline.enrich import codes_and_values, present
from pipeline.ingest import Ledger
from pipeline.policy import Policy
from pipeline.reference import CSL_PATH
from pipeline.report_content import audit_report, diff_report
from pipeline.results import AuditResult, DiffResult, ScreenResult
from pipeline.run.run import Run
from pipeline.run.screening import screen_whole, write_screening
from pipeline.run.sink import CSV_ROWS  # noqa: F401  (public name)
from pipeline.run.source import LedgerSource

__all__ = ["AuditResult", "DISCREPANCY_KINDS", "DiffResult", "audit_in", "audit_ledgers", "diff_ledgers",
           "discrepancies", "read_history", "transition_matrix"]

DISCREPANCY_KINDS = {
    "SHIPPED_DENIED": "shipped although the line is denied (party, GP10 or destination/HQ)",
    "SHIPPED_TO_AFFILIATE": "shipped to a consignee owned 50% or more by listed parties while the Affiliates rule "
                            "applied (ownership graph)",
    "SHIPPED_UNDER_REVIEW": "shipped while a restricted-party match awaited review",
    "LPP_OVER_LIMIT": "shipped under LPP after the consignee's calendar year crossed the LPP limit",
    "LICENSE_EXHAUSTED": "shipped under a license after its units or TPP were used up (register)",
    "LICENSE_EXPIRED": "shipped under a license after its validity window (register)",
    "LICENSE_NOT_YET_VALID": "shipped under a license before its validity window (register)",
    "LICENSE_OUT_OF_SCOPE": "shipped under a license that does not cover its destination, consignee, exporter or "
                            "item (register)",
    "LICENSE_UNKNOWN": "shipped under a license id the register does not hold",
    "CHINA_SHARE_EXCEEDED": "licensed to China/Macau beyond the share of the exporter's US shipments (H200 rule)",
    "LICENSE_OVER_ALLOCATION": "shipped under a license beyond the destination's allocation",
    "NLR_FOR_CONTROLLED": "recorded NLR for a line that needs an authorization",
    "UNLICENSED": "shipped without a license where one is required",
    "NONE_RECORDED": "no authorization recorded for a line that needs one",
    "AUTHORIZATION_MISMATCH": "recorded authorization does not cover the line (e.g. AIA for a consignee whose HQ "
                              "is not Tier 1, VEU or LICENSE without its id)",
}
"""Discrepancy codes, most severe first, with what each means."""
def _covered(recorded: np.ndarray, computed: np.ndarray, has_license: np.ndarray,
             has_veu: np.ndarray) -> np.ndarray:
    """Whether each row's recorded authorization covers the authorization the rules give.

    Parameters
    ----------
    recorded, computed : numpy.ndarray
        Authorization codes (:data:`pipeline.decide.AUTHORIZATIONS`) recorded and recomputed.
    has_license, has_veu : numpy.ndarray
        Whether the row carries a ``license_id`` / ``veu_id``.

    Returns
    -------
    numpy.ndarray
        Boolean per row. The same authorization covers; a license (with its id) covers any
        authorized line; a VEU (with its id) covers AIA and LPP lines; LPP covers an AIA line
        (using a narrower exception than needed is no breach). AIA covers only AIA.
    """
    return ((recorded == computed)
            | ((recorded == AUTH_LICENSE) & has_license)
            | ((recorded == AUTH_VEU) & has_veu & ((computed == AUTH_AIA) | (computed == AUTH_LPP)))
            | ((recorded == AUTH_LPP) & (computed == AUTH_AIA)))


def discrepancies(screening: ScreenResult) -> pd.DataFrame:
    """Compare each shipped row's recorded authorization with the recomputed outcome.

    Parameters
    ----------
    screening : ScreenResult
        A screening run (its ledger rows carry ``recorded_authorization``).

    Returns
    -------
    pandas.DataFrame
        One row per shipped line with at least one discrepancy: identity columns, recorded and
        recomputed outcome, ``kinds`` (``;``-joined codes of :data:`DISCREPANCY_KINDS`), and the
        evidence: ``lpp_cum_tpp`` with ``lpp_limit_tpp``, ``country_cum_tpp`` with ``cap_tpp``, the China
        volume totals, and ``license_cum_units`` / ``license_cum_tpp`` with the license's maxima.

    Notes
    -----
    The checks run on integer codes over all rows; only discrepant rows become a DataFrame.
    """
    rows, outcome, decisions = screening.ledger.rows, screening.outcome, screening.decisions
    decision, authorization = outcome.decision, outcome.authorization
    status_codes, status_values = codes_and_values(rows.column("status"))
    shipped = status_codes == (status_values.index("shipped") if "shipped" in status_values else -2)
    recorded_codes, recorded_values = codes_and_values(rows.column("recorded_authorization"))
    as_authorization = np.array([AUTHORIZATIONS.index(v) for v in recorded_values] + [0], dtype=np.int8)
    recorded = as_authorization[recorded_codes]  # 0: none recorded
    coded = outcome.with_reason

    needs_authorization = decision != NLR
    covered = _covered(recorded, authorization, present(rows.column("license_id")), present(rows.column("veu_id")))
    checks = {
        "SHIPPED_DENIED": decision == DENIED,
        "SHIPPED_TO_AFFILIATE": coded("AFFILIATE"),
        "SHIPPED_UNDER_REVIEW": decision == REVIEW,
        "LPP_OVER_LIMIT": (recorded == AUTH_LPP) & coded("LPP_EXCEEDED"),
        **{code: coded(code) for code in ("LICENSE_EXHAUSTED", "LICENSE_EXPIRED", "LICENSE_NOT_YET_VALID",
                                          "LICENSE_OUT_OF_SCOPE", "LICENSE_UNKNOWN")},
        "CHINA_SHARE_EXCEEDED": coded("CN_US_RATIO"),
        "LICENSE_OVER_ALLOCATION": (recorded == AUTH_LICENSE) & coded("ALLOCATION_EXCEEDED"),
        "NLR_FOR_CONTROLLED": (recorded == AUTH_NLR) & needs_authorization,
        "UNLICENSED": ((decision == LICENSE_REQUIRED) | (decision == CAP_EXCEEDED)) & (recorded != AUTH_LICENSE),
        "NONE_RECORDED": (recorded == NO_AUTH) & needs_authorization,
        "AUTHORIZATION_MISMATCH": (recorded > AUTH_NLR) & (authorization > AUTH_NLR) & ~covered,
    }
    bits = np.zeros(len(decision), dtype=np.int32)
    for i, (kind, mask) in enumerate(checks.items()):
        if kind in ("NONE_RECORDED", "AUTHORIZATION_MISMATCH"):
            mask = mask & (bits == 0)  # generic findings only where nothing more specific applies
        bits |= np.where(mask & shipped, np.int32(1 << i), np.int32(0))
    hit = np.flatnonzero(bits)
    names = list(checks)
    mask_codes, masks = pd.factorize(bits[hit])
    labels = np.array([";".join(k for i, k in enumerate(names) if m >> i & 1) for m in np.asarray(masks)] or [""],
                      dtype=object)

    taken = pa.array(hit)
    pick = lambda column: column.take(taken)  # noqa: E731
    text = lambda column: pick(column).to_pandas().astype(object).to_numpy()  # noqa: E731
    caps = np.array([a.cap_tpp for a in outcome.allocations] + [0], dtype=np.int64)
    keys = outcome.allocation_keys[hit]
    out = pd.DataFrame({
        "shipment_id": text(rows.column("shipment_id")),
        "ship_date": pick(rows.column("ship_date")).to_pandas().to_numpy(),
        "destination_country": text(rows.column("destination_country")),
        "consignee_name": text(rows.column("consignee_name")),
        "sku": text(rows.column("sku")),
        "quantity": pick(rows.column("quantity")).to_numpy(),
        "kinds": labels[mask_codes] if len(hit) else np.array([], dtype=object),
        "recorded_authorization": text(rows.column("recorded_authorization")),
        "decision": text(decisions.column("decision")),
        "authorization": text(decisions.column("authorization")),
        "reasons": text(decisions.column("reasons")),
        "tpp": pick(decisions.column("tpp")).to_numpy(),
        "lpp_cum_tpp": _exact_ints(pick(decisions.column("lpp_cum_tpp"))),
        "lpp_limit_tpp": pd.Series(outcome.lpp_limit or 0, index=range(len(hit)), dtype="Int64").where(
            pd.Series(outcome.lpp_cum_tpp[hit] >= 0)) if outcome.lpp_limit is not None else pd.NA,
        "country_cum_tpp": _exact_ints(pick(decisions.column("country_cum_tpp"))),
        "cap_tpp": pd.Series(caps[keys], dtype="Int64").where(pd.Series(keys >= 0)),
        "cn_volume_cum": _exact_ints(pick(decisions.column("cn_volume_cum"))),
        "us_volume_cum": _exact_ints(pick(decisions.column("us_volume_cum"))),
        "exporter": text(decisions.column("exporter")),
        "license_id": text(rows.column("license_id")),
        "license_cum_units": _exact_ints(pick(decisions.column("license_cum_units"))),
        "license_cum_tpp": _exact_ints(pick(decisions.column("license_cum_tpp"))),
        **_license_limits(screening, hit),
        "party_match": text(decisions.column("party_match")),
        "party_list": text(decisions.column("party_list")),
        "party_listed_on": text(decisions.column("party_listed_on")),
    })
    out.attrs["counts"] = {kind: int(np.count_nonzero(bits >> i & 1)) for i, kind in enumerate(names)}
    return out


def _license_limits(screening: ScreenResult, hit: np.ndarray) -> dict:
    """``license_max_units`` and ``license_max_tpp`` of the license each row drew on (evidence)."""
    register = screening.policy.license_register() if screening.policy is not None else None
    keys = screening.outcome.license_keys[hit]
    if register is None:
        return {"license_max_units": pd.array([pd.NA] * len(hit), dtype="Int64"),
                "license_max_tpp": pd.array([pd.NA] * len(hit), dtype="Int64")}
    drew = keys >= 0
    at = np.where(drew, keys, 0)
    return {f"license_max_{side}": pd.Series(register.table[f"max_{side}"].to_numpy()[at], dtype="Int64").where(
        pd.Series(drew)) for side in ("units", "tpp")}


def _exact_ints(column: pa.ChunkedArray) -> pd.Series:
    """An int64 column as a nullable integer Series (no float round trip)."""
    return column.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def read_history(paths: Sequence[str | Path], as_of: dt.date | None = None) -> Ledger:
    """Validated rows of ledger files, or of a ledger lake given as a single folder.

    Parameters
    ----------
    paths : sequence of path
        Ledger files, or one lake: a folder or a URL (see ``chipscreen ingest``).
    as_of : date, optional
        Only rows dated up to this day.
    """
    return LedgerSource(paths, as_of).read()


def audit_ledgers(paths: Sequence[str | Path], policy: Policy, out_dir: str | Path | None = None, *,
                  as_of: dt.date | None = None, csl_path: str | Path = CSL_PATH,
                  progress: Callable[[str], None] | None = None, publish: bool = True,
                  backend: str | Backend = "numpy") -> AuditResult:
    """Replay ledgers under ``policy`` as of a date and list the discrepancies.

    Publishes the screening outputs plus ``discrepancies.parquet``, ``discrepancies.csv`` and
    ``report.html`` at ``out_dir``, all at once; ``summary.json`` gains a ``discrepancies``
    section. ``publish=False`` writes straight into ``out_dir`` (a run folder the caller publishes).
    ``backend`` (``numpy``, ``auto``, ``cupy`` or a Backend) is resolved once, before any work.
    """
    with Run.open(out_dir, backend=backend, csl_path=csl_path, keep=paths, publish=publish,
                  progress=progress) as run:
        return audit_in(run, paths, policy, as_of)


def audit_in(run: Run, paths: Sequence[str | Path], policy: Policy, as_of: dt.date | None = None) -> AuditResult:
    """Audit within ``run`` (see :func:`audit_ledgers`): outputs into its folder, each once."""
    ledger = read_history(paths, as_of=as_of)
    screening = screen_whole(run, ledger, policy, as_of)
    found = discrepancies(screening)
    status_codes, status_values = codes_and_values(ledger.rows.column("status"))
    shipped = (int(np.count_nonzero(status_codes == status_values.index("shipped")))
               if "shipped" in status_values else 0)
    counts = found.attrs["counts"]
    summary = {**screening.summary, "discrepancies": {
        "shipped_rows": shipped, "rows_with_discrepancies": len(found),
        "by_kind": {k: v for k, v in counts.items() if v},
        "by_destination": {k: int(v) for k, v in found["destination_country"].value_counts().items()},
        "kinds": DISCREPANCY_KINDS,
    }}
    sink = run.sink
    if sink is not None:
        write_screening(sink, screening, run, report=False)
        summary["discrepancies"]["exports"] = sink.export(found, "discrepancies")
        sink.json("summary.json", summary)
        sink.report(audit_report(screening, found, summary))
    return AuditResult(screening=screening, discrepancies=found, summary=summary)


def transition_matrix(first: np.ndarray, second: np.ndarray) -> pd.DataFrame:
    """Counts of decision pairs (rows: first rule set, columns: second), most severe first.

    Parameters
    ----------
    first, second : ndarray of int
        Decision codes (indices into :data:`pipeline.decide.DECISIONS`).

    Examples
    --------
    >>> m = transition_matrix(np.array([0, 5]), np.array([0, 0]))
    >>> int(m.loc["DENIED", "NLR"]), int(m.loc["NLR", "NLR"])
    (1, 1)
    """
    k = len(DECISIONS)
    counts = np.bincount(first.astype(np.int64) * k + second, minlength=k * k).reshape(k, k)
    order = list(reversed(DECISIONS))
    frame = pd.DataFrame(counts, index=list(DECISIONS), columns=list(DECISIONS)).loc[order, order]
    frame.index.name, frame.columns.name = "first", "second"
    return frame


def _nonzero(matrix: pd.DataFrame) -> dict:
    return {f: {t: int(n) for t, n in row.items() if n} for f, row in matrix.iterrows() if row.sum()}


DIFF_FOLDERS = ("a", "b")
"""Subfolders of a diff's output holding each rule set's screening (never named after a rule-set id)."""


def diff_ledgers(paths: Sequence[str | Path], first: Policy, second: Policy, out_dir: str | Path | None = None, *,
                 as_of: dt.date | None = None, csl_path: str | Path = CSL_PATH,
                 progress: Callable[[str], None] | None = None, publish: bool = True,
                 backend: str | Backend = "numpy") -> DiffResult:
    """Screen the same rows under two rule sets and report the transitions.

    Publishes, all at once at ``out_dir``, each screening in ``a/`` (first rule set) and ``b/``
    (second), and ``changes.parquet``, ``changes.csv``, ``summary.json`` (with the transitions) and
    ``report.html``. ``publish=False`` writes straight into ``out_dir``. ``backend`` is resolved
    once, before any work, and both screenings run on it.
    """
    if first.id == second.id and first.overrides == second.overrides:
        raise ValueError("diff needs two different rule sets (or the same one with different --set overrides)")
    with Run.open(out_dir, backend=backend, csl_path=csl_path, keep=paths, publish=publish,
                  progress=progress) as run:
        ledger = read_history(paths, as_of=as_of)
        labels = [first.id, second.id] if first.id != second.id else [f"{first.id}-a", f"{second.id}-b"]
        runs = [screen_whole(run, ledger, policy, as_of) for policy in (first, second)]
        result = _diff(ledger, runs, labels)
        sink = run.sink
        if sink is not None:
            for screening, folder in zip(runs, DIFF_FOLDERS):
                write_screening(sink.sub(folder), screening, run)
            result.summary["exports"] = sink.export(result.changes, "changes")
            sink.json("summary.json", result.summary)
            sink.report(diff_report(runs, labels, result.transitions, result.changes, result.summary))
    return result


def _diff(ledger: Ledger, runs: list[ScreenResult], labels: list[str]) -> DiffResult:
    """Transitions and changed rows between two screenings of ``ledger``."""
    a, b = (run.decisions for run in runs)
    first_codes, second_codes = (run.outcome.decision for run in runs)
    overall = transition_matrix(first_codes, second_codes)
    dest_codes, dest_values = codes_and_values(ledger.rows.column("destination_country"))
    per_destination = {}
    for code in np.argsort(-np.bincount(dest_codes, minlength=len(dest_values)), kind="stable"):
        rows_of = dest_codes == code
        if rows_of.any():
            per_destination[dest_values[code]] = transition_matrix(first_codes[rows_of], second_codes[rows_of])
    sku_codes, sku_values = codes_and_values(ledger.rows.column("sku"))
    per_sku = {}
    for code in np.argsort(-np.bincount(sku_codes, minlength=len(sku_values)), kind="stable"):
        rows_of = sku_codes == code
        if rows_of.any():
            per_sku[sku_values[code]] = transition_matrix(first_codes[rows_of], second_codes[rows_of])
    changed = np.flatnonzero((first_codes != second_codes)
                             | (runs[0].outcome.authorization != runs[1].outcome.authorization))
    taken = pa.array(changed, pa.int64())

    def text(table: pa.Table, column: str) -> np.ndarray:
        return table.column(column).take(taken).to_pandas().astype(object).to_numpy()

    changes = pd.DataFrame({
        "shipment_id": text(a, "shipment_id"),
        "ship_date": a.column("ship_date").take(taken).to_pandas().to_numpy(),
        "status": text(a, "status"),
        "destination_country": text(a, "destination_country"),
        "sku": ledger.rows.column("sku").take(taken).to_pandas().astype(object).to_numpy(),
        **{f"{column}_{label}": text(table, column) for table, label in zip((a, b), labels)
           for column in ("decision", "authorization", "reasons")},
    })
    summary = {
        "policies": labels,
        "folders": dict(zip(labels, DIFF_FOLDERS)),
        "rows": runs[0].summary["rows"],
        "changed_rows": len(changed),
        "transitions": _nonzero(overall),
        "transitions_by_destination": {d: _nonzero(m) for d, m in per_destination.items()},
        "transitions_by_sku": {k: _nonzero(m) for k, m in per_sku.items()},
        "allocation_headroom": {label: run.summary["allocation_headroom"] for label, run in zip(labels, runs)},
        "screenings": {label: {k: run.summary[k] for k in ("policy", "reference", "inputs", "decisions")}
                       for label, run in zip(labels, runs)},
    }
    return DiffResult(first=runs[0], second=runs[1], transitions=overall, changes=changes, summary=summary)
