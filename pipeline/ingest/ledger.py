"""The validated ledger: :func:`read_ledgers` reads files into a :class:`Ledger` and its quarantine.

Counts reconcile: rows read = accepted + quarantined (+ rows after ``as_of``, when given).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.formats import LedgerSource, ledger_format, parquet_batches, read_ledger_file
from pipeline.ingest.order import _other_columns, _resolve_duplicates, _rows_as_read, _screening_order
from pipeline.ingest.schema import _REASON_TEXTS, LEDGER_COLUMNS, SCREENING_COLUMNS, LedgerReadError
from pipeline.ingest.validate import _validate


@dataclass
class Ledger:
    """Validated ledger rows in screening order, and what was rejected.

    Attributes
    ----------
    rows : pyarrow.Table
        Accepted rows sorted by ``(ship_date, shipment_id)``, the :data:`SCREENING_COLUMNS`
        only; ``ship_date`` is date32,
        ``quantity`` int64, categorical columns are dictionary-encoded and normalized
        (country codes upper case, status lower case, surrounding blanks removed); an absent
        optional column is all null, and ``export_country`` is null for the United States.
    quarantine : pyarrow.Table
        Rejected rows as read (all columns as text), plus ``raw_line``, ``reason``, ``source_file``,
        ``source_row`` (CSV and Parquet: row number in the file, for a malformed CSV line its line
        number; JSON Lines: the 1-based line number, for every row).
    counts : dict
        ``rows_read``, ``accepted``, ``quarantined``, ``excluded_after_as_of``, ``by_reason``.
    files : list of dict
        Per input file: ``path``, ``format``, ``bytes``, ``rows_read``.
    seconds : dict
        Seconds spent reading the files (``read``), validating them (``validate``) and putting
        the rows in screening order, duplicates resolved (``order``).
    """

    rows: pa.Table
    quarantine: pa.Table
    counts: dict
    files: list[dict] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)


def read_ledgers(paths: Sequence[str | Path], *, as_of: dt.date | None = None,
                 progress: Callable[[str], None] | None = None) -> Ledger:
    """Read, validate and order one or more ledger files.

    Parameters
    ----------
    paths : sequence of path
        CSV, Parquet or JSON Lines files with the DESIGN §3 columns.
    as_of : date, optional
        Screen only rows with ``ship_date <= as_of``; later valid rows are counted as
        ``excluded_after_as_of``.
    progress : callable, optional
        Called with a short message per step.

    Returns
    -------
    Ledger

    Raises
    ------
    LedgerReadError
        A file cannot be read at all.
    """
    note = progress or (lambda message: None)
    if not paths:
        raise LedgerReadError("no ledger files given")
    parts, reason_parts, sources, files = [], [], [], []
    seconds = {"read": 0.0, "validate": 0.0, "order": 0.0}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] += now - clock
        clock = now

    for path in paths:
        note(f"reading {Path(path).name}")
        if _is_parquet(path):  # a batch at a time: only the validated columns are kept
            source, batches = parquet_batches(path)
            for batch in batches:
                lap("read")
                columns, reasons = _validate(batch)
                lap("validate")
                parts.append(columns)
                reason_parts.append(reasons)
        else:
            source = read_ledger_file(path)
            lap("read")
            columns, reasons = _validate(source.table)
            lap("validate")
            parts.append(columns)
            reason_parts.append(reasons)
        sources.append(source)
        files.append({"path": str(path), "format": source.format, "bytes": Path(path).stat().st_size,
                      "rows_read": source.num_rows + len(source.malformed),
                      "malformed_lines": len(source.malformed)})
    note("checking duplicates and order")
    columns = {name: pa.chunked_array([c for part in parts for c in part[name].chunks], type=parts[0][name].type)
               for name in SCREENING_COLUMNS}
    del parts  # the columns hold the batches' chunks now
    reasons = np.concatenate(reason_parts)
    starts = np.cumsum([0] + [s.num_rows for s in sources])[:-1]
    accepted = np.flatnonzero(reasons == 0)
    order, distinct = _screening_order(columns["ship_date"], columns["shipment_id"], accepted)
    as_read = order is accepted  # already in screening order: the order stays ascending below
    if not distinct:
        _resolve_duplicates(columns, reasons, order, lambda rows: _other_columns(sources, starts, rows))
    keep = reasons[order] == 0
    order = order[keep]
    excluded = 0
    if as_of is not None:
        days = pc.cast(columns["ship_date"], pa.int32()).to_numpy()[order]
        within = days <= (as_of - dt.date(1970, 1, 1)).days
        excluded = int((~within).sum())
        order = order[within]
    gather = None if as_read and len(order) == len(reasons) else order
    rows = pa.table({name: _in_order(columns.pop(name), gather) for name in SCREENING_COLUMNS})  # one at a time
    bad = np.flatnonzero(reasons)
    quarantine = _quarantine_table(sources, starts, reasons, bad)
    rows_read = sum(f["rows_read"] for f in files)
    by_reason = pd.Series(quarantine.column("reason").to_pylist(), dtype=object).value_counts().to_dict() \
        if quarantine.num_rows else {}
    counts = {"rows_read": rows_read, "accepted": rows.num_rows, "quarantined": quarantine.num_rows,
              "excluded_after_as_of": excluded, "by_reason": {k: int(v) for k, v in sorted(by_reason.items())}}
    if counts["accepted"] + counts["quarantined"] + excluded != rows_read:
        raise AssertionError(f"row counts do not reconcile: {counts}")
    lap("order")
    return Ledger(rows=rows, quarantine=quarantine, counts=counts, files=files,
                  seconds={stage: round(value, 4) for stage, value in seconds.items()})


def _in_order(column: pa.ChunkedArray, order: np.ndarray | None) -> pa.ChunkedArray:
    """A column with its rows taken in ``order`` (None: as they are); a dictionary column gets one
    dictionary for all its rows (the batches and files each had their own), so pieces of it need
    no unifying again."""
    if pa.types.is_dictionary(column.type):
        column = column.unify_dictionaries()
        if order is None or not column.num_chunks:
            return column
        indices = pa.chunked_array([chunk.indices for chunk in column.chunks], type=column.type.index_type)
        codes = pc.fill_null(indices, -1).to_numpy()[order]
        return pa.chunked_array([pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0),
                                                                column.chunk(0).dictionary)])
    return column if order is None else pa.chunked_array([column.combine_chunks().take(pa.array(order))])


def _is_parquet(path: str | Path) -> bool:
    try:
        return ledger_format(Path(path)) == "parquet"
    except LedgerReadError:
        return False  # read_ledger_file says why


def _quarantine_table(sources: list[LedgerSource], starts: np.ndarray, reasons: np.ndarray,
                      bad: np.ndarray) -> pa.Table:
    """Rejected rows as read (every column as text), with reason and origin; then malformed lines."""
    table = _rows_as_read(sources, starts, bad)
    owner = np.searchsorted(starts, bad, side="right") - 1
    texts = np.array(_REASON_TEXTS, dtype=object)[reasons[bad]]
    table = table.append_column("raw_line", pa.nulls(len(bad), pa.string()))
    table = table.append_column("reason", pa.array(texts.tolist(), type=pa.string()))
    table = table.append_column("source_file", pa.array([str(sources[i].path) for i in owner], type=pa.string()))
    rows = np.zeros(len(bad), np.int64)
    for i in np.unique(owner):
        rows[owner == i] = sources[i].source_rows(bad[owner == i] - starts[i])
    table = table.append_column("source_row", pa.array(rows, type=pa.int64()))
    extra = [{**{name: None for name in LEDGER_COLUMNS}, "raw_line": text, "reason": reason,
              "source_file": str(source.path), "source_row": number}
             for source in sources for number, text, reason in source.malformed]
    if extra:
        table = pa.concat_tables([table, pa.Table.from_pylist(extra, schema=table.schema)])
    return table
