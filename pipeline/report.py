"""Self-contained HTML reports and spreadsheet-safe CSV exports.

A report is a JSON-like dict (see :func:`render_report`) turned into one HTML file that opens
without network access: the styles, the SVG charts and the small table-sorting script are all
inline, and a Content-Security-Policy ``<meta>`` allows only that one script (by its hash), so
even a value that escaped escaping could not run. Every string taken from the dict is escaped
with :func:`html.escape` (``quote=True``); the script only moves existing rows and reads
``textContent``.

CSV exports go through :func:`spreadsheet_safe` (OWASP "CSV injection"): a text cell that a
spreadsheet would read as a formula gets a leading apostrophe.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import html
import math
import numbers
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd

KINDS = ("screen", "audit", "diff")
"""Report kinds accepted in ``report["kind"]``."""

TONES = ("ok", "warn", "bad")
"""Headline card tones (``None`` for neutral)."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters that make a spreadsheet treat a cell as a formula (OWASP)."""

MAX_CHART_POINTS = 2000
"""Points drawn per series; longer series are thinned evenly (first and last points kept)."""

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7b83", "#bc4c00", "#57606a")

# Chart geometry (SVG user units).
WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 16, 52
LEGEND_ROW = 20

SORT_SCRIPT = """
(function () {
  "use strict";
  function key(cell, numeric) {
    if (!cell) { return numeric ? NaN : ""; }
    if (numeric) {
      var raw = cell.getAttribute("data-value");
      return raw === null || raw === "" ? NaN : parseFloat(raw);
    }
    return cell.textContent;
  }
  function compare(a, b, numeric) {
    if (numeric) {
      if (isNaN(a) && isNaN(b)) { return 0; }
      if (isNaN(a)) { return 1; }
      if (isNaN(b)) { return -1; }
      return a - b;
    }
    return a.localeCompare(b, undefined, {numeric: true, sensitivity: "base"});
  }
  function sortBy(table, header, index) {
    var numeric = header.getAttribute("data-numeric") === "true";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = key(r1.cells[index], numeric), b = key(r2.cells[index], numeric);
      if (numeric && (isNaN(a) || isNaN(b))) { return compare(a, b, true); }
      var order = compare(a, b, numeric);
      return ascending ? order : -order;
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      header.setAttribute("tabindex", "0");
      header.addEventListener("click", function () { sortBy(table, header, index); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, header, index); }
      });
    });
  });
  document.documentElement.setAttribute("data-sortable", "ready");
})();
"""

STYLE = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-alt: #f6f8fa;
        --ok: #1a7f37; --warn: #9a6700; --bad: #d1242f; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 24px; color: var(--fg); background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header h1 { margin: 0 0 4px; font-size: 22px; overflow-wrap: anywhere; }
.kind { display: inline-block; padding: 1px 8px; border: 1px solid var(--line); border-radius: 10px;
        color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
h2 { margin: 28px 0 10px; font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { margin: 16px 0 6px; font-size: 15px; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 10px; margin-top: 16px; }
.card { border: 1px solid var(--line); border-left: 5px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.card .label { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.card .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.card.tone-ok { border-left-color: var(--ok); } .card.tone-ok .value { color: var(--ok); }
.card.tone-warn { border-left-color: var(--warn); } .card.tone-warn .value { color: var(--warn); }
.card.tone-bad { border-left-color: var(--bad); } .card.tone-bad .value { color: var(--bad); }
figure { margin: 0 0 18px; break-inside: avoid; }
svg.chart { width: 100%; max-width: 760px; height: auto; display: block; font-size: 11px; }
svg.chart .axis { stroke: #8c959f; stroke-width: 1; }
svg.chart .grid { stroke: #eaeef2; stroke-width: 1; }
svg.chart .tick { fill: var(--muted); }
svg.chart .axis-label { fill: var(--fg); font-size: 12px; }
svg.chart .series { fill: none; stroke-width: 2; stroke-linejoin: round; }
svg.chart .reference { stroke: #57606a; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg.chart .reference-label { fill: #57606a; font-size: 11px; }
svg.chart .empty { fill: var(--muted); font-size: 14px; }
.table-wrap { overflow-x: auto; max-height: 640px; overflow-y: auto; border: 1px solid var(--line); border-radius: 6px; }
table.sortable { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.sortable th, table.sortable td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left;
                                        vertical-align: top; white-space: nowrap; }
table.sortable td.text { white-space: normal; min-width: 16em; max-width: 32em; overflow-wrap: break-word; }
table.sortable th { position: sticky; top: 0; background: var(--bg-alt); cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; }
table.sortable .num { text-align: right; }
table.sortable tbody tr:nth-child(even) { background: #fbfcfd; }
.count, .note, footer { color: var(--muted); font-size: 12px; }
dl.provenance { margin: 0; display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; }
dl.provenance dt { font-weight: 600; overflow-wrap: anywhere; }
dl.provenance dd { margin: 0; overflow-wrap: anywhere; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
dl.provenance dd > dl, dl.provenance dd > ol { font-family: system-ui, sans-serif; font-size: 13px; }
dl.provenance ol { margin: 0; padding-left: 20px; }
.none { color: var(--muted); font-style: italic; }
footer { margin-top: 32px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  .table-wrap { max-height: none; overflow: visible; border: 0; }
  table.sortable th { position: static; }
  table.sortable th::after { content: none !important; }
  section, figure, .card, tr { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


# ----------------------------------------------------------------------------------------------
# Escaping and value formatting
# ----------------------------------------------------------------------------------------------

def _esc(value: Any) -> str:
    """Escape any value as HTML text or attribute content.

    Parameters
    ----------
    value : Any
        Converted with ``str`` (``None`` becomes the empty string).

    Returns
    -------
    str
        ``html.escape(str(value), quote=True)``.
    """
    return html.escape("" if value is None else str(value), quote=True)


def _is_missing(value: Any) -> bool:
    """Tell whether a value is ``None``, NaN, ``pd.NA`` or ``NaT``."""
    if value is None:
        return True
    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return isinstance(missing, bool) and missing


def _is_number(value: Any) -> bool:
    """Tell whether a value is a real number (bools excluded, numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def format_number(value: Any) -> str:
    """Format a number for display: thousands separators, no float noise.

    Parameters
    ----------
    value : numbers.Real
        An int or float (numpy scalars too).

    Returns
    -------
    str
        ``790,000,000`` for integers and integral floats, six significant digits for other
        floats (``0.93``, ``12,345.7``), ``""`` for NaN.
    """
    if _is_missing(value):
        return ""
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    number = float(value)
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if number.is_integer() and abs(number) < 1e18:
        return f"{int(number):,}"
    if abs(number) >= 1e6:
        return f"{number:,.0f}"
    return f"{number:,.6g}"


def human_number(value: float, digits: int = 3) -> str:
    """Short human-readable form of a (large) number: ``790M``, ``1.58B``, ``26.9M``, ``12k``.

    Parameters
    ----------
    value : float
        The number.
    digits : int, optional
        Significant digits of the mantissa (default 3).

    Returns
    -------
    str
        The number scaled by k / M / B / T with trailing zeros dropped.
    """
    number = float(value)
    if number == 0 or not math.isfinite(number):
        return "0" if number == 0 else str(number)
    scales = ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T"))
    level = max(i for i, (scale, _) in enumerate(scales) if abs(number) >= scale or i == 0)
    mantissa = float(f"{number / scales[level][0]:.{digits}g}")
    if abs(mantissa) >= 1000 and level + 1 < len(scales):  # 999.95M rounds to 1000M: write 1B
        level += 1
        mantissa = float(f"{number / scales[level][0]:.{digits}g}")
    text = f"{mantissa:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text}{scales[level][1]}"


def _display(value: Any) -> str:
    """Text shown for one headline value or table cell."""
    if _is_missing(value):
        return ""
    if _is_number(value):
        return format_number(value)
    return str(value)


# ----------------------------------------------------------------------------------------------
# Charts
# ----------------------------------------------------------------------------------------------

def _x_value(x: Any) -> tuple[float, bool]:
    """Map an x coordinate to a float; tell whether it was a date.

    Dates (ISO strings, ``datetime.date``, ``pandas.Timestamp``) become proleptic ordinals.
    """
    if isinstance(x, str):
        try:
            return float(dt.date.fromisoformat(x[:10]).toordinal()), True
        except ValueError as error:
            raise ValueError(f"chart x value {x!r} is neither an ISO date nor a number") from error
    if isinstance(x, dt.date):  # datetime and pandas.Timestamp are dates too
        day = x.date() if isinstance(x, dt.datetime) else x
        return float(day.toordinal()), True
    if _is_number(x):
        return float(x), False
    raise ValueError(f"chart x value {x!r} is neither an ISO date nor a number")


def _clean_points(points: Sequence[Sequence[Any]]) -> tuple[list[tuple[float, float]], bool | None]:
    """Numeric ``(x, y)`` pairs of one series, points with a missing or infinite y dropped.

    Returns
    -------
    tuple
        The pairs and whether the x values are dates (``None`` when there are no points).
    """
    pairs, kinds = [], set()
    for x, y in points:
        if _is_missing(y) or not math.isfinite(float(y)):
            continue
        value, is_date = _x_value(x)
        kinds.add(is_date)
        pairs.append((value, float(y)))
    if len(kinds) > 1:
        raise ValueError("a chart series mixes date and numeric x values")
    return pairs, (kinds.pop() if kinds else None)


def _thin(pairs: list[tuple[float, float]], limit: int = MAX_CHART_POINTS) -> list[tuple[float, float]]:
    """Keep at most ``limit`` evenly spaced points, the first and last included."""
    if len(pairs) <= limit:
        return pairs
    step = (len(pairs) - 1) / (limit - 1)
    return [pairs[round(i * step)] for i in range(limit)]


def _nice_step(span: float, target: int = 5) -> float:
    """A 1-2-5 step that cuts ``span`` into about ``target`` intervals."""
    raw = span / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover


def _nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]``."""
    if high <= low:
        low, high = (low - 1, high + 1) if low == 0 else (low - abs(low) * 0.1, high + abs(high) * 0.1)
    step = _nice_step(high - low, target)
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    count = int(round((last - first) / step))
    return [first + i * step for i in range(count + 1)]


def _tick_labels(ticks: Sequence[float]) -> list[str]:
    """Human-readable labels for numeric ticks, with as many digits as needed to tell them apart."""
    for digits in range(3, 16):
        labels = [human_number(t, digits) for t in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return [format_number(t) for t in ticks]


def _date_ticks(low: float, high: float, target: int = 5) -> tuple[list[float], list[str]]:
    """Evenly spaced whole-day ticks between two ordinals, labelled ``YYYY-MM-DD``."""
    if high <= low:
        low, high = low - 1, high + 1
    count = min(target, int(high - low)) or 1
    ordinals = sorted({round(low + (high - low) * i / count) for i in range(count + 1)})
    return [float(o) for o in ordinals], [dt.date.fromordinal(int(o)).isoformat() for o in ordinals]


class _Frame:
    """Linear map from data coordinates to the plot area of one chart."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], bottom: float):
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.left, self.right = LEFT, WIDTH - RIGHT
        self.top, self.bottom = TOP, bottom

    def x(self, value: float) -> float:
        """SVG x of a data x."""
        span = (self.x1 - self.x0) or 1.0
        return self.left + (value - self.x0) / span * (self.right - self.left)

    def y(self, value: float) -> float:
        """SVG y of a data y."""
        span = (self.y1 - self.y0) or 1.0
        return self.bottom - (value - self.y0) / span * (self.bottom - self.top)


def _legend_rows(names: Sequence[str]) -> list[list[tuple[int, str]]]:
    """Lay legend entries out in rows that fit the chart width (rough text-width estimate)."""
    rows: list[list[tuple[int, str]]] = [[]]
    used = 0.0
    for index, name in enumerate(names):
        width = 34 + 6.5 * min(len(name), 60)
        if rows[-1] and used + width > WIDTH - LEFT - RIGHT:
            rows.append([])
            used = 0.0
        rows[-1].append((index, name))
        used += width
    return rows


def _svg_open(chart_id: str, title: str, height: float) -> str:
    """The ``<svg class="chart">`` start tag and its accessible title."""
    return (f'<svg class="chart" data-chart-id="{_esc(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}" role="img">'
            f"<title>{_esc(title)}</title>")


def _empty_chart(chart: dict) -> str:
    """An SVG that says "no data"."""
    height = 120
    return (_svg_open(chart.get("id", ""), chart.get("title", ""), height)
            + f'<rect x="0.5" y="0.5" width="{WIDTH - 1}" height="{height - 1}" fill="none" class="grid"/>'
            + f'<text class="empty" x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" '
              f'dominant-baseline="middle">no data</text></svg>')


def _axes(frame: _Frame, x_ticks: list[tuple[float, str]], y_ticks: list[tuple[float, str]],
          x_label: str, y_label: str) -> list[str]:
    """Grid lines, axis lines, tick labels and axis titles."""
    parts = []
    for value, label in y_ticks:
        y = frame.y(value)
        parts.append(f'<line class="grid" x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{frame.left - 6}" y="{y:.1f}" text-anchor="end" '
                     f'dominant-baseline="middle">{_esc(label)}</text>')
    for index, (value, label) in enumerate(x_ticks):
        x = frame.x(value)
        anchor = "start" if index == 0 and len(x_ticks) > 1 else "end" if index == len(x_ticks) - 1 and index else "middle"
        parts.append(f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{frame.bottom}" y2="{frame.bottom + 4}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{frame.bottom + 16}" text-anchor="{anchor}">{_esc(label)}</text>')
    parts.append(f'<line class="axis" x1="{frame.left}" x2="{frame.right}" y1="{frame.bottom}" y2="{frame.bottom}"/>')
    parts.append(f'<line class="axis" x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" y2="{frame.bottom}"/>')
    middle_x = (frame.left + frame.right) / 2
    parts.append(f'<text class="axis-label" x="{middle_x:.1f}" y="{frame.bottom + 34}" '
                 f'text-anchor="middle">{_esc(x_label)}</text>')
    middle_y = (frame.top + frame.bottom) / 2
    parts.append(f'<text class="axis-label" x="14" y="{middle_y:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {middle_y:.1f})">{_esc(y_label)}</text>')
    return parts


def _series_marks(frame: _Frame, name: str, pairs: list[tuple[float, float]], color: str) -> str:
    """One polyline (and a dot when the series has a single point)."""
    coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in _thin(pairs))
    mark = (f'<polyline class="series" data-series="{_esc(name)}" stroke="{color}" points="{coords}">'
            f"<title>{_esc(name)}</title></polyline>")
    if len(pairs) == 1:
        x, y = pairs[0]
        mark += f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3" fill="{color}"/>'
    return mark


def _reference_marks(frame: _Frame, line: dict) -> str:
    """A dashed horizontal line with its name and value at the right end."""
    y = frame.y(float(line["y"]))
    label = f"{line.get('name', '')} ({human_number(float(line['y']))})"
    return (f'<line class="reference" x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="reference-label" x="{frame.right - 4}" y="{y - 5:.1f}" '
            f'text-anchor="end">{_esc(label)}</text>')


def _legend(names: Sequence[str], top: float) -> list[str]:
    """Legend entries (colour swatch and name) below the x-axis title."""
    parts = []
    for row_number, row in enumerate(_legend_rows(names)):
        x, y = float(LEFT), top + row_number * LEGEND_ROW
        for index, name in row:
            color = PALETTE[index % len(PALETTE)]
            parts.append(f'<g class="legend-item"><line x1="{x:.1f}" x2="{x + 22:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{color}" stroke-width="3"/><text x="{x + 28:.1f}" y="{y:.1f}" '
                         f'dominant-baseline="middle">{_esc(name)}</text></g>')
            x += 34 + 6.5 * min(len(name), 60)
    return parts


def render_chart(chart: dict) -> str:
    """Draw one line chart as inline SVG.

    Parameters
    ----------
    chart : dict
        ``id``, ``title``, ``x_label``, ``y_label``, ``series`` (``[{"name", "points": [[x, y],
        ...]}]``, x an ISO date or a number, y a number) and ``reference_lines``
        (``[{"name", "y"}]``, drawn dashed).

    Returns
    -------
    str
        ``<svg class="chart" data-chart-id=...>`` with one ``<polyline>`` per series that has
        points, or a "no data" placeholder when no series has any.
    """
    series = [(str(s.get("name", "")), *_clean_points(s.get("points") or [])) for s in chart.get("series") or []]
    references = [r for r in chart.get("reference_lines") or [] if not _is_missing(r.get("y"))]
    drawn = [(name, pairs) for name, pairs, _ in series if pairs]
    if not drawn:
        return _empty_chart(chart)
    if len({is_date for _, pairs, is_date in series if pairs}) > 1:
        raise ValueError(f"chart {chart.get('id')!r} mixes date and numeric x values")
    dates = next(is_date for _, pairs, is_date in series if pairs)

    xs = [x for _, pairs in drawn for x, _ in pairs]
    ys = [y for _, pairs in drawn for _, y in pairs] + [float(r["y"]) for r in references]
    y_values = _nice_ticks(min(0.0, min(ys)), max(0.0, max(ys)) * (1.04 if references else 1.0))
    if dates:
        x_positions, x_labels = _date_ticks(min(xs), max(xs))
    else:
        x_positions = _nice_ticks(min(xs), max(xs))
        x_labels = _tick_labels(x_positions)
    x_range = (min(x_positions[0], min(xs)), max(x_positions[-1], max(xs)))

    names = [name for name, _, _ in series]
    legend_height = LEGEND_ROW * len(_legend_rows(names))
    plot_bottom = HEIGHT - BOTTOM
    height = HEIGHT + legend_height
    frame = _Frame(x_range, (y_values[0], y_values[-1]), plot_bottom)

    parts = [_svg_open(chart.get("id", ""), chart.get("title", ""), height)]
    parts += _axes(frame, list(zip(x_positions, x_labels)), list(zip(y_values, _tick_labels(y_values))),
                   chart.get("x_label", ""), chart.get("y_label", ""))
    parts += [_reference_marks(frame, line) for line in references]
    parts += [_series_marks(frame, name, pairs, PALETTE[i % len(PALETTE)])
              for i, (name, pairs, _) in enumerate(series) if pairs]
    parts += _legend([f"{name} (no data)" if not pairs else name for name, pairs, _ in series],
                     plot_bottom + BOTTOM + 6)
    parts.append("</svg>")
    return "".join(parts)


# ----------------------------------------------------------------------------------------------
# Page sections
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------

@contextmanager
def _atomic_open(path: Path, newline: str | None = None) -> Iterator[Any]:
    """Open a temporary text file next to ``path``; on success move it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline=newline, dir=path.parent,
                                         prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)  # a temporary file is private; the output is not
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


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


def spreadsheet_safe(value: Any) -> str:
    """Text of one CSV cell that a spreadsheet cannot run as a formula.

    Parameters
    ----------
    value : Any
        The cell value.

    Returns
    -------
    str
        ``""`` for ``None``/NaN/NA; numbers as ``str(value)`` unchanged (``-5`` is a number,
        not a formula); any other value as text, with a leading ``'`` when it starts with
        ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (OWASP CSV injection guidance).
    """
    if _is_missing(value):
        return ""
    if _is_number(value):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a DataFrame as UTF-8 CSV (``csv.QUOTE_MINIMAL``), every cell through :func:`spreadsheet_safe`.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data; the index is not written, the column names are (made safe too).
    path : str or os.PathLike
        Destination file, written atomically; missing parent folders are created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    safe = pd.DataFrame({spreadsheet_safe(name): _safe_column(frame[name]) for name in frame.columns})
    with _atomic_open(path, newline="") as handle:
        safe.to_csv(handle, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    return path


def _safe_column(column: pd.Series) -> pd.Series:
    """:func:`spreadsheet_safe` over a whole column at once; numbers and dates pass unchanged."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column
    text = column.astype("string")
    formula = text.str.startswith(FORMULA_PREFIXES).fillna(False)
    return ("'" + text).where(formula, text).fillna("")
