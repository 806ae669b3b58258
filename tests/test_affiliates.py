"""The Affiliates rule on the engine: consignees owned by listed parties, in the rule's windows, with
their evidence, through every command and every way of cutting the rows."""
import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import shipment, write_ledger
from flows.cli import app
from kernels.backend import Backend
from pipeline.ingest import read_ledgers
from pipeline.parties import PartyScreen
from pipeline.policy import PolicyError, load_policy
from pipeline.screen import screen_ledger

COLUMNS = ["owner_id", "owner_name", "owned_id", "owned_name", "owner_country", "owned_country", "percent",
           "valid_from", "valid_until", "source"]


@pytest.fixture(scope="module")
def listed():
    entries = PartyScreen.from_path().entries
    el = entries.loc[entries["list_code"] == "EL", "listed_name"].iloc[3]
    el2 = entries.loc[entries["list_code"] == "EL", "listed_name"].iloc[11]
    sdn = entries.loc[entries["list_code"] == "SDN", "listed_name"].iloc[5]
    return el, el2, sdn


def holdings(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in COLUMNS} for r in rows)
    return str(path)


@pytest.fixture
def graph(tmp_path, listed):
    el, el2, sdn = listed
    return holdings(tmp_path / "owners.csv", [
        {"owner_name": el, "owned_name": "Borealis Compute", "owned_country": "MY", "percent": "50"},
        {"owner_name": "Borealis Compute", "owner_country": "MY", "owned_name": "Cinder Labs", "owned_country": "MY",
         "percent": "50"},
        {"owner_name": el, "owned_name": "Delta Racks", "owned_country": "MY", "percent": "30"},
        {"owner_name": el2, "owned_name": "Delta Racks", "owned_country": "MY", "percent": "20"},
        {"owner_name": el, "owned_name": "Ember Systems", "owned_country": "MY", "percent": "40"},
        {"owner_name": "Ember Systems", "owner_country": "MY", "owned_name": "Fjord AI", "owned_country": "MY",
         "percent": "100"},
        {"owner_name": el, "owned_id": "JP-7", "owned_name": "Kaizen Cloud", "percent": "75"},
        {"owner_name": sdn, "owned_id": "JP-8", "owned_name": "Sakura Grid", "percent": "60"},
        {"owner_name": el, "owned_name": "Minor Holdings", "owned_country": "MY", "percent": "30"},
        {"owner_name": el, "owned_name": "Late Ventures", "owned_country": "MY", "percent": "80",
         "valid_from": "2026-01-01"},
        {"owner_name": "Nobody", "owned_name": "Nobody", "percent": "10"},  # self-ownership: quarantined
    ])


def line(sid, day, name, dest="MY", **extra):
    return shipment(sid, day, consignee_name=name, destination_country=dest, sku="NVIDIA-L4", quantity=1, **extra)


def rows():
    out = []
    for day in ("2025-10-01", "2025-12-01", "2026-11-09", "2026-11-10"):
        for name in ("Borealis Compute", "Cinder Labs", "Delta Racks", "Ember Systems", "Fjord AI", "Minor Holdings",
                     "Late Ventures"):
            out.append(line(f"{name[:4]}-{day}", day, name))
    out += [line("JP7-TGL", "2025-10-15", "Kaizen Cloud", "JP", consignee_id="JP-7"),
            line("JP7-AFTER", "2026-11-12", "Kaizen Cloud", "JP", consignee_id="JP-7"),
            line("JP8-SDN", "2025-10-15", "Sakura Grid", "JP", consignee_id="JP-8")]
    return out


def decisions(run):
    table = run.decisions
    return {sid: (d, r) for sid, d, r in zip(table.column("shipment_id").to_pylist(),
                                              table.column("decision").cast("string").to_pylist(),
                                              table.column("reasons").cast("string").to_pylist())}


def test_affiliates_are_denied_in_the_rule_windows(tmp_path, graph):
    policy = load_policy("in-force", [f"affiliates.ownership={json.dumps(graph)}"])
    run = screen_ledger(read_ledgers([write_ledger(rows(), tmp_path / "l.parquet")]), policy)
    got = decisions(run)
    for name in ("Bore", "Cind", "Delt"):  # chain of two 50% links; 30% + 20% by two listed owners
        assert got[f"{name}-2025-10-01"][0] == "DENIED" and got[f"{name}-2025-10-01"][1].startswith("AFFILIATE:EL")
        assert got[f"{name}-2025-12-01"][0] == "NLR"          # suspended
        assert got[f"{name}-2026-11-09"][0] == "NLR"          # the day before the reinstatement
        assert got[f"{name}-2026-11-10"][0] == "DENIED"
    for name in ("Embe", "Fjor"):  # 40% is not 50%, and 100% under a non-affiliate is nothing
        assert got[f"{name}-2025-10-01"] == ("NLR", "NO_LICENSE_REQUIREMENT") or \
            got[f"{name}-2025-10-01"][1].startswith("AFFILIATE_MINORITY")
    assert got["Embe-2025-10-01"][0] == "REVIEW" and got["Fjor-2025-10-01"][0] == "NLR"
    assert got["Mino-2025-10-01"] == ("REVIEW", "AFFILIATE_MINORITY:EL;NO_LICENSE_REQUIREMENT")
    assert got["Late-2025-10-01"][0] == "NLR" and got["Late-2026-11-10"][0] == "DENIED"  # held from 2026-01-01
    assert got["JP7-TGL"][0] == "NLR" and "AFFILIATE_TGL:EL" in got["JP7-TGL"][1]  # A:5-located, general license
    assert got["JP7-AFTER"][0] == "DENIED"
    assert got["JP8-SDN"][0] == "DENIED" and "AFFILIATE:SDN" in got["JP8-SDN"][1]  # SDN-owned: no license
    ownership = run.summary["ownership"]
    assert ownership["holdings"]["quarantined"] == 1 and ownership["listed_owners"] == 3
    assert ownership["holdings"]["rows_read"] == ownership["holdings"]["accepted"] + 1


def test_the_same_affiliates_in_chunks(tmp_path, graph):
    policy = load_policy("in-force", [f"affiliates.ownership={json.dumps(graph)}"])
    ledger = read_ledgers([write_ledger(rows(), tmp_path / "l.parquet")])
    whole = screen_ledger(ledger, policy)
    chunked = screen_ledger(ledger, policy, backend=Backend("numpy", np, chunk_rows=4))
    assert decisions(chunked) == decisions(whole)


def test_cli_writes_the_evidence_and_audit_reports_shipments(tmp_path, graph, listed):
    ledger_rows = rows()
    for row in ledger_rows:
        row["recorded_authorization"] = "NLR"
    ledger = write_ledger(ledger_rows, tmp_path / "l.parquet")
    result = CliRunner().invoke(app, ["screen", str(ledger), "-p", "in-force", "--ownership", graph,
                                      "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    evidence = pq.read_table(tmp_path / "out" / "affiliates.parquet").to_pandas().set_index("name")
    cinder = evidence[evidence["status"] == "affiliate"].loc["Cinder Labs"]
    cinder = cinder.iloc[0] if cinder.ndim == 2 else cinder
    assert "Borealis Compute 50%" in cinder["owners"] and cinder["chain"].endswith(listed[0])
    assert cinder["chain_length"] == 2
    assert pq.read_table(tmp_path / "out" / "ownership_quarantine.parquet").num_rows == 1
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Affiliates among the consignees" in report and "Cinder Labs" in report
    result = CliRunner().invoke(app, ["audit", str(ledger), "-p", "in-force", "--ownership", graph,
                                      "-o", str(tmp_path / "audit"), "-q"])
    assert result.exit_code == 0, result.output
    kinds = json.loads((tmp_path / "audit" / "summary.json").read_text())["discrepancies"]["by_kind"]
    assert kinds.get("SHIPPED_TO_AFFILIATE", 0) >= 8


def test_ownership_needs_the_dated_rule_set(tmp_path, graph):
    with pytest.raises(PolicyError, match="no Affiliates rule"):
        load_policy("post-rescission-2025", [f"affiliates.ownership={json.dumps(graph)}"])
    ledger = write_ledger(rows(), tmp_path / "l.parquet")
    result = CliRunner().invoke(app, ["screen", str(ledger), "-p", "post-rescission-2025", "--ownership", graph,
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["diff", str(ledger), "-p", "post-rescission-2025", "-p", "in-force",
                                      "--ownership", graph, "-o", str(tmp_path / "diff"), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "diff" / "summary.json").read_text())
    assert summary["transitions"]["NLR"].get("DENIED", 0) >= 8


def test_an_unreadable_ownership_file_is_an_error(tmp_path):
    ledger = write_ledger(rows(), tmp_path / "l.parquet")
    bad = tmp_path / "owners.csv"
    bad.write_text("owner,owned\nA,B\n")
    result = CliRunner().invoke(app, ["screen", str(ledger), "-p", "in-force", "--ownership", str(bad),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


def test_the_same_affiliates_on_the_device_path_and_in_pieces(tmp_path, graph, fake_gpu):
    from kernels.backend import select_backend
    from pipeline.run.run import Run
    from pipeline.run.scan import scan
    from pipeline.run.source import split_rows

    policy = load_policy("in-force", [f"affiliates.ownership={json.dumps(graph)}"])
    ledger = read_ledgers([write_ledger(rows(), tmp_path / "l.parquet")])
    whole = screen_ledger(ledger, policy)
    device = screen_ledger(ledger, policy, backend=select_backend("cupy"))
    assert device.summary["backend"] == "cupy" and decisions(device) == decisions(whole)
    with Run.open(None, publish=False) as run:
        scanned = scan(run, split_rows(ledger.rows, 5), policy, keep=True)
    got = [r for p in scanned.pieces for r in p.screened.decisions_table(policy).column("reasons").to_pylist()]
    assert got == whole.decisions.column("reasons").to_pylist()


def test_a_header_only_ownership_file_holds_no_affiliates(tmp_path):
    empty = holdings(tmp_path / "owners.csv", [])
    ledger = write_ledger(rows(), tmp_path / "l.parquet")
    result = CliRunner().invoke(app, ["screen", str(ledger), "-p", "in-force", "--ownership", empty,
                                      "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ownership"]["entities"] == 0 and summary["ownership"]["consignee_affiliates"] == 0
    assert "AFFILIATE" not in " ".join(pq.read_table(tmp_path / "out" / "decisions.parquet")
                                       .column("reasons").cast("string").to_pylist())
