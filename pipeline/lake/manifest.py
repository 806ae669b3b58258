"""The lake's manifest and its files on disk: generations, retention, locking, clean-up.

The manifest (``manifest.json``) is the single commit point. Files it supersedes are listed in
its ``retired`` entries and kept for :data:`KEEP_GENERATIONS` more commits and at least
:data:`RETAIN_SECONDS`; :func:`_clean_leftovers` removes the lake's own files no manifest keeps.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

MANIFESTS = "manifests"
"""In an object store: one immutable manifest per generation, ``manifests/g-<generation>.json``,
created with a conditional write (the commit); ``manifest.json`` is a copy of the latest, written
after it, where readers start (see :func:`pipeline.lake.reader.read_manifest`)."""
LAKE_FORMAT = "chipscreen-lake"
LAKE_VERSION = 1
MANIFEST = "manifest.json"
STAGING = ".staging"
LOCK = ".ingest.lock"
KEEP_GENERATIONS = 2
"""Partition and index files a commit supersedes stay on disk for this many further commits ..."""
RETAIN_SECONDS = 3600
"""... and at least this long after the commit that superseded them (see :class:`~pipeline.lake.Lake`)."""


class LakeError(RuntimeError):
    """A folder is not a ledger lake, or a lake is damaged or busy."""


class LakeWarning(UserWarning):
    """Something after a committed ingest did not complete (the commit stands)."""


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


class _StagedParquet:
    """A Parquet file written in parts to a temporary name, flushed to disk and renamed into place
    by :meth:`close` (one part gives the bytes of one ``pq.write_table``)."""

    def __init__(self, path: Path):
        self.path = path
        self.partial = path.with_name("." + path.name + ".partial")
        self.writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (same schema as the first part) as row groups."""
        if self.writer is None:
            dictionary = [f.name for f in table.schema if pa.types.is_dictionary(f.type)]
            self.writer = pq.ParquetWriter(self.partial, table.schema, use_dictionary=dictionary or False,
                                           compression="zstd")
        self.writer.write_table(table)

    def close(self) -> bool:
        """Put the file in place; False (and nothing written) when no part was given."""
        if self.writer is None:
            return False
        self.writer.close()
        with open(self.partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.partial, self.path)
        return True


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write to ``path`` through a temporary name, flushed to disk before the rename."""
    staged = _StagedParquet(path)
    staged.write(table)
    staged.close()


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
    named = _named(manifest)
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


def generation_file(generation: int) -> str:
    """The manifest of ``generation`` in a lake in an object store, relative to the lake."""
    return f"{MANIFESTS}/g-{generation:08d}.json"


def _named(manifest: dict) -> set[str]:
    """Every file ``manifest`` keeps: partitions, id indexes, quarantine files and retired files."""
    return {p["path"] for p in manifest["partitions"]} | {p["index"] for p in manifest["partitions"]} \
        | {q["path"] for q in manifest["quarantine"]} | {r["path"] for r in manifest.get("retired", [])}


def _clean_store_leftovers(store, manifest: dict) -> None:
    """In an object store: remove the lake's own files that ``manifest`` does not keep, once they
    are :data:`RETAIN_SECONDS` old (a younger one may be an upload of an ingest still running;
    with no lock in a store, age is what tells them apart)."""
    named = _named(manifest)
    now = dt.datetime.now(dt.timezone.utc)
    for folder, patterns in _OWN_FILES.items():
        for info in store.files(folder):
            relative = store.relative(info.path)
            name = relative.rsplit("/", 1)[-1]
            if relative in named or not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            if _old_enough(info, now) and _old_enough(store.filesystem.get_file_info(info.path), now):
                store.delete(relative)  # checked again just before: not re-uploaded since the listing


def _old_enough(info, now: dt.datetime) -> bool:
    """Whether a listed file was last written :data:`RETAIN_SECONDS` ago or more."""
    if info.type != pafs.FileType.File or info.mtime is None:
        return False
    written = info.mtime if info.mtime.tzinfo else info.mtime.replace(tzinfo=dt.timezone.utc)
    return (now - written).total_seconds() >= RETAIN_SECONDS


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
