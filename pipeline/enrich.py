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
LICENSE_STATUSES = ("NONE", "COVERED", "LICENSE_UNKNOWN", "LICENSE_NOT_YET_VALID", "LICENSE_EXPIRED",
                    "LICENSE_OUT_OF_SCOPE")
"""What a row's ``license_id`` is worth (index = code): none given; covered (without a register,
any id); not covered, and why (the reason code)."""
LICENSE_NONE, LICENSE_COVERED = 0, 1
NO_LISTING_DATE = np.iinfo(np.int32).min
"""Day number of a party entry without a listing date: its hit counts on every ship date."""
PARTY_NONE, PARTY_REVIEW, PARTY_BLOCK, PARTY_CLEARED = 0, 1, 2, 3


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01, the integer form of dates in every array here."""
    return (day - EPOCH).days


def codes_and_values(column: pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """Dictionary codes (int32, ``-1`` for null) and the distinct values the rows use, of a text column.

    Examples
    --------
    >>> import pyarrow as pa
    >>> codes, values = codes_and_values(pa.chunked_array([["b", None, "a", "b"]]))
    >>> codes.tolist(), values
    ([0, -1, 1, 0], ['b', 'a'])
    """
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.num_chunks == 0:
        return np.zeros(0, np.int32), []
    first = column.chunk(0).dictionary
    if any(not chunk.dictionary.equals(first) for chunk in column.chunks[1:]):
        column = column.unify_dictionaries()
    dictionary = column.chunk(0).dictionary
    indices = pa.chunked_array([chunk.indices for chunk in column.chunks], type=column.type.index_type)
    codes = pc.fill_null(indices, -1).to_numpy().astype(np.int32, copy=False)
    used = np.zeros(len(dictionary) + 1, bool)  # last slot: null
    used[codes] = True
    used = used[:-1]
    if used.all():
        return codes, dictionary.to_pylist()
    # A piece of a ledger shares the whole ledger's dictionary: keep only the values its rows use.
    renumber = np.append(np.cumsum(used) - 1, -1).astype(np.int32)
    return renumber[codes], dictionary.filter(pa.array(used)).to_pylist()


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
        ``has_license``: the line carries a license that covers it (see ``license_status``).
    license_status : ndarray of int8
        Index into :data:`LICENSE_STATUSES`.
    license : ndarray of int64
        The covering license's row in the register (``-1``: none, or no register);
        ``license_key_values`` its ``license_id`` per register row.
    units : ndarray of int64
        Quantity per row.
    sku_unit_tpp, sku_memory_bandwidth, sku_io_bandwidth : ndarray of int64
        Per SKU code: unit TPP, total DRAM and I/O bandwidth in GB/s (catalog, with the rule set's
        ``catalog.*`` overrides applied).
    parent : ndarray of int32
        Country index of ``ultimate_parent_hq_country`` (aliases applied; ``-1`` when absent).
    export : ndarray of int32
        Country index of ``export_country`` (``-1`` when absent or empty: the United States).
    party : ndarray of int32
        Party-result class per row; ``party_outcome`` (0 none, 1 review, 2 block) and
        ``party_list`` (list code or None) per class.
    affiliate : ndarray of int32
        Affiliate class per row (the Affiliates rule, with an ownership file); per class
        ``affiliate_status`` (0 none, 1 affiliate, 2 minority holding) and ``affiliate_list``
        (the owners' lists, ``+``-joined, or None). ``affiliate_entity`` and ``affiliate_window``:
        the row's entity in the graph (``-1``: none) and date window (evidence).
    before_listing : ndarray of bool
        The row's party hit comes from an entry listed after its ship date (rule sets with
        ``parties.listing_dates``): the hit does not count.
    party_row : ndarray of int32
        Row of the party result table (``parties``) for the consignee name.
    party_key : ndarray of int64
        Dense per-consignee key: ``consignee_id`` if present, else normalized name + destination.
    n_party_keys : int
    party_key_values : numpy.ndarray of object, shape (n_party_keys,)
        Stable text of each key (``id:<consignee_id>`` or ``name:<normalized>@<destination>``):
        what carried-in totals are matched on across chunks, partitions and nights.
    volume_key : ndarray of int64
        Dense per-(SKU, exporter) key of the China volume condition; ``volume_key_values`` its
        stable text ``<sku>|<exporter>`` (an empty or absent exporter is ``""``).
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
    license_status: np.ndarray
    license: np.ndarray
    license_key_values: np.ndarray
    units: np.ndarray
    sku_unit_tpp: np.ndarray
    sku_memory_bandwidth: np.ndarray
    sku_io_bandwidth: np.ndarray
    parent: np.ndarray
    export: np.ndarray
    party: np.ndarray
    party_outcome: np.ndarray
    party_list: list
    party_row: np.ndarray
    party_key: np.ndarray
    n_party_keys: int
    party_key_values: np.ndarray
    volume_key: np.ndarray
    volume_key_values: np.ndarray
    affiliate: np.ndarray
    affiliate_status: np.ndarray
    affiliate_list: list
    affiliate_entity: np.ndarray
    affiliate_window: np.ndarray
    before_listing: np.ndarray
    countries: CountryTable
    parties: pd.DataFrame


def present(column: pa.ChunkedArray) -> np.ndarray:
    """Rows where an optional text column has a value."""
    if column.null_count == 0:
        return np.ones(len(column), dtype=bool)
    return pc.is_valid(column).to_numpy(zero_copy_only=False)


def optional_column(rows: pa.Table, name: str) -> pa.ChunkedArray:
    """A text column of ``rows``, or an all-null one where the table lacks it (older ledgers)."""
    if name in rows.column_names:
        return rows.column(name)
    return pa.chunked_array([pa.nulls(rows.num_rows, pa.string())])


def catalog_values(by_sku: pd.DataFrame, column: str, policy: Policy) -> np.ndarray:
    """Per-SKU int64 values of a catalog column, with the rule set's ``catalog.<column>`` overrides."""
    values = by_sku[column] if column in by_sku.columns else pd.Series(0, index=by_sku.index)
    overrides = policy.params.get("catalog", {}).get(column, {})
    if overrides:
        values = values.copy()
        for sku, value in overrides.items():
            if sku in values.index:
                values[sku] = value
    return np.append(values.fillna(0).to_numpy(np.int64), 0)


def listed_days(parties: pd.DataFrame) -> np.ndarray:
    """Listing date of each party result's entry as a day number (:data:`NO_LISTING_DATE` when none)."""
    if "party_listed_on" not in parties.columns:
        return np.full(len(parties), NO_LISTING_DATE, dtype=np.int64)
    dates = pd.to_datetime(parties["party_listed_on"], format="%Y-%m-%d", errors="coerce")
    days = (dates - pd.Timestamp(EPOCH)).dt.days
    return days.fillna(NO_LISTING_DATE).to_numpy(np.int64)


def _folded_codes(values: list, codes: np.ndarray, fold) -> tuple[np.ndarray, list]:
    """Codes of ``fold(value)`` per row (``-1`` where the row has no value or it folds to nothing),
    and the distinct folded values: rows whose values differ only in what ``fold`` drops share a code."""
    folded = [fold(v) if isinstance(v, str) else None for v in values]
    folded = [v if v else None for v in folded]
    group, distinct = pd.factorize(pd.Series(folded, dtype=object), use_na_sentinel=True)
    return np.append(group.astype(np.int64), -1)[codes], list(distinct)


def _code_of(values: list, wanted: np.ndarray) -> np.ndarray:
    """Position in ``values`` of each wanted text (``-2`` where absent or not given)."""
    position = {v: i for i, v in enumerate(values) if v is not None}
    return np.array([position.get(w, -2) if isinstance(w, str) else -2 for w in wanted], dtype=np.int64)


def license_coverage(rows: pa.Table, policy: Policy, days: np.ndarray, sku_codes, sku_values, dest_codes, dest_values,
                     id_codes, id_values, norm_codes, normalized_names, exporter_codes, exporter_values
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's license status (:data:`LICENSE_STATUSES`) and covering register row.

    Without a register every ``license_id`` covers its line. With one, in this order: unknown id,
    not yet valid, expired, out of scope (destination as written, consignee by id where both have
    one else by normalized name, exporter case-insensitive, SKU), else covered (README "License
    register"). Vectorised over dictionary codes: each register row is looked up once.
    """
    codes, values = codes_and_values(rows.column("license_id"))
    register = policy.license_register()
    status = np.where(codes >= 0, LICENSE_COVERED, LICENSE_NONE).astype(np.int8)
    if register is None:
        return status, np.full(len(codes), -1, dtype=np.int64), np.zeros(0, dtype=object)
    table = register.table.reset_index(drop=True)
    n = len(codes)
    if not len(table):  # an empty register: every license id is unknown
        status = np.where(codes >= 0, 2, LICENSE_NONE).astype(np.int8)
        return status, np.full(n, -1, dtype=np.int64), np.zeros(0, dtype=object)
    lines = np.flatnonzero(codes >= 0)  # only the licensed lines are looked at
    position = np.append(register.position([v.strip() if isinstance(v, str) else v for v in values]), -1)[codes[lines]]
    known = position >= 0
    at = np.where(known, position, 0)

    def same(column: str, row_codes: np.ndarray, distinct: list) -> np.ndarray:
        """The line's (folded) value equals the license's ``column`` (``False`` where either has none)."""
        wanted = _code_of(distinct, table[column].to_numpy(dtype=object))
        row_codes = row_codes[lines]
        return (wanted[at] == row_codes) & (row_codes >= 0)

    def given(column: str) -> np.ndarray:
        return table[column].notna().to_numpy()[at]

    def trimmed(value: str) -> str:
        return value.strip()

    in_destination = same("destination_country", *_folded_codes(list(dest_values), dest_codes, str.upper))
    id_rows, id_distinct = _folded_codes(list(id_values), id_codes, trimmed)
    by_id = given("consignee_id") & (id_rows[lines] >= 0)
    consignee = np.where(by_id, same("consignee_id", id_rows, id_distinct),
                         np.where(given("consignee_normalized"),
                                  same("consignee_normalized", norm_codes, list(normalized_names)),
                                  ~given("consignee_id")))
    exporter = ~given("exporter_key") | same(
        "exporter_key", *_folded_codes(list(exporter_values), exporter_codes, lambda v: v.strip().casefold()))
    skus = table["skus"]
    any_sku = (skus.map(len) == 0).to_numpy()
    listed = skus.explode().dropna()
    allowed = np.zeros((len(table), len(sku_values) + 1), dtype=bool)  # license x SKU code
    sku_position = _code_of(list(sku_values), listed.to_numpy(dtype=object))
    kept = sku_position >= 0
    allowed[listed.index.to_numpy(np.int64)[kept], sku_position[kept]] = True
    allowed[any_sku] = True
    in_scope = in_destination & consignee & exporter & allowed[at, sku_codes[lines]]

    day = days[lines]
    status = np.full(n, LICENSE_NONE, dtype=np.int8)
    status[lines] = np.select(
        [~known, day < table["valid_from"].to_numpy(np.int64)[at], day > table["valid_until"].to_numpy(np.int64)[at],
         ~in_scope], [2, 3, 4, 5], default=LICENSE_COVERED)
    covering = np.full(n, -1, dtype=np.int64)
    covering[lines] = np.where(status[lines] == LICENSE_COVERED, position, -1)
    return status, covering, table["license_id"].to_numpy(dtype=object)


def affiliate_classes(affiliates, days: np.ndarray, id_codes, id_values, norm_codes, normalized_names, dest_codes,
                      dest_values) -> tuple:
    """Each row's affiliate class (status and owners' lists in the row's date window), the
    classes, and the row's entity and window (see :class:`Features`)."""
    n = len(days)
    if affiliates is None or not n or not affiliates.status.shape[1]:  # no ownership file, rows or entities
        return (np.zeros(n, np.int32), np.zeros(1, np.int8), [None], np.full(n, -1, np.int64), np.zeros(n, np.int64))
    # One lookup per distinct (id, normalized name, destination): by id, else name@destination, else name@.
    combo = (id_codes.astype(np.int64) + 1) * (len(normalized_names) + 1) + norm_codes
    combo = combo * (len(dest_values) + 1) + (dest_codes + 1)
    combo_codes, distinct = pd.factorize(combo)
    distinct = np.asarray(distinct, dtype=np.int64)
    rest, dest = np.divmod(distinct, len(dest_values) + 1)
    ident, norm = np.divmod(rest, len(normalized_names) + 1)
    ids = np.array(list(id_values) + [None], dtype=object)[ident - 1]
    names = np.asarray(normalized_names, dtype=object)[norm]
    dests = np.array([None] + list(dest_values), dtype=object)[dest]
    index = pd.Index(affiliates.entities["key"], dtype=object)
    by_id = index.get_indexer([f"id:{i}" if isinstance(i, str) else "" for i in ids])
    by_place = index.get_indexer([f"name:{m}@{d or ''}" for m, d in zip(names, dests)])
    by_name = index.get_indexer([f"name:{m}@" for m in names])
    entity_of = np.where(by_id >= 0, by_id, np.where(by_place >= 0, by_place, by_name)).astype(np.int64)
    entity = entity_of[combo_codes]
    window = affiliates.window_of(days.astype(np.int64))
    found = entity >= 0
    at = np.where(found, entity, 0)
    status = np.where(found, affiliates.status[window, at], 0).astype(np.int64)
    lists = np.where(found, affiliates.lists[window, at], 0).astype(np.int64)
    classes, pairs = pd.factorize(status * (1 << 32) + lists)
    pairs = np.asarray(pairs, dtype=np.int64)
    class_status, class_lists = np.divmod(pairs, 1 << 32)
    labels = [affiliates.label(int(m)) or None for m in class_lists.tolist()]
    return (classes.astype(np.int32), class_status.astype(np.int8), labels, np.where(found, entity, -1), window)


def build_features(rows: pa.Table, policy: Policy, parties: pd.DataFrame | Callable[[], pd.DataFrame],
                   name_codes: np.ndarray, affiliates=None) -> Features:
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
    classes = set(policy.controlled_classes())
    sku_controlled = by_sku["eccn"].isin(classes).to_numpy()
    sku_gp10 = by_sku["gp10"].fillna(False).to_numpy(bool)
    quantity = rows.column("quantity").to_numpy().astype(np.int64, copy=False)
    sku_tpp = np.append(by_sku["unit_tpp"].fillna(0).to_numpy(np.int64), 0)
    sku_memory = catalog_values(by_sku, "memory_bandwidth_gbs", policy)
    sku_io = catalog_values(by_sku, "io_bandwidth_gbs", policy)

    countries = CountryTable.load()
    aliases = policy.get("destinations.aliases")
    dest_codes, dest_values = codes_and_values(rows.column("destination_country"))
    hq_codes, hq_values = codes_and_values(rows.column("consignee_hq_country"))

    destination = countries.gather(dest_codes, dest_values, aliases)
    headquarters = countries.gather(hq_codes, hq_values, aliases)
    parent = countries.gather(*codes_and_values(optional_column(rows, "ultimate_parent_hq_country")), aliases)
    export_codes, export_values = codes_and_values(optional_column(rows, "export_country"))
    export = countries.gather(export_codes, [v or None for v in export_values], {})
    try:
        tpp = row_amounts(sku_tpp, sku_codes, quantity)
    except AmountOverflowError as error:
        if error.row is None or "shipment_id" not in rows.column_names:
            raise
        shipment = rows.column("shipment_id")[error.row].as_py()
        raise AmountOverflowError(f"shipment_id {shipment!r}: unit TPP {int(sku_tpp[sku_codes[error.row]])} x "
                                  f"quantity {int(quantity[error.row])} exceeds int64", row=error.row) from None
    has_veu = present(rows.column("veu_id"))
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

    # China volume key: (SKU, exporter); an absent exporter is the empty one.
    exporter_codes, exporter_values = codes_and_values(optional_column(rows, "exporter"))
    exporter_texts = np.array([v or "" for v in exporter_values] + [""], dtype=object)
    exporter_of = pd.factorize(exporter_texts)[0][exporter_codes]
    volume_key, volume_pairs = pd.factorize(sku_codes.astype(np.int64) * (len(exporter_texts) + 1) + exporter_of)
    pair_sku, pair_exporter = np.divmod(np.asarray(volume_pairs, dtype=np.int64), len(exporter_texts) + 1)
    distinct_exporters = pd.factorize(exporter_texts)[1]
    volume_key_values = np.array([f"{sku_values[a]}|{distinct_exporters[b]}"
                                  for a, b in zip(pair_sku.tolist(), pair_exporter.tolist())], dtype=object)

    license_status, license_row, license_ids = license_coverage(
        rows, policy, days, sku_codes, sku_values, dest_codes, dest_values, id_codes, id_values,
        norm_codes, list(normalized_names), exporter_codes, exporter_values)
    has_license = license_status == LICENSE_COVERED

    affiliate, affiliate_status, affiliate_list, affiliate_entity, affiliate_window = affiliate_classes(
        affiliates, days, id_codes, id_values, norm_codes, list(normalized_names), dest_codes, dest_values)

    before_listing = np.zeros(len(days), dtype=bool)
    if policy.params.get("parties", {}).get("listing_dates", False):
        listed = listed_days(parties)[name_codes] if len(parties) else np.zeros(len(days), np.int64)
        hit = np.isin(party_outcome, (PARTY_REVIEW, PARTY_BLOCK))[classes_of_name[name_codes]]
        before_listing = hit & (days < listed)

    return Features(
        day=days, year=years, tpp=tpp, sku=sku_codes, sku_controlled=sku_controlled, sku_gp10=sku_gp10,
        destination=destination, headquarters=headquarters, has_license=has_license, has_veu=has_veu,
        license_status=license_status, license=license_row, license_key_values=license_ids,
        units=quantity, sku_unit_tpp=sku_tpp, sku_memory_bandwidth=sku_memory, sku_io_bandwidth=sku_io,
        parent=parent, export=export,
        party=classes_of_name.astype(np.int32)[name_codes], party_outcome=party_outcome, party_list=party_list,
        party_row=name_codes, party_key=party_key, n_party_keys=n_party_keys,
        party_key_values=party_key_values, volume_key=volume_key.astype(np.int64), volume_key_values=volume_key_values,
        affiliate=affiliate, affiliate_status=affiliate_status, affiliate_list=affiliate_list,
        affiliate_entity=affiliate_entity, affiliate_window=affiliate_window,
        before_listing=before_listing, countries=countries, parties=parties,
    )


def membership(features, policy: Policy, groups: list[str], which: str = "destination") -> np.ndarray:
    """Per row (or profile): is the destination (or HQ) in any of ``groups`` on the ship date?

    ``features`` is anything with ``destination``, ``headquarters``, ``day`` and ``countries``.

    ``groups`` may name country groups of the policy or list ISO codes directly; dated
    memberships (``country_groups.dated``) count only on ship dates from their ``from`` up to
    their ``until``.
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
    for country, start, until in dated:
        member = codes == position[country]
        if start is not None:
            member &= features.day >= day_number(start)
        if until is not None:
            member &= features.day <= day_number(until)
        hit |= member
    return hit
