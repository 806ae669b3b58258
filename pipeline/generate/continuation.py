"""Continuing a ledger (:func:`generate_next`): the next night after an existing ledger.

Dates after its last row, ids continuing its numbering, its consignees; mostly ``pending`` rows.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.generate.ledger import _check_counts, _format_of, _write_plan
from pipeline.generate.plan import _make_plan
from pipeline.generate.pools import _CHINA_LIKE
from pipeline.generate.shape import ID_NUMBER
from pipeline.ingest.schema import DATE_MAX


def _ledger_facts(after: Path) -> dict:
    """What continuing ``after`` needs: its last date, the next free id number, its consignees.

    The consignee pool is the ledger's valid rows' distinct (destination, name, id, HQ, parent HQ),
    each with its row count as weight (destinations weighted by their rows), addresses as first seen.
    """
    from pipeline.ingest import read_ledger_file, read_ledgers

    ledger = read_ledgers([after])  # LedgerReadError for a missing or unreadable file
    valid = ledger.rows
    if valid.num_rows == 0:
        raise ValueError(f"{after}: no valid rows to continue")
    last = pc.max(valid.column("ship_date")).as_py()
    ids = pa.chunked_array(list(valid.column("shipment_id").chunks) + list(
        pc.utf8_trim_whitespace(ledger.quarantine.column("shipment_id").cast(pa.string())).chunks), pa.string())
    ids = pc.drop_null(ids)
    numbered = ids.filter(pc.match_substring_regex(ids, ID_NUMBER))
    top = pc.max(pc.cast(pc.utf8_slice_codeunits(numbered, 4, 16), pa.int64())).as_py() if len(numbered) else None
    next_id = 0 if top is None else top + 1

    keys = ["destination_country", "consignee_name", "consignee_id", "consignee_hq_country",
            "ultimate_parent_hq_country"]
    groups = pa.table({k: valid.column(k).cast(pa.string()) for k in keys}).group_by(
        keys, use_threads=False).aggregate([([], "count_all")])
    groups = groups.sort_by([("destination_country", "ascending"), ("count_all", "descending"),
                             ("consignee_name", "ascending"), ("consignee_id", "ascending"),
                             ("consignee_hq_country", "ascending"), ("ultimate_parent_hq_country", "ascending")])
    count = groups.column("count_all").to_numpy().astype(np.float64)
    dest_codes, dest_index = np.unique(groups.column("destination_country").to_numpy(zero_copy_only=False),
                                       return_inverse=True)
    per_dest = np.bincount(dest_index, minlength=len(dest_codes))
    dest_rows = np.bincount(dest_index, weights=count, minlength=len(dest_codes))
    segment_end = np.cumsum(per_dest)
    segment_start = segment_end - per_dest
    cumulative = np.cumsum(count)
    before = np.concatenate([[0.0], cumulative[segment_end - 1]])
    segment_cdf = (cumulative - before[dest_index]) / np.diff(before)[dest_index] + dest_index

    names = groups.column("consignee_name").to_pylist()
    addresses = _first_addresses(after, read_ledger_file)
    pool = {
        "consignee_id": groups.column("consignee_id").combine_chunks(),
        "consignee_name": groups.column("consignee_name").combine_chunks(),
        "consignee_address": pa.array([addresses.get((name, code)) for name, code in
                                       zip(names, dest_codes[dest_index])], pa.string()),
        "destination_country": groups.column("destination_country").combine_chunks(),
        "consignee_hq_country": groups.column("consignee_hq_country").combine_chunks(),
        "ultimate_parent_hq_country": groups.column("ultimate_parent_hq_country").combine_chunks(),
    }
    digits = [m.group(1) if (m := re.fullmatch(r"C-(\d{7})", cid or "")) else None
              for cid in groups.column("consignee_id").to_pylist()]
    serial = np.array([int(d) if d else 1_000_000 + i % 9_000_000 for i, d in enumerate(digits)], np.int64)
    return {
        "last_date": last, "next_id": next_id, "dest_weights": dest_rows / dest_rows.sum(),
        "pool": {"pool": pool, "serial": serial, "china": np.isin(dest_codes[dest_index], _CHINA_LIKE),
                 "segment_start": segment_start, "segment_end": segment_end, "segment_cdf": segment_cdf,
                 "n_regular": len(names), "n_listed": 0},
    }


def _first_addresses(path: Path, read_ledger_file) -> dict:
    """``(consignee_name, destination_country)`` -> the first address given for them (names trimmed)."""
    if path.name.lower().endswith((".parquet", ".pq")):
        table = pq.read_table(path, columns=[c for c in ("consignee_name", "destination_country", "consignee_address")
                                             if c in pq.read_schema(path).names])
    else:
        table = read_ledger_file(path).table
    if "consignee_address" not in table.column_names:
        return {}
    text = {name: pc.utf8_trim_whitespace(table.column(name).cast(pa.string()))
            for name in ("consignee_name", "destination_country", "consignee_address")}
    text["destination_country"] = pc.utf8_upper(text["destination_country"])
    first = pa.table(text).group_by(["consignee_name", "destination_country"], use_threads=False).aggregate(
        [("consignee_address", "first")])
    return {(name, code): address for name, code, address in zip(
        *(first.column(c).to_pylist() for c in ("consignee_name", "destination_country", "consignee_address_first")))}


def generate_next(path, after, rows: int, *, seed: int = 0, bad_rows: int = 0, days: int = 1,
                  pending_days: int = 14, chunk_rows: int = 1_000_000, fmt: str | None = None,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Write the next night of an existing ledger: later dates, new ids, the same consignees.

    Parameters
    ----------
    path : str or path-like
        File to write, as in :func:`generate_ledger`.
    after : str or path-like
        The ledger to continue (Parquet, CSV or JSON Lines), e.g. the history already in a lake.
    rows : int
        Valid rows to generate.
    seed : int, default 0
    bad_rows : int, default 0
        Malformed rows to mix in, as in :func:`generate_ledger`.
    days : int, default 1
        Days after the last ``ship_date`` of ``after`` holding the ``shipped`` rows (about
        :data:`NEXT_SHIPPED_SHARE` of them).
    pending_days : int, default 14
        Days after those holding the ``pending`` rows (the rest); 0 makes every row shipped.
    chunk_rows, fmt, progress
        As in :func:`generate_ledger`.

    Returns
    -------
    dict
        The statistics of :func:`generate_ledger`, plus ``after`` (the file), ``after_last_date``,
        ``first_id`` (the first new ``shipment_id``), ``first_date`` and ``last_date``.

    Raises
    ------
    pipeline.ingest.LedgerReadError
        ``after`` is missing or cannot be read as a ledger.
    ValueError
        Bad counts, ``after`` without valid rows, ids past ``SHP-999999999999``, or dates past
        :data:`~pipeline.ingest.DATE_MAX` (the last accepted ``ship_date``).

    Notes
    -----
    Ids continue the numbering: ``SHP-`` + 12 digits, from one past the highest number in any
    ``SHP-<12 digits>`` id of ``after`` (valid or not), so they cannot collide with its ids.
    Consignees (name, id, destination, HQ, parent HQ, address) are those of the valid rows of ``after``,
    drawn with their weight there, so the new rows add to the same LPP and allocation totals.
    The SKU mix is that of the end of :func:`generate_ledger`'s drift.
    """
    started = time.perf_counter()
    path, after = Path(path), Path(after)
    rows, bad_rows, chunk_rows, pending_days, days = int(rows), int(bad_rows), int(chunk_rows), int(pending_days), int(days)
    _check_counts(rows, bad_rows, chunk_rows, pending_days, seed)
    if days < 1:
        raise ValueError("days must be at least 1")
    kind = _format_of(path, fmt)
    known = _ledger_facts(after)
    if known["next_id"] + rows > 10 ** 12:
        raise ValueError(f"{after}: no room for {rows:,} more ids after SHP-{known['next_id'] - 1:012d}")
    room = (DATE_MAX - known["last_date"]).days  # the new dates: last + 1 .. last + days + pending_days
    if days + pending_days > room:
        raise ValueError(f"{after}: its last ship_date is {known['last_date']}; {days} shipped and {pending_days} "
                         f"pending day(s) after it pass {DATE_MAX}, the last ship_date a ledger may hold "
                         f"({room} day(s) left)")
    start = known["last_date"] + dt.timedelta(days=1)
    end = start + dt.timedelta(days=days - 1)
    plan = _make_plan(rows, int(seed), bad_rows, (), start, end, pending_days, known=known)
    stats = _write_plan(plan, path, kind, bad_rows, chunk_rows, progress, started)
    first_day, last_day = np.searchsorted(plan.day_ends, [0, max(0, rows - 1)], side="right")
    stats.update(after=str(after), after_last_date=known["last_date"].isoformat(),
                 first_id=f"SHP-{known['next_id']:012d}",
                 first_date=(start + dt.timedelta(days=int(first_day))).isoformat() if rows else None,
                 last_date=(start + dt.timedelta(days=int(last_day))).isoformat() if rows else None)
    return stats
