"""The dated rule set ``in-force``: its file, its timeline, the China volume accumulator through
chunks, pieces, nights and reports, and the rule-set diff that shows the 2025-2026 transitions."""
import datetime as dt
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import shipment, write_ledger
from flows.cli import app
from kernels.backend import Backend
from pipeline.ingest import read_ledgers
from pipeline.policy import PolicyError, load_policy
from pipeline.run.source import split_rows
from pipeline.screen import screen_ledger

H200 = "NVIDIA-H200"


def volume_rows():
    """US shipments and licensed China lines of one SKU by two exporters, around the H200 rule."""
    rows = [
        shipment("U1", "2025-12-01", destination_country="US", sku=H200, quantity=10, exporter="A"),
        shipment("C0", "2026-01-14", destination_country="CN", sku=H200, quantity=4, exporter="A", license_id="L"),
        shipment("C1", "2026-01-15", destination_country="CN", sku=H200, quantity=4, exporter="A", license_id="L"),
        shipment("C2", "2026-01-16", destination_country="HK", sku=H200, quantity=2, exporter="A", license_id="L"),
        shipment("C3", "2026-01-17", destination_country="CN", sku=H200, quantity=1, exporter="B", license_id="L"),
        shipment("U2", "2026-02-01", destination_country="US", sku=H200, quantity=4, exporter="A"),
        shipment("C4", "2026-02-02", destination_country="MO", sku=H200, quantity=1, exporter="A", license_id="L"),
        shipment("C5", "2026-03-01", destination_country="CN", sku=H200, quantity=3, exporter="A"),
        shipment("U3", "2026-03-02", destination_country="US", sku=H200, quantity=8, exporter="B"),
        shipment("C6", "2026-03-03", destination_country="CN", sku=H200, quantity=4, exporter="B", license_id="L"),
    ]
    return rows


@pytest.fixture
def ledger(tmp_path):
    return read_ledgers([write_ledger(volume_rows(), tmp_path / "l.parquet")])


def by_id(run, column):
    table = run.decisions
    return dict(zip(table.column("shipment_id").to_pylist(), table.column(column).cast("string").to_pylist()))


def test_the_volume_condition_runs_per_exporter_and_sku(ledger):
    run = screen_ledger(ledger, load_policy("in-force"))
    decision, reasons = by_id(run, "decision"), by_id(run, "reasons")
    cn, us = by_id(run, "cn_volume_cum"), by_id(run, "us_volume_cum")
    # Before 2026-01-15 an H200 to China is denied (D:5); from then on case-by-case.
    assert decision["C0"] == "DENIED" and "D5" in reasons["C0"].split(";")
    assert (decision["C1"], cn["C1"], us["C1"]) == ("AUTHORIZED", "4", "10")  # 2 x 4 <= 10
    assert (decision["C2"], cn["C2"], us["C2"]) == ("CAP_EXCEEDED", "6", "10")  # 2 x 6 > 10: HK counts as CN
    assert "CN_US_RATIO" in reasons["C2"].split(";")
    assert (decision["C3"], cn["C3"], us["C3"]) == ("CAP_EXCEEDED", "1", "0")  # exporter B shipped nothing to the US
    assert us["U2"] == "14" and cn["U2"] is None
    assert (decision["C4"], cn["C4"], us["C4"]) == ("AUTHORIZED", "7", "14")  # back under: 14 >= 2 x 7
    assert decision["C5"] == "LICENSE_REQUIRED" and cn["C5"] is None  # no license: not a candidate
    assert (decision["C6"], cn["C6"], us["C6"]) == ("CAP_EXCEEDED", "5", "8")  # B: 2 x 5 > 8
    volume = run.summary["china_volume"]
    assert volume["unit"] == "units" and volume["max_share_percent"] == 50
    keys = {(k["exporter"], k["sku"]): k for k in volume["keys"]}
    assert keys[("A", H200)]["cn"] == 7 and keys[("A", H200)]["us"] == 14 and keys[("A", H200)]["headroom"] == 0
    assert keys[("A", H200)]["rows_over"] == 1 and keys[("B", H200)]["rows_over"] == 2
    assert [m["month"] for m in keys[("A", H200)]["by_month"]] == ["2025-12", "2026-01", "2026-02"]
    assert keys[("B", H200)]["by_month"][-1] == {"month": "2026-03", "us": 8, "cn": 5, "headroom": -1}


def test_the_unit_and_share_are_parameters(ledger):
    tpp = screen_ledger(ledger, load_policy("in-force", ["components.china-volume.unit=tpp"]))
    unit_tpp = 15832
    assert by_id(tpp, "cn_volume_cum")["C1"] == str(4 * unit_tpp)
    assert tpp.summary["china_volume"]["unit"] == "tpp"
    loose = screen_ledger(ledger, load_policy("in-force", ["components.china-volume.max_share_percent=100"]))
    assert by_id(loose, "decision")["C2"] == "AUTHORIZED"  # 6 <= 10
    off = screen_ledger(ledger, load_policy("in-force", ["components.china-volume.effective_until=2026-01-15"]))
    assert by_id(off, "decision")["C2"] == "AUTHORIZED" and by_id(off, "cn_volume_cum")["C2"] is None


@pytest.mark.parametrize("chunk_rows", [1, 3])
def test_chunks_and_pieces_give_the_same_volume_totals(ledger, chunk_rows):
    from pipeline.run.run import Run
    from pipeline.run.scan import scan

    policy = load_policy("in-force")
    whole = screen_ledger(ledger, policy)
    chunked = screen_ledger(ledger, policy, backend=Backend("numpy", np, chunk_rows=chunk_rows))
    for column in ("decision", "reasons", "cn_volume_cum", "us_volume_cum"):
        assert by_id(chunked, column) == by_id(whole, column), column
    assert chunked.outcome.carry.equals(whole.outcome.carry)
    assert sorted(whole.outcome.carry.totals) == ["allocation", "china_volume", "china_volume.base"] or \
        sorted(whole.outcome.carry.totals) == ["china_volume", "china_volume.base"]
    with Run.open(None, publish=False) as run:
        scanned = scan(run, split_rows(ledger.rows, chunk_rows), policy, keep=True)
    assert scanned.carry.equals(whole.outcome.carry)
    got = [v for p in scanned.pieces for v in p.screened.decisions_table(policy).column("cn_volume_cum").to_pylist()]
    assert got == whole.decisions.column("cn_volume_cum").to_pylist()


def test_the_volume_totals_carry_across_a_checkpoint(ledger):
    from pipeline.run.run import Run
    from pipeline.run.scan import scan

    policy = load_policy("in-force")
    whole = screen_ledger(ledger, policy)
    with Run.open(None, publish=False) as run:
        history = scan(run, split_rows(ledger.rows.slice(0, 5), 5), policy)
        tonight = scan(run, split_rows(ledger.rows.slice(5), 5), policy, carry=history.carry, keep=True)
    table = tonight.pieces[0].screened.decisions_table(policy)
    for column in ("decision", "cn_volume_cum", "us_volume_cum"):
        assert table.column(column).to_pylist() == whole.decisions.column(column).to_pylist()[5:], column
    assert tonight.carry.equals(whole.outcome.carry)


def test_rows_before_the_timeline_are_flagged_and_counted(tmp_path):
    rows = [shipment("OLD", "2023-11-16", destination_country="CN", sku="NVIDIA-H20"),
            shipment("NEW", "2023-11-17", destination_country="CN", sku="NVIDIA-H20")]
    run = screen_ledger(read_ledgers([write_ledger(rows, tmp_path / "l.csv")]), load_policy("in-force"))
    reasons = by_id(run, "reasons")
    assert reasons["OLD"] == "NOT_CONTROLLED;BEFORE_TIMELINE" and reasons["NEW"] == "NOT_CONTROLLED"
    assert run.summary["flagged_rows"]["BEFORE_TIMELINE"] == 1


@pytest.mark.parametrize("override,message", [
    ("components.china-volume.unit=dollars", "unit must be one of"),
    ("components.china-volume.max_share_percent=150", "max_share_percent"),
    ("components.h200-china.effective_until=2025-01-01", "before effective_from"),
    ("components.is-informed.groups=[\"Narnia\"]", "unknown country group"),
    ("catalog.memory_bandwidth_gbs.NO-SUCH-SKU=1", "unknown SKU"),
    ("components.h200-china.max_tpp=-1", "max_tpp"),
])
def test_bad_timeline_parameters_are_refused(override, message):
    with pytest.raises(PolicyError, match=message):
        load_policy("in-force", [override])


def test_a_rule_set_file_without_a_component_is_refused(tmp_path):
    text = open(load_policy("in-force").path).read()
    path = tmp_path / "x.toml"
    path.write_text(text.replace("[components.gp10-guidance]", "[components.gp10-guidanse]"))
    with pytest.raises(PolicyError, match="unknown component 'gp10-guidanse'; did you mean 'gp10-guidance'"):
        load_policy(path)
    path.write_text(text + "\n[controls]\ngp10_denied = true\n")
    with pytest.raises(PolicyError, match="'controls' applies to"):
        load_policy(path)


def test_policies_prints_the_timeline_and_the_unconfirmed_parameters():
    result = CliRunner().invoke(app, ["policies", "in-force"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("2026-01-15", "h200-china", "china-volume", "2025-04-09", "is-informed", "not in force on any date",
                 "AMD-MI325X", "Unconfirmed", "2026-02-02"):
        assert text in result.output, text
    assert CliRunner().invoke(app, ["policies", "no-such-set"]).exit_code != 0


def test_summary_and_report_show_the_timeline(tmp_path):
    rows = volume_rows() + [shipment("OLD", "2023-01-05", destination_country="CN", sku="NVIDIA-H20")]
    path = write_ledger(rows, tmp_path / "l.parquet")
    result = CliRunner().invoke(app, ["screen", str(path), "--policy", "in-force", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    components = {item["component"] for item in summary["policy"]["timeline"]}
    assert {"h200-china", "china-volume", "is-informed", "advanced-computing-2023"} <= components
    assert "components.china-volume" in summary["policy"]["unconfirmed"]
    report = (tmp_path / "out" / "report.html").read_text()
    for text in ("Rules in force", "China volume condition", "BEFORE_TIMELINE", "headroom"):
        assert text in report, text
    decisions = pq.read_table(tmp_path / "out" / "decisions.parquet")
    assert {"cn_volume_cum", "us_volume_cum", "party_listed_on"} <= set(decisions.column_names)


def test_diff_shows_the_h20_and_h200_transitions(tmp_path):
    rows = [
        shipment("H20-24", "2024-06-01", destination_country="CN", sku="NVIDIA-H20"),
        shipment("H20-25", "2025-06-01", destination_country="CN", sku="NVIDIA-H20"),
        shipment("H200-25", "2025-12-01", destination_country="CN", sku=H200, license_id="L"),
        shipment("US-26", "2026-01-02", destination_country="US", sku=H200, quantity=100),
        shipment("H200-26", "2026-02-01", destination_country="CN", sku=H200, license_id="L"),
        shipment("H200-26X", "2026-02-01", destination_country="CN", sku=H200, license_id="L", export_country="SG"),
    ]
    path = write_ledger(rows, tmp_path / "l.parquet")
    out = tmp_path / "diff"
    result = CliRunner().invoke(app, ["diff", str(path), "--policy", "post-rescission-2025", "--policy", "in-force",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["transitions_by_sku"]["NVIDIA-H20"] == {"NLR": {"NLR": 1, "LICENSE_REQUIRED": 1}}
    assert summary["transitions_by_sku"][H200]["DENIED"] == {"DENIED": 2, "AUTHORIZED": 1}
    changes = pq.read_table(out / "changes.parquet").to_pandas().set_index("shipment_id")
    assert changes.loc["H200-26", "reasons_in-force"] == "CN_CASE_BY_CASE;LICENSE"
    assert changes.loc["H20-25", "reasons_in-force"] == "LICENSE_REQUIRED;IS_INFORMED"
    report = (out / "report.html").read_text()
    assert "Changed decisions by SKU" in report and "NVIDIA-H20" in report


def test_the_generator_ledger_under_in_force_meets_every_component(tmp_path):
    from pipeline.generate import generate_ledger

    path = tmp_path / "g.parquet"
    generate_ledger(path, rows=30_000, seed=5)
    run = screen_ledger(read_ledgers([path]), load_policy("in-force"))
    codes = {code.split(":")[0] for label in run.decisions.column("reasons").unique().to_pylist()
             for code in label.split(";")}
    assert {"CN_CASE_BY_CASE", "IS_INFORMED", "CN_ABOVE_THRESHOLD", "D5", "D5_HQ"} <= codes, codes
    assert dt.date(2025, 1, 1) <= run.decisions.column("ship_date").to_pylist()[0]


# ------------------------------------------------------------------ the hand-worked cases, on the engine
from in_force_cases import CASES, ledger_row  # noqa: E402  (data shared with the oracle's tests)

CSL_HEADER = "_id,source,name,alt_names,addresses,start_date,license_requirement\n"


def _toml(value) -> str:
    if isinstance(value, str) and not value[:4].isdigit():
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _screening_list(tmp_path, parties: dict) -> str:
    """A screening list holding exactly the case's listed names (a list code in parentheses)."""
    lines = [CSL_HEADER] + [f"e{i},Case list ({info['list']}),{name},,,{info.get('listed_on') or ''},"
                            f"For all items subject to the EAR.\n"
                            for i, (name, info) in enumerate(sorted(parties.items()))]
    path = tmp_path / "csl.csv"
    path.write_text("".join(lines))
    return str(path)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hand_worked_case_on_the_engine(case, tmp_path):
    from pipeline.screen import screen_ledgers

    overrides = [f"{key}={_toml(value)}" for key, value in case.get("policy", {}).items()]
    policy = load_policy("in-force", overrides + ["parties.allow_short_list=true"])
    path = write_ledger([shipment(**{"exporter": None, **ledger_row(r)}) for r in case["rows"]], tmp_path / "l.parquet")
    run = screen_ledgers([path], policy, csl_path=_screening_list(tmp_path, case.get("parties", {})), publish=False)
    got = {sid: values for sid, *values in zip(*(run.decisions.column(c).cast("string").to_pylist() for c in (
        "shipment_id", "decision", "authorization", "reasons", "cn_volume_cum", "us_volume_cum")))}
    for sid, (decision, authorization, reasons, cn, us) in case["expected"].items():
        expected = [decision, authorization, reasons, None if cn is None else str(cn), None if us is None else str(us)]
        assert got[sid] == expected, f"{case['name']} {sid}: {case.get('note', '')}"
    for sid, value in case.get("expected_country_cum_tpp", {}).items():
        assert by_id(run, "country_cum_tpp")[sid] == (None if value is None else str(value)), sid
