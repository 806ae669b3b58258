"""End-of-history totals kept next to a lake, so nightly runs read only what is new (DESIGN §6).

A checkpoint belongs to one rule set (with its overrides), one screening list, one catalog and
one code version: its folder name carries a fingerprint of all of them, and any change starts
a full run. It records, per lake partition in time order, the partition's content hash, what
its rows contributed to the per-key totals, and their :class:`~pipeline.tally.Tally`; plus the
screening-order position of the last row and the row hashes of the last partition.

A later run compares the lake's manifest with it:

- no partition changed: nothing to screen;
- only rows after the position were added (to the last partition or in new ones): screen those
  rows alone, from the end-of-history totals;
- anything else (a backdated row, a pending row that shipped, a removed row): screen again from
  the first changed partition, from the totals of the partitions before it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import __version__
from pipeline.carry import Carry
from pipeline.lake import Lake, Partition
from pipeline.policy import Policy
from pipeline.publish import run_folder
from pipeline.reference import CATALOG_PATH, COUNTRIES_PATH
from pipeline.screen import file_digest
from pipeline.tally import Tally

CHECKPOINTS = "checkpoints"


def fingerprint(policy: Policy, csl_path: Path) -> dict:
    """Everything screening results depend on besides the rows."""
    reviews = policy.get("parties").get("reviews_file")
    return {"policy": policy.id, "policy_sha256": file_digest(policy.path), "overrides": list(policy.overrides),
            "reviews_sha256": file_digest(Path(reviews)) if reviews else None,
            "screening_list_sha256": file_digest(csl_path), "catalog_sha256": file_digest(CATALOG_PATH),
            "countries_sha256": file_digest(COUNTRIES_PATH), "code_version": __version__}


def checkpoint_dir(lake: Lake, print_: dict) -> Path:
    """Folder of the checkpoint for this fingerprint."""
    digest = hashlib.sha256(json.dumps(print_, sort_keys=True).encode()).hexdigest()[:16]
    return lake.path / CHECKPOINTS / f"{print_['policy']}-{digest}"


def _row_keys(lake: Lake, partition: Partition) -> np.ndarray:
    """Content keys of a partition's rows (id hash and row hash), aligned with its rows."""
    index = lake.read_index(partition)
    return (index.column("id_hash").to_numpy().astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            ^ index.column("row_hash").to_numpy().astype(np.uint64))


@dataclass
class Checkpoint:
    """Per-partition totals and tallies of a screened lake.

    Attributes
    ----------
    partitions : list of dict
        ``key``, ``sha256``, ``rows`` of each screened partition, in time order.
    contributions : list of Carry
        What each partition's rows added to the per-key totals.
    tallies : list of Tally
    position : tuple (date, str) or None
        ``(ship_date, shipment_id)`` of the last screened row.
    tail_keys : ndarray of uint64
        Sorted content keys of the last partition's rows.
    names : pandas.DataFrame or None
        Party results of the consignee names screened so far (a later night screens only new names).
    """

    partitions: list[dict]
    contributions: list[Carry]
    tallies: list[Tally]
    position: tuple[dt.date, str] | None
    tail_keys: np.ndarray
    names: pd.DataFrame | None = None

    def carry_before(self, index: int) -> Carry:
        """Totals of the partitions before ``index``."""
        return Carry.empty().plus(*self.contributions[:index]) if index else Carry.empty()

    @classmethod
    def load(cls, folder: Path) -> "Checkpoint | None":
        """The checkpoint in ``folder``, or None when there is none (or it cannot be read)."""
        try:
            meta = json.loads((folder / "checkpoint.json").read_text())
            contributions = pq.read_table(folder / "contributions.parquet")
            tail = pq.read_table(folder / "tail.parquet").column("key").to_numpy().astype(np.uint64)
        except (OSError, ValueError):
            return None
        piece = contributions.column("partition").to_numpy()
        carries = [Carry.from_table(contributions.filter(pa.array(piece == i))) for i in range(len(meta["partitions"]))]
        position = meta["position"]
        names = pd.read_parquet(folder / "names.parquet") if (folder / "names.parquet").is_file() else None
        return cls(meta["partitions"], carries, [Tally.from_dict(t) for t in meta["tallies"]],
                   (dt.date.fromisoformat(position[0]), position[1]) if position else None, tail, names)

    def save(self, folder: Path, print_: dict, generation: int) -> None:
        """Write the checkpoint into ``folder``, replacing the one there in one step."""
        with run_folder(folder) as run:
            tables = [c.to_table().append_column("partition", pa.array(np.full(len(c), i, np.int32)))
                      for i, c in enumerate(self.contributions)]
            if tables:
                pq.write_table(pa.concat_tables(tables, promote_options="permissive"), run / "contributions.parquet")
            else:
                pq.write_table(Carry.empty().to_table().append_column("partition", pa.array([], pa.int32())),
                               run / "contributions.parquet")
            pq.write_table(pa.table({"key": pa.array(self.tail_keys, pa.uint64())}), run / "tail.parquet")
            if self.names is not None:
                self.names.to_parquet(run / "names.parquet", index=False)
            (run / "checkpoint.json").write_text(json.dumps({
                "fingerprint": print_, "lake_generation": generation, "partitions": self.partitions,
                "position": [self.position[0].isoformat(), self.position[1]] if self.position else None,
                "tallies": [t.to_dict() for t in self.tallies],
                "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }, indent=1) + "\n")


@dataclass
class Plan:
    """What a run over a lake must screen.

    Attributes
    ----------
    start : int
        Index of the first partition to screen; partitions before it are taken from the checkpoint.
    after : tuple (date, str) or None
        Screen only rows after this position in partition ``start`` (an append); None: all its rows.
    mode : str
        ``full``, ``incremental``, ``recompute`` or ``unchanged``.
    why : str
    """

    start: int
    after: tuple[dt.date, str] | None
    mode: str
    why: str


def plan(lake: Lake, checkpoint: Checkpoint | None) -> Plan:
    """Compare the lake with a checkpoint and decide where screening starts."""
    parts = lake.partitions
    if checkpoint is None:
        return Plan(0, None, "full", "no checkpoint for this rule set and reference data")
    old = checkpoint.partitions
    first = 0
    while first < min(len(old), len(parts)) and old[first]["key"] == parts[first].key \
            and old[first]["sha256"] == parts[first].sha256:
        first += 1
    if first == len(old) == len(parts):
        return Plan(len(parts), None, "unchanged", "no partition changed since the checkpoint")
    if first == len(old):
        return Plan(first, None, "incremental", f"{len(parts) - first} new partition(s) after the checkpoint")
    if first == len(old) - 1 and first < len(parts) and old[first]["key"] == parts[first].key \
            and checkpoint.position is not None and _appended(lake, parts[first], checkpoint):
        return Plan(first, checkpoint.position, "incremental",
                    f"rows added after {checkpoint.position[0]} in {parts[first].key}")
    changed = parts[first].key if first < len(parts) else old[first]["key"]
    return Plan(first, None, "recompute", f"partition {changed} changed before the checkpoint's last row; "
                                          "screening again from it")


def after_position(rows: pa.Table, position: tuple[dt.date, str]) -> np.ndarray:
    """Rows that come after ``(ship_date, shipment_id)`` in screening order."""
    day, shipment = pa.scalar(position[0], pa.date32()), pa.scalar(position[1], pa.string())
    dates = rows.column("ship_date")
    later = pc.or_(pc.greater(dates, day),
                   pc.and_(pc.equal(dates, day), pc.greater(rows.column("shipment_id").cast(pa.string()), shipment)))
    return later.to_numpy(zero_copy_only=False)


def _appended(lake: Lake, partition: Partition, checkpoint: Checkpoint) -> bool:
    """Does the partition hold every row it held at the checkpoint, all new rows coming after it?"""
    keys = _row_keys(lake, partition)
    later = after_position(lake.read(partition, columns=["ship_date", "shipment_id"]), checkpoint.position)
    kept = np.sort(keys[~later])
    return len(kept) == len(checkpoint.tail_keys) and bool(np.array_equal(kept, checkpoint.tail_keys))


def tail_keys(lake: Lake) -> np.ndarray:
    """Sorted content keys of the lake's last partition (what the next run compares)."""
    return np.sort(_row_keys(lake, lake.partitions[-1])) if lake.partitions else np.zeros(0, np.uint64)


def last_position(lake: Lake) -> tuple[dt.date, str] | None:
    """``(ship_date, shipment_id)`` of the lake's last row in screening order."""
    if not lake.partitions:
        return None
    rows = lake.read(lake.partitions[-1], columns=["ship_date", "shipment_id"])
    frame = rows.slice(rows.num_rows - 1).to_pylist()[0]
    return frame["ship_date"], str(frame["shipment_id"])


def summary_partitions(parts: list[Partition]) -> list[dict]:
    """The manifest facts a checkpoint keeps per partition."""
    return [{"key": p.key, "sha256": p.sha256, "rows": p.rows} for p in parts]

