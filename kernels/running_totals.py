"""Per-key running totals and cap checks: the hot loop of screening.

Rows arrive in screening order (``ship_date``, ``shipment_id``). Each row carries a dense key
code (``-1`` when the row is not a candidate for this accumulator) and a positive int64 amount.
The running total of a row is the sum of the amounts of all earlier rows with the same key,
itself included (SQL ``ROWS UNBOUNDED PRECEDING``), plus an optional carry-in per key (totals of
earlier chunks, partitions or nights). Everything is exact int64; an overflow raises instead of
wrapping.

The functions take an array namespace ``xp``. The NumPy path runs a compiled one-pass loop with
one accumulator per key (no sort). Other namespaces (CuPy) run the sort-and-scan form of
:mod:`kernels.segmented`, which NumPy can also run (``method="sorted"``) so that CI tests it
against the loop. Nothing here imports a GPU library.
"""
from __future__ import annotations

import functools

import numpy as np

from kernels import INT64_MAX, TotalsOverflowError, namespace, start_totals, unsupported_namespace  # noqa: F401 (re-exported)

NOT_CANDIDATE = -1
"""Key code of a row that does not enter the accumulator; its running total is ``-1``."""


METHODS = ("loop", "sorted")
"""``loop``: the compiled one-pass CPU loop (NumPy only); ``sorted``: stable sort, scan, scatter
(:mod:`kernels.segmented`; any namespace)."""


def _method(method: str | None, xp) -> str:
    if method is None:
        return "loop" if xp is np else "sorted"
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if method == "loop" and xp is not np:
        raise unsupported_namespace(xp)
    return method


def _sorted_in_slices(keys, amounts, n_keys: int, carry, xp, rows: bool):
    """The sorted form over slices of at most ``MAX_ROWS_PER_CALL`` rows, carry chained."""
    from kernels.segmented import MAX_ROWS_PER_CALL, running_totals_sorted

    n = len(keys)
    if n <= MAX_ROWS_PER_CALL:
        return running_totals_sorted(keys, amounts, n_keys, carry=carry, xp=xp, rows=rows)
    parts, totals = [], carry
    for start in range(0, n, MAX_ROWS_PER_CALL):
        stop = min(start + MAX_ROWS_PER_CALL, n)
        try:
            cumulative, totals = running_totals_sorted(keys[start:stop], amounts[start:stop], n_keys, carry=totals,
                                                       xp=xp, rows=rows)
        except TotalsOverflowError as error:
            raise error.after(start) from None
        parts.append(cumulative)
    return (xp.concatenate(parts) if rows else None), totals


@functools.cache
def _cpu_loop():
    """The compiled one-pass loop (compiled on first use, cached on disk by Numba)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def accumulate(keys, amounts, totals, out):  # pragma: no cover - compiled
        """Add each candidate row to its key's total; write running totals when ``out`` has rows."""
        write = out.shape[0] > 0
        for i in range(keys.shape[0]):
            k = keys[i]
            if k < 0:
                if write:
                    out[i] = -1
                continue
            a = amounts[i]
            t = totals[k]
            if a < 0 or t > INT64_MAX - a:
                return i
            t += a
            totals[k] = t
            if write:
                out[i] = t
        return -1

    return accumulate


def running_totals(keys, amounts, n_keys: int, *, carry=None, xp=None, method: str | None = None):
    """Inclusive per-key running sums in row order.

    Parameters
    ----------
    keys : array of int32 or int64, shape (n,)
        Dense key code per row in ``[0, n_keys)``, or ``-1`` for rows outside this accumulator.
    amounts : array of int64, shape (n,)
        Non-negative amount per row (TPP).
    n_keys : int
        Number of distinct keys.
    carry : array of int64, shape (n_keys,), optional
        Totals carried in from earlier rows (chunks, partitions, nights); zeros when omitted.
    xp : module, optional
        Array namespace; inferred from ``keys`` when omitted.
    method : {None, "loop", "sorted"}
        Algorithm (:data:`METHODS`); ``None``: ``loop`` on NumPy, ``sorted`` elsewhere.

    Returns
    -------
    cumulative : array of int64, shape (n,)
        Running total of each row, itself and the carry included; ``-1`` for non-candidates.
    totals : array of int64, shape (n_keys,)
        Totals after the last row: the carry-in for whatever comes next.

    Raises
    ------
    TotalsOverflowError
        If a running total would exceed the int64 range, or an amount is negative.

    Examples
    --------
    >>> import numpy as np
    >>> cum, totals = running_totals(np.array([0, 1, -1, 0]), np.array([5, 7, 9, 2]), 2)
    >>> cum.tolist(), totals.tolist()
    ([5, 7, -1, 7], [7, 7])
    """
    xp = xp or namespace(keys)
    if _method(method, xp) == "sorted":
        return _sorted_in_slices(keys, amounts, n_keys, carry, xp, rows=True)
    totals = start_totals(n_keys, carry, xp)
    out = np.empty(len(keys), dtype=np.int64)
    overflow_row = _cpu_loop()(np.ascontiguousarray(keys), np.ascontiguousarray(amounts, dtype=np.int64), totals, out)
    if overflow_row >= 0:
        raise TotalsOverflowError(f"running total overflows int64 at row {overflow_row}", row=overflow_row)
    return out, totals


def key_totals(keys, amounts, n_keys: int, *, carry=None, xp=None, method: str | None = None):
    """Per-key totals (pass 1 of a partitioned run): what :func:`running_totals` would end with.

    Parameters
    ----------
    keys, amounts, n_keys, carry, xp, method
        As in :func:`running_totals`.

    Returns
    -------
    array of int64, shape (n_keys,)

    Examples
    --------
    >>> import numpy as np
    >>> key_totals(np.array([0, 1, 0]), np.array([1, 2, 3]), 2).tolist()
    [4, 2]
    """
    xp = xp or namespace(keys)
    if _method(method, xp) == "sorted":
        try:
            return _sorted_in_slices(keys, amounts, n_keys, carry, xp, rows=False)[1]
        except TotalsOverflowError as error:
            raise TotalsOverflowError(f"key total overflows int64 at row {error.row}", row=error.row) from None
    totals = start_totals(n_keys, carry, xp)
    overflow_row = _cpu_loop()(np.ascontiguousarray(keys), np.ascontiguousarray(amounts, dtype=np.int64), totals,
                               np.empty(0, dtype=np.int64))
    if overflow_row >= 0:
        raise TotalsOverflowError(f"key total overflows int64 at row {overflow_row}", row=overflow_row)
    return totals


def over_limit(cumulative, keys, limits, *, xp=None):
    """Cap check: is each candidate row's running total greater than its key's limit?

    Parameters
    ----------
    cumulative : array of int64, shape (n,)
        Output of :func:`running_totals`.
    keys : array of int, shape (n,)
        The same key codes (``-1`` rows are never over).
    limits : array of int64, shape (n_keys,)
        Limit per key.

    Returns
    -------
    array of bool, shape (n,)

    Notes
    -----
    Amounts are positive, so once a key crosses its limit every later row of the key is over
    too (first-crossing): the check needs no state beyond the running total.

    Examples
    --------
    >>> import numpy as np
    >>> over_limit(np.array([5, 12, -1]), np.array([0, 0, -1]), np.array([10])).tolist()
    [False, True, False]
    """
    xp = xp or namespace(cumulative)
    candidate = keys >= 0
    limits = xp.asarray(limits, dtype=xp.int64)
    if not len(limits):  # no keys, so no candidates
        return candidate
    return candidate & (cumulative > limits[xp.where(candidate, keys, 0)])
