"""Publishing a run's outputs all at once: a failed run leaves the previous results as they were.

A run writes into a fresh folder next to the destination (``.<name>.runs/<run id>/``), created
before any work (so an unwritable destination fails first). When the run succeeds, the
destination ``<name>`` becomes a symbolic link to that folder in one atomic rename; readers see
either the old run or the new one, never a mix. The previous run's folder is removed after the
switch, with those of runs that died (one writer per destination).

The tool only ever replaces what it made: a destination that is absent, an empty folder, or a
link into its runs folder. A folder with files, a file or another link is refused
(:class:`PublishError`) before any work, and so is a destination that holds a path the run must
keep (its lake, its input files).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

RUN_NAME = re.compile(r"\d{8}T\d{6}Z-[A-Za-z0-9_]{1,32}")
"""Names of the run folders :func:`new_run` makes (a UTC stamp and ``tempfile``'s random part)."""
_MADE = re.compile(rf"(?:link-|replaced-)?{RUN_NAME.pattern}")
"""Names in a runs folder the tool made: run folders, links being switched, replaced folders."""


class PublishError(RuntimeError):
    """The destination cannot be published to (refused, or not writable)."""


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
    replace_folder : bool
        Accept a folder with files (only for destinations the tool owns, such as checkpoints).

    Raises
    ------
    PublishError
        With a message saying why and what to do instead.
    """
    out = absolute(out)
    if out.parent == out or not out.name:
        raise PublishError(f"--out {out}: cannot publish to a file-system root; give a new folder")
    real_out, real_runs = out.resolve(), runs_folder(out).resolve()
    for path in keep:
        if path is None:
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
    out = absolute(out)
    check_destination(out, keep, replace_folder=replace_folder)
    runs = runs_folder(out)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    try:
        runs.mkdir(parents=True, exist_ok=True)
        run = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=runs))
        run.chmod(0o755)
    except OSError as error:
        raise PublishError(f"cannot write to --out {out}: {error.strerror or error}") from None
    return run


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


def publish(run: Path, out: str | Path, keep: Iterable[str | Path] = (), *, replace_folder: bool = False) -> None:
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
    link = runs / f"link-{run.name}"
    try:
        os.symlink(os.path.relpath(run, out.parent), link)
        os.replace(link, out)  # the commit point; nothing after it raises
    except BaseException:
        if os.path.lexists(link):
            link.unlink()
        raise
    try:
        stale_entries = [entry for entry in runs.iterdir() if entry != run and _MADE.fullmatch(entry.name)]
    except OSError:
        return
    for stale in stale_entries:  # the previous run, and what runs that died left behind
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            try:
                stale.unlink(missing_ok=True)
            except OSError:
                pass


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
