"""License depletion on the engine: the hand-worked cases of ``tests/license_cases.py`` (also run
on the SQL oracle), the register through every way a ledger is cut, and its outputs."""
import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import shipment, write_ledger
from flows.cli import app
from kernels.backend import Backend
from license_cases import CASES, REGISTER_COLUMNS, ledger_row
from pipeline.ingest import read_ledgers
from pipeline.policy import load_policy
from pipeline.run.source import split_rows
from pipeline.screen import screen_ledger, screen_ledgers
from test_in_force import _screening_list, _toml

H100 = "NVIDIA-H100-SXM"


def write_register(rows: list[dict], path) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REGISTER_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in REGISTER_COLUMNS})
    return str(path)


def column(run, name):
    table = run.decisions
    values = table.column(name).cast("string").to_pylist()
    return dict(zip(table.column("shipment_id").to_pylist(), values))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hand_worked_case_on_the_engine(case, tmp_path):
    overrides = [f"{key}={_toml(value)}" for key, value in case.get("policy", {}).items()]
    if case["register"] is not None:
        overrides.append(f"licenses.register={json.dumps(write_register(case['register'], tmp_path / 'r.csv'))}")
    policy = load_policy(case["policy_id"], overrides + ["parties.allow_short_list=true"])
    parties = {name: {**info, "listed_on": None} for name, info in case.get("parties", {}).items()}
    path = write_ledger([shipment(**{"exporter": None, **ledger_row(r)}) for r in case["rows"]], tmp_path / "l.parquet")
    run = screen_ledgers([path], policy, csl_path=_screening_list(tmp_path, parties), publish=False)
    got = {name: column(run, name) for name in ("decision", "authorization", "reasons", "license_cum_units",
                                                "license_cum_tpp", "country_cum_tpp", "lpp_cum_tpp",
                                                "cn_volume_cum", "us_volume_cum")}
    for sid, (decision, authorization, reasons, units, tpp) in case["expected"].items():
        expected = [decision, authorization, reasons, None if units is None else str(units),
                    None if tpp is None else str(tpp)]
        actual = [got[n][sid] for n in ("decision", "authorization", "reasons", "license_cum_units", "license_cum_tpp")]
        assert actual == expected, f"{case['name']} {sid}: {case.get('note', '')}"
    for key, name in (("expected_country_cum_tpp", "country_cum_tpp"), ("expected_lpp_cum_tpp", "lpp_cum_tpp")):
        for sid, value in case.get(key, {}).items():
            assert got[name][sid] == (None if value is None else str(value)), (case["name"], name, sid)
    for sid, (cn, us) in case.get("expected_volume", {}).items():
        assert (got["cn_volume_cum"][sid], got["us_volume_cum"][sid]) == (
            None if cn is None else str(cn), None if us is None else str(us)), (case["name"], sid)


# ---------------------------------------------------------------- one register, every way of cutting the rows
def depletion_rows():
    rows = []
    for i in range(40):
        rows.append(shipment(f"S{i:03d}", f"2025-{1 + i % 12:02d}-{1 + i % 27:02d}", destination_country="VN",
                             sku=H100, quantity=1 + i % 5, consignee_id=f"C{i % 3}", license_id=f"L{i % 4}"))
    return rows


REGISTER = [
    {"license_id": "L0", "valid_from": "2025-01-01", "valid_until": "2025-12-31", "destination_country": "VN",
     "max_units": "20"},
    {"license_id": "L1", "valid_from": "2025-01-01", "valid_until": "2025-06-30", "destination_country": "VN",
     "max_tpp": str(15832 * 12)},
    {"license_id": "L2", "valid_from": "2025-05-01", "valid_until": "2025-12-31", "destination_country": "VN",
     "consignee_id": "C2"},
]


@pytest.fixture
def licensed(tmp_path):
    register = write_register(REGISTER, tmp_path / "register.csv")
    policy = load_policy("post-rescission-2025", [f"licenses.register={json.dumps(register)}"])
    return read_ledgers([write_ledger(depletion_rows(), tmp_path / "l.parquet")]), policy, register


def test_every_branch_appears_and_the_totals_are_per_license(licensed):
    ledger, policy, _ = licensed
    run = screen_ledger(ledger, policy)
    reasons = " ".join(run.decisions.column("reasons").cast("string").to_pylist())
    for code in ("LICENSE_EXHAUSTED", "LICENSE_EXPIRED", "LICENSE_NOT_YET_VALID", "LICENSE_OUT_OF_SCOPE",
                 "LICENSE_UNKNOWN"):
        assert code in reasons, code
    table = run.summary["licenses"]
    by_id = {item["license_id"]: item for item in table["table"]}
    assert by_id["L0"]["max_units"] == 20 and by_id["L0"]["used_units"] <= 20 < by_id["L0"]["requested_units"]
    assert by_id["L0"]["lines_over"] > 0 and by_id["L0"]["remaining_units"] == 20 - by_id["L0"]["used_units"]
    assert by_id["L1"]["lines_expired"] > 0 and by_id["L2"]["lines_out_of_scope"] > 0
    assert table["unknown_ids"] == {"L3": 10}
    units = np.array([v if v is not None else -1 for v in run.decisions.column("license_cum_units").to_pylist()])
    assert units.max() == by_id["L0"]["requested_units"]


@pytest.mark.parametrize("chunk_rows,piece_rows", [(1, 1), (7, 9)])
def test_chunks_pieces_and_checkpoints_give_the_same_depletion(licensed, chunk_rows, piece_rows):
    from pipeline.run.run import Run
    from pipeline.run.scan import scan

    ledger, policy, _ = licensed
    whole = screen_ledger(ledger, policy)
    chunked = screen_ledger(ledger, policy, backend=Backend("numpy", np, chunk_rows=chunk_rows))
    for name in ("decision", "reasons", "license_cum_units", "license_cum_tpp"):
        assert column(chunked, name) == column(whole, name), name
    with Run.open(None, publish=False) as run:
        first = scan(run, split_rows(ledger.rows.slice(0, 17), piece_rows), policy)
        rest = scan(run, split_rows(ledger.rows.slice(17), piece_rows), policy, carry=first.carry, keep=True)
    got = [v for p in rest.pieces for v in p.screened.decisions_table(policy).column("license_cum_units").to_pylist()]
    assert got == whole.decisions.column("license_cum_units").to_pylist()[17:]
    assert rest.carry.equals(whole.outcome.carry)
    assert {"license_units", "license_tpp"} <= set(whole.outcome.carry.totals)


def test_dask_passes_equal_one_process(licensed, tmp_path):
    distributed = pytest.importorskip("distributed")
    from pipeline.run.run import Run
    from pipeline.run.scan import scan_dask

    ledger, policy, _ = licensed
    whole = screen_ledger(ledger, policy)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c, \
            distributed.Client(c) as client, Run.open(None, publish=False) as run:
        from pipeline.run.sink import PartWriter

        result = scan_dask(run, split_rows(ledger.rows, 6), policy, client, parts=PartWriter(str(tmp_path)))
    assert result.carry.equals(whole.outcome.carry)
    got = pq.read_table(tmp_path / "decisions.parquet").column("license_cum_tpp").to_pylist()
    assert got == whole.decisions.column("license_cum_tpp").to_pylist()


def test_a_changed_register_rescreens_the_lake(tmp_path):
    from pipeline.lake import ingest
    from pipeline.lake_screen import screen_lake

    ingest([write_ledger(depletion_rows(), tmp_path / "l.csv")], tmp_path / "lake")
    register = tmp_path / "register.csv"
    write_register(REGISTER, register)
    policy = load_policy("post-rescission-2025", [f"licenses.register={json.dumps(str(register))}"])
    first = screen_lake(tmp_path / "lake", policy, tmp_path / "out", scheduler="none").summary
    def over(summary, key="L0"):
        return {item["license_id"]: item["lines_over"] for item in summary["licenses"]["table"]}[key]

    assert over(first) > 0
    write_register([{**REGISTER[0], "max_units": "1000"}] + REGISTER[1:], register)
    again = screen_lake(tmp_path / "lake", load_policy("post-rescission-2025",
                                                        [f"licenses.register={json.dumps(str(register))}"]),
                        tmp_path / "out", scheduler="none").summary
    assert again["lake"]["run"] == "full" and over(again) == 0 and over(again, "L1") == over(first, "L1")


def test_cli_screen_audit_and_report(tmp_path):
    register = write_register(REGISTER, tmp_path / "register.csv")
    rows = depletion_rows()
    for row in rows:
        row["recorded_authorization"] = "LICENSE"
    ledger = write_ledger(rows, tmp_path / "l.parquet")
    result = CliRunner().invoke(app, ["screen", str(ledger), "-p", "post-rescission-2025", "--licenses", register,
                                      "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "out" / "report.html").read_text()
    assert "License depletion" in report and "L0" in report
    decisions = pq.read_table(tmp_path / "out" / "decisions.parquet")
    assert {"license_cum_units", "license_cum_tpp"} <= set(decisions.column_names)
    result = CliRunner().invoke(app, ["audit", str(ledger), "-p", "post-rescission-2025", "--licenses", register,
                                      "-o", str(tmp_path / "audit"), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "audit" / "summary.json").read_text())
    kinds = summary["discrepancies"]["by_kind"]
    for kind in ("LICENSE_EXHAUSTED", "LICENSE_EXPIRED", "LICENSE_OUT_OF_SCOPE", "LICENSE_UNKNOWN"):
        assert kinds.get(kind), kind
    found = pq.read_table(tmp_path / "audit" / "discrepancies.parquet").to_pandas()
    over = found[found["kinds"].str.contains("LICENSE_EXHAUSTED")]
    assert (over["license_cum_units"] > over["license_max_units"]).all()


def test_a_bad_register_stops_the_run_with_the_row(tmp_path):
    bad = write_register([REGISTER[0], {**REGISTER[1], "valid_until": "2025-02-30"}], tmp_path / "bad.csv")
    ledger = write_ledger(depletion_rows(), tmp_path / "l.parquet")
    result = CliRunner().invoke(app, ["screen", str(ledger), "-p", "in-force", "--licenses", bad,
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "error:" in result.output and "row 2" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_without_a_register_any_license_id_authorizes(tmp_path):
    ledger = read_ledgers([write_ledger(depletion_rows(), tmp_path / "l.parquet")])
    run = screen_ledger(ledger, load_policy("post-rescission-2025"))
    assert set(column(run, "decision").values()) == {"AUTHORIZED"}
    assert set(column(run, "license_cum_units").values()) == {None} and run.summary["licenses"] is None
