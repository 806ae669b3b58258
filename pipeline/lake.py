"""The ledger lake: validated ledger rows kept as month partitions of Parquet, with a manifest.

Layout of a lake folder::

    manifest.json                       the single commit point (replaced atomically)
    partitions/YYYY-MM/rows-<sha>.parquet  one file per ship_date month, rows in screening order
    partitions/YYYY-MM/ids-<sha>.parquet   its id index: shipment_id, id_hash, row_hash, shipped
    quarantine/q-<generation>.parquet   rows rejected by one ingest, with their reason
    .staging/                           work files of a running ingest (removed when it ends)

Files are never modified in place: a partition that gains or loses rows is written as a new
file, the manifest is replaced with :func:`os.replace`, and the files it supersedes are listed
in the manifest's ``retired`` and kept for :data:`KEEP_GENERATIONS` more commits and at least
:data:`RETAIN_SECONDS`, so that readers of earlier generations can finish (see :class:`Lake`);
later commits remove them. A crash at any point leaves the previous manifest, and every file it
names, untouched; the next ingest removes what the crashed one left behind. The manifest
records each file's SHA-256, size and Parquet footer digest: reads check size, footer and row
count, :func:`pipeline.lake_verify.verify` every byte.

Ingest rules (one call of :func:`ingest`):

- Rows are validated by :mod:`pipeline.ingest` (same checks, same reasons).
- Among the rows of one call, repeated ``shipment_id`` values are resolved as
  :func:`pipeline.ingest.read_ledgers` does: an exact repeat is quarantined as a duplicate (the
  first copy, in file order, is kept); ids that repeat with different content are all
  quarantined.
- Against the rows already in the lake: the same id with identical content is a no-op
  (``duplicates``); a ``shipped`` row replaces a ``pending`` row of the same id
  (``superseded``); any other difference is quarantined.

"Identical content" compares the stored (validated, normalized) values of every ledger column,
so ``"us"`` and ``"US"`` are the same destination and ``"S-1 "`` is ``"S-1"``, as in ``read_ledgers``.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kernels.identifiers import hash_strings
from pipeline.ingest import (CATEGORICAL_COLUMNS, LEDGER_COLUMNS, REASON_CONFLICT, REASON_EXACT_DUPLICATE,
                             REASON_MALFORMED, REQUIRED_COLUMNS, SCREENING_COLUMNS, Ledger, LedgerReadError,
                             READ_ERRORS, _as_text, _categorical, _REASON_TEXTS, _validate, check_columns,
                             check_parquet_schema, check_path, csv_options, file_digest, ledger_format,
                             number_malformed, quiet_csv_errors, read_ledger_file, reason_code, sniff_text)

LAKE_FORMAT = "chipscreen-lake"
LAKE_VERSION = 1
MANIFEST = "manifest.json"
STAGING = ".staging"
LOCK = ".ingest.lock"
CRASH_ENV = "CHIPSCREEN_INGEST_CRASH_AFTER"
"""Test hook: exit the process abruptly (``os._exit(1)``) once this many partitions are written."""
KEEP_GENERATIONS = 2
"""Partition and index files a commit supersedes stay on disk for this many further commits ..."""
RETAIN_SECONDS = 3600
"""... and at least this long after the commit that superseded them (see :class:`Lake`)."""
BATCH_ROWS = 1 << 20
CSV_BLOCK_BYTES = 64 << 20
"""Bytes of CSV text parsed at a time: CSV ledgers stream like Parquet ones."""
"""Rows validated at a time while streaming a Parquet ledger."""

STORED_COLUMNS = SCREENING_COLUMNS + tuple(c for c in LEDGER_COLUMNS if c not in SCREENING_COLUMNS)
"""Columns of a partition file: the screening columns (the ``Ledger.rows`` schema) first, then
the ledger columns screening does not read (``exporter``, ``consignee_address``)."""
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
STORED_SCHEMA = pa.schema([(c, pa.date32() if c == "ship_date" else pa.int64() if c == "quantity"
                            else _DICTIONARY if c in CATEGORICAL_COLUMNS else pa.string())
                           for c in STORED_COLUMNS])
INDEX_SCHEMA = pa.schema([("shipment_id", pa.string()), ("id_hash", pa.uint64()), ("row_hash", pa.uint64()),
                          ("shipped", pa.bool_())])
QUARANTINE_SCHEMA = pa.schema([(c, pa.string()) for c in LEDGER_COLUMNS] + [
    ("raw_line", pa.string()), ("reason", pa.string()), ("source_file", pa.string()),
    ("source_row", pa.int64()), ("source_sha256", pa.string())])

REASON_LAKE_CONFLICT = "shipment_id already in the lake with different content"
REASON_ALREADY_SHIPPED = "pending row for a shipment_id already shipped in the lake"
_NO_OP = -1
_NO_MONTH = np.iinfo(np.int32).min
"""Month slot of a rejected row (months before 1970 are negative)."""
"""Reason slot of a row identical to one already in the lake (neither added nor quarantined)."""

_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


class LakeError(RuntimeError):
    """A folder is not a ledger lake, or a lake is damaged or busy."""


@dataclass(frozen=True)
class Partition:
    """One month of ledger rows, as the manifest records it.

    Attributes
    ----------
    key : str
        ``YYYY-MM`` of ``ship_date``.
    path : str
        Partition file, relative to the lake folder.
    first_date, last_date : datetime.date
        Earliest and latest ``ship_date`` in the partition.
    rows : int
    sha256 : str
        SHA-256 of the partition file.
    ingested_at : str
        ISO time (UTC) this version of the partition was written.
    bytes : int or None
        Size of the partition file (None in manifests written before sizes were recorded).
    footer_sha256 : str or None
        SHA-256 of its Parquet footer, checked at each read (None in older manifests).
    """

    key: str
    path: str
    first_date: dt.date
    last_date: dt.date
    rows: int
    sha256: str
    ingested_at: str
    bytes: int | None = None
    footer_sha256: str | None = None


@dataclass
class IngestReport:
    """What one :func:`ingest` call did.

    Attributes
    ----------
    lake : Path
    generation : int
        Lake generation after the call (unchanged when nothing was committed).
    committed : bool
        False when the call changed nothing (every row already in the lake or quarantined before).
    counts : dict
        ``rows_read`` = ``accepted`` + ``duplicates`` + ``quarantined``. ``accepted``: rows added
        to the lake, of which ``superseded`` replaced a pending row of the same id;
        ``duplicates``: rows already in the lake with identical content; ``quarantined``: rows
        rejected, by reason in ``by_reason``; ``quarantine_added``: those not already in the
        lake's quarantine (a file ingested again adds none).
    partitions_written : list of str
        Keys of the partitions written as new versions (or removed, when emptied).
    files : list of dict
        Per input file: ``path``, ``sha256``, ``format``, ``bytes``, ``rows_read``,
        ``malformed_lines``, ``new`` (not ingested before).
    seconds : float
    """

    lake: Path
    generation: int
    committed: bool
    counts: dict
    partitions_written: list[str] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    seconds: float = 0.0


# ------------------------------------------------------------------------------------- reading
class Lake:
    """A ledger lake opened for reading (a snapshot of its manifest).

    Notes
    -----
    Consistency: a ``Lake`` reads the one manifest generation it opened. Partition files are
    immutable (named by content hash); a commit replaces the manifest and keeps the files it
    supersedes for :data:`KEEP_GENERATIONS` more commits and at least :data:`RETAIN_SECONDS`,
    so a reader that opened generation ``g`` can finish while ingests go on. A file gone all
    the same is a :class:`LakeError` ("the lake changed during the run"), never a mix of
    generations. Each read checks the file's size, Parquet footer and row count against the
    manifest (a mismatch is a :class:`LakeError`); :func:`pipeline.lake_verify.verify` checks
    every byte (SHA-256).

    Examples
    --------
    >>> lake = Lake.open("lake")                        # doctest: +SKIP
    >>> ledger = lake.ledger(as_of=dt.date(2026, 6, 30))  # doctest: +SKIP
    """

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self._manifest = manifest
        self.generation: int = manifest["generation"]
        self.partitions: list[Partition] = [
            Partition(key=p["key"], path=p["path"], first_date=dt.date.fromisoformat(p["first_date"]),
                      last_date=dt.date.fromisoformat(p["last_date"]), rows=p["rows"], sha256=p["sha256"],
                      ingested_at=p["ingested_at"], bytes=p.get("bytes"), footer_sha256=p.get("footer_sha256"))
            for p in manifest["partitions"]]
        self._index_paths = {p["key"]: p["index"] for p in manifest["partitions"]}
        self._index_entries = {p["key"]: p for p in manifest["partitions"]}
        self.files: list[dict] = manifest["files"]
        """Ingested source files: ``path``, ``sha256``, ``format``, ``bytes``, ``rows_read``, ..."""
        self.counts: dict = manifest["counts"]
        """Lake totals: ``rows``, ``quarantined``, ``superseded``, ``by_reason``."""

    @classmethod
    def open(cls, path: str | Path) -> "Lake":
        """Open the lake in ``path``.

        Raises
        ------
        LakeError
            ``path`` holds no lake manifest, or the manifest is not one.
        """
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise LakeError(f"{path}: not a ledger lake (no {MANIFEST}); create one with "
                            f"`chipscreen ingest LEDGER... --lake {path}`")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as error:
            raise LakeError(f"{manifest_path}: unreadable manifest: {error}") from None
        if manifest.get("format") != LAKE_FORMAT:
            raise LakeError(f"{manifest_path}: not a {LAKE_FORMAT} manifest")
        if manifest.get("version") != LAKE_VERSION:
            raise LakeError(f"{manifest_path}: lake version {manifest.get('version')} (this code reads {LAKE_VERSION})")
        try:
            return cls(path, manifest)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise LakeError(f"{manifest_path}: damaged manifest ({type(error).__name__}: {error})") from None

    def partition(self, key: str) -> Partition:
        """The partition of month ``key`` (``YYYY-MM``)."""
        for part in self.partitions:
            if part.key == key:
                return part
        raise KeyError(key)

    def read(self, partition: Partition | str, columns: Sequence[str] | None = None) -> pa.Table:
        """Rows of one partition in screening order, ``(ship_date, shipment_id)``.

        Parameters
        ----------
        partition : Partition or str
            A partition or its key.
        columns : sequence of str, optional
            Default: the :data:`pipeline.ingest.SCREENING_COLUMNS`, the schema of ``Ledger.rows``;
            :data:`STORED_COLUMNS` adds ``exporter`` and ``consignee_address``.

        Raises
        ------
        LakeError
            The file is missing, or its size, footer or row count differs from the manifest.
        """
        part = self.partition(partition) if isinstance(partition, str) else partition
        return self._read_checked(part.path, f"partition {part.key}", part.rows, part.bytes, part.footer_sha256,
                                  list(columns or SCREENING_COLUMNS))

    def read_index(self, partition: Partition | str) -> pa.Table:
        """The id index of one partition (:data:`INDEX_SCHEMA`), aligned row for row with :meth:`read`.

        Raises
        ------
        LakeError
            As :meth:`read`.
        """
        key = partition if isinstance(partition, str) else partition.key
        entry = self._index_entries[key]
        return self._read_checked(entry["index"], f"id index of partition {key}", entry["rows"],
                                  entry.get("index_bytes"), entry.get("index_footer_sha256"))

    def quarantine(self) -> pa.Table:
        """Rows quarantined at ingest, as read (text), with ``reason`` and origin (:data:`QUARANTINE_SCHEMA`).

        Raises
        ------
        LakeError
            As :meth:`read`.
        """
        pieces = [self._read_checked(q["path"], "quarantine file", q["rows"], q.get("bytes"), q.get("footer_sha256"))
                  for q in self._manifest["quarantine"]]
        return pa.concat_tables(pieces) if pieces else QUARANTINE_SCHEMA.empty_table()

    def _read_checked(self, relative: str, what: str, rows: int, size: int | None, footer: str | None,
                      columns: list[str] | None = None) -> pa.Table:
        """Read one lake file after checking it against its manifest entry (size, footer, rows)."""
        path = self.path / relative
        try:
            source = pa.OSFile(str(path), "rb")
        except FileNotFoundError:
            raise self._gone(relative, what) from None
        except OSError as error:
            raise LakeError(f"{path}: cannot read the {what}: {error}") from None
        with source:
            try:
                actual = source.size()
                if size is not None and actual != size:
                    raise self._damaged(relative, what, f"{actual} bytes, the manifest records {size}")
                if footer is not None and _footer_digest(source, actual) != footer:
                    raise self._damaged(relative, what, "its Parquet footer differs from the one committed")
                parquet = pq.ParquetFile(source)
                if parquet.metadata.num_rows != rows:
                    raise self._damaged(relative, what, f"{parquet.metadata.num_rows} rows, the manifest "
                                                        f"records {rows}")
                return parquet.read(columns=columns)
            except (pa.ArrowException, OSError, ValueError) as error:
                raise self._damaged(relative, what, f"not readable as Parquet ({error})") from None

    def _gone(self, relative: str, what: str) -> LakeError:
        """The error for a file of this snapshot that is no longer there."""
        try:
            now = json.loads((self.path / MANIFEST).read_text())["generation"]
        except (OSError, ValueError, KeyError, TypeError):
            now = None
        if now is not None and now != self.generation:
            return LakeError(f"{self.path}: the lake changed during the run (generation {self.generation} → {now}): "
                             f"the {what} ({relative}) of generation {self.generation} is gone; run again")
        return LakeError(f"{self.path / relative}: the {what} is missing (lake generation {self.generation}); "
                         f"run `chipscreen lake verify {self.path}`")

    def _damaged(self, relative: str, what: str, detail: str) -> LakeError:
        return LakeError(f"{self.path / relative}: the {what} does not match the lake's manifest "
                         f"(generation {self.generation}): {detail}; run `chipscreen lake verify {self.path}`")

    def ledger(self, as_of: dt.date | None = None) -> Ledger:
        """All partitions as one :class:`pipeline.ingest.Ledger`, ready for ``screen_ledger``.

        Parameters
        ----------
        as_of : date, optional
            Keep only rows with ``ship_date <= as_of``; later rows count as ``excluded_after_as_of``.

        Notes
        -----
        ``counts`` describe the lake, not one reading of files: ``rows_read`` = ``accepted`` +
        ``quarantined`` + ``excluded_after_as_of``, where ``quarantined`` is every row in the
        lake's quarantine.
        """
        pieces, excluded = [], 0
        for part in self.partitions:
            if as_of is not None and part.first_date > as_of:
                excluded += part.rows
                continue
            table = self.read(part)
            if as_of is not None and part.last_date > as_of:
                within = pc.less_equal(table.column("ship_date"), pa.scalar(as_of, pa.date32()))
                table = table.filter(within)
                excluded += part.rows - table.num_rows
            pieces.append(table)
        if pieces:
            rows = pa.concat_tables(pieces).unify_dictionaries().combine_chunks()
        else:
            rows = STORED_SCHEMA.empty_table().select(list(SCREENING_COLUMNS))
        quarantine = self.quarantine()
        by_reason = pd.Series(quarantine.column("reason").to_pylist(), dtype=object).value_counts().to_dict() \
            if quarantine.num_rows else {}
        counts = {"rows_read": rows.num_rows + quarantine.num_rows + excluded, "accepted": rows.num_rows,
                  "quarantined": quarantine.num_rows, "excluded_after_as_of": excluded,
                  "by_reason": {k: int(v) for k, v in sorted(by_reason.items())}}
        return Ledger(rows=rows, quarantine=quarantine, counts=counts, files=[dict(f) for f in self.files])


# ------------------------------------------------------------------------------------- hashing
def _string_hashes(array: pa.Array) -> np.ndarray:
    """FNV-1a hash of each value of a string array (nulls hash as the empty string)."""
    array = array.cast(pa.string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset: array.offset + len(array) + 1]
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return hash_strings(offsets, data)


def _column_hashes(column: pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash per value of a stored column; nulls get their own value."""
    parts = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            values = np.append(_string_hashes(chunk.dictionary), _NULL_HASH)
            codes = pc.fill_null(chunk.indices, len(chunk.dictionary)).to_numpy(zero_copy_only=False)
            parts.append(values[codes])
        elif pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type):
            hashes = _string_hashes(chunk)
            parts.append(hashes if not chunk.null_count else np.where(chunk.is_null().to_numpy(zero_copy_only=False),
                                                                      _NULL_HASH, hashes))
        else:
            if pa.types.is_date32(chunk.type):
                chunk = chunk.cast(pa.int32())
            values = pc.cast(chunk, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
            hashes = (values ^ (values >> np.uint64(31))) * _MIX
            parts.append(hashes if not chunk.null_count else np.where(chunk.is_null().to_numpy(zero_copy_only=False),
                                                                      _NULL_HASH, hashes))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def _row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit content hash per row over every stored column (order-sensitive)."""
    out = np.zeros(table.num_rows, dtype=np.uint64)
    for name in STORED_COLUMNS:
        out = (out * _MIX) ^ _column_hashes(table.column(name))
        out ^= out >> np.uint64(29)
    return out


# ---------------------------------------------------------------------------------- input files
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
    whole: object = None          # the LedgerSource of a CSV / JSON Lines file (read whole)
    row_groups: np.ndarray | None = None  # Parquet: first row of each row group


def _parquet_columns(path: Path) -> tuple[pq.ParquetFile, list[str]]:
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        check_parquet_schema(path, parquet.schema_arrow)
        present = [c for c in LEDGER_COLUMNS if c in names]
        dictionary = [c for c in present if c in CATEGORICAL_COLUMNS
                      and pa.types.is_string(parquet.schema_arrow.field(c).type)]
        return pq.ParquetFile(path, read_dictionary=dictionary), present
    except READ_ERRORS as error:
        raise LedgerReadError(f"{path}: cannot read as parquet: {error}") from None


def _open_source(path: Path, start: int) -> _Source:
    kind = ledger_format(path)
    check_path(path)
    return _Source(path=path, format=kind, sha256=file_digest(path), bytes=path.stat().st_size, start=start)


def _batches(source: _Source) -> Iterator[pa.Table]:
    """The file's rows as read, a batch at a time (Parquet and CSV stream; JSON Lines is read whole)."""
    if source.format == "parquet":
        parquet, present = _parquet_columns(source.path)
        meta = parquet.metadata
        source.expected = meta.num_rows
        source.row_groups = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        try:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present):
                batch.validate(full=True)  # damaged pages can decode into bad UTF-8 or dictionary codes
                yield pa.Table.from_batches([batch])
        except READ_ERRORS as error:
            raise LedgerReadError(f"{source.path}: cannot read as parquet: {error}") from None
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


def _as_read(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    """Every ledger column as text (missing columns null), values as read."""
    return {name: (_as_text(table.column(name)) if name in table.column_names
                   else pa.chunked_array([pa.nulls(table.num_rows, pa.string())])) for name in LEDGER_COLUMNS}


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
    if source.format == "csv":  # read the file again, keeping only the rows asked for
        pieces, offset = [], 0
        for batch in _csv_batches(source.path, []):
            wanted = local[(local >= offset) & (local < offset + batch.num_rows)] - offset
            if len(wanted):
                pieces.append(pa.table(_as_read(batch.take(pa.array(wanted)))))
            offset += batch.num_rows
        return pa.concat_tables(pieces)
    parquet, present = _parquet_columns(source.path)
    group = np.searchsorted(source.row_groups, local, side="right") - 1
    pieces = []
    for g in np.unique(group):
        part = parquet.read_row_group(int(g), columns=present)
        pieces.append(pa.table(_as_read(part.take(pa.array(local[group == g] - source.row_groups[g])))))
    return pa.concat_tables(pieces)


def _quarantine_rows(as_read: pa.Table, reasons: Sequence[str], source: _Source, local: np.ndarray) -> pa.Table:
    n = as_read.num_rows
    return pa.table({**{c: as_read.column(c) for c in LEDGER_COLUMNS},
                     "raw_line": pa.nulls(n, pa.string()), "reason": pa.array(list(reasons), pa.string()),
                     "source_file": pa.array([str(source.path)] * n, pa.string()),
                     "source_row": pa.array(local + 1, pa.int64()),
                     "source_sha256": pa.array([source.sha256] * n, pa.string())}, schema=QUARANTINE_SCHEMA)


# ------------------------------------------------------------------------------------ the lake
def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _empty_manifest() -> dict:
    return {"format": LAKE_FORMAT, "version": LAKE_VERSION, "generation": 0, "partitions": [],
            "quarantine": [], "files": [],
            "counts": {"rows": 0, "quarantined": 0, "superseded": 0, "by_reason": {}}}


def _month_key(month: int) -> str:
    return str(np.datetime64(int(month), "M"))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write to ``path`` through a temporary name, flushed to disk before the rename."""
    partial = path.with_name("." + path.name + ".partial")
    dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
    pq.write_table(table, partial, use_dictionary=dictionary or False, compression="zstd")
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _footer_digest(source, size: int) -> str:
    """SHA-256 of a Parquet file's footer (metadata, its length and the closing magic).

    ``source`` is an open binary file (Python or Arrow) of ``size`` bytes; ValueError when the
    file ends without a Parquet footer.
    """
    if size < 12:
        raise ValueError(f"{size} bytes is too short for Parquet")
    source.seek(size - 8)
    tail = source.read(8)
    length = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or length > size - 12:
        raise ValueError("the file does not end with a Parquet footer")
    source.seek(size - 8 - length)
    return hashlib.sha256(source.read(length) + tail).hexdigest()


def _file_facts(path: Path) -> dict:
    """What the manifest records of a lake file it names: ``bytes``, ``footer_sha256``."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        return {"bytes": size, "footer_sha256": _footer_digest(handle, size)}


class _Lock:
    """One ingest at a time per lake: an exclusive lock file naming the process (a stale one is taken over)."""

    def __init__(self, lake_dir: Path):
        self.path = lake_dir / LOCK

    def __enter__(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    owner = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    owner = 0
                if owner and _alive(owner):
                    raise LakeError(f"{self.path.parent}: another ingest (process {owner}) is running") from None
                self.path.unlink(missing_ok=True)  # left by a crashed ingest
                continue
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return self
        raise LakeError(f"{self.path}: cannot take the ingest lock")

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_OWN_FILES = {"partitions": ("rows-*.parquet", "ids-*.parquet", ".rows-*.parquet.partial", ".ids-*.parquet.partial"),
              "quarantine": ("q-*.parquet", ".q-*.parquet.partial")}
"""Names of the files an ingest writes under each folder: the only ones clean-up may remove."""


def _clean_leftovers(lake_dir: Path, manifest: dict) -> None:
    """Remove the staging folder and the lake's own files that ``manifest`` no longer names.

    Those are files a crashed ingest left, and superseded files past their retention (the
    manifest's ``retired`` list names those still kept). Files of other names are left alone.
    """
    shutil.rmtree(lake_dir / STAGING, ignore_errors=True)
    named = {p["path"] for p in manifest["partitions"]} | {p["index"] for p in manifest["partitions"]} \
        | {q["path"] for q in manifest["quarantine"]} | {r["path"] for r in manifest.get("retired", [])}
    for folder, patterns in _OWN_FILES.items():
        root = lake_dir / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*"), reverse=True):
            relative = path.relative_to(lake_dir).as_posix()
            if path.is_file() and not path.is_symlink():
                if relative not in named and any(fnmatch.fnmatchcase(path.name, p) for p in patterns):
                    path.unlink()
            elif path.is_dir() and not path.is_symlink() and folder == "partitions" \
                    and re.fullmatch(r"\d{4}-\d{2}", path.name) and not any(path.iterdir()):
                path.rmdir()


def _retire(old: dict, partitions: list[dict], generation: int, stamp: str) -> list[dict]:
    """The ``retired`` list of the manifest of ``generation``: superseded files still kept.

    Each entry is ``path``, ``generation`` (the last one naming the file) and ``retired_at``. A
    file is dropped (then removed) once it is more than :data:`KEEP_GENERATIONS` commits and
    :data:`RETAIN_SECONDS` old; a file named again by ``partitions`` leaves the list.
    """
    named = {p[k] for p in partitions for k in ("path", "index")}
    entries = [r for r in old.get("retired", []) if r["path"] not in named]
    listed = {r["path"] for r in entries}
    for part in old["partitions"]:
        for path in (part["path"], part["index"]):
            if path not in named and path not in listed:
                entries.append({"path": path, "generation": old["generation"], "retired_at": stamp})
                listed.add(path)
    now = dt.datetime.fromisoformat(stamp)

    def kept(entry: dict) -> bool:
        age = (now - dt.datetime.fromisoformat(entry["retired_at"])).total_seconds()
        return entry["generation"] >= generation - KEEP_GENERATIONS or age < RETAIN_SECONDS

    return [r for r in entries if kept(r)]


def _progress_note(progress):
    return progress or (lambda stage, done, total: None)


def ingest(paths: Sequence[str | Path], lake_dir: str | Path, *,
           progress: Callable[[str, int, int], None] | None = None) -> IngestReport:
    """Validate ledger files and add their rows to a lake (created when absent).

    Parameters
    ----------
    paths : sequence of path
        CSV, Parquet or JSON Lines ledgers (DESIGN §3). Parquet is streamed in batches of
        :data:`BATCH_ROWS`; CSV and JSON Lines files are read whole.
    lake_dir : path
    progress : callable, optional
        ``progress(stage, done, total)``: rows read per file, then partitions written.

    Returns
    -------
    IngestReport

    Raises
    ------
    pipeline.ingest.LedgerReadError
        A file cannot be read at all; the lake is left unchanged.
    LakeError
        ``lake_dir`` is not a lake, or another ingest holds it.

    Notes
    -----
    Peak memory is about 30 bytes per input row (hashes and flags) plus one month partition
    and one input batch. The only commit point is the replacement of ``manifest.json``.
    """
    started = time.perf_counter()
    lake_dir = Path(lake_dir)
    if not paths:
        raise LedgerReadError("no ledger files given")
    if lake_dir.exists() and not (lake_dir / MANIFEST).exists() and any(
            p.name not in (STAGING, LOCK, "partitions", "quarantine") for p in lake_dir.iterdir()):
        raise LakeError(f"{lake_dir}: exists and is not a ledger lake (no {MANIFEST}); use an empty folder")
    lake_dir.mkdir(parents=True, exist_ok=True)
    with _Lock(lake_dir):
        manifest = json.loads((lake_dir / MANIFEST).read_text()) if (lake_dir / MANIFEST).exists() \
            else _empty_manifest()
        _clean_leftovers(lake_dir, manifest)
        staging = lake_dir / STAGING
        staging.mkdir()
        try:
            report = _ingest(paths, lake_dir, manifest, staging, _progress_note(progress))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _ingest(paths, lake_dir: Path, manifest: dict, staging: Path, note) -> IngestReport:
    # ---- pass 1: stream, validate, hash, spill accepted rows per month
    sources: list[_Source] = []
    reasons_parts, id_parts, row_parts, shipped_parts, month_parts = [], [], [], [], []
    quarantine_parts: list[pa.Table] = []
    writers: dict[int, pq.ParquetWriter] = {}
    spill_schema = STORED_SCHEMA.append(pa.field("_row", pa.int64()))
    total = 0
    try:
        for path in map(Path, paths):
            source = _open_source(path, total)
            sources.append(source)
            for raw in _batches(source):
                n = raw.num_rows
                columns, reasons = _validate(raw)
                for name in STORED_COLUMNS:
                    if name not in columns:  # exporter, consignee_address: normalized like other text
                        column = raw.column(name) if name in raw.column_names else \
                            pa.chunked_array([pa.nulls(n, pa.string())])
                        columns[name] = _categorical(column, lambda a: a)
                table = pa.table({c: columns[c].cast(STORED_SCHEMA.field(c).type) for c in STORED_COLUMNS})
                bad = np.flatnonzero(reasons)
                if len(bad):
                    texts = np.array(_REASON_TEXTS, dtype=object)[reasons[bad]]
                    quarantine_parts.append(_quarantine_rows(pa.table(_as_read(raw.take(pa.array(bad)))),
                                                             texts, source, source.rows + bad))
                months = np.full(n, _NO_MONTH, dtype=np.int32)
                good = reasons == 0
                days = pc.cast(table.column("ship_date"), pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
                months[good] = days[good].astype("M8[D]").astype("M8[M]").astype(np.int32)
                row_hash = _row_hashes(table)
                id_hash = _column_hashes(table.column("shipment_id"))
                shipped = pc.fill_null(pc.equal(table.column("status").cast(pa.string()), "shipped"),
                                       False).to_numpy(zero_copy_only=False)
                rows = np.arange(total, total + n, dtype=np.int64)
                table = table.append_column("_row", pa.array(rows))
                by_month = np.argsort(months, kind="stable")
                ordered = months[by_month]
                bounds = np.flatnonzero(np.diff(ordered)) + 1
                table = table.take(pa.array(by_month))
                for begin, end in zip(np.r_[0, bounds], np.r_[bounds, n]):
                    month = int(ordered[begin])
                    if month == _NO_MONTH:
                        continue  # rejected rows
                    if month not in writers:
                        writers[month] = pq.ParquetWriter(
                            staging / f"spill-{month}.parquet", spill_schema, compression="none",
                            use_dictionary=list(CATEGORICAL_COLUMNS), write_statistics=False)
                    # Only the dictionary values this month uses: a batch's dictionary can be large.
                    writers[month].write_table(_canonical(table.slice(begin, end - begin), sort=False))
                reasons_parts.append(reasons)
                id_parts.append(id_hash)
                row_parts.append(row_hash)
                shipped_parts.append(shipped)
                month_parts.append(months)
                total += n
                source.rows += n
                note(f"reading {path.name}", source.rows, max(source.expected, source.rows))
            if source.malformed:
                extra = [{**{c: None for c in LEDGER_COLUMNS}, "raw_line": text, "reason": reason,
                          "source_file": str(path), "source_row": number, "source_sha256": source.sha256}
                         for number, text, reason in source.malformed]
                quarantine_parts.append(pa.Table.from_pylist(extra, schema=QUARANTINE_SCHEMA))
    finally:
        for writer in writers.values():
            writer.close()

    def joined(parts, dtype):
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    reasons = joined(reasons_parts, np.int16)
    id_hash, row_hash = joined(id_parts, np.uint64), joined(row_parts, np.uint64)
    shipped, months = joined(shipped_parts, bool), joined(month_parts, np.int32)
    del reasons_parts, id_parts, row_parts, shipped_parts, month_parts
    spills = {month: staging / f"spill-{month}.parquet" for month in writers}
    invalid = reasons > 0  # quarantined while streaming, with the rows as read

    # ---- duplicates within this call (as read_ledgers resolves them)
    note("checking duplicates", 0, 1)
    _resolve_repeats(reasons, id_hash, row_hash, spills)
    # ---- against the lake
    removals, superseded = _match_lake(lake_dir, manifest, reasons, id_hash, row_hash, shipped, spills)
    note("checking duplicates", 1, 1)

    # ---- quarantine of this call
    late = np.flatnonzero((reasons > 0) & ~invalid)
    for source in sources:
        mine = late[(late >= source.start) & (late < source.start + source.rows)]
        if len(mine):
            local = mine - source.start
            texts = np.array(_REASON_TEXTS, dtype=object)[reasons[mine]]
            quarantine_parts.append(_quarantine_rows(_rows_as_read(source, local), texts, source, local))
    quarantine = pa.concat_tables(quarantine_parts) if quarantine_parts else QUARANTINE_SCHEMA.empty_table()
    if quarantine.num_rows:
        order = {str(s.path): i for i, s in enumerate(sources)}
        file_order = pa.array([order[f] for f in quarantine.column("source_file").to_pylist()], pa.int32())
        sort = pc.sort_indices(pa.table({"f": file_order, "r": quarantine.column("source_row")}),
                               [("f", "ascending"), ("r", "ascending")])
        quarantine = quarantine.take(sort)
    fresh = _new_quarantine_rows(lake_dir, manifest, quarantine)

    # ---- counts
    by_reason = pd.Series(quarantine.column("reason").to_pylist(), dtype=object).value_counts().to_dict() \
        if quarantine.num_rows else {}
    accepted = int((reasons == 0).sum())
    counts = {"rows_read": total + sum(len(s.malformed) for s in sources), "accepted": accepted,
              "superseded": superseded, "duplicates": int((reasons == _NO_OP).sum()),
              "quarantined": quarantine.num_rows, "quarantine_added": fresh.num_rows,
              "by_reason": {k: int(v) for k, v in sorted(by_reason.items())}}
    if counts["accepted"] + counts["duplicates"] + counts["quarantined"] != counts["rows_read"]:
        raise AssertionError(f"row counts do not reconcile: {counts}")
    known = {f["sha256"] for f in manifest["files"]}
    files = [{"path": str(s.path), "sha256": s.sha256, "format": s.format, "bytes": s.bytes,
              "rows_read": s.rows + len(s.malformed), "malformed_lines": len(s.malformed),
              "new": s.sha256 not in known} for s in sources]
    new_files, seen = [], set(known)
    for entry in files:
        if entry["sha256"] not in seen:
            seen.add(entry["sha256"])
            new_files.append(entry)
    if not (accepted or fresh.num_rows or new_files):
        return IngestReport(lake=lake_dir, generation=manifest["generation"], committed=False, counts=counts,
                            files=files)

    # ---- write new partition versions, month by month, then commit
    generation = manifest["generation"] + 1
    stamp = _now()
    keep = reasons == 0
    touched = sorted(set(np.unique(months[keep]).tolist()) | set(removals))
    existing = {p["key"]: p for p in manifest["partitions"]}
    crash_after = os.environ.get(CRASH_ENV)
    crash_after = int(crash_after) if crash_after not in (None, "") else None
    written: dict[str, dict | None] = {}
    for done, month in enumerate(touched):
        if crash_after is not None and done >= crash_after:
            os._exit(1)  # test hook: die like a killed process, no clean-up
        key = _month_key(month)
        note("writing partitions", done, len(touched))
        written[key] = _write_partition(lake_dir, key, existing.get(key), spills.get(month), keep,
                                        removals.get(month), stamp, id_hash, row_hash)
    note("writing partitions", len(touched), len(touched))
    if crash_after is not None and len(touched) >= crash_after:
        os._exit(1)

    partitions = {k: v for k, v in existing.items()}
    for key, entry in written.items():
        if entry is None:
            partitions.pop(key, None)
        else:
            partitions[key] = entry
    quarantine_entries = list(manifest["quarantine"])
    if fresh.num_rows:
        relative = f"quarantine/q-{generation:06d}.parquet"
        (lake_dir / "quarantine").mkdir(exist_ok=True)
        _write_parquet(fresh, lake_dir / relative)
        quarantine_entries.append({"path": relative, "rows": fresh.num_rows, "generation": generation,
                                   "sha256": file_digest(lake_dir / relative), **_file_facts(lake_dir / relative)})
    lake_reasons = dict(manifest["counts"]["by_reason"])
    for reason, count in pd.Series(fresh.column("reason").to_pylist(), dtype=object).value_counts().items():
        lake_reasons[reason] = lake_reasons.get(reason, 0) + int(count)
    ordered = [partitions[k] for k in sorted(partitions)]
    new_manifest = {
        "format": LAKE_FORMAT, "version": LAKE_VERSION, "generation": generation, "partitions": ordered,
        "quarantine": quarantine_entries, "retired": _retire(manifest, ordered, generation, stamp),
        "files": manifest["files"] + [{**{k: v for k, v in f.items() if k != "new"}, "ingested_at": stamp,
                                       "generation": generation} for f in new_files],
        "counts": {"rows": sum(p["rows"] for p in ordered),
                   "quarantined": sum(q["rows"] for q in quarantine_entries),
                   "superseded": manifest["counts"]["superseded"] + superseded,
                   "by_reason": dict(sorted(lake_reasons.items()))},
    }
    partial = staging / MANIFEST
    with open(partial, "w") as handle:
        handle.write(json.dumps(new_manifest, indent=1) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, lake_dir / MANIFEST)  # the commit point
    _fsync_dir(lake_dir)
    _clean_leftovers(lake_dir, new_manifest)  # superseded files past their retention
    return IngestReport(lake=lake_dir, generation=generation, committed=True, counts=counts,
                        partitions_written=sorted(written), files=files)


def _spilled_ids(spills: dict, rows: np.ndarray, n: int) -> pa.Array:
    """shipment_id of the given global rows (sorted, unique), read back from the spill files."""
    wanted = np.zeros(n, dtype=bool)
    wanted[rows] = True
    found_rows, found_ids = [], []
    for path in spills.values():
        part = pq.read_table(path, columns=["shipment_id", "_row"])
        numbers = part.column("_row").to_numpy()
        mask = wanted[numbers]
        if mask.any():
            found_rows.append(numbers[mask])
            found_ids.append(part.column("shipment_id").filter(pa.array(mask)))
    numbers = np.concatenate(found_rows)
    ids = pa.chunked_array([c for piece in found_ids for c in piece.chunks], pa.string()).combine_chunks()
    order = np.argsort(numbers, kind="stable")
    if not np.array_equal(numbers[order], rows):
        raise AssertionError("spilled rows missing")
    return ids.take(pa.array(order))


def _resolve_repeats(reasons: np.ndarray, id_hash: np.ndarray, row_hash: np.ndarray, spills: dict) -> None:
    """Quarantine repeated shipment ids among this call's accepted rows (see :func:`read_ledgers`).

    Exact repeats keep their first copy (file order); ids repeated with different content are
    quarantined entirely. Hashes only nominate candidates; ids are compared as strings.
    """
    accepted = np.flatnonzero(reasons == 0)
    hashes = id_hash[accepted]
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeated):
        return
    candidates = accepted[np.isin(hashes, repeated)]
    frame = pd.DataFrame({"row": candidates, "id": _spilled_ids(spills, candidates, len(reasons)).to_pandas(),
                          "content": row_hash[candidates]})
    for _, group in frame.groupby("id", sort=False):
        if len(group) < 2:
            continue  # a hash collision, not a repeat
        rows = group["row"].to_numpy()
        if (group["content"] == group["content"].iloc[0]).all():
            reasons[rows[1:]] = reason_code(REASON_EXACT_DUPLICATE)
        else:
            reasons[rows] = reason_code(REASON_CONFLICT)


def _match_lake(lake_dir: Path, manifest: dict, reasons: np.ndarray, id_hash: np.ndarray, row_hash: np.ndarray,
                shipped: np.ndarray, spills: dict) -> tuple[dict[int, pa.Array], int]:
    """Compare this call's accepted rows with the lake's id index; mark no-ops, supersedes, conflicts.

    Returns the ids to remove per partition month (pending rows superseded) and their count.
    """
    if not manifest["partitions"]:
        return {}, 0
    accepted = np.flatnonzero(reasons == 0)
    if not len(accepted):
        return {}, 0
    lake_hash, lake_rows, lake_shipped, starts = [], [], [], [0]
    for number, part in enumerate(manifest["partitions"]):
        index = pq.read_table(lake_dir / part["index"], columns=["id_hash", "row_hash", "shipped"])
        lake_hash.append(index.column("id_hash").to_numpy())
        lake_rows.append(index.column("row_hash").to_numpy())
        lake_shipped.append(index.column("shipped").to_numpy(zero_copy_only=False))
        starts.append(starts[-1] + index.num_rows)
    lake_hash, lake_rows = np.concatenate(lake_hash), np.concatenate(lake_rows)
    lake_shipped, starts = np.concatenate(lake_shipped), np.array(starts)
    hashes = id_hash[accepted]
    # Sort the (few) new hashes, not the lake's: keep only lake entries whose hash is among them.
    sorted_new = np.sort(hashes)
    at = np.minimum(np.searchsorted(sorted_new, lake_hash), len(sorted_new) - 1)
    candidates = np.flatnonzero(sorted_new[at] == lake_hash)
    order = candidates[np.argsort(lake_hash[candidates], kind="stable")]
    sorted_hash = lake_hash[order]
    low = np.searchsorted(sorted_hash, hashes, "left")
    high = np.searchsorted(sorted_hash, hashes, "right")
    width = high - low
    if not width.any():
        return {}, 0
    # Every (new row, lake entry) pair with equal id hashes; the strings decide.
    new = np.repeat(accepted, width)
    first = np.repeat(np.cumsum(width) - width, width)
    entry = order[np.repeat(low, width) + (np.arange(len(new)) - first)]
    pair_order = np.argsort(new, kind="stable")
    new, entry = new[pair_order], entry[pair_order]
    unique_new, inverse = np.unique(new, return_inverse=True)
    new_ids = _spilled_ids(spills, unique_new, len(reasons)).take(pa.array(inverse))
    lake_ids = _index_ids(lake_dir, manifest, entry, starts)
    same = pc.equal(new_ids, lake_ids).to_numpy(zero_copy_only=False)
    new, entry = new[same], entry[same]
    identical = row_hash[new] == lake_rows[entry]
    reasons[new[identical]] = _NO_OP
    new, entry = new[~identical], entry[~identical]
    replace = shipped[new] & ~lake_shipped[entry]
    reasons[new[~replace & lake_shipped[entry] & ~shipped[new]]] = reason_code(REASON_ALREADY_SHIPPED)
    reasons[new[~replace & ~(lake_shipped[entry] & ~shipped[new])]] = reason_code(REASON_LAKE_CONFLICT)
    removals: dict[int, pa.Array] = {}
    entry = entry[replace]
    if len(entry):
        owner = np.searchsorted(starts, entry, side="right") - 1
        ids = _index_ids(lake_dir, manifest, entry, starts)
        for number in np.unique(owner):
            month = int(np.datetime64(manifest["partitions"][number]["key"], "M").astype(np.int32))
            removals[month] = ids.filter(pa.array(owner == number))
    return removals, int(len(entry))


def _index_ids(lake_dir: Path, manifest: dict, entries: np.ndarray, starts: np.ndarray) -> pa.Array:
    """shipment_id of lake index entries (global positions over the partitions in manifest order)."""
    owner = np.searchsorted(starts, entries, side="right") - 1
    pieces, positions = [], []
    for number in np.unique(owner):
        ids = pq.read_table(lake_dir / manifest["partitions"][number]["index"], columns=["shipment_id"])
        where = np.flatnonzero(owner == number)
        pieces.append(ids.column("shipment_id").take(pa.array(entries[where] - starts[number])))
        positions.append(where)
    if not pieces:
        return pa.array([], pa.string())
    gathered = pa.chunked_array([c for p in pieces for c in p.chunks], pa.string()).combine_chunks()
    inverse = np.empty(len(entries), dtype=np.int64)
    inverse[np.concatenate(positions)] = np.arange(len(entries))
    return gathered.take(pa.array(inverse))


def _new_quarantine_rows(lake_dir: Path, manifest: dict, quarantine: pa.Table) -> pa.Table:
    """Rows of this call's quarantine not already in the lake's (same source file content, row and reason)."""
    if not quarantine.num_rows or not manifest["quarantine"]:
        return quarantine
    columns = ["source_sha256", "source_row", "reason"]
    known = pa.concat_tables([pq.read_table(lake_dir / q["path"], columns=columns) for q in manifest["quarantine"]])
    key = lambda t: pd.MultiIndex.from_frame(t.select(columns).to_pandas())  # noqa: E731
    fresh = ~key(quarantine).isin(key(known))
    return quarantine.filter(pa.array(fresh))


def _write_partition(lake_dir: Path, key: str, old: dict | None, spill: Path | None, keep: np.ndarray,
                     removed: pa.Array | None, stamp: str, id_hash: np.ndarray, row_hash: np.ndarray) -> dict | None:
    """Write the new version of one month: old rows (less superseded ones) plus new rows, sorted.

    Returns its manifest entry, or None when the month is left empty.
    """
    tables, indexes = [], []
    if old is not None:
        table = pq.read_table(lake_dir / old["path"], columns=list(STORED_COLUMNS))
        index = pq.read_table(lake_dir / old["index"])
        if removed is not None and len(removed):
            stay = pc.invert(pc.is_in(index.column("shipment_id"), value_set=removed))
            table, index = table.filter(stay), index.filter(stay)
        tables.append(table)
        indexes.append(index)
    if spill is not None:
        new = pq.read_table(spill)
        numbers = new.column("_row").to_numpy()
        mask = keep[numbers]
        numbers = numbers[mask]
        new = new.filter(pa.array(mask)).drop_columns(["_row"])
        tables.append(new)
        indexes.append(_index_of(new, id_hash[numbers], row_hash[numbers]))
    table = pa.concat_tables(tables)
    index = pa.concat_tables(indexes)
    if not table.num_rows:
        return None
    order = pc.sort_indices(table.select(["ship_date", "shipment_id"]),
                            [("ship_date", "ascending"), ("shipment_id", "ascending")])
    table, index = table.take(order), index.take(order)
    folder = lake_dir / "partitions" / key
    folder.mkdir(parents=True, exist_ok=True)
    staged = lake_dir / STAGING / f"rows-{key}.parquet"
    _write_parquet(_canonical(table), staged)
    sha = file_digest(staged)
    rows_path, index_path = folder / f"rows-{sha[:16]}.parquet", folder / f"ids-{sha[:16]}.parquet"
    _write_parquet(index.combine_chunks(), index_path)
    facts = _file_facts(staged)
    index_facts = _file_facts(index_path)
    os.replace(staged, rows_path)
    dates = table.column("ship_date")
    return {"key": key, "path": rows_path.relative_to(lake_dir).as_posix(),
            "index": index_path.relative_to(lake_dir).as_posix(),
            "first_date": dates[0].as_py().isoformat(), "last_date": dates[-1].as_py().isoformat(),
            "rows": table.num_rows, "sha256": sha, "ingested_at": stamp, **facts,
            "index_sha256": file_digest(index_path), "index_bytes": index_facts["bytes"],
            "index_footer_sha256": index_facts["footer_sha256"]}


def _canonical(table: pa.Table, sort: bool = True) -> pa.Table:
    """One chunk per column; each dictionary reduced to the values in use (and sorted, so that equal
    rows give equal bytes)."""
    table = table.unify_dictionaries().combine_chunks()
    columns = {}
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_dictionary(column.type) and column.num_chunks == 1:
            chunk = column.chunk(0)
            codes = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
            used = np.zeros(len(chunk.dictionary) + 1, dtype=bool)
            used[codes] = True  # -1 marks the null slot (last)
            kept = np.flatnonzero(used[:-1])
            values = chunk.dictionary.take(pa.array(kept))
            order = pc.sort_indices(values).to_numpy() if sort else np.arange(len(kept))
            mapping = np.full(len(chunk.dictionary) + 1, -1, dtype=np.int32)
            mapping[kept[order]] = np.arange(len(kept), dtype=np.int32)
            new_codes = mapping[codes]
            column = pa.chunked_array([pa.DictionaryArray.from_arrays(
                pa.array(new_codes, mask=new_codes < 0), values.take(pa.array(order)))])
        columns[name] = column
    return pa.table(columns, schema=table.schema)


def _index_of(table: pa.Table, id_hash: np.ndarray, row_hash: np.ndarray) -> pa.Table:
    """The id index rows of stored rows (:data:`INDEX_SCHEMA`), hashes as computed at validation."""
    shipped = pc.fill_null(pc.equal(table.column("status").cast(pa.string()), "shipped"), False)
    return pa.table({"shipment_id": table.column("shipment_id"),
                     "id_hash": pa.array(id_hash, pa.uint64()), "row_hash": pa.array(row_hash, pa.uint64()),
                     "shipped": shipped}, schema=INDEX_SCHEMA)
