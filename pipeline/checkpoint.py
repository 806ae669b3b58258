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
from pipeline.ingest import file_digest
from pipeline.lake import Lake, Partition
from pipeline.policy import Policy
from pipeline.publish import discard, link_or_copy, new_run, publish
from pipeline.reference import CATALOG_PATH, COUNTRIES_PATH
from pipeline.tally import Tally

CHECKPOINTS = "checkpoints"
RESULTS_FORMAT = 3
"""Version of what a checkpoint stores (decision columns, carry accumulators, party result
columns); a checkpoint of another format is not reused. 2: the China volume totals, the listing
dates and the export/ultimate-parent columns (``in-force``); 3: each partition's decisions files."""


def fingerprint(policy: Policy, csl_path: Path) -> dict:
    """Everything screening results depend on besides the rows."""
    reviews = policy.get("parties").get("reviews_file")
    register = policy.license_register()
    return {"policy": policy.id, "policy_sha256": file_digest(policy.path), "overrides": list(policy.overrides),
            "reviews_sha256": file_digest(Path(reviews)) if reviews else None,
            "screening_list_sha256": file_digest(csl_path), "catalog_sha256": file_digest(CATALOG_PATH),
            "countries_sha256": file_digest(COUNTRIES_PATH), "code_version": __version__,
            "results_format": RESULTS_FORMAT, "licenses_sha256": register.sha256 if register is not None else None}


def checkpoints_root(lake: Lake) -> Path:
    """The folder of a lake's checkpoints: ``checkpoints/`` beside the lake (in its folder; for a
    lake in an object store, in this machine's folder for it, :data:`pipeline.lake.store.STATE_ENV`:
    the decisions files a checkpoint keeps are hard links to published runs, on this machine too)."""
    return lake.store.beside / CHECKPOINTS


def checkpoint_dir(lake: Lake, print_: dict) -> Path:
    """Folder of the checkpoint for this fingerprint."""
    digest = hashlib.sha256(json.dumps(print_, sort_keys=True).encode()).hexdigest()[:16]
    return checkpoints_root(lake) / f"{print_['policy']}-{digest}"


def _row_keys(lake: Lake, partition: Partition) -> np.ndarray:
    """Content keys of a partition's rows (id hash and row hash), aligned with its rows."""
    index = lake.read_index(partition)
    return (index.column("id_hash").to_numpy().astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            ^ index.column("row_hash").to_numpy().astype(np.uint64))


@dataclass
class CheckpointPart:
    """One partition as a checkpoint keeps it: its manifest facts, contribution and tally.

    ``contribution`` and ``tally`` are read from ``stored`` (a file stem of an earlier
    checkpoint) on first use; a new part holds them in memory until saved.
    """

    key: str
    sha256: str
    rows: int
    contribution_: Carry | None = None
    tally_: Tally | None = None
    stored: Path | None = None
    decisions: list[Path] | None = None
    """The decisions files of the partition's rows, in screening order (None: not kept, as when the
    run that screened them wrote no outputs; such a checkpoint cannot complete a later run's set)."""

    @property
    def contribution(self) -> Carry:
        """What the partition's rows added to the per-key totals."""
        if self.contribution_ is None:
            self.contribution_ = Carry.read(self.stored.with_suffix(".carry.parquet"))
        return self.contribution_

    @property
    def tally(self) -> Tally:
        """The counts of the partition's rows."""
        if self.tally_ is None:
            self.tally_ = Tally.from_dict(json.loads(self.stored.with_suffix(".tally.json").read_text()))
        return self.tally_


@dataclass
class Checkpoint:
    """Per-partition totals and tallies of a screened lake, and their sums up to its last row.

    Attributes
    ----------
    parts : list of CheckpointPart
        The screened partitions, in time order (read lazily: an append needs only the last).
    end : Carry
        Totals after the last row.
    total : Tally
        Merged tally of all partitions.
    position : tuple (date, str) or None
        ``(ship_date, shipment_id)`` of the last screened row.
    tail_keys : ndarray of uint64
        Sorted content keys of the last partition's rows.
    names : pandas.DataFrame or None
        Party results of the consignee names screened so far (a later night screens only new names).
    published : dict or None
        Where the run that wrote the checkpoint was published: ``out`` (the destination) and
        ``run`` (its run folder's name); None when it was not.

    Notes
    -----
    Each part keeps the decisions files of its rows (hard links to the files its run published),
    so that a later run publishes the complete decision set of the lake while screening only
    what changed (:attr:`carries`).
    """

    parts: list[CheckpointPart]
    end: Carry
    total: Tally
    position: tuple[dt.date, str] | None
    tail_keys: np.ndarray
    names: pd.DataFrame | None = None
    published: dict | None = None

    @property
    def partitions(self) -> list[dict]:
        """``key``, ``sha256``, ``rows`` of each screened partition."""
        return [{"key": p.key, "sha256": p.sha256, "rows": p.rows} for p in self.parts]

    @property
    def carries(self) -> bool:
        """Whether every part kept its decisions files, intact (a later run can carry them)."""
        return all(p.decisions is not None for p in self.parts)

    def decisions_before(self, index: int) -> list[Path]:
        """The decisions files of the partitions before ``index``, in screening order."""
        return [path for part in self.parts[:index] for path in part.decisions]

    def carry_before(self, index: int) -> Carry:
        """Totals of the partitions before ``index``."""
        if index >= len(self.parts):
            return self.end
        return Carry.empty().plus(*[p.contribution for p in self.parts[:index]]) if index else Carry.empty()

    def tally_before(self, index: int) -> Tally | None:
        """Merged tally of the partitions before ``index`` (None when there are none)."""
        if index >= len(self.parts) and self.parts:
            return self.total
        return Tally.merge([p.tally for p in self.parts[:index]]) if index else None

    @classmethod
    def load(cls, folder: Path) -> "Checkpoint | None":
        """The checkpoint in ``folder``, or None when there is none (or it cannot be read)."""
        try:
            meta = json.loads((folder / "checkpoint.json").read_text())
            end = Carry.read(folder / "end.parquet")
            total = Tally.from_dict(json.loads((folder / "total.json").read_text()))
            tail = pq.read_table(folder / "tail.parquet").column("key").to_numpy().astype(np.uint64)
        except (OSError, ValueError, KeyError):
            return None
        parts = [CheckpointPart(p["key"], p["sha256"], p["rows"], stored=folder / "parts" / p["stem"],
                                decisions=_kept_decisions(folder / "parts", p.get("decisions")))
                 for p in meta["partitions"]]
        position = meta["position"]
        names = pd.read_parquet(folder / "names.parquet") if (folder / "names.parquet").is_file() else None
        return cls(parts, end, total, (dt.date.fromisoformat(position[0]), position[1]) if position else None,
                   tail, names, meta.get("published"))

    def save(self, folder: Path, print_: dict, generation: int) -> None:
        """Write the checkpoint into ``folder``, replacing the one there in one step.

        Parts read from an earlier checkpoint are hard-linked, not rewritten.
        """
        publish(self.stage(folder, print_, generation), folder, replace_folder=True)

    def stage(self, folder: Path, print_: dict, generation: int) -> Path:
        """Write the checkpoint into a fresh run folder of ``folder``, not yet in use.

        Returns
        -------
        Path
            The run folder: :func:`pipeline.publish.publish` it to ``folder`` (with
            ``replace_folder=True``) once the run's results are published, or discard it.
        """
        run = new_run(folder, replace_folder=True)
        try:
            self._write(run, print_, generation)
        except BaseException:
            discard(run)
            raise
        return run

    def _write(self, run: Path, print_: dict, generation: int) -> None:
        """Write the checkpoint's files into ``run``."""
        (run / "parts").mkdir()
        entries = []
        for part in self.parts:
            if part.stored is not None:  # unchanged since an earlier checkpoint
                stem = part.stored.name
                for suffix in (".carry.parquet", ".tally.json"):
                    link_or_copy(part.stored.with_suffix(suffix), run / "parts" / (stem + suffix))
            else:
                tally = json.dumps(part.tally.to_dict(), separators=(",", ":"))
                stem = f"{part.key}-{hashlib.sha256((part.sha256 + tally).encode()).hexdigest()[:12]}"
                part.contribution.write(run / "parts" / f"{stem}.carry.parquet")
                (run / "parts" / f"{stem}.tally.json").write_text(tally + "\n")
            entry = {"key": part.key, "sha256": part.sha256, "rows": part.rows, "stem": stem}
            if part.decisions is not None:
                entry["decisions"] = []
                for number, source in enumerate(part.decisions):
                    name = f"{stem}.decisions-{number}.parquet"
                    link_or_copy(source, run / "parts" / name)
                    facts = (run / "parts" / name).stat()
                    entry["decisions"].append({"name": name, "bytes": facts.st_size, "mtime_ns": facts.st_mtime_ns})
            entries.append(entry)
        self.end.write(run / "end.parquet")
        (run / "total.json").write_text(json.dumps(self.total.to_dict(), separators=(",", ":")) + "\n")
        pq.write_table(pa.table({"key": pa.array(self.tail_keys, pa.uint64())}), run / "tail.parquet")
        if self.names is not None:
            self.names.to_parquet(run / "names.parquet", index=False)
        (run / "checkpoint.json").write_text(json.dumps({
            "fingerprint": print_, "lake_generation": generation, "partitions": entries,
            "position": [self.position[0].isoformat(), self.position[1]] if self.position else None,
            "published": self.published,
            "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }, indent=1) + "\n")


def _kept_decisions(folder: Path, entries: list[dict] | None) -> list[Path] | None:
    """The decisions files a checkpoint part names, or None when it names none or one is missing
    or changed since it was written (size or modification time: a published file rewritten in
    place changes its hard link too); the checkpoint then cannot complete a later run's set."""
    if entries is None:
        return None
    paths = [folder / e["name"] for e in entries]
    for path, entry in zip(paths, entries):
        try:
            facts = path.stat()
        except OSError:
            return None
        if facts.st_size != entry["bytes"] or facts.st_mtime_ns != entry.get("mtime_ns"):
            return None
    return paths


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
