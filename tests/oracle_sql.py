"""Independent DuckDB-SQL oracle for the screening semantics (DESIGN §4).

This module is the *second implementation* that the engine (``pipeline/``, ``kernels/``) is
differentially tested and benchmarked against. It is written from the specification only: it
shares no code with the engine. Small reference tables (catalog, country-group membership, caps,
agreements, party results) are prepared in Python; every per-row step (joins, tiers, running
totals, cap checks, decisions, reason codes) runs in DuckDB SQL.

API
---
``screen_sql(ledger, policy, catalog, parties, con=None) -> pyarrow.Table``
    One row per ledger row, sorted by ``(ship_date, shipment_id)``: ``shipment_id``,
    ``decision``, ``authorization``, ``reasons``, ``tier`` (int8, null for non-tiered rule sets),
    ``tpp`` (int64), ``lpp_cum_tpp`` (int64 or null), ``country_cum_tpp`` (int64 or null).
``screen_sql_parquet(ledger_path, out_path, policy, catalog, parties, con=None) -> float``
    The same from a Parquet file to a Parquet file, entirely inside DuckDB; returns seconds.

``parties`` has one row per consignee name (``name``, ``normalized``, ``party_list``,
``outcome``); with a ``destination`` column, one per (name, destination), matched to the rows
with that destination (a rule set whose party scores depend on the destination country).

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
"""
from __future__ import annotations

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

__all__ = ["screen_sql", "screen_sql_parquet", "build_query"]

_MAX_DATE = _dt.date(9999, 12, 31)
_OPTIONAL = ("consignee_id", "consignee_hq_country", "license_id", "veu_id")
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
    if fw not in ("tiered", "country-groups"):
        raise ValueError(f"unknown framework {fw!r}")
    return fw


def _reference_tables(policy: dict, catalog: pd.DataFrame, parties: pd.DataFrame) -> dict[str, pa.Table]:
    fw = _framework(policy)
    controls = policy.get("controls", {})
    classes = set(controls.get("controlled_classes", []))
    gp10_on = bool(controls.get("gp10_denied", False))
    cat = pa.table(
        {
            "sku": pa.array([str(s) for s in catalog["sku"]], pa.string()),
            "unit_tpp": pa.array([_int(v) for v in catalog["unit_tpp"]], pa.int64()),
            "controlled": pa.array([str(e) in classes for e in catalog["eccn"]], pa.bool_()),
            "gp10": pa.array([gp10_on and bool(g) for g in catalog["gp10"]], pa.bool_()),
        }
    )

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
    par = pa.table(cols)
    return {"cat": cat, "alias": alias, "cc": cc, "caps": capt, "agr": agr, "par": par}


# --------------------------------------------------------------------------------------------
# The query.
# --------------------------------------------------------------------------------------------
def _lit_date(d) -> str:
    return f"DATE '{_date(d).isoformat()}'"


def build_query(policy: dict, ledger_sql: str, names: dict[str, str]) -> str:
    """SQL for the screening of ``ledger_sql`` (a relation) under ``policy``.

    ``names`` maps the reference roles (cat, alias, cc, caps, agr, par) to registered relations.
    """
    fw = _framework(policy)
    n = names
    order = "ORDER BY ship_date, shipment_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"

    base = f"""
base AS (
  SELECT l.shipment_id, l.ship_date,
         l.destination_country AS dest_raw,
         coalesce(a1.dst, l.destination_country) AS dest,
         coalesce(a2.dst, l.consignee_hq_country) AS hq,
         l.license_id, l.veu_id,
         CAST(c.unit_tpp AS BIGINT) * CAST(l.quantity AS BIGINT) AS tpp,
         coalesce(c.controlled, false) AS controlled,
         coalesce(c.gp10, false) AS gp10,
         coalesce(p.outcome = 'block', false) AS p_block,
         coalesce(p.outcome = 'review', false) AS p_review,
         coalesce(p.party_list, '') AS plist,
         coalesce(l.consignee_id, p.normalized || '|' || l.destination_country) AS party_key
  FROM {ledger_sql} l
  JOIN {n['cat']} c ON c.sku = l.sku
  LEFT JOIN {n['alias']} a1 ON a1.src = l.destination_country
  LEFT JOIN {n['alias']} a2 ON a2.src = l.consignee_hq_country
  LEFT JOIN {n['par']} p ON p.name = l.consignee_name
    AND (p.destination IS NULL OR p.destination = l.destination_country)
)"""

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
paths AS (
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
),
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
    else:
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
paths AS (
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
),
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

    tail = f"""
alloc AS (
  SELECT c.*,
         CASE WHEN win_cand THEN
           SUM(tpp) OVER (PARTITION BY win_cand, alloc_key {order})
         END AS country_cum
  FROM cand c
),
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
           WHEN path = 'LIC' AND NOT coalesce(country_cum > cap, false) THEN 'LICENSE'
         END AS auth_base
  FROM alloc a
),
decided AS (
  SELECT m.*,
         CASE
           WHEN denied THEN 'DENIED'
           WHEN p_review THEN 'REVIEW'
           WHEN cap_over THEN 'CAP_EXCEEDED'
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
         {"CASE WHEN c_d5 THEN 'D5' END," if fw != "tiered" else ""}
         {"CASE WHEN c_d5hq THEN 'D5_HQ' END," if fw != "tiered" else ""}
         CASE WHEN p_review THEN 'PARTY_REVIEW:' || plist END,
         CASE WHEN cap_over THEN 'ALLOCATION_EXCEEDED' END,
         CASE WHEN lpp_over THEN 'LPP_EXCEEDED' END,
         CASE WHEN lic_req THEN 'LICENSE_REQUIRED' END,
         CASE WHEN tier = 2 AND path IN ('VEU', 'LIC', 'LPP') THEN 'TIER2' END,
         CASE WHEN path IN ('VEU', 'LIC', 'NOLIC') AND {"false" if fw == "tiered" else "true"} THEN 'D1_D4' END,
         CASE WHEN path = 'T1' THEN 'TIER1' END,
         CASE WHEN path = 'VEU' THEN 'VEU' END,
         CASE WHEN path = 'LPP' AND NOT lpp_over THEN 'LPP' END,
         CASE WHEN path = 'LIC' THEN 'LICENSE' END,
         CASE WHEN path = 'NC' THEN 'NOT_CONTROLLED' END,
         CASE WHEN path = 'NLR' THEN 'NO_LICENSE_REQUIREMENT' END
       ) AS reasons,
       tier,
       tpp,
       CAST(lpp_cum AS BIGINT) AS lpp_cum_tpp,
       CAST(country_cum AS BIGINT) AS country_cum_tpp
FROM decided
ORDER BY ship_date, shipment_id"""
    return "WITH " + base + "," + flags + tail


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
               con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
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
    own = con is None
    con = duckdb.connect() if own else con
    tables = _reference_tables(policy, catalog, parties)
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
                       con: duckdb.DuckDBPyConnection | None = None) -> float:
    """Screen a Parquet ledger into a Parquet file entirely inside DuckDB; return elapsed seconds.

    The benchmark peer of the engine: only the tiny reference tables are prepared in Python.
    The elapsed time covers everything from reading the reference tables to the written file.
    Measured on the 2-core dev machine, 2M synthetic rows: ~0.5 M rows/s (two window sorts plus
    the output sort dominate).
    """
    start = time.perf_counter()
    own = con is None
    con = duckdb.connect() if own else con
    names = _register(con, _reference_tables(policy, catalog, parties))
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
