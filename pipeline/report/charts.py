"""Inline SVG line charts: axes, ticks, series, reference lines and legend, every label escaped."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any, Sequence

from pipeline.report.formatting import _esc, _is_missing, _is_number, format_number, human_number


MAX_CHART_POINTS = 2000
"""Points drawn per series; longer series are thinned evenly (first and last points kept)."""

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7b83", "#bc4c00", "#57606a")

# Chart geometry (SVG user units).
WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 16, 52
LEGEND_ROW = 20


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
