"""Malformed rows: derived from valid rows and inserted right after them, cycling through the bad kinds."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa

from pipeline.generate.plan import _Plan
from pipeline.generate.shape import BAD_KINDS, BLOCK_ROWS


_UNKNOWN_COUNTRIES = ("ZZ", "UK")
_UNKNOWN_SKUS = ("NVIDIA-H100", "ACME-TPU-9")
_BAD_QUANTITIES = (0, -3, 2.5, "abc")
_MISSING_FIELDS = ("consignee_name", "sku", "shipment_id")


def _bad_record(base: dict, kind: str, variant: int, bad_id: str, text: bool) -> dict:
    """One malformed row derived from valid row ``base`` (values as Python objects)."""
    row = dict(base)
    if kind not in ("conflicting_duplicate", "exact_duplicate"):
        row["shipment_id"] = bad_id
    if kind == "missing_field":
        row[_MISSING_FIELDS[variant % len(_MISSING_FIELDS)]] = None
    elif kind == "bad_date":
        day = dt.date.fromisoformat(str(base["ship_date"]))
        row["ship_date"] = (day.strftime("%d/%m/%Y"), f"{day.year}-02-30", "TBD")[variant % 3]
    elif kind == "unknown_country":
        row["destination_country"] = _UNKNOWN_COUNTRIES[variant % len(_UNKNOWN_COUNTRIES)]
    elif kind == "bad_quantity":
        row["quantity"] = _BAD_QUANTITIES[variant % len(_BAD_QUANTITIES)]
    elif kind == "unknown_sku":
        row["sku"] = _UNKNOWN_SKUS[variant % len(_UNKNOWN_SKUS)]
    elif kind == "conflicting_duplicate":
        row["quantity"] = int(base["quantity"]) + 8
    if text:
        row = {k: (None if v is None else str(v)) for k, v in row.items()}
    return row


def _bad_rows_for_block(plan: _Plan, block: int, table: pa.Table, codes: dict[str, np.ndarray],
                        text: bool) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """Malformed rows attached to this block: local insert positions, records, global bad indices."""
    first = block * BLOCK_ROWS
    lo, hi = np.searchsorted(plan.bad_after, [first, first + len(codes["row"])])
    if lo == hi:
        return np.zeros(0, np.int64), [], np.zeros(0, np.int64)
    local = plan.bad_after[lo:hi] - first
    bases = table.take(pa.array(local)).to_pylist()
    records = []
    for j, k, base in zip(range(lo, hi), local, bases):
        base["ship_date"] = str(base["ship_date"])
        base["quantity"] = int(codes["quantity"][k])
        kind = BAD_KINDS[plan.bad_kinds[j]]
        bad_id = f"SHP-{plan.id_offset + first + int(k):012d}-B{j:09d}"
        records.append(_bad_record(base, kind, j // len(BAD_KINDS), bad_id, text))
    return local, records, np.arange(lo, hi)


def _interleave_order(n: int, local: np.ndarray) -> np.ndarray:
    """Take order for ``[valid rows; bad rows]`` that puts bad row ``i`` right after valid row ``local[i]``."""
    keys = np.concatenate([np.arange(n, dtype=np.float64), local.astype(np.float64) + 0.5])
    return np.argsort(keys, kind="stable")


def _with_bad_rows(plan: _Plan, block: int, part, table: pa.Table, codes: dict[str, np.ndarray], kind: str,
                   schema: pa.Schema):
    """``part`` (a table, or JSON lines) with this block's malformed rows inserted in place."""
    jsonl = kind == "jsonl"
    local, records, bad_index = _bad_rows_for_block(plan, block, table, codes, text=not jsonl)
    if not records:
        return part
    if jsonl:
        lines = [part[int(k)].as_py() if BAD_KINDS[plan.bad_kinds[j]] == "exact_duplicate"
                 else json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
                 for record, j, k in zip(records, bad_index, local)]
        combined = pa.concat_arrays([part, pa.array(lines, type=pa.string())])
    else:
        combined = pa.concat_tables([part, pa.Table.from_pylist(records, schema=schema)])
    return combined.take(pa.array(_interleave_order(len(codes["row"]), local)))
