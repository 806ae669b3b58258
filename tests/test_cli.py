"""The command line: screen, policies, generate, demo, and clear errors on bad input."""
import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from conftest import shipment, write_ledger
from flows.cli import app

runner = CliRunner()


def test_screen_writes_outputs_and_records_overrides(tmp_path):
    ledger = write_ledger([shipment("A", quantity=600), shipment("B", "2025-03-02", quantity=1)], tmp_path / "l.csv")
    out = tmp_path / "out"
    result = runner.invoke(app, ["screen", str(ledger), "--policy", "ai-diffusion-2025", "--out", str(out),
                                 "--set", "lpp.limit_tpp=7916000", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy"]["overrides"] == ["lpp.limit_tpp=7916000"]
    assert summary["decisions"] == {"LICENSE_REQUIRED": 2}   # 600 H100 = 9.5M TPP > 7.9M
    assert pq.read_table(out / "decisions.parquet").num_rows == 2


def test_screen_as_of_limits_the_rows(tmp_path):
    ledger = write_ledger([shipment("A", "2025-01-01"), shipment("B", "2025-12-01")], tmp_path / "l.parquet")
    result = runner.invoke(app, ["screen", str(ledger), "-p", "post-rescission-2025", "-o", str(tmp_path / "o"),
                                 "--as-of", "2025-06-30"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["rows"]["accepted"] == 1 and summary["rows"]["excluded_after_as_of"] == 1
    assert "Decisions by destination" in result.output


def test_unreadable_ledger_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"nope")
    result = runner.invoke(app, ["screen", str(broken), "--policy", "ai-diffusion-2025", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "broken.parquet" in result.output and "error" in result.output


def test_bad_arguments_are_clear_errors(tmp_path):
    ledger = write_ledger([shipment("A")], tmp_path / "l.csv")
    base = ["screen", str(ledger), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, base + ["--policy", "no-such-policy"])
    assert result.exit_code == 1 and "unknown rule set" in result.output
    result = runner.invoke(app, base + ["--policy", "ai-diffusion-2025", "--set", "lpp.limit_tpp=many"])
    assert result.exit_code == 1 and "expected int" in result.output
    result = runner.invoke(app, base + ["--policy", "ai-diffusion-2025", "--as-of", "yesterday"])
    assert result.exit_code == 2 and "not a date" in result.output
    result = runner.invoke(app, ["screen", str(ledger)])
    assert result.exit_code == 2 and "--policy" in result.output


def test_policies_lists_both_rule_sets_with_parameters():
    result = runner.invoke(app, ["policies"])
    assert result.exit_code == 0
    assert "ai-diffusion-2025" in result.output and "post-rescission-2025" in result.output
    assert "26900000" in result.output and "lpp.limit_tpp" in result.output


def test_generate_then_demo(tmp_path):
    path = tmp_path / "g.csv"
    result = runner.invoke(app, ["generate", str(path), "--rows", "500", "--bad-rows", "7", "--quiet"])
    assert result.exit_code == 0, result.output
    assert path.exists()
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--rows", "3000"])
    assert result.exit_code == 0, result.output
    for policy in ("ai-diffusion-2025", "post-rescission-2025"):
        summary = json.loads((tmp_path / "demo" / policy / "summary.json").read_text())
        rows = summary["rows"]
        assert rows["rows_read"] == rows["accepted"] + rows["quarantined"] and rows["quarantined"] > 0
    assert "Cap headroom" in result.output


def test_audit_and_diff_write_reports_with_untrusted_names_escaped(tmp_path):
    hostile = '<script>alert("x")</script> =HYPERLINK("http://evil")'
    rows = [shipment("A1", consignee_name=hostile, consignee_id="C-1", quantity=1000, recorded_authorization="LPP"),
            shipment("A2", "2025-04-01", consignee_name=hostile, consignee_id="C-1", quantity=1000,
                     recorded_authorization="LPP"),
            shipment("A3", destination_country="CN", recorded_authorization="LICENSE", license_id="L")]
    ledger = write_ledger(rows, tmp_path / "history.csv")
    out = tmp_path / "audit"
    result = runner.invoke(app, ["audit", str(ledger), "--policy", "ai-diffusion-2025", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["discrepancies"]["by_kind"] == {"SHIPPED_DENIED": 1, "LPP_OVER_LIMIT": 1, "UNLICENSED": 1}
    html = (out / "report.html").read_text()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html and '<script>alert("x")' not in html
    assert 'class="chart"' in html
    csv_text = (out / "discrepancies.csv").read_text()
    assert "'<script>" not in csv_text and "=HYPERLINK" in csv_text  # not at a cell start: left as is
    assert pq.read_table(out / "discrepancies.parquet").num_rows == 2

    out = tmp_path / "diff"
    result = runner.invoke(app, ["diff", str(ledger), "-p", "ai-diffusion-2025", "-p", "post-rescission-2025",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["changed_rows"] == 2 and summary["transitions"]["DENIED"] == {"DENIED": 1}
    assert (out / "a" / "decisions.parquet").exists() and (out / "b" / "decisions.parquet").exists()
    assert "Decisions: ai-diffusion-2025 (rows)" in (out / "report.html").read_text()
    result = runner.invoke(app, ["diff", str(ledger), "-p", "ai-diffusion-2025", "--out", str(out)])
    assert result.exit_code == 2 and "exactly two" in result.output


def test_csv_exports_neutralise_formulas(tmp_path):
    rows = [shipment("F1", consignee_name='=HYPERLINK("http://evil")', destination_country="CN",
                     recorded_authorization="LICENSE", license_id="L")]
    out = tmp_path / "audit"
    result = runner.invoke(app, ["audit", str(write_ledger(rows, tmp_path / "h.csv")), "-p", "ai-diffusion-2025",
                                 "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    import csv
    with open(out / "discrepancies.csv", newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["consignee_name"] == "'=HYPERLINK(\"http://evil\")"
