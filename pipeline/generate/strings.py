"""Vectorised string building: fixed-width composition, element-wise joins, JSON fragments."""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _compose(parts: Sequence[bytes | tuple[np.ndarray, int]], n: int,
             valid: np.ndarray | None = None) -> pa.StringArray:
    """Fixed-width strings from literal byte strings and zero-padded decimal numbers.

    Parameters
    ----------
    parts : sequence
        ``bytes`` literals and ``(numbers, digits)`` pairs (non-negative integers, ``digits`` wide).
    n : int
        Number of strings.
    valid : numpy.ndarray of bool, optional
        Rows that are not null (all when omitted).

    Returns
    -------
    pyarrow.StringArray
    """
    width = sum(len(p) if isinstance(p, bytes) else p[1] for p in parts)
    buf = np.empty((n, width), dtype=np.uint8)
    at = 0
    for part in parts:
        if isinstance(part, bytes):
            buf[:, at:at + len(part)] = np.frombuffer(part, dtype=np.uint8)
            at += len(part)
        else:
            numbers, digits = part
            x = np.asarray(numbers, dtype=np.int64).copy()
            for pos in range(at + digits - 1, at - 1, -1):
                x, digit = np.divmod(x, 10)
                buf[:, pos] = digit + 48
            at += digits
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    bitmap, nulls = None, 0
    if valid is not None:
        nulls = int(n - np.count_nonzero(valid))
        if nulls:
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf), bitmap, nulls)


def _join(*arrays) -> pa.Array:
    """Element-wise concatenation of string arrays and scalars (nulls propagate)."""
    return pc.binary_join_element_wise(*arrays, "")


def _json_fragments(name: str, values: pa.Array, first: bool = False) -> pa.Array:
    """``,"name":<json value>`` per distinct pool value (``null`` for nulls)."""
    lead = "{" if first else ","
    return pa.array([f'{lead}"{name}":' + json.dumps(v, ensure_ascii=False) for v in values.to_pylist()],
                    type=pa.string())


def _string_data(lines: pa.Array) -> memoryview:
    """The contiguous UTF-8 bytes of a non-null string array."""
    lines = lines.cast(pa.string()) if not pa.types.is_string(lines.type) else lines
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    return memoryview(data)[offsets[0]:offsets[-1]] if len(lines) else memoryview(b"")
