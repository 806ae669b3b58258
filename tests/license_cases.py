"""Hand-worked scenarios for the license register and license depletion, as data (issue 18).

Every expected value was worked out by hand from the text only: the README section "How screening
works" (the paragraph "License register", the rule-set paragraphs it refers to and the reason-code
order after it), issue 18 and the rule-set files in ``data/policies/``. Nothing here was produced by
running an implementation, and nothing here refers to one: the same cases can be run against the
engine and against the SQL oracle (``tests/test_licenses_oracle.py`` does the latter).

Format
------
``CASES`` is a list of dicts:

``name``
    a short identifier.
``about``
    what the case checks; ``note`` (optional) names a point where the README leaves a choice and
    which reading the expectation follows.
``policy_id``
    the rule set: ``post-rescission-2025``, ``in-force`` or ``ai-diffusion-2025``.
``policy`` (optional)
    what-if overrides of the rule set, dotted key -> value (as ``--set``).
``rows``
    ledger rows (dicts), as in ``tests/in_force_cases.py``: ``shipment_id``, ``ship_date`` (ISO
    text), ``destination_country``, ``sku``, ``quantity``, and optionally ``exporter``,
    ``export_country``, ``consignee_id``, ``consignee_name``, ``consignee_hq_country``,
    ``ultimate_parent_hq_country``, ``license_id``, ``veu_id``. Absent fields are null.
    ``ledger_row`` fills ``status = "shipped"`` and a ``consignee_name`` of ``"Consignee
    <shipment_id>"`` where none is given.
``register``
    the license register as it would be read from a CSV: a list of dicts, one per license, every
    value text (``""`` for an empty cell), with every column of ``REGISTER_COLUMNS``; ``None``: no
    register is given (any ``license_id`` authorizes, as before).
``parties`` (optional)
    consignee name -> ``{"outcome": "block" | "review", "list": <list code>}``: the
    restricted-party result for that name (exact hit, no listing date). Every other name has no
    hit. The normalized name of every consignee name (ledger and register) is the party
    normalizer's; the cases rely only on the equalities listed in ``NAME_FACTS``.
``expected``
    shipment_id -> ``(decision, authorization, reasons, license_cum_units, license_cum_tpp)`` for
    every row of the case.
``expected_country_cum_tpp``, ``expected_lpp_cum_tpp`` (optional)
    shipment_id -> that column, for every row of the case.
``expected_volume`` (optional, ``in-force``)
    shipment_id -> ``(cn_volume_cum, us_volume_cum)``, for every row of the case.

``CATALOG`` lists the catalog facts the expectations rely on (unit TPP and class from
``data/chips.csv``); a runner should check it first. Figures: H100/H200 15,832 TPP per unit,
A100 4,992, H20 2,368 (not 3A090), B200 36,000, Ascend 910B 5,120 (GP10). "LR" below is
LICENSE_REQUIRED.

Readings of the text the expectations follow (the README is silent on these; each case that
depends on one says so in its ``note``):

R1. A license that does not cover a line (unknown, not yet valid, expired, out of scope) leaves it
    exactly where the rules put a line without a license: under ``ai-diffusion-2025`` an LPP
    candidate, elsewhere ``LICENSE_REQUIRED``; it draws on no accumulator of licensed lines
    (bilateral agreements, the China volume condition).
R2. An exhausted line stays a licensed line: it keeps ``LICENSE`` and still counts in the other
    accumulators of licensed lines (the agreement, the tiered country allocation, the China
    volume), as an over-cap line does.
R3. Only lines on the license path are checked: DENIED, VEU and NLR lines get no license code,
    whatever their ``license_id``.
R4. ``license_id`` is matched after trimming both sides, case-sensitively ("unique after
    trimming"); the exporter trimmed and case-insensitively; an exporter named by the license does
    not cover a line without one (null or empty).
R5. The validity window is tested on the row's ``ship_date`` (under ``in-force`` also for rows
    dated before the timeline, decided on ``timeline_start``).
"""
from __future__ import annotations

# sku -> facts the expected values depend on.
CATALOG = {
    "NVIDIA-H100-SXM": {"unit_tpp": 15832, "eccn": "3A090.a"},
    "NVIDIA-H200": {"unit_tpp": 15832, "eccn": "3A090.a"},
    "NVIDIA-A100": {"unit_tpp": 4992, "eccn": "3A090.a"},
    "NVIDIA-GB300": {"unit_tpp": 60000, "eccn": "3A090.a"},
    "NVIDIA-H20": {"unit_tpp": 2368, "eccn": "none"},
    "NVIDIA-B200": {"unit_tpp": 36000, "eccn": "3A090.a"},
    "HUAWEI-ASCEND-910B": {"unit_tpp": 5120, "eccn": "3A090.a"},
}

# The normalized-name facts the cases rely on (party normalizer: Unicode folding, punctuation,
# trailing legal forms): pairs whose normalized texts are equal, and pairs whose texts differ.
NAME_FACTS = {
    "equal": [
        ("Acme Compute Co., Ltd.", "ACME COMPUTE CO LTD"),
        ("Acme Compute Co., Ltd.", "acme compute limited"),
        ("Acme Compute Co., Ltd.", "Acme Compute GmbH"),
        ("Gulf AI LLC", "Gulf AI"),
        ("Angkor Compute Co., Ltd.", "ANGKOR COMPUTE CO LTD"),
        ("Angkor Compute Co., Ltd.", "Angkor Compute Limited"),
    ],
    "different": [
        ("Acme Compute Co., Ltd.", "Acme Computing Co Ltd"),
        ("Acme Compute Co., Ltd.", "Other Trading"),
        ("Gulf AI LLC", "GULF A.I. L.L.C."),
        ("Gulf AI LLC", "Acme Compute Co., Ltd."),
        ("Angkor Compute Co., Ltd.", "Other Co"),
    ],
}

REGISTER_COLUMNS = ("license_id", "valid_from", "valid_until", "destination_country", "consignee_id",
                    "consignee_name", "exporter", "skus", "max_units", "max_tpp", "conditions", "source")

H = 15_832          # TPP of one H100/H200
A = 4_992           # TPP of one A100
LR = "LICENSE_REQUIRED"
OK = ("AUTHORIZED", "LICENSE")


def ledger_row(row: dict) -> dict:
    """The row with the defaults the cases assume (status shipped, a neutral consignee name)."""
    out = dict(row)
    out.setdefault("status", "shipped")
    out.setdefault("consignee_name", f"Consignee {row['shipment_id']}")
    return out


def _r(sid, date, dest, sku="NVIDIA-H100-SXM", qty=1, **extra):
    return {"shipment_id": sid, "ship_date": date, "destination_country": dest, "sku": sku,
            "quantity": qty, **extra}


def _lic(license_id, valid_from, valid_until, destination, **extra):
    """A register row as read from a CSV: every column, text, "" where empty."""
    row = {c: "" for c in REGISTER_COLUMNS}
    row.update(license_id=license_id, valid_from=valid_from, valid_until=valid_until,
               destination_country=destination, source="test")
    row.update({k: str(v) for k, v in extra.items()})
    return row


def _ok(units, tpp):
    """A post-rescission D:1/D:4 line covered by its license, within its limits."""
    return ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", units, tpp)


def _over(units, tpp):
    """A post-rescission D:1/D:4 line covered by its license, past a limit."""
    return ("CAP_EXCEEDED", None, "LICENSE_EXHAUSTED;D1_D4;LICENSE", units, tpp)


def _not(code):
    """A post-rescission D:1/D:4 line whose license does not cover it."""
    return (LR, None, f"LICENSE_REQUIRED;{code};D1_D4", None, None)


NLR_ROW = ("NLR", "NLR", "NO_LICENSE_REQUIREMENT", None, None)
NC_ROW = ("NLR", "NLR", "NOT_CONTROLLED", None, None)
PR = "post-rescission-2025"
VN_2025 = ("2025-01-01", "2026-12-31", "VN")

CASES: list[dict] = []

# --------------------------------------------------------------------------------------------
# post-rescission-2025: unknown ids, no register.
# --------------------------------------------------------------------------------------------
_UNKNOWN_ROWS = [
    _r("u01", "2025-07-01", "VN", qty=10, license_id="L-1"),
    _r("u02", "2025-07-02", "VN", qty=10, license_id="L-2"),
    _r("u03", "2025-07-03", "VN", qty=5, license_id=" L-1 "),
    _r("u04", "2025-07-04", "VN", qty=5, license_id="l-1"),
    _r("u05", "2025-07-05", "VN", qty=5),
    _r("u06", "2025-07-06", "FR", qty=5, license_id="L-2"),
    _r("u07", "2025-07-07", "VN", "NVIDIA-H20", qty=5, license_id="L-2"),
    _r("u08", "2025-07-08", "VN", qty=5, license_id="L-2", veu_id="V-8"),
    _r("u09", "2025-07-09", "CN", qty=5, license_id="L-2"),
    _r("u10", "2025-07-10", "HK", qty=5, license_id="L-1"),
]
CASES.append({
    "name": "pr-unknown-id",
    "about": "A licensed D:1/D:4 line whose id is not in the register is LICENSE_REQUIRED with "
             "LICENSE_UNKNOWN; a line without license_id is unchanged; NLR, NOT_CONTROLLED, VEU and "
             "DENIED lines (FR, H20, a VEU, CN, HK = CN) are not checked at all.",
    "note": "u03/u04: the license_id is matched after trimming, case-sensitively (R4). R3.",
    "policy_id": PR,
    "register": [_lic("L-1", "2025-06-01", "2025-12-31", "VN")],
    "rows": _UNKNOWN_ROWS,
    "expected": {
        "u01": _ok(10, 10 * H),
        "u02": _not("LICENSE_UNKNOWN"),
        "u03": _ok(15, 15 * H),
        "u04": _not("LICENSE_UNKNOWN"),
        "u05": (LR, None, "LICENSE_REQUIRED;D1_D4", None, None),
        "u06": NLR_ROW,
        "u07": NC_ROW,
        "u08": ("AUTHORIZED", "VEU", "D1_D4;VEU", None, None),
        "u09": ("DENIED", None, "D5", None, None),
        "u10": ("DENIED", None, "D5", None, None),
    },
})
CASES.append({
    "name": "pr-without-register",
    "about": "Without a register any license_id authorizes, as before, and nothing draws.",
    "policy_id": PR,
    "register": None,
    "rows": _UNKNOWN_ROWS,
    "expected": {
        "u01": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "u02": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "u03": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "u04": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE", None, None),
        "u05": (LR, None, "LICENSE_REQUIRED;D1_D4", None, None),
        "u06": NLR_ROW,
        "u07": NC_ROW,
        "u08": ("AUTHORIZED", "VEU", "D1_D4;VEU", None, None),
        "u09": ("DENIED", None, "D5", None, None),
        "u10": ("DENIED", None, "D5", None, None),
    },
})
CASES.append({
    "name": "pr-empty-register",
    "about": "A register with no licenses: every licensed line is LICENSE_UNKNOWN.",
    "policy_id": PR,
    "register": [],
    "rows": [_r("e1", "2025-07-01", "VN", license_id="L-1"), _r("e2", "2025-07-02", "VN")],
    "expected": {"e1": _not("LICENSE_UNKNOWN"), "e2": (LR, None, "LICENSE_REQUIRED;D1_D4", None, None)},
})

# --------------------------------------------------------------------------------------------
# Validity window: the day before, the first day, the last day, the day after.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "pr-validity-window",
    "about": "valid_from and valid_until are inclusive: 2025-08-31 not yet valid, 2025-09-01 and "
             "2025-09-30 covered, 2025-10-01 expired; the dates are checked before the scope, so a "
             "line both outside the window and out of scope (KZ) gets the date code.",
    "policy_id": PR,
    "register": [_lic("L-W", "2025-09-01", "2025-09-30", "VN")],
    "rows": [
        _r("w1", "2025-08-31", "VN", qty=10, license_id="L-W"),
        _r("w2", "2025-09-01", "VN", qty=10, license_id="L-W"),
        _r("w3", "2025-09-30", "VN", qty=10, license_id="L-W"),
        _r("w4", "2025-10-01", "VN", qty=10, license_id="L-W"),
        _r("w5", "2025-08-31", "KZ", qty=10, license_id="L-W"),
        _r("w6", "2025-10-01", "KZ", qty=10, license_id="L-W"),
        _r("w7", "2025-09-15", "KZ", qty=10, license_id="L-W"),
    ],
    "expected": {
        "w1": _not("LICENSE_NOT_YET_VALID"),
        "w2": _ok(10, 10 * H),
        "w3": _ok(20, 20 * H),
        "w4": _not("LICENSE_EXPIRED"),
        "w5": _not("LICENSE_NOT_YET_VALID"),
        "w6": _not("LICENSE_EXPIRED"),
        "w7": _not("LICENSE_OUT_OF_SCOPE"),
    },
})

# --------------------------------------------------------------------------------------------
# Scope: destination, consignee (id, else normalized name), exporter, SKU.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "pr-destination",
    "about": "A line to another destination than the license's is out of scope and does not draw.",
    "policy_id": PR,
    "register": [_lic("L-D", *VN_2025)],
    "rows": [
        _r("d1", "2025-07-01", "VN", qty=10, license_id="L-D"),
        _r("d2", "2025-07-02", "KZ", qty=10, license_id="L-D"),
        _r("d3", "2025-07-03", "AE", qty=10, license_id="L-D"),
        _r("d4", "2025-07-04", "VN", qty=10, license_id="L-D"),
    ],
    "expected": {
        "d1": _ok(10, 10 * H),
        "d2": _not("LICENSE_OUT_OF_SCOPE"),
        "d3": _not("LICENSE_OUT_OF_SCOPE"),
        "d4": _ok(20, 20 * H),
    },
})
CASES.append({
    "name": "pr-consignee-id",
    "about": "By consignee_id where both the license and the line have one (the names are then not "
             "compared, either way); else by the normalized name where the license names one; a "
             "license with only an id does not cover a line without one; a license naming no "
             "consignee covers every consignee.",
    "policy_id": PR,
    "register": [
        _lic("L-C", *VN_2025, consignee_id="C-1"),
        _lic("L-CN", *VN_2025, consignee_id="C-9", consignee_name="Acme Compute Co., Ltd."),
        _lic("L-ANY", *VN_2025),
    ],
    "rows": [
        _r("c01", "2025-07-01", "VN", consignee_id="C-1", license_id="L-C"),
        _r("c02", "2025-07-02", "VN", consignee_id="C-2", license_id="L-C"),
        _r("c03", "2025-07-03", "VN", license_id="L-C"),
        _r("c04", "2025-07-04", "VN", consignee_id="C-1", license_id="L-C"),
        _r("c05", "2025-07-05", "VN", consignee_id="C-9", consignee_name="Other Trading", license_id="L-CN"),
        _r("c06", "2025-07-06", "VN", consignee_id="C-8", consignee_name="ACME COMPUTE CO LTD", license_id="L-CN"),
        _r("c07", "2025-07-07", "VN", consignee_name="ACME COMPUTE CO LTD", license_id="L-CN"),
        _r("c08", "2025-07-08", "VN", consignee_name="Acme Computing Co Ltd", license_id="L-CN"),
        _r("c09", "2025-07-09", "VN", license_id="L-ANY"),
        _r("c10", "2025-07-10", "VN", consignee_id="C-5", license_id="L-ANY"),
    ],
    "expected": {
        "c01": _ok(1, H),
        "c02": _not("LICENSE_OUT_OF_SCOPE"),
        "c03": _not("LICENSE_OUT_OF_SCOPE"),
        "c04": _ok(2, 2 * H),
        "c05": _ok(1, H),
        "c06": _not("LICENSE_OUT_OF_SCOPE"),
        "c07": _ok(2, 2 * H),
        "c08": _not("LICENSE_OUT_OF_SCOPE"),
        "c09": _ok(1, H),
        "c10": _ok(2, 2 * H),
    },
})
CASES.append({
    "name": "pr-consignee-name",
    "about": "A license naming a consignee (no id) covers the lines whose consignee name normalizes "
             "to the same text (case, punctuation, trailing legal forms), with or without a "
             "consignee_id on the line; a different name (Computing, dotted A.I. L.L.C.) does not.",
    "policy_id": PR,
    "register": [
        _lic("L-N", *VN_2025, consignee_name="Acme Compute Co., Ltd."),
        _lic("L-G", *VN_2025, consignee_name="Gulf AI LLC"),
    ],
    "rows": [
        _r("n1", "2025-07-01", "VN", consignee_name="ACME COMPUTE CO LTD", license_id="L-N"),
        _r("n2", "2025-07-02", "VN", consignee_id="C-5", consignee_name="acme compute limited", license_id="L-N"),
        _r("n3", "2025-07-03", "VN", consignee_name="Acme Compute GmbH", license_id="L-N"),
        _r("n4", "2025-07-04", "VN", consignee_name="Acme Computing Co Ltd", license_id="L-N"),
        _r("n5", "2025-07-05", "VN", consignee_name="Gulf AI", license_id="L-G"),
        _r("n6", "2025-07-06", "VN", consignee_name="GULF A.I. L.L.C.", license_id="L-G"),
        _r("n7", "2025-07-07", "VN", consignee_name="Acme Compute Co., Ltd.", license_id="L-G"),
    ],
    "expected": {
        "n1": _ok(1, H),
        "n2": _ok(2, 2 * H),
        "n3": _ok(3, 3 * H),
        "n4": _not("LICENSE_OUT_OF_SCOPE"),
        "n5": _ok(1, H),
        "n6": _not("LICENSE_OUT_OF_SCOPE"),
        "n7": _not("LICENSE_OUT_OF_SCOPE"),
    },
})
CASES.append({
    "name": "pr-exporter",
    "about": "The exporter is compared trimmed and case-insensitively (both sides); a license "
             "naming an exporter does not cover a line without one; an empty exporter in the "
             "register covers any exporter, or none.",
    "note": "e4/e5 follow R4.",
    "policy_id": PR,
    "register": [
        _lic("L-E", *VN_2025, exporter=" Nvidia Corp "),
        _lic("L-E0", *VN_2025),
    ],
    "rows": [
        _r("e1", "2025-07-01", "VN", exporter="NVIDIA CORP", license_id="L-E"),
        _r("e2", "2025-07-02", "VN", exporter="  nvidia corp ", license_id="L-E"),
        _r("e3", "2025-07-03", "VN", exporter="NVIDIA Corporation", license_id="L-E"),
        _r("e4", "2025-07-04", "VN", license_id="L-E"),
        _r("e5", "2025-07-05", "VN", exporter="", license_id="L-E"),
        _r("e6", "2025-07-06", "VN", license_id="L-E0"),
        _r("e7", "2025-07-07", "VN", exporter="Anyone", license_id="L-E0"),
    ],
    "expected": {
        "e1": _ok(1, H),
        "e2": _ok(2, 2 * H),
        "e3": _not("LICENSE_OUT_OF_SCOPE"),
        "e4": _not("LICENSE_OUT_OF_SCOPE"),
        "e5": _not("LICENSE_OUT_OF_SCOPE"),
        "e6": _ok(1, H),
        "e7": _ok(2, 2 * H),
    },
})
CASES.append({
    "name": "pr-skus",
    "about": "skus is a ';'-separated list (blanks around items ignored); a SKU not in it is out of "
             "scope; an uncontrolled SKU needs no license and is not checked.",
    "policy_id": PR,
    "register": [
        _lic("L-S", *VN_2025, skus="NVIDIA-H100-SXM; NVIDIA-H200"),
        _lic("L-S1", *VN_2025, skus="NVIDIA-A100"),
    ],
    "rows": [
        _r("s1", "2025-07-01", "VN", qty=2, license_id="L-S"),
        _r("s2", "2025-07-02", "VN", "NVIDIA-H200", license_id="L-S"),
        _r("s3", "2025-07-03", "VN", "NVIDIA-A100", license_id="L-S"),
        _r("s4", "2025-07-04", "VN", "NVIDIA-GB300", license_id="L-S"),
        _r("s5", "2025-07-05", "VN", "NVIDIA-A100", qty=3, license_id="L-S1"),
        _r("s6", "2025-07-06", "VN", license_id="L-S1"),
        _r("s7", "2025-07-07", "VN", "NVIDIA-H20", license_id="L-S1"),
    ],
    "expected": {
        "s1": _ok(2, 2 * H),
        "s2": _ok(3, 3 * H),
        "s3": _not("LICENSE_OUT_OF_SCOPE"),
        "s4": _not("LICENSE_OUT_OF_SCOPE"),
        "s5": _ok(3, 3 * A),
        "s6": _not("LICENSE_OUT_OF_SCOPE"),
        "s7": NC_ROW,
    },
})

# --------------------------------------------------------------------------------------------
# Depletion: the last unit that fits, the first that does not, every later line over.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "pr-max-units",
    "about": "max_units 100, no TPP limit: 60 + 40 = 100 fits, the 101st unit is over and every "
             "later covered line stays over; an out-of-scope line of the exhausted license does "
             "not draw (LICENSE_REQUIRED, not LICENSE_EXHAUSTED).",
    "policy_id": PR,
    "register": [_lic("L-U", *VN_2025, max_units="100")],
    "rows": [
        _r("m1", "2025-07-01", "VN", qty=60, license_id="L-U"),
        _r("m2", "2025-07-02", "VN", qty=40, license_id="L-U"),
        _r("m3", "2025-07-03", "VN", qty=1, license_id="L-U"),
        _r("m4", "2025-07-04", "VN", qty=1, license_id="L-U"),
        _r("m5", "2025-07-05", "KZ", qty=1, license_id="L-U"),
        _r("m6", "2025-07-06", "VN", "NVIDIA-A100", qty=1, license_id="L-U"),
    ],
    "expected": {
        "m1": _ok(60, 949_920),
        "m2": _ok(100, 1_583_200),
        "m3": _over(101, 1_599_032),
        "m4": _over(102, 1_614_864),
        "m5": _not("LICENSE_OUT_OF_SCOPE"),
        "m6": _over(103, 1_619_856),
    },
})
CASES.append({
    "name": "pr-max-tpp",
    "about": "max_tpp, no unit limit: 1,583,200 = 100 H100 fits exactly a limit of 1,583,200 and is "
             "over a limit of 1,583,199; every later line stays over.",
    "policy_id": PR,
    "register": [
        _lic("L-T", *VN_2025, max_tpp="1583200"),
        _lic("L-T1", *VN_2025, max_tpp="1583199"),
    ],
    "rows": [
        _r("t1", "2025-07-01", "VN", qty=99, license_id="L-T"),
        _r("t2", "2025-07-02", "VN", qty=1, license_id="L-T"),
        _r("t3", "2025-07-03", "VN", "NVIDIA-A100", qty=1, license_id="L-T"),
        _r("t4", "2025-07-04", "VN", qty=99, license_id="L-T1"),
        _r("t5", "2025-07-05", "VN", qty=1, license_id="L-T1"),
        _r("t6", "2025-07-06", "VN", "NVIDIA-A100", qty=1, license_id="L-T1"),
    ],
    "expected": {
        "t1": _ok(99, 1_567_368),
        "t2": _ok(100, 1_583_200),
        "t3": _over(101, 1_588_192),
        "t4": _ok(99, 1_567_368),
        "t5": _over(100, 1_583_200),
        "t6": _over(101, 1_588_192),
    },
})
CASES.append({
    "name": "pr-both-limits",
    "about": "Both limits given: the TPP limit trips while the units are within (L-B: 36 of 50 "
             "units, 504,912 > 500,000 TPP); the unit limit trips while the TPP is within (L-B2: 41 > "
             "40 units); a limit of 0 makes the first line over.",
    "policy_id": PR,
    "register": [
        _lic("L-B", *VN_2025, max_units="50", max_tpp="500000"),
        _lic("L-B2", *VN_2025, max_units="40", max_tpp="10000000"),
        _lic("L-Z", *VN_2025, max_units="0"),
    ],
    "rows": [
        _r("b1", "2025-07-01", "VN", qty=30, license_id="L-B"),
        _r("b2", "2025-07-02", "VN", "NVIDIA-A100", qty=5, license_id="L-B"),
        _r("b3", "2025-07-03", "VN", "NVIDIA-A100", qty=1, license_id="L-B"),
        _r("b4", "2025-07-04", "VN", "NVIDIA-A100", qty=40, license_id="L-B2"),
        _r("b5", "2025-07-05", "VN", "NVIDIA-A100", qty=1, license_id="L-B2"),
        _r("b6", "2025-07-06", "VN", "NVIDIA-A100", qty=1, license_id="L-Z"),
    ],
    "expected": {
        "b1": _ok(30, 474_960),
        "b2": _ok(35, 499_920),
        "b3": _over(36, 504_912),
        "b4": _ok(40, 199_680),
        "b5": _over(41, 204_672),
        "b6": _over(1, 4_992),
    },
})

# --------------------------------------------------------------------------------------------
# Who draws: DENIED lines never, REVIEW lines do; NLR and VEU lines never.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "pr-denied-and-review",
    "about": "A DENIED line (party, destination, GP10, HQ) never draws and carries no license code; a "
             "REVIEW line draws and may be the one that exhausts the license (REVIEW comes first, "
             "LICENSE_EXHAUSTED stays among its reasons); a REVIEW line whose license is unknown "
             "gets LICENSE_REQUIRED and LICENSE_UNKNOWN among its reasons.",
    "policy_id": PR,
    "parties": {"BADCO": {"outcome": "block", "list": "EL"}, "WATCH": {"outcome": "review", "list": "UVL"}},
    "register": [_lic("L-P", *VN_2025, max_units="20")],
    "rows": [
        _r("p01", "2025-07-01", "VN", qty=10, consignee_name="BADCO", license_id="L-P"),
        _r("p02", "2025-07-02", "VN", qty=10, consignee_name="WATCH", license_id="L-P"),
        _r("p03", "2025-07-03", "VN", qty=10, license_id="L-P"),
        _r("p04", "2025-07-04", "VN", qty=1, consignee_name="WATCH", license_id="L-P"),
        _r("p05", "2025-07-05", "CN", qty=1, license_id="L-P"),
        _r("p06", "2025-07-06", "VN", "HUAWEI-ASCEND-910B", qty=1, license_id="L-P"),
        _r("p07", "2025-07-07", "VN", qty=1, consignee_hq_country="CN", license_id="L-P"),
        _r("p08", "2025-07-08", "VN", qty=1, consignee_name="WATCH", license_id="L-X"),
        _r("p09", "2025-07-09", "VN", qty=1, consignee_name="BADCO", license_id="L-X"),
        _r("p10", "2025-07-10", "VN", qty=1, license_id="L-P"),
    ],
    "expected": {
        "p01": ("DENIED", None, "PARTY:EL", None, None),
        "p02": ("REVIEW", None, "PARTY_REVIEW:UVL;D1_D4;LICENSE", 10, 10 * H),
        "p03": _ok(20, 20 * H),
        "p04": ("REVIEW", None, "PARTY_REVIEW:UVL;LICENSE_EXHAUSTED;D1_D4;LICENSE", 21, 21 * H),
        "p05": ("DENIED", None, "D5", None, None),
        "p06": ("DENIED", None, "GP10", None, None),
        "p07": ("DENIED", None, "D5_HQ", None, None),
        "p08": ("REVIEW", None, "PARTY_REVIEW:UVL;LICENSE_REQUIRED;LICENSE_UNKNOWN;D1_D4", None, None),
        "p09": ("DENIED", None, "PARTY:EL", None, None),
        "p10": _over(22, 22 * H),
    },
})
CASES.append({
    "name": "pr-nlr-and-veu",
    "about": "Lines that need no license (FR in A:5, SG in A:6, the US, an uncontrolled H20) and VEU "
             "lines carry a license_id without drawing on it, before and after it is exhausted.",
    "note": "R3.",
    "policy_id": PR,
    "register": [_lic("L-V", *VN_2025, max_units="10")],
    "rows": [
        _r("v1", "2025-07-01", "FR", qty=10, license_id="L-V"),
        _r("v2", "2025-07-02", "SG", qty=10, license_id="L-V"),
        _r("v3", "2025-07-03", "VN", "NVIDIA-H20", qty=10, license_id="L-V"),
        _r("v4", "2025-07-04", "VN", qty=10, license_id="L-V", veu_id="V-4"),
        _r("v5", "2025-07-05", "VN", qty=10, license_id="L-V"),
        _r("v6", "2025-07-06", "VN", qty=1, license_id="L-V", veu_id="V-4"),
        _r("v7", "2025-07-07", "VN", qty=1, license_id="L-V"),
        _r("v8", "2025-07-08", "US", qty=1, license_id="L-V"),
    ],
    "expected": {
        "v1": NLR_ROW,
        "v2": NLR_ROW,
        "v3": NC_ROW,
        "v4": ("AUTHORIZED", "VEU", "D1_D4;VEU", None, None),
        "v5": _ok(10, 10 * H),
        "v6": ("AUTHORIZED", "VEU", "D1_D4;VEU", None, None),
        "v7": _over(11, 11 * H),
        "v8": NLR_ROW,
    },
})

# --------------------------------------------------------------------------------------------
# Two licenses interleaved; screening order on equal dates.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "pr-interleaved",
    "about": "Each license has its own running totals whatever the order of the lines between them; "
             "lines of one date are taken in shipment_id order (t-a before t-b, though listed after).",
    "policy_id": PR,
    "register": [
        _lic("L-A", *VN_2025, max_units="15"),
        _lic("L-B", *VN_2025, max_units="25"),
        _lic("L-T2", *VN_2025, max_units="5"),
    ],
    "rows": [
        _r("i01", "2025-08-01", "VN", qty=10, license_id="L-A"),
        _r("i02", "2025-08-01", "VN", qty=10, license_id="L-B"),
        _r("i03", "2025-08-02", "VN", qty=10, license_id="L-B"),
        _r("i04", "2025-08-02", "VN", qty=5, license_id="L-A"),
        _r("i05", "2025-08-03", "VN", qty=1, license_id="L-A"),
        _r("i06", "2025-08-03", "VN", qty=5, license_id="L-B"),
        _r("i07", "2025-08-04", "VN", qty=1, license_id="L-B"),
        _r("i08", "2025-08-04", "VN", qty=1, license_id="L-A"),
        _r("t-b", "2025-08-10", "VN", qty=5, license_id="L-T2"),
        _r("t-a", "2025-08-10", "VN", qty=1, license_id="L-T2"),
    ],
    "expected": {
        "i01": _ok(10, 10 * H),
        "i02": _ok(10, 10 * H),
        "i03": _ok(20, 20 * H),
        "i04": _ok(15, 15 * H),
        "i05": _over(16, 16 * H),
        "i06": _ok(25, 25 * H),
        "i07": _over(26, 26 * H),
        "i08": _over(17, 17 * H),
        "t-a": _ok(1, H),
        "t-b": _over(6, 6 * H),
    },
})

# --------------------------------------------------------------------------------------------
# Bilateral agreements with licenses.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "pr-agreement-with-licenses",
    "about": "AE agreement cut to 40,000,000 TPP: a covered line draws on its license and on the "
             "agreement; a line whose license is unknown or out of scope draws on neither; the "
             "exhausted a4 still counts in the agreement, so a5 (another license, within it) is over "
             "the agreement; a line before the agreement window draws on its license only.",
    "note": "R1 (a2, a6, a7), R2 (a4 counts in the agreement).",
    "policy_id": PR,
    "policy": {"agreements.0.cap_tpp": 40_000_000},
    "register": [
        _lic("L-AE", "2025-11-01", "2026-12-31", "AE", max_units="2010"),
        _lic("L-AE2", "2025-11-01", "2026-12-31", "AE"),
    ],
    "rows": [
        _r("a0", "2025-11-18", "AE", qty=10, license_id="L-AE"),
        _r("a1", "2025-11-20", "AE", qty=1000, license_id="L-AE"),
        _r("a2", "2025-11-21", "AE", qty=1000, license_id="L-X"),
        _r("a3", "2025-11-22", "AE", qty=1000, license_id="L-AE"),
        _r("a4", "2025-11-23", "AE", qty=1000, license_id="L-AE"),
        _r("a5", "2025-11-24", "AE", qty=1, license_id="L-AE2"),
        _r("a6", "2025-11-25", "SA", qty=10, license_id="L-AE"),
        _r("a7", "2025-11-26", "SA", qty=10, license_id="L-AE2"),
    ],
    "expected": {
        "a0": _ok(10, 158_320),
        "a1": _ok(1010, 15_990_320),
        "a2": _not("LICENSE_UNKNOWN"),
        "a3": _ok(2010, 31_822_320),
        "a4": ("CAP_EXCEEDED", None, "LICENSE_EXHAUSTED;ALLOCATION_EXCEEDED;D1_D4;LICENSE", 3010, 47_654_320),
        "a5": ("CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;D1_D4;LICENSE", 1, H),
        "a6": _not("LICENSE_OUT_OF_SCOPE"),
        "a7": _not("LICENSE_OUT_OF_SCOPE"),
    },
    "expected_country_cum_tpp": {
        "a0": None, "a1": 15_832_000, "a2": None, "a3": 31_664_000, "a4": 47_496_000, "a5": 47_511_832,
        "a6": None, "a7": None,
    },
})

# --------------------------------------------------------------------------------------------
# in-force: China case-by-case lines with a license and the volume condition.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "if-china-volume",
    "about": "Under in-force a case-by-case H200 line to China with a covered license draws on it and "
             "counts in the China volume of (EXA, H200); lines whose license is unknown or out of "
             "scope (HK as written is not CN, exporter EXB, the H20 not in skus) are LICENSE_REQUIRED "
             "and do not count in the volume (c06 is within 50% only because they do not); the "
             "license and the ratio trip separately or together; DENIED (D5 before 2026-01-15, above "
             "the band, re-export) and VEU lines do not draw.",
    "note": "c09/c10: an exhausted line still counts in the China volume (R2). c03: the destination "
            "is compared as written, not aliased.",
    "policy_id": "in-force",
    "register": [_lic("L-CN", "2026-01-01", "2026-12-31", "CN", exporter="EXA", skus="NVIDIA-H200",
                      max_units="60")],
    "rows": [
        _r("u1", "2026-01-10", "US", "NVIDIA-H200", qty=100, exporter="EXA"),
        _r("c13", "2026-01-14", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L-CN"),
        _r("c01", "2026-01-15", "CN", "NVIDIA-H200", qty=40, exporter="EXA", license_id="L-CN"),
        _r("c02", "2026-01-16", "CN", "NVIDIA-H200", qty=5, exporter="EXA", license_id="L-UNK"),
        _r("c03", "2026-01-17", "HK", "NVIDIA-H200", qty=5, exporter="EXA", license_id="L-CN"),
        _r("c04", "2026-01-18", "CN", "NVIDIA-H200", qty=1, exporter="EXB", license_id="L-CN"),
        _r("c05", "2026-01-19", "CN", "NVIDIA-H20", qty=1, exporter="EXA", license_id="L-CN"),
        _r("c06", "2026-01-20", "CN", "NVIDIA-H200", qty=10, exporter="EXA", license_id="L-CN"),
        _r("c07", "2026-01-21", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L-CN"),
        _r("u2", "2026-01-22", "US", "NVIDIA-H200", qty=20, exporter="EXA"),
        _r("c08", "2026-01-23", "CN", "NVIDIA-H200", qty=9, exporter="EXA", license_id="L-CN"),
        _r("c09", "2026-01-24", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L-CN"),
        _r("u3", "2026-01-25", "US", "NVIDIA-H200", qty=100, exporter="EXA"),
        _r("c10", "2026-01-26", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L-CN"),
        _r("c11", "2026-01-27", "CN", "NVIDIA-H200", qty=1, exporter="EXA", license_id="L-CN", veu_id="V-11"),
        _r("c12", "2026-01-28", "CN", "NVIDIA-B200", qty=1, exporter="EXA", license_id="L-CN"),
        _r("c14", "2026-01-29", "CN", "NVIDIA-H200", qty=1, exporter="EXA", export_country="SG",
           license_id="L-CN"),
    ],
    "expected": {
        "u1": NLR_ROW,
        "c13": ("DENIED", None, "D5", None, None),
        # 100 x 40 = 4,000 > 50 x 100 = 5,000? no.
        "c01": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 40, 40 * H),
        "c02": (LR, None, "LICENSE_REQUIRED;LICENSE_UNKNOWN;CN_CASE_BY_CASE", None, None),
        "c03": (LR, None, "LICENSE_REQUIRED;LICENSE_OUT_OF_SCOPE;CN_CASE_BY_CASE", None, None),
        "c04": (LR, None, "LICENSE_REQUIRED;LICENSE_OUT_OF_SCOPE;CN_CASE_BY_CASE", None, None),
        "c05": (LR, None, "LICENSE_REQUIRED;LICENSE_OUT_OF_SCOPE;CN_CASE_BY_CASE;IS_INFORMED", None, None),
        # 5,000 > 5,000? no (it would be 6,000 had c02 and c03 counted).
        "c06": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 50, 50 * H),
        # 5,100 > 5,000.
        "c07": ("CAP_EXCEEDED", None, "CN_US_RATIO;CN_CASE_BY_CASE;LICENSE", 51, 51 * H),
        "u2": NLR_ROW,
        # units 60 <= 60; 6,000 > 6,000? no.
        "c08": ("AUTHORIZED", "LICENSE", "CN_CASE_BY_CASE;LICENSE", 60, 60 * H),
        # units 61 > 60; 6,100 > 6,000.
        "c09": ("CAP_EXCEEDED", None, "CN_US_RATIO;LICENSE_EXHAUSTED;CN_CASE_BY_CASE;LICENSE", 61, 61 * H),
        "u3": NLR_ROW,
        # 6,200 > 11,000? no; units 62 > 60.
        "c10": ("CAP_EXCEEDED", None, "LICENSE_EXHAUSTED;CN_CASE_BY_CASE;LICENSE", 62, 62 * H),
        "c11": ("AUTHORIZED", "VEU", "CN_CASE_BY_CASE;VEU", None, None),
        "c12": ("DENIED", None, "CN_ABOVE_THRESHOLD", None, None),
        "c14": ("DENIED", None, "REEXPORT", None, None),
    },
    "expected_volume": {
        "u1": (None, 100), "c13": (None, None), "c01": (40, 100), "c02": (None, None), "c03": (None, None),
        "c04": (None, None), "c05": (None, None), "c06": (50, 100), "c07": (51, 100), "u2": (None, 120),
        "c08": (60, 120), "c09": (61, 120), "u3": (None, 220), "c10": (62, 220), "c11": (None, None),
        "c12": (None, None), "c14": (None, None),
    },
})
CASES.append({
    "name": "if-license-paths",
    "about": "Under in-force the D1_D4 and IS_INFORMED license paths are checked like the others: KH "
             "lines draw only from 2026-02-03 (D5 the day before), by consignee name; an informed "
             "H20 to RU draws on a license listing it; a row dated before the timeline is decided on "
             "2023-11-17 but its license window is tested on its own ship date.",
    "note": "o1-o3 follow R5.",
    "policy_id": "in-force",
    "register": [
        _lic("L-K", "2026-02-01", "2026-12-31", "KH", consignee_name="Angkor Compute Co., Ltd.", max_units="10"),
        _lic("L-R", "2025-01-01", "2026-12-31", "RU", skus="NVIDIA-H20"),
        _lic("L-OLD", "2023-11-01", "2023-11-16", "VN"),
    ],
    "rows": [
        _r("k1", "2026-02-02", "KH", consignee_name="ANGKOR COMPUTE CO LTD", license_id="L-K"),
        _r("k2", "2026-02-03", "KH", qty=10, consignee_name="ANGKOR COMPUTE CO LTD", license_id="L-K"),
        _r("k3", "2026-02-04", "KH", consignee_name="Angkor Compute Limited", license_id="L-K"),
        _r("k4", "2026-02-05", "KH", consignee_name="Other Co", license_id="L-K"),
        _r("r1", "2026-02-06", "RU", "NVIDIA-H20", qty=100, license_id="L-R"),
        _r("r2", "2026-02-07", "RU", license_id="L-R"),
        _r("o1", "2023-11-16", "VN", qty=10, license_id="L-OLD"),
        _r("o2", "2023-11-17", "VN", qty=10, license_id="L-OLD"),
        _r("o3", "2023-10-31", "VN", license_id="L-OLD"),
    ],
    "expected": {
        "k1": ("DENIED", None, "D5", None, None),
        "k2": _ok(10, 10 * H),
        "k3": _over(11, 11 * H),
        "k4": _not("LICENSE_OUT_OF_SCOPE"),
        "r1": ("AUTHORIZED", "LICENSE", "IS_INFORMED;LICENSE", 100, 236_800),
        "r2": ("DENIED", None, "D5", None, None),
        "o1": ("AUTHORIZED", "LICENSE", "D1_D4;LICENSE;BEFORE_TIMELINE", 10, 10 * H),
        "o2": _not("LICENSE_EXPIRED"),
        "o3": (LR, None, "LICENSE_REQUIRED;LICENSE_NOT_YET_VALID;D1_D4;BEFORE_TIMELINE", None, None),
    },
})
CASES.append({
    "name": "if-agreement-with-license",
    "about": "Under in-force the AE agreement (cut to 20,000,000 TPP) and a license (1,500 units) "
             "are separate accumulators over the same covered lines: g3 is over the agreement only, "
             "g4 over both; an unknown license draws on neither.",
    "policy_id": "in-force",
    "policy": {"agreements.0.cap_tpp": 20_000_000},
    "register": [_lic("L-A1", "2025-11-01", "2026-12-31", "AE", max_units="1500")],
    "rows": [
        _r("g1", "2025-11-20", "AE", qty=1000, license_id="L-A1"),
        _r("g2", "2025-11-21", "AE", qty=1000, license_id="L-NO"),
        _r("g3", "2025-11-22", "AE", qty=500, license_id="L-A1"),
        _r("g4", "2025-11-23", "AE", qty=1, license_id="L-A1"),
    ],
    "expected": {
        "g1": _ok(1000, 15_832_000),
        "g2": _not("LICENSE_UNKNOWN"),
        "g3": ("CAP_EXCEEDED", None, "ALLOCATION_EXCEEDED;D1_D4;LICENSE", 1500, 23_748_000),
        "g4": ("CAP_EXCEEDED", None, "LICENSE_EXHAUSTED;ALLOCATION_EXCEEDED;D1_D4;LICENSE", 1501, 23_763_832),
    },
    "expected_country_cum_tpp": {"g1": 15_832_000, "g2": None, "g3": 23_748_000, "g4": 23_763_832},
})

# --------------------------------------------------------------------------------------------
# ai-diffusion-2025: an uncovered line is an LPP candidate.
# --------------------------------------------------------------------------------------------
CASES.append({
    "name": "ad-tier2-lpp",
    "about": "Under ai-diffusion-2025 a covered Tier-2 line draws on its license (TPP limit 20,000,000) "
             "and is an allocation candidate; an uncovered one (unknown, other consignee, expired, "
             "a license with only an id and a line without one) is decided as without a license: "
             "LPP while the consignee's LPP total allows, else LPP_EXCEEDED and LICENSE_REQUIRED; "
             "Tier 1, VEU, Tier 3 and uncontrolled lines do not draw.",
    "note": "d05/d10: the exhausted d02 still counts in the IN allocation (R2).",
    "policy_id": "ai-diffusion-2025",
    "register": [
        _lic("L-IN", "2025-01-01", "2025-12-31", "IN", consignee_id="c1", max_tpp="20000000"),
        _lic("L-OLD", "2024-01-01", "2024-12-31", "IN"),
    ],
    "rows": [
        _r("d01", "2025-02-01", "IN", qty=1000, consignee_id="c1", license_id="L-IN"),
        _r("d02", "2025-02-02", "IN", qty=1000, consignee_id="c1", license_id="L-IN"),
        _r("d03", "2025-02-03", "IN", qty=1000, consignee_id="c1", license_id="L-NONE"),
        _r("d04", "2025-02-04", "IN", qty=1000, consignee_id="c2", license_id="L-IN"),
        _r("d05", "2025-02-05", "IN", qty=1000, consignee_id="c1", license_id="L-OLD"),
        _r("d06", "2025-02-06", "FR", qty=1000, consignee_id="c1", license_id="L-IN"),
        _r("d07", "2025-02-07", "IN", qty=1, consignee_id="c1", license_id="L-IN", veu_id="V-7"),
        _r("d08", "2025-02-08", "CN", qty=1000, consignee_id="c1", license_id="L-IN"),
        _r("d09", "2025-02-09", "IN", "NVIDIA-H20", qty=1000, consignee_id="c1", license_id="L-IN"),
        _r("d10", "2025-02-10", "IN", "NVIDIA-A100", qty=1, consignee_id="c1", license_id="L-IN"),
        _r("d11", "2025-02-11", "IN", qty=1, license_id="L-IN"),
    ],
    "expected": {
        "d01": ("AUTHORIZED", "LICENSE", "TIER2;LICENSE", 1000, 15_832_000),
        # 31,664,000 > 20,000,000.
        "d02": ("CAP_EXCEEDED", None, "LICENSE_EXHAUSTED;TIER2;LICENSE", 2000, 31_664_000),
        "d03": ("AUTHORIZED", "LPP", "LICENSE_UNKNOWN;TIER2;LPP", None, None),
        "d04": ("AUTHORIZED", "LPP", "LICENSE_OUT_OF_SCOPE;TIER2;LPP", None, None),
        # c1's LPP 31,664,000 > 26,900,000: an allocation candidate without a license.
        "d05": (LR, None, "LPP_EXCEEDED;LICENSE_REQUIRED;LICENSE_EXPIRED;TIER2", None, None),
        "d06": ("AUTHORIZED", "AIA", "TIER1", None, None),
        "d07": ("AUTHORIZED", "VEU", "TIER2;VEU", None, None),
        "d08": ("DENIED", None, "TIER3", None, None),
        "d09": NC_ROW,
        "d10": ("CAP_EXCEEDED", None, "LICENSE_EXHAUSTED;TIER2;LICENSE", 2001, 31_668_992),
        "d11": ("AUTHORIZED", "LPP", "LICENSE_OUT_OF_SCOPE;TIER2;LPP", None, None),
    },
    "expected_country_cum_tpp": {
        "d01": 15_832_000, "d02": 31_664_000, "d03": None, "d04": None, "d05": 47_496_000, "d06": None,
        "d07": None, "d08": None, "d09": None, "d10": 47_500_992, "d11": None,
    },
    "expected_lpp_cum_tpp": {
        "d01": None, "d02": None, "d03": 15_832_000, "d04": 15_832_000, "d05": 31_664_000, "d06": None,
        "d07": None, "d08": None, "d09": None, "d10": None, "d11": 15_832,
    },
})
CASES.append({
    "name": "ad-name-scope",
    "about": "Under ai-diffusion-2025 a license naming a consignee covers the lines whose name "
             "normalizes equal (with or without a consignee_id), up to 10 units; another name falls "
             "to LPP and, past the LPP limit, to LICENSE_REQUIRED; a Tier-1 destination with a "
             "non-Tier-1 HQ is on the license path (no tier code), its uncovered line on LPP.",
    "policy_id": "ai-diffusion-2025",
    "register": [
        _lic("L-AC", "2025-01-01", "2027-12-31", "IN", consignee_name="Acme Compute Co., Ltd.", max_units="10"),
        _lic("L-FR", "2025-01-01", "2025-12-31", "FR"),
    ],
    "rows": [
        _r("n1", "2025-03-01", "IN", qty=5, consignee_name="ACME COMPUTE CO LTD", license_id="L-AC"),
        _r("n2", "2025-03-02", "IN", qty=5, consignee_id="c7", consignee_name="Acme Compute Limited",
           license_id="L-AC"),
        _r("n3", "2025-03-03", "IN", qty=1, consignee_name="ACME COMPUTE CO LTD", license_id="L-AC"),
        _r("n4", "2025-03-04", "IN", qty=1000, consignee_name="Acme Computing Co Ltd", license_id="L-AC"),
        _r("n5", "2025-03-05", "IN", qty=1000, consignee_name="Acme Computing Co Ltd", license_id="L-AC"),
        _r("f1", "2025-03-06", "FR", qty=1, consignee_hq_country="IN", license_id="L-FR"),
        _r("f2", "2025-03-07", "FR", qty=1, consignee_hq_country="IN", license_id="L-AC"),
        _r("f3", "2025-03-08", "FR", qty=1, license_id="L-FR"),
    ],
    "expected": {
        "n1": ("AUTHORIZED", "LICENSE", "TIER2;LICENSE", 5, 5 * H),
        "n2": ("AUTHORIZED", "LICENSE", "TIER2;LICENSE", 10, 10 * H),
        "n3": ("CAP_EXCEEDED", None, "LICENSE_EXHAUSTED;TIER2;LICENSE", 11, 11 * H),
        "n4": ("AUTHORIZED", "LPP", "LICENSE_OUT_OF_SCOPE;TIER2;LPP", None, None),
        "n5": (LR, None, "LPP_EXCEEDED;LICENSE_REQUIRED;LICENSE_OUT_OF_SCOPE;TIER2", None, None),
        "f1": ("AUTHORIZED", "LICENSE", "LICENSE", 1, H),
        "f2": ("AUTHORIZED", "LPP", "LICENSE_OUT_OF_SCOPE;LPP", None, None),
        "f3": ("AUTHORIZED", "AIA", "TIER1", None, None),
    },
    "expected_country_cum_tpp": {
        "n1": 5 * H, "n2": 10 * H, "n3": 11 * H, "n4": None, "n5": 11 * H + 15_832_000, "f1": H, "f2": None,
        "f3": None,
    },
    "expected_lpp_cum_tpp": {
        "n1": None, "n2": None, "n3": None, "n4": 15_832_000, "n5": 31_664_000, "f1": None, "f2": H, "f3": None,
    },
})
