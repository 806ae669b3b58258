"""Hand-worked scenarios, one per rule branch of each rule set, through the whole screening job.

H100 SXM = 15,832 TPP per unit, so 1,000 units = 15,832,000 TPP; the LPP limit is 26,900,000.
"""
import json

import pytest

from conftest import shipment, write_ledger
from pipeline.parties import PartyScreen
from pipeline.policy import load_policy
from pipeline.screen import screen_ledgers

H100_1000 = 15_832_000


def run(tmp_path, rows, policy_id, overrides=(), out=None):
    path = write_ledger(rows, tmp_path / "ledger.csv")
    result = screen_ledgers([path], load_policy(policy_id, overrides), out)
    return {row["shipment_id"]: row for row in result.decisions.to_pylist()}, result


def listed(code):
    """A real name listed on ``code`` and on no deny list."""
    screen = PartyScreen.from_path()
    policy = load_policy("ai-diffusion-2025")
    names = screen.entries.loc[screen.entries["list_code"] == code, "listed_name"].unique()[:50].tolist()
    result = screen.screen(names, policy.get("parties.deny_lists"), policy.get("parties.review_lists"))
    return result.loc[result["party_list"] == code, "name"].iloc[0]


def check(row, decision, authorization, reasons, **values):
    assert (row["decision"], row["authorization"], row["reasons"]) == (decision, authorization, reasons), row
    for key, value in values.items():
        assert row[key] == value, (key, row)


# ------------------------------------------------------------------------------------ ai-diffusion
def test_lpp_crossing_and_calendar_year_reset(tmp_path):
    rows = [
        shipment("L1", "2025-03-01", consignee_id="C-9", quantity=1000),
        shipment("L2", "2025-06-01", consignee_id="C-9", quantity=1000),   # 31.66M > 26.9M
        shipment("L3", "2025-07-01", consignee_id="C-9", quantity=1),      # still over: first crossing
        shipment("L4", "2026-01-02", consignee_id="C-9", quantity=1000),   # new calendar year
        shipment("L5", "2025-06-02", consignee_id="C-10", quantity=1000),  # another consignee
    ]
    out, result = run(tmp_path, rows, "ai-diffusion-2025")
    check(out["L1"], "AUTHORIZED", "LPP", "TIER2;LPP", lpp_cum_tpp=H100_1000, country_cum_tpp=None, tier=2)
    check(out["L2"], "LICENSE_REQUIRED", None, "LPP_EXCEEDED;LICENSE_REQUIRED;TIER2",
          lpp_cum_tpp=2 * H100_1000, country_cum_tpp=H100_1000)
    check(out["L3"], "LICENSE_REQUIRED", None, "LPP_EXCEEDED;LICENSE_REQUIRED;TIER2",
          lpp_cum_tpp=2 * H100_1000 + 15_832, country_cum_tpp=H100_1000 + 15_832)
    check(out["L4"], "AUTHORIZED", "LPP", "TIER2;LPP", lpp_cum_tpp=H100_1000)
    check(out["L5"], "AUTHORIZED", "LPP", "TIER2;LPP", lpp_cum_tpp=H100_1000)
    assert result.summary["lpp"]["consignee_years_over_limit"] == 1


def test_lpp_limit_is_inclusive_and_overridable(tmp_path):
    rows = [shipment("A", quantity=500), shipment("B", "2025-03-02", quantity=1)]
    out, result = run(tmp_path, rows, "ai-diffusion-2025", ["lpp.limit_tpp=7916000"])  # 500 H100
    check(out["A"], "AUTHORIZED", "LPP", "TIER2;LPP", lpp_cum_tpp=7_916_000)
    check(out["B"], "LICENSE_REQUIRED", None, "LPP_EXCEEDED;LICENSE_REQUIRED;TIER2")
    assert result.summary["policy"]["overrides"] == ["lpp.limit_tpp=7916000"]


def test_party_key_without_consignee_id_is_normalized_name_plus_destination(tmp_path):
    rows = [
        shipment("A", "2025-03-01", consignee_name="Nimbus Compute Pvt", quantity=1000),
        shipment("B", "2025-03-02", consignee_name="NIMBUS COMPUTE PVT.", quantity=1000),  # same key
        shipment("C", "2025-03-03", consignee_name="Nimbus Compute Pvt", destination_country="SG", quantity=1000),
    ]
    out, _ = run(tmp_path, rows, "ai-diffusion-2025")
    assert out["B"]["lpp_cum_tpp"] == 2 * H100_1000 and out["B"]["decision"] == "LICENSE_REQUIRED"
    assert out["C"]["lpp_cum_tpp"] == H100_1000


def test_country_cap_crossing_with_licenses(tmp_path):
    rows = [shipment(f"K{i}", f"2025-04-0{i}", license_id="LIC-7", quantity=1000) for i in range(1, 4)]
    rows.append(shipment("K4", "2025-04-05", license_id="LIC-7", quantity=1))
    rows.append(shipment("K5", "2025-01-10", license_id="LIC-7", quantity=1000))  # before the window opens
    out, result = run(tmp_path, rows, "ai-diffusion-2025", ["allocation.caps.IN=40000000"])
    check(out["K1"], "AUTHORIZED", "LICENSE", "TIER2;LICENSE", country_cum_tpp=H100_1000)
    check(out["K2"], "AUTHORIZED", "LICENSE", "TIER2;LICENSE", country_cum_tpp=2 * H100_1000)
    check(out["K3"], "CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;TIER2;LICENSE", country_cum_tpp=3 * H100_1000)
    check(out["K4"], "CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;TIER2;LICENSE")
    check(out["K5"], "AUTHORIZED", "LICENSE", "TIER2;LICENSE", country_cum_tpp=None)
    [india] = [h for h in result.summary["allocation_headroom"] if h["destination"] == "IN"]
    assert india == {**india, "cap_tpp": 40_000_000, "allocated_tpp": 2 * H100_1000,
                     "requested_tpp": 3 * H100_1000 + 15_832, "remaining_tpp": 40_000_000 - 2 * H100_1000,
                     "exceeded_rows": 2}


def test_default_country_cap_is_790m(tmp_path):
    rows = [shipment("A", "2025-05-01", license_id="L", sku="NVIDIA-B200", quantity=21_944),   # 789,984,000
            shipment("B", "2025-05-02", license_id="L", sku="NVIDIA-L4", quantity=8),          # +15,520
            shipment("C", "2025-05-03", license_id="L", sku="NVIDIA-L4", quantity=1)]
    out, _ = run(tmp_path, rows, "ai-diffusion-2025")
    assert out["A"]["decision"] == "AUTHORIZED" and out["B"]["decision"] == "AUTHORIZED"
    assert out["B"]["country_cum_tpp"] == 789_999_520
    check(out["C"], "CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;TIER2;LICENSE", country_cum_tpp=790_001_460)


def test_tier1_tier3_and_headquarters(tmp_path):
    rows = [
        shipment("T1", destination_country="US"),
        shipment("T1-HQ1", destination_country="JP", consignee_hq_country="GB"),
        shipment("T1-HQ2", destination_country="JP", consignee_hq_country="IN"),  # not AIA: LPP path
        shipment("T1-HQ3", destination_country="DE", consignee_hq_country="CN"),
        shipment("T1-HK", destination_country="FR", consignee_hq_country="HK"),   # HK counts as CN
        shipment("T3", destination_country="CN"),
        shipment("T3-HK", destination_country="HK"),
        shipment("T3-MO", destination_country="MO"),
        shipment("T3-NC", destination_country="CN", sku="NVIDIA-H20"),           # not 3A090.a
    ]
    out, _ = run(tmp_path, rows, "ai-diffusion-2025")
    check(out["T1"], "AUTHORIZED", "AIA", "TIER1", tier=1, lpp_cum_tpp=None)
    check(out["T1-HQ1"], "AUTHORIZED", "AIA", "TIER1")
    check(out["T1-HQ2"], "AUTHORIZED", "LPP", "LPP", tier=1, lpp_cum_tpp=126_656)
    check(out["T1-HQ3"], "DENIED", None, "TIER3_HQ", tier=1)
    check(out["T1-HK"], "DENIED", None, "TIER3_HQ")
    check(out["T3"], "DENIED", None, "TIER3", tier=3)
    check(out["T3-HK"], "DENIED", None, "TIER3", tier=3)
    check(out["T3-MO"], "DENIED", None, "TIER3", tier=3)
    check(out["T3-NC"], "NLR", "NLR", "NOT_CONTROLLED", tier=3)


def test_veu_license_and_gp10(tmp_path):
    rows = [
        shipment("V", veu_id="VEU-1", quantity=5000),
        shipment("V2", "2025-03-02", quantity=1000),                       # VEU rows do not count toward LPP
        shipment("G", destination_country="US", sku="HUAWEI-ASCEND-910B"),
        shipment("G3", destination_country="CN", sku="HUAWEI-ASCEND-910C"),
    ]
    out, _ = run(tmp_path, rows, "ai-diffusion-2025")
    check(out["V"], "AUTHORIZED", "VEU", "TIER2;VEU", lpp_cum_tpp=None, country_cum_tpp=None)
    check(out["V2"], "AUTHORIZED", "LPP", "TIER2;LPP", lpp_cum_tpp=H100_1000)
    check(out["G"], "DENIED", None, "GP10")
    check(out["G3"], "DENIED", None, "GP10;TIER3")


def test_party_hits_deny_and_review_and_stay_out_of_accumulators(tmp_path):
    rows = [
        shipment("P1", "2025-03-01", consignee_name="huawei technologies co ltd", consignee_id="H-1", quantity=1000),
        shipment("P2", "2025-03-02", consignee_name="Huawei Technologies", consignee_id="H-1", quantity=1000),
        shipment("P3", "2025-03-03", consignee_name=listed("UVL"), consignee_id="U-1", quantity=1000),
        shipment("P4", "2025-03-04", consignee_name=listed("UVL"), consignee_id="U-1", quantity=1000),
        shipment("P5", "2025-03-05", consignee_name="Made Up Trading", destination_country="US"),
    ]
    out, _ = run(tmp_path, rows, "ai-diffusion-2025")
    check(out["P1"], "DENIED", None, "PARTY:EL", lpp_cum_tpp=None, party_list="EL", party_score=1.0)
    assert "Huawei Technologies" in out["P1"]["party_match"]
    check(out["P2"], "DENIED", None, "PARTY:EL", lpp_cum_tpp=None)   # denied rows never accumulate
    check(out["P3"], "REVIEW", None, "PARTY_REVIEW:UVL;TIER2;LPP", lpp_cum_tpp=H100_1000)
    check(out["P4"], "REVIEW", None, "PARTY_REVIEW:UVL;LPP_EXCEEDED;LICENSE_REQUIRED;TIER2",
          lpp_cum_tpp=2 * H100_1000)                                  # review rows do accumulate
    check(out["P5"], "AUTHORIZED", "AIA", "TIER1", party_match=None, party_score=None)


# ---------------------------------------------------------------------------- post-rescission
def test_country_groups_d1_d4_against_a5_a6(tmp_path):
    rows = [
        shipment("AE", destination_country="AE"),                   # D:4 -> license required
        shipment("AE-L", destination_country="AE", license_id="L"),
        shipment("VN", destination_country="VN"),                   # D:1
        shipment("IL", destination_country="IL"),                   # D:4 but A:6 -> no requirement
        shipment("IN", destination_country="IN"),                   # neither
        shipment("CN", destination_country="CN"),                   # D:5 -> denied
        shipment("MO", destination_country="MO"),                   # Macau -> denied
        shipment("HQ", destination_country="US", consignee_hq_country="RU"),
        shipment("NC", destination_country="CN", sku="NVIDIA-H20"),
        shipment("VEU", destination_country="SA", veu_id="VEU-2"),
        shipment("GP10", destination_country="IN", sku="HUAWEI-ASCEND-910B"),
    ]
    out, _ = run(tmp_path, rows, "post-rescission-2025")
    check(out["AE"], "LICENSE_REQUIRED", None, "LICENSE_REQUIRED;D1_D4", tier=None)
    check(out["AE-L"], "AUTHORIZED", "LICENSE", "D1_D4;LICENSE", country_cum_tpp=None)  # before the AE agreement
    check(out["VN"], "LICENSE_REQUIRED", None, "LICENSE_REQUIRED;D1_D4")
    check(out["IL"], "NLR", "NLR", "NO_LICENSE_REQUIREMENT")
    check(out["IN"], "NLR", "NLR", "NO_LICENSE_REQUIREMENT")
    check(out["CN"], "DENIED", None, "D5")
    check(out["MO"], "DENIED", None, "D5")
    check(out["HQ"], "DENIED", None, "D5_HQ")
    check(out["NC"], "NLR", "NLR", "NOT_CONTROLLED")
    check(out["VEU"], "AUTHORIZED", "VEU", "D1_D4;VEU")
    check(out["GP10"], "DENIED", None, "GP10")


def test_cambodia_leaves_d5_on_2026_02_03(tmp_path):
    rows = [shipment("KH1", "2026-02-02", destination_country="KH"),
            shipment("KH2", "2026-02-03", destination_country="KH")]
    out, _ = run(tmp_path, rows, "post-rescission-2025")
    check(out["KH1"], "DENIED", None, "D5")
    check(out["KH2"], "LICENSE_REQUIRED", None, "LICENSE_REQUIRED;D1_D4")   # still D:1
    out, _ = run(tmp_path, rows, "ai-diffusion-2025")                     # the IFR's Tier 3 as published
    check(out["KH2"], "DENIED", None, "TIER3")


def test_bilateral_agreement_cap(tmp_path):
    rows = [shipment(f"A{i}", f"2025-12-0{i}", destination_country="AE", license_id="L", sku="NVIDIA-GB300",
                     quantity=500) for i in range(1, 4)]  # 30,000,000 TPP each
    rows.append(shipment("S1", "2025-12-04", destination_country="SA", license_id="L", sku="NVIDIA-GB300", quantity=500))
    out, result = run(tmp_path, rows, "post-rescission-2025", ["agreements.0.cap_tpp=65000000"])
    check(out["A2"], "AUTHORIZED", "LICENSE", "D1_D4;LICENSE", country_cum_tpp=60_000_000)
    check(out["A3"], "CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;D1_D4;LICENSE", country_cum_tpp=90_000_000)
    check(out["S1"], "AUTHORIZED", "LICENSE", "D1_D4;LICENSE", country_cum_tpp=30_000_000)
    ae = [h for h in result.summary["allocation_headroom"] if h["destination"] == "AE"][0]
    assert (ae["cap_tpp"], ae["allocated_tpp"], ae["remaining_tpp"]) == (65_000_000, 60_000_000, 5_000_000)


# ---------------------------------------------------------------------------------- outputs
def test_outputs_and_summary_reconcile(tmp_path):
    rows = [shipment("A"), shipment("B", destination_country="ZZ"), shipment("C", status="pending"),
            shipment("D", "2025-09-01")]
    out_dir = tmp_path / "out"
    _, result = run(tmp_path, rows, "ai-diffusion-2025", out=out_dir)
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["rows"]["rows_read"] == summary["rows"]["accepted"] + summary["rows"]["quarantined"] == 4
    assert sum(summary["decisions"].values()) == summary["rows"]["accepted"] == 3
    assert summary["decisions_by_status"] == {"shipped": {"AUTHORIZED": 2}, "pending": {"AUTHORIZED": 1}}
    assert summary["by_destination"] == {"IN": {"AUTHORIZED": 3}}
    assert summary["policy"]["id"] == "ai-diffusion-2025" and summary["backend"] == "numpy"
    assert len(summary["policy"]["sha256"]) == 64
    import pyarrow.parquet as pq
    decisions = pq.read_table(out_dir / "decisions.parquet")
    assert decisions.num_rows == 3
    assert {"shipment_id", "status", "ship_date", "destination_country", "policy_id", "decision", "authorization",
            "reasons", "tier", "tpp", "lpp_cum_tpp", "country_cum_tpp", "party_match", "party_list",
            "party_score"} <= set(decisions.column_names)
    quarantine = pq.read_table(out_dir / "quarantine.parquet")
    assert quarantine.column("reason").to_pylist() == ["unknown country code: destination_country"]


def test_row_tpp_overflow_is_quarantined_not_wrapped(tmp_path):
    out, result = run(tmp_path, [shipment("A", quantity=2**62), shipment("B", quantity=1)], "ai-diffusion-2025")
    assert list(out) == ["B"]
    assert result.quarantine.column("reason").to_pylist() == ["quantity × unit TPP exceeds int64"]


def test_running_total_overflow_is_an_error_naming_the_shipment(tmp_path):
    quantity = 2**62 // 15_832 + 1000  # each row fits in int64; the consignee-year's LPP total does not
    rows = [shipment("FIRST", "2025-03-01", consignee_id="C-1", quantity=quantity),
            shipment("SECOND", "2025-03-02", consignee_id="C-1", quantity=quantity)]
    with pytest.raises(OverflowError, match="'SECOND'"):
        run(tmp_path, rows, "ai-diffusion-2025")
