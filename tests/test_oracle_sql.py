"""Hand-worked cases for the DuckDB oracle (tests/oracle_sql.py), one or more per branch.

Every expected value below was worked out by hand from DESIGN §4 and the rule-set files, not by
running the oracle. H = NVIDIA-H100-SXM x 1000 = 15,832,000 TPP.
"""
from __future__ import annotations

import copy
import datetime as dt
import random
import tomllib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.reference import POLICY_DIR, load_catalog

try:
    from tests.oracle_sql import screen_sql, screen_sql_parquet
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from oracle_sql import screen_sql, screen_sql_parquet

H = 15_832_000
GB300K = 60_000_000  # NVIDIA-GB300 x 1000

# name -> (normalized, party_list, outcome)
PARTY_TABLE = {
    "BADCO": ("BADCO", "EL", "block"),
    "WATCH": ("WATCH", "UVL", "review"),
    "Zed Ltd.": ("ZED", None, None),
    "ZED LIMITED": ("ZED", None, None),
}


def load_policy(policy_id: str) -> dict:
    with open(POLICY_DIR / f"{policy_id}.toml", "rb") as fh:
        return tomllib.load(fh)


def row(sid, date, dest, sku="NVIDIA-H100-SXM", qty=1000, cid=None, name=None, hq=None, lic=None, veu=None):
    return {
        "shipment_id": sid,
        "ship_date": dt.date.fromisoformat(date),
        "status": "shipped",
        "exporter": "EXP",
        "consignee_id": cid,
        "consignee_name": name or (cid or "ANON"),
        "consignee_address": None,
        "destination_country": dest,
        "consignee_hq_country": hq,
        "sku": sku,
        "quantity": qty,
        "license_id": lic,
        "veu_id": veu,
        "recorded_authorization": None,
    }


SCHEMA = pa.schema(
    [("shipment_id", pa.string()), ("ship_date", pa.date32()), ("status", pa.string()),
     ("exporter", pa.string()), ("consignee_id", pa.string()), ("consignee_name", pa.string()),
     ("consignee_address", pa.string()), ("destination_country", pa.string()),
     ("consignee_hq_country", pa.string()), ("sku", pa.string()), ("quantity", pa.int64()),
     ("license_id", pa.string()), ("veu_id", pa.string()), ("recorded_authorization", pa.string())]
)


def make(rows):
    ledger = pa.Table.from_pylist(rows, schema=SCHEMA)
    names = sorted({r["consignee_name"] for r in rows})
    parties = pd.DataFrame(
        {
            "name": names,
            "normalized": [PARTY_TABLE.get(n, (n.upper(), None, None))[0] for n in names],
            "party_match": [n if PARTY_TABLE.get(n, (0, None))[1] else None for n in names],
            "party_list": [PARTY_TABLE.get(n, (0, None, None))[1] for n in names],
            "outcome": [PARTY_TABLE.get(n, (0, None, None))[2] for n in names],
        }
    )
    return ledger, parties


def run(rows, policy):
    ledger, parties = make(rows)
    out = screen_sql(ledger, policy, load_catalog(), parties)
    return {r["shipment_id"]: r for r in out.to_pylist()}, out


def check(result, sid, decision, authorization, reasons, tier="skip", tpp=None, lpp=None, country=None):
    r = result[sid]
    assert (r["decision"], r["authorization"], r["reasons"]) == (decision, authorization, reasons), (sid, r)
    if tier != "skip":
        assert r["tier"] == tier, (sid, r)
    if tpp is not None:
        assert r["tpp"] == tpp, (sid, r)
    assert r["lpp_cum_tpp"] == lpp, (sid, r)
    assert r["country_cum_tpp"] == country, (sid, r)


# ------------------------------------------------------------------------------------------
# ai-diffusion-2025 (tiered)
# ------------------------------------------------------------------------------------------
def test_tiered_lpp_and_allocation_cap():
    policy = load_policy("ai-diffusion-2025")
    policy["allocation"]["caps"] = {"IN": 40_000_000}  # small what-if cap
    rows = [
        row("s01", "2025-01-10", "IN", cid="c3", lic="L0"),  # before the window
        row("s02", "2025-02-01", "IN", cid="c1"),
        row("s03", "2025-02-02", "IN", cid="c1"),
        row("s04", "2025-02-02", "IN", name="BADCO", lic="L9"),
        row("s05", "2025-02-03", "IN", cid="c2", lic="L1"),
        row("s06", "2025-02-03", "IN", name="WATCH", sku="NVIDIA-A100", qty=100, lic="L5"),
        row("s07", "2025-02-04", "IN", cid="c2", lic="L2"),
        row("s08", "2025-02-05", "IN", cid="c1"),
        row("s09", "2026-01-02", "IN", cid="c1"),
        row("s10", "2025-02-06", "IN", cid="c1", sku="NVIDIA-H20"),
    ]
    res, out = run(rows, policy)
    check(res, "s01", "AUTHORIZED", "LICENSE", "TIER2;LICENSE", 2, H, None, None)
    check(res, "s02", "AUTHORIZED", "LPP", "TIER2;LPP", 2, H, H, None)
    check(res, "s03", "LICENSE_REQUIRED", None, "LPP_EXCEEDED;LICENSE_REQUIRED;TIER2", 2, H, 2 * H, H)
    check(res, "s04", "DENIED", None, "PARTY:EL", 2, H, None, None)  # never enters an accumulator
    check(res, "s05", "AUTHORIZED", "LICENSE", "TIER2;LICENSE", 2, H, None, 2 * H)
    # REVIEW rows do enter the accumulators.
    check(res, "s06", "REVIEW", None, "PARTY_REVIEW:UVL;TIER2;LICENSE", 2, 499_200, None, 2 * H + 499_200)
    check(res, "s07", "CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;TIER2;LICENSE", 2, H, None, 3 * H + 499_200)
    check(res, "s08", "CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;LPP_EXCEEDED;TIER2", 2, H, 3 * H, 4 * H + 499_200)
    check(res, "s09", "AUTHORIZED", "LPP", "TIER2;LPP", 2, H, H, None)  # calendar-year reset
    check(res, "s10", "NLR", "NLR", "NOT_CONTROLLED", 2, 2_368_000, None, None)
    # Output schema and order.
    assert out.schema.field("tier").type == pa.int8()
    assert out.schema.field("tpp").type == pa.int64()
    assert out.schema.field("lpp_cum_tpp").type == pa.int64()
    assert out.schema.field("country_cum_tpp").type == pa.int64()
    assert out.column("shipment_id").to_pylist() == ["s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s10", "s09"]


def test_tiered_default_cap_not_reached():
    policy = load_policy("ai-diffusion-2025")
    res, _ = run([row("s1", "2025-02-03", "IN", cid="c2", lic="L1"),
                  row("s2", "2025-02-04", "IN", cid="c2", lic="L1", sku="NVIDIA-GB300", qty=13_000)], policy)
    check(res, "s1", "AUTHORIZED", "LICENSE", "TIER2;LICENSE", 2, H, None, H)
    # 15,832,000 + 780,000,000 = 795,832,000 > 790,000,000 (default cap)
    check(res, "s2", "CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;TIER2;LICENSE", 2, 780_000_000, None, 795_832_000)


def test_tiered_tiers_hq_veu_gp10_party():
    policy = load_policy("ai-diffusion-2025")
    rows = [
        row("t01", "2025-03-01", "FR", cid="f1"),
        row("t02", "2025-03-01", "FR", cid="f2", hq="US"),
        row("t03", "2025-03-01", "FR", cid="f3", hq="IN"),  # Tier-1 destination, Tier-2 HQ -> LPP, no tier code
        row("t04", "2025-03-01", "CN", cid="x1"),
        row("t05", "2025-03-01", "HK", cid="x2"),  # HK aliased to CN
        row("t06", "2025-03-01", "IN", cid="x3", hq="CN"),
        row("t07", "2025-03-01", "IN", cid="x4", hq="HK"),
        row("t08", "2025-03-01", "CN", cid="x5", sku="NVIDIA-H20"),
        row("t09", "2025-03-01", "AE", cid="v1", veu="VEU-1"),
        row("t10", "2025-03-01", "FR", cid="v2", hq="IN", veu="VEU-2"),
        row("t11", "2025-03-01", "FR", cid="g1", sku="HUAWEI-ASCEND-910B", qty=10),
        row("t12", "2025-03-01", "CN", cid="g2", sku="HUAWEI-ASCEND-910B", qty=10),
        row("t13", "2025-03-01", "RU", name="BADCO"),
        row("t14", "2025-03-01", "KH", cid="k1"),  # KH is in D:5 (static) in the IFR file
        row("t15", "2025-03-01", "FR", name="WATCH", sku="HUAWEI-ASCEND-910B", qty=10),
        row("t16", "2025-03-01", "FR", name="WATCH"),
        row("t17", "2025-03-01", "MO", cid="m1"),
        row("t18", "2025-03-01", "IN", cid="x6", hq="FR", lic="L1"),
    ]
    res, _ = run(rows, policy)
    check(res, "t01", "AUTHORIZED", "AIA", "TIER1", 1, H)
    check(res, "t02", "AUTHORIZED", "AIA", "TIER1", 1, H)
    check(res, "t03", "AUTHORIZED", "LPP", "LPP", 1, H, lpp=H)
    check(res, "t04", "DENIED", None, "TIER3", 3, H)
    check(res, "t05", "DENIED", None, "TIER3", 3, H)
    check(res, "t06", "DENIED", None, "TIER3_HQ", 2, H)
    check(res, "t07", "DENIED", None, "TIER3_HQ", 2, H)
    check(res, "t08", "NLR", "NLR", "NOT_CONTROLLED", 3, 2_368_000)
    check(res, "t09", "AUTHORIZED", "VEU", "TIER2;VEU", 2, H)
    check(res, "t10", "AUTHORIZED", "VEU", "VEU", 1, H)
    check(res, "t11", "DENIED", None, "GP10", 1, 51_200)
    check(res, "t12", "DENIED", None, "GP10;TIER3", 3, 51_200)
    check(res, "t13", "DENIED", None, "PARTY:EL;TIER3", 3, H)
    check(res, "t14", "DENIED", None, "TIER3", 3, H)
    check(res, "t15", "DENIED", None, "GP10;PARTY_REVIEW:UVL", 1, 51_200)
    check(res, "t16", "REVIEW", None, "PARTY_REVIEW:UVL;TIER1", 1, H)
    check(res, "t17", "DENIED", None, "TIER3", 3, H)
    check(res, "t18", "AUTHORIZED", "LICENSE", "TIER2;LICENSE", 2, H, country=H)


def test_tiered_party_key_uses_written_destination_allocation_uses_alias():
    policy = load_policy("ai-diffusion-2025")
    policy["destinations"]["aliases"] = {"HK": "CN", "XA": "IN"}  # what-if alias
    rows = [
        row("z1", "2025-04-01", "IN", name="Zed Ltd."),
        row("z2", "2025-04-02", "XA", name="Zed Ltd."),  # other party key (written destination)
        row("z3", "2025-04-03", "IN", name="Zed Ltd."),
        row("z4", "2025-04-04", "XA", cid="o1", lic="L1"),  # allocation key = aliased IN
        row("z5", "2025-04-05", "IN", name="ZED LIMITED"),  # same normalized name -> same key
        row("z6", "2025-04-06", "IN", cid="ZED"),  # an id is its own key
    ]
    res, _ = run(rows, policy)
    check(res, "z1", "AUTHORIZED", "LPP", "TIER2;LPP", 2, H, H, None)
    check(res, "z2", "AUTHORIZED", "LPP", "TIER2;LPP", 2, H, H, None)
    check(res, "z3", "LICENSE_REQUIRED", None, "LPP_EXCEEDED;LICENSE_REQUIRED;TIER2", 2, H, 2 * H, H)
    check(res, "z4", "AUTHORIZED", "LICENSE", "TIER2;LICENSE", 2, H, None, 2 * H)
    check(res, "z5", "LICENSE_REQUIRED", None, "LPP_EXCEEDED;LICENSE_REQUIRED;TIER2", 2, H, 3 * H, 3 * H)
    check(res, "z6", "AUTHORIZED", "LPP", "TIER2;LPP", 2, H, H, None)


def test_tiered_lpp_what_if_limit_and_boundary():
    policy = load_policy("ai-diffusion-2025")
    policy["lpp"]["limit_tpp"] = 2 * H  # equal to the running total: not over
    res, _ = run([row("a", "2025-05-01", "IN", cid="c"), row("b", "2025-05-01", "IN", cid="c"),
                  row("c", "2025-05-01", "IN", cid="c", qty=1)], policy)
    check(res, "a", "AUTHORIZED", "LPP", "TIER2;LPP", 2, H, H)
    check(res, "b", "AUTHORIZED", "LPP", "TIER2;LPP", 2, H, 2 * H)
    check(res, "c", "LICENSE_REQUIRED", None, "LPP_EXCEEDED;LICENSE_REQUIRED;TIER2", 2, 15_832, 2 * H + 15_832, 15_832)


# ------------------------------------------------------------------------------------------
# post-rescission-2025 (country groups)
# ------------------------------------------------------------------------------------------
def test_country_groups_branches():
    policy = load_policy("post-rescission-2025")
    rows = [
        row("c01", "2025-06-01", "IL", cid="i1"),  # D:4 but A:6 -> exempt
        row("c02", "2025-06-01", "AE", cid="e1"),
        row("c03", "2025-06-01", "VN", cid="v1", lic="L1"),  # D:1, no agreement
        row("c04", "2025-06-01", "AE", cid="e2", veu="VEU-1"),
        row("c05", "2026-02-02", "KH", cid="k1"),  # last day of KH's D:5 membership
        row("c06", "2026-02-03", "KH", cid="k1"),  # D:1 only from here
        row("c07", "2026-02-01", "IN", cid="h1", hq="KH"),
        row("c08", "2026-02-04", "IN", cid="h1", hq="KH"),
        row("c09", "2025-06-01", "HK", cid="hk1"),
        row("c10", "2025-06-01", "HK", cid="hk2", sku="NVIDIA-H20"),
        row("c11", "2025-06-01", "FR", cid="f1"),
        row("c12", "2025-06-01", "FR", cid="g1", sku="HUAWEI-ASCEND-910B", qty=10),
        row("c13", "2025-06-01", "CN", cid="g2", sku="HUAWEI-ASCEND-910B", qty=10),
        row("c14", "2025-06-01", "FR", name="BADCO"),
        row("c15", "2025-06-01", "FR", name="WATCH"),
        row("c16", "2025-06-01", "MO", cid="m1"),
        row("c17", "2025-06-01", "US", cid="u1", hq="HK"),
        row("c18", "2025-06-01", "AE", name="WATCH", lic="L7"),
        row("c19", "2025-06-01", "FR", sku="NVIDIA-A100", qty=3, cid="f2"),
    ]
    res, out = run(rows, policy)
    check(res, "c01", "NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, H)
    check(res, "c02", "LICENSE_REQUIRED", None, "LICENSE_REQUIRED;D1_D4", None, H)
    check(res, "c03", "AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, H)
    check(res, "c04", "AUTHORIZED", "VEU", "D1_D4;VEU", None, H)
    check(res, "c05", "DENIED", None, "D5", None, H)
    check(res, "c06", "LICENSE_REQUIRED", None, "LICENSE_REQUIRED;D1_D4", None, H)
    check(res, "c07", "DENIED", None, "D5_HQ", None, H)
    check(res, "c08", "NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, H)
    check(res, "c09", "DENIED", None, "D5", None, H)
    check(res, "c10", "NLR", "NLR", "NOT_CONTROLLED", None, 2_368_000)
    check(res, "c11", "NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, H)
    check(res, "c12", "DENIED", None, "GP10", None, 51_200)
    check(res, "c13", "DENIED", None, "GP10;D5", None, 51_200)
    check(res, "c14", "DENIED", None, "PARTY:EL", None, H)
    check(res, "c15", "REVIEW", None, "PARTY_REVIEW:UVL;NO_LICENSE_REQUIREMENT", None, H)
    check(res, "c16", "DENIED", None, "D5", None, H)
    check(res, "c17", "DENIED", None, "D5_HQ", None, H)
    check(res, "c18", "REVIEW", None, "PARTY_REVIEW:UVL;D1_D4;LICENSE", None, H)  # before the AE window
    check(res, "c19", "NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 14_976)
    assert out.column("tier").null_count == len(rows)
    assert out.schema.field("tier").type == pa.int8()


def test_country_groups_agreements():
    policy = load_policy("post-rescission-2025")
    policy["agreements"][0]["cap_tpp"] = 100_000_000  # AE what-if
    rows = [
        row("a1", "2025-11-18", "AE", sku="NVIDIA-GB300", cid="g42", lic="L1"),  # before the window
        row("a2", "2025-11-19", "AE", sku="NVIDIA-GB300", cid="g42", lic="L2"),
        row("a3", "2025-11-20", "SA", sku="NVIDIA-GB300", cid="hum", lic="L3"),
        row("a4", "2025-12-01", "AE", sku="NVIDIA-GB300", cid="g42", lic="L4"),
        row("a5", "2025-12-02", "AE", sku="NVIDIA-GB300", cid="g42"),
        row("a6", "2025-12-03", "AE", sku="NVIDIA-GB300", cid="g42", veu="V1"),
        row("a7", "2025-12-04", "AE", sku="NVIDIA-GB300", name="BADCO", lic="L5"),
        row("a8", "2025-12-05", "SA", sku="NVIDIA-GB300", name="WATCH", lic="L6"),
        row("a9", "2028-01-01", "AE", sku="NVIDIA-GB300", cid="g42", lic="L7"),  # after the window
    ]
    res, _ = run(rows, policy)
    check(res, "a1", "AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, GB300K, None, None)
    check(res, "a2", "AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, GB300K, None, GB300K)
    check(res, "a3", "AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, GB300K, None, GB300K)
    check(res, "a4", "CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;D1_D4;LICENSE", None, GB300K, None, 2 * GB300K)
    check(res, "a5", "LICENSE_REQUIRED", None, "LICENSE_REQUIRED;D1_D4", None, GB300K, None, None)
    check(res, "a6", "AUTHORIZED", "VEU", "D1_D4;VEU", None, GB300K, None, None)
    check(res, "a7", "DENIED", None, "PARTY:EL", None, GB300K, None, None)
    check(res, "a8", "REVIEW", None, "PARTY_REVIEW:UVL;D1_D4;LICENSE", None, GB300K, None, 2 * GB300K)
    check(res, "a9", "AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, GB300K, None, None)


# ------------------------------------------------------------------------------------------
# Order independence, Parquet peer, exactness.
# ------------------------------------------------------------------------------------------
def _mixed_rows(n=300, seed=7):
    rng = random.Random(seed)
    dests = ["IN", "AE", "FR", "CN", "HK", "IL", "KH", "VN", "SA", "US", "MO"]
    skus = ["NVIDIA-H100-SXM", "NVIDIA-GB300", "NVIDIA-H20", "NVIDIA-A100", "HUAWEI-ASCEND-910B"]
    names = ["BADCO", "WATCH", "Zed Ltd.", "ZED LIMITED", "ACME", "BETA"]
    rows = []
    for i in range(n):
        d = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(0, 420))
        rows.append(row(f"m{i:04d}", d.isoformat(), rng.choice(dests), sku=rng.choice(skus),
                        qty=rng.randrange(1, 3000), cid=rng.choice([None, None, "c1", "c2"]),
                        name=rng.choice(names), hq=rng.choice([None, None, "CN", "FR", "IN"]),
                        lic=rng.choice([None, None, "L"]), veu=rng.choice([None, None, None, "V"])))
    return rows


@pytest.mark.parametrize("policy_id", ["ai-diffusion-2025", "post-rescission-2025"])
def test_input_order_and_parquet_peer(policy_id, tmp_path):
    policy = load_policy(policy_id)
    rows = _mixed_rows()
    _, out = run(rows, policy)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    _, out2 = run(shuffled, policy)
    assert out.equals(out2)
    ledger, parties = make(shuffled)
    pq.write_table(ledger, tmp_path / "ledger.parquet")
    seconds = screen_sql_parquet(tmp_path / "ledger.parquet", tmp_path / "out.parquet", policy,
                                 load_catalog(), parties)
    assert seconds > 0
    assert pq.read_table(tmp_path / "out.parquet").cast(out.schema).equals(out)
    assert set(out.column("decision").to_pylist()) >= {"DENIED", "REVIEW", "NLR", "AUTHORIZED", "LICENSE_REQUIRED"}


def test_overflow_is_an_error():
    policy = load_policy("ai-diffusion-2025")
    rows = [row("o1", "2025-03-01", "IN", cid="c", lic="L", sku="NVIDIA-GB300", qty=2**62)]
    ledger, parties = make(rows)
    with pytest.raises(Exception):
        screen_sql(ledger, policy, load_catalog(), parties)


def test_unknown_sku_rejected():
    policy = copy.deepcopy(load_policy("ai-diffusion-2025"))
    ledger, parties = make([row("u1", "2025-03-01", "IN", cid="c", sku="NO-SUCH-SKU")])
    with pytest.raises(ValueError):
        screen_sql(ledger, policy, load_catalog(), parties)


def test_party_results_per_destination():
    """With a ``destination`` column the oracle takes each row's party result for its own
    destination (a rule set whose fuzzy scores move with the country)."""
    policy = load_policy("ai-diffusion-2025")
    ledger = pa.Table.from_pylist([row("s1", "2025-03-01", "IN", cid="c1", name="NEARCO"),
                                   row("s2", "2025-03-02", "DE", cid="c2", name="NEARCO")], schema=SCHEMA)
    parties = pd.DataFrame({"name": ["NEARCO", "NEARCO"], "destination": ["IN", "DE"],
                            "normalized": ["NEARCO", "NEARCO"], "party_list": ["EL", None],
                            "outcome": ["block", None]})
    out = {r["shipment_id"]: r for r in screen_sql(ledger, policy, load_catalog(), parties).to_pylist()}
    assert out["s1"]["decision"] == "DENIED" and out["s1"]["reasons"].startswith("PARTY:EL")
    assert out["s2"]["decision"] == "AUTHORIZED" and "PARTY" not in out["s2"]["reasons"]
