"""Per-key running totals by sorting: the data-parallel form that runs on GPUs.

The CPU kernel (:mod:`kernels.running_totals`) walks the rows once with one accumulator per
key. A GPU wants whole-array steps instead; this module composes them from array-namespace
calls (``xp`` = :mod:`numpy` or :mod:`cupy`), so the same code runs, and is tested, on both:

1. keep the candidate rows (key ``>= 0``) and sort them stably by key (radix sort on a GPU):
   rows of one key stay in row order;
2. one inclusive ``cumsum`` over the sorted amounts, and per-key segment offsets by
   ``searchsorted``; a row's running total is its cumsum minus the cumsum before its segment,
   plus its key's carry-in;
3. scatter the totals back to the row positions (``-1`` elsewhere).

Exactness. The global cumsum may wrap around int64, but a difference of two wrapped sums is the
exact segment sum whenever that sum fits in int64 (two's complement arithmetic is modular). So
the only question is whether some key's true total, carry-in included, exceeds the int64 range;
amounts are non-negative, so totals grow along a segment and checking each key's last total is
enough. That check never trusts the wrapped cumsum: a cheap bound (largest amount times the
longest segment) clears it in the common case, else each amount is split into 32-bit halves
whose cumsums cannot wrap (fewer than 2**31 rows per call), and the per-key totals are
compared exactly. On overflow the error names the first row, in row order, at which a running
total overflows or a candidate amount is negative: the row the CPU loop stops at.
"""
from __future__ import annotations

import numpy as np

from kernels import INT64_MAX, TotalsOverflowError, start_totals

MAX_ROWS_PER_CALL = 1 << 30
"""Rows per composed call: under 2**31, so the cumsums of 32-bit halves cannot wrap."""

_LOW = (1 << 32) - 1


def stable_argsort(values, xp):
    """Indices that sort ``values``, ties kept in row order.

    ``kind="stable"`` is stated on every namespace: the running totals depend on rows of one key
    staying in row order, and CuPy accepts the same argument (its only sort is stable).
    """
    return xp.argsort(values, kind="stable")


def _sort_dtype(n_keys: int, xp):
    """The narrowest key dtype for the radix sort: int32 needs half the passes of int64."""
    return xp.int32 if n_keys < 2**31 else xp.int64


def _exceeds(high, low, limit, xp):
    """Exact ``high * 2**32 + low > limit`` for ``0 <= high, low < 2**63`` and ``limit >= 0``."""
    high = high + (low >> 32)
    low = low & _LOW
    limit_high, limit_low = limit >> 32, limit & _LOW
    return (high > limit_high) | ((high == limit_high) & (low > limit_low))


def _first_bad_row(order, sorted_keys, sorted_amounts, offsets, limit, candidates_amounts, candidates, xp) -> int:
    """Row (in input order) of the first overflow or negative candidate amount; -1 if none.

    ``limit[k]`` is how much key ``k`` may add to its carry before passing int64.
    """
    bad = []
    negative = xp.flatnonzero(candidates_amounts < 0)
    if negative.size:
        bad.append(int(candidates[negative[0]]))  # candidates are in row order
    # Exact sums through 32-bit halves: each cumsum stays below 2**31 * 2**32 = 2**63.
    amounts = xp.maximum(sorted_amounts, 0)  # rows after a negative one are never reported
    zero = xp.zeros(1, dtype=xp.int64)
    high = xp.concatenate([zero, xp.cumsum(amounts >> 32)])
    low = xp.concatenate([zero, xp.cumsum(amounts & _LOW)])
    starts = offsets[:-1][sorted_keys]
    position = xp.arange(1, len(sorted_keys) + 1)
    over = _exceeds(high[position] - high[starts], low[position] - low[starts], limit[sorted_keys], xp)
    rows = order[over]
    if rows.size:
        bad.append(int(rows.min()))
    return min(bad) if bad else -1


def running_totals_sorted(keys, amounts, n_keys: int, *, carry=None, xp=np, rows: bool = True):
    """Inclusive per-key running sums in row order, by stable sort and one scan.

    Parameters
    ----------
    keys : array of int, shape (n,)
        Key code per row in ``[0, n_keys)``, or ``-1`` for rows outside the accumulator.
    amounts : array of int64, shape (n,)
        Non-negative amount per row.
    n_keys : int
    carry : array of int64, shape (n_keys,), optional
        Non-negative totals carried in from earlier rows.
    xp : module
        :mod:`numpy` or :mod:`cupy`; the arrays must belong to it.
    rows : bool
        Compute the per-row running totals; ``False`` returns ``None`` for them (key totals only).

    Returns
    -------
    cumulative : array of int64, shape (n,), or None
        Running total per row, carry included; ``-1`` for non-candidates.
    totals : array of int64, shape (n_keys,)
        Totals after the last row.

    Raises
    ------
    TotalsOverflowError
        A running total would pass int64, or a candidate amount is negative; ``row`` names the
        first such row, as the CPU loop would.
    ValueError
        A key is ``n_keys`` or more, or ``n >= 2**31``.

    Notes
    -----
    Same integers as :func:`kernels.running_totals.running_totals` on any input.

    Examples
    --------
    >>> import numpy as np
    >>> cum, totals = running_totals_sorted(np.array([1, 0, -1, 1]), np.array([5, 7, 9, 2]), 2)
    >>> cum.tolist(), totals.tolist()
    ([5, 7, -1, 7], [7, 7])
    """
    n = len(keys)
    if n >= 2**31:
        raise ValueError("at most 2**31 - 1 rows per call; split the rows and chain the carry")
    start = start_totals(n_keys, carry, xp)
    keys = xp.asarray(keys)
    amounts = xp.asarray(amounts, dtype=xp.int64)
    candidates = xp.flatnonzero(keys >= 0)
    candidate_keys = keys[candidates].astype(_sort_dtype(n_keys, xp), copy=False)
    permutation = stable_argsort(candidate_keys, xp)
    order = candidates[permutation]  # row positions, grouped by key, in row order within a key
    sorted_keys = candidate_keys[permutation]
    del permutation
    if sorted_keys.size and int(sorted_keys[-1]) >= n_keys:
        raise ValueError(f"key {int(sorted_keys[-1])} is out of range for {n_keys} keys")
    sorted_amounts = amounts[order]
    offsets = xp.searchsorted(sorted_keys, xp.arange(n_keys + 1, dtype=sorted_keys.dtype), side="left")

    # Overflow: the bound clears it unless an amount is negative or a key could pass int64.
    if sorted_amounts.size:
        smallest, largest = int(sorted_amounts.min()), int(sorted_amounts.max())
        longest = int((offsets[1:] - offsets[:-1]).max()) if n_keys else 0
        headroom = INT64_MAX - max(int(start.max()), 0) if n_keys else INT64_MAX
        if smallest < 0 or largest * longest > headroom:
            limit = INT64_MAX - xp.maximum(start, 0)
            bad = _first_bad_row(order, sorted_keys, sorted_amounts, offsets, limit, amounts[candidates],
                                 candidates, xp)
            if bad >= 0:
                raise TotalsOverflowError(f"running total overflows int64 at row {bad}", row=bad)

    # cumsum may wrap; differences of it are exact (see the module notes).
    scanned = xp.concatenate([xp.zeros(1, dtype=xp.int64), xp.cumsum(sorted_amounts)])
    del sorted_amounts
    totals = start + (scanned[offsets[1:]] - scanned[offsets[:-1]])
    if not rows:
        return None, totals
    running = scanned[1:] - scanned[offsets[:-1][sorted_keys]] + start[sorted_keys]
    del scanned
    cumulative = xp.full(n, -1, dtype=xp.int64)
    cumulative[order] = running
    return cumulative, totals
