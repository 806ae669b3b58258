"""Screening the rows of one piece: parties → enrich → kernels → decide, from a carry-in.

Every scan (:mod:`pipeline.run.scan`) screens its pieces with :func:`screen_rows`; the decisions
table of DESIGN §3 is assembled here too.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from kernels import TotalsOverflowError
from kernels.backend import Backend
from pipeline.carry import Carry
from pipeline.decide import AUTHORIZATIONS, DECISIONS, Decisions, decide
from pipeline.ownership.affiliates import affiliates_for
from pipeline.enrich import optional_column
from pipeline.enrich import Features, build_features, codes_and_values
from pipeline.parties import PartyScreen
from pipeline.policy import Policy
from pipeline.run.cache import PartyResultCache
from pipeline.run.timings import Timings


def _labels(codes: np.ndarray, names: Sequence[str | None]) -> pa.DictionaryArray:
    present = [n for n in names if n is not None]
    shift = len(names) - len(present)  # a leading None means "no value" (code 0)
    indices = pa.array(codes.astype(np.int32) - shift, mask=codes < shift)
    return pa.DictionaryArray.from_arrays(indices, pa.array(present, pa.string()))


def _per_name(values: pd.Series, name_codes: np.ndarray) -> pa.DictionaryArray:
    """Gather a per-name value to rows as a dictionary column (null where the name has none)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    per_row = codes.astype(np.int32)[name_codes]
    return pa.DictionaryArray.from_arrays(pa.array(per_row, mask=per_row < 0),
                                          pa.array(list(uniques), pa.string()))


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.int64(), mask=values < 0)


def decisions_table(rows: pa.Table, policy: Policy, result: Decisions, parties: pd.DataFrame,
                    name_codes: np.ndarray, tpp: np.ndarray) -> pa.Table:
    """Assemble ``decisions.parquet`` with the DESIGN §3 columns (join to the ledger on ``shipment_id``),
    plus the China volume totals (``cn_volume_cum``, ``us_volume_cum``; null where the row does not
    enter them) and the matched entry's listing date (``party_listed_on``)."""
    n = rows.num_rows
    party_list = _per_name(parties["party_list"], name_codes)
    match = _per_name(parties["party_match"], name_codes)
    score = parties["party_score"].to_numpy(np.float64)[name_codes]
    tier = (pa.array(result.tier, type=pa.int8()) if result.tier is not None else pa.nulls(n, pa.int8()))
    return pa.table({
        "shipment_id": rows.column("shipment_id"),
        "status": rows.column("status"),
        "ship_date": rows.column("ship_date"),
        "destination_country": rows.column("destination_country"),
        "policy_id": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([policy.id])),
        "decision": _labels(result.decision, DECISIONS),
        "authorization": _labels(result.authorization, AUTHORIZATIONS),
        "reasons": pa.DictionaryArray.from_arrays(pa.array(result.reasons), pa.array(result.reason_labels, pa.string())),
        "tier": tier,
        "sku": rows.column("sku"),
        "exporter": optional_column(rows, "exporter"),
        "quantity": rows.column("quantity"),
        "tpp": pa.array(tpp, pa.int64()),
        "lpp_cum_tpp": _nullable(result.lpp_cum_tpp),
        "country_cum_tpp": _nullable(result.country_cum_tpp),
        "cn_volume_cum": _nullable(result.cn_volume_cum),
        "us_volume_cum": _nullable(result.us_volume_cum),
        "license_cum_units": _nullable(result.license_cum_units),
        "license_cum_tpp": _nullable(result.license_cum_tpp),
        "party_match": match,
        "party_list": party_list,
        "party_score": pa.array(score, pa.float64(), mask=np.isnan(score)),
        "party_listed_on": (_per_name(parties["party_listed_on"], name_codes) if "party_listed_on" in parties.columns
                            else pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string()))),
    })


@dataclass
class ScreenedRows:
    """Rows screened in one process: their features, decisions and party results.

    Attributes
    ----------
    rows : pyarrow.Table
    features : Features
    result : Decisions
    name_codes : ndarray of int32
        Consignee code per row (into ``features.parties``).
    affiliates : pipeline.ownership.affiliates.AffiliateWindows or None
        The ownership graph's affiliates (with an ownership file).
    """

    rows: pa.Table
    features: Features
    result: Decisions
    name_codes: np.ndarray
    affiliates: object = None

    def decisions_table(self, policy: Policy) -> pa.Table:
        """The rows' ``decisions.parquet`` content."""
        return decisions_table(self.rows, policy, self.result, self.features.parties, self.name_codes,
                               self.features.tpp)


def consignees(rows: pa.Table, policy: Policy) -> tuple[np.ndarray, list, list | None]:
    """The distinct consignees party screening sees, and each row's code among them.

    A consignee is its name; when the rule set moves fuzzy scores by country
    (``parties.country_bonus`` / ``country_penalty``), it is the name with the row's destination,
    so a row's party result never depends on which other rows are screened with it.

    Returns
    -------
    codes : ndarray of int32
        Consignee code per row.
    names : list of str or None
    countries : list of str, or None when countries do not move scores
    """
    name_codes, names = codes_and_values(rows.column("consignee_name"))
    settings = policy.get("parties")
    if not (settings.get("country_bonus") or settings.get("country_penalty")):
        return name_codes, list(names), None
    dest_codes, destinations = codes_and_values(rows.column("destination_country"))
    width = len(destinations) + 1  # code -1: no destination
    pair_codes, pairs = pd.factorize(name_codes.astype(np.int64) * width + (dest_codes.astype(np.int64) + 1))
    name_of, dest_of = np.divmod(np.asarray(pairs, dtype=np.int64), width)
    names_array = np.asarray(list(names), dtype=object)
    dest_array = np.asarray([None] + list(destinations), dtype=object)
    return pair_codes.astype(np.int32), names_array[name_of].tolist(), dest_array[dest_of].tolist()


def screen_rows(rows: pa.Table, policy: Policy, screen: PartyScreen, backend: Backend, *, carry: Carry | None = None,
                cache: PartyResultCache | None = None, timer: Timings | None = None) -> ScreenedRows:
    """Screen validated rows (a whole ledger, or one piece of it after ``carry``).

    Parameters
    ----------
    rows : pyarrow.Table
        Rows in screening order, as in :attr:`pipeline.ingest.Ledger.rows`.
    policy : Policy
    screen : PartyScreen
        The run's screening list.
    backend : Backend
        Where the accumulators and the fuzzy party scoring run.
    carry : Carry, optional
        Totals of the rows screened before these.
    cache : PartyResultCache, optional
        The run's party results: consignees screened before are not screened again (the results
        then carry no per-name candidate lists). Without one, every consignee is screened.
    timer : Timings, optional
        Stage timer of the run.

    Returns
    -------
    ScreenedRows

    Raises
    ------
    kernels.TotalsOverflowError
        A running total overflows int64 (the message names the shipment).
    """
    timer = timer or Timings()
    with timer.stage("parties_and_enrich"):
        name_codes, names, countries = consignees(rows, policy)
        affiliates = affiliates_for(policy, screen, backend)
        # Party screening (Python) runs in a thread while the row features (NumPy, Arrow) are built.
        def parties() -> pd.DataFrame:
            start = time.perf_counter()
            found = (cache.screened(screen, names, policy, backend, countries) if cache is not None
                     else screen.screen_policy(names, policy, backend=backend, countries=countries))
            timer.timings["parties_and_enrich.parties"] = round(time.perf_counter() - start, 4)
            return found

        with ThreadPoolExecutor(max_workers=1) as helper:
            pending = helper.submit(parties)
            features = build_features(rows, policy, pending.result, name_codes, affiliates)
    with timer.stage("decide"):
        try:
            result = decide(features, policy, carry, backend=backend)
        except TotalsOverflowError as error:
            if error.row is None:
                raise
            shipment = rows.column("shipment_id")[error.row].as_py()
            raise TotalsOverflowError(f"running total overflows int64 at shipment {shipment!r} (row {error.row} "
                                      "of this piece in screening order)", row=error.row) from None
    return ScreenedRows(rows, features, result, name_codes, affiliates)
