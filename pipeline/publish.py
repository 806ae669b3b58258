"""Publishing a run's outputs all at once: a failed run leaves the previous results as they were.

A run writes into a fresh folder next to the destination (``.<name>.runs/<run id>/``). When the
run succeeds, the destination ``<name>`` becomes a symbolic link to that folder in one atomic
rename; readers see either the old run or the new one, never a mix. The previous run's folder
is removed after the switch, with those of runs that died (one writer per destination).
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def runs_folder(out: Path) -> Path:
    """Where the run folders of destination ``out`` live."""
    return out.parent / f".{out.name}.runs"


@contextmanager
def run_folder(out: str | Path) -> Iterator[Path]:
    """A fresh folder for a run's outputs, moved into place at ``out`` when the block succeeds.

    Parameters
    ----------
    out : path
        The destination folder (a symbolic link to the current run once published).

    Yields
    ------
    Path
        The folder to write into.

    Raises
    ------
    FileExistsError
        If ``out`` is a file.
    """
    out = Path(out).absolute()
    run = new_run(out)
    try:
        yield run
    except BaseException:
        shutil.rmtree(run, ignore_errors=True)
        raise
    publish(run, out)


def new_run(out: str | Path) -> Path:
    """Create a fresh run folder for destination ``out`` (publish it with :func:`publish`).

    Raises
    ------
    FileExistsError
        If ``out`` is a file.
    """
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    runs = runs_folder(out)
    runs.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=runs))
    run.chmod(0o755)
    return run


def publish(run: Path, out: Path) -> None:
    """Make ``out`` point at ``run`` atomically and remove the runs it no longer needs."""
    out = Path(out).absolute()
    runs = runs_folder(out)
    if out.exists() and not out.is_symlink():  # a folder written before runs were published this way
        os.rename(out, runs / f"replaced-{run.name}")
    link = runs / f"link-{run.name}"
    os.symlink(os.path.relpath(run, out.parent), link)
    os.replace(link, out)
    for stale in runs.iterdir():  # the previous run, and whatever runs that died left behind
        if stale == run:
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
