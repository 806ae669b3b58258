"""Writing a synthetic ledger file (:func:`generate_ledger`): Parquet, CSV or JSON Lines, chunk by chunk.

One background thread writes a chunk while the next is generated; the file is written to a
temporary name, then renamed.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.generate.bad_rows import _with_bad_rows
from pipeline.generate.blocks import _block_codes, _block_lines, _block_table, _JsonPools
from pipeline.generate.plan import _make_plan, _Plan
from pipeline.generate.shape import BAD_KINDS, BLOCK_ROWS, COLUMNS, DICTIONARY_PAGE_BYTES, FORMATS
from pipeline.generate.strings import _string_data


def _text_schema() -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in COLUMNS])


def _typed_schema() -> pa.Schema:
    return pa.schema([(c, pa.date32() if c == "ship_date" else pa.int64() if c == "quantity" else pa.string())
                      for c in COLUMNS])


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    name = path.name.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return "parquet"


def generate_ledger(path, rows: int, *, seed: int = 0, bad_rows: int = 0, chunk_rows: int = 1_000_000,
                    listed_names: Sequence[str] = (), start: dt.date = dt.date(2025, 1, 1),
                    end: dt.date = dt.date(2027, 12, 31), pending_days: int = 45, fmt: str | None = None,
                    progress: Callable[[int], None] | None = None, consignees: int | None = None) -> dict:
    """Write a deterministic synthetic shipment ledger.

    Parameters
    ----------
    path : str or path-like
        File to write; replaced if it exists (written to a temporary name, then renamed).
    rows : int
        Valid rows to generate.
    seed : int, default 0
        Non-negative random seed; the same arguments give byte-identical files.
    bad_rows : int, default 0
        Malformed rows to mix in, cycling through :data:`BAD_KINDS`: missing required field
        (``consignee_name``, ``sku`` or ``shipment_id`` null), unparseable date, unknown country
        code, quantity not a positive integer (0, -3, "2.5", "abc"), unknown SKU, duplicate
        ``shipment_id`` with different content, and exact duplicate row. Each is placed right
        after a distinct valid row (while ``bad_rows <= rows``).
    chunk_rows : int, default 1_000_000
        Rows per written chunk: the Parquet row-group size and the progress step. The content of
        the file does not depend on it.
    listed_names : sequence of str or of (str, str), default ()
        Real restricted-party names, optionally paired with an ISO country code. A few
        consignees (about 0.5 % of the pool, at least ``min(5, len(names))``, each name used
        once) take these names and receive about 0.15 % of the rows. Their destination is the
        given code, else one inferred from place names and legal forms in the name (``Moscow``,
        ``OOO``, ``Shenzhen``, ``FZE``, country names ...), else a draw weighted towards CN, RU,
        HK and AE.
    start, end : datetime.date
        Range of ship dates of ``shipped`` rows.
    pending_days : int, default 45
        Days after ``end`` holding the ``pending`` rows (about 2 % of rows); 0 for none.
    fmt : {"parquet", "csv", "jsonl"}, optional
        Output format; by default from the suffix (``.csv``, ``.jsonl``/``.ndjson``), else Parquet.
    progress : callable, optional
        Called with the number of rows written so far (valid and bad) after each chunk.
    consignees : int, optional
        Size of the consignee pool (default: one per 200 rows, from 50 to 200,000); names may
        repeat in a large pool, so the distinct names can be a little fewer.

    Returns
    -------
    dict
        ``path``, ``format``, ``rows`` (valid rows), ``bad_rows``, ``rows_written``,
        ``bad_by_kind`` (kind -> count), ``expected_quarantined`` (bad rows plus the originals
        of conflicting duplicates, which a strict reader rejects too), ``shipped``, ``pending``,
        ``consignees``, ``listed_consignees``, ``columns``, ``column_types``, ``chunks``,
        ``seconds``.

    Raises
    ------
    ValueError
        Negative counts or seed, ``start`` after ``end``, unknown format, or bad rows without
        valid rows.

    Notes
    -----
    Column types: Parquet has ``ship_date`` as date32 and ``quantity`` as int64, other columns as
    nullable strings; with ``bad_rows > 0`` ``ship_date`` and ``quantity`` are strings too (ISO
    dates) so that malformed values can be stored. CSV is all text with empty fields for nulls;
    JSON Lines writes every key, ``null`` for empty fields and ``quantity`` as a number (the bad
    values 2.5 and "abc" as a float and a string).

    Valid rows have ids ``SHP-`` + 12 digits, their global row number, and are identical
    whatever ``bad_rows`` is. Malformed rows other than duplicates get
    ``SHP-<row>-B<j>``, which sorts right after the row they follow.

    Examples
    --------
    >>> import tempfile, pyarrow.parquet as pq
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     stats = generate_ledger(f"{folder}/l.parquet", 1000, seed=1, bad_rows=7)
    ...     table = pq.read_table(stats["path"])
    >>> stats["rows_written"], table.num_rows, stats["bad_by_kind"]["exact_duplicate"]
    (1007, 1007, 1)
    """
    started = time.perf_counter()
    path = Path(path)
    rows, bad_rows, chunk_rows, pending_days = int(rows), int(bad_rows), int(chunk_rows), int(pending_days)
    _check_counts(rows, bad_rows, chunk_rows, pending_days, seed)
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    kind = _format_of(path, fmt)
    plan = _make_plan(rows, int(seed), bad_rows, listed_names, start, end, pending_days, consignees=consignees)
    return _write_plan(plan, path, kind, bad_rows, chunk_rows, progress, started)


def _check_counts(rows: int, bad_rows: int, chunk_rows: int, pending_days: int, seed: int) -> None:
    if rows < 0 or bad_rows < 0 or pending_days < 0 or seed < 0:
        raise ValueError("rows, bad_rows, pending_days and seed must be non-negative")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")


def _write_plan(plan: _Plan, path: Path, kind: str, bad_rows: int, chunk_rows: int,
                progress: Callable[[int], None] | None, started: float) -> dict:
    """Write the rows of ``plan`` to ``path`` (via a temporary file) and return the run's statistics."""
    rows = plan.rows
    text = bad_rows > 0 or kind == "csv"
    schema = _text_schema() if (text and kind != "jsonl") else _typed_schema()
    json_pools = _JsonPools(plan) if kind == "jsonl" else None

    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    written, chunks = 0, 0
    buffered: list = []
    buffered_rows = 0

    if kind == "parquet":
        # Dictionary pages large enough for the consignee pool (~50k names at 10M rows): with the
        # 1 MiB default the writer falls back to plain strings, doubling file size and read time.
        writer = pq.ParquetWriter(tmp, schema, dictionary_pagesize_limit=DICTIONARY_PAGE_BYTES)
        close = writer.close
    elif kind == "csv":
        writer = pacsv.CSVWriter(tmp, schema)
        close = writer.close
    else:
        handle = open(tmp, "wb")
        close = handle.close

    def write(pieces: list, count: int) -> int:
        if kind == "parquet":
            writer.write_table(pa.concat_tables(pieces), row_group_size=count)
        elif kind == "csv":
            for piece in pieces:
                writer.write_table(piece)
        else:
            for piece in pieces:
                handle.write(_string_data(piece))
        return count

    # One background thread writes chunk i while the main thread generates chunk i + 1
    # (Arrow and NumPy release the GIL); at most one chunk is in flight.
    executor = ThreadPoolExecutor(max_workers=1)
    in_flight = None

    def settle() -> None:
        nonlocal in_flight, written, chunks
        if in_flight is not None:
            done, in_flight = in_flight, None
            written += done.result()
            chunks += 1
            if progress is not None:
                progress(written)

    def flush(count: int) -> None:
        """Hand the first ``count`` buffered rows to the writer as one chunk (one Parquet row group)."""
        nonlocal buffered_rows, in_flight
        pieces, need = [], count
        while need:
            head = buffered[0]
            if len(head) <= need:
                pieces.append(buffered.pop(0))
                need -= len(head)
            else:
                pieces.append(head.slice(0, need))
                buffered[0] = head.slice(need)
                need = 0
        buffered_rows -= count
        settle()
        in_flight = executor.submit(write, pieces, count)

    try:
        n_blocks = -(-rows // BLOCK_ROWS)
        for block in range(n_blocks):
            codes = _block_codes(plan, block)
            has_bad = bool(len(plan.bad_after))
            table = _block_table(plan, codes, text and kind != "jsonl") if kind != "jsonl" or has_bad else None
            part = _block_lines(plan, json_pools, codes) if kind == "jsonl" else table
            if has_bad:
                part = _with_bad_rows(plan, block, part, table, codes, kind, schema)
            buffered.append(part)
            buffered_rows += len(part)
            while buffered_rows >= chunk_rows:
                flush(chunk_rows)
        if buffered_rows:
            flush(buffered_rows)
        settle()
        if kind == "parquet" and chunks == 0:
            writer.write_table(schema.empty_table())
    except BaseException:
        if in_flight is not None:
            in_flight.exception()
        executor.shutdown()
        close()
        tmp.unlink(missing_ok=True)
        raise
    executor.shutdown()
    close()
    os.replace(tmp, path)

    counts = np.bincount(plan.bad_kinds, minlength=len(BAD_KINDS))
    bad_by_kind = {name: int(count) for name, count in zip(BAD_KINDS, counts)}
    pending = int(plan.day_ends[-1] - plan.day_ends[plan.shipped_days - 1]) if rows else 0
    return {
        "path": str(path), "format": kind, "rows": rows, "bad_rows": bad_rows, "rows_written": rows + bad_rows,
        "bad_by_kind": bad_by_kind,
        "expected_quarantined": bad_rows + bad_by_kind["conflicting_duplicate"],
        "shipped": rows - pending, "pending": pending,
        "consignees": plan.n_regular + plan.n_listed, "listed_consignees": plan.n_listed,
        "columns": list(COLUMNS),
        "column_types": {f.name: str(f.type) for f in schema} if kind != "jsonl" else None,
        "chunks": chunks, "seconds": round(time.perf_counter() - started, 3),
    }
