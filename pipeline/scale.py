"""Screening a ledger cut into time-ordered pieces, in one process or on a Dask cluster (DESIGN §6).

The stable API over :mod:`pipeline.run.scan`: each call is a run of its own whose decisions go,
piece by piece, to ``decisions.parquet/part-NNNNN.parquet`` under ``out_dir`` (written straight
there, not published), in screening order, so the folder reads as one table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from kernels.backend import Backend
from pipeline.carry import Carry
from pipeline.policy import Policy
from pipeline.reference import CSL_PATH
from pipeline.results import PieceOutcome, ScanResult
from pipeline.run import scan as _scan
from pipeline.run.run import Run
from pipeline.run.sink import DECISIONS as DECISIONS_DIR
from pipeline.run.source import Piece, TablePiece, split_rows

__all__ = ["DECISIONS_DIR", "Piece", "PieceOutcome", "ScanResult", "TablePiece", "scan", "scan_dask", "split_rows"]


def _run(out_dir: str | Path | None, csl_path: str | Path, backend: str | Backend | None) -> Run:
    return Run(backend or "numpy", csl_path, Path(out_dir) if out_dir is not None else None)


def scan(pieces: Sequence[Piece], policy: Policy, out_dir: str | Path | None = None, *, carry: Carry | None = None,
         csl_path: str | Path = CSL_PATH, progress: Callable[[int, int], None] | None = None,
         backend: str | Backend | None = None) -> ScanResult:
    """Screen pieces one after another in this process, each from the totals the last one ended with.

    Parameters
    ----------
    pieces : sequence of Piece
        Consecutive slices of the screening order.
    policy : Policy
    out_dir : path, optional
        Where ``decisions.parquet/`` is written.
    carry : Carry, optional
        Totals of the rows before the first piece (a checkpoint).
    csl_path : path
    progress : callable, optional
        Called with (pieces done, pieces) after each piece.
    backend : str or Backend, optional
        Where the accumulators run (:func:`kernels.backend.select_backend`); NumPy when omitted.

    Returns
    -------
    ScanResult
    """
    run = _run(out_dir, csl_path, backend)
    return _scan.scan(run, pieces, policy, carry=carry, parts=run.sink.parts() if run.sink else None,
                      progress=progress)


def scan_dask(pieces: Sequence[Piece], policy: Policy, client, out_dir: str | Path | None = None, *,
              carry: Carry | None = None, csl_path: str | Path = CSL_PATH,
              progress: Callable[[str], None] | None = None, backend: str | Backend = "numpy") -> ScanResult:
    """Screen pieces on a Dask cluster in two passes per stage, without a shuffle.

    Parameters
    ----------
    pieces : sequence of Piece
        Consecutive slices of the screening order; each must be readable on any worker.
    policy : Policy
    client : distributed.Client
    out_dir : path, optional
        Where ``decisions.parquet/`` is written (a folder all workers can write to).
    carry : Carry, optional
        Totals of the rows before the first piece.
    csl_path : path
    progress : callable, optional
        Called with the name of each pass.
    backend : str or Backend
        Resolved here; each worker selects the resolved backend by name.

    Returns
    -------
    ScanResult
        The same as :func:`scan` on the same pieces.
    """
    run = _run(out_dir, csl_path, backend)
    return _scan.scan_dask(run, pieces, policy, client, carry=carry,
                           parts=run.sink.parts() if run.sink else None, progress=progress)
