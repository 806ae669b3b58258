"""Publishing a run's outputs all at once: a failed run leaves the previous results as they were.

A run writes into a fresh folder next to the destination (``.<name>.runs/<run id>/``), created
before any work (so an unwritable destination fails first). When the run succeeds, the
destination ``<name>`` becomes a symbolic link to that folder in one atomic rename; readers see
either the old run or the new one, never a mix. The previous run's folder is removed after the
switch, with empty folders of runs that died (one writer per destination).

The tool only ever replaces what it made: a destination that is absent, an empty folder, or a
link into its runs folder. A folder with files, a file or another link is refused
(:class:`PublishError`) before any work, and so is a destination that holds a path the run must
keep (its lake, its input files). Each published run folder records the files it holds
(:data:`MARKER`); clean-up removes a previous run folder only when it holds nothing else, and
otherwise keeps it with a :class:`PublishWarning` naming it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator
import warnings

from pipeline.lake.store import is_url

RUN_NAME = re.compile(r"\d{8}T\d{6}Z-[A-Za-z0-9_]{1,32}")
"""Names of the run folders :func:`new_run` makes (a UTC stamp and ``tempfile``'s random part)."""
_MADE = re.compile(rf"(?:link-|replaced-)?{RUN_NAME.pattern}")
"""Names in a runs folder the tool made: run folders, links being switched, replaced folders."""


MARKER = ".chipscreen-run.json"
"""File written into a run folder as it is published: the files the tool wrote there, with their
sizes and modification times. Only a folder holding these files and nothing else is removed."""


class PublishError(RuntimeError):
    """The destination cannot be published to (refused, or not writable)."""


class PublishWarning(UserWarning):
    """A previous run folder was kept: it holds files the tool did not write."""


def absolute(path: str | Path) -> Path:
    """``path`` made absolute and normalized, without following links."""
    return Path(os.path.abspath(os.fspath(path)))


def runs_folder(out: str | Path) -> Path:
    """Where the run folders of destination ``out`` live."""
    out = absolute(out)
    return out.parent / f".{out.name}.runs"


def is_published(out: str | Path) -> bool:
    """Whether ``out`` is a link the tool made to one of its run folders."""
    out = absolute(out)
    if not out.is_symlink():
        return False
    target = absolute(out.parent / os.readlink(out))
    return target.parent == runs_folder(out) and RUN_NAME.fullmatch(target.name) is not None


def current_run(out: str | Path) -> str | None:
    """Name of the run folder ``out`` publishes now (None when it publishes none)."""
    out = absolute(out)
    return Path(os.readlink(out)).name if is_published(out) and out.is_dir() else None


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_destination(out: str | Path, keep: Iterable[str | Path] = (), *, replace_folder: bool = False) -> None:
    """Refuse a destination the tool may not replace.

    Parameters
    ----------
    out : path
        The destination (``--out``).
    keep : paths
        Paths the run must never remove (a lake, input files): ``out`` may not be, hold or publish them.
        A URL (a lake in an object store) cannot overlap a folder and is passed over.
    replace_folder : bool
        Accept a folder with files (only for destinations the tool owns, such as checkpoints).

    Raises
    ------
    PublishError
        With a message saying why and what to do instead.
    """
    if not os.fspath(out).strip():
        raise PublishError(f"--out {os.fspath(out)!r}: an empty path is no destination; give a new folder")
    out = absolute(out)
    if out.parent == out or not out.name:
        raise PublishError(f"--out {out}: cannot publish to a file-system root; give a new folder")
    if _within(absolute(os.getcwd()), out):
        raise PublishError(f"--out {out} is or holds the current folder (an empty --out names it too); "
                           "give a new folder")
    real_out, real_runs = out.resolve(), runs_folder(out).resolve()
    for path in keep:
        if path is None or is_url(path):
            continue
        real = absolute(path).resolve()
        if _within(real, real_out) or _within(real, real_runs) or _within(real, out) or _within(real_out, real):
            raise PublishError(f"--out {out} overlaps {path} (one is or holds the other), which the run must "
                               "leave alone; give an --out folder outside it")
    published = is_published(out)
    if out.is_symlink() and not published:
        raise PublishError(f"--out {out} is a symbolic link chipscreen did not make; give a new --out folder")
    if not published and os.path.lexists(out):
        if not out.is_dir():
            raise PublishError(f"--out {out} exists and is not a folder; give a new --out folder")
        if not replace_folder and any(os.scandir(out)):
            raise PublishError(f"--out {out} is a folder with files that chipscreen did not publish; it is left "
                               "alone: give a new (or empty) --out folder")


def is_lake(folder: str | Path) -> bool:
    """Whether ``folder`` holds a ledger lake's manifest (or a manifest file too damaged to tell)."""
    from pipeline.lake import LAKE_FORMAT, MANIFEST

    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("format") == LAKE_FORMAT
    except (OSError, ValueError, AttributeError):
        return True


def check_output_file(path: str | Path, inputs: Iterable[str | Path | None] = (),
                      suffixes: Iterable[str] | None = None, what: str = "output") -> None:
    """Refuse an output file that would overwrite what the command must leave alone.

    Parameters
    ----------
    path : path
        The file to write (replaced atomically when it exists).
    inputs : paths
        The command's input files: ``path`` may not be one of them.
    suffixes : str, optional
        The accepted extensions (lower case, with the dot); None: any.
    what : str
        How messages name ``path`` (``output``, ``--out``).

    Raises
    ------
    PublishError
        An empty path, an existing folder, an input file, a path inside a ledger lake (a folder
        holding a lake manifest) or inside a published run, or an unknown extension.
    """
    if not os.fspath(path).strip():
        raise PublishError(f"{what}: an empty path; give a file name")
    path = absolute(path)
    if path.is_dir():
        raise PublishError(f"{what} {path} is a folder; give a file name")
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if not path.name.lower().endswith(suffixes):
            raise PublishError(f"{what} {path}: unknown extension; give a file ending in {', '.join(suffixes)}")
    real = Path(os.path.realpath(path))
    for source in inputs:
        if source is None:
            continue
        same = real == Path(os.path.realpath(source))
        try:
            same = same or (path.exists() and os.path.samefile(path, source))
        except OSError:
            pass
        if same:
            raise PublishError(f"{what} {path} is the input {source}; give another file name")
    for folder in (path.parent, *path.parent.parents, real.parent, *real.parent.parents):
        if is_lake(folder):
            raise PublishError(f"{what} {path} is inside the ledger lake {folder}; write it outside the lake")
        if (folder / MARKER).is_file() or folder.name.endswith(".runs") and folder.name.startswith("."):
            raise PublishError(f"{what} {path} is inside the published run {folder}; write it outside")


def new_run(out: str | Path, keep: Iterable[str | Path] = (), *, replace_folder: bool = False) -> Path:
    """Check destination ``out`` and create a fresh run folder for it (publish it with :func:`publish`).

    Parameters
    ----------
    out : path
    keep : paths
        See :func:`check_destination`.
    replace_folder : bool
        See :func:`check_destination`.

    Returns
    -------
    Path
        The empty run folder.

    Raises
    ------
    PublishError
        If ``out`` is refused or its run folder cannot be created.
    """
    check_destination(out, keep, replace_folder=replace_folder)
    out = absolute(out)
    runs = runs_folder(out)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    try:
        runs.mkdir(parents=True, exist_ok=True)
        run = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=runs))
        run.chmod(0o755)
    except OSError as error:
        raise PublishError(f"cannot write to --out {out}: {error.strerror or error}") from None
    return run


def link_or_copy(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` as a hard link (no bytes copied), or a copy across file systems.

    The tool never modifies a file it has written, so a file linked into several run or
    checkpoint folders stays what each of them recorded.
    """
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def discard(run: Path) -> None:
    """Remove an unpublished run folder (and its runs folder when nothing else is left in it)."""
    run = absolute(run)
    if not RUN_NAME.fullmatch(run.name):
        return
    shutil.rmtree(run, ignore_errors=True)
    try:
        run.parent.rmdir()  # only when empty: the folder this run created
    except OSError:
        pass


def destination_of(run: Path) -> Path:
    """The destination a run folder made by :func:`new_run` is published to."""
    run = absolute(run)
    return run.parent.parent / run.parent.name[1:-len(".runs")]


def publish(run: Path, out: str | Path, keep: Iterable[str | Path] = (), *,
            replace_folder: bool = False) -> list[str]:
    """Make ``out`` point at ``run`` atomically and remove the runs it no longer needs.

    Parameters
    ----------
    run : Path
        A run folder made by :func:`new_run` for ``out``.
    out : path
    keep : paths
        See :func:`check_destination` (checked again: the destination may have changed meanwhile).
    replace_folder : bool
        See :func:`check_destination`.

    Returns
    -------
    list of str
        Warnings naming previous run folders kept (:func:`clean_up`).

    Raises
    ------
    PublishError
        If ``out`` is refused now; ``run`` is kept for the caller to discard.
    """
    out, run = absolute(out), absolute(run)
    runs = runs_folder(out)
    check_destination(out, keep, replace_folder=replace_folder)
    if os.path.lexists(out) and not out.is_symlink():  # an empty folder, or a folder the tool owns
        if replace_folder:
            os.rename(out, runs / f"replaced-{run.name}")
        else:
            out.rmdir()  # empty: checked above
    _write_marker(run)
    link = runs / f"link-{run.name}"
    try:
        os.symlink(os.path.relpath(run, out.parent), link)
        os.replace(link, out)  # the commit point; nothing after it raises
    except BaseException:
        if os.path.lexists(link):
            link.unlink()
        raise
    return clean_up(runs, keep_run=run)


def _listing(folder: Path) -> dict[str, list[int]] | None:
    """Every entry under ``folder`` (relative path → ``[size, mtime_ns]``; folders ``[-1, 0]``).

    None when a link or something other than a file or folder is found.
    """
    entries: dict[str, list[int]] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            info = path.lstat()
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                return None
            if name in dirs:
                entries[relative] = [-1, 0]
            elif path.is_file():
                entries[relative] = [info.st_size, info.st_mtime_ns]
            else:
                return None
    return entries


def _write_marker(run: Path) -> None:
    """Record in ``run`` the files it holds (the tool's outputs), as :data:`MARKER`."""
    listing = _listing(run) or {}
    listing.pop(MARKER, None)
    partial = run / (MARKER + ".partial")
    partial.write_text(json.dumps({"files": listing}, sort_keys=True) + "\n")
    os.replace(partial, run / MARKER)


def _tool_written(folder: Path) -> list[str] | None:
    """The entries of a published run folder, deepest first, when all are the tool's; else None."""
    try:
        recorded = json.loads((folder / MARKER).read_text())["files"]
        found = _listing(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if found is None or not isinstance(recorded, dict):
        return None
    found.pop(MARKER, None)
    if any(recorded.get(name) != facts for name, facts in found.items()):
        return None
    return sorted(found, key=lambda name: (-name.count("/"), name))


def run_is_intact(out: str | Path) -> bool:
    """Whether the run ``out`` publishes holds exactly the files it was published with (none missing,
    changed or added since)."""
    if current_run(out) is None:
        return False
    folder = absolute(out).resolve()
    try:
        recorded = json.loads((folder / MARKER).read_text())["files"]
        found = _listing(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if found is None:
        return False
    found.pop(MARKER, None)
    return found == recorded


def _remove_run(folder: Path) -> bool:
    """Remove a previous run folder when it holds only what the tool wrote; True when removed."""
    if not any(folder.iterdir()):
        folder.rmdir()  # a run that died before writing anything
        return True
    entries = _tool_written(folder)
    if entries is None:
        return False
    for name in entries:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink()
    (folder / MARKER).unlink()
    folder.rmdir()
    return True


def clean_up(runs: Path, keep_run: Path | None = None) -> list[str]:
    """Remove what the tool left in a runs folder, except ``keep_run`` (the published run).

    Links being switched are removed; previous run folders only when they hold nothing but the
    files their :data:`MARKER` lists (or nothing at all). Each folder kept is named in a
    :class:`PublishWarning`.

    Returns
    -------
    list of str
        The warnings (one per folder kept).
    """
    try:
        stale_entries = [entry for entry in runs.iterdir() if entry != keep_run and _MADE.fullmatch(entry.name)]
    except OSError:
        return []
    kept = []
    for stale in sorted(stale_entries):  # the previous run, and what runs that died left behind
        if stale.is_symlink() or not stale.is_dir():
            if stale.is_symlink():
                try:
                    stale.unlink(missing_ok=True)
                except OSError:
                    pass
            continue
        try:
            removed = _remove_run(stale)
        except OSError:
            removed = False
        if not removed:
            kept.append(f"kept {stale}: it holds files chipscreen did not write (or changed since); move "
                        "them away, then remove the folder")
    for message in kept:
        warnings.warn(message, PublishWarning, stacklevel=3)
    return kept


@contextmanager
def run_folder(out: str | Path, keep: Iterable[str | Path] = (), *, replace_folder: bool = False) -> Iterator[Path]:
    """A fresh folder for a run's outputs, published at ``out`` when the block succeeds.

    Parameters
    ----------
    out : path
        The destination (a symbolic link to the current run once published).
    keep : paths
        See :func:`check_destination`.
    replace_folder : bool
        See :func:`check_destination`.

    Yields
    ------
    Path
        The folder to write into.

    Raises
    ------
    PublishError
        If ``out`` is refused or not writable (before the block runs).
    """
    keep = list(keep)
    run = new_run(out, keep, replace_folder=replace_folder)
    try:
        yield run
        publish(run, out, keep, replace_folder=replace_folder)
    except BaseException:
        discard(run)
        raise
