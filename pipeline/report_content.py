"""What goes into ``report.html`` for a screening, an audit and a diff.

Builds the report dictionaries that :mod:`pipeline.report` renders: headline figures, cap use
over time, tables and provenance. Rendering (HTML, SVG, escaping) lives in :mod:`pipeline.report`.
"""
from __future__ import annotations

from pathlib import Path
import numpy as np
import pandas as pd

from pipeline.decide import DECISIONS
from pipeline.ingest import file_digest
from pipeline.results import ScreenResult

TABLE_ROWS = 500
"""Rows shown in a report table; the full data is in the Parquet and CSV outputs."""
CHART_SERIES = 6


def _input_sha256(item: dict) -> str:
    """An input's SHA-256: as recorded when it was read (lake ingests), else of the file now."""
    if item.get("sha256"):
        return item["sha256"]
    path = Path(item["path"])
    return file_digest(path) if path.is_file() else "unavailable (file moved or removed)"


def provenance(summary: dict) -> dict:
    """Rule set, reference-data versions, inputs with hashes, code version."""
    return {
        "rule set": summary["policy"],
        "reference data": summary["reference"],
        "inputs": [{**item, "sha256": _input_sha256(item)} for item in summary["inputs"]],
        "as of": summary.get("as_of") or "all rows",
        "code version": summary["code_version"],
        "backend": summary["backend"],
        "created": summary["created"],
    }


def _month_label(month: int) -> str:
    """First day of a month index, ISO: the x value of monthly chart points."""
    return str(np.datetime64(int(month), "M").astype("datetime64[D]"))


def allocation_chart(screening: ScreenResult, chart_id: str = "allocation") -> dict:
    """Running allocation totals per month for the allocations closest to their cap."""
    by_month = screening.tally.allocation_by_month
    headroom = screening.summary["allocation_headroom"][:CHART_SERIES]
    labels = set(by_month.index.get_level_values("allocation")) if len(by_month) else set()
    series, caps = [], {}
    for item in headroom:
        if item["allocation"] not in labels:
            continue
        points = by_month.xs(item["allocation"], level="allocation")
        series.append({"name": item["destination"],
                       "points": [[_month_label(m), int(v)] for m, v in points.items()]})
        caps.setdefault(item["cap_tpp"], []).append(item["destination"])
    return {
        "id": chart_id, "title": "Allocation used over time (running TPP of allocation candidates) vs cap",
        "x_label": "month", "y_label": "TPP", "series": series,
        "reference_lines": [{"name": f"cap {', '.join(names)}", "y": cap} for cap, names in caps.items()],
    }


def lpp_chart(screening: ScreenResult) -> dict | None:
    """Consignee-years crossing the LPP limit, cumulative by month (tiered rule sets only)."""
    tally = screening.tally
    if tally.lpp_limit is None:
        return None
    crossings = tally.lpp_crossings_by_month
    return {
        "id": "lpp", "title": f"Consignee-years crossing the LPP limit ({tally.lpp_limit:,} TPP), cumulative",
        "x_label": "month", "y_label": "consignee-years", "reference_lines": [],
        "series": [{"name": "crossings", "points": [[_month_label(m), int(c)]
                                                   for m, c in zip(crossings.index, np.cumsum(crossings.to_numpy()))]}],
    }


def _decisions_table(summary: dict, table_id: str = "by-destination", title: str = "Decisions by destination") -> dict:
    order = list(reversed(DECISIONS))
    rows = [[d] + [counts.get(name, 0) for name in order] + [sum(counts.values())]
            for d, counts in summary["by_destination"].items()]
    return {"id": table_id, "title": title, "columns": ["destination"] + order + ["rows"], "rows": rows,
            "numeric": order + ["rows"], "note": None}


def _headroom_table(headroom: list[dict], table_id: str = "headroom", title: str = "Cap headroom") -> dict:
    columns = ["destination", "window_start", "window_end", "cap_tpp", "allocated_tpp", "requested_tpp",
               "remaining_tpp", "exceeded_rows"]
    return {"id": table_id, "title": title, "columns": columns,
            "rows": [[item[c] for c in columns] for item in headroom],
            "numeric": columns[3:], "note": "allocated: running total before the first line over the cap"}


def _frame_table(frame: pd.DataFrame, table_id: str, title: str, note: str | None = None) -> dict:
    shown = frame.head(TABLE_ROWS)
    rows = [[None if pd.isna(v) else (v.isoformat() if hasattr(v, "isoformat") else v) for v in row]
            for row in shown.itertuples(index=False, name=None)]
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    more = f"showing {len(shown):,} of {len(frame):,} rows" if len(frame) > len(shown) else None
    return {"id": table_id, "title": title, "columns": list(frame.columns), "rows": rows, "numeric": numeric,
            "note": "; ".join(n for n in (note, more) if n) or None}


def volume_chart(summary: dict, chart_id: str = "china-volume") -> dict | None:
    """Headroom of the China volume condition over time, for the keys closest to it."""
    volume = summary.get("china_volume")
    if not volume or not volume["keys"]:
        return None
    series = [{"name": f"{item['sku']} ({item['exporter'] or 'no exporter'})",
               "points": [[f"{m['month']}-01", m["headroom"]] for m in item["by_month"]]}
              for item in volume["keys"][:CHART_SERIES]]
    return {"id": chart_id, "title": f"China volume condition: headroom per exporter and SKU over time "
                                      f"({volume['max_share_percent']}% of US shipments, in {volume['unit']})",
            "x_label": "month", "y_label": volume["unit"], "series": series,
            "reference_lines": [{"name": "share reached", "y": 0}]}


def _volume_table(summary: dict, table_id: str = "china-volume", title: str = "China volume condition") -> dict | None:
    volume = summary.get("china_volume")
    if not volume:
        return None
    columns = ["exporter", "sku", "month", "us", "cn", "headroom"]
    rows = [[item["exporter"] or "(no exporter)", item["sku"], m["month"], m["us"], m["cn"], m["headroom"]]
            for item in volume["keys"] for m in item["by_month"]]
    return {"id": table_id, "title": f"{title}: licensed China/Macau lines (cn) vs US shipments (us), month-end "
                                     f"totals in {volume['unit']}",
            "columns": columns, "rows": rows[:TABLE_ROWS], "numeric": columns[3:],
            "note": (f"headroom = floor({volume['max_share_percent']}% × us) − cn (cn counts every licensed line "
                     f"that entered the condition, those over it too); {volume['key_count']:,} exporter/SKU keys, "
                     f"{volume['keys_over']:,} over the share; shown: the {len(volume['keys']):,} with the least "
                     f"headroom, least first" + (f"; first {TABLE_ROWS:,} of {len(rows):,} month rows"
                                                 if len(rows) > TABLE_ROWS else ""))}


def license_table(summary: dict, table_id: str = "licenses", title: str = "License depletion") -> dict | None:
    """Per license drawn on or named: maxima, used, remaining, first and last use, lines over and
    not covered; nearest its limits first."""
    licenses = summary.get("licenses")
    if not licenses:
        return None
    columns = ["license_id", "destination_country", "valid_from", "valid_until", "max_units", "used_units",
               "remaining_units", "max_tpp", "used_tpp", "remaining_tpp", "first_use", "last_use", "lines_over",
               "lines_expired", "lines_not_yet_valid", "lines_out_of_scope"]
    unknown = licenses["unknown_ids"]
    note = (f"{licenses['licenses']:,} licenses in {licenses['register']}, {licenses['drawn_on']:,} drawn on; "
            f"used: the totals before the first line over; {licenses['lines_over']:,} lines over")
    if unknown:
        note += (f"; {licenses['lines_not_covered']['LICENSE_UNKNOWN']:,} lines name "
                 f"{licenses['unknown_id_count']:,} license ids not in the register")
    return {"id": table_id, "title": title, "columns": columns,
            "rows": [[item[c] for c in columns] for item in licenses["table"][:TABLE_ROWS]],
            "numeric": [c for c in columns if c.startswith(("max_", "used_", "remaining_", "lines_"))], "note": note}


def license_chart(screening: ScreenResult, chart_id: str = "licenses") -> dict | None:
    """Share of each license used over time (the larger of units and TPP), for those nearest their limits."""
    licenses = screening.summary.get("licenses")
    by_month = screening.tally.license_by_month if screening.tally is not None else None
    if not licenses or by_month is None or not len(by_month):
        return None
    series = []
    for item in licenses["table"]:
        if len(series) == CHART_SERIES or not item["requested_units"]:
            continue
        months = by_month.xs(item["license_id"], level="key").unstack("side").sort_index()
        share = pd.Series(0.0, index=months.index)
        for side in ("units", "tpp"):
            limit = item[f"max_{side}"]
            if limit:
                share = np.maximum(share, 100.0 * months[side].astype(float) / limit)
        series.append({"name": item["license_id"], "points": [[_month_label(m), round(float(v), 3)]
                                                              for m, v in share.items()]})
    if not series:
        return None
    return {"id": chart_id, "title": "License depletion over time: share of the maximum drawn (larger of units and TPP)",
            "x_label": "month", "y_label": "% of maximum", "series": series,
            "reference_lines": [{"name": "maximum", "y": 100}]}


def affiliate_table(screening: ScreenResult) -> dict | None:
    """The consignees the ownership graph makes affiliates (or minority holdings), with evidence."""
    if getattr(screening, "affiliates", None) is None:
        return None
    from pipeline.ownership.affiliates import evidence_table

    frame = evidence_table(screening.affiliates, screening.features)
    ownership = screening.summary.get("ownership") or {}
    holdings = ownership.get("holdings") or {}
    note = (f"{holdings.get('accepted', 0):,} holdings of {holdings.get('rows_read', 0):,} read "
            f"({holdings.get('quarantined', 0):,} quarantined), {ownership.get('entities', 0):,} entities, "
            f"{ownership.get('listed_owners', 0):,} listed owners; an affiliate is DENIED (AFFILIATE) while the rule "
            "is in force, a minority holding of 25% or more is held for REVIEW (AFFILIATE_MINORITY)")
    return _frame_table(frame, "affiliates", "Affiliates among the consignees (Affiliates rule, ownership graph)", note)


def timeline_table(summary: dict) -> dict | None:
    """The rule set's components with their windows and status (``in-force`` rule sets)."""
    timeline = summary["policy"].get("timeline")
    if not timeline:
        return None
    columns = ["component", "title", "from", "until", "status", "source"]
    return {"id": "timeline", "title": "Rules in force: components and their windows",
            "columns": columns, "rows": [[item.get(c) for c in columns] for item in timeline],
            "numeric": [], "note": "each row is decided under the components in force on its ship date"}


def _screen_headline(summary: dict) -> list[dict]:
    rows, decisions = summary["rows"], summary["decisions"]
    headline = [
        {"label": "rows read", "value": rows["rows_read"], "tone": None},
        {"label": "screened", "value": rows["accepted"], "tone": None},
        {"label": "quarantined", "value": rows["quarantined"], "tone": "warn" if rows["quarantined"] else "ok"},
    ]
    for name, tone in (("DENIED", "bad"), ("REVIEW", "warn"), ("CAP_EXCEEDED", "bad"), ("LICENSE_REQUIRED", "warn")):
        headline.append({"label": name, "value": decisions.get(name, 0), "tone": tone if decisions.get(name) else "ok"})
    for code, count in summary.get("flagged_rows", {}).items():
        if count:
            headline.append({"label": code, "value": count, "tone": "warn"})
    return headline


def screen_report(screening: ScreenResult) -> dict:
    """Report content for one screening run."""
    summary = screening.summary
    charts = [allocation_chart(screening)] + [c for c in [lpp_chart(screening), volume_chart(summary),
                                                          license_chart(screening)] if c]
    quarantine = [[reason, count] for reason, count in summary["rows"]["by_reason"].items()]
    return {
        "title": f"chipscreen screening — {summary['policy']['id']}", "kind": "screen",
        "headline": _screen_headline(summary), "charts": charts,
        "tables": [t for t in [timeline_table(summary)] if t]
        + [_decisions_table(summary), _headroom_table(summary["allocation_headroom"])]
        + [t for t in [_volume_table(summary), license_table(summary), affiliate_table(screening)] if t]
        + [{"id": "quarantine", "title": "Quarantined rows by reason", "columns": ["reason", "rows"],
            "rows": quarantine, "numeric": ["rows"], "note": None}],
        "provenance": provenance(summary),
    }


def audit_report(screening: ScreenResult, found: pd.DataFrame, summary: dict) -> dict:
    """Report content for an audit: discrepancies first, then the screening it rests on."""
    section = summary["discrepancies"]
    headline = [
        {"label": "shipped rows", "value": section["shipped_rows"], "tone": None},
        {"label": "rows with discrepancies", "value": section["rows_with_discrepancies"],
         "tone": "bad" if section["rows_with_discrepancies"] else "ok"},
    ] + [{"label": kind, "value": count, "tone": "bad"} for kind, count in section["by_kind"].items()]
    by_kind = [[kind, section["by_kind"].get(kind, 0), meaning] for kind, meaning in section["kinds"].items()]
    report = screen_report(screening)
    report.update({
        "title": f"chipscreen audit — {summary['policy']['id']}", "kind": "audit", "headline": headline,
        "tables": [{"id": "kinds", "title": "Discrepancies by kind", "columns": ["kind", "rows", "meaning"],
                    "rows": by_kind, "numeric": ["rows"], "note": None},
                   _frame_table(found, "discrepancies", "Discrepancies (shipped lines)",
                                "evidence: lpp_cum_tpp vs lpp_limit_tpp, country_cum_tpp vs cap_tpp, "
                                "license_cum_units/tpp vs license_max_units/tpp, cn_volume_cum vs us_volume_cum")]
        + report["tables"],
    })
    return report


def diff_report(runs: list[ScreenResult], labels: list[str], overall: pd.DataFrame, changes: pd.DataFrame,
                summary: dict) -> dict:
    """Report content for a rule-set diff: transitions, headroom under each, changed rows."""
    matrix = [[first] + [int(overall.loc[first, second]) for second in overall.columns] for first in overall.index]
    by_destination = [[d, f, t, n] for d, rows in summary["transitions_by_destination"].items()
                      for f, targets in rows.items() for t, n in targets.items() if f != t]
    by_sku = sorted(([k, f, t, n] for k, rows in summary.get("transitions_by_sku", {}).items()
                     for f, targets in rows.items() for t, n in targets.items() if f != t), key=lambda r: -r[3])
    charts = []
    for run, label in zip(runs, labels):
        chart = allocation_chart(run, chart_id=f"allocation-{label}")
        chart["title"] = f"{label}: allocation used over time vs cap"
        charts.append(chart)
    headline = [{"label": "rows compared", "value": summary["rows"]["accepted"], "tone": None},
                {"label": "rows that change", "value": summary["changed_rows"],
                 "tone": "warn" if summary["changed_rows"] else "ok"}]
    for run, label in zip(runs, labels):
        for name in ("DENIED", "CAP_EXCEEDED", "LICENSE_REQUIRED"):
            headline.append({"label": f"{label}: {name}", "value": run.summary["decisions"].get(name, 0), "tone": None})
    return {
        "title": f"chipscreen diff — {labels[0]} → {labels[1]}", "kind": "diff", "headline": headline,
        "charts": charts,
        "tables": [{"id": "transitions", "title": f"Decisions: {labels[0]} (rows) → {labels[1]} (columns)",
                    "columns": ["from \\ to"] + list(overall.columns), "rows": matrix,
                    "numeric": list(overall.columns), "note": None},
                   {"id": "transitions-by-sku", "title": "Changed decisions by SKU",
                    "columns": ["sku", "from", "to", "rows"], "rows": by_sku, "numeric": ["rows"], "note": None},
                   {"id": "transitions-by-destination", "title": "Changed decisions by destination",
                    "columns": ["destination", "from", "to", "rows"], "rows": by_destination,
                    "numeric": ["rows"], "note": None}]
        + [t for run, label in zip(runs, labels) for t in [timeline_table(run.summary)] if t]
        + [t for run, label in zip(runs, labels)
           for t in [_volume_table(run.summary, f"china-volume-{label}", f"China volume condition under {label}")] if t]
        + [_headroom_table(run.summary["allocation_headroom"], f"headroom-{label}", f"Cap headroom under {label}")
           for run, label in zip(runs, labels)]
        + [_frame_table(changes, "changes", "Rows whose decision or authorization changes")],
        "provenance": {label: provenance(run.summary) for run, label in zip(runs, labels)},
    }
