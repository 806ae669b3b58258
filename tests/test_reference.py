"""Reference data: the catalog agrees with the 3A090 thresholds; the rule sets parse and cite sources."""
import pytest

from pipeline.policy import PolicyError, list_policies, load_policy
from pipeline.reference import classify_3a090, load_catalog, load_countries

REQUIRED_TPP = {
    "NVIDIA-A100": 4992, "NVIDIA-H100-SXM": 15832, "NVIDIA-H100-PCIE": 12104, "NVIDIA-H200": 15832,
    "NVIDIA-H20": 2368, "NVIDIA-B200": 36000, "NVIDIA-GB200": 40000, "NVIDIA-L40S": 5864, "NVIDIA-L4": 1940,
    "AMD-MI300X": 20919, "INTEL-GAUDI3": 29360, "HUAWEI-ASCEND-910B": 5120, "HUAWEI-ASCEND-910C": 12800,
}


def test_catalog_has_the_required_skus_with_exact_tpp():
    catalog = load_catalog().set_index("sku")
    for sku, tpp in REQUIRED_TPP.items():
        assert catalog.loc[sku, "unit_tpp"] == tpp, sku


def test_catalog_class_is_derived_from_tpp_and_density():
    for row in load_catalog().itertuples():
        assert classify_3a090(row.unit_tpp, row.die_area_mm2) == row.eccn, row.sku
        assert row.source, f"{row.sku} has no source"


def test_special_classifications():
    catalog = load_catalog().set_index("sku")
    assert catalog.loc["NVIDIA-H20", "eccn"] == "none"          # not 3A090 by parameters
    assert catalog.loc["NVIDIA-L4", "eccn"] == "3A090.a"        # density prong: 1940 / 294.5 >= 5.92
    assert catalog.loc["HUAWEI-ASCEND-910B", "gp10"] and catalog.loc["HUAWEI-ASCEND-910C", "gp10"]
    assert not catalog["gp10"].drop(["HUAWEI-ASCEND-910B", "HUAWEI-ASCEND-910C"]).any()


@pytest.mark.parametrize("tpp, area, expected", [
    (4800, None, "3A090.a"),          # TPP prong, no area needed
    (4799, 800, "3A090.a"),           # density prong: 4799 / 800 = 5.998
    (4799, 900, "3A090.b"),           # PD 5.33: the 3.2 <= PD < 5.92 band
    (2000, 1000, "none"),             # PD 2.0 with TPP < 2400
    (1600, 1600 / 5.92, "3A090.a"),   # exactly on the density threshold
    (1599, 100, "none"),              # below the TPP floor whatever the density
    (2400, 1500, "3A090.b"),          # PD 1.6 with TPP >= 2400
    (1600, 500, "3A090.b"),           # PD 3.2 band
    (2000, None, "undetermined"),
])
def test_thresholds(tpp, area, expected):
    assert classify_3a090(tpp, area) == expected


def test_countries_include_namibia_and_kosovo_not_null():
    codes = set(load_countries()["alpha2"])
    assert {"NA", "XK", "US", "CN", "MO", "HK"} <= codes
    assert len(codes) == 250


def test_both_rule_sets_load_with_their_numbers():
    rule_sets = {p.id: p for p in list_policies()}
    assert set(rule_sets) == {"ai-diffusion-2025", "post-rescission-2025"}
    diffusion = rule_sets["ai-diffusion-2025"]
    assert diffusion.get("lpp.limit_tpp") == 26_900_000
    assert diffusion.get("allocation.default_cap_tpp") == 790_000_000
    assert len(diffusion.get("tiers.tier1")) == 19 and "US" in diffusion.get("tiers.tier1")
    assert len(diffusion.group_members("D:5")) == 23 and "KH" in diffusion.group_members("D:5")
    post = rule_sets["post-rescission-2025"]
    assert "KH" not in post.group_members("D:5")
    assert [c for c, _ in post.dated_members("D:5")] == ["KH"]
    for rules in rule_sets.values():
        groups = rules.params["country_groups"]
        assert len(groups["A:5"]) == 37 and len(groups["A:6"]) == 8
        assert len(groups["D:1"]) == 24 and len(groups["D:4"]) == 22


def test_overrides_keep_types_and_reject_unknown_keys():
    rules = load_policy("ai-diffusion-2025", ["lpp.limit_tpp=7_916_000", "allocation.caps.AE=1580000000"])
    assert rules.get("lpp.limit_tpp") == 7_916_000
    assert rules.get("allocation.caps") == {"AE": 1_580_000_000}
    assert rules.overrides == ("lpp.limit_tpp=7_916_000", "allocation.caps.AE=1580000000")
    with pytest.raises(PolicyError, match="expected int"):
        load_policy("ai-diffusion-2025", ["lpp.limit_tpp=lots"])
    with pytest.raises(PolicyError, match="no parameter"):
        load_policy("ai-diffusion-2025", ["lpp.limit=5"])
    with pytest.raises(PolicyError, match="KEY=VALUE"):
        load_policy("ai-diffusion-2025", ["lpp.limit_tpp"])
    with pytest.raises(PolicyError, match="unknown rule set"):
        load_policy("no-such-rules")
    with pytest.raises(PolicyError, match="ends before"):
        load_policy("ai-diffusion-2025", ["allocation.window_end=2024-01-01"])


def test_a_refreshed_screening_list_is_checked_and_kept_by_hash(tmp_path):
    import shutil

    from pipeline.parties import ScreeningListError, refresh_screening_list
    from pipeline.reference import CSL_PATH

    source = tmp_path / "download.csv"
    shutil.copyfile(CSL_PATH, source)
    kept = refresh_screening_list(source, tmp_path / "reference")
    assert kept.read_bytes() == CSL_PATH.read_bytes() and kept.name.startswith("csl-")
    assert refresh_screening_list(source, tmp_path / "reference") == kept  # the same file again: reused
    broken = tmp_path / "broken.csv"
    broken.write_text("name,address\nAcme,Nowhere\n")
    with pytest.raises(ScreeningListError):
        refresh_screening_list(broken, tmp_path / "reference")
    assert [p.name for p in (tmp_path / "reference").iterdir()] == [kept.name]
