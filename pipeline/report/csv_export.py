"""Spreadsheet-safe CSV exports (OWASP "CSV injection"): a formula-like text cell gets a leading ``'``."""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.report.atomic import _atomic_open
from pipeline.report.formatting import _is_missing, _is_number

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters that make a spreadsheet treat a cell as a formula (OWASP)."""


def spreadsheet_safe(value: Any) -> str:
    """Text of one CSV cell that a spreadsheet cannot run as a formula.

    Parameters
    ----------
    value : Any
        The cell value.

    Returns
    -------
    str
        ``""`` for ``None``/NaN/NA; numbers as ``str(value)`` unchanged (``-5`` is a number,
        not a formula); any other value as text, with a leading ``'`` when it starts with
        ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (OWASP CSV injection guidance).
    """
    if _is_missing(value):
        return ""
    if _is_number(value):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a DataFrame as UTF-8 CSV (``csv.QUOTE_MINIMAL``), every cell through :func:`spreadsheet_safe`.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data; the index is not written, the column names are (made safe too).
    path : str or os.PathLike
        Destination file, written atomically; missing parent folders are created.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    safe = pd.DataFrame({spreadsheet_safe(name): _safe_column(frame[name]) for name in frame.columns})
    with _atomic_open(path, newline="") as handle:
        safe.to_csv(handle, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    return path


def _safe_column(column: pd.Series) -> pd.Series:
    """:func:`spreadsheet_safe` over a whole column at once; numbers and dates pass unchanged."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return column
    text = column.astype("string")
    formula = text.str.startswith(FORMULA_PREFIXES).fillna(False)
    return ("'" + text).where(formula, text).fillna("")
