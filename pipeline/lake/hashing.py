"""64-bit hashes of stored rows and ids: nominate repeats cheaply (the strings decide)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kernels.identifiers import hash_strings
from pipeline.lake.schema import ADDED_COLUMNS, ROW_HASH_COLUMNS


_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def _string_hashes(array: pa.Array) -> np.ndarray:
    """FNV-1a hash of each value of a string array (nulls hash as the empty string)."""
    array = array.cast(pa.string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset: array.offset + len(array) + 1]
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return hash_strings(offsets, data)


def _column_hashes(column: pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash per value of a stored column; nulls get their own value."""
    parts = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            values = np.append(_string_hashes(chunk.dictionary), _NULL_HASH)
            codes = pc.fill_null(chunk.indices, len(chunk.dictionary)).to_numpy(zero_copy_only=False)
            parts.append(values[codes])
        elif pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type):
            hashes = _string_hashes(chunk)
            parts.append(hashes if not chunk.null_count else np.where(chunk.is_null().to_numpy(zero_copy_only=False),
                                                                      _NULL_HASH, hashes))
        else:
            if pa.types.is_date32(chunk.type):
                chunk = chunk.cast(pa.int32())
            values = pc.cast(chunk, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
            hashes = (values ^ (values >> np.uint64(31))) * _MIX
            parts.append(hashes if not chunk.null_count else np.where(chunk.is_null().to_numpy(zero_copy_only=False),
                                                                      _NULL_HASH, hashes))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def _row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit content hash per row over every stored column (order-sensitive).

    :data:`ROW_HASH_COLUMNS` are mixed in their fixed order, then each of :data:`ADDED_COLUMNS`
    only where it is not null: a row without them hashes as in lakes written before they existed.
    """
    out = np.zeros(table.num_rows, dtype=np.uint64)
    for name in ROW_HASH_COLUMNS + ADDED_COLUMNS:
        column = table.column(name)
        mixed = (out * _MIX) ^ _column_hashes(column)
        mixed ^= mixed >> np.uint64(29)
        if name in ADDED_COLUMNS and column.null_count:
            mixed = np.where(pc.is_null(column).to_numpy(zero_copy_only=False), out, mixed)
        out = mixed
    return out
