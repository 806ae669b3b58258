"""Hashing of string identifiers (shipment ids) for duplicate detection.

Works on the raw Arrow buffers (int32 offsets and UTF-8 bytes) so no Python string objects are
made. The hash only nominates candidates: callers confirm duplicates on the strings themselves.
"""
from __future__ import annotations

import functools

import numpy as np

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@functools.cache
def _hash_loop():
    """The compiled FNV-1a loop (compiled on first use, cached on disk by Numba)."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def fnv1a(offsets, data, out):  # pragma: no cover - compiled
        for i in range(out.shape[0]):
            h = _FNV_OFFSET
            for j in range(offsets[i], offsets[i + 1]):
                h = (h ^ np.uint64(data[j])) * _FNV_PRIME
            out[i] = h

    return fnv1a


def hash_strings(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """64-bit FNV-1a hash of each string of an Arrow string array.

    Parameters
    ----------
    offsets : ndarray of int32 or int64, shape (n + 1,)
        Arrow value offsets (the array's slice offset already applied).
    data : ndarray of uint8
        The Arrow data buffer.

    Returns
    -------
    ndarray of uint64, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> h = hash_strings(np.array([0, 1, 2, 3]), np.frombuffer(b"aba", dtype=np.uint8))
    >>> bool(h[0] == h[2]), bool(h[0] == h[1])
    (True, False)
    """
    out = np.empty(len(offsets) - 1, dtype=np.uint64)
    if len(out):
        _hash_loop()(offsets, data, out)
    return out
