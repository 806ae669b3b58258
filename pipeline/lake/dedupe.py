"""Repeated shipment ids at ingest: among one call's rows, and against the lake's id index.

Hashes only nominate candidates; ids are compared as strings. The lake's rules: the same id
with identical content is a no-op, a ``shipped`` row replaces a ``pending`` one, any other
difference is quarantined. This call's rows are spilled to buckets of the id hash
(:class:`HashBuckets`) and checked a bucket at a time against the lake's index entries of the
same hashes, so memory does not grow with the rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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


BUCKET_ROWS = 4_000_000
"""This call's rows per id-hash bucket that the duplicate checks hold at once (about 50 bytes
each, with the lake's entries of the same hashes): memory stays bounded however many rows a
call or a lake holds."""
HASH_SCHEMA = pa.schema([("id_hash", pa.uint64()), ("row_hash", pa.uint64()), ("shipped", pa.bool_()),
                         ("row", pa.int64()), ("month", pa.int32()), ("shipment_id", pa.string())])
"""A bucket entry: hashes, shipped, and for this call's rows the global row and its month; for the
lake's, the position in the partition and the partition's number in the manifest."""


def bucket_bits(entries: int) -> int:
    """Id-hash bits that pick a bucket: about :data:`BUCKET_ROWS` entries per bucket (0: one bucket)."""
    buckets = max(1, -(-int(entries) // BUCKET_ROWS))
    return min(int(np.ceil(np.log2(buckets))), 12)


class HashBuckets:
    """Entries of :data:`HASH_SCHEMA` spilled to one Parquet file per bucket of the id hash's top bits.

    Parameters
    ----------
    folder : Path
        The staging folder of the ingest.
    name : str
        File name prefix.
    bits : int
        See :func:`bucket_bits`.
    """

    def __init__(self, folder: Path, name: str, bits: int):
        self.folder, self.name, self.bits = folder, name, bits
        self._writers: dict[int, pq.ParquetWriter] = {}

    def _path(self, bucket: int) -> Path:
        return self.folder / f"{self.name}-{bucket:04d}.parquet"

    def add(self, table: pa.Table) -> None:
        """Spill entries (a table of :data:`HASH_SCHEMA`)."""
        if not table.num_rows:
            return
        hashes = table.column("id_hash").to_numpy()
        bucket = (hashes >> np.uint64(64 - self.bits)).astype(np.int64) if self.bits else np.zeros(len(hashes), np.int64)
        order = np.argsort(bucket, kind="stable")
        ordered = bucket[order]
        bounds = np.flatnonzero(np.diff(ordered)) + 1
        for begin, end in zip(np.r_[0, bounds], np.r_[bounds, len(order)]):
            number = int(ordered[begin])
            if number not in self._writers:
                self._writers[number] = pq.ParquetWriter(self._path(number), HASH_SCHEMA, compression="none")
            self._writers[number].write_table(table.take(pa.array(order[begin:end])))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def __len__(self) -> int:
        return 1 << self.bits

    def read(self, bucket: int) -> pa.Table:
        """The entries of one bucket (none: an empty table)."""
        if bucket not in self._writers:
            return HASH_SCHEMA.empty_table()
        return pq.read_table(self._path(bucket)).combine_chunks()


@dataclass
class Rejections:
    """What the duplicate checks decided, bucket after bucket (all sparse: repeats are few).

    Attributes
    ----------
    rows, reasons : list of ndarray
        Global rows rejected after streaming and their reason codes (``_NO_OP``: already in the lake).
    removals : dict
        Month (int, months since 1970-01) → shipment ids of pending lake rows that shipped rows replace.
    superseded : int
    kept_months : set of int
        Months with at least one row of this call still accepted.
    """

    rows: list = field(default_factory=list)
    reasons: list = field(default_factory=list)
    removals: dict = field(default_factory=dict)
    superseded: int = 0
    kept_months: set = field(default_factory=set)

    def reject(self, rows: np.ndarray, reason: int) -> None:
        if len(rows):
            self.rows.append(np.asarray(rows, np.int64))
            self.reasons.append(np.full(len(rows), reason, np.int16))

    def rejected(self) -> tuple[np.ndarray, np.ndarray]:
        """Rejected rows (sorted) and their reasons."""
        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)
        reasons = np.concatenate(self.reasons) if self.reasons else np.zeros(0, np.int16)
        order = np.argsort(rows, kind="stable")
        return rows[order], reasons[order]


def check_duplicates(new: HashBuckets, lake_dir: Path, manifest: dict) -> Rejections:
    """Repeated shipment ids among this call's accepted rows, then against the lake, bucket by bucket.

    Within the call (as :func:`pipeline.ingest.read_ledgers` resolves them): exact repeats keep
    their first copy (file order); ids repeated with different content are quarantined
    entirely. Against the lake: the same id with identical content is a no-op, a ``shipped`` row
    replaces a ``pending`` one, any other difference is quarantined. Hashes only nominate
    candidates; ids are compared as strings. Each bucket of this call's rows reads the lake's id
    index hashes once, a partition at a time, keeping only the entries whose hash it holds (a
    nightly file is one bucket: one pass over the index, as before buckets).
    """
    out = Rejections()
    months = [int(np.datetime64(part["key"], "M").astype(np.int32)) for part in manifest["partitions"]]
    for bucket in range(len(new)):
        entries = new.read(bucket)
        if entries.num_rows:
            _check_bucket(entries, _lake_entries(lake_dir, manifest, entries.column("id_hash").to_numpy()),
                          months, out)
    return out


def _lake_entries(lake_dir: Path, manifest: dict, hashes: np.ndarray) -> pa.Table:
    """The lake's id index entries (of :data:`HASH_SCHEMA`: position in the partition as ``row``,
    the partition's number as ``month``) whose id hash is among ``hashes``."""
    wanted = np.unique(hashes)
    found = []
    for number, part in enumerate(manifest["partitions"]):
        index = _read_index_entry(lake_dir, manifest, part, ["id_hash", "row_hash", "shipped"])
        lake_hash = index.column("id_hash").to_numpy()
        at = np.minimum(np.searchsorted(wanted, lake_hash), len(wanted) - 1)
        positions = np.flatnonzero(wanted[at] == lake_hash)
        if not len(positions):
            continue
        taken = pa.array(positions)
        ids = _read_index_entry(lake_dir, manifest, part, ["shipment_id"]).column("shipment_id").take(taken)
        found.append(pa.table({
            "id_hash": index.column("id_hash").take(taken), "row_hash": index.column("row_hash").take(taken),
            "shipped": index.column("shipped").take(taken), "row": taken,
            "month": pa.array(np.full(len(positions), number, np.int32)),
            "shipment_id": ids.cast(pa.string())}, schema=HASH_SCHEMA))
    return pa.concat_tables(found).combine_chunks() if found else HASH_SCHEMA.empty_table()


def _check_bucket(new: pa.Table, lake: pa.Table, months: list[int], out: Rejections) -> None:
    rows = new.column("row").to_numpy()
    id_hash, row_hash = new.column("id_hash").to_numpy(), new.column("row_hash").to_numpy()
    alive = np.ones(new.num_rows, bool)
    # ---- within this call
    ordered = np.sort(id_hash)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated):
        candidates = np.flatnonzero(np.isin(id_hash, repeated))
        candidates = candidates[np.argsort(rows[candidates], kind="stable")]  # file order
        frame = pd.DataFrame({"at": candidates, "id": new.column("shipment_id").take(pa.array(candidates)).to_pandas(),
                              "content": row_hash[candidates]})
        for _, group in frame.groupby("id", sort=False):
            if len(group) < 2:
                continue  # a hash collision, not a repeat
            at = group["at"].to_numpy()
            if (group["content"] == group["content"].iloc[0]).all():
                out.reject(rows[at[1:]], reason_code(REASON_EXACT_DUPLICATE))
                alive[at[1:]] = False
            else:
                out.reject(rows[at], reason_code(REASON_CONFLICT))
                alive[at] = False
    # ---- against the lake
    if lake.num_rows and alive.any():
        lake_hash = lake.column("id_hash").to_numpy()
        live = np.flatnonzero(alive)
        order = np.argsort(lake_hash, kind="stable")
        sorted_hash = lake_hash[order]
        low = np.searchsorted(sorted_hash, id_hash[live], "left")
        width = np.searchsorted(sorted_hash, id_hash[live], "right") - low
        if width.any():
            mine = np.repeat(live, width)  # every (new entry, lake entry) pair of equal id hashes
            first = np.repeat(np.cumsum(width) - width, width)
            theirs = order[np.repeat(low, width) + (np.arange(len(mine)) - first)]
            same = pc.equal(new.column("shipment_id").take(pa.array(mine)),
                            lake.column("shipment_id").take(pa.array(theirs))).to_numpy(zero_copy_only=False)
            mine, theirs = mine[same], theirs[same]
            shipped, lake_shipped = new.column("shipped").to_numpy(zero_copy_only=False), \
                lake.column("shipped").to_numpy(zero_copy_only=False)
            identical = row_hash[mine] == lake.column("row_hash").to_numpy()[theirs]
            out.reject(rows[mine[identical]], _NO_OP)
            alive[mine[identical]] = False
            mine, theirs = mine[~identical], theirs[~identical]
            replace = shipped[mine] & ~lake_shipped[theirs]
            late_pending = lake_shipped[theirs] & ~shipped[mine]
            out.reject(rows[mine[late_pending]], reason_code(REASON_ALREADY_SHIPPED))
            out.reject(rows[mine[~replace & ~late_pending]], reason_code(REASON_LAKE_CONFLICT))
            alive[mine[~replace]] = False
            theirs = theirs[replace]
            out.superseded += len(theirs)
            numbers = lake.column("month").to_numpy()[theirs]
            ids = lake.column("shipment_id").take(pa.array(theirs))
            for number in np.unique(numbers):
                month = months[int(number)]
                out.removals.setdefault(month, []).append(ids.filter(pa.array(numbers == number)))
    out.kept_months.update(np.unique(new.column("month").to_numpy()[alive]).tolist())


def _new_quarantine_rows(lake_dir: Path, manifest: dict, quarantine: pa.Table) -> pa.Table:
    """Rows of this call's quarantine not already in the lake's (same source file content, row and reason)."""
    if not quarantine.num_rows or not manifest["quarantine"]:
        return quarantine
    columns = ["source_sha256", "source_row", "reason"]
    known = pa.concat_tables([_read_quarantine_entry(lake_dir, manifest, q, columns) for q in manifest["quarantine"]])
    key = lambda t: pd.MultiIndex.from_frame(t.select(columns).to_pandas())  # noqa: E731
    fresh = ~key(quarantine).isin(key(known))
    return quarantine.filter(pa.array(fresh))
