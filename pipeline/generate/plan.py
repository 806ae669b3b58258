"""The plan of one generation run: rows per day, consignee pool, SKU mix, bad-row positions.

Everything the blocks share; small (O(pool + days)) and independent of ``chunk_rows``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa

from pipeline.generate.consignees import _build_pool
from pipeline.generate.pools import (_CHINA_SKUS, _EXPORT_HUBS, _EXPORTERS, _HEAVY, _LIGHT, _RARE, _SKU_DEFAULT_WEIGHT,
                                     _SKU_WEIGHTS)
from pipeline.generate.shape import _BAD, _DAYS, _POOL, BAD_KINDS, NEXT_SHIPPED_SHARE, PENDING_SHARE, SKU_PERIODS
from pipeline.reference import load_catalog


def _destination_weights() -> tuple[list[str], np.ndarray]:
    """Destination codes and row shares: Zipf(1) over heavy then light codes, plus fixed rare shares."""
    codes = _HEAVY + _LIGHT
    ranks = np.arange(1, len(codes) + 1, dtype=np.float64)
    zipf = 1.0 / ranks
    zipf[len(_HEAVY):] *= 0.6
    zipf *= (1.0 - sum(_RARE.values())) / zipf.sum()
    weights = np.concatenate([zipf, np.array(list(_RARE.values()))])
    return codes + list(_RARE), weights / weights.sum()


@dataclass
class _Plan:
    """Everything shared by the blocks of one generation run (small: O(pool + days))."""

    rows: int
    seed: int
    start: dt.date
    day_ends: np.ndarray          # cumulative rows per day (int64), over shipped then pending days
    shipped_days: int
    day_period: np.ndarray        # SKU period per day
    date_text: pa.Array           # "YYYY-MM-DD" per day
    start_days: int               # start as days since 1970-01-01
    dest_cdf: np.ndarray
    segment_start: np.ndarray     # first pool index of each destination segment
    segment_end: np.ndarray
    segment_cdf: np.ndarray       # within-segment cdf, offset by segment number
    n_regular: int
    n_listed: int
    pool_serial: np.ndarray
    pool_china: np.ndarray
    pool_tier1: np.ndarray        # destination and HQ (if any) in Tier 1: shipments record AIA
    pool_hub: np.ndarray          # index of the destination in _EXPORT_HUBS (-1: none)
    pool: dict                    # column -> pa.Array over the consignee pool
    sku_names: pa.Array
    sku_cdf: np.ndarray           # per-period cdf, offset by period number
    china_skus: np.ndarray        # catalog index of each China-market SKU (-1: not in the catalog)
    china_cdf: np.ndarray         # upper bound of each one's share of China-like rows (cumulative)
    exporters: pa.Array
    exporter_cdf: np.ndarray
    bad_after: np.ndarray         # sorted global valid row after which bad row j is inserted
    bad_kinds: np.ndarray
    id_offset: int = 0            # number of the first row's shipment_id


def _day_counts(rng: np.random.Generator, rows: int, start: dt.date, end: dt.date,
                pending_days: int, pending_share: float = PENDING_SHARE) -> tuple[np.ndarray, int]:
    """Rows per calendar day: growth trend, weekday and month-end effects, noise; then a pending tail."""
    shipped_days = (end - start).days + 1
    pending_rows = int(round(rows * pending_share)) if pending_days > 0 else 0
    shipped_rows = rows - pending_rows
    offsets = np.arange(shipped_days + pending_days)
    dates = np.datetime64(start.isoformat(), "D") + offsets
    weekday = (dates.astype(np.int64) + 3) % 7          # 0 = Monday (1970-01-01 was a Thursday)
    weekday_factor = np.where(weekday == 5, 0.35, np.where(weekday == 6, 0.2, 1.0))
    next_month = (dates + 3).astype("datetime64[M]") != dates.astype("datetime64[M]")
    noise = rng.lognormal(0.0, 0.15, size=len(offsets))
    trend = 1.0 + 1.5 * offsets[:shipped_days] / max(1, shipped_days - 1)
    shipped = (trend * weekday_factor[:shipped_days] * np.where(next_month[:shipped_days], 1.3, 1.0)
               * noise[:shipped_days])
    counts = rng.multinomial(shipped_rows, shipped / shipped.sum())
    if pending_days > 0:
        tail = np.exp(-np.arange(pending_days) / 20.0) * weekday_factor[shipped_days:] * noise[shipped_days:]
        counts = np.concatenate([counts, rng.multinomial(pending_rows, tail / tail.sum())])
    return counts.astype(np.int64), shipped_days


def _sku_table(periods: int) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Catalog SKUs, their per-period cdf (offset by period) and the indices of the China-market SKUs."""
    skus = load_catalog()["sku"].tolist()
    w0 = np.array([_SKU_WEIGHTS.get(s, _SKU_DEFAULT_WEIGHT)[0] for s in skus], dtype=np.float64)
    w1 = np.array([_SKU_WEIGHTS.get(s, _SKU_DEFAULT_WEIGHT)[1] for s in skus], dtype=np.float64)
    t = np.linspace(0.0, 1.0, periods)[:, None]
    weights = w0 + (w1 - w0) * t
    cdf = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True) + np.arange(periods)[:, None]
    china = np.array([skus.index(sku) if sku in skus else -1 for sku, _ in _CHINA_SKUS], dtype=np.int64)
    return pa.array(skus, type=pa.string()), cdf.ravel(), china


def _make_plan(rows: int, seed: int, bad_rows: int, listed_names: Sequence[str], start: dt.date,
               end: dt.date, pending_days: int, *, known: dict | None = None,
               consignees: int | None = None) -> _Plan:
    """Pools, day table and bad-row positions for one run; independent of ``chunk_rows``.

    ``known`` (from :func:`_ledger_facts`) continues an existing ledger: its consignee pool and
    destination shares, ids after its own, the SKU mix of the end of the drift, mostly pending rows.
    ``consignees`` sizes the consignee pool (default: one per 200 rows, 50 to 200,000).
    """
    if known is None:
        dest_codes, dest_weights = _destination_weights()
        size = min(200_000, max(50, rows // 200)) if consignees is None else max(1, int(consignees))
        pool = _build_pool(np.random.default_rng([seed, _POOL]), size, listed_names, dest_codes, dest_weights)
        pending_share, id_offset = PENDING_SHARE, 0
    else:
        dest_weights, pool = known["dest_weights"], known["pool"]
        pending_share, id_offset = 1.0 - NEXT_SHIPPED_SHARE, known["next_id"]
    counts, shipped_days = _day_counts(np.random.default_rng([seed, _DAYS]), rows, start, end, pending_days,
                                       pending_share)
    total_days = len(counts)
    day_period = np.minimum(np.arange(total_days) * SKU_PERIODS // max(1, shipped_days), SKU_PERIODS - 1)
    if known is not None:
        day_period[:] = SKU_PERIODS - 1
    date_text = pa.array([(start + dt.timedelta(days=int(i))).isoformat() for i in range(total_days)],
                         type=pa.string())
    sku_names, sku_cdf, china_skus = _sku_table(SKU_PERIODS)
    exporter_weight = np.array([w for _, w in _EXPORTERS], dtype=np.float64)
    bad_rng = np.random.default_rng([seed, _BAD])
    if bad_rows and rows < 1:
        raise ValueError("bad_rows needs at least one valid row to attach to")
    if bad_rows <= rows:
        bad_after = np.sort(bad_rng.choice(rows, size=bad_rows, replace=False)) if bad_rows else np.zeros(0, np.int64)
    else:
        bad_after = np.sort(bad_rng.integers(0, rows, size=bad_rows))
    return _Plan(
        rows=rows, seed=seed, start=start, day_ends=np.cumsum(counts), shipped_days=shipped_days,
        day_period=day_period, date_text=date_text, start_days=(start - dt.date(1970, 1, 1)).days,
        dest_cdf=np.cumsum(dest_weights) / dest_weights.sum(), segment_start=pool["segment_start"],
        segment_end=pool["segment_end"], segment_cdf=pool["segment_cdf"], n_regular=pool["n_regular"],
        n_listed=pool["n_listed"], pool_serial=pool["serial"], pool_china=pool["china"],
        pool_tier1=_tier1_consignees(pool["pool"]), pool_hub=_hub_of(pool["pool"]["destination_country"]),
        pool=pool["pool"],
        sku_names=sku_names, sku_cdf=sku_cdf, china_skus=china_skus,
        china_cdf=np.cumsum([share for _, share in _CHINA_SKUS]),
        exporters=pa.array([name for name, _ in _EXPORTERS], type=pa.string()),
        exporter_cdf=np.cumsum(exporter_weight) / exporter_weight.sum(),
        bad_after=bad_after.astype(np.int64), bad_kinds=np.arange(bad_rows) % len(BAD_KINDS), id_offset=id_offset,
    )


def _tier1_consignees(pool: dict) -> np.ndarray:
    """Consignees whose destination, and HQ if given, are Tier 1 of the IFR (they record AIA)."""
    from pipeline.policy import load_policy

    tier1 = set(load_policy("ai-diffusion-2025").get("tiers.tier1"))
    destination = pool["destination_country"].to_pylist()
    headquarters = pool["consignee_hq_country"].to_pylist()
    return np.array([d in tier1 and (h is None or h in tier1) for d, h in zip(destination, headquarters)], dtype=bool)


def _hub_of(destination: pa.Array) -> np.ndarray:
    """Per consignee: the index of its destination in ``_EXPORT_HUBS``, or -1."""
    return np.array([_EXPORT_HUBS.index(code) if code in _EXPORT_HUBS else -1 for code in destination.to_pylist()],
                    dtype=np.int64)
