"""Independent DuckDB-SQL oracle for the screening semantics (DESIGN §4).

This module is the *second implementation* that the engine (``pipeline/``, ``kernels/``) is
differentially tested and benchmarked against. It is written from the specification only: it
shares no code with the engine. Small reference tables (catalog, country-group membership, caps,
agreements, party results) are prepared in Python; every per-row step (joins, tiers, running
totals, cap checks, decisions, reason codes) runs in DuckDB SQL.

API
---
``screen_sql(ledger, policy, catalog, parties, con=None, overrides=None, licenses=None) -> pyarrow.Table``
    One row per ledger row, sorted by ``(ship_date, shipment_id)``: ``shipment_id``,
    ``decision``, ``authorization``, ``reasons``, ``tier`` (int8, null for non-tiered rule sets),
    ``tpp`` (int64), ``lpp_cum_tpp`` (int64 or null), ``country_cum_tpp`` (int64 or null),
    ``cn_volume_cum`` and ``us_volume_cum`` (int64 or null; only the ``in-force`` framework
    fills them, see below), ``license_cum_units`` and ``license_cum_tpp`` (int64 or null; only
    with a license register, at the rows that draw on a license, see below).
``screen_sql_parquet(ledger_path, out_path, policy, catalog, parties, con=None, overrides=None, licenses=None) -> float``
    The same from a Parquet file to a Parquet file, entirely inside DuckDB; returns seconds.
``apply_overrides(policy, overrides) -> dict``
    A copy of ``policy`` with what-if values set by dotted key (``agreements.0.cap_tpp``,
    ``components.china-volume.unit``, ``catalog.memory_bandwidth_gbs.AMD-MI325X``); the
    ``overrides`` argument of both entry points goes through it.

``parties`` has one row per consignee name (``name``, ``normalized``, ``party_list``,
``outcome``, optionally ``party_listed_on``: ISO date text, a date, or null); with a
``destination`` column, one per (name, destination), matched to the rows with that destination
(a rule set whose party scores depend on the destination country).

``licenses`` (optional, any framework) is the license register of README "License register" as
read from a CSV: a DataFrame with the columns ``license_id``, ``valid_from``, ``valid_until``,
``destination_country`` and optionally ``consignee_id``, ``consignee_name``, ``exporter``,
``skus`` (``;``-separated), ``max_units``, ``max_tpp`` (``conditions`` and ``source`` are
ignored), text values (numbers and dates are accepted too), blank = none / any / no limit; plus
an optional ``consignee_normalized``: the party normalizer's form of ``consignee_name`` (the
oracle does not normalize names itself). The register is assumed valid (the engine refuses a bad
one). ``None``: no register, every output as before the register existed (the two license
columns null). Each license's running totals ``license_cum_units`` (quantity) and
``license_cum_tpp`` are ROWS-frame sums over the rows that draw on it, in screening order.

The ledger may carry ``exporter``, ``export_country`` (null or empty = US) and
``ultimate_parent_hq_country``; absent optional columns are null. For the ``in-force``
framework the catalog must have ``memory_bandwidth_gbs`` and ``io_bandwidth_gbs``.

Frameworks: ``tiered`` (``ai-diffusion-2025``), ``country-groups`` (``post-rescission-2025``) and
``in-force`` (the dated timeline of README "How screening works"). Under ``in-force`` each row is
decided on its rule date ``d`` = ``max(ship_date, timeline_start)``; each component of
``[components.*]`` is in force on ``d`` when ``effective_from <= d <= effective_until``
(inclusive; ``in_force = false``: never). ``cn_volume_cum`` is the running total (units or TPP)
of the licensed case-by-case lines per (exporter, SKU), at those rows; ``us_volume_cum`` the
running total of the same exporter's and SKU's non-DENIED rows to the US, at those US rows
(itself included) and at the China candidate rows (the US rows before it).

Notes
-----
Exact integers: ``tpp`` is a BIGINT product (DuckDB raises on overflow); running sums are
HUGEINT and are cast back to BIGINT on output, which raises rather than wraps on overflow.
Running totals use ``ROWS`` frames ordered by ``(ship_date, shipment_id)`` and are partitioned by
(candidate flag, key), i.e. they run over the candidate rows only.

Choices made where the brief is silent (also reported to the lead):

1. Over-cap rows: a row whose ``country_cum_tpp`` exceeds the cap gets ``ALLOCATION_EXCEEDED``
   but *not* ``LICENSE_REQUIRED`` (that code is only added on the within-cap / outside-window
   no-license branch). A licensed over-cap row keeps its ``LICENSE`` code.
2. Cap lookup (``allocation.caps``) and agreement matching compare the policy's country code
   verbatim with the *aliased* destination (a cap or agreement written for ``HK`` never matches).
3. If several agreements match one row (same destination, overlapping windows), the row belongs
   to the first one in policy-file order only.
4. The party key is one string: ``consignee_id`` when present, else
   ``normalized || '|' || destination_country`` (as written, not aliased). No namespace separates
   the two forms.
5. A party outcome ``block``/``review`` with a null ``party_list`` still yields the code, as
   ``PARTY:`` / ``PARTY_REVIEW:`` with an empty list code.
6. Tier 3 beats Tier 1 if a destination were in both; the HQ Tier-1 test uses the plain
   ``tiers.tier1`` list (aliased HQ); group memberships (static and ``dated``) are evaluated on
   the row's ship_date for both destination and HQ.
7. Dates and integers in ``policy`` may be given as ``datetime.date``/``int`` (tomllib) or as
   ISO strings / numeric strings (overrides); both are accepted.
8. Tiered: a Tier-1 destination with a non-Tier-1 HQ goes down the VEU / license / LPP path
   with no tier code, and its allocation candidates count against that (Tier-1) destination's
   own cap (``caps`` or ``default_cap_tpp``), exactly as for Tier-2 destinations.
9. ``screen_sql`` raises ``ValueError`` for a SKU missing from the catalog or a consignee_name
   missing from ``parties``; ``screen_sql_parquet`` (benchmark peer) skips these checks.

``in-force`` (added for issue 17; items 10-28):

10. Listing dates (``parties.listing_dates = true``, any framework): the comparison is with the
    row's *ship_date* (not the rule date ``d``); a hit is suppressed when ``ship_date <
    party_listed_on``. It applies to ``block`` and ``review`` outcomes alike; the suppressed row
    gets ``PARTY_BEFORE_LISTING:<list>`` and is otherwise decided as if it had no hit (it may
    then enter the accumulators). A null ``party_listed_on`` counts always.
11. Denial codes are cumulative, as in the other frameworks (``GP10;D5``, ``D5;D5_HQ``): a row to
    China/Macau under ``h200-china`` gets every one of ``CN_ABOVE_THRESHOLD``, ``REEXPORT``,
    ``D5_HQ`` whose condition holds (a B200 re-exported to CN: ``CN_ABOVE_THRESHOLD;REEXPORT``).
    A DENIED row carries only its denial codes, ``PARTY_REVIEW``, ``PARTY_BEFORE_LISTING`` and
    ``BEFORE_TIMELINE`` (no path codes such as ``CN_CASE_BY_CASE``), as before.
12. "HQ in D:5/Macau outside China and Macau" (China branch) is read per HQ field: some HQ field
    (``consignee_hq_country`` or ``ultimate_parent_hq_country``, aliased) is in the
    ``advanced-computing-2023.hq_groups`` and not in the ``h200-china.destinations`` groups on
    ``d``. A CN-headquartered consignee in CN is case-by-case; one with a RU parent is DENIED.
13. ``REEXPORT`` and ``CN_ABOVE_THRESHOLD`` concern *controlled* chips only, as the README says.
    An informed chip that is not controlled (H20) re-exported to China, or outside the band, is
    not case-by-case and falls to "every other row": the license path with ``IS_INFORMED`` (the
    issue's looser "a re-export ... stays DENIED" is not followed).
14. Case-by-case needs "a controlled or *informed chip*" (the bandwidth test alone, while
    ``is-informed`` is in force), not "informed" (chip plus destination); identical with the
    file's groups, which contain China.
15. On the license path outside the China branch, ``IS_INFORMED`` and ``D1_D4`` are each added
    when their own condition holds (both only with what-if groups; with the file's groups an
    informed controlled row is always DENIED). Within the branch ``D1_D4`` is never added.
16. "Controlled" requires ``advanced-computing-2023`` in force on ``d``; GP10 requires
    ``gp10-guidance`` in force on ``d``; a component that is absent is never in force. A
    component without ``effective_from`` is in force from the beginning, without
    ``effective_until`` forever. ``ai-diffusion-2025`` in force on any date is refused
    (``NotImplementedError``): this oracle has no tiers under ``in-force``. An unknown component
    name is refused (``ValueError``).
17. The China volume candidates are the case-by-case rows on the ``LICENSE`` path (a
    ``license_id`` and no ``veu_id``) that are not DENIED, with ``china-volume`` in force on
    ``d``. A case-by-case row with a VEU (``AUTHORIZED``/``VEU``) is not a "licensed line" and
    does not count. ``REVIEW`` and over-ratio (``CAP_EXCEEDED``) candidates do count for later
    rows, as over-cap rows do in the allocation totals.
18. US rows (aliased destination ``US``, not DENIED) count on any date, including rows before
    ``timeline_start`` and rows of uncontrolled SKUs, whenever ``china-volume`` is in force on
    some date at all; with ``china-volume`` never in force both volume columns are null
    everywhere. A US row's ``us_volume_cum`` is its own running total, itself included; a
    candidate's ``us_volume_cum`` is the total of the US rows before it in screening order
    (``0`` when there is none, and then any positive China amount is over).
19. The exporter key is ``coalesce(exporter, '')`` compared verbatim (null and empty are one
    exporter; no trimming or case folding here); the SKU is the ledger's ``sku``.
20. An over-ratio candidate is ``CAP_EXCEEDED`` (authorization null) with ``CN_US_RATIO`` and
    keeps ``CN_CASE_BY_CASE`` and ``LICENSE`` (as choice 1 keeps ``LICENSE`` on over-cap rows).
21. "From the US": ``export_country`` null, empty, or equal to ``h200-china.export_country``
    (``US``), compared verbatim. ``export_country`` matters only in the China branch.
22. Agreements under ``in-force`` work as under ``country-groups`` (choices 2 and 3) over every
    row on the ``LICENSE`` path: D1_D4, IS_INFORMED and case-by-case licensed lines alike; the
    window is tested on ``ship_date``.
23. Bandwidth: catalog values, replaced by ``catalog.memory_bandwidth_gbs.<SKU>`` /
    ``catalog.io_bandwidth_gbs.<SKU>`` from the rule set for *every* rule that reads them (the
    is-informed thresholds as well as the H200 band, although the README mentions the override
    under the band); an override for a SKU missing from the catalog is a ``ValueError``. A null bandwidth fails every test that reads it (SQL null): a
    chip with unknown DRAM bandwidth is not in the band (a controlled one to China is
    ``CN_ABOVE_THRESHOLD``) and is informed only through another threshold.
24. Group memberships under ``in-force`` are evaluated on ``d`` for destination and both HQ
    fields; a ``country_groups.dated`` entry may carry ``from`` and/or ``until`` (inclusive; a
    missing bound is open); other keys in an entry, or a component naming a group that is
    neither a static group nor used in a dated entry, are refused.
25. ``hq_groups`` absent from ``advanced-computing-2023`` defaults to its ``denied_groups``;
    ``timeline_start`` absent means no row is before the timeline.
26. ``us_volume_cum``/``cn_volume_cum`` are exact: HUGEINT running sums, ratio test
    ``100 * cn > max_share_percent * us`` in HUGEINT, cast to BIGINT on output (raises on
    overflow).
27. ``BEFORE_TIMELINE`` rows use ``d = timeline_start`` for every dated test (components,
    memberships) but their real ``ship_date`` for screening order, the listing-date test, the
    agreement windows and the volume totals.
28. Party outcomes other than ``block``/``review`` are no hit; reviewed decisions are not modelled,
    so ``PARTY_CLEARED:<list>`` is never produced (as before).

License register (added for issue 18; items 29-41):

29. Register cells are trimmed; ``None``, NaN and blank text are empty. ``skus`` is split on
    ``;``, each item trimmed, empty items dropped; no item = any SKU; an item is compared with the
    ledger ``sku`` verbatim. ``max_units``/``max_tpp`` are integers (``"1000"``, ``1000``,
    ``1000.0``); empty = no limit; ``0`` is a limit (every drawing line is over). A repeated
    ``license_id`` after trimming, a missing required column or value, and a ``consignee_name``
    with no normalized form (see 35) are a ``ValueError``; unknown SKUs and countries are not
    checked (the engine's job).
30. ``license_id`` is matched after trimming both the register's and the line's value,
    case-sensitively ("unique after trimming": ``L-1`` and ``l-1`` are two licenses). A ledger
    ``license_id`` that is non-null puts the line on the license path as before, blank included
    (it then matches no license: ``LICENSE_UNKNOWN``).
31. Only the rows on the license path are checked: not DENIED (by party, GP10, destination or
    any HQ / China-branch denial: the README's list "party, GP10 or destination" is read as "not
    DENIED"), no ``veu_id``, a license required (tiered: a Tier-2 line, or a Tier-1 destination
    with a non-Tier-1 HQ as in choice 8, which the tiered rules send to the allocation with its
    ``license_id`` before LPP; country-groups: D:1/D:4 and not A:5/A:6; in-force: case-by-case,
    informed or D1_D4) and a ``license_id``. A party ``REVIEW`` line is on that path: checked, and
    it draws. Every other row gets no license code and never draws, whatever its ``license_id``
    (an unknown id on an NLR, VEU or DENIED line is not reported).
32. One code per line that is not covered: the first failing test in the README order (not in the
    register, before ``valid_from``, after ``valid_until``, scope); the four scope tests share
    ``LICENSE_OUT_OF_SCOPE`` and are not told apart.
33. The validity window is tested on the row's ``ship_date`` (inclusive both ends), also under
    ``in-force`` for rows before ``timeline_start`` (not on the rule date ``d``).
34. Destination: ``upper(trim(destination_country))`` of the line *as written* (not aliased: a
    license for ``CN`` does not cover a line to ``HK``) equal to the license's, upper-cased.
35. Consignee: ids are trimmed (blank = none) and compared case-sensitively where both the
    license and the line have one; the names are then not compared, whether they agree or not.
    Otherwise, where the license names a consignee, the line's normalized name (``normalized`` of
    its party-result row) must equal the license's ``consignee_normalized`` (when that column is
    absent or null: the ``normalized`` of the party-result row whose ``name`` is the license's
    ``consignee_name``, else ``ValueError``); a line without a normalized name never matches.
    Otherwise a license with only an id covers no line (the line has none); a license naming no
    consignee covers every line.
36. Exporter: both sides trimmed and lower-cased; a license naming an exporter does not cover a
    line whose exporter is null or blank; a license without one covers every exporter.
37. A line that is not covered is decided exactly as a line without ``license_id``: tiered, an
    LPP candidate (``LPP`` within the consignee's LPP limit, else ``LPP_EXCEEDED`` and an
    allocation candidate needing a license); elsewhere ``LICENSE_REQUIRED``. Its code is added
    after ``LICENSE_REQUIRED`` in the README order (``LICENSE_UNKNOWN;TIER2;LPP`` when LPP
    authorizes it). It is not a licensed line for any other accumulator: no bilateral agreement,
    no China volume (choice 17 counts the covered lines only), no per-license total.
38. Per-license totals: partitioned by the trimmed register ``license_id`` over the drawing rows
    (the covered rows), ROWS frames in ``(ship_date, shipment_id)`` order, HUGEINT sums cast to
    BIGINT on output (an overflow raises). A drawing row is over when its units total > ``max_units``
    or its TPP total > ``max_tpp``; quantities are > 0 (ledger rule), so the totals never decrease
    and every later drawing row of an exhausted license is over too (no separate sticky flag).
    Later rows of that license that are not covered are not "over": they get their own code.
39. An exhausted row is ``CAP_EXCEEDED`` (authorization null) with ``LICENSE_EXHAUSTED`` and keeps
    ``LICENSE`` and its path codes; a ``REVIEW`` row stays ``REVIEW`` with ``LICENSE_EXHAUSTED``
    among its reasons (precedence). It stays a licensed line everywhere else: it counts in its own
    license's later totals, in the tiered country allocation, the bilateral agreements and the
    China volume, as over-cap rows do (choices 1 and 17); a row can carry ``CN_US_RATIO``,
    ``LICENSE_EXHAUSTED`` and ``ALLOCATION_EXCEEDED`` together.
40. ``license_cum_units``/``license_cum_tpp`` are set at every drawing row (over or not) and null at
    every other row. With ``licenses=None`` both are null everywhere and nothing else changes; an
    empty register (no rows) is a register: every licensed line is ``LICENSE_UNKNOWN``.
41. The oracle does not read the rule-set key ``licenses.register``: the register is given only as
    the ``licenses`` argument (a test of the engine passes the same register to both).
"""
from __future__ import annotations

import copy
import datetime as _dt
import itertools
import sys
import time

try:
    import duckdb
except ImportError:
    if "pytest" not in sys.modules:
        raise
    import pytest  # imported by a test module: skip it (the GPU image has no duckdb)

    pytest.skip("the SQL oracle needs duckdb, which is not installed", allow_module_level=True)
import pandas as pd
import pyarrow as pa

__all__ = ["screen_sql", "screen_sql_parquet", "build_query", "apply_overrides"]

_MAX_DATE = _dt.date(9999, 12, 31)
_MIN_DATE = _dt.date(1, 1, 1)
_OPTIONAL = ("consignee_id", "consignee_hq_country", "license_id", "veu_id", "exporter",
             "export_country", "ultimate_parent_hq_country")
_COMPONENTS = ("advanced-computing-2023", "ai-diffusion-2025", "gp10-guidance", "is-informed",
               "h200-china", "china-volume")
_counter = itertools.count()

OUTPUT_SCHEMA = pa.schema(
    [
        ("shipment_id", pa.string()),
        ("decision", pa.string()),
        ("authorization", pa.string()),
        ("reasons", pa.string()),
        ("tier", pa.int8()),
        ("tpp", pa.int64()),
        ("lpp_cum_tpp", pa.int64()),
        ("country_cum_tpp", pa.int64()),
        ("cn_volume_cum", pa.int64()),
        ("us_volume_cum", pa.int64()),
        ("license_cum_units", pa.int64()),
        ("license_cum_tpp", pa.int64()),
    ]
)


# --------------------------------------------------------------------------------------------
# Small reference tables, prepared in Python (tiny: one row per SKU / country / agreement).
# --------------------------------------------------------------------------------------------
def _date(value) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    return _dt.date.fromisoformat(str(value))


def _int(value) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise TypeError(f"expected true or false, got {value!r}")


def _opt_date(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return _date(value)


def _opt_int(value):
    if value is None or pd.isna(value):
        return None
    return _int(value)


def apply_overrides(policy: dict, overrides: dict | None) -> dict:
    """A deep copy of ``policy`` with each dotted key of ``overrides`` set (list items by index).

    Missing intermediate tables are created (``catalog.memory_bandwidth_gbs.NVIDIA-H20``).
    """
    out = copy.deepcopy(policy)
    for key, value in (overrides or {}).items():
        parts = str(key).split(".")
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                idx = int(part)
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
    return out


def _member_until(policy: dict, groups) -> dict[str, _dt.date]:
    """Country -> last ship date (inclusive) on which it is in ANY of ``groups``."""
    cg = policy.get("country_groups", {})
    out: dict[str, _dt.date] = {}
    for g in groups:
        for country in cg.get(g, []):
            out[country] = _MAX_DATE
    for entry in cg.get("dated", []) or []:
        if entry["group"] in groups:
            until = _date(entry["until"])
            if until > out.get(entry["country"], _dt.date.min):
                out[entry["country"]] = until
    return out


def _framework(policy: dict) -> str:
    fw = policy.get("framework")
    if fw not in ("tiered", "country-groups", "in-force"):
        raise ValueError(f"unknown framework {fw!r}")
    return fw


def _window(component) -> tuple[_dt.date, _dt.date] | None:
    """Inclusive (from, until) of a component, or None when it is never in force."""
    if component is None:
        return None
    if "in_force" in component and not _bool(component["in_force"]):
        return None
    lo = component.get("effective_from")
    hi = component.get("effective_until")
    lo = _MIN_DATE if lo in (None, "") else _date(lo)
    hi = _MAX_DATE if hi in (None, "") else _date(hi)
    return (lo, hi) if lo <= hi else None


def _inforce(policy: dict) -> dict:
    """The parameters of the ``in-force`` framework, validated (choices 16, 24, 25)."""
    comps = policy.get("components", {}) or {}
    # The Affiliates rule needs an ownership graph, which this oracle does not model: without one
    # (``affiliates.ownership`` empty) its components change nothing, so they are accepted.
    if not (policy.get("affiliates", {}) or {}).get("ownership"):
        comps = {name: c for name, c in comps.items() if not name.startswith("affiliates-")}
    unknown = sorted(set(comps) - set(_COMPONENTS))
    if unknown:
        raise ValueError(f"unknown in-force components {unknown}")
    win = {name: _window(comps.get(name)) for name in _COMPONENTS}
    if win["ai-diffusion-2025"] is not None:
        raise NotImplementedError("ai-diffusion-2025 in force under in-force: tiers are not implemented here")
    ac = comps.get("advanced-computing-2023") or {}
    inf = comps.get("is-informed") or {}
    h200 = comps.get("h200-china") or {}
    vol = comps.get("china-volume") or {}
    sets = {
        "den": list(ac.get("denied_groups", [])),
        "lic": list(ac.get("license_groups", [])),
        "ex": list(ac.get("exempt_groups", [])),
        "hqg": list(ac.get("hq_groups", ac.get("denied_groups", []))),
        "infg": list(inf.get("groups", [])),
        "cnd": list(h200.get("destinations", [])),
    }
    p = {"win": win, "sets": sets, "classes": set(ac.get("controlled_classes", []))}
    ts = policy.get("timeline_start")
    p["timeline_start"] = _MIN_DATE if ts in (None, "") else _date(ts)
    if win["is-informed"] is not None:
        p["inf_mem"] = _int(inf["memory_bandwidth_gbs"])
        p["inf_io"] = _int(inf["io_bandwidth_gbs"])
        p["inf_sum"] = _int(inf["combined_bandwidth_gbs"])
    if win["h200-china"] is not None:
        p["max_tpp"] = _int(h200["max_tpp"])
        p["max_mem"] = _int(h200["max_memory_bandwidth_gbs"])
        p["export_country"] = str(h200.get("export_country", "US"))
    if win["china-volume"] is not None:
        unit = str(vol.get("unit", "units"))
        if unit not in ("units", "tpp"):
            raise ValueError(f"china-volume.unit must be 'units' or 'tpp', got {unit!r}")
        p["unit"] = unit
        p["max_share_percent"] = _int(vol["max_share_percent"])
    return p


def _memberships(policy: dict, sets: dict[str, list[str]]) -> pa.Table:
    """(gs, country, mfrom, muntil): a country is in group set ``gs`` on dates in [mfrom, muntil]."""
    cg = policy.get("country_groups", {}) or {}
    dated = cg.get("dated", []) or []
    for entry in dated:
        extra = set(entry) - {"group", "country", "from", "until"}
        if extra:
            raise ValueError(f"country_groups.dated entry with unknown keys {sorted(extra)}")
    known = {g for g in cg if g != "dated"} | {e["group"] for e in dated}
    rows = []
    for gs, groups in sets.items():
        for g in groups:
            if g not in known:
                raise ValueError(f"unknown country group {g!r}")
            for country in cg.get(g, []) if g != "dated" else []:
                rows.append((gs, str(country), _MIN_DATE, _MAX_DATE))
            for entry in dated:
                if entry["group"] == g:
                    lo = _MIN_DATE if entry.get("from") in (None, "") else _date(entry["from"])
                    hi = _MAX_DATE if entry.get("until") in (None, "") else _date(entry["until"])
                    rows.append((gs, str(entry["country"]), lo, hi))
    return pa.table(
        {
            "gs": pa.array([r[0] for r in rows], pa.string()),
            "country": pa.array([r[1] for r in rows], pa.string()),
            "mfrom": pa.array([r[2] for r in rows], pa.date32()),
            "muntil": pa.array([r[3] for r in rows], pa.date32()),
        }
    )


def _bandwidths(policy: dict, catalog: pd.DataFrame, column: str) -> list:
    if column not in catalog.columns:
        raise ValueError(f"the in-force framework needs the catalog column {column!r}")
    values = {str(s): _opt_int(v) for s, v in zip(catalog["sku"], catalog[column])}
    over = ((policy.get("catalog", {}) or {}).get(column, {}) or {})
    for sku, v in over.items():
        if str(sku) not in values:
            raise ValueError(f"catalog.{column}.{sku}: no such SKU in the catalog")
        values[str(sku)] = _int(v)
    return [values[str(s)] for s in catalog["sku"]]


def _reference_tables(policy: dict, catalog: pd.DataFrame, parties: pd.DataFrame) -> dict[str, pa.Table]:
    fw = _framework(policy)
    if fw == "in-force":
        inf = _inforce(policy)
        classes = inf["classes"]
        gp10_on = True  # gated by the gp10-guidance window in the query
    else:
        controls = policy.get("controls", {})
        classes = set(controls.get("controlled_classes", []))
        gp10_on = bool(controls.get("gp10_denied", False))
    cat = {
        "sku": pa.array([str(s) for s in catalog["sku"]], pa.string()),
        "unit_tpp": pa.array([_int(v) for v in catalog["unit_tpp"]], pa.int64()),
        "controlled": pa.array([str(e) in classes for e in catalog["eccn"]], pa.bool_()),
        "gp10": pa.array([gp10_on and bool(g) for g in catalog["gp10"]], pa.bool_()),
    }
    if fw == "in-force":
        cat["mem_bw"] = pa.array(_bandwidths(policy, catalog, "memory_bandwidth_gbs"), pa.int64())
        cat["io_bw"] = pa.array(_bandwidths(policy, catalog, "io_bandwidth_gbs"), pa.int64())
    cat = pa.table(cat)

    aliases = (policy.get("destinations", {}) or {}).get("aliases", {}) or {}
    alias = pa.table(
        {
            "src": pa.array(list(aliases.keys()), pa.string()),
            "dst": pa.array([str(v) for v in aliases.values()], pa.string()),
        }
    )

    # Per-country membership horizons: a row is in the group set when ship_date <= *_until.
    if fw == "tiered":
        tiers = policy.get("tiers", {})
        cols = {"t3_until": _member_until(policy, tiers.get("tier3_groups", []))}
        tier1 = set(tiers.get("tier1", []))
    elif fw == "in-force":
        cols = {}  # dated memberships go through the ``mem`` table instead
        tier1 = set()
    else:
        cols = {
            "den_until": _member_until(policy, controls.get("denied_groups", [])),
            "lic_until": _member_until(policy, controls.get("license_groups", [])),
            "ex_until": _member_until(policy, controls.get("exempt_groups", [])),
        }
        tier1 = set()
    countries = sorted(set(tier1).union(*[set(m) for m in cols.values()]))
    cc = {"country": pa.array(countries, pa.string())}
    for name, m in cols.items():
        cc[name] = pa.array([m.get(c) for c in countries], pa.date32())
    cc["t1"] = pa.array([c in tier1 for c in countries], pa.bool_())
    cc = pa.table(cc)

    if fw == "tiered":
        alloc = policy.get("allocation", {})
        caps = alloc.get("caps", {}) or {}
        capt = pa.table(
            {
                "country": pa.array([str(k) for k in caps], pa.string()),
                "cap": pa.array([_int(v) for v in caps.values()], pa.int64()),
            }
        )
        agr = pa.table(
            {
                "idx": pa.array([], pa.int32()),
                "destination": pa.array([], pa.string()),
                "ws": pa.array([], pa.date32()),
                "we": pa.array([], pa.date32()),
                "cap": pa.array([], pa.int64()),
            }
        )
    else:
        capt = pa.table({"country": pa.array([], pa.string()), "cap": pa.array([], pa.int64())})
        agreements = policy.get("agreements", []) or []
        agr = pa.table(
            {
                "idx": pa.array(list(range(len(agreements))), pa.int32()),
                "destination": pa.array([str(a["destination"]) for a in agreements], pa.string()),
                "ws": pa.array([_date(a["window_start"]) for a in agreements], pa.date32()),
                "we": pa.array([_date(a["window_end"]) for a in agreements], pa.date32()),
                "cap": pa.array([_int(a["cap_tpp"]) for a in agreements], pa.int64()),
            }
        )

    cols = {}
    for name in ("name", "destination", "normalized", "party_list", "outcome"):
        if name in parties.columns:
            arr = pa.array(parties[name], from_pandas=True)
            cols[name] = arr.cast(pa.string()) if arr.type != pa.string() else arr
        else:
            cols[name] = pa.nulls(len(parties), pa.string())
    if "party_listed_on" in parties.columns:
        cols["listed_on"] = pa.array([_opt_date(v) for v in parties["party_listed_on"]], pa.date32())
    else:
        cols["listed_on"] = pa.nulls(len(parties), pa.date32())
    par = pa.table(cols)
    tables = {"cat": cat, "alias": alias, "cc": cc, "caps": capt, "agr": agr, "par": par}
    if fw == "in-force":
        tables["mem"] = _memberships(policy, inf["sets"])
    return tables


_REGISTER_COLUMNS = ("license_id", "valid_from", "valid_until", "destination_country")


def _text(value) -> str | None:
    """A register cell as trimmed text; None for a missing or blank cell (choice 29)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _count(value) -> int | None:
    """``max_units`` / ``max_tpp``: empty = no limit; else an integer (``"1000"``, ``1000``, ``1000.0``)."""
    text = _text(value)
    if text is None:
        return None
    if not isinstance(value, str) and isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"not an integer: {value!r}")
        return int(value)
    return int(text)


def _license_tables(licenses: pd.DataFrame, parties: pd.DataFrame) -> dict[str, pa.Table]:
    """The register (``reg``: one row per license) and its SKU lists (``lsku``), parsed from text.

    The register is assumed valid (the engine refuses a bad one before running); a duplicate
    ``license_id`` after trimming, a missing required value or a consignee name that cannot be
    normalized is still a ``ValueError`` here, so that the oracle never joins ambiguously.
    """
    missing = [c for c in _REGISTER_COLUMNS if c not in licenses.columns]
    if missing:
        raise ValueError(f"the license register lacks the columns {missing}")
    known = {}
    if "name" in parties.columns and "normalized" in parties.columns:
        for name, norm in zip(parties["name"], parties["normalized"]):
            if name is not None and not pd.isna(name) and norm is not None and not pd.isna(norm):
                known.setdefault(str(name).strip(), str(norm))
    cols = {c: [] for c in ("lic_id", "l_from", "l_until", "l_dest", "l_cid", "l_cname", "l_exp",
                            "any_sku", "max_units", "max_tpp")}
    sku_rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    records = licenses.to_dict("records")
    for i, rec in enumerate(records):
        def cell(name, rec=rec):
            return _text(rec.get(name)) if name in rec else None

        lic_id = cell("license_id")
        if lic_id is None or cell("valid_from") is None or cell("valid_until") is None or cell("destination_country") is None:
            raise ValueError(f"license register row {i + 1}: a required value is missing")
        if lic_id in seen:
            raise ValueError(f"license register row {i + 1}: license_id {lic_id!r} repeated")
        seen.add(lic_id)
        name = cell("consignee_name")
        if name is None:
            cname = None
        else:
            given = rec.get("consignee_normalized") if "consignee_normalized" in rec else None
            if given is not None and not (not isinstance(given, str) and pd.isna(given)):
                cname = str(given)
            elif name in known:
                cname = known[name]
            else:
                raise ValueError(f"license register row {i + 1}: no normalized form of consignee_name {name!r} "
                                 "(give consignee_normalized, or the name among the party results)")
        exporter = cell("exporter")
        skus = [part.strip() for part in (cell("skus") or "").split(";") if part.strip()]
        cols["lic_id"].append(lic_id)
        cols["l_from"].append(_date(cell("valid_from")))
        cols["l_until"].append(_date(cell("valid_until")))
        cols["l_dest"].append(cell("destination_country").upper())
        cols["l_cid"].append(cell("consignee_id"))
        cols["l_cname"].append(cname)
        cols["l_exp"].append(exporter.lower() if exporter is not None else None)
        cols["any_sku"].append(not skus)
        cols["max_units"].append(_count(rec.get("max_units")))
        cols["max_tpp"].append(_count(rec.get("max_tpp")))
        sku_rows.extend((lic_id, sku) for sku in dict.fromkeys(skus))
    types = {"l_from": pa.date32(), "l_until": pa.date32(), "any_sku": pa.bool_(),
             "max_units": pa.int64(), "max_tpp": pa.int64()}
    reg = pa.table({c: pa.array(v, types.get(c, pa.string())) for c, v in cols.items()})
    lsku = pa.table({"lic_id": pa.array([r[0] for r in sku_rows], pa.string()),
                     "sku": pa.array([r[1] for r in sku_rows], pa.string())})
    return {"reg": reg, "lsku": lsku}


# --------------------------------------------------------------------------------------------
# The query.
# --------------------------------------------------------------------------------------------
def _lit_date(d) -> str:
    return f"DATE '{_date(d).isoformat()}'"


def _on(window, col: str = "d") -> str:
    """SQL: is the component with this window in force on ``col``."""
    if window is None:
        return "false"
    return f"({col} BETWEEN {_lit_date(window[0])} AND {_lit_date(window[1])})"


def _inforce_flags(policy: dict, n: dict[str, str]) -> str:
    """The per-row situation and path of the ``in-force`` framework (README "How screening works")."""
    p = _inforce(policy)
    win = p["win"]
    ts = _lit_date(p["timeline_start"])

    def mem(gs: str, col: str) -> str:
        return (f"EXISTS (SELECT 1 FROM {n['mem']} m WHERE m.gs = '{gs}' AND m.country = {col} "
                f"AND x.d BETWEEN m.mfrom AND m.muntil)")

    if win["is-informed"] is not None:
        informed_chip = (f"coalesce({_on(win['is-informed'])} AND (mem_bw >= {p['inf_mem']} "
                         f"OR io_bw >= {p['inf_io']} OR mem_bw + io_bw >= {p['inf_sum']}), false)")
    else:
        informed_chip = "false"
    if win["h200-china"] is not None:
        in_band = f"coalesce(unit_tpp < {p['max_tpp']} AND mem_bw < {p['max_mem']}, false)"
        from_us = f"(coalesce(export_country, '') IN ('', {_sql_str(p['export_country'])}))"
    else:
        in_band, from_us = "false", "true"
    return f"""
dated AS (
  SELECT b.* EXCLUDE (controlled, gp10),
         b.controlled AS cls_controlled,
         b.gp10 AS cat_gp10,
         (b.ship_date < {ts}) AS before_tl,
         CASE WHEN b.ship_date < {ts} THEN {ts} ELSE b.ship_date END AS d
  FROM base b
),
flags AS (
  SELECT x.*,
         (cls_controlled AND {_on(win['advanced-computing-2023'], 'x.d')}) AS controlled,
         (cat_gp10 AND {_on(win['gp10-guidance'], 'x.d')}) AS gp10,
         coalesce(x.dest = 'US', false) AS us_dest,
         {mem('den', 'x.dest')} AS d_den,
         {mem('lic', 'x.dest')} AS d_lic,
         {mem('ex', 'x.dest')} AS d_ex,
         ({mem('hqg', 'x.hq')} OR {mem('hqg', 'x.uph')}) AS h_den,
         (({mem('hqg', 'x.hq')} AND NOT {mem('cnd', 'x.hq')})
           OR ({mem('hqg', 'x.uph')} AND NOT {mem('cnd', 'x.uph')})) AS h_den_outside,
         {mem('infg', 'x.dest')} AS d_inf,
         ({mem('infg', 'x.hq')} OR {mem('infg', 'x.uph')}) AS h_inf,
         ({_on(win['h200-china'], 'x.d')} AND {mem('cnd', 'x.dest')}) AS china
  FROM dated x
),
sit AS (
  SELECT f.*,
         {informed_chip} AS informed_chip,
         {in_band} AS in_band,
         {from_us} AS from_us
  FROM flags f
),
rules AS (
  SELECT s.*,
         CAST(NULL AS TINYINT) AS tier,
         (china AND controlled AND NOT in_band) AS c_cnabove,
         (china AND controlled AND NOT from_us) AS c_reexport,
         (NOT china AND controlled AND d_den) AS c_d5,
         ((china AND controlled AND h_den_outside)
           OR (NOT china AND controlled AND NOT us_dest AND h_den)) AS c_d5hq,
         (informed_chip AND (d_inf OR (NOT us_dest AND h_inf))) AS informed,
         (china AND (controlled OR informed_chip) AND in_band AND from_us) AS cbc
  FROM sit s
),
paths0 AS (
  SELECT m.*,
         (p_block OR gp10 OR c_cnabove OR c_reexport OR c_d5 OR c_d5hq) AS denied,
         CASE
           WHEN p_block OR gp10 OR c_cnabove OR c_reexport OR c_d5 OR c_d5hq THEN 'DENIED'
           WHEN cbc OR informed OR (controlled AND d_lic AND NOT d_ex) THEN
             CASE WHEN veu_id IS NOT NULL THEN 'VEU'
                  WHEN license_id IS NOT NULL THEN 'LIC'
                  ELSE 'NOLIC' END
           WHEN controlled THEN 'NLR'
           ELSE 'NC'
         END AS path,
         cbc AS r_cbc,
         ((cbc AND NOT controlled) OR (NOT cbc AND informed)) AS r_inf,
         (NOT cbc AND controlled AND d_lic AND NOT d_ex) AS r_d14
  FROM rules m
),"""


_NO_VOLUME = """
ratio AS (
  SELECT a.*, false AS ratio_over, CAST(NULL AS HUGEINT) AS cn_cum, CAST(NULL AS HUGEINT) AS us_cum
  FROM alloc a
),"""


def _volume(policy: dict) -> str:
    """The China volume condition: running totals per (exporter, SKU) (choices 17-19, 26)."""
    p = _inforce(policy)
    win = p["win"]
    if win["china-volume"] is None:
        return _NO_VOLUME
    order = "ORDER BY ship_date, shipment_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    amount = "qty" if p["unit"] == "units" else "tpp"
    part = f"PARTITION BY (vol_cand OR us_row), exp_key, sku {order}"
    return f"""
vol AS (
  SELECT a.*,
         ({_on(win['china-volume'])} AND r_cbc AND path = 'LIC' AND NOT denied) AS vol_cand,
         (us_dest AND NOT denied) AS us_row
  FROM alloc a
),
volsum AS (
  SELECT v.*,
         CASE WHEN vol_cand OR us_row THEN
           SUM(CASE WHEN us_row THEN {amount} ELSE 0 END) OVER ({part}) END AS us_cum,
         CASE WHEN vol_cand THEN
           SUM(CASE WHEN vol_cand THEN {amount} ELSE 0 END) OVER ({part}) END AS cn_cum
  FROM vol v
),
ratio AS (
  SELECT v.*,
         coalesce(vol_cand AND CAST(100 AS HUGEINT) * cn_cum
                  > CAST({p['max_share_percent']} AS HUGEINT) * us_cum, false) AS ratio_over
  FROM volsum v
),"""


def build_query(policy: dict, ledger_sql: str, names: dict[str, str]) -> str:
    """SQL for the screening of ``ledger_sql`` (a relation) under ``policy``.

    ``names`` maps the reference roles (cat, alias, cc, caps, agr, par; mem for ``in-force``; reg
    and lsku with a license register) to registered relations.
    """
    fw = _framework(policy)
    n = names
    order = "ORDER BY ship_date, shipment_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    inforce = fw == "in-force"
    lic_ctes = _license_ctes(n, fw)

    # Listing dates (choice 10): a block/review hit before the entry's listing date is ignored.
    listing = "true" if _bool((policy.get("parties", {}) or {}).get("listing_dates", False)) else "false"
    before_listing = (f"coalesce({listing} AND p.outcome IN ('block', 'review') "
                      f"AND l.ship_date < p.listed_on, false)")
    bandwidth = "c.mem_bw, c.io_bw," if inforce else ""
    base = f"""
base AS (
  SELECT l.shipment_id, l.ship_date,
         l.destination_country AS dest_raw,
         coalesce(a1.dst, l.destination_country) AS dest,
         coalesce(a2.dst, l.consignee_hq_country) AS hq,
         coalesce(a3.dst, l.ultimate_parent_hq_country) AS uph,
         l.license_id, l.veu_id,
         coalesce(l.exporter, '') AS exp_key,
         l.export_country,
         l.sku,
         CAST(l.quantity AS BIGINT) AS qty,
         CAST(c.unit_tpp AS BIGINT) AS unit_tpp,
         {bandwidth}
         CAST(c.unit_tpp AS BIGINT) * CAST(l.quantity AS BIGINT) AS tpp,
         coalesce(c.controlled, false) AS controlled,
         coalesce(c.gp10, false) AS gp10,
         {before_listing} AS p_before,
         coalesce(p.outcome = 'block', false) AND NOT {before_listing} AS p_block,
         coalesce(p.outcome = 'review', false) AND NOT {before_listing} AS p_review,
         coalesce(p.party_list, '') AS plist,
         coalesce(l.consignee_id, p.normalized || '|' || l.destination_country) AS party_key,
         l.consignee_id AS cid_raw,
         p.normalized AS cname_norm,
         l.exporter AS exporter_raw
  FROM {ledger_sql} l
  JOIN {n['cat']} c ON c.sku = l.sku
  LEFT JOIN {n['alias']} a1 ON a1.src = l.destination_country
  LEFT JOIN {n['alias']} a2 ON a2.src = l.consignee_hq_country
  LEFT JOIN {n['alias']} a3 ON a3.src = l.ultimate_parent_hq_country
  LEFT JOIN {n['par']} p ON p.name = l.consignee_name
    AND (p.destination IS NULL OR p.destination = l.destination_country)
)"""

    # Agreements: allocation accumulators over the rows on the LICENSE path (choice 3, 22).
    agr_cand = f"""
cand AS (
  SELECT p.*,
         CAST(NULL AS HUGEINT) AS lpp_cum,
         false AS lpp_over,
         (path = 'LIC') AS alloc_cand,
         (path = 'LIC' AND a.idx IS NOT NULL) AS win_cand,
         a.idx AS alloc_key,
         a.cap AS cap
  FROM paths p
  LEFT JOIN {n['agr']} a ON a.idx = (
      SELECT min(x.idx) FROM {n['agr']} x
      WHERE x.destination = p.dest AND p.ship_date BETWEEN x.ws AND x.we)
),"""

    if fw == "tiered":
        alloc = policy.get("allocation", {})
        ws, we = _lit_date(alloc["window_start"]), _lit_date(alloc["window_end"])
        default_cap = _int(alloc["default_cap_tpp"])
        lpp_limit = _int(policy["lpp"]["limit_tpp"])
        flags = f"""
flags AS (
  SELECT b.*,
         coalesce(b.ship_date <= cd.t3_until, false) AS d_t3,
         coalesce(cd.t1, false) AS d_t1,
         coalesce(b.ship_date <= ch.t3_until, false) AS h_t3,
         coalesce(ch.t1, false) AS h_t1
  FROM base b
  LEFT JOIN {n['cc']} cd ON cd.country = b.dest
  LEFT JOIN {n['cc']} ch ON ch.country = b.hq
),
paths0 AS (
  SELECT f.*,
         CAST(CASE WHEN d_t3 THEN 3 WHEN d_t1 THEN 1 ELSE 2 END AS TINYINT) AS tier,
         (controlled AND d_t3) AS c_t3,
         (controlled AND h_t3) AS c_t3hq,
         (p_block OR gp10 OR (controlled AND d_t3) OR (controlled AND h_t3)) AS denied,
         CASE
           WHEN p_block OR gp10 OR (controlled AND d_t3) OR (controlled AND h_t3) THEN 'DENIED'
           WHEN NOT controlled THEN 'NC'
           WHEN d_t1 AND (hq IS NULL OR h_t1) THEN 'T1'
           WHEN veu_id IS NOT NULL THEN 'VEU'
           WHEN license_id IS NOT NULL THEN 'LIC'
           ELSE 'LPP'
         END AS path
  FROM flags f
),{lic_ctes}
lpp AS (
  SELECT p.*,
         CASE WHEN path = 'LPP' THEN
           SUM(tpp) OVER (PARTITION BY path = 'LPP', party_key, year(ship_date) {order})
         END AS lpp_cum
  FROM paths p
),
cand AS (
  SELECT l.*,
         (path = 'LPP' AND lpp_cum > {lpp_limit}) AS lpp_over,
         (path = 'LIC' OR (path = 'LPP' AND lpp_cum > {lpp_limit})) AS alloc_cand,
         ((path = 'LIC' OR (path = 'LPP' AND lpp_cum > {lpp_limit}))
            AND ship_date BETWEEN {ws} AND {we}) AS win_cand,
         dest AS alloc_key,
         coalesce(k.cap, CAST({default_cap} AS BIGINT)) AS cap
  FROM lpp l
  LEFT JOIN {n['caps']} k ON k.country = l.dest
),"""
    elif fw == "country-groups":
        flags = f"""
flags AS (
  SELECT b.*,
         coalesce(b.ship_date <= cd.den_until, false) AS d_den,
         coalesce(b.ship_date <= cd.lic_until, false) AS d_lic,
         coalesce(b.ship_date <= cd.ex_until, false) AS d_ex,
         coalesce(b.ship_date <= ch.den_until, false) AS h_den
  FROM base b
  LEFT JOIN {n['cc']} cd ON cd.country = b.dest
  LEFT JOIN {n['cc']} ch ON ch.country = b.hq
),
paths0 AS (
  SELECT f.*,
         CAST(NULL AS TINYINT) AS tier,
         (controlled AND d_den) AS c_d5,
         (controlled AND h_den) AS c_d5hq,
         (p_block OR gp10 OR (controlled AND d_den) OR (controlled AND h_den)) AS denied,
         CASE
           WHEN p_block OR gp10 OR (controlled AND d_den) OR (controlled AND h_den) THEN 'DENIED'
           WHEN NOT controlled THEN 'NC'
           WHEN d_lic AND NOT d_ex THEN
             CASE WHEN veu_id IS NOT NULL THEN 'VEU'
                  WHEN license_id IS NOT NULL THEN 'LIC'
                  ELSE 'NOLIC' END
           ELSE 'NLR'
         END AS path
  FROM flags f
),""" + lic_ctes + agr_cand
    else:
        flags = _inforce_flags(policy, n) + lic_ctes + agr_cand

    volume = _volume(policy) if inforce else _NO_VOLUME
    tail = f"""
alloc AS (
  SELECT c.*,
         CASE WHEN win_cand THEN
           SUM(tpp) OVER (PARTITION BY win_cand, alloc_key {order})
         END AS country_cum
  FROM cand c
),{volume}
marks AS (
  SELECT a.*,
         coalesce(country_cum > cap, false) AS cap_over,
         -- License needed and missing: tiered no-license allocation candidates within the cap
         -- (or outside the window); country-groups D:1/D:4 rows without license or VEU.
         ((alloc_cand AND path <> 'LIC' AND NOT coalesce(country_cum > cap, false))
           OR path = 'NOLIC') AS lic_req,
         CASE
           WHEN path = 'NC' THEN 'NLR'
           WHEN path = 'NLR' THEN 'NLR'
           WHEN path = 'T1' THEN 'AIA'
           WHEN path = 'VEU' THEN 'VEU'
           WHEN path = 'LPP' AND NOT lpp_over THEN 'LPP'
           WHEN path = 'LIC' AND NOT coalesce(country_cum > cap, false) AND NOT ratio_over
                AND NOT lic_over THEN 'LICENSE'
         END AS auth_base
  FROM ratio a
),
decided AS (
  SELECT m.*,
         CASE
           WHEN denied THEN 'DENIED'
           WHEN p_review THEN 'REVIEW'
           WHEN cap_over OR ratio_over OR lic_over THEN 'CAP_EXCEEDED'
           WHEN lic_req THEN 'LICENSE_REQUIRED'
           WHEN auth_base IN ('AIA', 'VEU', 'LPP', 'LICENSE') THEN 'AUTHORIZED'
           ELSE 'NLR'
         END AS decision
  FROM marks m
)
SELECT shipment_id,
       decision,
       CASE WHEN decision IN ('AUTHORIZED', 'NLR') THEN auth_base END AS "authorization",
       concat_ws(';',
         CASE WHEN p_block THEN 'PARTY:' || plist END,
         CASE WHEN gp10 THEN 'GP10' END,
         {"CASE WHEN c_t3 THEN 'TIER3' END," if fw == "tiered" else ""}
         {"CASE WHEN c_t3hq THEN 'TIER3_HQ' END," if fw == "tiered" else ""}
         {"CASE WHEN c_cnabove THEN 'CN_ABOVE_THRESHOLD' END," if inforce else ""}
         {"CASE WHEN c_reexport THEN 'REEXPORT' END," if inforce else ""}
         {"CASE WHEN c_d5 THEN 'D5' END," if fw != "tiered" else ""}
         {"CASE WHEN c_d5hq THEN 'D5_HQ' END," if fw != "tiered" else ""}
         CASE WHEN p_review THEN 'PARTY_REVIEW:' || plist END,
         CASE WHEN ratio_over THEN 'CN_US_RATIO' END,
         CASE WHEN lic_over THEN 'LICENSE_EXHAUSTED' END,
         CASE WHEN cap_over THEN 'ALLOCATION_EXCEEDED' END,
         CASE WHEN lpp_over THEN 'LPP_EXCEEDED' END,
         CASE WHEN lic_req THEN 'LICENSE_REQUIRED' END,
         lic_code,
         CASE WHEN tier = 2 AND path IN ('VEU', 'LIC', 'LPP') THEN 'TIER2' END,
         {"CASE WHEN path IN ('VEU', 'LIC', 'NOLIC') AND r_cbc THEN 'CN_CASE_BY_CASE' END," if inforce else ""}
         {"CASE WHEN path IN ('VEU', 'LIC', 'NOLIC') AND r_inf THEN 'IS_INFORMED' END," if inforce else ""}
         CASE WHEN path IN ('VEU', 'LIC', 'NOLIC') AND {"r_d14" if inforce else "false" if fw == "tiered" else "true"} THEN 'D1_D4' END,
         CASE WHEN path = 'T1' THEN 'TIER1' END,
         CASE WHEN path = 'VEU' THEN 'VEU' END,
         CASE WHEN path = 'LPP' AND NOT lpp_over THEN 'LPP' END,
         CASE WHEN path = 'LIC' THEN 'LICENSE' END,
         CASE WHEN path = 'NC' THEN 'NOT_CONTROLLED' END,
         CASE WHEN path = 'NLR' THEN 'NO_LICENSE_REQUIREMENT' END,
         CASE WHEN p_before THEN 'PARTY_BEFORE_LISTING:' || plist END
         {", CASE WHEN before_tl THEN 'BEFORE_TIMELINE' END" if inforce else ""}
       ) AS reasons,
       tier,
       tpp,
       CAST(lpp_cum AS BIGINT) AS lpp_cum_tpp,
       CAST(country_cum AS BIGINT) AS country_cum_tpp,
       CAST(cn_cum AS BIGINT) AS cn_volume_cum,
       CAST(us_cum AS BIGINT) AS us_volume_cum,
       CAST(lic_units AS BIGINT) AS license_cum_units,
       CAST(lic_tpp AS BIGINT) AS license_cum_tpp
FROM decided
ORDER BY ship_date, shipment_id"""
    return "WITH " + base + "," + flags + tail


_NO_LICENSES = """
paths AS (
  SELECT p.*,
         CAST(NULL AS VARCHAR) AS lic_code,
         false AS lic_draw,
         CAST(NULL AS HUGEINT) AS lic_units,
         CAST(NULL AS HUGEINT) AS lic_tpp,
         false AS lic_over
  FROM paths0 p
),"""


def _license_ctes(n: dict[str, str], fw: str) -> str:
    """License determination and depletion over ``paths0`` (choices 29-41); defines ``paths``.

    Only rows on the license path (``path = 'LIC'``: not DENIED, no VEU, a license required and a
    ``license_id``) are checked. A row the register does not cover leaves the license path: under
    ``tiered`` it becomes an LPP candidate, elsewhere it needs a license (``NOLIC``).
    """
    if "reg" not in n:
        return _NO_LICENSES
    order = "ORDER BY ship_date, shipment_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    uncovered = "LPP" if fw == "tiered" else "NOLIC"
    return f"""
lreg AS (
  SELECT p.*,
         r.lic_id AS lic_key, r.l_from, r.l_until, r.l_dest, r.l_cid, r.l_cname, r.l_exp,
         r.any_sku, r.max_units, r.max_tpp,
         (s.sku IS NOT NULL) AS l_sku_listed
  FROM paths0 p
  LEFT JOIN {n['reg']} r ON p.path = 'LIC' AND r.lic_id = trim(p.license_id)
  LEFT JOIN {n['lsku']} s ON s.lic_id = r.lic_id AND s.sku = p.sku
),
lscope AS (
  SELECT y.*,
         coalesce(upper(trim(y.dest_raw)) = y.l_dest, false) AS l_dest_ok,
         CASE WHEN y.l_cid IS NOT NULL AND nullif(trim(y.cid_raw), '') IS NOT NULL
                THEN trim(y.cid_raw) = y.l_cid
              WHEN y.l_cname IS NOT NULL THEN coalesce(y.cname_norm = y.l_cname, false)
              WHEN y.l_cid IS NOT NULL THEN false
              ELSE true END AS l_cons_ok,
         (y.l_exp IS NULL OR coalesce(lower(trim(y.exporter_raw)) = y.l_exp, false)) AS l_exp_ok,
         (y.any_sku OR y.l_sku_listed) AS l_sku_ok
  FROM lreg y
),
lchk AS (
  SELECT c.*,
         CASE WHEN c.path <> 'LIC' THEN NULL
              WHEN c.lic_key IS NULL THEN 'LICENSE_UNKNOWN'
              WHEN c.ship_date < c.l_from THEN 'LICENSE_NOT_YET_VALID'
              WHEN c.ship_date > c.l_until THEN 'LICENSE_EXPIRED'
              WHEN NOT (c.l_dest_ok AND c.l_cons_ok AND c.l_exp_ok AND c.l_sku_ok)
                THEN 'LICENSE_OUT_OF_SCOPE'
         END AS lic_code
  FROM lscope c
),
ldraw AS (
  SELECT c.* EXCLUDE (path),
         CASE WHEN c.lic_code IS NOT NULL THEN '{uncovered}' ELSE c.path END AS path,
         (c.path = 'LIC' AND c.lic_code IS NULL) AS lic_draw
  FROM lchk c
),
lsum AS (
  SELECT d.*,
         CASE WHEN lic_draw THEN SUM(qty) OVER (PARTITION BY lic_draw, lic_key {order}) END AS lic_units,
         CASE WHEN lic_draw THEN SUM(tpp) OVER (PARTITION BY lic_draw, lic_key {order}) END AS lic_tpp
  FROM ldraw d
),
paths AS (
  SELECT s.*,
         coalesce(lic_draw AND (lic_units > max_units OR lic_tpp > max_tpp), false) AS lic_over
  FROM lsum s
),"""


# --------------------------------------------------------------------------------------------
# Entry points.
# --------------------------------------------------------------------------------------------
def _register(con, tables: dict[str, pa.Table]) -> dict[str, str]:
    tag = f"_oracle{next(_counter)}"
    names = {}
    for role, table in tables.items():
        name = f"{tag}_{role}"
        con.register(name, table)
        names[role] = name
    return names


def _unregister(con, names: dict[str, str]) -> None:
    for name in names.values():
        try:
            con.unregister(name)
        except Exception:  # pragma: no cover - best effort cleanup
            pass


def _ledger_select(relation: str, columns) -> str:
    present = set(columns)
    missing = [c for c in _OPTIONAL if c not in present]
    extra = "".join(f", CAST(NULL AS VARCHAR) AS {c}" for c in missing)
    return f"(SELECT *{extra} FROM {relation})"


def screen_sql(ledger: pa.Table, policy: dict, catalog: pd.DataFrame, parties: pd.DataFrame,
               con: duckdb.DuckDBPyConnection | None = None, overrides: dict | None = None,
               licenses: pd.DataFrame | None = None) -> pa.Table:
    """Screen an accepted ledger under ``policy`` with DuckDB; see the module docstring.

    Examples
    --------
    >>> import tomllib, datetime as dt, pyarrow as pa, pandas as pd
    >>> from pipeline.reference import load_catalog, POLICY_DIR
    >>> policy = tomllib.loads((POLICY_DIR / "ai-diffusion-2025.toml").read_text())
    >>> ledger = pa.table({"shipment_id": ["s1"], "ship_date": pa.array([dt.date(2025, 3, 1)]),
    ...     "status": ["shipped"], "consignee_id": ["c1"], "consignee_name": ["ACME"],
    ...     "destination_country": ["IN"], "consignee_hq_country": [None], "sku": ["NVIDIA-H100-SXM"],
    ...     "quantity": pa.array([10], pa.int64()), "license_id": [None], "veu_id": [None]})
    >>> parties = pd.DataFrame({"name": ["ACME"], "normalized": ["ACME"], "party_match": [None],
    ...     "party_list": [None], "outcome": [None]})
    >>> screen_sql(ledger, policy, load_catalog(), parties).to_pylist()[0]["reasons"]
    'TIER2;LPP'
    """
    policy = apply_overrides(policy, overrides) if overrides else policy
    own = con is None
    con = duckdb.connect() if own else con
    tables = _reference_tables(policy, catalog, parties)
    if licenses is not None:
        tables.update(_license_tables(licenses, parties))
    tables["ledger"] = ledger
    names = _register(con, tables)
    try:
        led = _ledger_select(names["ledger"], ledger.column_names)
        bad_sku = con.execute(
            f"SELECT count(*) FROM {led} l ANTI JOIN {names['cat']} c ON c.sku = l.sku").fetchall()[0][0]
        if bad_sku:
            raise ValueError(f"{bad_sku} ledger rows have a SKU missing from the catalog")
        bad_party = con.execute(
            f"SELECT count(*) FROM {led} l ANTI JOIN {names['par']} p ON p.name = l.consignee_name"
        ).fetchall()[0][0]
        if bad_party:
            raise ValueError(f"{bad_party} ledger rows have a consignee_name missing from parties")
        out = con.sql(build_query(policy, led, names)).to_arrow_table()
    finally:
        _unregister(con, names)
        if own:
            con.close()
    if isinstance(out, pa.RecordBatchReader):  # pragma: no cover - version differences
        out = out.read_all()
    return out.cast(OUTPUT_SCHEMA)


def screen_sql_parquet(ledger_path, out_path, policy: dict, catalog: pd.DataFrame, parties: pd.DataFrame,
                       con: duckdb.DuckDBPyConnection | None = None, overrides: dict | None = None,
                       licenses: pd.DataFrame | None = None) -> float:
    """Screen a Parquet ledger into a Parquet file entirely inside DuckDB; return elapsed seconds.

    The benchmark peer of the engine: only the tiny reference tables are prepared in Python.
    The elapsed time covers everything from reading the reference tables to the written file.
    Measured on the 2-core dev machine, 2M synthetic rows: ~0.5 M rows/s (two window sorts plus
    the output sort dominate).
    """
    start = time.perf_counter()
    policy = apply_overrides(policy, overrides) if overrides else policy
    own = con is None
    con = duckdb.connect() if own else con
    tables = _reference_tables(policy, catalog, parties)
    if licenses is not None:
        tables.update(_license_tables(licenses, parties))
    names = _register(con, tables)
    try:
        src = "read_parquet(" + _sql_str(str(ledger_path)) + ")"
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
        query = build_query(policy, _ledger_select(src, columns), names)
        con.execute(f"COPY ({query}) TO {_sql_str(str(out_path))} (FORMAT parquet)").fetchall()
    finally:
        _unregister(con, names)
        if own:
            con.close()
    return time.perf_counter() - start


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
