"""The ownership file: one row per holding, read and checked (:func:`read_holdings`).

A file is CSV (UTF-8, optional byte-order mark, ``,``-separated, a header row) or Parquet, told
apart by the name (``.csv``; ``.parquet`` or ``.pq``). Its columns are :data:`OWNERSHIP_COLUMNS`:
``owner_id`` or ``owner_name`` (at least one of the two columns, and a value in one of them on
each row), likewise ``owned_id`` or ``owned_name``, ``percent``, and optionally ``owner_country``,
``owned_country``, ``valid_from``, ``valid_until``, ``source``. Values are read as text (Parquet
integers, decimals, floats and dates as their text) and trimmed; an empty value is a missing one.
A file that cannot be read at all raises :class:`OwnershipError` (missing file, not CSV or
Parquet, a line with the wrong number of fields, a column missing, unknown or given twice). A row
that breaks a rule goes to the quarantine with the first reason of :data:`REASONS` it meets;
``rows_read = accepted + quarantined``.

Rules, in the order they are checked:

* An owner (``owner_id`` or ``owner_name``) and an owned entity (``owned_id`` or ``owned_name``).
* ``percent``: a decimal number written in digits (``50``, ``12.34``, ``.5``; no exponent,
  separator or ``%``), kept as exact integer basis points (``12.34`` → 1234) without passing
  through a float; more than two decimal places that are not zeros are finer than a basis point;
  it must satisfy 0 < percent ≤ 100.
* ``valid_from``, ``valid_until``: optional real dates written ``YYYY-MM-DD``, inclusive;
  ``valid_until`` not before ``valid_from``. Stored as days since 1970-01-01, an open end as
  :data:`OPEN_FROM` or :data:`OPEN_UNTIL`.
* ``owner_country``, ``owned_country``: optional ISO 3166-1 alpha-2 codes of
  ``data/countries.csv``, any case (stored upper case).
* Entity key: ``id:<id>`` where an id is given; else ``name:<normalized>@<country>`` (country
  ``""`` when not given), the name normalized by :func:`pipeline.parties.normalize_name` (the
  party screen's ``normalized`` column); a name that normalizes to nothing is refused.
* No entity holds itself (same key).
* Duplicates: a row with the same owner key, owned key and window (``valid_from``,
  ``valid_until``) as an earlier row is quarantined, whatever its percent; the earliest row is
  kept and named in the reason.
* On no day may the holdings in one owned entity sum above 100 percent: every holding in such an
  entity is quarantined, the reason naming the entity, the first day and the total.

``source_row`` is the 1-based data row: for CSV the N-th row under the header (blank lines are no
rows), for Parquet index + 1.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kernels.identifiers import hash_strings
from pipeline.ingest.formats import file_digest
from pipeline.parties.normalize import normalize_name
from pipeline.reference_files import check_header, refuse_non_text
from pipeline.reference import load_countries

OWNERSHIP_COLUMNS = ("owner_id", "owner_name", "owner_country", "owned_id", "owned_name", "owned_country",
                     "percent", "valid_from", "valid_until", "source")
"""Columns an ownership file may have."""

TABLE_COLUMNS = ("owner_key", "owned_key", "owner_id", "owner_name", "owner_normalized", "owner_country",
                 "owned_id", "owned_name", "owned_normalized", "owned_country", "bp", "valid_from", "valid_until",
                 "source", "source_row")
"""Columns of :attr:`Holdings.table`."""

OPEN_FROM = -2**31
"""``valid_from`` of a holding without a start date."""

OPEN_UNTIL = 2**31 - 1
"""``valid_until`` of a holding without an end date."""

MAX_BP = 10_000

REASON_MISSING_OWNER = "missing owner"
REASON_MISSING_OWNED = "missing owned entity"
REASON_PERCENT_UNKNOWN = "unknown percent"
REASON_PERCENT_FINE = "percent finer than a basis point"
REASON_PERCENT_RANGE = "percent out of range"
REASON_BAD_DATE = "bad date"
REASON_WINDOW = "valid_until before valid_from"
REASON_COUNTRY = "unknown country"
REASON_EMPTY_NAME = "name normalizes to nothing"
REASON_SELF = "self-ownership"
REASON_DUPLICATE = "duplicate holding"
REASON_OVER = "over 100% held in one entity"

REASONS = (REASON_MISSING_OWNER, REASON_MISSING_OWNED, REASON_PERCENT_UNKNOWN, REASON_PERCENT_FINE,
           REASON_PERCENT_RANGE, REASON_BAD_DATE, REASON_WINDOW, REASON_COUNTRY, REASON_EMPTY_NAME, REASON_SELF,
           REASON_DUPLICATE, REASON_OVER)
"""Quarantine reasons, in the order rows are checked. A quarantined row's ``reason`` is one of
these, followed for the last two by ``": "`` and a detail (the kept row; the entity, day and
total); :attr:`Holdings.counts` ``by_reason`` counts by these."""

_CODE = {reason: code for code, reason in enumerate(REASONS, 1)}


class OwnershipError(ValueError):
    """An ownership file that cannot be read at all; the message names the file."""


@dataclass(frozen=True, eq=False)
class Holdings:
    """An ownership file as read.

    Attributes
    ----------
    path : Path
    sha256 : str
        Hex digest of the file's bytes.
    table : pandas.DataFrame
        Accepted holdings, :data:`TABLE_COLUMNS`, in file order: entity keys, ids, names, their
        normalized texts and countries as text (missing: NA), ``bp`` (int64 basis points),
        ``valid_from`` and ``valid_until`` (int64 days since 1970-01-01, inclusive, open ends
        :data:`OPEN_FROM`, :data:`OPEN_UNTIL`), ``source``, ``source_row`` (int64).
    quarantine : pandas.DataFrame
        Refused rows, in file order: :data:`OWNERSHIP_COLUMNS` as read (text, untrimmed; NA where
        empty or absent), ``reason``, ``source_row``.
    counts : dict
        ``rows_read``, ``accepted``, ``quarantined`` (``rows_read = accepted + quarantined``) and
        ``by_reason`` (reason of :data:`REASONS` → rows, those with rows only).
    """

    path: Path
    sha256: str
    table: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict


# ------------------------------------------------------------------------------ reading
def _check_header(path: Path, names: Sequence[str]) -> None:
    """Refuse an unnamed, repeated, unknown or missing column."""
    check_header(path, names, OWNERSHIP_COLUMNS, "ownership file", OwnershipError, label="ownership")
    for side in ("owner", "owned"):
        if f"{side}_id" not in names and f"{side}_name" not in names:
            raise OwnershipError(f"{path}: missing column {side}_id or {side}_name (one of them is required)")
    if "percent" not in names:
        raise OwnershipError(f"{path}: missing required column percent")


def _sniff(path: Path) -> None:
    """Refuse, with a clear message, a .csv file that is Parquet, compressed or not UTF-8 text."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    refuse_non_text(path, head, "the ownership file", OwnershipError)
    if b"\x00" in head:
        raise OwnershipError(f"{path}: NUL bytes; not a UTF-8 CSV file")
    if not head.strip():
        raise OwnershipError(f"{path}: empty file, no header row (an empty ownership file is the header line alone)")


def _read_csv(path: Path) -> dict[str, pa.Array]:
    """A CSV file's columns as text, by header name (trimmed)."""
    _sniff(path)
    malformed: list = []

    def invalid_row(row):
        malformed.append(row)
        return "skip"

    def read(names: Sequence[str]) -> pa.Table:
        return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True,
                                                                      invalid_row_handler=invalid_row),
                              convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                                   strings_can_be_null=False))

    try:
        table = read(OWNERSHIP_COLUMNS)
        if any(not pa.types.is_string(kind) for kind in table.schema.types):  # names with blanks around them
            malformed.clear()
            table = read(table.column_names)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise OwnershipError(f"{path}: cannot read as CSV: {error}") from None
    names = [name.strip() for name in table.column_names]
    _check_header(path, names)
    if malformed:
        row = malformed[0]
        where = f"line {row.number}" if row.number is not None and row.number >= 0 else "a line"
        raise OwnershipError(f"{path}: {where}: {row.actual_columns} field(s), the header has "
                             f"{row.expected_columns} ({len(malformed)} such line(s))")
    return {name: table.column(i).combine_chunks() for i, name in enumerate(names)}


def _scalar(kind: pa.DataType) -> bool:
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
            or pa.types.is_floating(kind) or pa.types.is_decimal(kind) or pa.types.is_date(kind)
            or pa.types.is_null(kind))


def _read_parquet(path: Path) -> dict[str, pa.Array]:
    """A Parquet file's columns as text, by name."""
    try:
        schema = pq.read_schema(path)
        _check_header(path, schema.names)
        table = pq.read_table(path)
        table.validate(full=True)
    except OwnershipError:
        raise
    except (pa.ArrowException, OSError, ValueError) as error:
        raise OwnershipError(f"{path}: cannot read as Parquet: {error}") from None
    columns = {}
    for name in schema.names:
        column = table.column(name)
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not _scalar(kind):
            raise OwnershipError(f"{path}: column {name} has type {column.type}; expected text, a number or a date")
        if pa.types.is_dictionary(column.type):
            column = column.cast(kind)
        columns[name] = pc.cast(column, pa.string()).combine_chunks()
    return columns


def _read(path: Path) -> dict[str, pa.Array]:
    if path.is_dir():
        raise OwnershipError(f"{path}: is a directory, not an ownership file")
    if not path.is_file():
        raise OwnershipError(f"{path}: no such ownership file")
    name = path.name.lower()
    if name.endswith(".csv"):
        return _read_csv(path)
    if name.endswith((".parquet", ".pq")):
        return _read_parquet(path)
    raise OwnershipError(f"{path}: unknown ownership file format (use .csv, .parquet or .pq)")


# ------------------------------------------------------------------------------ values
def _trimmed(values: pa.Array) -> pa.Array:
    """Text trimmed of Unicode whitespace; blank as null."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _as_read(values: pa.Array) -> pa.Array:
    """Text as read, untrimmed; an empty field as null (as Parquet stores it)."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _valid(values: pa.Array) -> np.ndarray:
    return pc.is_valid(values).to_numpy(zero_copy_only=False)


def _per_distinct(values: pa.Array, parse, fill, dtype) -> np.ndarray:
    """``parse`` applied once per distinct non-null text, spread over the rows (``fill`` for nulls)."""
    encoded = values.dictionary_encode()
    parsed = [parse(text) for text in encoded.dictionary.to_pylist()]
    lookup = np.empty(len(parsed) + 1, dtype=dtype)
    lookup[:-1] = parsed
    lookup[-1] = fill
    return lookup[pc.fill_null(encoded.indices, len(parsed)).to_numpy(zero_copy_only=False).astype(np.int64)]


_PERCENT = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")


def percent_bp(text: str) -> int | str:
    """Exact basis points of a percent written in decimal digits, or why there are none.

    Parameters
    ----------
    text : str
        Trimmed text, e.g. ``"12.34"``.

    Returns
    -------
    int or str
        Basis points (1..10000), or the reason (:data:`REASON_PERCENT_UNKNOWN`,
        :data:`REASON_PERCENT_FINE`, :data:`REASON_PERCENT_RANGE`).

    Examples
    --------
    >>> percent_bp("12.34"), percent_bp("50"), percent_bp("0.01"), percent_bp("12.340"), percent_bp(".5")
    (1234, 5000, 1, 1234, 50)
    >>> percent_bp("12.345"), percent_bp("0"), percent_bp("1e2")
    ('percent finer than a basis point', 'percent out of range', 'unknown percent')
    """
    match = _PERCENT.fullmatch(text)
    if match is None or not (match[2] or match[3]):
        return REASON_PERCENT_UNKNOWN
    sign, whole, fraction = match[1], match[2].lstrip("0"), match[3] or ""
    if fraction[2:].strip("0"):
        return REASON_PERCENT_FINE
    if len(whole) > 3:
        return REASON_PERCENT_RANGE
    bp = int(whole or "0") * 100 + int(fraction[:2].ljust(2, "0"))
    if sign == "-":
        bp = -bp
    if not 0 < bp <= MAX_BP:
        return REASON_PERCENT_RANGE
    return bp


def _percent_code(text: str) -> int:
    """:func:`percent_bp` as one int: basis points, or minus the reason's code."""
    value = percent_bp(text)
    return -_CODE[value] if isinstance(value, str) else value


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH = dt.date(1970, 1, 1)


def _day(text: str) -> int | None:
    """Days since 1970-01-01 of a ``YYYY-MM-DD`` text, ``None`` if it is no real date so written."""
    if not _DATE.fullmatch(text):
        return None
    try:
        return (dt.date.fromisoformat(text) - _EPOCH).days
    except ValueError:
        return None


_NO_DAY = np.iinfo(np.int64).min


def _days(values: pa.Array, open_end: int) -> tuple[np.ndarray, np.ndarray]:
    """Day numbers (``open_end`` where empty) and a mask of texts that are no date."""
    days = _per_distinct(values, lambda text: _NO_DAY if (day := _day(text)) is None else day, open_end, np.int64)
    bad = days == _NO_DAY
    days[bad] = open_end
    return days, bad


def _day_text(day: int) -> str:
    return "the start" if day <= OPEN_FROM else (_EPOCH + dt.timedelta(days=int(day))).isoformat()


# ------------------------------------------------------------------------------ rules
class _Reasons:
    """First reason per row: ``code`` (0 = accepted so far) and an optional detail text."""

    def __init__(self, n: int):
        self.code = np.zeros(n, np.int16)
        self.detail: dict[int, str] = {}

    def fail(self, mask: np.ndarray, reason: str) -> None:
        self.code[mask & (self.code == 0)] = _CODE[reason]

    @property
    def ok(self) -> np.ndarray:
        return self.code == 0


def _side(text: dict, side: str, reasons: _Reasons, countries: pa.Array, normalized: pa.Array) -> dict:
    """Id, name, normalized name, country and entity key of one side (``owner`` or ``owned``)."""
    ident, name = text[f"{side}_id"], text[f"{side}_name"]
    country = pc.utf8_upper(text[f"{side}_country"])
    has_id, has_name = _valid(ident), _valid(name)
    reasons.fail(~has_id & ~has_name, REASON_MISSING_OWNER if side == "owner" else REASON_MISSING_OWNED)
    unknown = _valid(country) & ~pc.fill_null(pc.is_in(country, value_set=countries), False).to_numpy(
        zero_copy_only=False)
    empty = ~has_id & has_name & ~pc.fill_null(pc.not_equal(normalized, ""), False).to_numpy(zero_copy_only=False)
    name_key = pc.binary_join_element_wise("name:", normalized, "@", pc.fill_null(country, ""), "")
    key = pc.coalesce(pc.binary_join_element_wise("id:", ident, ""), name_key)
    return {"id": ident, "name": name, "normalized": normalized, "country": country, "key": key,
            "unknown_country": unknown, "empty_name": empty}


def _string_hashes(values: pa.Array) -> np.ndarray:
    """64-bit FNV-1a hash of each string (null as the empty string), from the Arrow buffers."""
    values = pc.fill_null(values, "").cast(pa.large_string())
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset: values.offset + len(values) + 1]
    data = values.buffers()[2]
    return hash_strings(offsets, np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8))


_MIX = np.uint64(0xBF58476D1CE4E5B9)


def _mixed(*parts: np.ndarray) -> np.ndarray:
    """One 64-bit hash of several uint64 columns, order-sensitive."""
    out = np.zeros(len(parts[0]), np.uint64)
    for part in parts:
        out = (out * _MIX) ^ part
        out ^= out >> np.uint64(29)
    return out


def _repeated(hashes: np.ndarray) -> np.ndarray:
    """Mask of the values of ``hashes`` that occur more than once (by one sort)."""
    ordered = np.sort(hashes)
    repeats = ordered[1:][ordered[1:] == ordered[:-1]]
    return np.isin(hashes, repeats) if len(repeats) else np.zeros(len(hashes), bool)


def _duplicates(keys: dict, hashes: dict, start, end, rows, reasons: _Reasons) -> None:
    """Quarantine a row repeating an earlier row's owner, owned entity and window.

    Hashes of (owner key, owned key, window) nominate the candidates; their strings decide.
    """
    ok = np.flatnonzero(reasons.ok)
    window = _mixed(hashes["owner"][ok], hashes["owned"][ok], start[ok].view(np.uint64), end[ok].view(np.uint64))
    candidates = ok[_repeated(window)]
    if not len(candidates):
        return
    take = pa.array(candidates, pa.int64())
    frame = pd.DataFrame({"owner": keys["owner"].take(take).to_pandas(), "owned": keys["owned"].take(take).to_pandas(),
                          "start": start[candidates], "end": end[candidates], "row": rows[candidates]})
    repeat = frame.duplicated(["owner", "owned", "start", "end"], keep="first").to_numpy()
    if not repeat.any():
        return
    kept = frame.groupby(["owner", "owned", "start", "end"], sort=False)["row"].transform("first").to_numpy()
    where = candidates[repeat]
    reasons.code[where] = _CODE[REASON_DUPLICATE]
    for row, first in zip(where.tolist(), kept[repeat].tolist()):
        reasons.detail[row] = f"same owner, owned entity and window as row {first}"


def _over_full(owned_keys: pa.Array, owned_hash, bp, start, end, reasons: _Reasons) -> None:
    """Quarantine every holding in an entity held above 100 percent on some day.

    Totals per owned-key hash (exact int64 segment sums) nominate the entities whose holdings sum
    above 100 percent over all time; for those, an interval sweep over the exact keys finds the
    first day the holdings valid together pass 100 percent.
    """
    ok = np.flatnonzero(reasons.ok)
    if not len(ok):
        return
    order = np.argsort(owned_hash[ok])
    ordered = owned_hash[ok][order]
    begins = np.concatenate([[0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1])
    totals = np.add.reduceat(bp[ok][order], begins)  # exact int64
    over_all = np.repeat(totals > MAX_BP, np.diff(np.append(begins, len(ordered))))
    rows = np.sort(ok[order[over_all]])
    if not len(rows):
        return
    row_code, names = pd.factorize(owned_keys.take(pa.array(rows, pa.int64())).to_pandas())
    row_code = row_code.astype(np.int64)
    closing = end[rows] < OPEN_UNTIL
    code = np.concatenate([row_code, row_code[closing]])
    day = np.concatenate([start[rows], end[rows][closing] + 1])
    delta = np.concatenate([bp[rows], -bp[rows][closing]])
    order = np.lexsort((delta, day, code))  # on one day, ends (negative) before starts
    code, day, delta = code[order], day[order], delta[order]
    running = np.cumsum(delta)
    begins = np.concatenate([[0], np.flatnonzero(code[1:] != code[:-1]) + 1])
    running -= np.repeat(running[begins] - delta[begins], np.diff(np.append(begins, len(code))))
    over = np.flatnonzero(running > MAX_BP)
    if not len(over):
        return
    entity, first = np.unique(code[over], return_index=True)
    first = over[first]
    text = {int(e): f"{names[int(e)]} held {int(running[i])} bp in all on {_day_text(int(day[i]))}"
            for e, i in zip(entity.tolist(), first.tolist())}
    bad = np.isin(row_code, entity)
    reasons.code[rows[bad]] = _CODE[REASON_OVER]
    for row, e in zip(rows[bad].tolist(), row_code[bad].tolist()):
        reasons.detail[row] = text[e]


def _normalized(text: dict) -> dict[str, pa.Array]:
    """``owner_name`` and ``owned_name`` normalized, each distinct name (both sides) once."""
    n = len(text["owner_name"])
    names = pa.concat_arrays([text["owner_name"].cast(pa.large_string()), text["owned_name"].cast(pa.large_string())])
    encoded = names.dictionary_encode()
    normalized = pa.array([normalize_name(name) for name in encoded.dictionary.to_pylist()], pa.large_string())
    both = normalized.take(encoded.indices).cast(pa.string())
    return {"owner": both.slice(0, n), "owned": both.slice(n)}


def read_holdings(path: str | Path) -> Holdings:
    """Read and check an ownership file.

    Parameters
    ----------
    path : str or Path
        A ``.csv``, ``.parquet`` or ``.pq`` file.

    Returns
    -------
    Holdings

    Raises
    ------
    OwnershipError
        A file that cannot be read at all: missing, not CSV or Parquet, a malformed line, a
        column missing, unknown (with a "did you mean" hint) or given twice.
    """
    path = Path(path)
    columns = _read(path)
    n = len(next(iter(columns.values())))
    null = pa.nulls(n, pa.string())
    text = {name: _trimmed(columns[name]) if name in columns else null for name in OWNERSHIP_COLUMNS}
    reasons = _Reasons(n)
    rows = np.arange(1, n + 1, dtype=np.int64)
    countries = pa.array(load_countries()["alpha2"].tolist(), pa.string())
    normalized = _normalized(text)
    owner = _side(text, "owner", reasons, countries, normalized["owner"])
    owned = _side(text, "owned", reasons, countries, normalized["owned"])

    bp = _per_distinct(text["percent"], _percent_code, -_CODE[REASON_PERCENT_UNKNOWN], np.int64)
    for reason in (REASON_PERCENT_UNKNOWN, REASON_PERCENT_FINE, REASON_PERCENT_RANGE):
        reasons.fail(bp == -_CODE[reason], reason)
    bp = np.maximum(bp, 0)
    start, bad_start = _days(text["valid_from"], OPEN_FROM)
    end, bad_end = _days(text["valid_until"], OPEN_UNTIL)
    reasons.fail(bad_start | bad_end, REASON_BAD_DATE)
    reasons.fail(end < start, REASON_WINDOW)
    reasons.fail(owner["unknown_country"] | owned["unknown_country"], REASON_COUNTRY)
    reasons.fail(owner["empty_name"] | owned["empty_name"], REASON_EMPTY_NAME)

    keys = {"owner": owner["key"], "owned": owned["key"]}
    reasons.fail(pc.fill_null(pc.equal(keys["owner"], keys["owned"]), False).to_numpy(zero_copy_only=False),
                 REASON_SELF)
    hashes = {side: _string_hashes(values) for side, values in keys.items()}
    _duplicates(keys, hashes, start, end, rows, reasons)
    _over_full(keys["owned"], hashes["owned"], bp, start, end, reasons)

    accepted = np.flatnonzero(reasons.ok)
    every = len(accepted) == n
    take = pa.array(accepted, pa.int64())

    def kept(values):
        return values if every else values.take(take) if isinstance(values, pa.Array) else values[accepted]

    sides = {f"{label}_{part}": side[part] for label, side in (("owner", owner), ("owned", owned))
             for part in ("key", "id", "name", "normalized", "country")}
    table = pa.table({name: kept(values) for name, values in {
        **sides, "bp": bp, "valid_from": start, "valid_until": end, "source": text["source"], "source_row": rows,
    }.items()}).to_pandas()[list(TABLE_COLUMNS)]

    refused = np.flatnonzero(~reasons.ok)
    take = pa.array(refused, pa.int64())
    labels = np.asarray(REASONS, dtype=object)[reasons.code[refused] - 1]
    texts = [f"{label}: {reasons.detail[row]}" if row in reasons.detail else label
             for label, row in zip(labels.tolist(), refused.tolist())]
    quarantine = pa.table({**{name: _as_read(columns[name].take(take)) if name in columns
                              else pa.nulls(len(refused), pa.string()) for name in OWNERSHIP_COLUMNS},
                           "reason": pa.array(texts, pa.string()), "source_row": rows[refused]}).to_pandas()

    by_reason = {reason: int(count) for reason, count in
                 zip(REASONS, np.bincount(reasons.code[refused], minlength=len(REASONS) + 1)[1:]) if count}
    counts = {"rows_read": n, "accepted": len(accepted), "quarantined": len(refused), "by_reason": by_reason}
    return Holdings(path=path, sha256=file_digest(path), table=table, quarantine=quarantine, counts=counts)
