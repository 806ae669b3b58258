"""Input ledgers streamed for ingest: Parquet and CSV a batch at a time, JSON Lines whole.

Parquet is read as ``screen`` reads it (:func:`pipeline.ingest.formats.parquet_batches`), every
ledger column.

Rows are read as they are; validation is :mod:`pipeline.ingest`'s. Rows a later check rejects
are read back from the file by position (:func:`_rows_as_read`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.ingest.formats import (READ_ERRORS, as_read, check_columns, check_path, csv_options, file_digest,
                                     ledger_format, number_malformed, parquet_batches, quiet_csv_errors,
                                     read_ledger_file, sniff_text)
from pipeline.ingest.schema import LEDGER_COLUMNS, LedgerReadError
from pipeline.lake.schema import QUARANTINE_SCHEMA

BATCH_ROWS = 1 << 20
"""Rows validated at a time of a JSON Lines ledger (read whole); Parquet streams by
:func:`pipeline.ingest.formats.parquet_batches`."""
CSV_BLOCK_BYTES = 64 << 20
"""Bytes of CSV text parsed at a time: CSV ledgers stream like Parquet ones."""


@dataclass
class _Source:
    """One input file being ingested."""

    path: Path
    format: str
    sha256: str
    bytes: int
    start: int                    # global number of its first row
    rows: int = 0                 # rows read (excluding malformed CSV lines)
    expected: int = 0             # rows in the file, when known before reading (Parquet)
    malformed: list = field(default_factory=list)
    whole: object = None          # the LedgerSource: a CSV / JSON Lines file read whole, a ParquetLedger


def _open_source(path: Path, start: int) -> _Source:
    kind = ledger_format(path)
    check_path(path)
    return _Source(path=path, format=kind, sha256=file_digest(path), bytes=path.stat().st_size, start=start)


def _batches(source: _Source) -> Iterator[pa.Table]:
    """The file's rows as read, a batch at a time (Parquet and CSV stream; JSON Lines is read whole)."""
    if source.format == "parquet":
        source.whole, batches = parquet_batches(source.path, LEDGER_COLUMNS)
        source.expected = source.whole.num_rows
        yield from batches
        return
    if source.format == "csv":
        yield from _csv_batches(source.path, source.malformed)
        return
    whole = read_ledger_file(source.path)
    if whole.unread:
        raise AssertionError("only Parquet files leave columns unread")
    source.whole, source.malformed = whole, whole.malformed
    for offset in range(0, max(whole.table.num_rows, 1), BATCH_ROWS):
        yield whole.table.slice(offset, BATCH_ROWS)


def _csv_batches(path: Path, malformed: list) -> Iterator[pa.Table]:
    """A CSV ledger's rows as read (text), :data:`CSV_BLOCK_BYTES` at a time; bad lines go to ``malformed``."""
    try:
        sniff_text(path, "csv")
        with quiet_csv_errors():
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                                    **csv_options(malformed))
            names = reader.schema.names
            check_columns(path, names)
            present = [c for c in LEDGER_COLUMNS if c in names]
            for batch in reader:
                yield pa.Table.from_batches([batch]).select(present)
        number_malformed(path, malformed)
    except READ_ERRORS as error:
        raise LedgerReadError(f"{path}: cannot read as csv: {error}") from None


def _rows_as_read(source: _Source, local: np.ndarray) -> pa.Table:
    """Rows of one file by position (sorted), every ledger column as text."""
    if source.whole is not None:
        return source.whole.rows_as_read(local)
    pieces, offset = [], 0  # a streamed CSV file: read it again, keeping only the rows asked for
    for batch in _csv_batches(source.path, []):
        wanted = local[(local >= offset) & (local < offset + batch.num_rows)] - offset
        if len(wanted):
            pieces.append(as_read(batch.take(pa.array(wanted))))
        offset += batch.num_rows
    return pa.concat_tables(pieces)


def _quarantine_rows(as_read: pa.Table, reasons: Sequence[str], source: _Source, local: np.ndarray) -> pa.Table:
    n = as_read.num_rows
    return pa.table({**{c: as_read.column(c) for c in LEDGER_COLUMNS},
                     "raw_line": pa.nulls(n, pa.string()), "reason": pa.array(list(reasons), pa.string()),
                     "source_file": pa.array([str(source.path)] * n, pa.string()),
                     "source_row": pa.array(source.whole.source_rows(local) if source.whole is not None
                                             else local + 1, pa.int64()),
                     "source_sha256": pa.array([source.sha256] * n, pa.string())}, schema=QUARANTINE_SCHEMA)
