"""Escaping and display of report values: HTML escaping, number formatting, missing values."""
from __future__ import annotations

import html
import math
import numbers
from typing import Any

import pandas as pd


def _esc(value: Any) -> str:
    """Escape any value as HTML text or attribute content.

    Parameters
    ----------
    value : Any
        Converted with ``str`` (``None`` becomes the empty string).

    Returns
    -------
    str
        ``html.escape(str(value), quote=True)``.
    """
    return html.escape("" if value is None else str(value), quote=True)


def _is_missing(value: Any) -> bool:
    """Tell whether a value is ``None``, NaN, ``pd.NA`` or ``NaT``."""
    if value is None:
        return True
    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return isinstance(missing, bool) and missing


def _is_number(value: Any) -> bool:
    """Tell whether a value is a real number (bools excluded, numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def format_number(value: Any) -> str:
    """Format a number for display: thousands separators, no float noise.

    Parameters
    ----------
    value : numbers.Real
        An int or float (numpy scalars too).

    Returns
    -------
    str
        ``790,000,000`` for integers and integral floats, six significant digits for other
        floats (``0.93``, ``12,345.7``), ``""`` for NaN.
    """
    if _is_missing(value):
        return ""
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    number = float(value)
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if number.is_integer() and abs(number) < 1e18:
        return f"{int(number):,}"
    if abs(number) >= 1e6:
        return f"{number:,.0f}"
    return f"{number:,.6g}"


def human_number(value: float, digits: int = 3) -> str:
    """Short human-readable form of a (large) number: ``790M``, ``1.58B``, ``26.9M``, ``12k``.

    Parameters
    ----------
    value : float
        The number.
    digits : int, optional
        Significant digits of the mantissa (default 3).

    Returns
    -------
    str
        The number scaled by k / M / B / T with trailing zeros dropped.
    """
    number = float(value)
    if number == 0 or not math.isfinite(number):
        return "0" if number == 0 else str(number)
    scales = ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T"))
    level = max(i for i, (scale, _) in enumerate(scales) if abs(number) >= scale or i == 0)
    mantissa = float(f"{number / scales[level][0]:.{digits}g}")
    if abs(mantissa) >= 1000 and level + 1 < len(scales):  # 999.95M rounds to 1000M: write 1B
        level += 1
        mantissa = float(f"{number / scales[level][0]:.{digits}g}")
    text = f"{mantissa:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text}{scales[level][1]}"


def _display(value: Any) -> str:
    """Text shown for one headline value or table cell."""
    if _is_missing(value):
        return ""
    if _is_number(value):
        return format_number(value)
    return str(value)
