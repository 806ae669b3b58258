"""Ingest: validate ledger files, stage month partitions, then commit a new manifest.

Memory is bounded by one input batch, one id-hash bucket (:mod:`pipeline.lake.dedupe`) and one
range of days of a month partition (:mod:`pipeline.lake.partitions`), whatever the number of
rows; accepted rows are spilled per month to the staging folder, and the only commit point is
the replacement of ``manifest.json`` (in an object store: the conditional creation of the
generation's manifest, see :func:`_commit`).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.ingest.formats import as_read, file_digest, ledger_format
from pipeline.ingest.schema import _REASON_TEXTS, CATEGORICAL_COLUMNS, LEDGER_COLUMNS, LedgerReadError
from pipeline.ingest.validate import _categorical, _validate
from pipeline.lake.dedupe import HASH_SCHEMA, HashBuckets, _new_quarantine_rows, bucket_bits, check_duplicates
from pipeline.lake.hashing import _column_hashes, _row_hashes
from pipeline.lake.manifest import (LAKE_FORMAT, LAKE_VERSION, LOCK, MANIFEST, MANIFESTS, STAGING, LakeError,
                                    LakeWarning, _clean_leftovers, _clean_store_leftovers, _empty_manifest,
                                    _file_facts, _fsync_dir, _Lock, _month_key, _now, _retire, _write_parquet,
                                    generation_file)
from pipeline.lake.partitions import _canonical, _write_partition
from pipeline.lake.reader import Lake, check_lake_files
from pipeline.lake.store import LakeStore, is_url
from pipeline.lake.schema import QUARANTINE_SCHEMA, STORED_COLUMNS, STORED_SCHEMA
from pipeline.lake.sources import _batches, _open_source, _quarantine_rows, _rows_as_read, _Source

CRASH_ENV = "CHIPSCREEN_INGEST_CRASH_AFTER"
"""Test hook: exit the process abruptly (``os._exit(1)``) once this many partitions are written."""
_NO_MONTH = np.iinfo(np.int32).min
"""Month slot of a rejected row (months before 1970 are negative)."""


@dataclass
class IngestReport:
    """What one :func:`ingest` call did.

    Attributes
    ----------
    lake : Path or str
        The lake's folder, or its URL in an object store.
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

    lake: Path | str
    generation: int
    committed: bool
    counts: dict
    partitions_written: list[str] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    seconds: float = 0.0


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
    lake_dir : path or str
        A folder, or an ``s3://`` URL (:mod:`pipeline.lake.store`).
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
        ``lake_dir`` is not a lake, or another ingest holds it (in a store: committed first).

    Notes
    -----
    Peak memory: one input batch, one bucket of about
    :data:`pipeline.lake.dedupe.BUCKET_ROWS` of this call's rows (with the lake's entries of the
    same id hashes), one partition's id index, and one range of days of a month partition
    (:data:`pipeline.lake.partitions.PARTITION_CHUNK_ROWS`); it does not grow with the rows read
    (only with the rows rejected as repeats, a few bytes each). The only commit point is the
    replacement of ``manifest.json`` (in an object store, :func:`_commit`).
    """
    started = time.perf_counter()
    if not paths:
        raise LedgerReadError("no ledger files given")
    if is_url(lake_dir):
        report = _ingest_into_store(paths, LakeStore.at(lake_dir), _progress_note(progress))
        report.seconds = round(time.perf_counter() - started, 3)
        return report
    lake_dir = Path(lake_dir)
    if lake_dir.exists() and not (lake_dir / MANIFEST).exists() and any(
            p.name not in (STAGING, LOCK, "partitions", "quarantine") for p in lake_dir.iterdir()):
        raise LakeError(f"{lake_dir}: exists and is not a ledger lake (no {MANIFEST}); use an empty folder")
    lake_dir.mkdir(parents=True, exist_ok=True)
    with _Lock(lake_dir):
        # Lake.open checks the manifest (LakeError when unreadable or damaged), as for a screen.
        lake = Lake.open(lake_dir, missing_ok=True)
        manifest = lake._manifest if lake is not None else _empty_manifest()
        check_lake_files(lake_dir, manifest)  # never commit a new generation over a damaged one
        _clean_leftovers(lake_dir, manifest)
        staging = lake_dir / STAGING
        staging.mkdir()
        try:
            report = _ingest(paths, LakeStore.at(lake_dir), manifest, staging, _progress_note(progress))
        except LakeError:  # a damaged lake file, found before the commit: remove what this call wrote
            if _committed_generation(lake_dir) == manifest["generation"]:
                _clean_leftovers(lake_dir, manifest)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


STORE_SCHEMES = ("s3",)
"""Object stores ingest writes to: those whose conditional write (If-None-Match) is tested here."""


def _ingest_into_store(paths, store: LakeStore, note) -> IngestReport:
    """Ingest into a lake in an object store: no lock; the commit is the conditional creation of
    the next generation's manifest, so of two concurrent ingests the second to commit fails
    cleanly (nothing of it is in the lake) and is run again. Work files stay on local disk."""
    scheme = store.location.split("://", 1)[0]
    if scheme not in STORE_SCHEMES:
        raise LakeError(f"{store}: ingest into {scheme}:// is not supported yet (a commit needs a conditional "
                        f"write; tested for {', '.join(s + '://' for s in STORE_SCHEMES)}); screen and audit read it")
    store.check_writable()
    lake = Lake.open(store.location, missing_ok=True)  # checked as for a screen (LakeError when damaged)
    if lake is None:
        foreign = [info.base_name for info in store.filesystem.get_file_info(
            pafs.FileSelector(store.path(""), allow_not_found=True))
            if info.base_name not in ("partitions", "quarantine", MANIFESTS)]
        if foreign:
            raise LakeError(f"{store}: holds other objects and no {MANIFEST} ({', '.join(sorted(foreign)[:3])}); "
                            "give an empty prefix")
    manifest = lake._manifest if lake is not None else _empty_manifest()
    check_lake_files(store, manifest)  # never commit a new generation over a damaged one
    with tempfile.TemporaryDirectory(prefix="chipscreen-ingest-") as work:
        staging = Path(work) / STAGING
        staging.mkdir()
        return _ingest(paths, store, manifest, staging, note)


def _commit(store: LakeStore, manifest: dict, staging: Path) -> None:
    """Make ``manifest`` the lake's current one: the commit point.

    On disk: ``manifest.json`` written in ``staging``, flushed, and renamed over the old one.
    In a store: the generation's manifest created only if absent (:meth:`LakeStore.create`),
    then ``manifest.json``, where readers start, replaced by a copy.

    Raises
    ------
    LakeError
        In a store, when another ingest committed this generation first.
    """
    text = json.dumps(manifest, indent=1) + "\n"
    if store.local:
        partial = staging / MANIFEST
        with open(partial, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, store.folder / MANIFEST)  # the commit point
        _fsync_dir(store.folder)
        _clean_leftovers(store.folder, manifest)  # superseded files past their retention
        return
    generation = manifest["generation"]
    if not store.create(generation_file(generation), text.encode()):  # the commit point
        raise LakeError(f"{store}: another ingest committed generation {generation} first; nothing of this "
                        "ingest is in the lake (its uploads are removed later); run it again")
    # Committed: what follows is best effort (readers find later generations without the copy;
    # leftovers wait for the next ingest); a failure is a warning, not a failed ingest.
    try:
        store.write_bytes(MANIFEST, text.encode())
        _clean_store_leftovers(store, manifest)
    except LakeError as error:
        warnings.warn(f"generation {generation} is committed; {error}", LakeWarning, stacklevel=2)


def _committed_generation(lake_dir: Path) -> int | None:
    """Generation of the manifest on disk (None when there is none or it cannot be read)."""
    try:
        return json.loads((lake_dir / MANIFEST).read_text())["generation"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _estimated_rows(paths) -> int:
    """Rows the files probably hold: Parquet's own count, else one per 60 bytes (an overestimate)."""
    total = 0
    for path in map(Path, paths):
        try:
            total += pq.ParquetFile(path).metadata.num_rows if ledger_format(path) == "parquet" \
                else path.stat().st_size // 60
        except (OSError, LedgerReadError, pa.ArrowException):
            continue  # reading the file says what is wrong with it
    return total


def _ingest(paths, store: LakeStore, manifest: dict, staging: Path, note) -> IngestReport:
    # ---- pass 1: stream, validate, hash, spill accepted rows per month and their ids per hash bucket
    sources: list[_Source] = []
    quarantine_parts: list[pa.Table] = []
    writers: dict[int, pq.ParquetWriter] = {}
    spill_schema = STORED_SCHEMA.append(pa.field("_row", pa.int64())).append(
        pa.field("_id_hash", pa.uint64())).append(pa.field("_row_hash", pa.uint64()))
    bits = bucket_bits(_estimated_rows(paths))
    new_buckets = HashBuckets(staging, "new", bits)
    total = invalid = 0
    try:
        for path in map(Path, paths):
            source = _open_source(path, total)
            sources.append(source)
            for raw in _batches(source):
                n = raw.num_rows
                if not n:
                    continue  # a file without rows (a header-only Parquet or CSV, an empty JSON Lines file)
                columns, reasons = _validate(raw)
                for name in STORED_COLUMNS:
                    if name not in columns:  # consignee_address: normalized like other text
                        column = raw.column(name) if name in raw.column_names else \
                            pa.chunked_array([pa.nulls(n, pa.string())])
                        columns[name] = _categorical(column, lambda a: a)
                table = pa.table({c: columns[c].cast(STORED_SCHEMA.field(c).type) for c in STORED_COLUMNS})
                bad = np.flatnonzero(reasons)
                invalid += len(bad)
                if len(bad):
                    texts = np.array(_REASON_TEXTS, dtype=object)[reasons[bad]]
                    quarantine_parts.append(_quarantine_rows(as_read(raw.take(pa.array(bad))),
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
                kept = pa.array(good)
                new_buckets.add(pa.table({
                    "id_hash": pa.array(id_hash[good]), "row_hash": pa.array(row_hash[good]),
                    "shipped": pa.array(shipped[good]), "row": pa.array(rows[good]), "month": pa.array(months[good]),
                    "shipment_id": table.column("shipment_id").filter(kept)}, schema=HASH_SCHEMA))
                table = table.append_column("_row", pa.array(rows)).append_column(
                    "_id_hash", pa.array(id_hash)).append_column("_row_hash", pa.array(row_hash))
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
        new_buckets.close()
    spills = {month: staging / f"spill-{month}.parquet" for month in writers}

    # ---- duplicates within this call and against the lake, a hash bucket at a time
    note("checking duplicates", 0, 1)
    checked = check_duplicates(new_buckets, store, manifest)
    dropped, late_reasons = checked.rejected()
    removals = {month: pa.chunked_array(ids, pa.string()).combine_chunks() for month, ids in checked.removals.items()}
    superseded = checked.superseded
    note("checking duplicates", 1, 1)

    # ---- quarantine of this call
    late_rows = late_reasons > 0
    late, late_reasons = dropped[late_rows], late_reasons[late_rows]
    for source in sources:
        mine = (late >= source.start) & (late < source.start + source.rows)
        if mine.any():
            local = late[mine] - source.start
            texts = np.array(_REASON_TEXTS, dtype=object)[late_reasons[mine]]
            quarantine_parts.append(_quarantine_rows(_rows_as_read(source, local), texts, source, local))
    quarantine = pa.concat_tables(quarantine_parts) if quarantine_parts else QUARANTINE_SCHEMA.empty_table()
    if quarantine.num_rows:
        order = {str(s.path): i for i, s in enumerate(sources)}
        file_order = pa.array([order[f] for f in quarantine.column("source_file").to_pylist()], pa.int32())
        sort = pc.sort_indices(pa.table({"f": file_order, "r": quarantine.column("source_row")}),
                               [("f", "ascending"), ("r", "ascending")])
        quarantine = quarantine.take(sort)
    fresh = _new_quarantine_rows(store, manifest, quarantine)

    # ---- counts
    by_reason = pd.Series(quarantine.column("reason").to_pylist(), dtype=object).value_counts().to_dict() \
        if quarantine.num_rows else {}
    no_ops = int(len(dropped) - len(late))
    accepted = total - invalid - len(dropped)
    counts = {"rows_read": total + sum(len(s.malformed) for s in sources), "accepted": accepted,
              "superseded": superseded, "duplicates": no_ops,
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
        return IngestReport(lake=_where(store), generation=manifest["generation"], committed=False, counts=counts,
                            files=files)

    # ---- write new partition versions, month by month, then commit
    generation = manifest["generation"] + 1
    stamp = _now()
    touched = sorted(checked.kept_months | set(removals))
    existing = {p["key"]: p for p in manifest["partitions"]}
    crash_after = os.environ.get(CRASH_ENV)
    crash_after = int(crash_after) if crash_after not in (None, "") else None
    written: dict[str, dict | None] = {}
    for done, month in enumerate(touched):
        if crash_after is not None and done >= crash_after:
            os._exit(1)  # test hook: die like a killed process, no clean-up
        key = _month_key(month)
        note("writing partitions", done, len(touched))
        written[key] = _write_partition(store, manifest, key, existing.get(key), spills.get(month), dropped,
                                        removals.get(month), stamp, staging)
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
        staged = staging / "quarantine.parquet"
        _write_parquet(fresh, staged)
        sha, facts = file_digest(staged), _file_facts(staged)
        relative = f"quarantine/q-{generation:06d}-{sha[:12]}.parquet"
        store.put(staged, relative)
        quarantine_entries.append({"path": relative, "rows": fresh.num_rows, "generation": generation,
                                   "sha256": sha, **facts})
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
    _commit(store, new_manifest, staging)
    return IngestReport(lake=_where(store), generation=generation, committed=True, counts=counts,
                        partitions_written=sorted(written), files=files)


def _where(store: LakeStore) -> Path | str:
    """The lake as a report names it: its folder, or its URL."""
    return store.folder if store.local else store.location
