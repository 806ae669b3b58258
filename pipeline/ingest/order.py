"""Screening order and repeated shipment ids among the rows of one read.

Accepted rows are ordered by ``(ship_date, shipment_id)``; an id repeated with identical
content keeps its first copy, an id repeated with different content is quarantined entirely.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kernels.identifiers import day_id_order_checked, hash_strings
from pipeline.ingest.formats import LedgerSource
from pipeline.ingest.schema import (LEDGER_COLUMNS, REASON_CONFLICT, REASON_EXACT_DUPLICATE, SCREENING_COLUMNS,
                                    reason_code)
from pipeline.ingest.validate import _categorical


def _rows_as_read(sources: list[LedgerSource], starts: np.ndarray, rows: np.ndarray) -> pa.Table:
    """Global row numbers (sorted) → those rows as read, every column as text."""
    owner = np.searchsorted(starts, rows, side="right") - 1
    pieces = [sources[i].rows_as_read(rows[owner == i] - starts[i]) for i in np.unique(owner)]
    return pa.concat_tables(pieces) if pieces else sources[0].rows_as_read(np.zeros(0, np.int64))


def _resolve_duplicates(columns: dict[str, pa.ChunkedArray], reasons: np.ndarray, order: np.ndarray,
                        others: Callable[[np.ndarray], dict[str, pa.ChunkedArray]]) -> None:
    """Quarantine repeated shipment ids among the rows still accepted.

    ``order`` lists the accepted rows in screening order. Rows are compared by their validated,
    normalized values (as the lake compares them); ``others(rows)`` gives the normalized ledger
    columns screening does not read. Exact duplicates keep their first copy (file order); ids
    that repeat with different content are quarantined entirely.
    """
    ids = columns["shipment_id"]
    ids = (ids if _is_identity(order, len(ids)) else ids.take(pa.array(order))).combine_chunks()
    if len(ids) < 2:
        return
    if pc.all(pc.less(ids[:-1], ids[1:])).as_py():
        return  # ids strictly increasing in screening order: all distinct
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset: ids.offset + len(ids) + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8) if ids.buffers()[2] is not None else np.zeros(0, np.uint8)
    hashes = hash_strings(offsets, data)
    sorted_hashes = np.sort(hashes)
    repeated = sorted_hashes[1:][sorted_hashes[1:] == sorted_hashes[:-1]]
    if not len(repeated):
        return
    candidates = np.sort(order[np.isin(hashes, repeated)])  # file order within each id
    taken = pa.array(candidates)
    content = {name: columns[name].take(taken) for name in SCREENING_COLUMNS}
    content.update(others(candidates))
    frame = pd.DataFrame({name: _plain(column) for name, column in content.items()})
    row_hash = pd.util.hash_pandas_object(frame.astype(object).where(frame.notna(), "\x00").astype(str),
                                          index=False).to_numpy()
    groups = pd.DataFrame({"id": frame["shipment_id"], "content": row_hash})
    variants = groups.groupby("id", sort=False)["content"].transform("nunique").to_numpy()
    conflict = variants > 1
    repeat = ~conflict & groups.duplicated(["id"]).to_numpy()
    reasons[candidates[repeat]] = reason_code(REASON_EXACT_DUPLICATE)
    reasons[candidates[conflict]] = reason_code(REASON_CONFLICT)


def _plain(column: pa.ChunkedArray) -> pd.Series:
    """A column as a pandas Series of plain values (dictionaries decoded)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pd.Series(column.to_pandas(), dtype=object).reset_index(drop=True)


def other_columns(as_read: pa.Table) -> dict[str, pa.ChunkedArray]:
    """The ledger columns screening does not read, normalized as stored (blanks trimmed, blank as null)."""
    return {name: _categorical(as_read.column(name), lambda a: a)
            for name in LEDGER_COLUMNS if name not in SCREENING_COLUMNS}


def _other_columns(sources: list[LedgerSource], starts: np.ndarray, rows: np.ndarray) -> dict[str, pa.ChunkedArray]:
    return other_columns(_rows_as_read(sources, starts, rows))


def _is_identity(rows: np.ndarray, n: int) -> bool:
    """Is ``rows`` simply 0..n-1 (so gathers can be skipped)?"""
    return len(rows) == n and (n == 0 or (rows[0] == 0 and rows[-1] == n - 1
                                          and bool((np.diff(rows) == 1).all())))


def _screening_order(ship_date: pa.ChunkedArray, ids: pa.ChunkedArray, rows: np.ndarray) -> tuple[np.ndarray, bool]:
    """``rows`` (distinct, ascending: the accepted rows) reordered by (ship_date, shipment_id); a
    linear check skips the sort for ordered input, and then ``rows`` itself comes back.

    Unordered input is put in order by day first, the ids breaking ties within a day only
    (:func:`kernels.identifiers.day_id_order`), never by a sort of the whole id column.

    Returns the order and whether the ids are already known to be distinct (strictly increasing
    along the order), which spares the duplicate search.
    """
    if len(rows) < 2:
        return rows, True
    everything = len(rows) == len(ids)  # rows are distinct and ascending: all of them, no gathers needed
    days = pc.cast(ship_date, pa.int32()).to_numpy()
    days = days if everything else days[rows]
    id_values = ids if everything else ids.take(pa.array(rows))  # compared chunk by chunk: no copy
    step = np.diff(days)
    if (step >= 0).all():
        if pc.all(pc.less(id_values[:-1], id_values[1:])).as_py():
            return rows, True
        ids_ordered = pc.less_equal(id_values[:-1], id_values[1:]).to_numpy(zero_copy_only=False)
        if ((step > 0) | ids_ordered).all():
            return rows, False
    ids = id_values.combine_chunks()
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset: ids.offset + len(ids) + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8) if ids.buffers()[2] is not None else np.zeros(0, np.uint8)
    order, increasing = day_id_order_checked(days, offsets, data)
    return rows[order], increasing
