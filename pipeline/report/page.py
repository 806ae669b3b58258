"""The HTML page of a report: headline cards, charts, sortable tables, provenance, and its CSP.

Every string taken from the report dict is escaped; the page opens without network access.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

from pipeline.report.assets import SORT_SCRIPT, STYLE
from pipeline.report.atomic import _atomic_open
from pipeline.report.charts import render_chart
from pipeline.report.formatting import _display, _esc, _is_missing, _is_number, format_number

KINDS = ("screen", "audit", "diff")
"""Report kinds accepted in ``report["kind"]``."""

TONES = ("ok", "warn", "bad")
"""Headline card tones (``None`` for neutral)."""


def _headline(cards: Sequence[dict]) -> str:
    """Key figures as cards."""
    if not cards:
        return ""
    items = []
    for card in cards:
        tone = card.get("tone")
        if tone is not None and tone not in TONES:
            raise ValueError(f"headline tone must be one of {TONES} or None, not {tone!r}")
        css = f"card tone-{tone}" if tone else "card"
        items.append(f'<div class="{css}"><div class="label">{_esc(card.get("label"))}</div>'
                     f'<div class="value">{_esc(_display(card.get("value")))}</div></div>')
    return f'<section class="cards" aria-label="key figures">{"".join(items)}</section>'


def _charts(charts: Sequence[dict]) -> str:
    """The charts section, one figure per chart."""
    if not charts:
        return ""
    figures = [f'<figure><h3>{_esc(c.get("title"))}</h3>{render_chart(c)}</figure>' for c in charts]
    return f'<section id="charts"><h2>Charts</h2>{"".join(figures)}</section>'


def _cell(value: Any, numeric: bool) -> str:
    """One ``<td>``; numeric cells carry their raw value for sorting."""
    text = _esc(_display(value))
    if not numeric:
        return f'<td class="text">{text}</td>' if len(text) > 40 else f"<td>{text}</td>"
    raw = "" if _is_missing(value) or not _is_number(value) else repr(float(value))
    return f'<td class="num" data-value="{_esc(raw)}">{text}</td>'


def _header_cell(column: str, numeric: bool) -> str:
    """One ``<th>``; the script reads ``data-numeric`` to pick the sort order."""
    if numeric:
        return f'<th scope="col" class="num" aria-sort="none" data-numeric="true">{_esc(column)}</th>'
    return f'<th scope="col" aria-sort="none" data-numeric="false">{_esc(column)}</th>'


def render_table(table: dict) -> str:
    """One sortable table with its title, row count and note.

    Parameters
    ----------
    table : dict
        ``id``, ``title``, ``columns``, ``rows`` (already capped by the caller), ``note``
        (optional), ``numeric`` (column names right-aligned and sorted as numbers) and,
        optionally, ``total_rows`` (rows before the cap, shown as "N of M rows").

    Returns
    -------
    str
        The HTML block.
    """
    columns = [str(c) for c in table.get("columns") or []]
    numeric = {str(c) for c in table.get("numeric") or []}
    flags = [c in numeric for c in columns]
    rows = table.get("rows") or []
    for number, row in enumerate(rows):
        if len(row) != len(columns):
            raise ValueError(f"table {table.get('id')!r} row {number} has {len(row)} cells, "
                             f"expected {len(columns)}")
    head = "".join(_header_cell(c, f) for c, f in zip(columns, flags))
    body = "".join("<tr>" + "".join(_cell(v, f) for v, f in zip(row, flags)) + "</tr>" for row in rows)
    total = table.get("total_rows")
    count = (f"{format_number(len(rows))} of {format_number(total)} rows shown"
             if total is not None and total != len(rows) else f"{format_number(len(rows))} rows")
    note = f'<p class="note">{_esc(table["note"])}</p>' if table.get("note") else ""
    return (f'<div class="table-block"><h3>{_esc(table.get("title"))}</h3>'
            f'<p class="count">{_esc(count)}</p>'
            f'<div class="table-wrap"><table class="sortable" id="{_esc(table.get("id"))}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{note}</div>")


def _tables(tables: Sequence[dict]) -> str:
    """The tables section."""
    if not tables:
        return ""
    return f'<section id="tables"><h2>Tables</h2>{"".join(render_table(t) for t in tables)}</section>'


def _provenance_value(value: Any) -> str:
    """Nested provenance: dicts as definition lists, lists as ordered lists, scalars as text."""
    if isinstance(value, dict):
        if not value:
            return '<span class="none">none</span>'
        items = "".join(f"<dt>{_esc(k)}</dt><dd>{_provenance_value(v)}</dd>" for k, v in value.items())
        return f'<dl class="provenance">{items}</dl>'
    if isinstance(value, (list, tuple)):
        if not value:
            return '<span class="none">none</span>'
        return "<ol>" + "".join(f"<li>{_provenance_value(v)}</li>" for v in value) + "</ol>"
    if _is_missing(value):
        return '<span class="none">—</span>'
    return _esc(value)


def _provenance(provenance: Any) -> str:
    """The provenance section."""
    body = _provenance_value(provenance) if provenance else '<p class="none">none recorded</p>'
    return f'<section id="provenance"><h2>Provenance</h2>{body}</section>'


def _content_security_policy(script: str) -> str:
    """A CSP that allows inline styles, inline SVG and exactly the given inline script."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def render_report(report: dict, *, generated_at: dt.datetime | None = None) -> str:
    """Render a report dict as one self-contained HTML page.

    Parameters
    ----------
    report : dict
        ``title`` (str), ``kind`` (``"screen"``, ``"audit"`` or ``"diff"``), ``headline``
        (``[{"label", "value", "tone"}]``, tone ``"ok"``/``"warn"``/``"bad"``/``None``),
        ``charts`` (see :func:`render_chart`), ``tables`` (see :func:`render_table`) and
        ``provenance`` (nested dict/list/scalars). Every section but ``kind`` is optional.
    generated_at : datetime.datetime, optional
        Time shown in the footer (default: now, UTC).

    Returns
    -------
    str
        The HTML document. Every string from ``report`` is HTML-escaped; the page needs no
        network access and runs only its own table-sorting script (pinned by a CSP hash).

    Raises
    ------
    ValueError
        On an unknown ``kind`` or tone, a table row of the wrong width, or an x value that is
        neither an ISO date nor a number.
    """
    kind = report.get("kind")
    if kind not in KINDS:
        raise ValueError(f"report kind must be one of {KINDS}, not {kind!r}")
    title = report.get("title") or f"chipscreen {kind} report"
    stamp = (generated_at or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{_esc(_content_security_policy(SORT_SCRIPT))}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="chipscreen report"><title>{_esc(title)}</title>',
        f"<style>{STYLE}</style></head>\n<body>",
        f'<header><h1>{_esc(title)}</h1><span class="kind">{_esc(kind)}</span></header>\n',
        _headline(report.get("headline") or []), "\n",
        _charts(report.get("charts") or []), "\n",
        _tables(report.get("tables") or []), "\n",
        _provenance(report.get("provenance")), "\n",
        f'<footer>Generated by chipscreen at <time datetime="{_esc(stamp)}">{_esc(stamp)}</time>.</footer>\n',
        f"<script>{SORT_SCRIPT}</script>\n</body></html>\n",
    ])


def write_report(report: dict, path: str | os.PathLike) -> Path:
    """Render ``report`` and write it atomically (temporary file, then ``os.replace``).

    Parameters
    ----------
    report : dict
        See :func:`render_report`.
    path : str or os.PathLike
        Destination ``.html`` file; missing parent folders are created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    document = render_report(report)  # render first: a bad report leaves no file behind
    with _atomic_open(path) as handle:
        handle.write(document)
    return path
