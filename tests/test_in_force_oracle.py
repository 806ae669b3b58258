"""The DuckDB oracle (tests/oracle_sql.py) on the ``in-force`` rule set (issue 17).

The hand-worked scenarios live in ``tests/in_force_cases.py`` (data only, shared with whoever runs
them against the engine); this module runs each on the oracle, then checks input-order invariance,
the Parquet peer, exact integers and that the new columns stay null under the older rule sets.
"""
from __future__ import annotations

import datetime as dt
import random
import tomllib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.reference import POLICY_DIR, load_catalog

try:
    from tests.in_force_cases import CASES, CATALOG, CATALOG_DEPENDS, ledger_row
    from tests.oracle_sql import screen_sql, screen_sql_parquet
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from in_force_cases import CASES, CATALOG, CATALOG_DEPENDS, ledger_row
    from oracle_sql import screen_sql, screen_sql_parquet

BANDWIDTH = ("memory_bandwidth_gbs", "io_bandwidth_gbs")

SCHEMA = pa.schema(
    [("shipment_id", pa.string()), ("ship_date", pa.date32()), ("status", pa.string()),
     ("exporter", pa.string()), ("export_country", pa.string()), ("consignee_id", pa.string()),
     ("consignee_name", pa.string()), ("consignee_address", pa.string()),
     ("destination_country", pa.string()), ("consignee_hq_country", pa.string()),
     ("ultimate_parent_hq_country", pa.string()), ("sku", pa.string()), ("quantity", pa.int64()),
     ("license_id", pa.string()), ("veu_id", pa.string()), ("recorded_authorization", pa.string())]
)


def load_policy(policy_id: str = "in-force") -> dict:
    with open(POLICY_DIR / f"{policy_id}.toml", "rb") as fh:
        return tomllib.load(fh)


def catalog() -> pd.DataFrame:
    """The packaged catalog with the bandwidths the cases assume for their SKUs.

    Until data/chips.csv carries the bandwidth columns, SKUs outside ``CATALOG`` get null.
    """
    frame = load_catalog().copy()
    for column in BANDWIDTH:
        have = frame[column] if column in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        values = [CATALOG[s][column] if s in CATALOG else (None if pd.isna(v) else int(v))
                  for s, v in zip(frame["sku"], have)]
        frame[column] = pd.array(values, dtype="Int64")
    return frame


def ledger(rows) -> pa.Table:
    full = []
    for r in rows:
        r = ledger_row(r)
        r["ship_date"] = dt.date.fromisoformat(r["ship_date"])
        full.append({name: r.get(name) for name in SCHEMA.names})
    return pa.Table.from_pylist(full, schema=SCHEMA)


def parties(rows, listed: dict | None) -> pd.DataFrame:
    listed = listed or {}
    names = sorted({ledger_row(r)["consignee_name"] for r in rows})
    return pd.DataFrame(
        {
            "name": names,
            "normalized": [n.upper() for n in names],
            "party_list": [listed.get(n, {}).get("list") for n in names],
            "outcome": [listed.get(n, {}).get("outcome") for n in names],
            "party_listed_on": [listed.get(n, {}).get("listed_on") for n in names],
        }
    )


def run_case(case, rows=None) -> pa.Table:
    rows = case["rows"] if rows is None else rows
    return screen_sql(ledger(rows), load_policy(), catalog(), parties(case["rows"], case.get("parties")),
                      overrides=case.get("policy"))


# --------------------------------------------------------------------------------------------
# The cases.
# --------------------------------------------------------------------------------------------
def test_cases_are_well_formed():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        ids = [r["shipment_id"] for r in case["rows"]]
        assert len(ids) == len(set(ids)), case["name"]
        assert set(case["expected"]) == set(ids), case["name"]
        if "expected_country_cum_tpp" in case:
            assert set(case["expected_country_cum_tpp"]) == set(ids), case["name"]
        for r in case["rows"]:
            assert r["sku"] in CATALOG, (case["name"], r["sku"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case):
    out = run_case(case)
    got = {r["shipment_id"]: r for r in out.to_pylist()}
    assert set(got) == set(case["expected"])
    bad = []
    for sid, want in case["expected"].items():
        r = got[sid]
        have = (r["decision"], r["authorization"], r["reasons"], r["cn_volume_cum"], r["us_volume_cum"])
        if have != tuple(want):
            bad.append((sid, want, have))
        if "expected_country_cum_tpp" in case and r["country_cum_tpp"] != case["expected_country_cum_tpp"][sid]:
            bad.append((sid, "country_cum_tpp", case["expected_country_cum_tpp"][sid], r["country_cum_tpp"]))
        assert r["tier"] is None and r["lpp_cum_tpp"] is None
    assert not bad, "\n".join(map(repr, bad))


def test_packaged_catalog_agrees_with_the_cases():
    """Once data/chips.csv has the bandwidth columns, it must hold what the cases depend on."""
    frame = load_catalog().set_index("sku")
    for sku, facts in CATALOG.items():
        assert sku in frame.index, sku
        assert int(frame.loc[sku, "unit_tpp"]) == facts["unit_tpp"], sku
        assert str(frame.loc[sku, "eccn"]) == facts["eccn"], sku
    if not set(BANDWIDTH) <= set(frame.columns):
        pytest.skip("data/chips.csv has no bandwidth columns yet")
    for sku, depends in CATALOG_DEPENDS.items():
        mem, io = int(frame.loc[sku, BANDWIDTH[0]]), int(frame.loc[sku, BANDWIDTH[1]])
        if depends.get("exact"):
            assert (mem, io) == (CATALOG[sku][BANDWIDTH[0]], CATALOG[sku][BANDWIDTH[1]]), sku
        if depends["informed"] is not None:
            assert (mem >= 1400 or io >= 1100 or mem + io >= 1700) == depends["informed"], sku
        assert (mem < 6500) == depends["below_6500"], sku


def test_catalog_assumptions_are_consistent():
    for sku, depends in CATALOG_DEPENDS.items():
        mem, io = CATALOG[sku][BANDWIDTH[0]], CATALOG[sku][BANDWIDTH[1]]
        if depends["informed"] is not None:
            assert (mem >= 1400 or io >= 1100 or mem + io >= 1700) == depends["informed"], sku
        assert (mem < 6500) == depends["below_6500"], sku
    assert set(CATALOG_DEPENDS) == set(CATALOG)


# --------------------------------------------------------------------------------------------
# Order invariance and the Parquet peer.
# --------------------------------------------------------------------------------------------
def _mixed_rows(n=600, seed=11):
    rng = random.Random(seed)
    dests = ["CN", "CN", "HK", "MO", "RU", "KH", "AE", "AE", "SA", "US", "US", "US", "US", "VN", "FR", "SG"]
    skus = list(CATALOG)
    rows = []
    for i in range(n):
        start, span = rng.choice([(dt.date(2023, 11, 1), 1000), (dt.date(2026, 1, 1), 200)])
        d = start + dt.timedelta(days=rng.randrange(0, span))
        dest = rng.choice(dests)
        r = {"shipment_id": f"m{i:04d}", "ship_date": d.isoformat(), "destination_country": dest,
             "sku": rng.choice(skus), "quantity": rng.randrange(1, 2000 if dest in ("CN", "HK", "MO") else 400)}
        for key, choices in (
            ("exporter", [None, "", "EXA", "EXB"]),
            ("export_country", [None, None, None, "", "US", "SG"]),
            ("consignee_hq_country", [None] * 8 + ["CN", "RU", "KH", "US", "HK"]),
            ("ultimate_parent_hq_country", [None] * 12 + ["CN", "RU", "MO"]),
            ("license_id", [None, "L", "L"]),
            ("veu_id", [None, None, None, None, "V"]),
            ("consignee_name", [None] * 12 + ["BADCO", "WATCH", "OLDCO"]),
        ):
            v = rng.choice(choices)
            if v is not None:
                r[key] = v
        rows.append(r)
    return rows


MIXED_PARTIES = {"BADCO": {"outcome": "block", "list": "EL", "listed_on": "2025-06-01"},
                 "WATCH": {"outcome": "review", "list": "UVL", "listed_on": "2024-12-02"},
                 "OLDCO": {"outcome": "block", "list": "EL", "listed_on": None}}


@pytest.mark.parametrize("overrides", [None, {"components.china-volume.unit": "tpp",
                                              "catalog.memory_bandwidth_gbs.AMD-MI325X": 6500,
                                              "agreements.0.cap_tpp": 5_000_000}])
def test_input_order_and_parquet_peer(overrides, tmp_path):
    case = {"rows": _mixed_rows(), "parties": MIXED_PARTIES, "policy": overrides}
    out = run_case(case)
    shuffled = case["rows"][:]
    random.Random(3).shuffle(shuffled)
    assert run_case(case, shuffled).equals(out)
    assert run_case(case, shuffled[::-1]).equals(out)
    pq.write_table(ledger(shuffled), tmp_path / "ledger.parquet")
    seconds = screen_sql_parquet(tmp_path / "ledger.parquet", tmp_path / "out.parquet", load_policy(), catalog(),
                                 parties(case["rows"], MIXED_PARTIES), overrides=overrides)
    assert seconds > 0
    assert pq.read_table(tmp_path / "out.parquet").cast(out.schema).equals(out)
    # The mix reaches every outcome and every new code.
    assert set(out.column("decision").to_pylist()) == {"DENIED", "REVIEW", "CAP_EXCEEDED", "LICENSE_REQUIRED",
                                                       "AUTHORIZED", "NLR"}
    codes = {c.split(":")[0] for r in out.column("reasons").to_pylist() for c in r.split(";")}
    assert codes >= {"CN_ABOVE_THRESHOLD", "REEXPORT", "D5", "D5_HQ", "CN_US_RATIO", "CN_CASE_BY_CASE",
                     "IS_INFORMED", "D1_D4", "PARTY_BEFORE_LISTING", "BEFORE_TIMELINE"}
    assert ("ALLOCATION_EXCEEDED" in codes) == bool(overrides)  # only under the small what-if cap
    assert out.column("cn_volume_cum").null_count < len(out)


@pytest.mark.parametrize("case", [c for c in CASES if len(c["rows"]) > 3], ids=lambda c: c["name"])
def test_case_input_order(case):
    out = run_case(case)
    rows = case["rows"][::-1]
    assert run_case(case, rows).equals(out)


def test_parquet_ledger_without_optional_columns(tmp_path):
    """Absent optional columns (exporter, export_country, ultimate parent ...) read as null."""
    rows = [{"shipment_id": "n1", "ship_date": dt.date(2026, 1, 10), "status": "shipped", "consignee_name": "A",
             "destination_country": "US", "sku": "NVIDIA-H200", "quantity": 4},
            {"shipment_id": "n2", "ship_date": dt.date(2026, 1, 20), "status": "shipped", "consignee_name": "A",
             "destination_country": "CN", "sku": "NVIDIA-H200", "quantity": 3},
            {"shipment_id": "n3", "ship_date": dt.date(2026, 1, 21), "status": "shipped", "consignee_name": "A",
             "destination_country": "CN", "sku": "NVIDIA-H200", "quantity": 2}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "l.parquet")
    party = pd.DataFrame({"name": ["A"], "normalized": ["A"], "party_list": [None], "outcome": [None]})
    screen_sql_parquet(tmp_path / "l.parquet", tmp_path / "o.parquet", load_policy(), catalog(), party)
    got = [(r["decision"], r["reasons"], r["cn_volume_cum"], r["us_volume_cum"])
           for r in pq.read_table(tmp_path / "o.parquet").to_pylist()]
    assert got == [("NLR", "NO_LICENSE_REQUIREMENT", None, 4),
                   ("LICENSE_REQUIRED", "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
                   ("LICENSE_REQUIRED", "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None)]


# --------------------------------------------------------------------------------------------
# Exact integers, older rule sets, refusals.
# --------------------------------------------------------------------------------------------
def test_ratio_is_exact_beyond_int64_products():
    """unit = tpp near the int64 bound: 100 x cn overflows int64, the comparison must not."""
    q_us = (2**63 - 1) // 15_832 // 2 * 2          # largest even quantity whose TPP fits int64
    us_tpp = q_us * 15_832
    assert 100 * (us_tpp // 2) > 2**63              # the products overflow int64
    base = {"ship_date": "2026-01-10", "destination_country": "US", "sku": "NVIDIA-H200", "exporter": "BIG"}
    rows = [{**base, "shipment_id": "b1", "quantity": q_us},
            {**base, "shipment_id": "b2", "ship_date": "2026-01-15", "destination_country": "CN",
             "quantity": q_us // 2, "license_id": "L"}]
    case = {"rows": rows, "policy": {"components.china-volume.unit": "tpp"}}
    got = {r["shipment_id"]: r for r in run_case(case).to_pylist()}
    assert got["b2"]["decision"] == "AUTHORIZED" and got["b2"]["cn_volume_cum"] == us_tpp // 2
    assert got["b2"]["us_volume_cum"] == us_tpp
    rows.append({**base, "shipment_id": "b3", "ship_date": "2026-01-16", "destination_country": "CN",
                 "quantity": 1, "license_id": "L"})
    got = {r["shipment_id"]: r for r in run_case(case).to_pylist()}
    assert got["b3"]["decision"] == "CAP_EXCEEDED" and "CN_US_RATIO" in got["b3"]["reasons"]
    # A running total past int64 is an error, never a wrap.
    rows.append({**base, "shipment_id": "b4", "ship_date": "2026-01-17", "quantity": q_us})
    with pytest.raises(Exception):
        run_case(case)


@pytest.mark.parametrize("policy_id", ["ai-diffusion-2025", "post-rescission-2025"])
def test_older_rule_sets_leave_the_volume_columns_null(policy_id):
    rows = _mixed_rows(200, seed=5)
    out = screen_sql(ledger(rows), load_policy(policy_id), load_catalog(), parties(rows, MIXED_PARTIES))
    assert out.column("cn_volume_cum").null_count == len(out) == out.column("us_volume_cum").null_count
    # No listing dates there: a hit counts whatever the date.
    assert not any("PARTY_BEFORE_LISTING" in r or "BEFORE_TIMELINE" in r for r in out.column("reasons").to_pylist())


def test_refusals():
    case = {"rows": [{"shipment_id": "z", "ship_date": "2026-01-10", "destination_country": "US",
                      "sku": "NVIDIA-H200", "quantity": 1}]}
    with pytest.raises(NotImplementedError):
        run_case({**case, "policy": {"components.ai-diffusion-2025.in_force": True,
                                     "components.ai-diffusion-2025.effective_from": "2025-05-15"}})
    with pytest.raises(ValueError):
        run_case({**case, "policy": {"components.china-volume.unit": "dollars"}})
    with pytest.raises(ValueError):
        run_case({**case, "policy": {"components.no-such-rule.effective_from": "2025-01-01"}})
    with pytest.raises(ValueError):
        run_case({**case, "policy": {"catalog.memory_bandwidth_gbs.NO-SUCH-SKU": 1}})
    with pytest.raises(ValueError):
        screen_sql(ledger(case["rows"]), load_policy(), load_catalog().drop(columns=list(BANDWIDTH), errors="ignore"),
                   parties(case["rows"], None))
