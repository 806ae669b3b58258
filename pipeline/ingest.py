"""Ledger ingest: read CSV, Parquet and JSON Lines files, validate every row, quarantine bad ones.

Bad rows never vanish and never stop the run: each is written to the quarantine with a reason.
Counts reconcile: rows read = accepted + quarantined (+ rows after ``--as-of``, when given).
A file that cannot be read at all raises :class:`LedgerReadError` naming the file.

Accepted rows come back in screening order, ``(ship_date, shipment_id)``. The same row gives the
same result in CSV, Parquet and JSON Lines: JSON text columns are read as strings, JSON numbers as
CSV would see their text, and repeated ids are compared by validated, normalized values.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from kernels.identifiers import hash_strings
from pipeline.reference import load_catalog, load_countries

LEDGER_COLUMNS = (
    "shipment_id", "ship_date", "status", "exporter", "consignee_id", "consignee_name",
    "consignee_address", "destination_country", "consignee_hq_country", "sku", "quantity",
    "license_id", "veu_id", "recorded_authorization",
)
REQUIRED_COLUMNS = ("shipment_id", "ship_date", "status", "consignee_name", "destination_country", "sku", "quantity")
CATEGORICAL_COLUMNS = (
    "status", "exporter", "consignee_id", "consignee_name", "consignee_address", "destination_country",
    "consignee_hq_country", "sku", "license_id", "veu_id", "recorded_authorization",
)
"""Columns kept dictionary-encoded: few distinct values, many rows."""
SCREENING_COLUMNS = REQUIRED_COLUMNS + ("consignee_id", "consignee_hq_country", "license_id", "veu_id",
                                       "recorded_authorization")
"""Columns the screening reads; the others are read back only for quarantined or duplicate rows."""
STATUSES = ("shipped", "pending")
RECORDED_AUTHORIZATIONS = ("NLR", "AIA", "LPP", "VEU", "LICENSE")
INT64_MAX = np.iinfo(np.int64).max
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2199, 12, 31)
"""Range of accepted ``ship_date`` values; dates outside it are quarantined."""
FLOAT_EXACT = 2.0 ** 53
"""An integral quantity written with a fraction or exponent (``2.0``, ``2e3``) is accepted below this."""
_EPOCH = dt.date(1970, 1, 1)
_DAY_MIN, _DAY_MAX = (DATE_MIN - _EPOCH).days, (DATE_MAX - _EPOCH).days
_DATE_TEXT = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]"
              r"(?::(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?)?(?:Z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?)?$")
"""``YYYY-MM-DD``, optionally followed by a time and an offset (the date is taken as written)."""
_DECIMAL_TEXT = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"

REASON_MISSING = "missing required field: {}"
REASON_DATE = "unparseable date"
REASON_DATE_RANGE = f"ship_date outside {DATE_MIN}..{DATE_MAX}"
REASON_STATUS = "invalid status (expected shipped or pending)"
REASON_COUNTRY = "unknown country code: {}"
REASON_QUANTITY = "quantity not a positive integer"
REASON_SKU = "unknown SKU"
REASON_TPP_OVERFLOW = "quantity × unit TPP exceeds int64"
REASON_RECORDED = "unknown recorded_authorization (expected NLR, AIA, LPP, VEU or LICENSE)"
REASON_CONFLICT = "duplicate shipment_id with different content"
REASON_EXACT_DUPLICATE = "exact duplicate of an earlier row (counted once)"
REASON_MALFORMED = "malformed CSV line"
REASON_JSON_LINE = "malformed JSON line"
"""Prefix of the reason of a JSON Lines line that is not a flat JSON object (the detail follows)."""


_REASON_TEXTS: list[str] = [""]
_REASON_CODES: dict[str, int] = {"": 0}


def reason_code(text: str) -> int:
    """Small integer code of a quarantine reason (0: accepted); rows carry codes, not strings."""
    if text not in _REASON_CODES:
        _REASON_CODES[text] = len(_REASON_TEXTS)
        _REASON_TEXTS.append(text)
    return _REASON_CODES[text]


class LedgerReadError(RuntimeError):
    """A ledger file cannot be read at all (missing, wrong format, missing required columns)."""


@dataclass
class Ledger:
    """Validated ledger rows in screening order, and what was rejected.

    Attributes
    ----------
    rows : pyarrow.Table
        Accepted rows sorted by ``(ship_date, shipment_id)``, the :data:`SCREENING_COLUMNS`
        only; ``ship_date`` is date32,
        ``quantity`` int64, categorical columns are dictionary-encoded and normalized
        (country codes upper case, status lower case, surrounding blanks removed).
    quarantine : pyarrow.Table
        Rejected rows as read (all columns as text), plus ``raw_line``, ``reason``, ``source_file``,
        ``source_row`` (row number in the file; for a malformed line, its line number).
    counts : dict
        ``rows_read``, ``accepted``, ``quarantined``, ``excluded_after_as_of``, ``by_reason``.
    files : list of dict
        Per input file: ``path``, ``format``, ``bytes``, ``rows_read``.
    """

    rows: pa.Table
    quarantine: pa.Table
    counts: dict
    files: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------------------------- reading
def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ledger_format(path: Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` from the file name."""
    name = path.name.lower()
    for suffixes, kind in (((".parquet", ".pq"), "parquet"), ((".csv", ".csv.gz"), "csv"),
                           ((".jsonl", ".ndjson", ".jsonl.gz", ".json"), "jsonl")):
        if name.endswith(suffixes):
            return kind
    raise LedgerReadError(f"{path}: unknown ledger format (use .parquet, .csv or .jsonl)")


def _read_parquet(path: Path) -> tuple[pa.Table, list[str]]:
    schema = pq.read_schema(path)
    check_parquet_schema(path, schema)
    present = [c for c in SCREENING_COLUMNS if c in schema.names]
    dictionary = [c for c in present if c in CATEGORICAL_COLUMNS and pa.types.is_string(schema.field(c).type)]
    unread = [c for c in LEDGER_COLUMNS if c in schema.names and c not in SCREENING_COLUMNS]
    table = pq.read_table(path, columns=present, read_dictionary=dictionary)
    table.validate(full=True)  # damaged pages can decode into bad UTF-8 or dictionary codes
    return table, unread


def check_columns(path: Path, names: Sequence[str]) -> None:
    """Raise :class:`LedgerReadError` for a ledger column given twice or a required column absent."""
    repeated = sorted({c for c in names if c in LEDGER_COLUMNS and list(names).count(c) > 1})
    if repeated:
        raise LedgerReadError(f"{path}: duplicate column(s): {', '.join(repeated)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise LedgerReadError(f"{path}: missing required column(s): {', '.join(missing)}")


def _scalar_type(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
            or pa.types.is_floating(kind) or pa.types.is_decimal(kind) or pa.types.is_boolean(kind)
            or pa.types.is_null(kind) or pa.types.is_date(kind) or pa.types.is_timestamp(kind))


def check_parquet_schema(path: Path, schema: pa.Schema) -> None:
    """Raise :class:`LedgerReadError` for duplicate, missing or non-scalar ledger columns of a Parquet file."""
    check_columns(path, schema.names)
    for name in LEDGER_COLUMNS:
        if name in schema.names and not _scalar_type(schema.field(name).type):
            raise LedgerReadError(f"{path}: column {name} has type {schema.field(name).type}; "
                                  "expected text, a number or a date")


def csv_options(malformed: list) -> dict:
    """Arrow CSV options for ledgers: every ledger column as text, blank as null, malformed lines
    skipped and recorded in ``malformed`` as ``(line number or None, text, reason)``."""
    def invalid_row(row):
        malformed.append((row.number if row.number is not None and row.number >= 0 else None, row.text,
                          REASON_MALFORMED))
        return "skip"

    return {"parse_options": pacsv.ParseOptions(invalid_row_handler=invalid_row),
            "convert_options": pacsv.ConvertOptions(column_types={c: pa.string() for c in LEDGER_COLUMNS},
                                                    null_values=[""], strings_can_be_null=True,
                                                    quoted_strings_can_be_null=True)}


@contextlib.contextmanager
def quiet_csv_errors():
    """Keep Arrow from printing "Exception ignored" when a malformed CSV line is not UTF-8.

    Arrow cannot hand such a line to the handler of :func:`csv_options`; the read then fails
    with an ArrowInvalid, which the callers turn into a :class:`LedgerReadError`.
    """
    previous = sys.unraisablehook

    def hook(unraisable):
        if not (isinstance(unraisable.exc_value, UnicodeDecodeError)
                and getattr(unraisable.object, "__name__", None) == "invalid_row"):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def number_malformed(path: Path, malformed: list) -> None:
    """Fill in the line numbers of malformed CSV lines (a threaded read does not know them).

    Reads the file again, on one thread; runs only when some line was malformed.
    """
    if all(number is not None for number, _, _ in malformed):
        return
    again: list = []
    with quiet_csv_errors():
        for _ in pacsv.open_csv(path, read_options=pacsv.ReadOptions(use_threads=False), **csv_options(again)):
            pass
    if len(again) == len(malformed):
        malformed[:] = again


def sniff_text(path: Path, kind: str) -> None:
    """Refuse, with a clear message, a text ledger that is compressed or not UTF-8 (UTF-16/32, NUL bytes)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    compressed = path.name.lower().endswith(".gz")
    if head[:2] == b"\x1f\x8b" and not compressed:
        raise LedgerReadError(f"{path}: gzip-compressed data; name the file {path.name}.gz")
    if compressed:
        with gzip.open(path, "rb") as handle:
            head = handle.read(4096)
    if head[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        raise LedgerReadError(f"{path}: UTF-32 text; save the ledger as UTF-8")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise LedgerReadError(f"{path}: UTF-16 text; save the ledger as UTF-8")
    if b"\x00" in head:
        raise LedgerReadError(f"{path}: NUL bytes; not a UTF-8 {kind} file (UTF-16 without a byte-order mark?)")


def _read_csv(path: Path, malformed: list) -> pa.Table:
    with quiet_csv_errors():
        table = pacsv.read_csv(path, **csv_options(malformed))
    number_malformed(path, malformed)
    return table


def _read_bytes(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.name.lower().endswith(".gz") else path.read_bytes()


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    record = dict(pairs)
    if len(record) != len(pairs):
        raise _DuplicateKey(next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i])))
    return record


def _json_text(value) -> str | None:
    """A JSON scalar as ledger text: strings as they are, numbers and booleans as JSON writes them."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _json_lines(data: bytes, malformed: list) -> pa.Table:
    """JSON Lines line by line: each line that is not a flat JSON object goes to ``malformed``."""
    columns: dict[str, list] = {c: [] for c in LEDGER_COLUMNS}
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        problem = None
        try:
            record = json.loads(line.decode("utf-8"), object_pairs_hook=_unique_keys)
        except UnicodeDecodeError:
            problem = "not UTF-8"
        except _DuplicateKey as error:
            problem = f"duplicate key {error}"
        except (ValueError, RecursionError):
            problem = "not JSON"
        else:
            if not isinstance(record, dict):
                problem = "not a JSON object"
            else:
                nested = [c for c in LEDGER_COLUMNS if isinstance(record.get(c), (dict, list))]
                problem = f"nested value in {nested[0]}" if nested else None
        if problem:
            text = line.decode("utf-8", "replace").rstrip("\r")
            malformed.append((number, text, f"{REASON_JSON_LINE}: {problem}"))
            continue
        for name in LEDGER_COLUMNS:
            columns[name].append(_json_text(record.get(name)))
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


_JSON_SCHEMA = pa.schema([(c, pa.string()) for c in LEDGER_COLUMNS if c != "quantity"])
"""Ledger text columns read from JSON as strings: no timestamp inference, a date is text as in CSV."""


def _plain_json(table: pa.Table) -> bool:
    """Did Arrow read every ledger column as CSV would see it (text, exact integers, booleans)?"""
    for name in LEDGER_COLUMNS:
        if name not in table.column_names:
            continue
        kind = table.schema.field(name).type
        if name == "quantity" and pa.types.is_floating(kind):
            # an int64 beside a float becomes a double: only exact while below 2**53
            top = pc.max(pc.abs(table.column(name))).as_py()
            if top is not None and top >= FLOAT_EXACT:
                return False
        elif not (pa.types.is_string(kind) or pa.types.is_int64(kind) or pa.types.is_boolean(kind)
                  or pa.types.is_null(kind)):
            return False
        elif pa.types.is_string(kind):
            try:
                table.column(name).validate(full=True)  # Arrow's JSON reader lets bad UTF-8 through
            except pa.ArrowInvalid:
                return False
    return True


def _read_jsonl(path: Path, malformed: list) -> pa.Table:
    """A JSON Lines ledger: by Arrow when every line is a flat object, else line by line."""
    data = _read_bytes(path)
    names = [c for c in LEDGER_COLUMNS if f'"{c}"'.encode() in data]
    check_columns(path, names)
    try:
        table = pajson.read_json(io.BytesIO(data), parse_options=pajson.ParseOptions(explicit_schema=_JSON_SCHEMA))
        table = table if _plain_json(table) else None
    except (pa.ArrowException, UnicodeError):  # a key that is not UTF-8 fails as the names are read
        table = None
    if table is None:
        table = _json_lines(data, malformed)
        if not table.num_rows and malformed:
            number, _, reason = malformed[0]
            raise LedgerReadError(f"{path}: no line is a JSON object (line {number}: {reason})")
    return table.select([c for c in names if c in table.column_names])


@dataclass
class LedgerSource:
    """One ledger file as read.

    Attributes
    ----------
    path : Path
    format : str
        ``parquet``, ``csv`` or ``jsonl``.
    table : pyarrow.Table
        The ledger columns read for screening (all columns for CSV and JSON Lines).
    unread : list of str
        Parquet columns left on disk until a quarantined or duplicate row needs them.
    malformed : list of (int, str, str)
        Lines that are not a row (a CSV line with the wrong number of fields, a JSON Lines line
        that is not a flat JSON object): line number in the file, text, reason.
    """

    path: Path
    format: str
    table: pa.Table
    unread: list[str]
    malformed: list

    def rows_as_read(self, local: np.ndarray) -> pa.Table:
        """Rows by position in the file, every ledger column as text, values as read."""
        if not len(local):
            return pa.table({name: pa.array([], pa.string()) for name in LEDGER_COLUMNS})
        taken = pa.array(local, type=pa.int64())
        table = self.table.take(taken)
        if self.unread:
            rest = pq.read_table(self.path, columns=self.unread).take(taken)
            table = pa.table({**{c: table.column(c) for c in table.column_names},
                              **{c: rest.column(c) for c in rest.column_names}})
        return pa.table({name: (_as_text(table.column(name)) if name in table.column_names
                                else pa.chunked_array([pa.nulls(len(local), pa.string())]))
                         for name in LEDGER_COLUMNS})


def read_ledger_file(path: str | Path) -> LedgerSource:
    """Read one ledger file as it is.

    Raises
    ------
    LedgerReadError
        Missing file, unknown format, unreadable content, or a required column absent.
    """
    path = Path(path)
    kind = ledger_format(path)
    check_path(path)
    malformed: list = []
    unread: list[str] = []
    try:
        if kind == "parquet":
            table, unread = _read_parquet(path)
        elif kind == "csv":
            sniff_text(path, kind)
            table = _read_csv(path, malformed)
        else:
            sniff_text(path, kind)
            table = _read_jsonl(path, malformed)
        check_columns(path, table.column_names)
        table = table.select([c for c in LEDGER_COLUMNS if c in table.column_names])
    except LedgerReadError:
        raise
    except READ_ERRORS as error:
        raise LedgerReadError(f"{path}: cannot read as {kind}: {error}") from None
    return LedgerSource(path=path, format=kind, table=table, unread=unread, malformed=malformed)


READ_ERRORS = (pa.ArrowException, OSError, EOFError, UnicodeError, ValueError, zlib.error)
"""What reading a damaged file can raise; each becomes a :class:`LedgerReadError` naming the file."""


def check_path(path: Path) -> None:
    """Raise :class:`LedgerReadError` unless ``path`` is an existing file."""
    if path.is_dir():
        raise LedgerReadError(f"{path}: is a directory, not a ledger file")
    if not path.is_file():
        raise LedgerReadError(f"{path}: no such ledger file")


# ------------------------------------------------------------------------------------ validation
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
        return np.where(ok, raw, 0).astype(np.int64), _except_nulls(~ok, column)
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
        values = np.where(whole, raw, values).astype(np.int64)
        integer = integer | whole
    return values, _except_nulls(~integer | (values <= 0), column)


def _tpp_overflows(sku: pa.ChunkedArray, quantity: np.ndarray) -> np.ndarray:
    """Rows whose quantity times the catalog unit TPP of their SKU passes int64."""
    unit_of = load_catalog().set_index("sku")["unit_tpp"]
    unit = _per_row(sku, lambda values: unit_of.reindex(values).fillna(0).to_numpy(np.int64), np.int64(0))
    return (unit > 0) & (quantity > INT64_MAX // np.maximum(unit, 1))


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
            upper = name in ("destination_country", "consignee_hq_country", "recorded_authorization")
            column = _categorical(column, pc.utf8_upper if upper else (pc.utf8_lower if name == "status" else (lambda a: a)))
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
    for name in ("destination_country", "consignee_hq_country"):
        fail(_not_in(columns[name], countries), REASON_COUNTRY.format(name))
    quantity, bad_quantity = _parse_quantities(columns["quantity"])
    fail(bad_quantity, REASON_QUANTITY)
    columns["quantity"] = pa.chunked_array([quantity])
    fail(_not_in(columns["sku"], set(load_catalog()["sku"])), REASON_SKU)
    fail(_tpp_overflows(columns["sku"], quantity), REASON_TPP_OVERFLOW)
    fail(_not_in(columns["recorded_authorization"], set(RECORDED_AUTHORIZATIONS)), REASON_RECORDED)
    return columns, reasons


def _rows_as_read(sources: list[LedgerSource], starts: np.ndarray, rows: np.ndarray) -> pa.Table:
    """Global row numbers (sorted) → those rows as read, every column as text."""
    owner = np.searchsorted(starts, rows, side="right") - 1
    pieces = [sources[i].rows_as_read(rows[owner == i] - starts[i]) for i in np.unique(owner)]
    return pa.concat_tables(pieces) if pieces else sources[0].rows_as_read(np.zeros(0, np.int64))


def _resolve_duplicates(columns: dict[str, pa.ChunkedArray], reasons: np.ndarray, order: np.ndarray,
                        others: Callable[[np.ndarray], dict[str, pa.ChunkedArray]]) -> None:
    """Quarantine repeated shipment ids among the rows still accepted.

    ``order`` lists the accepted rows in screening order. Rows are compared by their validated,
    normalized values (as the lake compares them); ``others(rows)`` gives the normalized ledger
    columns screening does not read. Exact duplicates keep their first copy (file order); ids
    that repeat with different content are quarantined entirely.
    """
    ids = columns["shipment_id"]
    ids = (ids if _is_identity(order, len(ids)) else ids.take(pa.array(order))).combine_chunks()
    if len(ids) < 2:
        return
    if pc.all(pc.less(ids[:-1], ids[1:])).as_py():
        return  # ids strictly increasing in screening order: all distinct
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset: ids.offset + len(ids) + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8) if ids.buffers()[2] is not None else np.zeros(0, np.uint8)
    hashes = hash_strings(offsets, data)
    sorted_hashes = np.sort(hashes)
    repeated = sorted_hashes[1:][sorted_hashes[1:] == sorted_hashes[:-1]]
    if not len(repeated):
        return
    candidates = np.sort(order[np.isin(hashes, repeated)])  # file order within each id
    taken = pa.array(candidates)
    content = {name: columns[name].take(taken) for name in SCREENING_COLUMNS}
    content.update(others(candidates))
    frame = pd.DataFrame({name: _plain(column) for name, column in content.items()})
    row_hash = pd.util.hash_pandas_object(frame.astype(object).where(frame.notna(), "\x00").astype(str),
                                          index=False).to_numpy()
    groups = pd.DataFrame({"id": frame["shipment_id"], "content": row_hash})
    variants = groups.groupby("id", sort=False)["content"].transform("nunique").to_numpy()
    conflict = variants > 1
    repeat = ~conflict & groups.duplicated(["id"]).to_numpy()
    reasons[candidates[repeat]] = reason_code(REASON_EXACT_DUPLICATE)
    reasons[candidates[conflict]] = reason_code(REASON_CONFLICT)


def _plain(column: pa.ChunkedArray) -> pd.Series:
    """A column as a pandas Series of plain values (dictionaries decoded)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pd.Series(column.to_pandas(), dtype=object).reset_index(drop=True)


def other_columns(as_read: pa.Table) -> dict[str, pa.ChunkedArray]:
    """The ledger columns screening does not read, normalized as stored (blanks trimmed, blank as null)."""
    return {name: _categorical(as_read.column(name), lambda a: a)
            for name in LEDGER_COLUMNS if name not in SCREENING_COLUMNS}


def _other_columns(sources: list[LedgerSource], starts: np.ndarray, rows: np.ndarray) -> dict[str, pa.ChunkedArray]:
    return other_columns(_rows_as_read(sources, starts, rows))


def _is_identity(rows: np.ndarray, n: int) -> bool:
    """Is ``rows`` simply 0..n-1 (so gathers can be skipped)?"""
    return len(rows) == n and (n == 0 or (rows[0] == 0 and bool((np.diff(rows) == 1).all())))


def _screening_order(ship_date: pa.ChunkedArray, ids: pa.ChunkedArray, rows: np.ndarray) -> tuple[np.ndarray, bool]:
    """``rows`` reordered by (ship_date, shipment_id); a linear check skips the sort for ordered input.

    Returns the order and whether the ids are already known to be distinct (strictly increasing
    along the order), which spares the duplicate search.
    """
    if len(rows) < 2:
        return rows, True
    everything = _is_identity(rows, len(ids))  # no gathers needed
    days = pc.cast(ship_date, pa.int32()).to_numpy()
    days = days if everything else days[rows]
    id_values = (ids if everything else ids.take(pa.array(rows))).combine_chunks()
    step = np.diff(days)
    if (step >= 0).all():
        if pc.all(pc.less(id_values[:-1], id_values[1:])).as_py():
            return rows, True
        ids_ordered = pc.less_equal(id_values[:-1], id_values[1:]).to_numpy(zero_copy_only=False)
        if ((step > 0) | ids_ordered).all():
            return rows, False
    table = pa.table({"d": pa.array(days), "i": id_values})
    return rows[pc.sort_indices(table, [("d", "ascending"), ("i", "ascending")]).to_numpy()], False


def read_ledgers(paths: Sequence[str | Path], *, as_of: dt.date | None = None,
                 progress: Callable[[str], None] | None = None) -> Ledger:
    """Read, validate and order one or more ledger files.

    Parameters
    ----------
    paths : sequence of path
        CSV, Parquet or JSON Lines files with the DESIGN §3 columns.
    as_of : date, optional
        Screen only rows with ``ship_date <= as_of``; later valid rows are counted as
        ``excluded_after_as_of``.
    progress : callable, optional
        Called with a short message per step.

    Returns
    -------
    Ledger

    Raises
    ------
    LedgerReadError
        A file cannot be read at all.
    """
    note = progress or (lambda message: None)
    if not paths:
        raise LedgerReadError("no ledger files given")
    parts, reason_parts, sources, files = [], [], [], []
    for path in paths:
        note(f"reading {Path(path).name}")
        source = read_ledger_file(path)
        columns, reasons = _validate(source.table)
        parts.append(columns)
        reason_parts.append(reasons)
        sources.append(source)
        files.append({"path": str(path), "format": source.format, "bytes": Path(path).stat().st_size,
                      "rows_read": source.table.num_rows + len(source.malformed),
                      "malformed_lines": len(source.malformed)})
    note("checking duplicates and order")
    columns = {name: pa.chunked_array([c for part in parts for c in part[name].chunks], type=parts[0][name].type)
               for name in SCREENING_COLUMNS}
    reasons = np.concatenate(reason_parts)
    starts = np.cumsum([0] + [s.table.num_rows for s in sources])[:-1]
    accepted = np.flatnonzero(reasons == 0)
    order, distinct = _screening_order(columns["ship_date"], columns["shipment_id"], accepted)
    if not distinct:
        _resolve_duplicates(columns, reasons, order, lambda rows: _other_columns(sources, starts, rows))
    keep = reasons[order] == 0
    order = order[keep]
    excluded = 0
    if as_of is not None:
        days = pc.cast(columns["ship_date"], pa.int32()).to_numpy()[order]
        within = days <= (as_of - dt.date(1970, 1, 1)).days
        excluded = int((~within).sum())
        order = order[within]
    rows = pa.table({name: columns[name] for name in SCREENING_COLUMNS})
    if not _is_identity(order, rows.num_rows):
        rows = rows.take(pa.array(order))
    bad = np.flatnonzero(reasons)
    quarantine = _quarantine_table(sources, starts, reasons, bad)
    rows_read = sum(f["rows_read"] for f in files)
    by_reason = pd.Series(quarantine.column("reason").to_pylist(), dtype=object).value_counts().to_dict() \
        if quarantine.num_rows else {}
    counts = {"rows_read": rows_read, "accepted": rows.num_rows, "quarantined": quarantine.num_rows,
              "excluded_after_as_of": excluded, "by_reason": {k: int(v) for k, v in sorted(by_reason.items())}}
    if counts["accepted"] + counts["quarantined"] + excluded != rows_read:
        raise AssertionError(f"row counts do not reconcile: {counts}")
    return Ledger(rows=rows, quarantine=quarantine, counts=counts, files=files)


def _quarantine_table(sources: list[LedgerSource], starts: np.ndarray, reasons: np.ndarray,
                      bad: np.ndarray) -> pa.Table:
    """Rejected rows as read (every column as text), with reason and origin; then malformed lines."""
    table = _rows_as_read(sources, starts, bad)
    owner = np.searchsorted(starts, bad, side="right") - 1
    texts = np.array(_REASON_TEXTS, dtype=object)[reasons[bad]]
    table = table.append_column("raw_line", pa.nulls(len(bad), pa.string()))
    table = table.append_column("reason", pa.array(texts.tolist(), type=pa.string()))
    table = table.append_column("source_file", pa.array([str(sources[i].path) for i in owner], type=pa.string()))
    table = table.append_column("source_row", pa.array(bad - starts[owner] + 1, type=pa.int64()))
    extra = [{**{name: None for name in LEDGER_COLUMNS}, "raw_line": text, "reason": reason,
              "source_file": str(source.path), "source_row": number}
             for source in sources for number, text, reason in source.malformed]
    if extra:
        table = pa.concat_tables([table, pa.Table.from_pylist(extra, schema=table.schema)])
    return table
