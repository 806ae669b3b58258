"""Per-row features for the decision step: dictionary codes and gathers, no row-wise Python.

Small reference tables (catalog, countries, party results) are joined to the ledger through
dictionary codes: each distinct value is looked up once, and rows gather from the result.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kernels.amounts import AmountOverflowError, row_amounts
from pipeline.policy import Policy
from pipeline.reference import load_catalog, load_countries

EPOCH = dt.date(1970, 1, 1)
PARTY_NONE, PARTY_REVIEW, PARTY_BLOCK, PARTY_CLEARED = 0, 1, 2, 3


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01, the integer form of dates in every array here."""
    return (day - EPOCH).days


def codes_and_values(column: pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """Dictionary codes (int32, ``-1`` for null) and distinct values of a text column.

    Examples
    --------
    >>> import pyarrow as pa
    >>> codes, values = codes_and_values(pa.chunked_array([["b", None, "a", "b"]]))
    >>> codes.tolist(), values
    ([0, -1, 1, 0], ['b', 'a'])
    """
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return np.zeros(0, np.int32), []
    values = column.chunk(0).dictionary.to_pylist()
    indices = pa.chunked_array([chunk.indices for chunk in column.chunks], type=column.type.index_type)
    codes = pc.fill_null(indices, -1).to_numpy().astype(np.int32, copy=False)
    return codes, values


@dataclass
class CountryTable:
    """Country codes as dense integers, with the policy's destination aliases applied."""

    codes: list[str]

    @classmethod
    def load(cls) -> "CountryTable":
        return cls(codes=list(load_countries()["alpha2"]))

    def gather(self, codes: np.ndarray, values: list, aliases: dict[str, str]) -> np.ndarray:
        """Dense country index per row (alias target first); ``-1`` where the row has no value.

        ``values`` may hold codes no row uses (the dictionary of rejected rows); a row that
        uses an unknown code is a bug upstream and raises.
        """
        position = {code: i for i, code in enumerate(self.codes)}
        lookup = np.array([position.get(aliases.get(v, v), -2) if v is not None else -1 for v in values] + [-1],
                          dtype=np.int32)
        out = lookup[codes]
        if (out == -2).any():
            raise ValueError("a validated row carries an unknown country code")
        return out


@dataclass
class Features:
    """Per-row inputs of the decision step, aligned with the ledger rows, plus the small tables
    their codes point into.

    Attributes
    ----------
    day : ndarray of int32
        Ship date as days since 1970-01-01.
    year : ndarray of int32
        Calendar year of the ship date.
    tpp : ndarray of int64
        Unit TPP x quantity, exact.
    sku : ndarray of int32
        SKU code per row; ``sku_controlled`` and ``sku_gp10`` (bool per code) say whether the
        part is in the policy's controlled classes and whether it is a GP10 (Huawei Ascend) part.
    destination, headquarters : ndarray of int32
        Country index (aliases applied) of destination and consignee HQ (``-1`` when absent).
    has_license, has_veu : ndarray of bool
    party : ndarray of int32
        Party-result class per row; ``party_outcome`` (0 none, 1 review, 2 block) and
        ``party_list`` (list code or None) per class.
    party_row : ndarray of int32
        Row of the party result table (``parties``) for the consignee name.
    party_key : ndarray of int64
        Dense per-consignee key: ``consignee_id`` if present, else normalized name + destination.
    n_party_keys : int
    party_key_values : numpy.ndarray of object, shape (n_party_keys,)
        Stable text of each key (``id:<consignee_id>`` or ``name:<normalized>@<destination>``):
        what carried-in totals are matched on across chunks, partitions and nights.
    """

    day: np.ndarray
    year: np.ndarray
    tpp: np.ndarray
    sku: np.ndarray
    sku_controlled: np.ndarray
    sku_gp10: np.ndarray
    destination: np.ndarray
    headquarters: np.ndarray
    has_license: np.ndarray
    has_veu: np.ndarray
    party: np.ndarray
    party_outcome: np.ndarray
    party_list: list
    party_row: np.ndarray
    party_key: np.ndarray
    n_party_keys: int
    party_key_values: np.ndarray
    countries: CountryTable
    parties: pd.DataFrame


def present(column: pa.ChunkedArray) -> np.ndarray:
    """Rows where an optional text column has a value."""
    if column.null_count == 0:
        return np.ones(len(column), dtype=bool)
    return pc.is_valid(column).to_numpy(zero_copy_only=False)


def build_features(rows: pa.Table, policy: Policy, parties: pd.DataFrame | Callable[[], pd.DataFrame],
                   name_codes: np.ndarray) -> Features:
    """Join ledger rows to the catalog, countries and party results.

    Parameters
    ----------
    rows : pyarrow.Table
        Accepted ledger rows in screening order (see :mod:`pipeline.ingest`).
    policy : Policy
    parties : pandas.DataFrame or callable
        One row per distinct consignee name (``normalized``, ``outcome``, ...), in the order of
        the consignee-name dictionary codes; or a callable returning it (e.g. a future's
        ``result``), called only once the row-only features are done.
    name_codes : ndarray of int32
        Consignee-name code per row.

    Returns
    -------
    Features
    """
    days = pc.cast(rows.column("ship_date"), pa.int32()).to_numpy().astype(np.int32, copy=False)
    first_day = int(days.min()) if len(days) else 0
    span = np.arange(first_day, int(days.max()) + 1 if len(days) else 0, dtype=np.int64)
    year_of_day = (span.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int32) + 1970).astype(np.int32)
    years = year_of_day[days - first_day]

    catalog = load_catalog()
    sku_codes, sku_values = codes_and_values(rows.column("sku"))
    # The dictionary may hold SKUs of rejected rows: they get zeros, and no accepted row uses them.
    by_sku = catalog.set_index("sku").reindex(sku_values)
    classes = set(policy.get("controls.controlled_classes"))
    sku_controlled = by_sku["eccn"].isin(classes).to_numpy()
    sku_gp10 = by_sku["gp10"].fillna(False).to_numpy(bool)
    quantity = rows.column("quantity").to_numpy().astype(np.int64, copy=False)
    sku_tpp = np.append(by_sku["unit_tpp"].fillna(0).to_numpy(np.int64), 0)

    countries = CountryTable.load()
    aliases = policy.get("destinations.aliases")
    dest_codes, dest_values = codes_and_values(rows.column("destination_country"))
    hq_codes, hq_values = codes_and_values(rows.column("consignee_hq_country"))

    destination = countries.gather(dest_codes, dest_values, aliases)
    headquarters = countries.gather(hq_codes, hq_values, aliases)
    try:
        tpp = row_amounts(sku_tpp, sku_codes, quantity)
    except AmountOverflowError as error:
        if error.row is None or "shipment_id" not in rows.column_names:
            raise
        shipment = rows.column("shipment_id")[error.row].as_py()
        raise AmountOverflowError(f"shipment_id {shipment!r}: unit TPP {int(sku_tpp[sku_codes[error.row]])} x "
                                  f"quantity {int(quantity[error.row])} exceeds int64", row=error.row) from None
    has_license, has_veu = present(rows.column("license_id")), present(rows.column("veu_id"))
    id_codes, id_values = codes_and_values(rows.column("consignee_id"))

    # Party results come in few classes (outcome, list): rows carry a class code.
    if callable(parties):
        parties = parties()
    outcome = parties["outcome"].map({"block": PARTY_BLOCK, "review": PARTY_REVIEW,
                                      "cleared": PARTY_CLEARED}).fillna(PARTY_NONE)
    list_codes, list_names = pd.factorize(parties["party_list"], use_na_sentinel=True)
    pairs = outcome.to_numpy(np.int64) * (len(list_names) + 1) + (list_codes + 1)
    classes_of_name, class_pairs = pd.factorize(pairs)
    party_outcome = (np.asarray(class_pairs) // (len(list_names) + 1)).astype(np.int8)
    party_list = [list_names[i - 1] if i else None for i in (np.asarray(class_pairs) % (len(list_names) + 1)).tolist()]

    norm_codes_of_name, normalized_names = pd.factorize(parties["normalized"], use_na_sentinel=False)
    norm_codes = norm_codes_of_name.astype(np.int64)[name_codes]
    by_name = (norm_codes * (len(dest_values) + 1) + dest_codes)[id_codes < 0]
    named_keys, named = pd.factorize(by_name)
    party_key = id_codes.astype(np.int64)
    party_key[id_codes < 0] = len(id_values) + named_keys
    n_party_keys = len(id_values) + len(named)
    norm_of, dest_of = np.divmod(np.asarray(named, dtype=np.int64), len(dest_values) + 1)
    normalized_names = np.asarray(normalized_names, dtype=object)
    dest_texts = np.array(list(dest_values) + [None], dtype=object)
    party_key_values = np.concatenate([
        np.array([f"id:{v}" for v in id_values], dtype=object),
        np.array([f"name:{n}@{d}" for n, d in zip(normalized_names[norm_of], dest_texts[dest_of])], dtype=object),
    ])

    return Features(
        day=days, year=years, tpp=tpp, sku=sku_codes, sku_controlled=sku_controlled, sku_gp10=sku_gp10,
        destination=destination, headquarters=headquarters, has_license=has_license, has_veu=has_veu,
        party=classes_of_name.astype(np.int32)[name_codes], party_outcome=party_outcome, party_list=party_list,
        party_row=name_codes, party_key=party_key, n_party_keys=n_party_keys,
        party_key_values=party_key_values, countries=countries, parties=parties,
    )


def membership(features, policy: Policy, groups: list[str], which: str = "destination") -> np.ndarray:
    """Per row (or profile): is the destination (or HQ) in any of ``groups`` on the ship date?

    ``features`` is anything with ``destination``, ``headquarters``, ``day`` and ``countries``.

    ``groups`` may name country groups of the policy or list ISO codes directly; dated
    memberships (``country_groups.dated``) count only on ship dates up to their ``until``.
    """
    codes = getattr(features, which)
    table = np.zeros(len(features.countries.codes) + 1, dtype=bool)  # last slot: absent (-1)
    position = {code: i for i, code in enumerate(features.countries.codes)}
    dated = []
    for group in groups:
        members = policy.group_members(group) if group in policy.params["country_groups"] else [group]
        table[[position[c] for c in members]] = True
        dated += policy.dated_members(group) if group in policy.params["country_groups"] else []
    hit = table[codes]
    for country, until in dated:
        hit |= (codes == position[country]) & (features.day <= day_number(until))
    return hit
