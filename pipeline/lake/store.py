"""Where a lake's files live: a local folder, or a prefix in an object store (``s3://``, ``gs://``, ``abfs://``).

A :class:`LakeStore` names the lake by a location that means the same on every machine (a local
path made absolute, or a URL) and reads its files through a pyarrow file system: Arrow's own
S3 client for ``s3://`` (credentials and endpoint from the usual ``AWS_*`` environment
variables: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL`` for an S3-compatible service), fsspec for ``gs://`` (gcsfs) and ``abfs://``
(adlfs), optional installs. A store pickles as its location: a Dask worker opens its own
client, with its own credentials, and reads partitions straight from the store.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from pipeline.lake.manifest import LakeError

STATE_ENV = "CHIPSCREEN_STATE"
"""Where this machine keeps what belongs beside a lake in an object store (its checkpoints, the
screening lists a nightly run refreshed): one folder per lake location under it (default: the
user's cache folder, ``~/.cache/chipscreen/lakes``). A lake on disk keeps them in its own folder."""
SCHEMES = {"s3": None, "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "az": "adlfs"}
"""URL schemes a lake may live under, with the fsspec package each needs (None: built into pyarrow)."""


def is_url(location: str | Path) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and "://" in location


def lake_location(location: str | Path) -> str:
    """The lake's location as every process reads it: an object-store URL without a trailing
    slash, or a local path made absolute (workers started in other folders read the same files).

    Raises
    ------
    LakeError
        An unknown scheme, or a URL without a bucket.
    """
    if not is_url(location):
        return str(Path(location).absolute())
    scheme, rest = str(location).split("://", 1)
    if scheme.lower() not in SCHEMES:
        raise LakeError(f"{location}: unknown storage scheme {scheme}:// (give a local path or one of "
                        + ", ".join(f"{s}://" for s in SCHEMES) + ")")
    rest = rest.rstrip("/")
    if not rest or rest.startswith("/"):
        raise LakeError(f"{location}: give a bucket (and a prefix): {scheme}://BUCKET/PREFIX")
    return f"{scheme.lower()}://{rest}"


@dataclass(frozen=True)
class LakeStore:
    """The files of one lake, read and written relative to its root.

    Attributes
    ----------
    location : str
        See :func:`lake_location`.
    """

    location: str

    @classmethod
    def at(cls, location: str | Path) -> "LakeStore":
        """The store of the lake at ``location`` (see :func:`lake_location`)."""
        return cls(lake_location(location))

    @property
    def local(self) -> bool:
        """Whether the lake is a folder on this machine."""
        return not is_url(self.location)

    @property
    def folder(self) -> Path:
        """The lake's folder (local lakes only)."""
        if not self.local:
            raise LakeError(f"{self.location}: a lake in an object store has no local folder")
        return Path(self.location)

    @property
    def beside(self) -> Path:
        """The local folder of what is kept beside the lake (see :data:`STATE_ENV`)."""
        if self.local:
            return self.folder
        base = os.environ.get(STATE_ENV) or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "chipscreen", "lakes")
        return Path(base).absolute() / hashlib.sha256(self.location.encode()).hexdigest()[:16]

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow file system the files are read through (made once per process)."""
        return _filesystem(self.location)[0]

    def path(self, relative: str) -> str:
        """The file system path of ``relative`` (a ``/``-separated path under the lake)."""
        root = _filesystem(self.location)[1]
        return f"{root}/{relative}" if relative else root

    def describe(self, relative: str = "") -> str:
        """``relative`` as a user reads it: a local path or a URL."""
        return f"{self.location}/{relative}" if relative else self.location

    def open(self, relative: str) -> pa.NativeFile:
        """A random-access file to read.

        Raises
        ------
        FileNotFoundError
            No such file.
        """
        return self.filesystem.open_input_file(self.path(relative))

    def read_bytes(self, relative: str) -> bytes:
        """The whole content of a (small) file.

        Raises
        ------
        FileNotFoundError
            No such file.
        """
        with self.open(relative) as handle:
            return handle.read()

    def exists(self, relative: str) -> bool:
        """Whether a file is there."""
        return self.filesystem.get_file_info(self.path(relative)).type == pafs.FileType.File

    def put(self, staged: Path, relative: str) -> None:
        """Move a finished local file into the lake as ``relative`` (the staged file is gone after).

        On disk, a rename within the lake's file system (the staging folder is inside the lake);
        in a store, one upload: an object appears whole or not at all.
        """
        if self.local:
            target = self.folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            return
        with self._writing(relative):
            with open(staged, "rb") as source, self.filesystem.open_output_stream(self.path(relative)) as target:
                shutil.copyfileobj(source, target, 8 << 20)
        Path(staged).unlink()

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Write (or overwrite) a small object in a store (a lake on disk commits through
        :func:`pipeline.lake.intake._commit` instead).

        Raises
        ------
        LakeError
            The store refused the write or could not be reached.
        """
        with self._writing(relative):
            with self.filesystem.open_output_stream(self.path(relative)) as target:
                target.write(data)

    @contextmanager
    def _writing(self, relative: str):
        """Report a failed write to the store (no bucket, no permission, no network) as a LakeError."""
        try:
            yield
        except (OSError, pa.ArrowException) as error:
            raise LakeError(f"{self.describe(relative)}: cannot write to the store: {error}") from None

    def check_writable(self) -> None:
        """Before an ingest does any work: the bucket exists and the store honours conditional writes.

        A service that ignored ``If-None-Match`` would let two ingests both "commit" the same
        generation (the second overwriting the first): such a store is refused. The check writes
        and removes one small object, once per process and location.

        Raises
        ------
        LakeError
        """
        if self.local or self.location in _CHECKED:
            return
        bucket = self.path("").split("/", 1)[0]
        try:
            found = self.filesystem.get_file_info(bucket).type
        except (OSError, pa.ArrowException) as error:
            raise LakeError(f"{self.location}: cannot reach the store: {error}") from None
        if found != pafs.FileType.Directory:
            raise LakeError(f"{self.location}: no bucket {bucket!r} (create it first)")
        probe = f"{MANIFESTS_PROBE}-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            if not self.create(probe, b"probe") or self.create(probe, b"again"):
                raise LakeError(f"{self.location}: the store does not honour conditional writes (If-None-Match); "
                                "two ingests could overwrite each other's commit, so ingest refuses it")
        finally:
            try:
                self.delete(probe)
            except LakeError:
                pass
        _CHECKED.add(self.location)

    def create(self, relative: str, data: bytes) -> bool:
        """Write ``data`` as ``relative`` only if no such object exists, in one conditional request.

        Returns False when the object exists already (another writer was first).

        Raises
        ------
        LakeError
            The store offers no conditional write through fsspec.
        """
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(self.location)
            fs.pipe_file(f"{root.rstrip('/')}/{relative}", data, mode="create")
        except FileExistsError:
            return False
        except OSError as error:
            if error.errno == errno.EBUSY:  # 409 ConditionalRequestConflict: a concurrent conditional write
                return False
            raise LakeError(f"{self.describe(relative)}: cannot write to the store: {error}") from None
        except (TypeError, NotImplementedError, ValueError, ImportError) as error:
            raise LakeError(f"{self.location}: this store offers no conditional write to commit with ({error})") \
                from None
        return True

    def files(self, folder: str) -> list[pafs.FileInfo]:
        """The files under ``folder`` of the lake (recursively), with sizes and modification times."""
        selector = pafs.FileSelector(self.path(folder), recursive=True, allow_not_found=True)
        return [info for info in self.filesystem.get_file_info(selector) if info.type == pafs.FileType.File]

    def relative(self, path: str) -> str:
        """A file system path of the lake as a path relative to its root."""
        return path[len(self.path("")) + 1:]

    def delete(self, relative: str) -> None:
        """Remove one file (absent already: nothing to do).

        Raises
        ------
        LakeError
            The store refused (no permission, no network).
        """
        try:
            self.filesystem.delete_file(self.path(relative))
        except FileNotFoundError:
            pass
        except (OSError, pa.ArrowException) as error:
            raise LakeError(f"{self.describe(relative)}: cannot remove it from the store: {error}") from None

    def __str__(self) -> str:
        return self.location


_FILESYSTEMS: dict[str, tuple[pafs.FileSystem, str]] = {}
_CHECKED: set[str] = set()
"""Locations whose conditional writes :meth:`LakeStore.check_writable` checked in this process."""
MANIFESTS_PROBE = "manifests/.write-check"
"""Name stem of the object the conditional-write check creates and removes."""


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """The file system of ``location`` and the lake's root in it (cached per process and location)."""
    if location in _FILESYSTEMS:
        return _FILESYSTEMS[location]
    if not is_url(location):
        made = (pafs.LocalFileSystem(), location)
    else:
        scheme = location.split("://", 1)[0]
        package = SCHEMES[scheme]
        try:
            if package is None:
                made = pafs.FileSystem.from_uri(location)
            else:
                import fsspec

                made = _fsspec(fsspec, location, package)
        except (pa.ArrowException, OSError, ValueError) as error:
            raise LakeError(f"{location}: cannot open the object store: {error}") from None
    _FILESYSTEMS[location] = made
    return made


def _fsspec(fsspec, location: str, package: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow file system over an fsspec implementation (``gs://``, ``abfs://``)."""
    try:
        fs, root = fsspec.core.url_to_fs(location)
    except ImportError:
        raise LakeError(f"{location}: this storage needs the {package} package: pip install {package}") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), root.rstrip("/")
