"""The DuckDB oracle (tests/oracle_sql.py) with a license register (issue 18).

The hand-worked scenarios live in ``tests/license_cases.py`` (data only, shared with whoever runs
them against the engine); this module runs each on the oracle, then checks input-order invariance,
the Parquet peer with a register, exact totals and that the output without a register is as before.
The normalized consignee names (ledger and register) come from the party normalizer, which only
prepares data here: the oracle itself imports nothing of the engine.
"""
from __future__ import annotations

import datetime as dt
import random
import tomllib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.parties import normalize_name
from pipeline.reference import POLICY_DIR, load_catalog

duckdb = pytest.importorskip("duckdb", reason="the SQL oracle needs duckdb")

try:
    from tests.license_cases import CASES, CATALOG, NAME_FACTS, REGISTER_COLUMNS, ledger_row
    from tests.oracle_sql import screen_sql, screen_sql_parquet
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from license_cases import CASES, CATALOG, NAME_FACTS, REGISTER_COLUMNS, ledger_row
    from oracle_sql import screen_sql, screen_sql_parquet

SCHEMA = pa.schema(
    [("shipment_id", pa.string()), ("ship_date", pa.date32()), ("status", pa.string()),
     ("exporter", pa.string()), ("export_country", pa.string()), ("consignee_id", pa.string()),
     ("consignee_name", pa.string()), ("consignee_address", pa.string()),
     ("destination_country", pa.string()), ("consignee_hq_country", pa.string()),
     ("ultimate_parent_hq_country", pa.string()), ("sku", pa.string()), ("quantity", pa.int64()),
     ("license_id", pa.string()), ("veu_id", pa.string()), ("recorded_authorization", pa.string())]
)


def load_policy(policy_id: str) -> dict:
    with open(POLICY_DIR / f"{policy_id}.toml", "rb") as fh:
        return tomllib.load(fh)


def ledger(rows) -> pa.Table:
    full = []
    for r in rows:
        r = ledger_row(r)
        r["ship_date"] = dt.date.fromisoformat(r["ship_date"])
        full.append({name: r.get(name) for name in SCHEMA.names})
    return pa.Table.from_pylist(full, schema=SCHEMA)


def parties(rows, listed: dict | None) -> pd.DataFrame:
    """One row per consignee name, normalized by the party normalizer; hits from ``listed``."""
    listed = listed or {}
    names = sorted({ledger_row(r)["consignee_name"] for r in rows})
    return pd.DataFrame(
        {
            "name": names,
            "normalized": [normalize_name(n) for n in names],
            "party_list": [listed.get(n, {}).get("list") for n in names],
            "outcome": [listed.get(n, {}).get("outcome") for n in names],
            "party_listed_on": [None] * len(names),
        }
    )


def register(rows) -> pd.DataFrame | None:
    """The register as read from a CSV (text), plus ``consignee_normalized`` for the oracle."""
    if rows is None:
        return None
    frame = pd.DataFrame(list(rows), columns=list(REGISTER_COLUMNS), dtype=object)
    frame["consignee_normalized"] = [normalize_name(n) if str(n).strip() else None
                                     for n in frame["consignee_name"]]
    return frame


def run_case(case, rows=None, reg=None) -> pa.Table:
    rows = case["rows"] if rows is None else rows
    reg = register(case["register"]) if reg is None else reg
    return screen_sql(ledger(rows), load_policy(case["policy_id"]), load_catalog(),
                      parties(case["rows"], case.get("parties")), overrides=case.get("policy"), licenses=reg)


# --------------------------------------------------------------------------------------------
# The cases.
# --------------------------------------------------------------------------------------------
def test_cases_are_well_formed():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    rule_sets = [c["policy_id"] for c in CASES]
    assert rule_sets.count("ai-diffusion-2025") >= 2
    assert {"post-rescission-2025", "in-force"} <= set(rule_sets)
    for case in CASES:
        ids = [r["shipment_id"] for r in case["rows"]]
        assert len(ids) == len(set(ids)), case["name"]
        assert set(case["expected"]) == set(ids), case["name"]
        for key in ("expected_country_cum_tpp", "expected_lpp_cum_tpp", "expected_volume"):
            if key in case:
                assert set(case[key]) == set(ids), (case["name"], key)
        for r in case["rows"]:
            assert r["sku"] in CATALOG, (case["name"], r["sku"])
        for lic in case["register"] or []:
            assert set(lic) == set(REGISTER_COLUMNS), case["name"]
            assert all(isinstance(v, str) for v in lic.values()), case["name"]


def test_catalog_agrees_with_the_cases():
    frame = load_catalog().set_index("sku")
    for sku, facts in CATALOG.items():
        assert int(frame.loc[sku, "unit_tpp"]) == facts["unit_tpp"], sku
        assert str(frame.loc[sku, "eccn"]) == facts["eccn"], sku


def test_normalizer_agrees_with_the_cases():
    for a, b in NAME_FACTS["equal"]:
        assert normalize_name(a) == normalize_name(b), (a, b)
    for a, b in NAME_FACTS["different"]:
        assert normalize_name(a) != normalize_name(b), (a, b)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case):
    out = run_case(case)
    got = {r["shipment_id"]: r for r in out.to_pylist()}
    assert set(got) == set(case["expected"])
    bad = []
    for sid, want in case["expected"].items():
        r = got[sid]
        have = (r["decision"], r["authorization"], r["reasons"], r["license_cum_units"], r["license_cum_tpp"])
        if have != tuple(want):
            bad.append((sid, want, have))
        for key, column in (("expected_country_cum_tpp", "country_cum_tpp"), ("expected_lpp_cum_tpp", "lpp_cum_tpp")):
            if key in case and r[column] != case[key][sid]:
                bad.append((sid, column, case[key][sid], r[column]))
        if "expected_volume" in case and (r["cn_volume_cum"], r["us_volume_cum"]) != case["expected_volume"][sid]:
            bad.append((sid, "volume", case["expected_volume"][sid], (r["cn_volume_cum"], r["us_volume_cum"])))
    assert not bad, "\n".join(map(repr, bad))


@pytest.mark.parametrize("case", [c for c in CASES if len(c["rows"]) > 3], ids=lambda c: c["name"])
def test_case_input_order(case):
    out = run_case(case)
    assert run_case(case, case["rows"][::-1]).equals(out)
    shuffled = case["rows"][:]
    random.Random(5).shuffle(shuffled)
    assert run_case(case, shuffled).equals(out)
    if case["register"]:  # the order of the register does not matter either
        assert run_case(case, reg=register(case["register"][::-1])).equals(out)


# --------------------------------------------------------------------------------------------
# Without a register the output is exactly as before; the register's text forms.
# --------------------------------------------------------------------------------------------
def _mixed_rows(n=500, seed=13):
    rng = random.Random(seed)
    dests = ["VN", "VN", "KZ", "AE", "AE", "SA", "IN", "FR", "CN", "HK", "US", "US", "SG"]
    skus = ["NVIDIA-H100-SXM", "NVIDIA-H200", "NVIDIA-A100", "NVIDIA-H20", "NVIDIA-B200", "HUAWEI-ASCEND-910B"]
    names = ["ACME COMPUTE CO LTD", "Acme Compute Limited", "Acme Computing Co Ltd", "BADCO", "WATCH", "Gulf AI"]
    rows = []
    for i in range(n):
        d = dt.date(2025, 1, 20) + dt.timedelta(days=rng.randrange(0, 480))
        r = {"shipment_id": f"m{i:04d}", "ship_date": d.isoformat(), "destination_country": rng.choice(dests),
             "sku": rng.choice(skus), "quantity": rng.randrange(1, 400)}
        for key, choices in (
            ("exporter", [None, "", "EXA", "exa ", "EXB"]),
            ("consignee_id", [None, None, "C-1", "C-2"]),
            ("consignee_name", names + [None] * 4),
            ("consignee_hq_country", [None] * 10 + ["CN", "IN"]),
            ("license_id", [None, "L-1", "L-2", "L-3", "L-9", " L-1", "L-404"]),
            ("veu_id", [None] * 8 + ["V"]),
        ):
            v = rng.choice(choices)
            if v is not None:
                r[key] = v
        rows.append(r)
    return rows


def _lic(**values):
    row = {c: "" for c in REGISTER_COLUMNS}
    row.update(values)
    return row


MIXED_REGISTER = [
    _lic(license_id="L-1", valid_from="2025-03-01", valid_until="2026-03-31", destination_country="VN",
         max_units="400"),
    _lic(license_id="L-2", valid_from="2025-01-01", valid_until="2026-12-31", destination_country="AE",
         consignee_name="Acme Compute Co., Ltd.", exporter="exa", max_tpp="5000000"),
    _lic(license_id="L-3", valid_from="2025-06-01", valid_until="2026-06-30", destination_country="IN",
         consignee_id="C-1", skus="NVIDIA-H100-SXM;NVIDIA-H200", max_units="300", max_tpp="9000000"),
    _lic(license_id="L-9", valid_from="2025-01-01", valid_until="2026-12-31", destination_country="SA"),
]
MIXED_PARTIES = {"BADCO": {"outcome": "block", "list": "EL"}, "WATCH": {"outcome": "review", "list": "UVL"}}


@pytest.mark.parametrize("policy_id", ["post-rescission-2025", "in-force", "ai-diffusion-2025"])
def test_without_register_as_before(policy_id):
    rows = _mixed_rows(300, seed=2)
    case = {"rows": rows, "policy_id": policy_id, "parties": MIXED_PARTIES}
    out = screen_sql(ledger(rows), load_policy(policy_id), load_catalog(), parties(rows, MIXED_PARTIES))
    assert out.column("license_cum_units").null_count == len(out) == out.column("license_cum_tpp").null_count
    codes = {c for r in out.column("reasons").to_pylist() for c in r.split(";")}
    assert not codes & {"LICENSE_UNKNOWN", "LICENSE_EXPIRED", "LICENSE_NOT_YET_VALID", "LICENSE_OUT_OF_SCOPE",
                        "LICENSE_EXHAUSTED"}
    # A register covering every licensed line without limits changes nothing but the new columns
    # (one license per id and destination: each line's id names its destination).
    rows2 = [dict(r, license_id=f"{r['license_id'].strip()}>{r['destination_country']}") if r.get("license_id")
             else r for r in rows]
    open_register = pd.DataFrame(
        [_lic(license_id=lid, valid_from="1900-01-01", valid_until="2199-12-31", destination_country=lid.split(">")[1])
         for lid in sorted({r["license_id"] for r in rows2 if r.get("license_id")})])
    base = screen_sql(ledger(rows2), load_policy(policy_id), load_catalog(), parties(rows, MIXED_PARTIES))
    full = run_case({**case, "register": None}, rows2, reg=open_register)
    assert full.drop_columns(["license_cum_units", "license_cum_tpp"]).equals(
        base.drop_columns(["license_cum_units", "license_cum_tpp"]))
    assert full.column("license_cum_units").null_count < len(full)


def test_register_text_forms():
    """Blank cells (None, NaN, ""), padded values, a lower-case destination code and numbers given
    as numbers read as their plain text forms do."""
    case = next(c for c in CASES if c["name"] == "pr-max-units")
    plain = run_case(case)
    messy = register(case["register"])
    messy.loc[0, "license_id"] = " L-U "
    messy.loc[0, "valid_from"] = " 2025-01-01"
    messy.loc[0, "destination_country"] = "vn "
    messy.loc[0, "max_units"] = 100
    messy.loc[0, "max_tpp"] = float("nan")
    messy.loc[0, "skus"] = None
    messy.loc[0, "consignee_id"] = "  "
    assert run_case(case, reg=messy).equals(plain)


def test_register_without_normalized_column_uses_party_results():
    case = next(c for c in CASES if c["name"] == "pr-consignee-name")
    reg = register(case["register"])
    out = run_case(case, reg=reg)
    # Without consignee_normalized the oracle takes the name's normalized form from the party
    # results when the name is among them, and refuses otherwise.
    # (x and y, unlicensed, only bring the register's names into the party results.)
    rows = case["rows"] + [dict(case["rows"][0], shipment_id="x", consignee_name="Acme Compute Co., Ltd.",
                                license_id=None),
                           dict(case["rows"][0], shipment_id="y", consignee_name="Gulf AI LLC", license_id=None)]
    with_names = screen_sql(ledger(rows), load_policy(case["policy_id"]), load_catalog(), parties(rows, None),
                            licenses=reg.drop(columns=["consignee_normalized"]))
    assert with_names.filter(pa.compute.is_in(with_names.column("shipment_id"),
                                              pa.array(list(case["expected"])))).equals(out)
    with pytest.raises(ValueError):
        run_case(case, reg=reg.drop(columns=["consignee_normalized"]))


def test_register_refusals():
    case = next(c for c in CASES if c["name"] == "pr-max-units")
    reg = register(case["register"])
    with pytest.raises(ValueError):
        run_case(case, reg=pd.concat([reg, reg.assign(license_id=" L-U")], ignore_index=True))
    with pytest.raises(ValueError):
        run_case(case, reg=reg.drop(columns=["valid_until"]))
    with pytest.raises(ValueError):
        run_case(case, reg=reg.assign(destination_country=""))


# --------------------------------------------------------------------------------------------
# Order invariance, the Parquet peer, exact totals.
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy_id,overrides", [
    ("post-rescission-2025", {"agreements.0.cap_tpp": 80_000_000}),
    ("in-force", None),
    ("ai-diffusion-2025", {"allocation.caps.VN": 100_000_000}),
])
def test_input_order_and_parquet_peer_with_register(policy_id, overrides, tmp_path):
    rows = _mixed_rows()
    case = {"rows": rows, "policy_id": policy_id, "parties": MIXED_PARTIES, "policy": overrides,
            "register": MIXED_REGISTER}
    out = run_case(case)
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    assert run_case(case, shuffled).equals(out)
    assert run_case(case, shuffled[::-1], reg=register(MIXED_REGISTER[::-1])).equals(out)
    pq.write_table(ledger(shuffled), tmp_path / "ledger.parquet")
    seconds = screen_sql_parquet(tmp_path / "ledger.parquet", tmp_path / "out.parquet", load_policy(policy_id),
                                 load_catalog(), parties(rows, MIXED_PARTIES), overrides=overrides,
                                 licenses=register(MIXED_REGISTER))
    assert seconds > 0
    assert pq.read_table(tmp_path / "out.parquet").cast(out.schema).equals(out)
    # The mix reaches every license code, and drawing rows carry both totals.
    codes = {c for r in out.column("reasons").to_pylist() for c in r.split(";")}
    assert codes >= {"LICENSE_UNKNOWN", "LICENSE_EXPIRED", "LICENSE_NOT_YET_VALID", "LICENSE_OUT_OF_SCOPE",
                     "LICENSE_EXHAUSTED", "LICENSE"}
    units, tpp = out.column("license_cum_units").to_pylist(), out.column("license_cum_tpp").to_pylist()
    assert all((u is None) == (t is None) for u, t in zip(units, tpp))
    assert any(u is not None for u in units)
    # Every drawing row is on the license path (LICENSE among its reasons), not DENIED.
    for r in out.to_pylist():
        if r["license_cum_units"] is not None:
            assert r["decision"] != "DENIED" and "LICENSE" in r["reasons"].split(";"), r


def test_totals_are_exact_and_overflow_is_an_error():
    """TPP totals near the int64 bound compare exactly; a total past int64 is an error, not a wrap."""
    q = (2**63 - 1) // 60_000 // 2 - 1      # GB300 units whose TPP, twice plus one unit, fits int64
    tpp = q * 60_000
    reg = pd.DataFrame([_lic(license_id="L-BIG", valid_from="2025-01-01", valid_until="2026-12-31",
                             destination_country="VN", max_tpp=str(2 * tpp))])
    base = {"destination_country": "VN", "sku": "NVIDIA-GB300", "license_id": "L-BIG"}
    rows = [{**base, "shipment_id": "b1", "ship_date": "2025-07-01", "quantity": q},
            {**base, "shipment_id": "b2", "ship_date": "2025-07-02", "quantity": q},
            {**base, "shipment_id": "b3", "ship_date": "2025-07-03", "quantity": 1}]
    case = {"rows": rows, "policy_id": "post-rescission-2025"}
    got = {r["shipment_id"]: r for r in run_case(case, reg=reg).to_pylist()}
    assert (got["b2"]["decision"], got["b2"]["license_cum_tpp"]) == ("AUTHORIZED", 2 * tpp)
    assert (got["b3"]["decision"], got["b3"]["license_cum_tpp"]) == ("CAP_EXCEEDED", 2 * tpp + 60_000)
    assert "LICENSE_EXHAUSTED" in got["b3"]["reasons"]
    rows.append({**base, "shipment_id": "b4", "ship_date": "2025-07-04", "quantity": q})
    with pytest.raises(duckdb.Error, match="(?i)out of range|overflow"):
        run_case(case, reg=reg)
