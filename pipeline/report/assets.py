"""The page's inline stylesheet and table-sorting script (data).

The script is pinned by its hash in the page's Content-Security-Policy (see
:func:`pipeline.report.page.render_report`); it only moves existing rows and reads ``textContent``.
"""


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
