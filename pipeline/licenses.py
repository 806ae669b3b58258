"""The license register: one row per license, read and checked before anything runs (:func:`read_register`).

A register is a CSV file (UTF-8, optional byte-order mark, ``,``-separated, a header row, standard
double quotes) or a Parquet file, told apart by the name (``.csv``; ``.parquet`` or ``.pq``) as
ledgers are. Its columns are :data:`REGISTER_COLUMNS`; :data:`REQUIRED_COLUMNS` must be present
and filled. Values are trimmed; an empty value is a missing one. Any problem is a
:class:`LicenseRegisterError` whose message names the file and, for a row, the row and the column:
``row N`` is the N-th data row under the header (1-based; blank lines are no rows), followed for
CSV by the line of the file where the row starts (``row 3 (line 4)``: spreadsheet row 4 when no
field spans lines) and for Parquet by its 0-based index (``row 3 (index 2)``). Parquet columns
may hold text, integers or ``date32`` dates (and ``skus`` a list of text); their values are
checked as their text.

Rules (README, "How screening works", **License register**):

* ``license_id``: required, unique after trimming (case-sensitive, as ledger ids are).
* ``valid_from``, ``valid_until``: required dates written ``YYYY-MM-DD`` (nothing after the
  day), real dates within 1900-01-01..2199-12-31, inclusive, ``valid_until`` not before
  ``valid_from``.
* ``destination_country``: required ISO 3166-1 alpha-2 code of ``data/countries.csv``, any case
  (stored upper case).
* ``consignee_id``, ``consignee_name``, ``exporter``, ``conditions``, ``source``: optional text.
  A ``consignee_name`` is matched on :func:`pipeline.parties.normalize_name`, the normalization
  the party screen puts in its ``normalized`` column; a name that normalizes to nothing is refused.
* ``skus``: optional ``;``-separated catalog SKUs (case-sensitive, as in ledgers; empty items
  are skipped); empty means any item.
* ``max_units``, ``max_tpp``: optional integers ≥ 0 written in plain digits (no sign, fraction,
  exponent or separators) that fit int64; empty means no limit.
* A column outside :data:`REGISTER_COLUMNS` is refused (with a "did you mean" hint), as is a
  column given twice.
* A header row without data rows is an empty register (0 licenses: every licensed line is then
  ``LICENSE_UNKNOWN``); blank lines and rows of empty fields are skipped. A file without a
  header row (0 bytes, or blank) is refused: a register that lost its content must not look
  like an empty one.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.ingest.formats import file_digest
from pipeline.parties.normalize import normalize_name
from pipeline.reference import load_catalog, load_countries
from pipeline.reference_files import check_header, did_you_mean, refuse_non_text


REGISTER_COLUMNS = (
    "license_id", "valid_from", "valid_until", "destination_country", "consignee_id", "consignee_name",
    "exporter", "skus", "max_units", "max_tpp", "conditions", "source",
)
"""Columns of a license register, in the order :func:`pipeline.generate.generate_register` writes them."""
REQUIRED_COLUMNS = ("license_id", "valid_from", "valid_until", "destination_country")
"""Columns a register must have, with a value in every row."""
TABLE_COLUMNS = (
    "license_id", "valid_from", "valid_until", "valid_from_date", "valid_until_date", "destination_country",
    "consignee_id", "consignee_name", "consignee_normalized", "exporter", "exporter_key", "skus", "max_units",
    "max_tpp", "conditions", "source",
)
"""Columns of :attr:`LicenseRegister.table`."""
REGISTER_SUFFIXES = (".csv", ".parquet", ".pq")
"""File names a register may have; the format follows the name."""
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2199, 12, 31)
"""Range of accepted ``valid_from`` and ``valid_until`` dates (as for ledger ship dates)."""
INT64_MAX = int(np.iinfo(np.int64).max)

_EPOCH = np.datetime64("1970-01-01", "D")
_DAY_MIN = (DATE_MIN - dt.date(1970, 1, 1)).days
_DAY_MAX = (DATE_MAX - dt.date(1970, 1, 1)).days


class LicenseRegisterError(ValueError):
    """A license register that cannot be trusted: unreadable, or a bad column or row (the message says where)."""


@dataclass(frozen=True, eq=False)
class LicenseRegister:
    """A checked license register.

    Attributes
    ----------
    path : Path
        The file read.
    sha256 : str
        SHA-256 of the file (hex): a changed register is a changed input.
    table : pandas.DataFrame
        One row per license, in file order, columns :data:`TABLE_COLUMNS`: ``license_id`` (str,
        trimmed); ``valid_from``, ``valid_until`` (int64 days since 1970-01-01, inclusive);
        ``valid_from_date``, ``valid_until_date`` (datetime.date, for display);
        ``destination_country`` (str, upper case); ``consignee_id``, ``consignee_name`` (str or
        None, trimmed); ``consignee_normalized`` (:func:`pipeline.parties.normalize_name` of the
        name, None without one); ``exporter`` (str or None, trimmed) and ``exporter_key`` (trimmed
        and casefolded, None without one); ``skus`` (tuple of str, ``()`` = any item);
        ``max_units``, ``max_tpp`` (pandas Int64, ``<NA>`` = no limit); ``conditions``,
        ``source`` (str or None). Text columns are object dtype.

    Notes
    -----
    Compared by identity (``eq=False``): compare ``sha256`` to tell whether two registers are the same file.
    """

    path: Path
    sha256: str
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.table["license_id"].to_numpy(dtype=object))

    def position(self, license_ids: Sequence[str | None]) -> np.ndarray:
        """Row of each license id in :attr:`table`.

        Parameters
        ----------
        license_ids : sequence of str or None
            Ids as the ledger holds them (trimmed); None for a line without one.

        Returns
        -------
        numpy.ndarray
            int64, one per id: its row in :attr:`table`, -1 where the register has no such id.
        """
        ids = np.asarray(license_ids, dtype=object).reshape(-1)
        if not len(ids):
            return np.zeros(0, np.int64)
        return self._index.get_indexer(pd.Index(ids)).astype(np.int64)


@dataclass
class _Raw:
    """Register values as read: per column, the text of each row (null: absent or empty), and where each row is.

    ``rows`` holds the 1-based row number of each row kept (rows of empty fields are not kept).
    ``lines`` (CSV only) gives, per row number, the file line where the row starts; it is
    computed when a message first needs it.
    """

    path: Path
    columns: dict[str, pa.Array]
    rows: np.ndarray
    lines: Callable[[], np.ndarray] | None

    def where(self, i: int) -> str:
        """How messages name row ``i`` (0-based position among the rows kept)."""
        if self.lines is None:
            return f"row {self.rows[i]} (index {self.rows[i] - 1})"
        return f"row {self.rows[i]} (line {self.lines()[self.rows[i] - 1]})"

    def error(self, mask: np.ndarray, column: str, problem) -> LicenseRegisterError:
        """The error for the first row of ``mask``; ``problem(i)`` says what is wrong with row ``i``."""
        bad = np.flatnonzero(mask)
        i = int(bad[0])
        more = f" ({len(bad) - 1} more row{'s' if len(bad) > 2 else ''} like it)" if len(bad) > 1 else ""
        return LicenseRegisterError(f"{self.path}: {self.where(i)}, column {column}: {problem(i)}{more}")


def _check_header(path: Path, names: Sequence[str]) -> None:
    """Refuse an unnamed, repeated, unknown or missing column."""
    check_header(path, names, REGISTER_COLUMNS, "register", LicenseRegisterError)
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise LicenseRegisterError(f"{path}: missing required column(s): {', '.join(missing)}")


def _sniff(path: Path, data: bytes) -> None:
    """Refuse, with a clear message, CSV bytes that are Parquet, compressed or not UTF-8 text."""
    refuse_non_text(path, data[:4096], "the register", LicenseRegisterError)
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise LicenseRegisterError(f"{path}: line {line}: NUL byte; not a UTF-8 CSV file (binary data?)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise LicenseRegisterError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
                                   "save the register as UTF-8 CSV") from None


def _records(path: Path, data: bytes) -> tuple[list[str] | None, list[list[str]], np.ndarray]:
    """The header and the records of CSV bytes, read by Python's csv module, and the line where each record starts.

    Blank lines are no records (as for Arrow's reader); the first record is the header.
    """
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), strict=True)
    records: list[list[str]] = []
    starts: list[int] = []
    try:
        last = 0
        for record in reader:
            if record:
                records.append(record)
                starts.append(last + 1)
            last = reader.line_num
    except csv.Error as error:
        raise LicenseRegisterError(f"{path}: line {reader.line_num}: not readable as CSV: {error}") from None
    header = records.pop(0) if records else None
    return header, records, np.asarray(starts[1:], np.int64)


def _read_csv_slowly(path: Path, data: bytes) -> None:
    """Find, with Python's csv module, why Arrow could not read ``data``; raise the error naming the place."""
    header, records, starts = _records(path, data)
    if header is None:
        raise LicenseRegisterError(f"{path}: empty file, no header row (an empty register is the header "
                                   "line alone)")
    header = [name.strip() for name in header]
    _check_header(path, header)
    for number, (record, line) in enumerate(zip(records, starts.tolist()), 1):
        if len(record) != len(header):
            raise LicenseRegisterError(f"{path}: row {number} (line {line}): {len(record)} field(s), the header "
                                       f"has {len(header)}")


def _read_csv(path: Path) -> _Raw:
    """A CSV register read by Arrow, every column as text; on a failure, the reason :func:`_read_csv_slowly` finds."""
    data = path.read_bytes()
    _sniff(path, data)
    def read(names: Sequence[str]) -> pa.Table:
        return pacsv.read_csv(io.BytesIO(data), parse_options=pacsv.ParseOptions(newlines_in_values=True),
                              convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                                   strings_can_be_null=False))

    try:
        table = read(REGISTER_COLUMNS)
        if any(not pa.types.is_string(kind) for kind in table.schema.types):  # names with blanks around them
            table = read(table.column_names)
    except (pa.ArrowException, ValueError):
        _read_csv_slowly(path, data)
        raise LicenseRegisterError(f"{path}: not readable as CSV") from None
    names = [name.strip() for name in table.column_names]
    _check_header(path, names)
    columns = {name: table.column(i).combine_chunks() for i, name in enumerate(names)}
    found: list[np.ndarray] = []

    def lines() -> np.ndarray:
        if not found:
            found.append(_records(path, data)[2])
        return found[0]

    return _kept(_Raw(path, columns, np.arange(1, table.num_rows + 1, dtype=np.int64), lines))


def _parquet_text(path: Path, name: str, column: pa.ChunkedArray) -> pa.Array:
    """A Parquet column as text (null for null); refuse types a register cannot hold."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if name == "skus" and (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and (
            pa.types.is_string(kind.value_type) or pa.types.is_large_string(kind.value_type)):
        column = pc.binary_join(column, ";")
    elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
              or pa.types.is_date32(kind) or pa.types.is_null(kind)):
        raise LicenseRegisterError(f"{path}: column {name} has type {kind}; expected text, an integer or a date")
    return pc.cast(column, pa.string()).combine_chunks()


def _read_parquet(path: Path) -> _Raw:
    try:
        names = pq.read_schema(path).names
        _check_header(path, names)
        table = pq.read_table(path)
        table.validate(full=True)
    except LicenseRegisterError:
        raise
    except (pa.ArrowException, OSError, ValueError) as error:
        raise LicenseRegisterError(f"{path}: cannot read as Parquet: {error}") from None
    columns = {name: _parquet_text(path, name, table.column(name)) for name in names}
    return _kept(_Raw(path, columns, np.arange(1, table.num_rows + 1, dtype=np.int64), None))


def _trimmed(values: pa.Array) -> pa.Array:
    """Text trimmed as the ledger trims it (Unicode whitespace); blank as null."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _kept(raw: _Raw) -> _Raw:
    """``raw`` with its values trimmed and without its rows of empty fields."""
    columns = {name: _trimmed(values) for name, values in raw.columns.items()}
    filled = np.zeros(len(raw.rows), bool)
    for values in columns.values():
        filled |= pc.is_valid(values).to_numpy(zero_copy_only=False)
    if filled.all():
        return _Raw(raw.path, columns, raw.rows, raw.lines)
    keep = pa.array(filled)
    return _Raw(raw.path, {name: values.filter(keep) for name, values in columns.items()}, raw.rows[filled],
                raw.lines)


def _column(raw: _Raw, name: str) -> np.ndarray:
    """A column's trimmed values as an object array (None: empty or absent)."""
    if name not in raw.columns:
        return np.full(len(raw.rows), None, dtype=object)
    return raw.columns[name].to_numpy(zero_copy_only=False).astype(object, copy=False)


def _required(raw: _Raw, values: np.ndarray, name: str) -> None:
    empty = pd.isna(values)
    if empty.any():
        raise raw.error(empty, name, lambda i: "empty; a value is required")


def _dates(raw: _Raw, values: np.ndarray, name: str) -> np.ndarray:
    """``YYYY-MM-DD`` texts as int64 days since 1970-01-01."""
    _required(raw, values, name)
    text = pa.array(values, pa.string())
    shaped = pc.match_substring_regex(text, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$").to_numpy(zero_copy_only=False)
    if not shaped.all():
        raise raw.error(~shaped, name, lambda i: f"{values[i]!r} is not a date written YYYY-MM-DD")
    parsed = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    back = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text), False)
    real = back.to_numpy(zero_copy_only=False)
    if not real.all():  # Arrow reads 2025-02-30 as 2025-03-02; the text must come back unchanged
        raise raw.error(~real, name, lambda i: f"{values[i]!r} is not a real date")
    days = pc.cast(pc.cast(parsed, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    outside = (days < _DAY_MIN) | (days > _DAY_MAX)
    if outside.any():
        raise raw.error(outside, name, lambda i: f"{values[i]} is outside {DATE_MIN}..{DATE_MAX}")
    return days


def _countries(raw: _Raw, values: np.ndarray) -> np.ndarray:
    name = "destination_country"
    _required(raw, values, name)
    upper = np.array(pc.utf8_upper(pa.array(values, pa.string())).to_pylist(), dtype=object)
    table = load_countries()
    known = pd.Index(table["alpha2"]).get_indexer(upper) >= 0
    if not known.all():
        by_name = {country.casefold(): code for code, country in zip(table["alpha2"], table["name"])}

        def problem(i: int) -> str:
            code = by_name.get(values[i].casefold())
            hint = f" (did you mean {code}?)" if code else ""
            return f"unknown country code {values[i]!r}{hint}; use an ISO 3166-1 alpha-2 code such as AE"

        raise raw.error(~known, name, problem)
    return upper


def _skus(raw: _Raw, values: np.ndarray) -> np.ndarray:
    """``;``-separated SKU lists as tuples (``()`` = any item), each SKU in the catalog.

    Each distinct text is split once (registers repeat a few lists many times).
    """
    out = np.fromiter((() for _ in range(len(values))), dtype=object, count=len(values))
    given = np.flatnonzero(~pd.isna(values))
    if not len(given):
        return out
    codes, distinct = pd.factorize(pd.Series(values[given], dtype=object))
    catalog = load_catalog()["sku"].tolist()
    known = set(catalog)
    lists = [tuple(dict.fromkeys(item for item in (part.strip() for part in text.split(";")) if item))
             for text in distinct]
    empty = np.array([not items for items in lists], bool)
    if empty.any():
        bad = np.zeros(len(values), bool)
        bad[given[empty[codes]]] = True
        raise raw.error(bad, "skus", lambda i: f"{values[i]!r} names no SKU (leave it empty for any item)")
    unknown = [next((item for item in items if item not in known), None) for items in lists]
    wrong = np.array([item is not None for item in unknown], bool)
    if wrong.any():
        bad = np.zeros(len(values), bool)
        bad[given[wrong[codes]]] = True
        first = dict(zip(distinct, unknown))

        def problem(i: int) -> str:
            item = first[values[i]]
            return f"unknown SKU {item!r}{did_you_mean(item, catalog)} (SKUs of data/chips.csv, ';'-separated)"

        raise raw.error(bad, "skus", problem)
    out[given] = np.fromiter(lists, dtype=object, count=len(lists))[codes]
    return out


def _limits(raw: _Raw, values: np.ndarray, name: str) -> pd.arrays.IntegerArray:
    """Plain-digit integers ≥ 0 that fit int64, as pandas Int64 (``<NA>`` where empty)."""
    given = ~pd.isna(values)
    text = pa.array(values, pa.string())
    digits = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]+$"), True).to_numpy(zero_copy_only=False)
    if not digits.all():
        raise raw.error(~digits, name, lambda i: f"{values[i]!r} is not a whole number ≥ 0 written in plain "
                                                 "digits (no sign, fraction, exponent or separator)")
    significant = pc.utf8_ltrim(text, characters="0")
    length = pc.fill_null(pc.utf8_length(significant), 0).to_numpy(zero_copy_only=False)
    wide = length >= 19
    too_big = np.zeros(len(values), bool)
    if wide.any():
        too_big[wide] = [len(v) > 19 or int(v) > INT64_MAX
                         for v in np.asarray(significant.to_pylist(), dtype=object)[wide]]
    if too_big.any():
        raise raw.error(too_big, name, lambda i: f"{values[i]} is above the int64 maximum {INT64_MAX}")
    out = np.zeros(len(values), np.int64)
    if given.any():
        out[given] = pc.cast(text.filter(pa.array(given)), pa.int64()).to_numpy()
    return pd.arrays.IntegerArray(out, ~given)


def _normalized_names(raw: _Raw, names: np.ndarray) -> np.ndarray:
    """:func:`normalize_name` of each consignee name (once per distinct name), None without a name."""
    out = np.full(len(names), None, dtype=object)
    given = np.flatnonzero(~pd.isna(names))
    if not len(given):
        return out
    codes, distinct = pd.factorize(pd.Series(names[given], dtype=object))
    texts = np.array([normalize_name(name) for name in distinct], dtype=object)
    out[given] = texts[codes]
    empty = np.zeros(len(names), bool)
    empty[given] = out[given] == ""
    if empty.any():
        raise raw.error(empty, "consignee_name", lambda i: f"{names[i]!r} has no letters or digits to match on")
    return out


def _table(raw: _Raw) -> pd.DataFrame:
    """Check every column of ``raw`` (in :data:`REGISTER_COLUMNS` order) and build the register table."""
    ids = _column(raw, "license_id")
    _required(raw, ids, "license_id")
    repeated = pd.Series(ids, dtype=object).duplicated(keep="first").to_numpy()
    if repeated.any():
        first = pd.Series(np.arange(len(ids)), index=pd.Index(ids)).groupby(level=0).min()

        def problem(i: int) -> str:
            return f"{ids[i]!r} is also in {raw.where(int(first[ids[i]]))}; each license_id must be unique"

        raise raw.error(repeated, "license_id", problem)
    valid_from = _dates(raw, _column(raw, "valid_from"), "valid_from")
    valid_until = _dates(raw, _column(raw, "valid_until"), "valid_until")
    reversed_ = valid_until < valid_from
    if reversed_.any():
        def problem(i: int) -> str:
            return f"{_EPOCH + valid_until[i]} is before valid_from {_EPOCH + valid_from[i]}"

        raise raw.error(reversed_, "valid_until", problem)
    destination = _countries(raw, _column(raw, "destination_country"))
    consignee_id = _column(raw, "consignee_id")
    consignee_name = _column(raw, "consignee_name")
    normalized = _normalized_names(raw, consignee_name)
    exporter = _column(raw, "exporter")
    exporter_key = np.full(len(exporter), None, dtype=object)
    has_exporter = ~pd.isna(exporter)
    if has_exporter.any():
        exporter_key[has_exporter] = [value.casefold() for value in exporter[has_exporter]]
    skus = _skus(raw, _column(raw, "skus"))
    max_units = _limits(raw, _column(raw, "max_units"), "max_units")
    max_tpp = _limits(raw, _column(raw, "max_tpp"), "max_tpp")
    table = pd.DataFrame({
        "license_id": pd.Series(ids, dtype=object),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "valid_from_date": (_EPOCH + valid_from).astype(object),
        "valid_until_date": (_EPOCH + valid_until).astype(object),
        "destination_country": pd.Series(destination, dtype=object),
        "consignee_id": pd.Series(consignee_id, dtype=object),
        "consignee_name": pd.Series(consignee_name, dtype=object),
        "consignee_normalized": pd.Series(normalized, dtype=object),
        "exporter": pd.Series(exporter, dtype=object),
        "exporter_key": pd.Series(exporter_key, dtype=object),
        "skus": pd.Series(skus, dtype=object),
        "max_units": pd.Series(max_units, dtype="Int64"),
        "max_tpp": pd.Series(max_tpp, dtype="Int64"),
        "conditions": pd.Series(_column(raw, "conditions"), dtype=object),
        "source": pd.Series(_column(raw, "source"), dtype=object),
    }, columns=list(TABLE_COLUMNS))
    return table


def register_format(path: Path) -> str:
    """``csv`` or ``parquet`` from the file name.

    Raises
    ------
    LicenseRegisterError
        Another extension.
    """
    name = path.name.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise LicenseRegisterError(f"{path}: unknown license register format (use .csv or .parquet)")


def read_register(path: str | Path) -> LicenseRegister:
    """Read and check a license register.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` or ``.parquet`` (``.pq``) file.

    Returns
    -------
    LicenseRegister
        The licenses in file order (an empty table for a header without rows).

    Raises
    ------
    LicenseRegisterError
        A missing or unreadable file, a file that is not UTF-8 CSV or Parquet, an unnamed,
        repeated, unknown or missing required column, or a bad value (the message names the
        row and the column): see the module docstring for the rules.
    """
    path = Path(path)
    if path.is_dir():
        raise LicenseRegisterError(f"{path}: is a directory, not a license register file")
    if not path.is_file():
        raise LicenseRegisterError(f"{path}: no such license register file")
    kind = register_format(path)
    try:
        raw = _read_csv(path) if kind == "csv" else _read_parquet(path)
        sha256 = file_digest(path)
    except OSError as error:
        raise LicenseRegisterError(f"{path}: cannot read: {error.strerror or error}") from None
    return LicenseRegister(path=path, sha256=sha256, table=_table(raw))
