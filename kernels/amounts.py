"""Row amounts: unit TPP gathered by SKU code, times quantity, exact int64.

On NumPy: one fused compiled pass (gather, overflow check, multiply) instead of several array
passes. On other namespaces (CuPy): the same arithmetic as whole-array steps, same integers out.
"""
from __future__ import annotations

import functools

import numpy as np

from kernels import namespace, unsupported_namespace

INT64_MAX = np.iinfo(np.int64).max
class AmountOverflowError(OverflowError):
    """A row amount (unit TPP x quantity) exceeds the int64 range, or a quantity is not positive.

    Attributes
    ----------
    row : int or None
        The first bad row, when known (callers name the row's ``shipment_id`` from it).
    """

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row


@functools.cache
def _loop():
    """The compiled gather-multiply loop (compiled on first use, cached on disk by Numba)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def multiply(unit, codes, quantity, out):  # pragma: no cover - compiled
        for i in range(codes.shape[0]):
            u = unit[codes[i]]
            q = quantity[i]
            if q <= 0 or (u > 0 and q > INT64_MAX // u):
                return i
            out[i] = u * q
        return -1

    return multiply


def _row_amounts_composed(unit, codes, quantity, xp):
    """``unit[codes] * quantity`` as array steps; the same checks as the loop, first bad row reported."""
    unit = xp.asarray(unit, dtype=xp.int64)
    quantity = xp.asarray(quantity, dtype=xp.int64)
    per_unit = unit[xp.asarray(codes)]
    positive = per_unit > 0
    limit = INT64_MAX // xp.where(positive, per_unit, 1)
    bad = xp.flatnonzero((quantity <= 0) | (positive & (quantity > limit)))
    if bad.size:
        row = int(bad[0])
        raise AmountOverflowError(f"row {row}: {int(per_unit[row])} x {int(quantity[row])} is not a positive "
                                  "int64 amount", row=row)
    return per_unit * quantity


def row_amounts(unit, codes, quantity, *, xp=None, method: str | None = None):
    """``unit[codes] * quantity`` in int64, raising instead of wrapping.

    Parameters
    ----------
    unit : array of int64, shape (k,)
        Amount per unit of each item (TPP per SKU, in dictionary order).
    codes : array of int, shape (n,)
        Item code per row, in ``[0, k)``.
    quantity : array of int64, shape (n,)
        Units per row, positive.
    xp : module, optional
        Array namespace; inferred from ``codes`` when omitted.
    method : {None, "loop", "composed"}
        ``None``: the compiled loop on NumPy, whole-array steps elsewhere.

    Returns
    -------
    array of int64, shape (n,)

    Raises
    ------
    AmountOverflowError
        A product exceeds the int64 range or a quantity is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> row_amounts(np.array([15832, 4992]), np.array([0, 1, 0]), np.array([8, 2, 1])).tolist()
    [126656, 9984, 15832]
    """
    xp = xp or namespace(codes)
    if method not in (None, "loop", "composed"):
        raise ValueError(f"method must be 'loop' or 'composed', not {method!r}")
    if method == "composed" or (method is None and xp is not np):
        return _row_amounts_composed(unit, codes, quantity, xp)
    if xp is not np:
        raise unsupported_namespace(xp)
    unit = np.ascontiguousarray(unit, dtype=np.int64)
    quantity = np.ascontiguousarray(quantity, dtype=np.int64)
    out = np.empty(len(codes), dtype=np.int64)
    bad = _loop()(unit, np.ascontiguousarray(codes), quantity, out)
    if bad >= 0:
        raise AmountOverflowError(f"row {bad}: {unit[codes[bad]]} x {quantity[bad]} is not a positive int64 amount",
                                  row=int(bad))
    return out
