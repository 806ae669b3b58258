"""Ledger ingest: read CSV, Parquet and JSON Lines files, validate every row, quarantine bad ones.

Bad rows never vanish and never stop the run: each is written to the quarantine with a reason.
Counts reconcile: rows read = accepted + quarantined (+ rows after ``--as-of``, when given).
A file that cannot be read at all raises :class:`LedgerReadError` naming the file.

Accepted rows come back in screening order, ``(ship_date, shipment_id)``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
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

REASON_MISSING = "missing required field: {}"
REASON_DATE = "unparseable date"
REASON_STATUS = "invalid status (expected shipped or pending)"
REASON_COUNTRY = "unknown country code: {}"
REASON_QUANTITY = "quantity not a positive integer"
REASON_SKU = "unknown SKU"
REASON_RECORDED = "unknown recorded_authorization (expected NLR, AIA, LPP, VEU or LICENSE)"
REASON_CONFLICT = "duplicate shipment_id with different content"
REASON_EXACT_DUPLICATE = "exact duplicate of an earlier row (counted once)"
REASON_MALFORMED = "malformed CSV line"


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
        Rejected rows as read (all columns as text), plus ``reason``, ``source_file``, ``source_row``.
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
    present = [c for c in SCREENING_COLUMNS if c in schema.names]
    dictionary = [c for c in present if c in CATEGORICAL_COLUMNS and pa.types.is_string(schema.field(c).type)]
    unread = [c for c in LEDGER_COLUMNS if c in schema.names and c not in SCREENING_COLUMNS]
    return pq.read_table(path, columns=present, read_dictionary=dictionary), unread


def csv_options(malformed: list) -> dict:
    """Arrow CSV options for ledgers: every ledger column as text, blank as null, malformed lines
    skipped and recorded in ``malformed`` as ``(line number, text)``."""
    def invalid_row(row):
        malformed.append((row.number, row.text))
        return "skip"

    return {"parse_options": pacsv.ParseOptions(invalid_row_handler=invalid_row),
            "convert_options": pacsv.ConvertOptions(column_types={c: pa.string() for c in LEDGER_COLUMNS},
                                                    null_values=[""], strings_can_be_null=True,
                                                    quoted_strings_can_be_null=True)}


def _read_csv(path: Path, malformed: list) -> pa.Table:
    return pacsv.read_csv(path, **csv_options(malformed))


def _read_jsonl(path: Path) -> pa.Table:
    try:
        table = pajson.read_json(path)
    except pa.ArrowInvalid:
        # Mixed JSON types in one column (a number here, a string there): read it as text.
        import gzip

        opener = gzip.open if path.name.endswith(".gz") else open
        records = []
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as error:
                        raise LedgerReadError(f"{path}: line {number} is not JSON: {error.msg}") from None
                    records.append({k: (None if v is None else str(v)) for k, v in record.items()})
        names = [c for c in LEDGER_COLUMNS if any(c in record for record in records)]
        table = pa.Table.from_pylist(records, schema=pa.schema([(c, pa.string()) for c in names]))
    return table


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
    malformed : list of (int, str)
        CSV lines that could not be split into fields: line number and text.
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
    if not path.is_file():
        raise LedgerReadError(f"{path}: no such ledger file")
    malformed: list = []
    unread: list[str] = []
    try:
        if kind == "parquet":
            table, unread = _read_parquet(path)
        elif kind == "csv":
            table = _read_csv(path, malformed)
        else:
            table = _read_jsonl(path)
    except LedgerReadError:
        raise
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as error:
        raise LedgerReadError(f"{path}: cannot read as {kind}: {error}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise LedgerReadError(f"{path}: missing required column(s): {', '.join(missing)}")
    table = table.select([c for c in LEDGER_COLUMNS if c in table.column_names])
    return LedgerSource(path=path, format=kind, table=table, unread=unread, malformed=malformed)


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


def _parse_dates(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray | None]:
    """ship_date as date32 and a mask of unparseable values (``None``: typed dates, none bad)."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_date32(kind):
        return column, None
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return pc.cast(column, pa.date32()), None
    text = pc.utf8_trim_whitespace(_as_text(column))
    parsed = pc.cast(pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())
    # strptime rolls impossible days over (2025-02-30 -> 2025-03-02): require an exact round trip.
    exact = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), text)
    parsed = pc.if_else(exact, parsed, pa.scalar(None, pa.date32()))
    return parsed, _except_nulls(pc.is_null(parsed).to_numpy(zero_copy_only=False), column)


def _parse_quantities(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """quantity as int64 and a mask of values that are not positive integers (nulls excluded)."""
    kind = column.type
    if pa.types.is_integer(kind):
        values = pc.fill_null(column, 1).to_numpy().astype(np.int64, copy=False)
        if pa.types.is_uint64(kind):
            bad = pc.fill_null(pc.greater(column, INT64_MAX), False).to_numpy(zero_copy_only=False)
            values = np.where(bad, 0, values)
        else:
            bad = np.zeros(len(values), bool)
        return values, _except_nulls(bad | (values <= 0), column)
    if pa.types.is_floating(kind):
        raw = pc.fill_null(column, 1.0).to_numpy(zero_copy_only=False)
        ok = np.isfinite(raw) & (raw > 0) & (raw == np.floor(raw)) & (raw < 2.0**63)
        return np.where(ok, raw, 0).astype(np.int64), _except_nulls(~ok, column)
    text = pc.utf8_trim_whitespace(_as_text(column))
    digits = pc.fill_null(pc.match_substring_regex(text, r"^\+?[0-9]{1,19}$"), False)
    cleaned = pc.if_else(digits, pc.utf8_ltrim(text, characters="+"), pa.scalar("0"))
    as_float = pc.cast(cleaned, pa.float64()).to_numpy(zero_copy_only=False)
    digits = digits.to_numpy(zero_copy_only=False) & (as_float < 2.0**63)
    values = pc.cast(pc.if_else(pa.chunked_array([digits]), cleaned, pa.scalar("0")), pa.int64()).to_numpy()
    return values, _except_nulls(~digits | (values <= 0), column)


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
            column = pc.utf8_trim_whitespace(_as_text(column))
            blank = pc.fill_null(pc.equal(column, ""), True)
            missing[name] = blank.to_numpy(zero_copy_only=False) if pc.any(blank).as_py() else None
        else:
            missing[name] = _is_null(column)
        columns[name] = column
    for name in REQUIRED_COLUMNS:
        fail(missing[name], REASON_MISSING.format(name))
    columns["ship_date"], bad_date = _parse_dates(columns["ship_date"])
    fail(bad_date, REASON_DATE)
    fail(_not_in(columns["status"], set(STATUSES)), REASON_STATUS)
    countries = set(load_countries()["alpha2"])
    for name in ("destination_country", "consignee_hq_country"):
        fail(_not_in(columns[name], countries), REASON_COUNTRY.format(name))
    quantity, bad_quantity = _parse_quantities(columns["quantity"])
    fail(bad_quantity, REASON_QUANTITY)
    columns["quantity"] = pa.chunked_array([quantity])
    fail(_not_in(columns["sku"], set(load_catalog()["sku"])), REASON_SKU)
    fail(_not_in(columns["recorded_authorization"], set(RECORDED_AUTHORIZATIONS)), REASON_RECORDED)
    return columns, reasons


def _rows_as_read(sources: list[LedgerSource], starts: np.ndarray, rows: np.ndarray) -> pa.Table:
    """Global row numbers (sorted) → those rows as read, every column as text."""
    owner = np.searchsorted(starts, rows, side="right") - 1
    pieces = [sources[i].rows_as_read(rows[owner == i] - starts[i]) for i in np.unique(owner)]
    return pa.concat_tables(pieces) if pieces else sources[0].rows_as_read(np.zeros(0, np.int64))


def _resolve_duplicates(columns: dict[str, pa.ChunkedArray], reasons: np.ndarray, order: np.ndarray,
                        content: Callable[[np.ndarray], pa.Table]) -> None:
    """Quarantine repeated shipment ids among the rows still accepted.

    ``order`` lists the accepted rows in screening order. Exact duplicates keep their first
    copy (file order); ids that repeat with different content are quarantined entirely.
    """
    ids = columns["shipment_id"]
    ids = (ids if _is_identity(order, len(ids)) else ids.take(pa.array(order))).combine_chunks()
    if len(ids) < 2:
        return
    if pc.all(pc.less(ids[:-1], ids[1:])).as_py():
        return  # ids strictly increasing in screening order: all distinct
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset: ids.offset + len(ids) + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)
    hashes = hash_strings(offsets, data)
    sorted_hashes = np.sort(hashes)
    repeated = sorted_hashes[1:][sorted_hashes[1:] == sorted_hashes[:-1]]
    if not len(repeated):
        return
    candidates = np.sort(order[np.isin(hashes, repeated)])  # file order within each id
    frame = content(candidates).to_pandas().fillna("\x00")
    frame["_row"] = candidates
    for _, group in frame.groupby("shipment_id", sort=False):
        if len(group) < 2:
            continue  # a hash collision, not a duplicate
        content = group.drop(columns="_row")
        if (content == content.iloc[0]).all(axis=None):
            reasons[group["_row"].to_numpy()[1:]] = reason_code(REASON_EXACT_DUPLICATE)
        else:
            reasons[group["_row"].to_numpy()] = reason_code(REASON_CONFLICT)


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
        _resolve_duplicates(columns, reasons, order, lambda rows: _rows_as_read(sources, starts, rows))
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
    extra = [{**{name: None for name in LEDGER_COLUMNS}, "raw_line": text, "reason": REASON_MALFORMED,
              "source_file": str(source.path), "source_row": number}
             for source in sources for number, text in source.malformed]
    if extra:
        table = pa.concat_tables([table, pa.Table.from_pylist(extra, schema=table.schema)])
    return table
