"""Verifying every byte of a ledger lake against its manifest (``chipscreen lake verify``).

Reads (:meth:`pipeline.lake.Lake.read`) check only a file's size, Parquet footer and row count;
:func:`verify` reads every byte of every partition, id index and quarantine file the manifest
names and compares its SHA-256 with the one recorded at commit.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.lake.reader import Lake
from pipeline.lake.store import LakeStore


@dataclass
class Verification:
    """What :func:`verify` found.

    Attributes
    ----------
    lake : Path or str
        The lake's folder, or its URL.
    generation : int
        The manifest generation checked.
    verified : list of str
        Files (relative to the lake) whose bytes match the manifest.
    bad : list of tuple
        ``(file, problem)`` for each file missing or not matching.
    unchecked : list of str
        Files the manifest records no SHA-256 for (id indexes of lakes written before it was
        recorded): checked as Parquet with the recorded row count, counted in ``verified``.
    """

    lake: Path | str
    generation: int
    verified: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file is bad."""
        return not self.bad


def _expected(manifest: dict) -> list[tuple[str, int, str | None, int | None]]:
    """``(path, rows, sha256, bytes)`` of every file the manifest names, in manifest order."""
    files = []
    for part in manifest["partitions"]:
        files.append((part["path"], part["rows"], part["sha256"], part.get("bytes")))
        files.append((part["index"], part["rows"], part.get("index_sha256"), part.get("index_bytes")))
    for entry in manifest["quarantine"]:
        files.append((entry["path"], entry["rows"], entry.get("sha256"), entry.get("bytes")))
    return files


def _problem(store: LakeStore, relative: str, rows: int, sha256: str | None, size: int | None) -> str | None:
    """Why one file does not match its manifest entry, or None."""
    try:
        source = store.open(relative)
    except FileNotFoundError:
        return "missing"
    except (OSError, pa.ArrowException) as error:
        return f"cannot read: {getattr(error, 'strerror', None) or error}"
    with source:
        try:
            actual = source.size()
            if size is not None and actual != size:
                return f"{actual} bytes, the manifest records {size}"
            if sha256 is not None:
                digest = hashlib.sha256()
                try:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        digest.update(block)
                except (OSError, pa.ArrowException) as error:
                    return f"cannot read: {getattr(error, 'strerror', None) or error}"
                return None if digest.hexdigest() == sha256 else "content differs from the manifest (SHA-256)"
            found = pq.ParquetFile(source).metadata.num_rows
        except (pa.ArrowException, OSError, ValueError) as error:
            return f"not readable as Parquet ({error})"
    return None if found == rows else f"{found} rows, the manifest records {rows}"


def verify(lake_dir: str | Path) -> Verification:
    """Check every partition, id index and quarantine file of a lake against its manifest.

    Parameters
    ----------
    lake_dir : path

    Returns
    -------
    Verification

    Raises
    ------
    pipeline.lake.LakeError
        ``lake_dir`` is not a lake.
    """
    lake = Lake.open(lake_dir)
    result = Verification(lake.path, lake.generation)
    for relative, rows, sha256, size in _expected(lake._manifest):
        problem = _problem(lake.store, relative, rows, sha256, size)
        if problem is not None:
            result.bad.append((relative, problem))
            continue
        result.verified.append(relative)
        if sha256 is None:
            result.unchecked.append(relative)
    return result
