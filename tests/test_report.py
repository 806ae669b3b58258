"""HTML report and CSV export: escaping, charts, tables, CSV injection, and a real headless browser."""
import csv
import html
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline.report import (
    human_number, render_chart, render_report, spreadsheet_safe, write_csv, write_report,
)

XSS = '<script>alert("x")</script>'
XSS_ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
PWNED = '<script>document.title="pwned"</script>'
ARTIFACTS = Path(__file__).parent / "artifacts"


def chart(chart_id="cap", series=None, reference_lines=None):
    """A chart dict: two dated running totals and the 790M cap unless told otherwise."""
    if series is None:
        series = [
            {"name": "IN", "points": [["2025-01-13", 0], ["2025-03-01", 400_000_000], ["2025-06-30", 900_000_000]]},
            {"name": "AE", "points": [["2025-02-01", 100_000_000], ["2025-05-01", 1_580_000_000]]},
        ]
    if reference_lines is None:
        reference_lines = [{"name": "allocation cap", "y": 790_000_000}]
    return {"id": chart_id, "title": f"Running total {chart_id}", "x_label": "ship date", "y_label": "TPP",
            "series": series, "reference_lines": reference_lines}


def report(party=XSS, **overrides):
    """A complete report dict with ``party`` planted in every kind of field."""
    base = {
        "title": "chipscreen audit — ai-diffusion-2025",
        "kind": "audit",
        "headline": [
            {"label": "Rows screened", "value": 1_000_000, "tone": None},
            {"label": "Denied", "value": 12, "tone": "bad"},
            {"label": party, "value": "AT&T \"quoted\" 'single'", "tone": "warn"},
        ],
        "charts": [chart("cap", series=[{"name": party, "points": [["2025-01-13", 0], ["2025-04-01", 800_000_000]]},
                                        {"name": "IN", "points": [["2025-01-20", 5], ["2025-02-01", 10]]}]),
                   chart("lpp", reference_lines=[{"name": "LPP limit", "y": 26_900_000}])],
        "tables": [{"id": "top", "title": "Top consignees", "columns": ["consignee", "country", "tpp"],
                    "rows": [[party, "CN", 790_000_000], ["Acme & Sons", "IN", 26_900_000], ["Zeta", "AE", None]],
                    "note": "largest first", "numeric": ["tpp"]}],
        "provenance": {"rule_set": "ai-diffusion-2025",
                       "inputs": [{"path": "ledger.parquet", "sha256": "ab" * 32, "comment": party}],
                       "code": {"version": "0.1.0"}},
    }
    base.update(overrides)
    return base


def outside_own_script(document: str) -> str:
    """The document with the report's single inline script block removed."""
    assert document.count("<script>") == 1 and document.count("</script>") == 1
    return re.sub(r"<script>.*?</script>", "", document, flags=re.S)


# ----------------------------------------------------------------------------------------------
# Escaping
# ----------------------------------------------------------------------------------------------

def test_untrusted_strings_are_escaped_everywhere():
    document = render_report(report())
    rest = outside_own_script(document)
    assert "<script" not in rest.lower()
    assert "alert(" not in document.split("<script>")[1]  # the one script is ours
    sections = {
        "headline": rest.split('class="cards"')[1].split("</section>")[0],
        "chart": rest.split('data-chart-id="cap"')[1].split("</svg>")[0],
        "table": rest.split('id="top"')[1].split("</table>")[0],
        "provenance": rest.split('id="provenance"')[1].split("</section>")[0],
    }
    for name, fragment in sections.items():
        assert XSS_ESCAPED in fragment, name
    assert "AT&amp;T &quot;quoted&quot; &#x27;single&#x27;" in sections["headline"]
    assert "Acme &amp; Sons" in sections["table"]
    assert "<title>chipscreen audit — ai-diffusion-2025</title>" in document


def test_attribute_values_are_escaped():
    evil_id = 'x" onmouseover="alert(1)'
    document = render_report(report(charts=[chart(evil_id)],
                                    tables=[{"id": evil_id, "title": "t", "columns": ["a"], "rows": [["b"]]}]))
    assert 'onmouseover="alert(1)' not in document
    assert 'data-chart-id="x&quot; onmouseover=&quot;alert(1)"' in document
    assert 'id="x&quot; onmouseover=&quot;alert(1)"' in document


def test_page_is_self_contained_and_pins_its_script():
    document = render_report(report())
    policy = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', document).group(1))
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", document)
    assert "innerHTML" not in document and "@import" not in document and "url(" not in document


def test_bad_report_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        render_report(report(kind="nonsense"))
    with pytest.raises(ValueError, match="tone"):
        render_report(report(headline=[{"label": "a", "value": 1, "tone": "red"}]))
    with pytest.raises(ValueError, match="cells"):
        render_report(report(tables=[{"id": "t", "title": "t", "columns": ["a", "b"], "rows": [["only one"]]}]))


# ----------------------------------------------------------------------------------------------
# Charts
# ----------------------------------------------------------------------------------------------

def test_chart_has_one_polyline_per_series_legend_and_dashed_reference_line():
    svg = render_chart(chart("cap"))
    assert svg.startswith('<svg class="chart" data-chart-id="cap"')
    assert svg.count("<polyline") == 2
    assert 'data-series="IN"' in svg and 'data-series="AE"' in svg
    assert "allocation cap (790M)" in svg
    assert 'class="reference"' in svg and "stroke-dasharray" in render_report(report())
    assert ">1.5B<" in svg and ">500M<" in svg  # human-readable y ticks
    assert ">2025-01-13<" in svg and ">2025-06-30<" in svg  # first and last dates on x
    assert "no data" not in svg


def test_chart_points_fall_inside_the_plot_area():
    svg = render_chart(chart("cap"))
    for points in re.findall(r'points="([^"]+)"', svg):
        for pair in points.split():
            x, y = map(float, pair.split(","))
            assert 0 <= x <= 760 and 0 <= y <= 320


def test_numeric_x_and_single_point_series():
    svg = render_chart(chart("n", series=[{"name": "one", "points": [[3, 7]]},
                                          {"name": "ramp", "points": [[i, i * 1000] for i in range(20)]}]))
    assert svg.count("<polyline") == 2 and "<circle" in svg


def test_empty_chart_says_no_data():
    for series in ([], [{"name": "nothing", "points": []}]):
        svg = render_chart(chart("empty", series=series))
        assert svg.startswith('<svg class="chart" data-chart-id="empty"')
        assert "no data" in svg and "<polyline" not in svg
    document = render_report(report(charts=[chart("empty", series=[])]))
    assert "no data" in document


def test_long_series_are_thinned():
    points = [[i, i] for i in range(100_000)]
    svg = render_chart(chart("big", series=[{"name": "big", "points": points}], reference_lines=[]))
    assert len(re.search(r'points="([^"]+)"', svg).group(1).split()) == 2000


def test_mixed_x_kinds_are_an_error():
    with pytest.raises(ValueError, match="mix"):
        render_chart(chart("m", series=[{"name": "a", "points": [["2025-01-01", 1]]},
                                        {"name": "b", "points": [[5, 1]]}]))
    with pytest.raises(ValueError, match="ISO date"):
        render_chart(chart("m", series=[{"name": "a", "points": [["yesterday", 1]]}]))


@pytest.mark.parametrize("value, text", [
    (0, "0"), (950, "950"), (12_000, "12k"), (26_900_000, "26.9M"), (790_000_000, "790M"),
    (1_580_000_000, "1.58B"), (999_950_000, "1B"), (-2_500_000, "-2.5M"), (3.2e12, "3.2T"),
    (0.25, "0.25"), (1234.5, "1.23k"),
])
def test_human_number(value, text):
    assert human_number(value) == text


# ----------------------------------------------------------------------------------------------
# Tables and layout
# ----------------------------------------------------------------------------------------------

def test_table_is_sortable_with_numeric_columns_and_row_count():
    document = render_report(report())
    assert '<table class="sortable" id="top">' in document
    assert '<th scope="col" class="num" aria-sort="none" data-numeric="true">tpp</th>' in document
    assert '<td class="num" data-value="790000000.0">790,000,000</td>' in document
    assert '<td class="num" data-value=""></td>' in document  # missing value
    assert ">3 rows<" in document and "largest first" in document
    capped = render_report(report(tables=[{"id": "t", "title": "t", "columns": ["a"], "rows": [["x"]],
                                           "total_rows": 12_345}]))
    assert "1 of 12,345 rows shown" in capped


def test_sections_come_in_order_with_footer():
    document = render_report(report())
    order = [document.index(marker) for marker in
             ('class="cards"', 'id="charts"', 'id="tables"', 'id="provenance"', "<footer>")]
    assert order == sorted(order)
    assert "@media print" in document and "Generated by chipscreen at" in document


def test_write_report_is_atomic_and_leaves_nothing_on_error(tmp_path):
    path = write_report(report(), tmp_path / "sub" / "report.html")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError):
        write_report(report(kind="bogus"), tmp_path / "sub" / "report.html")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["report.html"]


# ----------------------------------------------------------------------------------------------
# CSV injection
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    ("=1+1", "'=1+1"), ("+49 30 1234", "'+49 30 1234"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tTAB", "'\tTAB"), ("\rCR", "'\rCR"), ("-5", "'-5"),
    ("Acme Ltd", "Acme Ltd"), ("a=b", "a=b"), ("", ""), (None, ""), (float("nan"), ""), (pd.NA, ""),
    (-5, "-5"), (42, "42"), (-1.5, "-1.5"), (790_000_000, "790000000"),
])
def test_spreadsheet_safe(value, text):
    assert spreadsheet_safe(value) == text


def test_write_csv_round_trip(tmp_path):
    frame = pd.DataFrame({
        "consignee_name": ["=1+1", "Plain Co", "@evil", 'He said "hi", twice', None],
        "tpp": [1, -5, 790_000_000, 0, 7],
        "score": [0.5, -1.25, 1.0, 2.0, float("nan")],
    })
    path = write_csv(frame, tmp_path / "out" / "decisions.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["consignee_name", "tpp", "score"]
    assert [r[0] for r in rows[1:]] == ["'=1+1", "Plain Co", "'@evil", 'He said "hi", twice', ""]
    assert [r[1] for r in rows[1:]] == ["1", "-5", "790000000", "0", "7"]
    assert [r[2] for r in rows[1:]] == ["0.5", "-1.25", "1.0", "2.0", ""]
    assert list(path.parent.iterdir()) == [path]


# ----------------------------------------------------------------------------------------------
# A real browser
# ----------------------------------------------------------------------------------------------

def find_browser():
    """Path of a headless-capable Chromium, or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def run_browser(browser, profile, *args):
    """Run the browser headless in a fresh profile; return (stdout, seconds)."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, elapsed


@pytest.fixture(scope="module")
def browser():
    path = find_browser()
    if path is None:
        pytest.skip("no headless browser installed (Debian package chromium): report not rendered in a browser")
    return path


@pytest.fixture
def hostile_report(tmp_path):
    """A report with the party name ``PWNED`` in every field, two charts and a table, on disk."""
    return write_report(report(party=PWNED), tmp_path / "report.html")


def test_browser_renders_untrusted_text_as_text(browser, hostile_report, tmp_path):
    dom, seconds = run_browser(browser, tmp_path / "profile-dom", "--dump-dom", hostile_report.as_uri())
    print(f"--dump-dom took {seconds:.2f} s")
    assert "&lt;script&gt;document.title" in dom
    title = re.search(r"<title>(.*?)</title>", dom, flags=re.S).group(1)
    assert title == "chipscreen audit — ai-diffusion-2025" and "pwned" not in title
    assert len(re.findall(r'<svg class="chart"', dom)) == 2
    assert dom.count('<polyline class="series"') == 4
    assert 'data-sortable="ready"' in dom  # our script ran: the CSP hash matches it


def test_browser_sorts_table_on_header_click(browser, tmp_path):
    """Click the numeric header twice from a test-only script (CSP meta removed for the test)."""
    rows = [["b", 10], ["a", 9], ["c", None], ["d", 100], ["e", -3]]
    document = render_report(report(tables=[{"id": "t", "title": "t", "columns": ["name", "n"],
                                             "rows": rows, "numeric": ["n"]}], charts=[]))
    document = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", document)
    clicks = ('<script>var h=document.querySelectorAll("#t th");h[1].click();'
              'document.body.setAttribute("data-asc",Array.prototype.map.call(document.querySelectorAll("#t tbody tr"),'
              'function(r){return r.cells[0].textContent}).join(""));h[1].click();'
              'document.body.setAttribute("data-desc",Array.prototype.map.call(document.querySelectorAll("#t tbody tr"),'
              'function(r){return r.cells[0].textContent}).join(""));h[0].click();</script>')
    page = tmp_path / "sort.html"
    page.write_text(document.replace("</body>", clicks + "</body>"), encoding="utf-8")
    dom, _ = run_browser(browser, tmp_path / "profile-sort", "--dump-dom", page.as_uri())
    assert 'data-asc="eabdc"' in dom  # numeric ascending, missing last
    assert 'data-desc="dbaec"' in dom  # numeric descending, missing still last
    body = dom.split("<tbody>")[1]
    assert [m for m in re.findall(r"<tr><td>(\w)</td>", body)] == list("abcde")  # then by name


def test_browser_screenshot(browser, hostile_report, tmp_path):
    shot = tmp_path / "screenshot.png"
    _, seconds = run_browser(browser, tmp_path / "profile-shot", f"--screenshot={shot}",
                             "--window-size=1280,1600", hostile_report.as_uri())
    print(f"--screenshot took {seconds:.2f} s")
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "report-screenshot.png")
