"""Writing a month partition's new version: its rows file and id index, canonical bytes, a range of
days at a time."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.ingest.formats import file_digest
from pipeline.lake.manifest import _file_facts, _StagedParquet
from pipeline.lake.reader import _read_index_entry, _read_rows_entry
from pipeline.lake.store import LakeStore
from pipeline.lake.schema import INDEX_SCHEMA, STORED_COLUMNS


PARTITION_CHUNK_ROWS = 4_000_000
"""A month is written a range of days at a time, each of about this many rows at most (a day is
never split): memory holds one range, however dense the month. A month of fewer rows is one range
and gives the bytes of a partition written whole."""


def _write_partition(store: LakeStore, manifest: dict, key: str, old: dict | None, spill: Path | None,
                     dropped: np.ndarray, removed: pa.Array | None, stamp: str, staging: Path) -> dict | None:
    """Write the new version of one month: old rows (less superseded ones) plus new rows (less
    ``dropped``, the sorted global rows the duplicate checks rejected), in screening order.

    The month is built a range of days at a time (:data:`PARTITION_CHUNK_ROWS`): the old rows of the
    range (a contiguous span of the old file, which is in screening order) and the new rows of the
    range (read from the spill with a filter), sorted and appended as row groups. Both files are
    finished in ``staging`` (facts and digests taken there), then put into the lake under names from
    the rows file's SHA-256: the id index first, then the rows.

    Returns its manifest entry, or None when the month is left empty.
    """
    old_days = _day_numbers(_read_rows_entry(store, manifest, old, ["ship_date"]).column("ship_date")) \
        if old is not None else np.zeros(0, np.int64)
    new_days = np.zeros(0, np.int64)
    if spill is not None:
        probe = pq.read_table(spill, columns=["ship_date", "_row"])
        new_days = _day_numbers(probe.column("ship_date"))[_kept(probe.column("_row").to_numpy(), dropped)]
    staged, staged_index = _StagedParquet(staging / f"rows-{key}.parquet"), _StagedParquet(staging / f"ids-{key}.parquet")
    first = last = None
    rows = 0
    ranges = _day_ranges(np.concatenate([old_days, new_days]))
    for low, high in ranges:
        tables, indexes = [], []
        if old is not None:
            span = (int(np.searchsorted(old_days, low)), int(np.searchsorted(old_days, high, side="right")))
            if span[1] > span[0]:
                table = _read_rows_entry(store, manifest, old, list(STORED_COLUMNS), span=span)
                index = _read_index_entry(store, manifest, old, span=span)
                if removed is not None and len(removed):
                    stay = pc.invert(pc.is_in(index.column("shipment_id"), value_set=removed))
                    table, index = table.filter(stay), index.filter(stay)
                tables.append(table)
                indexes.append(index)
        if spill is not None:
            new = _spill_range(spill, low, high, single=len(ranges) == 1)
            new = new.filter(pa.array(_kept(new.column("_row").to_numpy(), dropped)))
            hashes = new.column("_id_hash").to_numpy(), new.column("_row_hash").to_numpy()
            new = new.drop_columns(["_row", "_id_hash", "_row_hash"])
            tables.append(new)
            indexes.append(_index_of(new, *hashes))
        table = pa.concat_tables(tables) if tables else None
        if table is None or not table.num_rows:
            continue
        index = pa.concat_tables(indexes)
        order = pc.sort_indices(table.select(["ship_date", "shipment_id"]),
                                [("ship_date", "ascending"), ("shipment_id", "ascending")])
        table, index = table.take(order), index.take(order)
        staged.write(_canonical(table))
        staged_index.write(index.combine_chunks())
        dates = table.column("ship_date")
        first = dates[0].as_py() if first is None else first
        last, rows = dates[-1].as_py(), rows + table.num_rows
    if not staged.close():
        return None
    staged_index.close()
    sha = file_digest(staged.path)
    rows_path, index_path = f"partitions/{key}/rows-{sha[:16]}.parquet", f"partitions/{key}/ids-{sha[:16]}.parquet"
    facts, index_facts = _file_facts(staged.path), _file_facts(staged_index.path)
    index_sha = file_digest(staged_index.path)
    store.put(staged_index.path, index_path)
    store.put(staged.path, rows_path)
    return {"key": key, "path": rows_path, "index": index_path,
            "first_date": first.isoformat(), "last_date": last.isoformat(),
            "rows": rows, "sha256": sha, "ingested_at": stamp, **facts,
            "index_sha256": index_sha, "index_bytes": index_facts["bytes"],
            "index_footer_sha256": index_facts["footer_sha256"]}


def _day_numbers(dates: pa.ChunkedArray) -> np.ndarray:
    """Days since 1970 of a ``date32`` column (no nulls: stored rows always have a ship date)."""
    return pc.cast(dates, pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)


def _kept(numbers: np.ndarray, dropped: np.ndarray) -> np.ndarray:
    """Which of the spilled rows ``numbers`` are not among the sorted ``dropped`` rows."""
    if not len(dropped):
        return np.ones(len(numbers), bool)
    at = np.minimum(np.searchsorted(dropped, numbers), len(dropped) - 1)
    return dropped[at] != numbers


def _day_ranges(days: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive ranges ``[low, high]`` of the days present, each of at most
    :data:`PARTITION_CHUNK_ROWS` rows unless a single day holds more."""
    present, counts = np.unique(days, return_counts=True)
    ranges, start, held = [], 0, 0
    for number, count in enumerate(counts.tolist()):
        if number > start and held + count > PARTITION_CHUNK_ROWS:
            ranges.append((int(present[start]), int(present[number - 1])))
            start, held = number, 0
        held += count
    if len(present):
        ranges.append((int(present[start]), int(present[-1])))
    return ranges


def _spill_range(spill: Path, low: int, high: int, single: bool) -> pa.Table:
    """The spilled rows with ship dates in days ``[low, high]`` (all of them when ``single``).

    Read a row group at a time, keeping only the range: memory holds the range and one row group.
    """
    if single:
        return pq.read_table(spill)
    parquet = pq.ParquetFile(spill)
    parts = []
    for number in range(parquet.metadata.num_row_groups):
        group = parquet.read_row_group(number)
        days = _day_numbers(group.column("ship_date"))
        parts.append(group.filter(pa.array((days >= low) & (days <= high))))
    return pa.concat_tables(parts) if parts else parquet.schema_arrow.empty_table()


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
