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


@functools.cache
def _order_loop():
    """The compiled day-then-id ordering (compiled on first use, cached on disk by Numba)."""
    import numba

    @numba.njit(cache=True, nogil=True, inline="always")
    def compare(a, b, offsets, data, skip):  # pragma: no cover - compiled
        """-1, 0 or 1: string a against string b from byte ``skip`` on (byte order, a prefix first)."""
        i, j = offsets[a] + skip, offsets[b] + skip
        end_a, end_b = offsets[a + 1], offsets[b + 1]
        while i < end_a and j < end_b:
            if data[i] != data[j]:
                return -1 if data[i] < data[j] else 1
            i += 1
            j += 1
        if (end_a - i) != (end_b - j):
            return -1 if (end_a - i) < (end_b - j) else 1
        return 0

    @numba.njit(cache=True, nogil=True, inline="always")
    def before(a, b, key_a, key_b, offsets, data, skip):  # pragma: no cover - compiled
        """Does string a sort before string b (its 8-byte key, then the bytes after; equal: the lower index)?"""
        if key_a != key_b:
            return key_a < key_b
        sign = compare(a, b, offsets, data, skip)
        return sign < 0 or (sign == 0 and a < b)

    @numba.njit(cache=True, nogil=True)
    def order(days, offsets, data):  # pragma: no cover - compiled
        n = days.shape[0]
        out = np.empty(n, np.int64)
        if n == 0:
            return out, True
        common = offsets[1] - offsets[0]  # bytes every id starts with (those of the first id at most)
        for i in range(1, n):
            k = 0
            while k < common and offsets[i] + k < offsets[i + 1] and data[offsets[i] + k] == data[offsets[0] + k]:
                k += 1
            common = k
        first, last = days.min(), days.max()
        counts = np.zeros(last - first + 2, np.int64)
        for i in range(n):
            counts[days[i] - first + 1] += 1
        for d in range(1, counts.shape[0]):
            counts[d] += counts[d - 1]
        starts = counts.copy()
        for i in range(n):  # counting sort by day, file order within a day
            slot = days[i] - first
            out[starts[slot]] = i
            starts[slot] += 1
        # Within a day: the 8 bytes after the common prefix as a big-endian key, then the rest.
        keys = np.empty(n, np.uint64)  # in the order of out
        for slot in range(n):
            i = out[slot]
            key = np.uint64(0)
            p = offsets[i] + common
            for k in range(8):
                key = key << np.uint64(8)
                if p + k < offsets[i + 1]:
                    key |= np.uint64(data[p + k])
            keys[slot] = key
        skip = common + 8
        scratch = np.empty(n, np.int64)
        scratch_keys = np.empty(n, np.uint64)
        for d in range(counts.shape[0] - 1):
            lo, hi = counts[d], counts[d + 1]
            width = 1  # bottom-up merge sort of out[lo:hi] with its keys (stable)
            while width < hi - lo:
                for left in range(lo, hi, 2 * width):
                    mid, right = min(left + width, hi), min(left + 2 * width, hi)
                    i, j, k = left, mid, left
                    while i < mid and j < right:
                        if before(out[j], out[i], keys[j], keys[i], offsets, data, skip):
                            scratch[k] = out[j]
                            scratch_keys[k] = keys[j]
                            j += 1
                        else:
                            scratch[k] = out[i]
                            scratch_keys[k] = keys[i]
                            i += 1
                        k += 1
                    while i < mid:
                        scratch[k] = out[i]
                        scratch_keys[k] = keys[i]
                        i += 1
                        k += 1
                    while j < right:
                        scratch[k] = out[j]
                        scratch_keys[k] = keys[j]
                        j += 1
                        k += 1
                out[lo:hi] = scratch[lo:hi]
                keys[lo:hi] = scratch_keys[lo:hi]
                width *= 2
        increasing = True  # ids strictly increasing along the whole order: then all are distinct
        for slot in range(1, n):
            if compare(out[slot - 1], out[slot], offsets, data, 0) >= 0:
                increasing = False
                break
        return out, increasing

    return order


def day_id_order(days: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Positions in (day, id) order: by day, then by the id's UTF-8 bytes, then by position.

    A counting sort by day, then a merge sort of each day's ids, comparing first an integer key
    of the 8 bytes after the prefix all ids share; no sort of the whole string column.

    Parameters
    ----------
    days : ndarray of int32, shape (n,)
    offsets : ndarray of int32 or int64, shape (n + 1,)
        Arrow value offsets of the ids (slice offset applied).
    data : ndarray of uint8
        The ids' Arrow data buffer.

    Returns
    -------
    ndarray of int64, shape (n,)
        The order: equal to a stable sort by (day, id).

    Examples
    --------
    >>> import numpy as np
    >>> ids = [b"b", b"a", b"ab", b"a"]
    >>> offsets = np.cumsum([0] + [len(i) for i in ids])
    >>> day_id_order(np.array([5, 5, 5, 4], np.int32), offsets, np.frombuffer(b"".join(ids), np.uint8)).tolist()
    [3, 1, 2, 0]
    """
    return day_id_order_checked(days, offsets, data)[0]


def day_id_order_checked(days: np.ndarray, offsets: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, bool]:
    """:func:`day_id_order`, and whether the ids are strictly increasing along it (then all distinct)."""
    days = np.ascontiguousarray(days, dtype=np.int32)
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if len(days) == 0:
        return np.zeros(0, np.int64), True
    return _order_loop()(days, offsets, data)
