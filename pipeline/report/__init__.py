"""Self-contained HTML reports and spreadsheet-safe CSV exports.

A report is a JSON-like dict (see :func:`render_report`) turned into one HTML file that opens
without network access: the styles, the SVG charts and the small table-sorting script are all
inline, and a Content-Security-Policy ``<meta>`` allows only that one script (by its hash), so
even a value that escaped escaping could not run. Every string taken from the dict is escaped
with :func:`html.escape` (``quote=True``); the script only moves existing rows and reads
``textContent``.

CSV exports go through :func:`spreadsheet_safe` (OWASP "CSV injection"): a text cell that a
spreadsheet would read as a formula gets a leading apostrophe.

Modules: :mod:`~pipeline.report.page` (the HTML page), :mod:`~pipeline.report.charts` (SVG
charts), :mod:`~pipeline.report.formatting` (escaping, numbers), :mod:`~pipeline.report.assets`
(stylesheet and script), :mod:`~pipeline.report.csv_export` (CSV), :mod:`~pipeline.report.atomic`
(atomic file writes).
"""
from pipeline.report.assets import SORT_SCRIPT, STYLE
from pipeline.report.charts import MAX_CHART_POINTS, PALETTE, render_chart
from pipeline.report.csv_export import FORMULA_PREFIXES, spreadsheet_safe, write_csv
from pipeline.report.formatting import format_number, human_number
from pipeline.report.page import KINDS, TONES, render_report, render_table, write_report

__all__ = [
    "FORMULA_PREFIXES", "KINDS", "MAX_CHART_POINTS", "PALETTE", "SORT_SCRIPT", "STYLE", "TONES", "format_number",
    "human_number", "render_chart", "render_report", "render_table", "spreadsheet_safe", "write_csv", "write_report",
]
