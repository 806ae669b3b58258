"""The peer of the whole-job benchmark: what a data engineer would write in DuckDB, Parquet to Parquet.

An exact join of normalized consignee names (lower case, accents stripped, runs of anything but
letters and digits as one space) against the names and aliases of the screening list's deny
lists; the tier of the destination; both running totals of a tiered rule set (TPP per
consignee and calendar year, then per destination over the allocation window for the rows past
the LPP limit) with window SQL; a decision per row; the result written to Parquet in screening
order. Only the tier lists of the rule set are handed over from Python (a few dozen codes).

It does less than ``chipscreen screen`` (no fuzzy names, quarantine, licenses, VEU, reviews,
report or summary): it is the speed a user could get without the tool, not a second oracle
(:mod:`tests.oracle_sql` is that).
"""
from __future__ import annotations

import time
from pathlib import Path

import duckdb

from pipeline.policy import Policy
from pipeline.reference import CATALOG_PATH, CSL_PATH


def _sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _codes(values) -> str:
    return "[" + ", ".join(_sql_text(v) for v in values) + "]::VARCHAR[]"


def script(ledger: Path, out: Path, policy: Policy, csl: Path = CSL_PATH) -> str:
    """The SQL script (statements separated by ``;``) for a tiered rule set."""
    groups = policy.get("country_groups")
    tier3 = sorted({code for group in policy.get("tiers.tier3_groups") for code in groups[group]})
    tier1 = sorted(policy.get("tiers.tier1"))
    aliases = policy.get("destinations.aliases") or {}
    alias_case = " ".join(f"WHEN {_sql_text(a)} THEN {_sql_text(b)}" for a, b in aliases.items())
    destination = f"CASE destination_country {alias_case} ELSE destination_country END" if alias_case \
        else "destination_country"
    deny = _codes(policy.get("parties.deny_lists"))
    controlled = _codes(policy.get("controls.controlled_classes"))
    limit = int(policy.get("lpp.limit_tpp"))
    cap = int(policy.get("allocation.default_cap_tpp"))
    start, end = policy.get("allocation.window_start"), policy.get("allocation.window_end")
    normalize = "trim(regexp_replace(lower(strip_accents({0})), '[^a-z0-9]+', ' ', 'g'))"
    return f"""
CREATE TEMP TABLE deny AS
WITH csl AS (
  SELECT regexp_extract(source, '\\(([A-Z-]+)\\)', 1) AS list, name, alt_names
  FROM read_csv({_sql_text(csl)}, all_varchar = true)
), names AS (
  SELECT list, name AS text FROM csl
  UNION ALL
  SELECT list, trim(unnest(string_split(alt_names, ';'))) FROM csl WHERE alt_names IS NOT NULL
)
SELECT {normalize.format('text')} AS normalized, min(list) AS list
FROM names WHERE list IN (SELECT unnest({deny})) AND text <> '' GROUP BY 1;

CREATE TEMP TABLE chips AS
SELECT sku, CAST(unit_tpp AS BIGINT) AS unit_tpp, eccn IN (SELECT unnest({controlled})) AS controlled
FROM read_csv({_sql_text(CATALOG_PATH)}, comment = '#', header = true, all_varchar = true);

COPY (
WITH ledger AS (
  SELECT shipment_id, ship_date, destination_country, {destination} AS destination,
         consignee_name, {normalize.format('consignee_name')} AS normalized, sku, quantity
  FROM read_parquet({_sql_text(ledger)})
), rows AS (
  SELECT l.*, l.quantity * c.unit_tpp AS tpp, coalesce(c.controlled, false) AS controlled, d.list AS party_list,
         CASE WHEN l.destination IN (SELECT unnest({_codes(tier3)})) THEN 3
              WHEN l.destination IN (SELECT unnest({_codes(tier1)})) THEN 1 ELSE 2 END AS tier
  FROM ledger l LEFT JOIN chips c USING (sku) LEFT JOIN deny d USING (normalized)
), lpp AS (
  SELECT *, CASE WHEN tier = 2 AND controlled AND party_list IS NULL THEN
              sum(tpp) OVER (PARTITION BY consignee_name, year(ship_date), tier = 2 AND controlled
                             AND party_list IS NULL
                             ORDER BY ship_date, shipment_id ROWS UNBOUNDED PRECEDING) END AS lpp_cum_tpp
  FROM rows
), allocation AS (
  SELECT *, CASE WHEN lpp_cum_tpp > {limit} AND ship_date BETWEEN DATE '{start}' AND DATE '{end}' THEN
              sum(tpp) OVER (PARTITION BY destination, lpp_cum_tpp > {limit}
                             AND ship_date BETWEEN DATE '{start}' AND DATE '{end}'
                             ORDER BY ship_date, shipment_id ROWS UNBOUNDED PRECEDING) END AS country_cum_tpp
  FROM lpp
)
SELECT shipment_id, ship_date, destination_country, sku, quantity, tpp, tier, party_list,
       lpp_cum_tpp, country_cum_tpp,
       CASE WHEN party_list IS NOT NULL THEN 'DENIED'
            WHEN NOT controlled OR tier = 1 THEN 'AUTHORIZED'
            WHEN tier = 3 THEN 'DENIED'
            WHEN lpp_cum_tpp <= {limit} THEN 'AUTHORIZED'
            WHEN country_cum_tpp <= {cap} THEN 'AUTHORIZED'
            ELSE 'LICENSE_REQUIRED' END AS decision
FROM allocation ORDER BY ship_date, shipment_id
) TO {_sql_text(out)} (FORMAT parquet)
"""


def run_script(ledger: Path, out: Path, policy: Policy, csl: Path = CSL_PATH) -> float:
    """Run :func:`script` in a fresh DuckDB connection (all cores); return the elapsed seconds."""
    start = time.perf_counter()
    with duckdb.connect() as con:
        for statement in script(ledger, out, policy, csl).split(";\n"):
            if statement.strip():
                con.execute(statement)
    return time.perf_counter() - start
