"""Row validation: normalize each column and give each row its first failing reason.

Checks required fields, dates, statuses, country codes, quantities, SKUs and recorded
authorizations; categorical columns are normalized on their dictionary values only.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.schema import (CATEGORICAL_COLUMNS, COUNTRY_COLUMNS, DATE_MAX, DATE_MIN, FLOAT_EXACT,
                                    INT64_MAX, RECORDED_AUTHORIZATIONS, REASON_COUNTRY, REASON_DATE, REASON_DATE_RANGE,
                                    REASON_MISSING, REASON_QUANTITY, REASON_RECORDED, REASON_SKU, REASON_STATUS,
                                    REASON_TPP_OVERFLOW, REQUIRED_COLUMNS, SCREENING_COLUMNS, STATUSES, reason_code)
from pipeline.reference import load_catalog, load_countries


_EPOCH = dt.date(1970, 1, 1)
_DAY_MIN, _DAY_MAX = (DATE_MIN - _EPOCH).days, (DATE_MAX - _EPOCH).days
_DATE_TEXT = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]"
              r"(?::(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?)?(?:Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?)?$")
"""``YYYY-MM-DD``, optionally followed by a time and an offset (the date is taken as written)."""
_DECIMAL_TEXT = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Any column as text (dictionary decoded, numbers and dates formatted)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_large_string(column.type) or pa.types.is_string(column.type):
        return column.cast(pa.string())
    return pc.cast(column, pa.string())


def _categorical(column: pa.ChunkedArray, normalize: Callable[[pa.Array], pa.Array]) -> pa.ChunkedArray:
    """Dictionary-encode a text column and normalize its distinct values only; blanks become null.

    Returns one chunk with a unique dictionary (normalizing can merge ``"us"`` and ``"US "``).
    """
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(_as_text(column))
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return pa.chunked_array([pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string()))])
    dictionary = column.chunk(0).dictionary
    original = _as_text(pa.chunked_array([dictionary])).combine_chunks()
    values = normalize(pc.utf8_trim_whitespace(original))
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    if values.null_count == 0 and values.equals(original):
        return column  # values already normalized (and a dictionary is distinct): keep the codes
    mapping, uniques = pd.factorize(np.asarray(values.to_pylist(), dtype=object), use_na_sentinel=True)
    mapping = np.append(mapping, -1).astype(np.int32)  # last slot: null index
    indices = pa.chunked_array([chunk.indices for chunk in column.chunks], type=column.type.index_type)
    codes = mapping[pc.fill_null(indices, len(dictionary)).to_numpy()]
    return pa.chunked_array([pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0),
                                                            pa.array(uniques.tolist(), type=pa.string()))])


def _export_country(values: pa.Array) -> pa.Array:
    """``export_country`` values upper-cased, the United States as null (absent, empty and ``US`` alike)."""
    values = pc.utf8_upper(values)
    return pc.if_else(pc.fill_null(pc.equal(values, "US"), False), pa.scalar(None, pa.string()), values)


def _not_in(column: pa.ChunkedArray, allowed: set[str]) -> np.ndarray | None:
    """Per row: a value outside ``allowed`` (nulls excluded); ``None`` when every distinct value is allowed.

    The check runs on the dictionary; rows are looked at only when some value is bad.
    """
    bad_values = [np.array([v is not None and v not in allowed for v in chunk.dictionary.to_pylist()] + [False])
                  for chunk in column.chunks]
    if not any(flags.any() for flags in bad_values):
        return None
    out = np.zeros(len(column), dtype=bool)
    start = 0
    for chunk, flags in zip(column.chunks, bad_values):
        codes = pc.fill_null(chunk.indices, len(flags) - 1).to_numpy(zero_copy_only=False)
        out[start:start + len(chunk)] = flags[codes]
        start += len(chunk)
    return out


def _is_null(column: pa.ChunkedArray) -> np.ndarray | None:
    """Per row: null; ``None`` when the column has no nulls."""
    return pc.is_null(column).to_numpy(zero_copy_only=False) if column.null_count else None


def _except_nulls(mask: np.ndarray, column: pa.ChunkedArray) -> np.ndarray:
    """``mask`` with the column's null rows cleared (they fail as missing, not as malformed)."""
    nulls = _is_null(column)
    return mask if nulls is None else mask & ~nulls


def normalize_ids(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``shipment_id`` as compared everywhere (duplicates, order, lake): text, surrounding blanks removed."""
    return pc.utf8_trim_whitespace(_as_text(column))


def normalize_id(value) -> str | None:
    """One ``shipment_id`` normalized as :func:`normalize_ids` does (for ids from other files, e.g. reviews)."""
    if value is None:
        return None
    return normalize_ids(pa.chunked_array([pa.array([str(value)], pa.string())]))[0].as_py()


def _per_row(column: pa.ChunkedArray, per_value: Callable[[list], np.ndarray], fill) -> np.ndarray:
    """Per row of a dictionary column: ``per_value(dictionary values)`` gathered by code (``fill`` for nulls)."""
    parts = []
    for chunk in column.chunks:
        values = np.append(per_value(chunk.dictionary.to_pylist()), fill)
        parts.append(values[pc.fill_null(chunk.indices, len(values) - 1).to_numpy(zero_copy_only=False)])
    return np.concatenate(parts) if parts else np.zeros(0, np.asarray(fill).dtype)


def _dates_typed(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Typed dates and timestamps as date32 (a zoned timestamp on its local date) and the rows out of range."""
    kind = column.type
    if not pa.types.is_date32(kind):
        # Values far outside the range would overflow date32: null them first (exact check below).
        per_day = 86_400_000 if pa.types.is_date64(kind) else \
            {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}[kind.unit]
        raw = pc.cast(column, pa.int64())
        far = pc.fill_null(pc.or_(pc.less(raw, (_DAY_MIN - 2) * per_day), pc.greater(raw, (_DAY_MAX + 2) * per_day)),
                           False)
        column = pc.cast(pc.if_else(far, pa.scalar(None, kind), column), pa.date32())
        far = far.to_numpy(zero_copy_only=False)
    else:
        far = np.zeros(len(column), bool)
    days = pc.fill_null(pc.cast(column, pa.int32()), _DAY_MIN).to_numpy(zero_copy_only=False)
    return column, far | (days < _DAY_MIN) | (days > _DAY_MAX)


def _parse_dates(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray | None, np.ndarray]:
    """ship_date as date32, a mask of unparseable values (``None``: typed dates) and one of dates out of range.

    Text is ``YYYY-MM-DD``, optionally followed by a time and an offset: the date is taken as
    written (``2025-12-31T23:30-05:00`` is 2025-12-31), in every format.
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        dates, out = _dates_typed(column)
        return dates, None, out
    text = pc.utf8_trim_whitespace(_as_text(column))
    shaped = pc.fill_null(pc.match_substring_regex(text, _DATE_TEXT), False)
    filled = pc.if_else(shaped, text, pa.scalar("1970-01-01"))

    def part(start: int, stop: int) -> np.ndarray:
        piece = pc.utf8_slice_codeunits(filled, start, stop)
        return pc.cast(piece, pa.int64()).to_numpy(zero_copy_only=False) if len(piece) else np.zeros(0, np.int64)

    year, month, day = part(0, 4), part(5, 7), part(8, 10)
    month_ok = (month >= 1) & (month <= 12)
    start = ((year - 1970) * 12 + np.where(month_ok, month, 1) - 1).astype("M8[M]")
    length = ((start + 1).astype("M8[D]") - start.astype("M8[D]")).astype(np.int64)
    ok = shaped.to_numpy(zero_copy_only=False) & month_ok & (day >= 1) & (day <= length)
    days = np.where(ok, start.astype("M8[D]").astype(np.int64) + day - 1, 0)
    dates = pa.chunked_array([pa.array(days.astype(np.int32), pa.int32(), mask=~ok).cast(pa.date32())])
    return dates, _except_nulls(~ok, column), ok & ((days < _DAY_MIN) | (days > _DAY_MAX))


def _whole_floats(raw: np.ndarray) -> np.ndarray:
    """Floats that are positive integers exactly representable (below :data:`FLOAT_EXACT`)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(raw) & (raw > 0) & (raw == np.floor(raw)) & (raw < FLOAT_EXACT)


def _parse_quantities(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """quantity as int64 and a mask of values that are not positive integers (nulls excluded).

    Integers are exact up to int64; a number written with a fraction or an exponent (``2.0``,
    ``2e3``, a float column) counts when it is a whole number below 2**53, as text or typed.
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind):
        values = pc.fill_null(column, 1).to_numpy().astype(np.int64, copy=False)
        if pa.types.is_uint64(kind):
            bad = pc.fill_null(pc.greater(column, pa.scalar(INT64_MAX, pa.uint64())), False).to_numpy(zero_copy_only=False)
            values = np.where(bad, 0, values)
        else:
            bad = np.zeros(len(values), bool)
        return values, _except_nulls(bad | (values <= 0), column)
    if pa.types.is_floating(kind):
        raw = pc.fill_null(pc.cast(column, pa.float64()), 1.0).to_numpy(zero_copy_only=False)
        ok = _whole_floats(raw)
        values = np.zeros(len(raw), np.int64)
        values[ok] = raw[ok].astype(np.int64)
        return values, _except_nulls(~ok, column)
    text = pc.utf8_trim_whitespace(_as_text(column))
    digits = pc.utf8_ltrim(pc.utf8_ltrim(text, characters="+"), characters="0")
    integer = pc.fill_null(pc.and_(pc.match_substring_regex(text, r"^\+?[0-9]+$"),
                                   pc.or_(pc.less(pc.utf8_length(digits), 19),
                                          pc.and_(pc.equal(pc.utf8_length(digits), 19),
                                                  pc.less_equal(digits, str(INT64_MAX))))), False)
    values = pc.cast(pc.if_else(integer, pc.if_else(pc.equal(digits, ""), "0", digits), pa.scalar("0")),
                     pa.int64()).to_numpy(zero_copy_only=False)
    integer = integer.to_numpy(zero_copy_only=False)
    decimal = pc.fill_null(pc.match_substring_regex(text, _DECIMAL_TEXT), False)
    decimal_np = decimal.to_numpy(zero_copy_only=False) & ~integer
    if decimal_np.any():
        raw = pc.cast(pc.if_else(decimal, text, pa.scalar("0")), pa.float64()).to_numpy(zero_copy_only=False)
        whole = decimal_np & _whole_floats(raw)
        values = values.copy()  # not np.where: a float array would round int64 values near 2**63
        values[whole] = raw[whole].astype(np.int64)
        integer = integer | whole
    return values, _except_nulls(~integer | (values <= 0), column)


def _tpp_overflows(sku: pa.ChunkedArray, quantity: np.ndarray) -> np.ndarray:
    """Rows whose quantity times the catalog unit TPP of their SKU passes int64."""
    unit_of = load_catalog().set_index("sku")["unit_tpp"]

    def most(values: list) -> np.ndarray:  # the largest quantity each SKU's TPP stays within int64 at
        units = unit_of.reindex(values).fillna(0).to_numpy(np.int64)
        return np.where(units > 0, INT64_MAX // np.maximum(units, 1), INT64_MAX)

    return quantity > _per_row(sku, most, np.int64(INT64_MAX))


def _validate(table: pa.Table) -> tuple[dict[str, pa.ChunkedArray], np.ndarray]:
    """Normalize the columns of one file and give each row its first failing reason (or None)."""
    n = table.num_rows
    reasons = np.zeros(n, dtype=np.int16)

    def fail(mask: np.ndarray | None, reason: str) -> None:
        if mask is not None and mask.any():
            reasons[mask & (reasons == 0)] = reason_code(reason)

    columns: dict[str, pa.ChunkedArray] = {}
    missing: dict[str, np.ndarray | None] = {}
    for name in SCREENING_COLUMNS:
        column = table.column(name) if name in table.column_names else pa.chunked_array([pa.nulls(n, pa.string())])
        if name in CATEGORICAL_COLUMNS:
            upper = name in COUNTRY_COLUMNS or name == "recorded_authorization"
            normalize = _export_country if name == "export_country" else pc.utf8_upper if upper else (
                pc.utf8_lower if name == "status" else (lambda a: a))
            column = _categorical(column, normalize)
            missing[name] = _is_null(column)
        elif name == "shipment_id":
            column = normalize_ids(column)
            blank = pc.fill_null(pc.equal(column, ""), True)
            missing[name] = blank.to_numpy(zero_copy_only=False) if pc.any(blank).as_py() else None
        else:
            missing[name] = _is_null(column)
        columns[name] = column
    for name in REQUIRED_COLUMNS:
        fail(missing[name], REASON_MISSING.format(name))
    columns["ship_date"], bad_date, out_of_range = _parse_dates(columns["ship_date"])
    fail(bad_date, REASON_DATE)
    fail(out_of_range, REASON_DATE_RANGE)
    fail(_not_in(columns["status"], set(STATUSES)), REASON_STATUS)
    countries = set(load_countries()["alpha2"])
    for name in COUNTRY_COLUMNS:
        fail(_not_in(columns[name], countries), REASON_COUNTRY.format(name))
    quantity, bad_quantity = _parse_quantities(columns["quantity"])
    fail(bad_quantity, REASON_QUANTITY)
    columns["quantity"] = pa.chunked_array([quantity])
    fail(_not_in(columns["sku"], set(load_catalog()["sku"])), REASON_SKU)
    fail(_tpp_overflows(columns["sku"], quantity), REASON_TPP_OVERFLOW)
    fail(_not_in(columns["recorded_authorization"], set(RECORDED_AUTHORIZATIONS)), REASON_RECORDED)
    return columns, reasons
