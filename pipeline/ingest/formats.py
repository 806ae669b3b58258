"""Reading ledger files as they are: CSV, Parquet and JSON Lines (plain or gzip-compressed).

A file that cannot be read at all raises :class:`~pipeline.ingest.schema.LedgerReadError`
naming the file; a line that is not a row (malformed CSV, a JSON Lines line that is not a flat
object) is recorded for the quarantine, never dropped.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from pipeline.ingest.schema import (CATEGORICAL_COLUMNS, FLOAT_EXACT, LEDGER_COLUMNS, REASON_JSON_LINE,
                                    REASON_MALFORMED, REQUIRED_COLUMNS, SCREENING_COLUMNS, LedgerReadError)
from pipeline.ingest.validate import _as_text


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
    if head[:4] == b"PAR1":
        raise LedgerReadError(f"{path}: is Parquet, not {'CSV' if kind == 'csv' else 'JSON Lines'} "
                              "(rename it .parquet)")
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


def _lone_surrogate(record: dict) -> str | None:
    """The first ledger column whose text holds an escaped lone surrogate (``"\\ud800"``), not UTF-8."""
    for name in LEDGER_COLUMNS:
        value = record.get(name)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
    return None


def _json_lines(data: bytes, malformed: list) -> tuple[pa.Table, np.ndarray]:
    """JSON Lines line by line: each line that is not a flat JSON object goes to ``malformed``.

    Returns the rows and, per row, its 1-based line number.
    """
    columns: dict[str, list] = {c: [] for c in LEDGER_COLUMNS}
    numbers: list[int] = []
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
                surrogate = None if nested else _lone_surrogate(record)
                problem = (f"nested value in {nested[0]}" if nested
                           else f"lone surrogate escape in {surrogate} (not UTF-8 text)" if surrogate else None)
        if problem:
            text = line.decode("utf-8", "replace").rstrip("\r")
            malformed.append((number, text, f"{REASON_JSON_LINE}: {problem}"))
            continue
        for name in LEDGER_COLUMNS:
            columns[name].append(_json_text(record.get(name)))
        numbers.append(number)
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    return table, np.array(numbers, np.int64)


def _object_lines(data: bytes) -> np.ndarray:
    """1-based numbers of the lines that are not blank (the rows Arrow's JSON reader makes, in order)."""
    raw = np.frombuffer(data, np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(raw == 10) + 1])
    starts = starts[starts < len(raw)]
    if not len(starts):
        return np.zeros(0, np.int64)
    text = ~np.isin(raw, np.frombuffer(b" \t\r\n", np.uint8))
    return np.flatnonzero(np.logical_or.reduceat(text, starts)).astype(np.int64) + 1


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


def _read_jsonl(path: Path, malformed: list) -> tuple[pa.Table, np.ndarray | None]:
    """A JSON Lines ledger: by Arrow when every line is a flat object, else line by line.

    Returns the rows and, per row, its 1-based line number (``None``: every line is a row).
    An empty file, or one of blank lines only (after a byte-order mark), has no rows.
    """
    data = _read_bytes(path)
    if not data.removeprefix(b"\xef\xbb\xbf").strip():  # a byte-order mark alone is empty too
        return pa.table({c: pa.array([], pa.string()) for c in LEDGER_COLUMNS}), None
    names = [c for c in LEDGER_COLUMNS if f'"{c}"'.encode() in data]
    check_columns(path, names)
    try:
        table = pajson.read_json(io.BytesIO(data), parse_options=pajson.ParseOptions(explicit_schema=_JSON_SCHEMA))
        table = table if _plain_json(table) else None
    except (pa.ArrowException, UnicodeError):  # a key that is not UTF-8 fails as the names are read
        table = None
    if table is not None:
        lines = _object_lines(data)
        if len(lines) != table.num_rows:  # not one object per line: find the lines that are not
            table = None
    if table is None:
        table, lines = _json_lines(data, malformed)
        if not table.num_rows and malformed:
            number, _, reason = malformed[0]
            raise LedgerReadError(f"{path}: no line is a JSON object (line {number}: {reason})")
    if len(lines) == table.num_rows and (not len(lines) or lines[-1] == len(lines)):
        lines = None  # row i is line i + 1
    return table.select([c for c in names if c in table.column_names]), lines


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
    lines : numpy.ndarray or None
        JSON Lines: the 1-based line number of each row, where blank or malformed lines make it
        differ from the row number; ``None`` otherwise.
    """

    path: Path
    format: str
    table: pa.Table
    unread: list[str]
    malformed: list
    lines: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        """Rows read from the file (malformed lines aside)."""
        return self.table.num_rows

    def source_rows(self, local: np.ndarray) -> np.ndarray:
        """``source_row`` of rows by position: the row number (CSV, Parquet) or line number (JSON Lines)."""
        local = np.asarray(local, np.int64)
        return local + 1 if self.lines is None else self.lines[local]

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
        return as_read(table)


def as_read(table: pa.Table) -> pa.Table:
    """Every ledger column of rows as read, as text (a column the file lacks: nulls)."""
    return pa.table({name: (_as_text(table.column(name)) if name in table.column_names
                            else pa.chunked_array([pa.nulls(table.num_rows, pa.string())]))
                     for name in LEDGER_COLUMNS})


BATCH_ROWS = 1 << 20
"""Rows of a Parquet ledger validated at a time (:func:`parquet_batches`): a row group, unless it
holds more than twice this many rows."""


@dataclass
class ParquetLedger(LedgerSource):
    """A Parquet ledger read a batch at a time (:func:`parquet_batches`): the rows as read stay in
    the file, and the few that a quarantine or a duplicate check needs are read back by row group.

    Attributes
    ----------
    row_groups : numpy.ndarray
        First row of each row group, then the number of rows.
    """

    row_groups: np.ndarray | None = None

    @property
    def num_rows(self) -> int:
        """Rows in the file."""
        return int(self.row_groups[-1])

    def rows_as_read(self, local: np.ndarray) -> pa.Table:
        """Rows by position in the file (sorted), every ledger column as text, values as read."""
        local = np.asarray(local, np.int64)
        if not len(local):
            return super().rows_as_read(local)
        parquet = pq.ParquetFile(self.path)
        present = [c for c in LEDGER_COLUMNS if c in parquet.schema_arrow.names]
        group = np.searchsorted(self.row_groups, local, side="right") - 1
        pieces = [parquet.read_row_group(int(g), columns=present).take(pa.array(local[group == g] - self.row_groups[g]))
                  for g in np.unique(group)]
        return as_read(pa.concat_tables(pieces))


def parquet_batches(path: str | Path, columns: Sequence[str] = SCREENING_COLUMNS
                    ) -> tuple[ParquetLedger, Iterator[pa.Table]]:
    """A Parquet ledger, and its ``columns`` (those present) as read, :data:`BATCH_ROWS` rows at a
    time (a file without rows gives one empty batch).

    Only one batch is held at a time, so a caller that keeps the validated columns alone holds
    far less than the file as read (``screen``; ``ingest`` streams every ledger column).

    Raises
    ------
    LedgerReadError
        Missing file, unreadable content, or a required column absent (the batches raise it too,
        for a damaged page).
    """
    path = Path(path)
    check_path(path)
    try:
        schema = pq.read_schema(path)
        check_parquet_schema(path, schema)
        present = [c for c in columns if c in schema.names]
        dictionary = [c for c in present if c in CATEGORICAL_COLUMNS and pa.types.is_string(schema.field(c).type)]
        parquet = pq.ParquetFile(path, read_dictionary=dictionary)
        meta = parquet.metadata
        starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
    except LedgerReadError:
        raise
    except READ_ERRORS as error:
        raise LedgerReadError(f"{path}: cannot read as parquet: {error}") from None
    source = ParquetLedger(path=path, format="parquet", table=None,
                           unread=[c for c in LEDGER_COLUMNS if c in schema.names and c not in present],
                           malformed=[], row_groups=starts)

    def batches() -> Iterator[pa.Table]:
        try:
            if not meta.num_rows:
                yield parquet.schema_arrow.empty_table().select(present)
            for group in range(meta.num_row_groups):  # a row group at a time where it is not too large
                if meta.row_group(group).num_rows <= 2 * BATCH_ROWS:
                    parts = [parquet.read_row_group(group, columns=present)]
                else:
                    parts = (pa.Table.from_batches([batch]) for batch in
                             parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=present))
                for part in parts:
                    part.validate(full=True)  # damaged pages can decode into bad UTF-8 or dictionary codes
                    yield part
        except READ_ERRORS as error:
            raise LedgerReadError(f"{path}: cannot read as parquet: {error}") from None

    return source, batches()


def read_ledger_file(path: str | Path) -> LedgerSource:
    """Read one ledger file as it is.

    Raises
    ------
    LedgerReadError
        Missing file, unknown format, unreadable content, or a required column absent.
    """
    path = Path(path)
    check_path(path)  # a folder before its name: "lake" or "lk.csv" is no ledger file either
    kind = ledger_format(path)
    malformed: list = []
    unread: list[str] = []
    lines = None
    try:
        if kind == "parquet":
            table, unread = _read_parquet(path)
        elif kind == "csv":
            sniff_text(path, kind)
            table = _read_csv(path, malformed)
        else:
            sniff_text(path, kind)
            table, lines = _read_jsonl(path, malformed)
        check_columns(path, table.column_names)
        table = table.select([c for c in LEDGER_COLUMNS if c in table.column_names])
    except LedgerReadError:
        raise
    except READ_ERRORS as error:
        raise LedgerReadError(f"{path}: cannot read as {kind}: {error}") from None
    return LedgerSource(path=path, format=kind, table=table, unread=unread, malformed=malformed, lines=lines)


READ_ERRORS = (pa.ArrowException, OSError, EOFError, UnicodeError, ValueError, zlib.error)
"""What reading a damaged file can raise; each becomes a :class:`LedgerReadError` naming the file."""


def check_path(path: Path) -> None:
    """Raise :class:`LedgerReadError` unless ``path`` is an existing file."""
    if path.is_dir():
        if (path / "manifest.json").is_file():  # a ledger lake (pipeline.lake.MANIFEST)
            raise LedgerReadError(f"{path}: is a lake folder; a lake folder must be given alone, "
                                  "not with other ledgers or lakes")
        raise LedgerReadError(f"{path}: is a directory, not a ledger file")
    if not path.is_file():
        raise LedgerReadError(f"{path}: no such ledger file")
