"""Valid rows of one generation block, from the block's own random stream: codes, table, JSON lines."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.generate.plan import _Plan
from pipeline.generate.pools import _EXPORT_HUBS
from pipeline.generate.shape import (_BLOCK, BLOCK_ROWS, EXPORT_ABROAD_SHARE, LICENSE_SHARE, LISTED_ROW_SHARE,
                                     MAX_QUANTITY, RECORDED, RECORDED_NLR_SHARE, VEU_SHARE)

_EXPORT_VALUES = pa.array(list(_EXPORT_HUBS) + [None], pa.string())
"""``export_country`` by code: the hubs, then null (the United States)."""
from pipeline.generate.strings import _compose, _join, _json_fragments


def _pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-cdf sampling: index of the category of each uniform draw ``u``."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def _block_codes(plan: _Plan, block: int) -> dict[str, np.ndarray]:
    """Integer codes for the valid rows of one block, from the block's own random stream."""
    first = block * BLOCK_ROWS
    n = min(BLOCK_ROWS, plan.rows - first)
    rng = np.random.default_rng([plan.seed, _BLOCK, block])
    row = np.arange(first, first + n, dtype=np.int64) + plan.id_offset  # the shipment_id number
    # Day of each row: rows are spread over days by the global table of rows per day.
    lo, hi = np.searchsorted(plan.day_ends, [first, first + n - 1], side="right") if n else (0, 0)
    ends = np.minimum(plan.day_ends[lo:hi + 1], first + n) - first
    day = np.repeat(np.arange(lo, hi + 1, dtype=np.int32), np.diff(ends, prepend=0))

    # Consignee: destination by weight, then a skewed pick within the destination's segment.
    dest = _pick(plan.dest_cdf, rng.random(n))
    within = np.searchsorted(plan.segment_cdf, dest + rng.random(n), side="right")
    consignee = np.clip(within, plan.segment_start[dest], plan.segment_end[dest] - 1)
    listed_u, listed_pick = rng.random(n), rng.integers(0, max(1, plan.n_listed), size=n)
    if plan.n_listed:
        consignee = np.where(listed_u < LISTED_ROW_SHARE, plan.n_regular + listed_pick, consignee)

    # SKU: period mix; China-like destinations mostly get the China-market SKUs (H20, some H200).
    period = plan.day_period[day]
    n_sku = len(plan.sku_names)
    sku = np.searchsorted(plan.sku_cdf, period + rng.random(n), side="right") - period * n_sku
    sku = np.clip(sku, 0, n_sku - 1)
    china_u = rng.random(n)
    china = plan.pool_china[consignee]
    for index, low, high in zip(plan.china_skus, np.r_[0.0, plan.china_cdf[:-1]], plan.china_cdf):
        if index >= 0:
            sku = np.where(china & (china_u >= low) & (china_u < high), index, sku)

    # Quantity: servers of 8 (heavy-tailed), a few loose units, some odd lots.
    kind_u = rng.random(n)
    servers = np.minimum(rng.zipf(1.8, size=n), MAX_QUANTITY // 8)
    loose = rng.integers(1, 9, size=n)
    odd = np.minimum(rng.zipf(1.6, size=n), MAX_QUANTITY)
    quantity = np.where(kind_u < 0.82, servers * 8, np.where(kind_u < 0.92, loose, odd)).astype(np.int64)

    exporter = _pick(plan.exporter_cdf, rng.random(n))
    has_license = rng.random(n) < LICENSE_SHARE
    has_veu = rng.random(n) < VEU_SHARE
    year = (np.datetime64(plan.start.isoformat(), "D") + day).astype("datetime64[Y]").astype(np.int64) + 1970
    # What the exporter recorded for shipped lines: its license, VEU, AIA for Tier-1 consignees,
    # otherwise LPP; a few lines claim NLR. Drawn last so the other columns keep their streams.
    recorded = np.where(has_license, RECORDED.index("LICENSE"), np.where(
        has_veu, RECORDED.index("VEU"), np.where(plan.pool_tier1[consignee], RECORDED.index("AIA"),
                                                 RECORDED.index("LPP"))))
    recorded = np.where(rng.random(n) < RECORDED_NLR_SHARE, RECORDED.index("NLR"), recorded)
    recorded = np.where(day >= plan.shipped_days, 0, recorded)
    # Export country (drawn after the others): a few rows leave from one of the exporter's two
    # foreign hubs, never into the hub's own country; the rest from the United States (null).
    abroad = rng.random(n) < EXPORT_ABROAD_SHARE
    hub = (exporter + rng.integers(0, 2, size=n)) % len(_EXPORT_HUBS)
    export = np.where(abroad & (hub != plan.pool_hub[consignee]), hub, len(_EXPORT_HUBS))
    return {"row": row, "day": day, "consignee": consignee, "sku": sku, "quantity": quantity,
            "exporter": exporter, "license": has_license, "veu": has_veu, "year": year, "recorded": recorded,
            "export": export}


def _block_table(plan: _Plan, codes: dict[str, np.ndarray], text: bool) -> pa.Table:
    """Arrow table of the valid rows of a block; ``text`` writes ship_date and quantity as strings."""
    n = len(codes["row"])
    day = pa.array(codes["day"])
    consignee = pa.array(codes["consignee"])
    pending = codes["day"] >= plan.shipped_days
    if text:
        ship_date = plan.date_text.take(day)
        quantity = pa.array(codes["quantity"]).cast(pa.string())
    else:
        epoch_days = codes["day"] + np.int32(plan.start_days)
        ship_date = pa.Array.from_buffers(pa.date32(), n, [None, pa.py_buffer(epoch_days)])
        quantity = pa.array(codes["quantity"], type=pa.int64())
    serial = plan.pool_serial[codes["consignee"]]
    columns = {
        "shipment_id": _compose([b"SHP-", (codes["row"], 12)], n),
        "ship_date": ship_date,
        "status": pa.array(["shipped", "pending"], type=pa.string()).take(pa.array(pending.astype(np.int8))),
        "exporter": plan.exporters.take(pa.array(codes["exporter"])),
        "export_country": _EXPORT_VALUES.take(pa.array(codes["export"])),
        "consignee_id": plan.pool["consignee_id"].take(consignee),
        "consignee_name": plan.pool["consignee_name"].take(consignee),
        "consignee_address": plan.pool["consignee_address"].take(consignee),
        "destination_country": plan.pool["destination_country"].take(consignee),
        "consignee_hq_country": plan.pool["consignee_hq_country"].take(consignee),
        "ultimate_parent_hq_country": plan.pool["ultimate_parent_hq_country"].take(consignee),
        "sku": plan.sku_names.take(pa.array(codes["sku"])),
        "quantity": quantity,
        "license_id": _compose([b"LIC-", (codes["year"] % 100, 2), b"-", (serial, 7)], n, codes["license"]),
        "veu_id": _compose([b"VEU-", (serial, 7)], n, codes["veu"]),
        "recorded_authorization": pa.array(RECORDED, pa.string()).take(pa.array(codes["recorded"])),
    }
    return pa.table(columns)


class _JsonPools:
    """Per-value JSON fragments, so JSON Lines are built by indexing, not by per-row encoding."""

    def __init__(self, plan: _Plan):
        self.date = _json_fragments("ship_date", plan.date_text)
        self.status = _json_fragments("status", pa.array(["shipped", "pending"]))
        self.exporter = _json_fragments("exporter", plan.exporters)
        self.export = _json_fragments("export_country", _EXPORT_VALUES)
        self.pool = {name: _json_fragments(name, values) for name, values in plan.pool.items()}
        self.sku = _json_fragments("sku", plan.sku_names)
        self.quantity = pa.array([f',"quantity":{q}' for q in range(MAX_QUANTITY + 1)], type=pa.string())


def _block_lines(plan: _Plan, json_pools: _JsonPools, codes: dict[str, np.ndarray]) -> pa.Array:
    """JSON Lines (with newlines) for the valid rows of a block."""
    n = len(codes["row"])
    consignee = pa.array(codes["consignee"])
    serial = plan.pool_serial[codes["consignee"]]
    license_id = pc.if_else(pa.array(codes["license"]),
                            _compose([b',"license_id":"LIC-', (codes["year"] % 100, 2), b"-", (serial, 7), b'"'], n),
                            ',"license_id":null')
    veu_id = pc.if_else(pa.array(codes["veu"]), _compose([b',"veu_id":"VEU-', (serial, 7), b'"'], n), ',"veu_id":null')
    pending = pa.array((codes["day"] >= plan.shipped_days).astype(np.int8))
    return _join(
        _compose([b'{"shipment_id":"SHP-', (codes["row"], 12), b'"'], n),
        json_pools.date.take(pa.array(codes["day"])),
        json_pools.status.take(pending),
        json_pools.exporter.take(pa.array(codes["exporter"])),
        json_pools.export.take(pa.array(codes["export"])),
        *(json_pools.pool[name].take(consignee) for name in (
            "consignee_id", "consignee_name", "consignee_address", "destination_country", "consignee_hq_country",
            "ultimate_parent_hq_country")),
        json_pools.sku.take(pa.array(codes["sku"])),
        json_pools.quantity.take(pa.array(codes["quantity"])),
        license_id, veu_id,
        pa.array([',"recorded_authorization":' + (f'"{r}"' if r else "null") + "}\n" for r in RECORDED],
                 pa.string()).take(pa.array(codes["recorded"])),
    )
