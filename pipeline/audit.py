"""Retrospective audit (recorded vs recomputed authorizations) and rule-set diffs.

An audit replays shipped rows under a rule set as of a date and lists every **discrepancy**
between the authorization a row shipped under and what the rules say, with the running totals
that prove it. A diff screens the same rows under two rule sets and reports the transitions.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.decide import DECISIONS
from pipeline.ingest import read_ledgers
from pipeline.policy import Policy
from pipeline.reference import CSL_PATH
from pipeline.screen import ScreenResult, screen_ledger

DISCREPANCY_KINDS = {
    "SHIPPED_DENIED": "shipped although the line is denied (party, GP10 or destination/HQ)",
    "SHIPPED_UNDER_REVIEW": "shipped while a restricted-party match awaited review",
    "LPP_OVER_LIMIT": "shipped under LPP after the consignee's calendar year crossed the LPP limit",
    "LICENSE_OVER_ALLOCATION": "shipped under a license beyond the destination's allocation",
    "NLR_FOR_CONTROLLED": "recorded NLR for a line that needs an authorization",
    "UNLICENSED": "shipped without a license where one is required",
    "NONE_RECORDED": "no authorization recorded for a line that needs one",
    "AUTHORIZATION_MISMATCH": "recorded authorization differs from the one the rules give",
}
"""Discrepancy codes, most severe first, with what each means."""


@dataclass
class AuditResult:
    """An audit's screening run and its discrepancies (one row per discrepant shipped line)."""

    screening: ScreenResult
    discrepancies: pd.DataFrame
    summary: dict


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
        evidence: ``lpp_cum_tpp`` with ``lpp_limit_tpp``, ``country_cum_tpp`` with ``cap_tpp``.
    """
    rows, outcome = screening.ledger.rows, screening.outcome
    decisions = screening.decisions
    frame = pd.DataFrame({
        "shipment_id": rows.column("shipment_id").to_numpy(zero_copy_only=False),
        "ship_date": rows.column("ship_date").to_pandas(),
        "status": rows.column("status").to_pandas().astype(object),
        "destination_country": rows.column("destination_country").to_pandas().astype(object),
        "consignee_name": rows.column("consignee_name").to_pandas().astype(object),
        "sku": rows.column("sku").to_pandas().astype(object),
        "quantity": rows.column("quantity").to_numpy(),
        "recorded_authorization": rows.column("recorded_authorization").to_pandas().astype(object),
        "decision": decisions.column("decision").to_pandas().astype(object),
        "authorization": decisions.column("authorization").to_pandas().astype(object),
        "reasons": decisions.column("reasons").to_pandas().astype(object),
        "tpp": decisions.column("tpp").to_numpy(),
        "lpp_cum_tpp": _exact_ints(decisions.column("lpp_cum_tpp")),
        "country_cum_tpp": _exact_ints(decisions.column("country_cum_tpp")),
        "party_match": decisions.column("party_match").to_pandas().astype(object),
        "party_list": decisions.column("party_list").to_pandas().astype(object),
    })
    caps = np.array([a.cap_tpp for a in outcome.allocations] + [0], dtype=np.int64)
    keys = outcome.allocation_keys
    frame["cap_tpp"] = pd.Series(caps[keys], dtype="Int64").where(keys >= 0)
    limit = outcome.lpp_limit if outcome.lpp_limit is not None else 0
    frame["lpp_limit_tpp"] = pd.Series(limit, index=frame.index, dtype="Int64").where(frame["lpp_cum_tpp"].notna())

    shipped = frame["status"].eq("shipped")
    recorded, decision, authorization = frame["recorded_authorization"], frame["decision"], frame["authorization"]
    needs_authorization = decision.ne("NLR")
    checks = {
        "SHIPPED_DENIED": decision.eq("DENIED"),
        "SHIPPED_UNDER_REVIEW": decision.eq("REVIEW"),
        "LPP_OVER_LIMIT": recorded.eq("LPP") & frame["reasons"].str.contains("LPP_EXCEEDED", regex=False),
        "LICENSE_OVER_ALLOCATION": recorded.eq("LICENSE") & decision.eq("CAP_EXCEEDED"),
        "NLR_FOR_CONTROLLED": recorded.eq("NLR") & needs_authorization,
        "UNLICENSED": decision.isin(["LICENSE_REQUIRED", "CAP_EXCEEDED"]) & ~recorded.eq("LICENSE"),
        "NONE_RECORDED": recorded.isna() & needs_authorization,
        "AUTHORIZATION_MISMATCH": recorded.notna() & authorization.notna() & recorded.ne(authorization)
        & ~recorded.eq("NLR"),
    }
    flags = pd.DataFrame({kind: (mask.fillna(False) & shipped).to_numpy(bool) for kind, mask in checks.items()})
    # A more specific finding on a row makes the generic mismatch redundant.
    specific = flags.drop(columns=["AUTHORIZATION_MISMATCH", "NONE_RECORDED"]).any(axis=1)
    flags.loc[specific, ["AUTHORIZATION_MISMATCH", "NONE_RECORDED"]] = False
    hit = flags.any(axis=1).to_numpy()
    kinds = flags[hit].apply(lambda row: ";".join(k for k in DISCREPANCY_KINDS if row[k]), axis=1)
    out = frame[hit].copy()
    out.insert(out.columns.get_loc("recorded_authorization"), "kinds", kinds.to_numpy() if len(out) else [])
    return out.reset_index(drop=True)


def _exact_ints(column: pa.ChunkedArray) -> pd.Series:
    """An int64 column as a nullable integer Series (no float round trip)."""
    return column.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _write_json(data: dict, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(partial, path)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), partial)
    os.replace(partial, path)


def audit_ledgers(paths: Sequence[str | Path], policy: Policy, out_dir: str | Path | None = None, *,
                  as_of: dt.date | None = None, csl_path: str | Path = CSL_PATH,
                  progress: Callable[[str], None] | None = None) -> AuditResult:
    """Replay ledgers under ``policy`` as of a date and list the discrepancies.

    Writes the screening outputs plus ``discrepancies.parquet``, ``discrepancies.csv`` and
    ``report.html`` to ``out_dir``; ``summary.json`` gains a ``discrepancies`` section.
    """
    ledger = read_ledgers(paths, as_of=as_of)
    screening = screen_ledger(ledger, policy, out_dir, as_of=as_of, csl_path=csl_path, progress=progress)
    found = discrepancies(screening)
    shipped = int(pd.Series(ledger.rows.column("status").to_pylist()).eq("shipped").sum()) if ledger.rows.num_rows else 0
    counts = {kind: int(found["kinds"].str.split(";").apply(lambda ks, k=kind: k in ks).sum()) for kind in DISCREPANCY_KINDS}
    summary = {**screening.summary, "discrepancies": {
        "shipped_rows": shipped, "rows_with_discrepancies": len(found),
        "by_kind": {k: v for k, v in counts.items() if v},
        "by_destination": {k: int(v) for k, v in found["destination_country"].value_counts().items()},
        "kinds": DISCREPANCY_KINDS,
    }}
    if out_dir is not None:
        from pipeline.report import write_csv, write_report
        from pipeline.report_content import audit_report

        out = Path(out_dir)
        _write_parquet(found, out / "discrepancies.parquet")
        write_csv(found, out / "discrepancies.csv")
        _write_json(summary, out / "summary.json")
        write_report(audit_report(screening, found, summary), out / "report.html")
    return AuditResult(screening=screening, discrepancies=found, summary=summary)


@dataclass
class DiffResult:
    """Two screenings of the same rows and what changed between them."""

    first: ScreenResult
    second: ScreenResult
    transitions: pd.DataFrame
    changes: pd.DataFrame
    summary: dict


def transition_matrix(first: pd.Series, second: pd.Series) -> pd.DataFrame:
    """Counts of decision pairs (rows: first rule set, columns: second), in precedence order.

    Examples
    --------
    >>> m = transition_matrix(pd.Series(["NLR", "DENIED"]), pd.Series(["NLR", "NLR"]))
    >>> int(m.loc["DENIED", "NLR"]), int(m.loc["NLR", "NLR"])
    (1, 1)
    """
    order = list(reversed(DECISIONS))
    table = pd.crosstab(pd.Categorical(first, order), pd.Categorical(second, order), dropna=False)
    table.index.name, table.columns.name = "first", "second"
    return table.reindex(index=order, columns=order, fill_value=0)


def diff_ledgers(paths: Sequence[str | Path], first: Policy, second: Policy, out_dir: str | Path | None = None, *,
                 as_of: dt.date | None = None, csl_path: str | Path = CSL_PATH,
                 progress: Callable[[str], None] | None = None) -> DiffResult:
    """Screen the same rows under two rule sets and report the transitions.

    Writes each screening to ``out_dir/<policy id>/``, and ``transitions.json``,
    ``changes.parquet``, ``changes.csv``, ``summary.json`` and ``report.html`` to ``out_dir``.
    """
    if first.id == second.id and first.overrides == second.overrides:
        raise ValueError("diff needs two different rule sets (or the same one with different --set overrides)")
    ledger = read_ledgers(paths, as_of=as_of)
    out = Path(out_dir) if out_dir is not None else None
    labels = [first.id, second.id] if first.id != second.id else [f"{first.id}-a", f"{second.id}-b"]
    runs = [screen_ledger(ledger, policy, out / label if out else None, as_of=as_of, csl_path=csl_path,
                          progress=progress) for policy, label in zip((first, second), labels)]
    a, b = (run.decisions for run in runs)
    decision_a = a.column("decision").to_pandas().astype(object)
    decision_b = b.column("decision").to_pandas().astype(object)
    overall = transition_matrix(decision_a, decision_b)
    destinations = a.column("destination_country").to_pandas().astype(object)
    per_destination = {
        destination: transition_matrix(decision_a[mask], decision_b[mask])
        for destination, mask in ((d, destinations.eq(d)) for d in destinations.value_counts().index)
    }
    authorization_a = a.column("authorization").to_pandas().astype(object)
    authorization_b = b.column("authorization").to_pandas().astype(object)
    changed = (decision_a.ne(decision_b) | authorization_a.fillna("").ne(authorization_b.fillna(""))).to_numpy()
    changes = pd.DataFrame({
        "shipment_id": a.column("shipment_id").to_numpy(zero_copy_only=False)[changed],
        "ship_date": a.column("ship_date").to_pandas()[changed].to_numpy(),
        "status": a.column("status").to_pandas().astype(object)[changed].to_numpy(),
        "destination_country": destinations[changed].to_numpy(),
        f"decision_{labels[0]}": decision_a[changed].to_numpy(),
        f"authorization_{labels[0]}": authorization_a[changed].to_numpy(),
        f"reasons_{labels[0]}": a.column("reasons").to_pandas().astype(object)[changed].to_numpy(),
        f"decision_{labels[1]}": decision_b[changed].to_numpy(),
        f"authorization_{labels[1]}": authorization_b[changed].to_numpy(),
        f"reasons_{labels[1]}": b.column("reasons").to_pandas().astype(object)[changed].to_numpy(),
    })
    summary = {
        "policies": labels,
        "rows": runs[0].summary["rows"],
        "changed_rows": int(changed.sum()),
        "transitions": {f: {t: int(n) for t, n in row.items() if n} for f, row in overall.iterrows() if row.sum()},
        "transitions_by_destination": {
            d: {f: {t: int(n) for t, n in row.items() if n} for f, row in m.iterrows() if row.sum()}
            for d, m in per_destination.items()},
        "allocation_headroom": {label: run.summary["allocation_headroom"] for label, run in zip(labels, runs)},
        "screenings": {label: {k: run.summary[k] for k in ("policy", "reference", "inputs", "decisions")}
                       for label, run in zip(labels, runs)},
    }
    if out is not None:
        from pipeline.report import write_csv, write_report
        from pipeline.report_content import diff_report

        out.mkdir(parents=True, exist_ok=True)
        _write_parquet(changes, out / "changes.parquet")
        write_csv(changes, out / "changes.csv")
        _write_json(summary, out / "summary.json")
        write_report(diff_report(runs, labels, overall, changes, summary), out / "report.html")
    return DiffResult(first=runs[0], second=runs[1], transitions=overall, changes=changes, summary=summary)
