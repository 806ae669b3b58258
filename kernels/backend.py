"""Choosing where the accounting kernels run: NumPy on the CPU, or CuPy on an NVIDIA GPU.

``select_backend("auto")`` uses a GPU only after a probe has run a kernel on it and checked the
answer (an import that succeeds proves nothing: CuPy imports without a driver). Nothing here
imports CuPy at module import time, so importing the package creates no CUDA context.

A :class:`Backend` takes host (NumPy) arrays and gives host arrays back. On a GPU it moves the
key and amount arrays over, runs the kernels there, and brings back only the per-row results
and the per-key totals. Rows go over in time-ordered chunks sized from the device's free memory,
each chunk starting from the per-key totals the previous one ended with (the carry-in that
DESIGN §6 uses across partitions), so a ledger larger than device memory is not refused.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from kernels.running_totals import TotalsOverflowError, over_limit, running_totals

BACKENDS = ("auto", "numpy", "cupy")
"""Names :func:`select_backend` accepts."""

DEVICE_BYTES_PER_ROW = 128
"""Device memory one row of a chunk may take at the peak of an accumulation (sorted form):
int64 key and amount in, candidate positions, int32 sort keys and their radix-sort buffers,
sorted amounts, the scan, per-row totals out, the cap gather. Counted at about 100; rounded up."""

MEMORY_FRACTION = 0.7
"""Share of the device's free memory a chunk may plan to use (the rest: allocator slack)."""

MIN_ROWS_PER_CHUNK = 1 << 16


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run here (no CuPy, no CUDA device, or a broken one)."""


@dataclass(frozen=True)
class Accumulated:
    """One accumulator's results, on the host.

    Attributes
    ----------
    cumulative : ndarray of int64
        Running total per row (``-1``: not a candidate).
    totals : ndarray of int64
        Per-key totals after the last row, carry included.
    over : ndarray of bool or None
        Rows over their key's limit, when limits were given.
    """

    cumulative: np.ndarray
    totals: np.ndarray
    over: np.ndarray | None = None


def rows_per_chunk(free_bytes: int, bytes_per_row: int = DEVICE_BYTES_PER_ROW, fraction: float = MEMORY_FRACTION,
                   minimum: int = MIN_ROWS_PER_CHUNK) -> int:
    """Rows of one device chunk for ``free_bytes`` of free device memory.

    Parameters
    ----------
    free_bytes : int
        Free device memory, bytes.
    bytes_per_row : int
        Peak device bytes per row of a chunk.
    fraction : float
        Share of the free memory to plan for.
    minimum : int
        Floor, so a nearly full device still makes progress (the allocator then reports it).

    Returns
    -------
    int

    Examples
    --------
    >>> rows_per_chunk(80 * 2**30)
    469762048
    >>> rows_per_chunk(0)
    65536
    """
    if bytes_per_row <= 0 or not 0 < fraction <= 1:
        raise ValueError("bytes_per_row must be positive and fraction in (0, 1]")
    return max(int(free_bytes * fraction) // bytes_per_row, minimum)


@dataclass(frozen=True)
class Backend:
    """Where the accumulators run, and how.

    Attributes
    ----------
    name : str
        ``numpy`` or ``cupy``.
    xp : module
        The array namespace.
    device : str or None
        GPU name (``None`` on the CPU).
    chunk_rows : int or None
        Rows per chunk; ``None``: one chunk on the CPU, sized from free memory on a GPU.
    method : str or None
        Running-total algorithm (:data:`kernels.running_totals.METHODS`); ``None``: the
        namespace's default (the CPU loop on NumPy, the sorted form on CuPy).
    pairs_on_device : bool
        Score fuzzy name pairs with the array form on this backend's device. ``auto`` leaves it
        off: the array form launches about 200,000 small kernels per batch of 4M pairs and no
        device measurement yet shows it faster than the Numba loop on the CPU. An explicit
        ``cupy`` turns it on. Meaningless on NumPy, which always runs the Numba loop.
    """

    name: str
    xp: ModuleType = field(repr=False)
    device: str | None = None
    chunk_rows: int | None = None
    method: str | None = None
    pairs_on_device: bool = True

    @property
    def scores_pairs_on_device(self) -> bool:
        """Fuzzy name pairs are scored on the device (a GPU backend with :attr:`pairs_on_device`)."""
        return self.xp is not np and self.pairs_on_device

    @property
    def plain(self) -> bool:
        """NumPy with its defaults: the kernels are called as they are, nothing added."""
        return self.xp is np and self.chunk_rows is None and self.method in (None, "loop")

    def free_bytes(self) -> int | None:
        """Free device memory, the allocator's cached free blocks included; ``None`` on the CPU."""
        if self.xp is np:
            return None
        free, _ = self.xp.cuda.runtime.memGetInfo()
        return int(free) + int(self.xp.get_default_memory_pool().free_bytes())

    def rows_per_chunk(self, bytes_per_row: int = DEVICE_BYTES_PER_ROW) -> int | None:
        """Rows per device chunk now (``chunk_rows`` if set, else from free memory at ``bytes_per_row``
        device bytes per row); ``None``: no limit."""
        if self.chunk_rows is not None:
            return self.chunk_rows
        free = self.free_bytes()
        return None if free is None else rows_per_chunk(free, bytes_per_row)

    def to_device(self, array):
        """``array`` in this backend's memory (no copy when it is there already)."""
        return array if self.xp is np else self.xp.asarray(array)

    def to_host(self, array) -> np.ndarray:
        """``array`` as a NumPy array."""
        return array if isinstance(array, np.ndarray) else self.xp.asnumpy(array)

    def resident(self, amounts):
        """``amounts`` moved to the device once, when all rows fit one chunk (two accumulators read them)."""
        limit = self.rows_per_chunk()
        return self.to_device(amounts) if self.xp is not np and (limit is None or len(amounts) <= limit) else amounts

    def accumulate(self, keys, amounts, n_keys: int, *, carry=None, limits=None) -> Accumulated:
        """Running totals per key in row order, and the cap check when ``limits`` are given.

        Parameters
        ----------
        keys : ndarray of int, shape (n,)
            Key code per row, ``-1`` for non-candidates.
        amounts : array of int64, shape (n,)
            On the host, or on the device (:meth:`resident`).
        n_keys : int
        carry : ndarray of int64, shape (n_keys,), optional
            Totals before the first row.
        limits : ndarray of int64, shape (n_keys,), optional
            Limit per key: ``over`` marks rows whose running total is greater.

        Returns
        -------
        Accumulated
            Host arrays, identical on every backend and chunk size.

        Raises
        ------
        TotalsOverflowError
            As :func:`kernels.running_totals.running_totals`; ``row`` counts from the first row.
        """
        if self.plain:
            cumulative, totals = running_totals(keys, amounts, n_keys, carry=carry)
            over = over_limit(cumulative, keys, limits) if limits is not None else None
            return Accumulated(cumulative, totals, over)
        xp, n = self.xp, len(keys)
        step = self.rows_per_chunk() or max(n, 1)
        cumulative = np.empty(n, dtype=np.int64)
        over = np.empty(n, dtype=bool) if limits is not None else None
        device_limits = self.to_device(np.asarray(limits, dtype=np.int64)) if limits is not None else None
        totals = self.to_device(np.asarray(carry, dtype=np.int64)) if carry is not None else None
        for start in range(0, n, step):
            stop = min(start + step, n)
            chunk_keys = self.to_device(keys[start:stop])
            try:
                chunk, totals = running_totals(chunk_keys, self.to_device(amounts[start:stop]), n_keys, carry=totals,
                                               xp=xp, method=self.method)
            except TotalsOverflowError as error:
                raise error.after(start) from None
            if over is not None:
                over[start:stop] = self.to_host(over_limit(chunk, chunk_keys, device_limits, xp=xp))
            cumulative[start:stop] = self.to_host(chunk)
            del chunk, chunk_keys
        if totals is None or n == 0:
            totals = running_totals(np.zeros(0, np.int64), np.zeros(0, np.int64), n_keys, carry=carry)[1]
        return Accumulated(cumulative, self.to_host(totals), over)


NUMPY = Backend("numpy", np)
"""The CPU backend with its defaults."""

_probe_lock = threading.Lock()
_probe_result: tuple[ModuleType | None, str] | None = None


def probe_cupy() -> tuple[ModuleType | None, str]:
    """Check, once per process, that CuPy can run a kernel on a CUDA device.

    Returns
    -------
    cupy : module or None
        The CuPy module when a device worked.
    detail : str
        The device's name, or why none works.
    """
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            _probe_result = _probe()
        return _probe_result


def reset_probe() -> None:
    """Forget the probe's result (tests)."""
    global _probe_result
    with _probe_lock:
        _probe_result = None


def _probe() -> tuple[ModuleType | None, str]:
    try:
        import cupy
    except Exception as error:  # ImportError, or a broken install failing on import
        return None, f"CuPy cannot be imported ({type(error).__name__}: {error})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, no device, driver too old
        return None, f"no CUDA device ({type(error).__name__}: {error})"
    if count < 1:
        return None, "no CUDA device (the driver reports none)"
    try:
        values = cupy.arange(1, 1025, dtype=cupy.int64)
        got = int(cupy.cumsum(values)[-1])
        cupy.cuda.Device().synchronize()
        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as error:  # kernel compilation or launch failed
        return None, f"the CUDA device does not run a CuPy kernel ({type(error).__name__}: {error})"
    if got != 1024 * 1025 // 2:
        return None, f"the CUDA device computed a wrong test sum ({got})"
    return cupy, name


def select_backend(name: str | Backend = "auto") -> Backend:
    """The backend for ``name``.

    Parameters
    ----------
    name : {"auto", "numpy", "cupy"} or Backend
        ``auto``: CuPy when the probe finds a working device, else NumPy. A :class:`Backend` is
        returned as it is.

    Returns
    -------
    Backend

    Raises
    ------
    BackendUnavailableError
        ``cupy`` was asked for and no device works; the message says why.
    ValueError
        An unknown name.

    Notes
    -----
    ``auto`` on a device runs the accumulators there and leaves fuzzy pair scoring on the CPU
    (:attr:`Backend.pairs_on_device` off); ``cupy`` runs both there.

    Examples
    --------
    >>> select_backend("numpy").name
    'numpy'
    """
    if isinstance(name, Backend):
        return name
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {name!r}")
    if name == "numpy":
        return NUMPY
    cupy, detail = probe_cupy()
    if cupy is not None:
        return Backend("cupy", cupy, device=detail, pairs_on_device=name == "cupy")
    if name == "cupy":
        raise BackendUnavailableError(f"backend 'cupy' cannot run here: {detail}. Use backend 'numpy' or 'auto'.")
    return NUMPY
