"""Hand-worked scenarios for the ``in-force`` rule set, as data (issue 17).

Every expected value was worked out by hand from the text only: the README section "How screening
works" (the ``in-force`` paragraphs, the China volume condition and the reason-code order), issue
17 and ``data/policies/in-force.toml``. Nothing here was produced by running an implementation, and
nothing here refers to one: the same cases can be run against the engine and against the SQL
oracle (``tests/test_in_force_oracle.py`` does the latter).

Format
------
``CASES`` is a list of dicts:

``name``
    a short identifier.
``about``
    what the case checks; ``note`` (optional) names a point where the README leaves a choice and
    which reading the expectation follows.
``rows``
    ledger rows (dicts): ``shipment_id``, ``ship_date`` (ISO text), ``destination_country``,
    ``sku``, ``quantity``, and optionally ``exporter``, ``export_country``, ``consignee_id``,
    ``consignee_name``, ``consignee_hq_country``, ``ultimate_parent_hq_country``, ``license_id``,
    ``veu_id``. Absent fields are null. ``ledger_row`` fills ``status = "shipped"`` and a
    ``consignee_name`` of ``"Consignee <shipment_id>"`` where none is given.
``parties`` (optional)
    consignee name -> ``{"outcome": "block" | "review", "list": <list code>, "listed_on": ISO
    text or None}``: the restricted-party result for that name (exact hit). Every other name has
    no hit.
``policy`` (optional)
    what-if overrides of ``in-force.toml``, dotted key -> value (as ``--set``).
``expected``
    shipment_id -> ``(decision, authorization, reasons, cn_volume_cum, us_volume_cum)`` for every
    row of the case.
``expected_country_cum_tpp`` (optional)
    shipment_id -> ``country_cum_tpp`` for every row of the case (agreement cases).

``CATALOG`` lists the catalog facts the expectations rely on (unit TPP and class from
``data/chips.csv``; DRAM and I/O bandwidth in GB/s from the vendors' datasheets); a catalog that
disagrees with it makes the expectations void, so a runner should check it first.

Figures: H100/H200 15,832 TPP per unit, H20 2,368, B200 36,000, MI325X 20,919, L4 1,940,
Ascend 910B 5,120. "LR" below is LICENSE_REQUIRED.
"""
from __future__ import annotations

# sku -> facts the expected values depend on.
CATALOG = {
    "NVIDIA-H20": {"unit_tpp": 2368, "eccn": "none", "memory_bandwidth_gbs": 4000, "io_bandwidth_gbs": 900},
    "NVIDIA-H200": {"unit_tpp": 15832, "eccn": "3A090.a", "memory_bandwidth_gbs": 4800, "io_bandwidth_gbs": 900},
    "NVIDIA-H100-SXM": {"unit_tpp": 15832, "eccn": "3A090.a", "memory_bandwidth_gbs": 3350, "io_bandwidth_gbs": 900},
    "NVIDIA-B200": {"unit_tpp": 36000, "eccn": "3A090.a", "memory_bandwidth_gbs": 8000, "io_bandwidth_gbs": 1800},
    "AMD-MI325X": {"unit_tpp": 20919, "eccn": "3A090.a", "memory_bandwidth_gbs": 6000, "io_bandwidth_gbs": 896},
    "NVIDIA-L4": {"unit_tpp": 1940, "eccn": "3A090.a", "memory_bandwidth_gbs": 300, "io_bandwidth_gbs": 64},
    "HUAWEI-ASCEND-910B": {"unit_tpp": 5120, "eccn": "3A090.a", "memory_bandwidth_gbs": 1600, "io_bandwidth_gbs": 392},
}
# Which bandwidth facts the expectations depend on: for the H20 its exact DRAM and I/O (the
# sum-threshold cases put its DRAM at 799/800 against its I/O of 900); for every SKU, whether it is
# an informed chip under the file's thresholds (1,400 / 1,100 / 1,700) and whether its DRAM is below
# 6,500 (the H200 band); None: does not matter (every 910B row is decided by GP10 or D5 first).
CATALOG_DEPENDS = {
    "NVIDIA-H20": {"exact": True, "informed": True, "below_6500": True},
    "NVIDIA-H200": {"informed": True, "below_6500": True},
    "NVIDIA-H100-SXM": {"informed": True, "below_6500": True},
    "NVIDIA-B200": {"informed": True, "below_6500": False},
    "AMD-MI325X": {"informed": True, "below_6500": True},
    "NVIDIA-L4": {"informed": False, "below_6500": True},
    "HUAWEI-ASCEND-910B": {"informed": None, "below_6500": True},
}

H = 15_832          # TPP of one H100/H200
LR = "LICENSE_REQUIRED"


def ledger_row(row: dict) -> dict:
    """The row with the defaults the cases assume (status shipped, a neutral consignee name)."""
    out = dict(row)
    out.setdefault("status", "shipped")
    out.setdefault("consignee_name", f"Consignee {row['shipment_id']}")
    return out


def _r(sid, date, dest, sku, qty=10, **extra):
    return {"shipment_id": sid, "ship_date": date, "destination_country": dest, "sku": sku,
            "quantity": qty, **extra}


CASES: list[dict] = []

# --------------------------------------------------------------------------------------------
# Timeline start: 2023-11-16 (before, BEFORE_TIMELINE, decided as on 2023-11-17) / 2023-11-17.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "timeline-start",
    "about": "Rows before 2023-11-17 are decided under the earliest components (the 2023 controls, "
             "KH in D:5) and get BEFORE_TIMELINE last; a US row dated before the timeline still "
             "counts in the US volume (on any date).",
    "rows": [
        _r("t01", "2023-11-16", "CN", "NVIDIA-H100-SXM"),
        _r("t02", "2023-11-17", "CN", "NVIDIA-H100-SXM"),
        _r("t03", "2023-11-16", "VN", "NVIDIA-H100-SXM"),
        _r("t04", "2023-11-17", "VN", "NVIDIA-H100-SXM"),
        _r("t05", "2023-11-16", "CN", "NVIDIA-H20"),
        _r("t06", "2023-11-16", "FR", "NVIDIA-H100-SXM"),
        _r("t07", "2023-11-16", "US", "NVIDIA-H200", exporter="EXT"),
        _r("t08", "2023-11-16", "SG", "NVIDIA-H100-SXM", consignee_hq_country="CN"),
        _r("t09", "2023-11-16", "KH", "NVIDIA-H100-SXM"),
        _r("t10", "2019-06-30", "VN", "NVIDIA-H100-SXM", license_id="L-10"),
        _r("t11", "2026-02-10", "CN", "NVIDIA-H200", qty=5, exporter="EXT", license_id="L-11"),
    ],
    "expected": {
        "t01": ("DENIED", None, "D5;BEFORE_TIMELINE", None, None),
        "t02": ("DENIED", None, "D5", None, None),
        "t03": (LR, None, "LICENSE_REQUIRED;D1_D4;BEFORE_TIMELINE", None, None),
        "t04": (LR, None, "LICENSE_REQUIRED;D1_D4", None, None),
        "t05": ("NLR", "NLR", "NOT_CONTROLLED;BEFORE_TIMELINE", None, None),
        "t06": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT;BEFORE_TIMELINE", None, None),
        "t07": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT;BEFORE_TIMELINE", None, 10),
        "t08": ("DENIED", None, "D5_HQ;BEFORE_TIMELINE", None, None),
        "t09": ("DENIED", None, "D5;BEFORE_TIMELINE", None, None),
        "t10": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE;BEFORE_TIMELINE", None, None),
        # 100 x 5 = 500 > 50 x 10 = 500? no.
        "t11": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 5, 10),
    },
})

# --------------------------------------------------------------------------------------------
# is-informed: 2025-04-08 / 2025-04-09.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "is-informed-start",
    "about": "From 2025-04-09 the H20 (DRAM 4,000 GB/s >= 1,400) needs a license to China (HK, MO), "
             "D:5 (RU, KH before 2026-02-03), or to a consignee headquartered or with an ultimate "
             "parent there when the destination is not the US. The day before: NOT_CONTROLLED.",
    "rows": [
        _r("i01", "2025-04-08", "CN", "NVIDIA-H20", qty=100),
        _r("i02", "2025-04-09", "CN", "NVIDIA-H20", qty=100),
        _r("i03", "2025-04-09", "HK", "NVIDIA-H20", qty=100),
        _r("i04", "2025-04-09", "MO", "NVIDIA-H20", qty=100),
        _r("i05", "2025-04-09", "RU", "NVIDIA-H20", qty=100),
        _r("i06", "2025-04-09", "KH", "NVIDIA-H20", qty=100),
        _r("i07", "2025-04-09", "AE", "NVIDIA-H20", qty=100),
        _r("i08", "2025-04-09", "US", "NVIDIA-H20", qty=100),
        _r("i09", "2025-04-08", "SG", "NVIDIA-H20", qty=100, consignee_hq_country="CN"),
        _r("i10", "2025-04-09", "SG", "NVIDIA-H20", qty=100, consignee_hq_country="CN"),
        _r("i11", "2025-04-09", "SG", "NVIDIA-H20", qty=100, ultimate_parent_hq_country="CN"),
        _r("i12", "2025-04-09", "US", "NVIDIA-H20", qty=50, consignee_hq_country="CN"),
        _r("i13", "2025-04-09", "CN", "NVIDIA-H20", qty=100, license_id="L-13"),
        _r("i14", "2025-04-09", "CN", "NVIDIA-H20", qty=100, veu_id="V-14"),
        _r("i15", "2025-04-08", "RU", "NVIDIA-H20", qty=100),
        _r("i16", "2025-04-09", "VN", "NVIDIA-H20", qty=100),
    ],
    "expected": {
        "i01": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "i02": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "i03": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "i04": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "i05": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "i06": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "i07": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "i08": ("NLR", "NLR", "NOT_CONTROLLED", None, 100),
        "i09": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "i10": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "i11": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "i12": ("NLR", "NLR", "NOT_CONTROLLED", None, 150),
        "i13": ("AUTHORIZED", "LICENSE", "IS_INFORMED;LICENSE", None, None),
        "i14": ("AUTHORIZED", "VEU", "IS_INFORMED;VEU", None, None),
        "i15": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "i16": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
    },
})

# The is-informed thresholds, each at its boundary (>=), by what-if values.
CASES.append({
    "name": "is-informed-sum-at-threshold",
    "about": "H20 DRAM set to 800: 800 < 1,400 and I/O 900 < 1,100, but 800 + 900 = 1,700 >= 1,700.",
    "note": "The catalog override is read by the is-informed test too, not only by the H200 band.",
    "policy": {"catalog.memory_bandwidth_gbs.NVIDIA-H20": 800},
    "rows": [
        _r("s1", "2025-06-02", "CN", "NVIDIA-H20"),
        _r("s2", "2025-06-02", "SG", "NVIDIA-H20", consignee_hq_country="CN"),
    ],
    "expected": {
        "s1": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "s2": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
    },
})
CASES.append({
    "name": "is-informed-sum-below-threshold",
    "about": "H20 DRAM set to 799: 799 + 900 = 1,699 < 1,700, no threshold reached: not informed, "
             "and (not controlled) not case-by-case under the H200 rule either.",
    "note": "The catalog override is read by the is-informed test too, not only by the H200 band.",
    "policy": {"catalog.memory_bandwidth_gbs.NVIDIA-H20": 799},
    "rows": [
        _r("s1", "2025-06-02", "CN", "NVIDIA-H20"),
        _r("s2", "2025-06-02", "SG", "NVIDIA-H20", consignee_hq_country="CN"),
        _r("s3", "2026-03-02", "CN", "NVIDIA-H20", license_id="L-3"),
    ],
    "expected": {
        "s1": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "s2": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "s3": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
    },
})
CASES.append({
    "name": "is-informed-dram-at-threshold",
    "about": "DRAM threshold set to 4,000 (I/O and sum thresholds out of reach): H20 4,000 >= 4,000.",
    "policy": {"components.is-informed.memory_bandwidth_gbs": 4000,
               "components.is-informed.io_bandwidth_gbs": 100000,
               "components.is-informed.combined_bandwidth_gbs": 100000},
    "rows": [_r("s1", "2025-06-02", "CN", "NVIDIA-H20")],
    "expected": {"s1": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None)},
})
CASES.append({
    "name": "is-informed-dram-below-threshold",
    "about": "DRAM threshold set to 4,001: H20 4,000 < 4,001, nothing else reached.",
    "policy": {"components.is-informed.memory_bandwidth_gbs": 4001,
               "components.is-informed.io_bandwidth_gbs": 100000,
               "components.is-informed.combined_bandwidth_gbs": 100000},
    "rows": [_r("s1", "2025-06-02", "CN", "NVIDIA-H20")],
    "expected": {"s1": ("NLR", "NLR", "NOT_CONTROLLED", None, None)},
})
CASES.append({
    "name": "is-informed-io-at-threshold",
    "about": "I/O threshold set to 900 (DRAM and sum out of reach): H20 I/O 900 >= 900.",
    "policy": {"components.is-informed.memory_bandwidth_gbs": 100000,
               "components.is-informed.io_bandwidth_gbs": 900,
               "components.is-informed.combined_bandwidth_gbs": 100000},
    "rows": [_r("s1", "2025-06-02", "CN", "NVIDIA-H20")],
    "expected": {"s1": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None)},
})
CASES.append({
    "name": "is-informed-io-below-threshold",
    "about": "I/O threshold set to 901: H20 I/O 900 < 901, nothing else reached.",
    "policy": {"components.is-informed.memory_bandwidth_gbs": 100000,
               "components.is-informed.io_bandwidth_gbs": 901,
               "components.is-informed.combined_bandwidth_gbs": 100000},
    "rows": [_r("s1", "2025-06-02", "CN", "NVIDIA-H20")],
    "expected": {"s1": ("NLR", "NLR", "NOT_CONTROLLED", None, None)},
})

# --------------------------------------------------------------------------------------------
# GP10: 2025-05-12 / 2025-05-13.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "gp10-start",
    "about": "GP10 denies Ascend parts anywhere from 2025-05-13 only; denial codes add up (GP10;D5); "
             "a DENIED row carries no path codes (no CN_CASE_BY_CASE) and a DENIED US row does not "
             "count in the US volume.",
    "rows": [
        _r("g1", "2025-05-12", "FR", "HUAWEI-ASCEND-910B"),
        _r("g2", "2025-05-13", "FR", "HUAWEI-ASCEND-910B"),
        _r("g3", "2025-05-12", "CN", "HUAWEI-ASCEND-910B"),
        _r("g4", "2025-05-13", "CN", "HUAWEI-ASCEND-910B"),
        _r("g5", "2026-03-02", "CN", "HUAWEI-ASCEND-910B", license_id="L-5"),
        _r("g6", "2026-03-02", "US", "HUAWEI-ASCEND-910B"),
        _r("g7", "2025-05-12", "US", "HUAWEI-ASCEND-910B"),
    ],
    "expected": {
        "g1": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, None),
        "g2": ("DENIED", None, "GP10", None, None),
        "g3": ("DENIED", None, "D5", None, None),
        "g4": ("DENIED", None, "GP10;D5", None, None),
        "g5": ("DENIED", None, "GP10", None, None),
        "g6": ("DENIED", None, "GP10", None, None),
        "g7": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 10),
    },
})

# --------------------------------------------------------------------------------------------
# H200 rule and volume condition: 2026-01-14 / 2026-01-15.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "h200-rule-start",
    "about": "To China/Macau a controlled chip in the band (TPP < 21,000, DRAM < 6,500) from the US is "
             "D5-denied up to 2026-01-14 and case-by-case from 2026-01-15; the H20 gains "
             "CN_CASE_BY_CASE next to IS_INFORMED; licensed case-by-case lines enter the China volume "
             "from 2026-01-15 (EXH shipped no H20 to the US: 0, so over).",
    "rows": [
        _r("h01", "2026-01-14", "CN", "NVIDIA-H200"),
        _r("h02", "2026-01-15", "CN", "NVIDIA-H200"),
        _r("h03", "2026-01-14", "CN", "NVIDIA-H20"),
        _r("h04", "2026-01-15", "CN", "NVIDIA-H20"),
        _r("h05", "2026-01-14", "CN", "NVIDIA-H200", exporter="EXH", license_id="L-5"),
        _r("h06", "2026-01-15", "CN", "NVIDIA-H20", exporter="EXH", license_id="L-6"),
        _r("h07", "2026-01-14", "CN", "NVIDIA-H20", exporter="EXH", license_id="L-7"),
        _r("h08", "2026-01-15", "RU", "NVIDIA-H200"),
        _r("h09", "2026-01-15", "MO", "NVIDIA-H200"),
        _r("h10", "2026-01-15", "HK", "NVIDIA-H200"),
        _r("h11", "2026-01-14", "MO", "NVIDIA-H200"),
        _r("h12", "2026-01-14", "CN", "NVIDIA-L4"),
        _r("h13", "2026-01-15", "CN", "NVIDIA-L4"),
    ],
    "expected": {
        "h01": ("DENIED", None, "D5", None, None),
        "h02": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "h03": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "h04": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE;IS_INFORMED", None, None),
        "h05": ("DENIED", None, "D5", None, None),
        "h06": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;IS_INFORMED;LICENSE", 10, 0),
        "h07": ("AUTHORIZED", "LICENSE", "IS_INFORMED;LICENSE", None, None),
        "h08": ("DENIED", None, "D5", None, None),
        "h09": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "h10": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "h11": ("DENIED", None, "D5", None, None),
        "h12": ("DENIED", None, "D5", None, None),
        "h13": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
    },
})

# --------------------------------------------------------------------------------------------
# Cambodia leaves D:5: 2026-02-02 (last day) / 2026-02-03.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "cambodia-leaves-d5",
    "about": "KH is in D:5 through 2026-02-02 and only in D:1 from 2026-02-03: destination, HQ and "
             "ultimate parent tests, the is-informed groups and the China branch's HQ test all move.",
    "rows": [
        _r("k01", "2026-02-02", "KH", "NVIDIA-H100-SXM"),
        _r("k02", "2026-02-03", "KH", "NVIDIA-H100-SXM"),
        _r("k03", "2026-02-02", "KH", "NVIDIA-H20"),
        _r("k04", "2026-02-03", "KH", "NVIDIA-H20"),
        _r("k05", "2026-02-02", "SG", "NVIDIA-H100-SXM", consignee_hq_country="KH"),
        _r("k06", "2026-02-03", "SG", "NVIDIA-H100-SXM", consignee_hq_country="KH"),
        _r("k07", "2026-02-02", "CN", "NVIDIA-H200", consignee_hq_country="KH"),
        _r("k08", "2026-02-03", "CN", "NVIDIA-H200", consignee_hq_country="KH"),
        _r("k09", "2026-02-02", "SG", "NVIDIA-H20", ultimate_parent_hq_country="KH"),
        _r("k10", "2026-02-03", "SG", "NVIDIA-H20", ultimate_parent_hq_country="KH"),
        _r("k11", "2026-02-02", "KH", "NVIDIA-H100-SXM", license_id="L-11"),
        _r("k12", "2026-02-03", "KH", "NVIDIA-H100-SXM", license_id="L-12"),
    ],
    "expected": {
        "k01": ("DENIED", None, "D5", None, None),
        "k02": (LR, None, "LICENSE_REQUIRED;D1_D4", None, None),
        "k03": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "k04": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "k05": ("DENIED", None, "D5_HQ", None, None),
        "k06": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, None),
        "k07": ("DENIED", None, "D5_HQ", None, None),
        "k08": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "k09": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "k10": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "k11": ("DENIED", None, "D5", None, None),
        "k12": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
    },
})

# --------------------------------------------------------------------------------------------
# Chips x destinations on 2026-03-02 (every component in force, KH out of D:5).
# --------------------------------------------------------------------------------------------
_DESTS = ("CN", "HK", "MO", "RU", "KH", "AE", "US")
_MATRIX = {
    # sku: outcome per destination in _DESTS order (US rows: us_volume_cum 10, one per SKU).
    "NVIDIA-H20": [(LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE;IS_INFORMED")] * 3
    + [(LR, None, "LICENSE_REQUIRED;IS_INFORMED"), ("NLR", "NLR", "NOT_CONTROLLED"),
       ("NLR", "NLR", "NOT_CONTROLLED"), ("NLR", "NLR", "NOT_CONTROLLED")],
    "NVIDIA-H200": [(LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE")] * 3
    + [("DENIED", None, "D5"), (LR, None, "LICENSE_REQUIRED;D1_D4"), (LR, None, "LICENSE_REQUIRED;D1_D4"),
       ("NLR", "NLR", "NO_LICENSE_REQUIREMENT")],
    "NVIDIA-H100-SXM": [(LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE")] * 3
    + [("DENIED", None, "D5"), (LR, None, "LICENSE_REQUIRED;D1_D4"), (LR, None, "LICENSE_REQUIRED;D1_D4"),
       ("NLR", "NLR", "NO_LICENSE_REQUIREMENT")],
    "NVIDIA-B200": [("DENIED", None, "CN_ABOVE_THRESHOLD")] * 3
    + [("DENIED", None, "D5"), (LR, None, "LICENSE_REQUIRED;D1_D4"), (LR, None, "LICENSE_REQUIRED;D1_D4"),
       ("NLR", "NLR", "NO_LICENSE_REQUIREMENT")],
    "AMD-MI325X": [(LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE")] * 3
    + [("DENIED", None, "D5"), (LR, None, "LICENSE_REQUIRED;D1_D4"), (LR, None, "LICENSE_REQUIRED;D1_D4"),
       ("NLR", "NLR", "NO_LICENSE_REQUIREMENT")],
    "NVIDIA-L4": [(LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE")] * 3
    + [("DENIED", None, "D5"), (LR, None, "LICENSE_REQUIRED;D1_D4"), (LR, None, "LICENSE_REQUIRED;D1_D4"),
       ("NLR", "NLR", "NO_LICENSE_REQUIREMENT")],
}


def _matrix_case(name, about, matrix, policy=None):
    rows, expected = [], {}
    for sku, outcomes in matrix.items():
        for dest, outcome in zip(_DESTS, outcomes):
            sid = f"{sku}>{dest}"
            rows.append(_r(sid, "2026-03-02", dest, sku))
            expected[sid] = outcome + (None, 10 if dest == "US" else None)
    case = {"name": name, "about": about, "rows": rows, "expected": expected}
    if policy:
        case["policy"] = policy
    return case


CASES.append(_matrix_case(
    "chips-by-destination",
    "H20/H200/H100/B200/MI325X(6,000 GB/s)/L4 to CN/HK/MO/RU/KH/AE/US after every change: B200 "
    "(TPP 36,000, 8,000 GB/s) is above the band; MI325X (20,919 < 21,000; 6,000 < 6,500) inside; "
    "RU stays D5; KH and AE are D1_D4; every non-DENIED US row counts in its SKU's US volume.",
    _MATRIX))
CASES.append(_matrix_case(
    "mi325x-at-6500",
    "What-if MI325X DRAM 6,500 GB/s: not < 6,500, so to China/Macau CN_ABOVE_THRESHOLD.",
    {"AMD-MI325X": [("DENIED", None, "CN_ABOVE_THRESHOLD")] * 3 + _MATRIX["AMD-MI325X"][3:]},
    {"catalog.memory_bandwidth_gbs.AMD-MI325X": 6500}))
CASES.append(_matrix_case(
    "mi325x-at-6499",
    "What-if MI325X DRAM 6,499 GB/s: inside the band.",
    {"AMD-MI325X": _MATRIX["AMD-MI325X"]},
    {"catalog.memory_bandwidth_gbs.AMD-MI325X": 6499}))
CASES.append(_matrix_case(
    "max-tpp-at-mi325x",
    "What-if h200-china.max_tpp = 20,919: the MI325X (20,919) is not < 20,919; the H200 (15,832) is.",
    {"AMD-MI325X": [("DENIED", None, "CN_ABOVE_THRESHOLD")] * 3 + _MATRIX["AMD-MI325X"][3:],
     "NVIDIA-H200": _MATRIX["NVIDIA-H200"]},
    {"components.h200-china.max_tpp": 20919}))

# --------------------------------------------------------------------------------------------
# Re-export.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "reexport",
    "about": "Under the H200 rule only exports from the US (export_country empty or US) are "
             "case-by-case; a controlled chip re-exported to China/Macau is DENIED (REEXPORT), "
             "licensed or not, and never enters the China volume; before 2026-01-15 it is D5; "
             "re-exports elsewhere follow the ordinary rules.",
    "note": "r05: denial codes add up (CN_ABOVE_THRESHOLD;REEXPORT), as D5;D5_HQ and GP10;D5 do. "
            "r06: REEXPORT is stated for controlled chips only; the (uncontrolled) H20 re-exported "
            "to CN is therefore not case-by-case and takes the is-informed license path.",
    "rows": [
        _r("r01", "2026-03-02", "CN", "NVIDIA-H200", export_country="SG"),
        _r("r02", "2026-03-02", "CN", "NVIDIA-H200", export_country="SG", exporter="EXR", license_id="L-2"),
        _r("r03", "2026-03-02", "CN", "NVIDIA-H200", export_country=""),
        _r("r04", "2026-03-02", "CN", "NVIDIA-H200", export_country="US"),
        _r("r05", "2026-03-02", "CN", "NVIDIA-B200", export_country="SG"),
        _r("r06", "2026-03-02", "CN", "NVIDIA-H20", export_country="SG"),
        _r("r07", "2026-01-14", "CN", "NVIDIA-H200", export_country="SG"),
        _r("r08", "2026-03-02", "VN", "NVIDIA-H100-SXM", export_country="TW"),
        _r("r09", "2026-03-02", "MO", "NVIDIA-H200", export_country="HK"),
        _r("r10", "2026-03-02", "US", "NVIDIA-H200", exporter="EXR", qty=20),
        _r("r11", "2026-03-03", "CN", "NVIDIA-H200", exporter="EXR", license_id="L-11"),
        _r("r12", "2026-03-02", "FR", "NVIDIA-H100-SXM", export_country="DE"),
    ],
    "expected": {
        "r01": ("DENIED", None, "REEXPORT", None, None),
        "r02": ("DENIED", None, "REEXPORT", None, None),
        "r03": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "r04": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "r05": ("DENIED", None, "CN_ABOVE_THRESHOLD;REEXPORT", None, None),
        "r06": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "r07": ("DENIED", None, "D5", None, None),
        "r08": (LR, None, "LICENSE_REQUIRED;D1_D4", None, None),
        "r09": ("DENIED", None, "REEXPORT", None, None),
        "r10": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 20),
        # r02 (10, DENIED) does not count: 10 of 20 -> 1,000 > 1,000? no.
        "r11": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 10, 20),
        "r12": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, None),
    },
})

# --------------------------------------------------------------------------------------------
# Headquarters and ultimate parent.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "hq-and-ultimate-parent",
    "about": "HQ in G means consignee_hq_country or ultimate_parent_hq_country in G (HK counts as CN). "
             "A CN/MO-headquartered consignee outside China is D5_HQ; a US destination is exempt from "
             "the HQ tests; to China, a CN/MO HQ stays case-by-case while a D:5 HQ outside China "
             "(RU) is D5_HQ; the HQ denial concerns controlled chips only.",
    "note": "q12: the China branch's 'HQ in D:5/Macau outside China and Macau' is read per HQ field, "
            "so a CN consignee HQ with a RU ultimate parent is D5_HQ.",
    "rows": [
        _r("q01", "2026-03-02", "SG", "NVIDIA-H100-SXM", consignee_hq_country="CN"),
        _r("q02", "2026-03-02", "SG", "NVIDIA-H100-SXM", ultimate_parent_hq_country="CN"),
        _r("q03", "2026-03-02", "SG", "NVIDIA-H100-SXM", consignee_hq_country="HK"),
        _r("q04", "2026-03-02", "SG", "NVIDIA-H100-SXM", consignee_hq_country="MO"),
        _r("q05", "2026-03-02", "US", "NVIDIA-H100-SXM", consignee_hq_country="CN"),
        _r("q06", "2026-03-02", "US", "NVIDIA-H100-SXM", ultimate_parent_hq_country="CN"),
        _r("q07", "2026-03-02", "US", "NVIDIA-H20", consignee_hq_country="CN"),
        _r("q08", "2026-03-02", "CN", "NVIDIA-H200", consignee_hq_country="CN"),
        _r("q09", "2026-03-02", "CN", "NVIDIA-H200", consignee_hq_country="RU"),
        _r("q10", "2026-03-02", "CN", "NVIDIA-H200", ultimate_parent_hq_country="RU"),
        _r("q11", "2026-03-02", "CN", "NVIDIA-H200", consignee_hq_country="MO"),
        _r("q12", "2026-03-02", "CN", "NVIDIA-H200", consignee_hq_country="CN", ultimate_parent_hq_country="RU"),
        _r("q13", "2026-03-02", "CN", "NVIDIA-H20", consignee_hq_country="RU"),
        _r("q14", "2026-03-02", "SG", "NVIDIA-H20", consignee_hq_country="CN"),
        _r("q15", "2026-03-02", "FR", "NVIDIA-H20", ultimate_parent_hq_country="RU"),
        _r("q16", "2026-03-02", "AE", "NVIDIA-H100-SXM", consignee_hq_country="CN", license_id="L-16"),
        _r("q17", "2026-03-02", "SG", "NVIDIA-H100-SXM", consignee_hq_country="US", ultimate_parent_hq_country="FR"),
        _r("q18", "2026-03-02", "HK", "NVIDIA-H200", ultimate_parent_hq_country="HK"),
        _r("q19", "2026-03-02", "MO", "NVIDIA-H200", consignee_hq_country="RU"),
        _r("q20", "2026-03-02", "SG", "NVIDIA-L4", ultimate_parent_hq_country="CN"),
    ],
    "expected": {
        "q01": ("DENIED", None, "D5_HQ", None, None),
        "q02": ("DENIED", None, "D5_HQ", None, None),
        "q03": ("DENIED", None, "D5_HQ", None, None),
        "q04": ("DENIED", None, "D5_HQ", None, None),
        "q05": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 10),
        "q06": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 20),
        "q07": ("NLR", "NLR", "NOT_CONTROLLED", None, 10),
        "q08": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "q09": ("DENIED", None, "D5_HQ", None, None),
        "q10": ("DENIED", None, "D5_HQ", None, None),
        "q11": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "q12": ("DENIED", None, "D5_HQ", None, None),
        "q13": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE;IS_INFORMED", None, None),
        "q14": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "q15": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "q16": ("DENIED", None, "D5_HQ", None, None),
        "q17": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, None),
        "q18": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        "q19": ("DENIED", None, "D5_HQ", None, None),
        "q20": ("DENIED", None, "D5_HQ", None, None),
    },
})

# --------------------------------------------------------------------------------------------
# VEU.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "veu",
    "about": "A VEU authorizes any license path (D1_D4, IS_INFORMED, CN_CASE_BY_CASE) and wins over a "
             "license_id; a VEU line is not a licensed line, so it never enters the China volume.",
    "note": "v03: with both veu_id and license_id the line is VEU (as on the D1_D4 path) and is not "
            "counted as a licensed case-by-case line.",
    "rows": [
        _r("v01", "2026-03-02", "VN", "NVIDIA-H100-SXM", veu_id="VEU-1"),
        _r("v02", "2026-03-02", "CN", "NVIDIA-H200", veu_id="VEU-2", exporter="EXV"),
        _r("v03", "2026-03-02", "CN", "NVIDIA-H200", veu_id="VEU-2", license_id="L-3", exporter="EXV"),
        _r("v04", "2025-06-01", "CN", "NVIDIA-H20", veu_id="VEU-4"),
        _r("v05", "2026-01-14", "CN", "NVIDIA-H200", veu_id="VEU-5"),
        _r("v06", "2026-03-02", "CN", "NVIDIA-H20", veu_id="VEU-6"),
        _r("v07", "2026-03-02", "SG", "NVIDIA-H100-SXM", veu_id="VEU-7", consignee_hq_country="CN"),
        _r("v08", "2026-03-02", "FR", "NVIDIA-H100-SXM", veu_id="VEU-8"),
    ],
    "expected": {
        "v01": ("AUTHORIZED", "VEU", "D1_D4;VEU", None, None),
        "v02": ("AUTHORIZED", "VEU", "CN_CASE_BY_CASE;VEU", None, None),
        "v03": ("AUTHORIZED", "VEU", "CN_CASE_BY_CASE;VEU", None, None),
        "v04": ("AUTHORIZED", "VEU", "IS_INFORMED;VEU", None, None),
        "v05": ("DENIED", None, "D5", None, None),
        "v06": ("AUTHORIZED", "VEU", "CN_CASE_BY_CASE;IS_INFORMED;VEU", None, None),
        "v07": ("DENIED", None, "D5_HQ", None, None),
        "v08": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, None),
    },
})

# --------------------------------------------------------------------------------------------
# China volume condition.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "china-volume-ratio",
    "about": "Per (exporter, SKU), in units, a licensed case-by-case line is over when 100 x cn > "
             "50 x us (cn includes the line, us the non-DENIED US rows before it, on any date). "
             "Over lines (CAP_EXCEEDED) and REVIEW lines still count; DENIED lines (party, "
             "re-export) and unlicensed lines do not; DENIED US rows do not; a US row counts only "
             "for rows after it in screening order (ship_date, then shipment_id); exporters and "
             "SKUs are kept apart; no exporter and an empty exporter are one exporter.",
    "parties": {"BADCO": {"outcome": "block", "list": "EL", "listed_on": None},
                "WATCH": {"outcome": "review", "list": "UVL", "listed_on": None}},
    "rows": [
        _r("u01", "2025-12-01", "US", "NVIDIA-H200", qty=100, exporter="EXA"),
        _r("c01", "2026-01-15", "CN", "NVIDIA-H200", qty=50, exporter="EXA", license_id="L"),
        _r("c02", "2026-01-16", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L"),
        _r("u02", "2026-01-17", "US", "NVIDIA-H200", qty=4, exporter="EXA"),
        _r("c03", "2026-01-18", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L"),
        _r("c04", "2026-01-18", "CN", "NVIDIA-H200", qty=10, exporter="EXA"),
        _r("c05", "2026-01-19", "CN", "NVIDIA-H200", qty=10, exporter="EXB", license_id="L"),
        _r("u03", "2026-01-20", "US", "NVIDIA-H200", qty=40, exporter="EXB"),
        _r("c06", "2026-01-21", "CN", "NVIDIA-H200", qty=10, exporter="EXB", license_id="L"),
        _r("c07", "2026-01-21", "CN", "NVIDIA-H100-SXM", qty=1, exporter="EXA", license_id="L"),
        _r("u04", "2026-01-22", "US", "NVIDIA-H200", qty=1000, exporter="EXA", consignee_name="BADCO"),
        _r("c08", "2026-01-23", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L"),
        _r("u05", "2026-01-24", "US", "NVIDIA-H200", qty=2, exporter="EXA", consignee_name="WATCH"),
        _r("c09", "2026-01-25", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L", consignee_name="WATCH"),
        _r("u06", "2026-01-26", "US", "NVIDIA-H200", qty=12, exporter="EXA"),
        _r("c10", "2026-01-27", "CN", "NVIDIA-H200", qty=4, exporter="EXA", license_id="L"),
        _r("c11", "2026-01-28", "CN", "NVIDIA-H200", qty=1000, exporter="EXA", license_id="L", consignee_name="BADCO"),
        _r("c12", "2026-01-29", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L"),
        _r("u08", "2026-01-30", "US", "NVIDIA-H200", qty=2, exporter="EXA"),
        _r("c13", "2026-01-30", "CN", "NVIDIA-H200", qty=1000, exporter="EXA", license_id="L", export_country="SG"),
        _r("c14", "2026-01-31", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L"),
        _r("c15", "2026-02-05", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L"),
        _r("u09", "2026-02-05", "US", "NVIDIA-H200", qty=10, exporter="EXA"),
        _r("c16", "2026-02-06", "CN", "NVIDIA-H200", qty=4, exporter="EXA", license_id="L"),
        _r("e01", "2026-01-15", "US", "NVIDIA-H200", qty=10),
        _r("e02", "2026-01-16", "US", "NVIDIA-H200", qty=10, exporter=""),
        _r("e03", "2026-01-17", "CN", "NVIDIA-H200", qty=10, license_id="L"),
        _r("e04", "2026-01-18", "CN", "NVIDIA-H200", qty=1, exporter="", license_id="L"),
        _r("e05", "2026-01-19", "MO", "NVIDIA-H200", qty=1, exporter="", license_id="L"),
        _r("e06", "2026-01-20", "US", "NVIDIA-H200", qty=4, exporter="", consignee_hq_country="CN"),
        _r("e07", "2026-01-21", "HK", "NVIDIA-H200", qty=1, license_id="L"),
    ],
    "expected": {
        "u01": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 100),
        # 100 x 50 = 5,000 > 50 x 100 = 5,000? no.
        "c01": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 50, 100),
        # 5,100 > 5,000: over.
        "c02": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 51, 100),
        "u02": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 104),
        # 5,200 > 5,200? no: back under.
        "c03": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 52, 104),
        "c04": (LR, None, "LICENSE_REQUIRED;CN_CASE_BY_CASE", None, None),
        # EXB has no US rows yet: 1,000 > 0.
        "c05": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 10, 0),
        "u03": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 40),
        # c05 counts: 2,000 > 2,000? no.
        "c06": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 20, 40),
        # EXA shipped no H100 to the US.
        "c07": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 1, 0),
        "u04": ("DENIED", None, "PARTY:EL", None, None),
        # u04 does not count: 5,300 > 5,200.
        "c08": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 53, 104),
        "u05": ("REVIEW", None, "PARTY_REVIEW:UVL;NO_LICENSE_REQUIREMENT", None, 106),
        # 5,400 > 5,300: over, and REVIEW comes first.
        "c09": ("REVIEW", None, "PARTY_REVIEW:UVL;CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 54, 106),
        "u06": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 118),
        # 5,800 > 5,900? no.
        "c10": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 58, 118),
        "c11": ("DENIED", None, "PARTY:EL", None, None),
        # c11 does not count: 5,900 > 5,900? no.
        "c12": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 59, 118),
        "u08": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 120),
        "c13": ("DENIED", None, "REEXPORT", None, None),
        # c13 does not count: 6,000 > 6,000? no.
        "c14": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 60, 120),
        # u09 has the same date and a later shipment_id: not yet counted. 6,100 > 6,000.
        "c15": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 61, 120),
        "u09": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 130),
        # 6,500 > 6,500? no.
        "c16": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 65, 130),
        "e01": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 10),
        "e02": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 20),
        # 1,000 > 1,000? no.
        "e03": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 10, 20),
        "e04": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 11, 20),
        # Macau lines count with China's: 1,200 > 1,000.
        "e05": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 12, 20),
        # A US destination with a CN HQ is not DENIED, so it counts.
        "e06": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 24),
        # 1,300 > 1,200.
        "e07": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 13, 24),
    },
})

CASES.append({
    "name": "china-volume-in-tpp",
    "about": "What-if unit = tpp: the same per-(exporter, SKU) totals in TPP (quantity x unit TPP).",
    "policy": {"components.china-volume.unit": "tpp"},
    "rows": [
        _r("p1", "2026-01-10", "US", "NVIDIA-H200", qty=100, exporter="EXT"),
        _r("p2", "2026-01-15", "CN", "NVIDIA-H200", qty=50, exporter="EXT", license_id="L"),
        _r("p3", "2026-01-16", "CN", "NVIDIA-H200", qty=1, exporter="EXT", license_id="L"),
        _r("p4", "2026-01-17", "US", "NVIDIA-H20", qty=1000, exporter="EXT"),
        _r("p5", "2026-01-18", "CN", "NVIDIA-H20", qty=500, exporter="EXT", license_id="L"),
        _r("p6", "2026-01-19", "CN", "NVIDIA-H20", qty=1, exporter="EXT", license_id="L"),
    ],
    "expected": {
        "p1": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 100 * H),
        # 100 x 791,600 = 79,160,000 > 50 x 1,583,200 = 79,160,000? no.
        "p2": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 50 * H, 100 * H),
        "p3": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 51 * H, 100 * H),
        "p4": ("NLR", "NLR", "NOT_CONTROLLED", None, 2_368_000),
        # 1,184,000 of 2,368,000: exactly 50%.
        "p5": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;IS_INFORMED;LICENSE", 1_184_000, 2_368_000),
        "p6": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;IS_INFORMED;LICENSE", 1_186_368, 2_368_000),
    },
})

CASES.append({
    "name": "china-volume-share-what-if",
    "about": "What-if max_share_percent = 100: China may equal, not exceed, the US volume.",
    "policy": {"components.china-volume.max_share_percent": 100},
    "rows": [
        _r("w1", "2026-01-10", "US", "NVIDIA-H200", qty=7, exporter="EXW"),
        _r("w2", "2026-01-15", "CN", "NVIDIA-H200", qty=7, exporter="EXW", license_id="L"),
        _r("w3", "2026-01-16", "CN", "NVIDIA-H200", qty=1, exporter="EXW", license_id="L"),
    ],
    "expected": {
        "w1": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 7),
        "w2": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 7, 7),
        "w3": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 8, 7),
    },
})

CASES.append({
    "name": "china-volume-start-what-if",
    "about": "What-if china-volume from 2026-03-01: licensed case-by-case lines before it are "
             "AUTHORIZED without entering the volume; from that day they count (US rows on any date).",
    "policy": {"components.china-volume.effective_from": "2026-03-01"},
    "rows": [
        _r("x1", "2026-01-10", "US", "NVIDIA-H200", qty=2, exporter="EXX"),
        _r("x2", "2026-02-28", "CN", "NVIDIA-H200", qty=100, exporter="EXX", license_id="L"),
        _r("x3", "2026-03-01", "CN", "NVIDIA-H200", qty=1, exporter="EXX", license_id="L"),
        _r("x4", "2026-03-02", "CN", "NVIDIA-H200", qty=1, exporter="EXX", license_id="L"),
    ],
    "expected": {
        "x1": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, 2),
        "x2": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", None, None),
        "x3": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 1, 2),
        "x4": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 2, 2),
    },
})

# --------------------------------------------------------------------------------------------
# Listing dates.
# --------------------------------------------------------------------------------------------
_LISTED = {"BADCO": {"outcome": "block", "list": "EL", "listed_on": "2025-06-01"},
           "WATCH": {"outcome": "review", "list": "UVL", "listed_on": "2025-06-01"},
           "OLDCO": {"outcome": "block", "list": "EL", "listed_on": None}}
CASES.append({
    "name": "listing-dates",
    "about": "A party hit counts only from the entry's listing date (on the day: yes; the day before: "
             "PARTY_BEFORE_LISTING:<list>, decided as without the hit, entering the totals); an "
             "entry without a date counts always.",
    "parties": _LISTED,
    "rows": [
        _r("l01", "2025-05-31", "FR", "NVIDIA-H100-SXM", consignee_name="BADCO"),
        _r("l02", "2025-06-01", "FR", "NVIDIA-H100-SXM", consignee_name="BADCO"),
        _r("l03", "2025-05-31", "FR", "NVIDIA-H100-SXM", consignee_name="WATCH"),
        _r("l04", "2025-06-01", "FR", "NVIDIA-H100-SXM", consignee_name="WATCH"),
        _r("l05", "2020-01-01", "FR", "NVIDIA-H100-SXM", consignee_name="OLDCO"),
        _r("l06", "2025-05-31", "RU", "NVIDIA-H100-SXM", consignee_name="BADCO"),
        _r("l07", "2025-05-31", "VN", "NVIDIA-H100-SXM", consignee_name="BADCO", license_id="L-7"),
        _r("l08", "2023-11-16", "FR", "NVIDIA-H100-SXM", consignee_name="BADCO"),
        _r("l09", "2025-05-31", "US", "NVIDIA-H100-SXM", consignee_name="BADCO", exporter="EXL"),
        _r("l10", "2025-06-01", "US", "NVIDIA-H100-SXM", consignee_name="BADCO", exporter="EXL"),
        _r("l11", "2026-02-01", "CN", "NVIDIA-H100-SXM", qty=5, exporter="EXL", license_id="L-11"),
        _r("l12", "2026-02-01", "CN", "NVIDIA-H100-SXM", qty=5, consignee_name="OLDCO", exporter="EXL",
           license_id="L-12"),
    ],
    "expected": {
        "l01": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT;PARTY_BEFORE_LISTING:EL", None, None),
        "l02": ("DENIED", None, "PARTY:EL", None, None),
        "l03": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT;PARTY_BEFORE_LISTING:UVL", None, None),
        "l04": ("REVIEW", None, "PARTY_REVIEW:UVL;NO_LICENSE_REQUIREMENT", None, None),
        "l05": ("DENIED", None, "PARTY:EL;BEFORE_TIMELINE", None, None),
        "l06": ("DENIED", None, "D5;PARTY_BEFORE_LISTING:EL", None, None),
        "l07": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE;PARTY_BEFORE_LISTING:EL", None, None),
        "l08": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT;PARTY_BEFORE_LISTING:EL;BEFORE_TIMELINE", None, None),
        "l09": ("NLR", "NLR", "NO_LICENSE_REQUIREMENT;PARTY_BEFORE_LISTING:EL", None, 10),
        "l10": ("DENIED", None, "PARTY:EL", None, None),
        # l09 counts (10), l10 does not: 500 > 500? no.
        "l11": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 5, 10),
        "l12": ("DENIED", None, "PARTY:EL", None, None),
    },
})
CASES.append({
    "name": "listing-dates-off",
    "about": "What-if parties.listing_dates = false: every hit counts whatever the date.",
    "policy": {"parties.listing_dates": False},
    "parties": _LISTED,
    "rows": [
        _r("l01", "2025-05-31", "FR", "NVIDIA-H100-SXM", consignee_name="BADCO"),
        _r("l03", "2025-05-31", "FR", "NVIDIA-H100-SXM", consignee_name="WATCH"),
        _r("l09", "2025-05-31", "US", "NVIDIA-H100-SXM", consignee_name="BADCO", exporter="EXL"),
    ],
    "expected": {
        "l01": ("DENIED", None, "PARTY:EL", None, None),
        "l03": ("REVIEW", None, "PARTY_REVIEW:UVL;NO_LICENSE_REQUIREMENT", None, None),
        "l09": ("DENIED", None, "PARTY:EL", None, None),
    },
})

# --------------------------------------------------------------------------------------------
# Bilateral agreements (as under post-rescission-2025).
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "agreements",
    "about": "Licensed lines to AE/SA from 2025-11-19 to 2027-12-31 draw on the agreement's TPP cap "
             "(AE cut to 40,000,000 TPP for the test); an is-informed licensed line draws too; "
             "unlicensed, VEU and DENIED lines, and lines outside the window, do not.",
    "policy": {"agreements.0.cap_tpp": 40_000_000},
    "rows": [
        _r("a01", "2025-11-18", "AE", "NVIDIA-H100-SXM", qty=1000, license_id="L-1"),
        _r("a02", "2025-11-19", "AE", "NVIDIA-H100-SXM", qty=1000, license_id="L-2"),
        _r("a03", "2025-11-20", "AE", "NVIDIA-H100-SXM", qty=1000, license_id="L-3"),
        _r("a04", "2025-11-21", "AE", "NVIDIA-H100-SXM", qty=1000),
        _r("a05", "2025-11-22", "AE", "NVIDIA-H20", qty=1000, license_id="L-5", consignee_hq_country="CN"),
        _r("a06", "2025-11-23", "AE", "NVIDIA-H100-SXM", qty=1000, license_id="L-6"),
        _r("a07", "2025-11-24", "AE", "NVIDIA-H100-SXM", qty=1000, veu_id="VEU-7"),
        _r("a08", "2025-11-25", "SA", "NVIDIA-H100-SXM", qty=1000, license_id="L-8"),
        _r("a09", "2028-01-01", "AE", "NVIDIA-H100-SXM", qty=1000, license_id="L-9"),
        _r("a10", "2025-11-26", "AE", "NVIDIA-H20", qty=1000, license_id="L-10"),
        _r("a11", "2025-11-27", "AE", "NVIDIA-H100-SXM", qty=1000, license_id="L-11", consignee_hq_country="CN"),
        _r("a12", "2027-12-31", "AE", "NVIDIA-H100-SXM", qty=1, license_id="L-12"),
    ],
    "expected": {
        "a01": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "a02": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "a03": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "a04": (LR, None, "LICENSE_REQUIRED;D1_D4", None, None),
        "a05": ("AUTHORIZED", "LICENSE", "IS_INFORMED;LICENSE", None, None),
        "a06": ("CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;D1_D4;LICENSE", None, None),
        "a07": ("AUTHORIZED", "VEU", "D1_D4;VEU", None, None),
        "a08": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "a09": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "a10": ("NLR", "NLR", "NOT_CONTROLLED", None, None),
        "a11": ("DENIED", None, "D5_HQ", None, None),
        # 49,864,000 + 15,832 > 40,000,000.
        "a12": ("CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;D1_D4;LICENSE", None, None),
    },
    "expected_country_cum_tpp": {
        "a01": None, "a02": 15_832_000, "a03": 31_664_000, "a04": None,
        "a05": 34_032_000, "a06": 49_864_000, "a07": None, "a08": 15_832_000, "a09": None,
        "a10": None, "a11": None, "a12": 49_879_832,
    },
})

# --------------------------------------------------------------------------------------------
# An informed chip that is not controlled, outside the band (what-if).
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "informed-uncontrolled-outside-band",
    "about": "What-if H20 DRAM 7,000 GB/s: outside the band, but CN_ABOVE_THRESHOLD is for controlled "
             "chips; not case-by-case either (band), so the is-informed license path applies and "
             "the licensed line is not a China volume line.",
    "note": "Follows the README wording (controlled chips only are DENIED outside the band).",
    "policy": {"catalog.memory_bandwidth_gbs.NVIDIA-H20": 7000},
    "rows": [
        _r("o1", "2026-03-02", "CN", "NVIDIA-H20"),
        _r("o2", "2026-03-02", "CN", "NVIDIA-H20", license_id="L-2"),
    ],
    "expected": {
        "o1": (LR, None, "LICENSE_REQUIRED;IS_INFORMED", None, None),
        "o2": ("AUTHORIZED", "LICENSE", "IS_INFORMED;LICENSE", None, None),
    },
})
