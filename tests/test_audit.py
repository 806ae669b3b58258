"""Audit (recorded vs recomputed) and rule-set diff on hand-built ledgers, asserted row by row."""
import pytest

from conftest import shipment, write_ledger
from pipeline.audit import diff_ledgers, discrepancies, transition_matrix
from pipeline.ingest import REASON_RECORDED, read_ledgers
from pipeline.parties import PartyScreen
from pipeline.policy import load_policy
from pipeline.screen import screen_ledger

H100_1000 = 15_832_000


def review_listed_name():
    screen = PartyScreen.from_path()
    names = screen.entries.loc[screen.entries["list_code"] == "UVL", "listed_name"].unique()[:50].tolist()
    result = screen.screen(names, ["EL", "DPL", "SDN", "MEU", "DTC", "ISN", "FSE"], ["UVL"])
    return result.loc[result["outcome"] == "review", "name"].iloc[0]


def audit(tmp_path, rows, policy_id="ai-diffusion-2025", overrides=()):
    ledger = read_ledgers([write_ledger(rows, tmp_path / "history.csv")])
    found = discrepancies(screen_ledger(ledger, load_policy(policy_id, overrides)))
    return {row["shipment_id"]: row for row in found.to_dict("records")}


def test_discrepancies_with_their_evidence(tmp_path):
    rows = [
        shipment("A1", "2025-03-01", consignee_id="C-1", quantity=1000, recorded_authorization="LPP"),
        shipment("A2", "2025-04-01", consignee_id="C-1", quantity=1000, recorded_authorization="LPP"),
        shipment("A3", "2025-03-01", destination_country="SG", license_id="L", quantity=1000,
                 recorded_authorization="LICENSE"),
        shipment("A4", "2025-03-02", destination_country="SG", license_id="L", quantity=1000,
                 recorded_authorization="license"),
        shipment("A5", destination_country="CN", license_id="L", recorded_authorization="LICENSE"),
        shipment("A6", destination_country="DE", consignee_name="Huawei Technologies Co., Ltd.",
                 recorded_authorization="AIA"),
        shipment("A7", destination_country="US", recorded_authorization="NLR"),
        shipment("A8", destination_country="US", sku="NVIDIA-H20", recorded_authorization="NLR"),
        shipment("A9", destination_country="JP", recorded_authorization="LPP"),
        shipment("A10", "2025-05-01", destination_country="IN", status="pending", consignee_id="C-1", quantity=5000),
        shipment("A11", destination_country="US"),
        shipment("A12", consignee_name=review_listed_name(), recorded_authorization="LPP"),
        shipment("A13", destination_country="IN", recorded_authorization="AIA"),
        shipment("A14", destination_country="JP", recorded_authorization="LICENSE"),
        shipment("A15", destination_country="JP", license_id="L-9", recorded_authorization="LICENSE"),
        shipment("A16", destination_country="IN", veu_id="V-1", recorded_authorization="VEU"),
        shipment("A17", destination_country="IN", consignee_id="C-2", recorded_authorization="VEU"),
    ]
    found = audit(tmp_path, rows, overrides=["allocation.caps.SG=20000000"])
    assert set(found) == {"A2", "A4", "A5", "A6", "A7", "A11", "A12", "A13", "A14", "A17"}
    assert found["A2"]["kinds"] == "LPP_OVER_LIMIT;UNLICENSED"
    assert (found["A2"]["lpp_cum_tpp"], found["A2"]["lpp_limit_tpp"]) == (2 * H100_1000, 26_900_000)
    assert found["A4"]["kinds"] == "LICENSE_OVER_ALLOCATION"
    assert (found["A4"]["country_cum_tpp"], found["A4"]["cap_tpp"]) == (2 * H100_1000, 20_000_000)
    assert found["A5"]["kinds"] == "SHIPPED_DENIED" and found["A5"]["reasons"] == "TIER3"
    assert found["A6"]["kinds"] == "SHIPPED_DENIED" and found["A6"]["party_list"] == "EL"
    assert found["A7"]["kinds"] == "NLR_FOR_CONTROLLED" and found["A7"]["authorization"] == "AIA"
    # A9 (LPP where AIA applies), A15 (a license with its id), A16 (a VEU with its id) are covered.
    for sid, recorded, computed in (("A13", "AIA", "LPP"), ("A14", "LICENSE", "AIA"), ("A17", "VEU", "LPP")):
        assert found[sid]["kinds"] == "AUTHORIZATION_MISMATCH"
        assert (found[sid]["recorded_authorization"], found[sid]["authorization"]) == (recorded, computed)
    assert found["A11"]["kinds"] == "NONE_RECORDED"
    assert found["A12"]["kinds"] == "SHIPPED_UNDER_REVIEW"


def test_unknown_recorded_authorization_is_quarantined(tmp_path):
    ledger = read_ledgers([write_ledger([shipment("A", recorded_authorization="MAYBE"), shipment("B")],
                                        tmp_path / "l.csv")])
    assert ledger.counts["by_reason"] == {REASON_RECORDED: 1}


def test_audit_as_of_replays_only_the_history_up_to_that_day(tmp_path):
    rows = [shipment("A1", "2025-03-01", consignee_id="C-1", quantity=1000, recorded_authorization="LPP"),
            shipment("A2", "2025-08-01", consignee_id="C-1", quantity=1000, recorded_authorization="LPP")]
    ledger = read_ledgers([write_ledger(rows, tmp_path / "l.parquet")], as_of=__import__("datetime").date(2025, 6, 30))
    assert discrepancies(screen_ledger(ledger, load_policy("ai-diffusion-2025"))).empty


def test_transition_matrix_counts_pairs():
    import numpy as np

    from pipeline.decide import DECISIONS

    codes = {name: i for i, name in enumerate(DECISIONS)}
    matrix = transition_matrix(np.array([codes[d] for d in ("NLR", "DENIED", "NLR")]),
                               np.array([codes[d] for d in ("NLR", "NLR", "REVIEW")]))
    assert int(matrix.loc["NLR", "NLR"]) == 1 and int(matrix.loc["DENIED", "NLR"]) == 1
    assert int(matrix.loc["NLR", "REVIEW"]) == 1 and int(matrix.values.sum()) == 3


def test_diff_between_rule_sets(tmp_path):
    rows = [
        shipment("D1", destination_country="IN"),                      # LPP -> no requirement
        shipment("D2", destination_country="AE"),                      # LPP -> license required
        shipment("D3", destination_country="CN"),                      # denied under both
        shipment("D4", "2026-03-01", destination_country="KH"),        # Tier 3 -> D:1 license required
        shipment("D5", destination_country="US"),                      # AIA -> no requirement
    ]
    path = write_ledger(rows, tmp_path / "l.csv")
    result = diff_ledgers([path], load_policy("ai-diffusion-2025"), load_policy("post-rescission-2025"))
    t = result.transitions
    assert int(t.loc["AUTHORIZED", "NLR"]) == 2
    assert int(t.loc["AUTHORIZED", "LICENSE_REQUIRED"]) == 1
    assert int(t.loc["DENIED", "DENIED"]) == 1
    assert int(t.loc["DENIED", "LICENSE_REQUIRED"]) == 1
    assert int(t.values.sum()) == 5
    assert sorted(result.changes["shipment_id"]) == ["D1", "D2", "D4", "D5"]
    d4 = result.changes.set_index("shipment_id").loc["D4"]
    assert d4["reasons_ai-diffusion-2025"] == "TIER3" and d4["reasons_post-rescission-2025"] == "LICENSE_REQUIRED;D1_D4"
    assert result.summary["transitions_by_destination"]["KH"] == {"DENIED": {"LICENSE_REQUIRED": 1}}


def test_diff_of_one_rule_set_against_a_what_if(tmp_path):
    rows = [shipment("W1", quantity=600), shipment("W2", "2025-03-02", quantity=10)]
    path = write_ledger(rows, tmp_path / "l.csv")
    what_if = load_policy("ai-diffusion-2025", ["lpp.limit_tpp=7916000"])
    result = diff_ledgers([path], load_policy("ai-diffusion-2025"), what_if)
    assert result.summary["policies"] == ["ai-diffusion-2025-a", "ai-diffusion-2025-b"]
    assert int(result.transitions.loc["AUTHORIZED", "LICENSE_REQUIRED"]) == 2
    with pytest.raises(ValueError, match="two different rule sets"):
        diff_ledgers([path], load_policy("ai-diffusion-2025"), load_policy("ai-diffusion-2025"))
