"""Reading a lake: :class:`Lake` opens one manifest generation and checks each file it reads.

Reads check a file's size, Parquet footer and row count against the manifest;
:func:`pipeline.lake.integrity.verify` checks every byte.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.ingest.ledger import Ledger
from pipeline.ingest.schema import SCREENING_COLUMNS
from pipeline.lake.manifest import LAKE_FORMAT, LAKE_VERSION, MANIFEST, LakeError, _footer_digest, generation_file
from pipeline.lake.schema import ADDED_COLUMNS, QUARANTINE_SCHEMA, STORED_SCHEMA
from pipeline.lake.store import LakeStore


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
    manifest (a mismatch is a :class:`LakeError`); :func:`pipeline.lake.verify` checks
    every byte (SHA-256).

    Examples
    --------
    >>> lake = Lake.open("lake")                        # doctest: +SKIP
    >>> ledger = lake.ledger(as_of=dt.date(2026, 6, 30))  # doctest: +SKIP
    """

    def __init__(self, path: str | Path | LakeStore, manifest: dict):
        self.store = path if isinstance(path, LakeStore) else LakeStore.at(path)
        self.path: Path | str = self.store.folder if self.store.local else self.store.location
        """The lake's folder, or its URL in an object store."""
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
        for entry in manifest["quarantine"]:  # the entries reads and ingests use: KeyError/TypeError if damaged
            str(entry["path"]), int(entry["rows"])
        for entry in manifest.get("retired", []):
            str(entry["path"]), int(entry["generation"]), dt.datetime.fromisoformat(entry["retired_at"])
        for part in manifest["partitions"]:
            str(part["index"]), dt.datetime.fromisoformat(part["ingested_at"])
        int(self.counts["superseded"]), dict(self.counts["by_reason"])

    @classmethod
    def open(cls, path: str | Path, missing_ok: bool = False) -> "Lake | None":
        """Open the lake in ``path``.

        Parameters
        ----------
        path : path or str
            A folder, or a URL in an object store.
        missing_ok : bool
            Return None where there is no lake yet (an ingest creates it), instead of raising.

        Raises
        ------
        LakeError
            ``path`` holds no lake manifest, or the manifest is not one.
        """
        store = LakeStore.at(path)  # absolute: Dask workers on other machines or folders read the same files
        manifest_path = store.describe(MANIFEST)
        try:
            manifest = read_manifest(store)
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as error:
            raise LakeError(f"{manifest_path}: unreadable manifest: {error}") from None
        if manifest is None and missing_ok:
            return None
        if manifest is None:
            raise LakeError(f"{store}: not a ledger lake (no {MANIFEST}); create one with "
                            f"`chipscreen ingest LEDGER... --lake {store}`")
        if manifest.get("format") != LAKE_FORMAT:
            raise LakeError(f"{manifest_path}: not a {LAKE_FORMAT} manifest")
        if manifest.get("version") != LAKE_VERSION:
            raise LakeError(f"{manifest_path}: lake version {manifest.get('version')} (this code reads {LAKE_VERSION})")
        try:
            return cls(store, manifest)
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
            :data:`STORED_COLUMNS` adds ``consignee_address``. :data:`ADDED_COLUMNS` absent
            from a file written before they existed are read as all null.

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
        return _read_index_entry(self.store, self._manifest, self._index_entries[key])

    def quarantine(self) -> pa.Table:
        """Rows quarantined at ingest, as read (text), with ``reason`` and origin (:data:`QUARANTINE_SCHEMA`).

        Raises
        ------
        LakeError
            As :meth:`read`.
        """
        pieces = [_read_quarantine_entry(self.store, self._manifest, q) for q in self._manifest["quarantine"]]
        return pa.concat_tables(pieces) if pieces else QUARANTINE_SCHEMA.empty_table()

    def _read_checked(self, relative: str, what: str, rows: int, size: int | None, footer: str | None,
                      columns: list[str] | None = None) -> pa.Table:
        """Read one lake file after checking it against its manifest entry (size, footer, rows)."""
        return _read_lake_file(self.store, self.generation, relative, what, rows, size, footer, columns,
                               schema=STORED_SCHEMA)

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


# ------------------------------------------------- checked reads, shared by Lake and by ingest
def _read_lake_file(lake_dir: Path | LakeStore, generation: int, relative: str, what: str, rows: int,
                    size: int | None, footer: str | None, columns: list[str] | None = None, read: bool = True,
                    schema: pa.Schema | None = None, span: tuple[int, int] | None = None) -> pa.Table | None:
    """Read one file of the lake's manifest ``generation`` after checking its size, footer and rows
    (with ``read=False``: only check them, reading no more than the footer); with ``span``
    ``(start, stop)``, only those rows (reading the row groups that hold them).

    With ``schema`` (the file kind's schema), :data:`ADDED_COLUMNS` the file lacks are given as
    all null of the schema's type (a whole file lacking them, read without ``columns``, comes in
    the schema's column order).

    Raises
    ------
    LakeError
        The file is missing, unreadable, or differs from its manifest entry (naming the file
        and ``chipscreen lake verify``).
    """
    store = _store(lake_dir)
    try:
        source = store.open(relative)
    except FileNotFoundError:
        raise _gone(store, generation, relative, what) from None
    except (OSError, pa.ArrowException) as error:
        raise LakeError(f"{store.describe(relative)}: cannot read the {what}: {error}; "
                        f"run `chipscreen lake verify {store}`") from None
    with source:
        try:
            actual = source.size()
            if size is not None and actual != size:
                raise _damaged(store, generation, relative, what, f"{actual} bytes, the manifest records {size}")
            if footer is not None and _footer_digest(source, actual) != footer:
                raise _damaged(store, generation, relative, what, "its Parquet footer differs from the one committed")
            parquet = pq.ParquetFile(source)
            if parquet.metadata.num_rows != rows:
                raise _damaged(store, generation, relative, what, f"{parquet.metadata.num_rows} rows, the "
                                                                  f"manifest records {rows}")
            if not read:
                return None
            if schema is None:
                return _read_span(parquet, columns, span)
            return _with_added_columns(parquet, columns, schema, span)
        except (pa.ArrowException, OSError, ValueError, KeyError) as error:
            raise _damaged(store, generation, relative, what, f"not readable as Parquet ({error})") from None


def _read_span(parquet: pq.ParquetFile, columns: list[str] | None, span: tuple[int, int] | None) -> pa.Table:
    """Rows ``start:stop`` of a Parquet file (all rows without ``span``), reading only their row groups."""
    if span is None:
        return parquet.read(columns=columns)
    start, stop = span
    groups, first, offset = [], None, 0
    for number in range(parquet.metadata.num_row_groups):
        count = parquet.metadata.row_group(number).num_rows
        if offset < stop and offset + count > start:
            groups.append(number)
            first = offset if first is None else first
        offset += count
    if not groups:
        return parquet.read_row_groups([0], columns=columns).slice(0, 0) if parquet.metadata.num_row_groups \
            else parquet.read(columns=columns)
    return parquet.read_row_groups(groups, columns=columns).slice(start - first, stop - start)


def _with_added_columns(parquet: pq.ParquetFile, columns: list[str] | None, schema: pa.Schema,
                        span: tuple[int, int] | None = None) -> pa.Table:
    """Read ``columns`` (default: all) of a lake file, or of rows ``span``; :data:`ADDED_COLUMNS` it
    lacks come as nulls."""
    present = parquet.schema_arrow.names
    wanted = list(schema.names) + [c for c in present if c not in schema.names] if columns is None else list(columns)
    absent = [c for c in wanted if c in ADDED_COLUMNS and c in schema.names and c not in present]
    if not absent:
        return _read_span(parquet, columns, span)
    wanted = [c for c in wanted if c in present or c in absent]
    table = _read_span(parquet, [c for c in wanted if c not in absent], span)
    return pa.table({c: (pa.nulls(table.num_rows, schema.field(c).type) if c in absent else table.column(c))
                     for c in wanted})


def _read_rows_entry(lake_dir: Path | LakeStore, manifest: dict, part: dict, columns: list[str] | None = None,
                     span: tuple[int, int] | None = None) -> pa.Table:
    """The rows file of a partition entry of ``manifest`` (a dict), checked as :meth:`Lake.read`;
    with ``span``, rows ``start:stop`` only."""
    return _read_lake_file(lake_dir, manifest["generation"], part["path"], f"partition {part['key']}", part["rows"],
                           part.get("bytes"), part.get("footer_sha256"), columns, schema=STORED_SCHEMA, span=span)


def _read_index_entry(lake_dir: Path | LakeStore, manifest: dict, part: dict, columns: list[str] | None = None,
                      span: tuple[int, int] | None = None) -> pa.Table:
    """The id index of a partition entry of ``manifest``, checked as :meth:`Lake.read_index`."""
    return _read_lake_file(lake_dir, manifest["generation"], part["index"], f"id index of partition {part['key']}",
                           part["rows"], part.get("index_bytes"), part.get("index_footer_sha256"), columns,
                           span=span)


def _read_quarantine_entry(lake_dir: Path | LakeStore, manifest: dict, entry: dict,
                           columns: list[str] | None = None) -> pa.Table:
    """One quarantine file of ``manifest``, checked as :meth:`Lake.quarantine`."""
    return _read_lake_file(lake_dir, manifest["generation"], entry["path"], "quarantine file", entry["rows"],
                           entry.get("bytes"), entry.get("footer_sha256"), columns, schema=QUARANTINE_SCHEMA)


def check_lake_files(lake_dir: Path | LakeStore, manifest: dict) -> None:
    """Check every partition, id index and quarantine file of ``manifest`` against its entry: present,
    its size, Parquet footer and row count (the footer only; ``chipscreen lake verify`` hashes all).

    Raises
    ------
    LakeError
        Naming the first file that is missing or differs.
    """
    generation = manifest["generation"]
    for part in manifest["partitions"]:
        _read_lake_file(lake_dir, generation, part["path"], f"partition {part['key']}", part["rows"],
                        part.get("bytes"), part.get("footer_sha256"), read=False)
        _read_lake_file(lake_dir, generation, part["index"], f"id index of partition {part['key']}", part["rows"],
                        part.get("index_bytes"), part.get("index_footer_sha256"), read=False)
    for entry in manifest["quarantine"]:
        _read_lake_file(lake_dir, generation, entry["path"], "quarantine file", entry["rows"], entry.get("bytes"),
                        entry.get("footer_sha256"), read=False)


def read_manifest(store: LakeStore) -> dict | None:
    """The lake's current manifest, or None where there is no lake.

    On disk, ``manifest.json`` is the commit itself. In an object store it is a copy of the
    latest manifest written after the commit, so the generations created after it
    (:func:`pipeline.lake.manifest.generation_file`) are looked for, one request each: a reader
    always sees the last committed generation, whole.

    Raises
    ------
    ValueError, KeyError, TypeError, OSError
        A manifest that cannot be read or parsed.
    """
    try:
        manifest = json.loads(store.read_bytes(MANIFEST))
    except (FileNotFoundError, NotADirectoryError):
        manifest = None
    if store.local:
        return manifest
    generation = int(manifest["generation"]) if manifest is not None else 0
    while store.exists(generation_file(generation + 1)):
        generation += 1
        manifest = json.loads(store.read_bytes(generation_file(generation)))
    return manifest


def _store(lake_dir: Path | LakeStore) -> LakeStore:
    return lake_dir if isinstance(lake_dir, LakeStore) else LakeStore.at(lake_dir)


def _gone(store: LakeStore, generation: int, relative: str, what: str) -> LakeError:
    """The error for a file of generation ``generation`` that is no longer there."""
    try:
        now = read_manifest(store)["generation"]
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        now = None
    if now is not None and now != generation:
        return LakeError(f"{store}: the lake changed during the run (generation {generation} → {now}): "
                         f"the {what} ({relative}) of generation {generation} is gone; run again")
    return LakeError(f"{store.describe(relative)}: the {what} is missing (lake generation {generation}); "
                     f"run `chipscreen lake verify {store}`")


def _damaged(store: LakeStore, generation: int, relative: str, what: str, detail: str) -> LakeError:
    return LakeError(f"{store.describe(relative)}: the {what} does not match the lake's manifest "
                     f"(generation {generation}): {detail}; run `chipscreen lake verify {store}`")
