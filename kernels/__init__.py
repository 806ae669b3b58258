"""Hot loops of screening, written against an array namespace ``xp``.

Kernels import nothing of the pipeline and never import a GPU library at module import time:
CuPy is imported only by :func:`kernels.backend.select_backend` (or when a CuPy array is
already at hand), so importing the package creates no CUDA context.
"""
from __future__ import annotations

import numpy as np


INT64_MAX = np.iinfo(np.int64).max

NO_FMA_OPTIONS = ("--fmad=false",)
"""NVRTC options every hand-written CuPy kernel (``ElementwiseKernel``, ``ReductionKernel``,
``RawKernel``, ``RawModule``) in this package must pass as ``options=``.

The floating-point kernels (:mod:`kernels.similarity`) promise the CPU's results bit for bit.
One CuPy elementwise call performs one operation, so nothing can be contracted; a kernel that
does several in one body would let the compiler fuse ``a * b + c`` into one multiply-add with a
single rounding, and scores would differ from NumPy in the last bit. ``cupy.fuse`` and Numba
CUDA kernels cannot be given this option and are not used for float work here
(``tests/test_backends.py`` checks the sources).
"""


class TotalsOverflowError(OverflowError):
    """A running total or a row amount exceeds the int64 range.

    Attributes
    ----------
    row : int or None
        The first row at which it happened, when known.
    """

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row

    def after(self, start: int) -> "TotalsOverflowError":
        """The same overflow in a call whose rows begin ``start`` rows later (a chunk of a larger
        input): ``row`` counted from the first row of that larger input."""
        row = start + self.row if self.row is not None else None
        return TotalsOverflowError(f"running total overflows int64 at row {row}", row=row)


def start_totals(n_keys: int, carry, xp):
    """Per-key totals to start from: a fresh copy of ``carry``, or zeros.

    Raises
    ------
    ValueError
        If ``carry`` does not have one total per key.
    """
    if carry is None:
        return xp.zeros(n_keys, dtype=xp.int64)
    carry = xp.asarray(carry, dtype=xp.int64)
    if carry.shape != (n_keys,):
        raise ValueError(f"carry has shape {carry.shape}, expected ({n_keys},)")
    return carry.copy()


def namespace(array):
    """Array namespace of ``array``: :mod:`numpy` for NumPy arrays, :mod:`cupy` for CuPy arrays.

    Parameters
    ----------
    array : array-like

    Returns
    -------
    module

    Examples
    --------
    >>> import numpy as np
    >>> namespace(np.zeros(3)) is np
    True
    """
    module = type(array).__module__.split(".")[0]
    if module == "numpy":
        return np
    if module == "cupy":
        import sys

        return sys.modules["cupy"]  # a CuPy array exists, so CuPy is imported already
    raise unsupported_namespace(module)


def unsupported_namespace(xp) -> NotImplementedError:
    """The error for an array namespace this build has no kernels for."""
    name = getattr(xp, "__name__", str(xp))
    return NotImplementedError(f"no kernels for array namespace {name!r}; kernels run on numpy and cupy")


def warm_up() -> None:
    """Load the compiled CPU kernels (from Numba's on-disk cache, or compile them) ahead of use.

    Calls each kernel once on tiny inputs of the dtypes the pipeline passes, so the first real
    call does not pay for importing Numba and loading machine code.
    """
    from kernels.amounts import row_amounts
    from kernels.identifiers import day_id_order, hash_strings
    from kernels.running_totals import key_totals, running_totals

    one = np.ones(1, dtype=np.int64)
    running_totals(np.zeros(1, dtype=np.int64), one, 1)
    key_totals(np.zeros(1, dtype=np.int64), one, 1)
    row_amounts(one, np.zeros(1, dtype=np.int32), one)
    hash_strings(np.array([0, 1], dtype=np.int32), np.zeros(1, dtype=np.uint8))
    day_id_order(np.zeros(2, dtype=np.int32), np.array([0, 1, 2], dtype=np.int32), np.zeros(2, dtype=np.uint8))
