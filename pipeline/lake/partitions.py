"""Writing a month partition's new version: its rows file and id index, canonical bytes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.ingest.formats import file_digest
from pipeline.lake.manifest import _file_facts, _write_parquet
from pipeline.lake.reader import _read_index_entry, _read_rows_entry
from pipeline.lake.store import LakeStore
from pipeline.lake.schema import INDEX_SCHEMA, STORED_COLUMNS


def _write_partition(store: LakeStore, manifest: dict, key: str, old: dict | None, spill: Path | None,
                     dropped: np.ndarray, removed: pa.Array | None, stamp: str, staging: Path) -> dict | None:
    """Write the new version of one month: old rows (less superseded ones) plus new rows (less
    ``dropped``, the sorted global rows the duplicate checks rejected), sorted.

    Both files are finished in ``staging`` (facts and digests taken there), then put into the
    lake under names from the rows file's SHA-256: the id index first, then the rows.

    Returns its manifest entry, or None when the month is left empty.
    """
    tables, indexes = [], []
    if old is not None:
        table = _read_rows_entry(store, manifest, old, list(STORED_COLUMNS))
        index = _read_index_entry(store, manifest, old)
        if removed is not None and len(removed):
            stay = pc.invert(pc.is_in(index.column("shipment_id"), value_set=removed))
            table, index = table.filter(stay), index.filter(stay)
        tables.append(table)
        indexes.append(index)
    if spill is not None:
        new = pq.read_table(spill)
        numbers = new.column("_row").to_numpy()
        at = np.minimum(np.searchsorted(dropped, numbers), max(len(dropped) - 1, 0))
        mask = ~(dropped[at] == numbers) if len(dropped) else np.ones(len(numbers), bool)
        new = new.filter(pa.array(mask))
        hashes = new.column("_id_hash").to_numpy(), new.column("_row_hash").to_numpy()
        new = new.drop_columns(["_row", "_id_hash", "_row_hash"])
        tables.append(new)
        indexes.append(_index_of(new, *hashes))
    table = pa.concat_tables(tables)
    index = pa.concat_tables(indexes)
    if not table.num_rows:
        return None
    order = pc.sort_indices(table.select(["ship_date", "shipment_id"]),
                            [("ship_date", "ascending"), ("shipment_id", "ascending")])
    table, index = table.take(order), index.take(order)
    staged, staged_index = staging / f"rows-{key}.parquet", staging / f"ids-{key}.parquet"
    _write_parquet(_canonical(table), staged)
    _write_parquet(index.combine_chunks(), staged_index)
    sha = file_digest(staged)
    rows_path, index_path = f"partitions/{key}/rows-{sha[:16]}.parquet", f"partitions/{key}/ids-{sha[:16]}.parquet"
    facts, index_facts, index_sha = _file_facts(staged), _file_facts(staged_index), file_digest(staged_index)
    store.put(staged_index, index_path)
    store.put(staged, rows_path)
    dates = table.column("ship_date")
    return {"key": key, "path": rows_path, "index": index_path,
            "first_date": dates[0].as_py().isoformat(), "last_date": dates[-1].as_py().isoformat(),
            "rows": table.num_rows, "sha256": sha, "ingested_at": stamp, **facts,
            "index_sha256": index_sha, "index_bytes": index_facts["bytes"],
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
