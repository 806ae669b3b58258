"""Repeated shipment ids at ingest: among one call's rows, and against the lake's id index.

Hashes only nominate candidates; ids are compared as strings. The lake's rules: the same id
with identical content is a no-op, a ``shipped`` row replaces a ``pending`` one, any other
difference is quarantined.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.ingest.schema import REASON_CONFLICT, REASON_EXACT_DUPLICATE, reason_code
from pipeline.lake.reader import _read_index_entry, _read_quarantine_entry

REASON_LAKE_CONFLICT = "shipment_id already in the lake with different content"
REASON_ALREADY_SHIPPED = "pending row for a shipment_id already shipped in the lake"
_NO_OP = -1
"""Reason slot of a row identical to one already in the lake (neither added nor quarantined)."""


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
        index = _read_index_entry(lake_dir, manifest, part, ["id_hash", "row_hash", "shipped"])
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
        ids = _read_index_entry(lake_dir, manifest, manifest["partitions"][number], ["shipment_id"])
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
    known = pa.concat_tables([_read_quarantine_entry(lake_dir, manifest, q, columns) for q in manifest["quarantine"]])
    key = lambda t: pd.MultiIndex.from_frame(t.select(columns).to_pandas())  # noqa: E731
    fresh = ~key(quarantine).isin(key(known))
    return quarantine.filter(pa.array(fresh))
