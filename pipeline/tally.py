"""What a screening run reports, counted piece by piece and merged (DESIGN §6).

A :class:`Tally` holds the mergeable facts behind ``summary.json`` and the report's charts:
decision counts per destination and status, cap use per allocation (the running total before
the first line over the cap, lines over, month-end running totals) and LPP crossings per month.
Tallies of consecutive pieces (chunks, Dask partitions, nightly increments) merge into the
tally of the whole; the totals after the last piece come from its :class:`~pipeline.carry.Carry`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.carry import Carry
from pipeline.decide import DECISIONS, Allocation, Decisions
from pipeline.enrich import codes_and_values


EPOCH_DAY = np.datetime64("1970-01-01", "D")


def _month_text(month: int) -> str:
    """``YYYY-MM`` of a month index (:func:`_months`)."""
    return f"{1970 + month // 12:04d}-{month % 12 + 1:02d}"


def _months(days: np.ndarray) -> np.ndarray:
    """Month index (``(year - 1970) * 12 + month - 1``) of day numbers."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


VOLUME_INDEX = ["key", "month", "side"]
LICENSE_MONTH_INDEX = ["key", "month", "side"]
VOLUME_SHOWN = 200
"""(Exporter, SKU) keys of the China volume condition given in full in the summary: those with the
least headroom."""
LICENSES_SHOWN = 1000
"""Licenses given in full in the summary: those nearest their limits (all are counted)."""
UNKNOWN_SHOWN = 100
"""License ids not in the register listed in the summary (those on the most lines); all are counted."""
NOT_COVERED_CODES = ("LICENSE_UNKNOWN", "LICENSE_NOT_YET_VALID", "LICENSE_EXPIRED", "LICENSE_OUT_OF_SCOPE")
FLAGGED_CODES = ("BEFORE_TIMELINE", "PARTY_BEFORE_LISTING")
"""Informational reason codes whose rows the report counts."""


def _month_ends(keys: np.ndarray, months: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (key, month) present, the last value in row order (running totals: the month-end total)."""
    span = int(months.max()) + 1
    key_month = keys.astype(np.int64) * span + months
    order = np.argsort(key_month, kind="stable")
    ends = np.flatnonzero(np.append(key_month[order][1:] != key_month[order][:-1], True))
    key_of, month_of = np.divmod(key_month[order[ends]], span)
    return key_of, month_of, values[order[ends]]


def _volume(result: Decisions, days: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Month-end China and US totals per volume key, and the lines over the share."""
    found = result.accumulators.get("china_volume")
    if found is None:
        return _sum([], VOLUME_INDEX), _sum([], ["key"])
    texts = np.asarray(result.volume_keys, dtype=object)
    parts = []
    for side, keys, cumulative in (("cn", found.keys, found.cumulative), ("us", found.base_keys, found.base_cumulative)):
        rows = np.flatnonzero(cumulative >= 0)
        if not len(rows):
            continue
        key_of, month_of, value = _month_ends(keys[rows], _months(days[rows]), cumulative[rows])
        parts.append(pd.Series(value.astype(np.int64), index=pd.MultiIndex.from_arrays(
            [texts[key_of], month_of, np.full(len(key_of), side, dtype=object)], names=VOLUME_INDEX)))
    over = np.flatnonzero(result.volume_over)
    rows_over = _sum([], ["key"])
    if len(over):
        key, count = np.unique(found.keys[over], return_counts=True)
        rows_over = pd.Series(count.astype(np.int64), index=pd.Index(texts[key], name="key"))
    return _sum(parts, VOLUME_INDEX), rows_over


def _licenses(rows: pa.Table, result: Decisions, days: np.ndarray, tpp: np.ndarray) -> dict:
    """The license parts of a tally (see :class:`Tally`)."""
    out = {}
    units_found = result.accumulators.get("license_units")
    if units_found is not None:
        ids = np.asarray(result.license_ids, dtype=object)
        keys = result.license_keys
        drawing = np.flatnonzero(keys >= 0)
        units = rows.column("quantity").to_numpy().astype(np.int64, copy=False)
        sides = (("units", result.license_cum_units, units), ("tpp", result.license_cum_tpp, tpp))
        if len(drawing):
            key_of = keys[drawing]
            first = pd.Series(days[drawing].astype(np.int64)).groupby(key_of).min()
            last = pd.Series(days[drawing].astype(np.int64)).groupby(key_of).max()
            out["license_days"] = pd.concat([
                pd.Series(first.to_numpy(), index=pd.MultiIndex.from_arrays(
                    [ids[first.index.to_numpy()], ["first"] * len(first)], names=["key", "side"])),
                pd.Series(last.to_numpy(), index=pd.MultiIndex.from_arrays(
                    [ids[last.index.to_numpy()], ["last"] * len(last)], names=["key", "side"]))]).astype(np.int64)
            parts = []
            for side, cumulative, _ in sides:
                key, month, value = _month_ends(key_of, _months(days[drawing]), cumulative[drawing])
                parts.append(pd.Series(value.astype(np.int64), index=pd.MultiIndex.from_arrays(
                    [ids[key], month, np.full(len(key), side, dtype=object)], names=LICENSE_MONTH_INDEX)))
            out["license_by_month"] = _sum(parts, LICENSE_MONTH_INDEX)
        over = np.flatnonzero(result.license_over)
        if len(over):
            over_keys, first_row, count = np.unique(keys[over], return_index=True, return_counts=True)
            row = over[first_row]
            out["license_rows_over"] = pd.Series(count.astype(np.int64), index=pd.Index(ids[over_keys], name="key"))
            out["license_before_crossing"] = pd.concat([
                pd.Series((cumulative[row] - amount[row]).astype(np.int64), index=pd.MultiIndex.from_arrays(
                    [ids[over_keys], [side] * len(row)], names=["key", "side"]))
                for side, cumulative, amount in sides])
    parts = []
    if "license_id" in rows.column_names:
        written = rows.column("license_id")
        for code in NOT_COVERED_CODES:
            hit = np.flatnonzero(result.with_reason(code))
            if len(hit):
                counts = pd.Series(written.take(pa.array(hit)).to_pandas().astype(object).to_numpy()).value_counts()
                parts.append(pd.Series(counts.to_numpy(np.int64), index=pd.MultiIndex.from_arrays(
                    [counts.index.to_numpy(dtype=object), [code] * len(counts)], names=["key", "code"])))
    out["license_not_covered"] = _sum(parts, ["key", "code"])
    return out


def _min_max_days(parts: list[pd.Series]) -> pd.Series:
    """Merge first/last days: the earliest first and the latest last."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return _sum([], ["key", "side"])
    stacked = pd.concat(parts)
    first = stacked[stacked.index.get_level_values("side") == "first"].groupby(level=["key", "side"]).min()
    last = stacked[stacked.index.get_level_values("side") == "last"].groupby(level=["key", "side"]).max()
    return pd.concat([first, last]).sort_index().astype(np.int64)


def _first(parts: list[pd.Series], names: list[str]) -> pd.Series:
    """Per key, the value of the earliest part that has it (pieces in screening order)."""
    out = _sum([], names)
    for part in parts:
        if len(part):
            out = out.combine_first(part) if len(out) else part
    return out.astype(np.int64)


def _max(parts: list[pd.Series], names: list[str]) -> pd.Series:
    """Per-key maximum (running totals of consecutive pieces: the later, larger one)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return _sum([], names)
    return pd.concat(parts).groupby(level=names, sort=True).max().astype(np.int64)


def _sum(parts: list[pd.Series], names: list[str]) -> pd.Series:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.Series([], dtype=np.int64, index=pd.MultiIndex.from_arrays([[]] * len(names), names=names)
                         if len(names) > 1 else pd.Index([], name=names[0]))
    return pd.concat(parts).groupby(level=names, sort=True).sum().astype(np.int64)


@dataclass
class Tally:
    """Mergeable counts of a screened piece.

    Attributes
    ----------
    decisions : pandas.Series of int64
        Rows per (``destination``, ``status``, ``decision``), decision as its name.
    tpp_total : int
    allocations : dict of str to Allocation
        The allocation keys of the rule set, by label.
    allocated_before_crossing : pandas.Series of int64
        Per allocation label that crossed its cap: the running total before the first line over it.
    exceeded_rows : pandas.Series of int64
        Lines over the cap per allocation label.
    allocation_by_month : pandas.Series of int64
        Running allocation total at the end of each month with candidates, by (label, month).
    lpp_limit : int or None
    lpp_rows_over : int
    lpp_crossings_by_month : pandas.Series of int64
        Consignee-years whose running total crossed the LPP limit, per month.
    volume_by_month : pandas.Series of int64
        China volume condition: the running totals at the end of each month with rows of the key,
        by (``key`` ``<sku>|<exporter>``, ``month``, ``side`` ``cn`` or ``us``).
    volume_rows_over : pandas.Series of int64
        Licensed China lines over the share, per key.
    volume_share : int or None
        The rule set's ``max_share_percent`` (None: no volume condition).
    volume_unit : str or None
    flagged_rows : pandas.Series of int64
        Rows carrying each informational reason code (``BEFORE_TIMELINE``, ``PARTY_BEFORE_LISTING``).
    license_days : pandas.Series of int64
        First and last day a license was drawn on, by (``key`` license_id, ``side`` ``first``/``last``).
    license_by_month : pandas.Series of int64
        Month-end running totals per license, by (``key``, ``month``, ``side`` ``units``/``tpp``).
    license_before_crossing : pandas.Series of int64
        Per exhausted license: the totals before its first line over, by (``key``, ``side``).
    license_rows_over : pandas.Series of int64
        Lines over their license's maximum, per license.
    license_not_covered : pandas.Series of int64
        Licensed lines the register did not let their license cover, by (``key`` license_id as
        written, ``code`` the reason).
    """

    decisions: pd.Series
    tpp_total: int
    allocations: dict[str, Allocation] = field(default_factory=dict)
    allocated_before_crossing: pd.Series = field(default_factory=lambda: _sum([], ["allocation"]))
    exceeded_rows: pd.Series = field(default_factory=lambda: _sum([], ["allocation"]))
    allocation_by_month: pd.Series = field(default_factory=lambda: _sum([], ["allocation", "month"]))
    lpp_limit: int | None = None
    lpp_rows_over: int = 0
    lpp_crossings_by_month: pd.Series = field(default_factory=lambda: _sum([], ["month"]))
    volume_by_month: pd.Series = field(default_factory=lambda: _sum([], VOLUME_INDEX))
    volume_rows_over: pd.Series = field(default_factory=lambda: _sum([], ["key"]))
    volume_share: int | None = None
    volume_unit: str | None = None
    flagged_rows: pd.Series = field(default_factory=lambda: _sum([], ["code"]))
    license_days: pd.Series = field(default_factory=lambda: _sum([], ["key", "side"]))
    license_by_month: pd.Series = field(default_factory=lambda: _sum([], LICENSE_MONTH_INDEX))
    license_before_crossing: pd.Series = field(default_factory=lambda: _sum([], ["key", "side"]))
    license_rows_over: pd.Series = field(default_factory=lambda: _sum([], ["key"]))
    license_not_covered: pd.Series = field(default_factory=lambda: _sum([], ["key", "code"]))

    @classmethod
    def empty(cls) -> "Tally":
        """The tally of no rows."""
        return cls(decisions=_sum([], ["destination", "status", "decision"]), tpp_total=0)

    @classmethod
    def of(cls, rows: pa.Table, result: Decisions, tpp: np.ndarray) -> "Tally":
        """Tally of screened rows.

        Parameters
        ----------
        rows : pyarrow.Table
            The ledger rows, in screening order (``destination_country``, ``status``, ``ship_date``).
        result : Decisions
            Their decisions (running totals include any carry-in).
        tpp : ndarray of int64
            TPP per row.
        """
        dest_codes, dest_values = codes_and_values(rows.column("destination_country"))
        status_codes, status_values = codes_and_values(rows.column("status"))
        n_dec = len(DECISIONS)
        combined = (dest_codes.astype(np.int64) * len(status_values) + status_codes) * n_dec + result.decision
        values, counts = np.unique(combined, return_counts=True)
        pair, decision = np.divmod(values, n_dec)
        dest, status = np.divmod(pair, max(len(status_values), 1))
        decisions = pd.Series(counts.astype(np.int64), index=pd.MultiIndex.from_arrays(
            [np.asarray(dest_values, dtype=object)[dest], np.asarray(status_values, dtype=object)[status],
             np.asarray(DECISIONS, dtype=object)[decision]], names=["destination", "status", "decision"]))

        days = rows.column("ship_date").cast(pa.int32()).to_numpy() if rows.num_rows else np.zeros(0, np.int32)
        labels = np.asarray([a.label for a in result.allocations], dtype=object)
        keys, cum = result.allocation_keys, result.country_cum_tpp
        candidate = np.flatnonzero(keys >= 0)
        over = np.flatnonzero(result.allocation_over)
        first_over = _sum([], ["allocation"])
        exceeded = _sum([], ["allocation"])
        if len(over):
            over_keys, first, count = np.unique(keys[over], return_index=True, return_counts=True)
            rows_first = over[first]
            first_over = pd.Series((cum[rows_first] - tpp[rows_first]).astype(np.int64),
                                   index=pd.Index(labels[over_keys], name="allocation"))
            exceeded = pd.Series(count.astype(np.int64), index=pd.Index(labels[over_keys], name="allocation"))
        by_month = _sum([], ["allocation", "month"])
        if len(candidate):
            months = _months(days[candidate])
            key_month = keys[candidate] * (int(months.max()) + 1) + months  # months are >= 0 after 1970
            # Running totals only grow: the month-end total is the last one of each (key, month).
            order = np.argsort(key_month, kind="stable")
            ends = np.flatnonzero(np.append(key_month[order][1:] != key_month[order][:-1], True))
            last = candidate[order[ends]]
            key_of, month_of = np.divmod(key_month[order[ends]], int(months.max()) + 1)
            by_month = pd.Series(cum[last].astype(np.int64), index=pd.MultiIndex.from_arrays(
                [labels[key_of], month_of], names=["allocation", "month"]))

        lpp_over = 0
        crossings = _sum([], ["month"])
        if result.lpp_limit is not None:
            lpp_cum = result.lpp_cum_tpp
            lpp_over = int(np.count_nonzero(lpp_cum > result.lpp_limit))
            crossing = (lpp_cum > result.lpp_limit) & (lpp_cum - tpp <= result.lpp_limit)
            month, count = np.unique(_months(days[crossing]), return_counts=True)
            crossings = pd.Series(count.astype(np.int64), index=pd.Index(month, name="month"))
        volume_by_month, volume_over = _volume(result, days)
        flagged = {code: int(np.count_nonzero(result.with_reason(code))) for code in FLAGGED_CODES}
        volume = result.accumulators.get("china_volume")
        licenses = _licenses(rows, result, days, tpp)
        return cls(**licenses, decisions=decisions, tpp_total=int(tpp.sum()) if len(tpp) else 0,
                   allocations={a.label: a for a in result.allocations},
                   allocated_before_crossing=first_over, exceeded_rows=exceeded, allocation_by_month=by_month,
                   lpp_limit=result.lpp_limit, lpp_rows_over=lpp_over, lpp_crossings_by_month=crossings,
                   volume_by_month=volume_by_month, volume_rows_over=volume_over,
                   volume_share=result.volume_share if volume is not None else None,
                   volume_unit=result.volume_unit if volume is not None else None,
                   flagged_rows=pd.Series({c: n for c, n in flagged.items() if n}, dtype=np.int64).rename_axis("code"))

    @classmethod
    def merge(cls, tallies: list["Tally"]) -> "Tally":
        """The tally of consecutive pieces, given in screening order."""
        if not tallies:
            raise ValueError("nothing to merge")
        first_crossing = pd.Series([], dtype=np.int64, index=pd.Index([], name="allocation"))
        for t in tallies:  # the earliest piece with a crossing fixes what was allocated before it
            first_crossing = first_crossing.combine_first(t.allocated_before_crossing) if len(first_crossing) \
                else t.allocated_before_crossing
        months = [t.allocation_by_month for t in tallies if len(t.allocation_by_month)]
        by_month = (pd.concat(months).groupby(level=["allocation", "month"], sort=True).max().astype(np.int64)
                    if months else tallies[0].allocation_by_month)
        allocations: dict[str, Allocation] = {}
        for t in tallies:
            allocations.update(t.allocations)
        return cls(
            decisions=_sum([t.decisions for t in tallies], ["destination", "status", "decision"]),
            tpp_total=sum(t.tpp_total for t in tallies), allocations=allocations,
            allocated_before_crossing=first_crossing.astype(np.int64),
            exceeded_rows=_sum([t.exceeded_rows for t in tallies], ["allocation"]),
            allocation_by_month=by_month,
            lpp_limit=next((t.lpp_limit for t in tallies if t.lpp_limit is not None), None),
            lpp_rows_over=sum(t.lpp_rows_over for t in tallies),
            lpp_crossings_by_month=_sum([t.lpp_crossings_by_month for t in tallies], ["month"]),
            volume_by_month=_max([t.volume_by_month for t in tallies], VOLUME_INDEX),
            volume_rows_over=_sum([t.volume_rows_over for t in tallies], ["key"]),
            volume_share=next((t.volume_share for t in tallies if t.volume_share is not None), None),
            volume_unit=next((t.volume_unit for t in tallies if t.volume_unit is not None), None),
            flagged_rows=_sum([t.flagged_rows for t in tallies], ["code"]),
            license_days=_min_max_days([t.license_days for t in tallies]),
            license_by_month=_max([t.license_by_month for t in tallies], LICENSE_MONTH_INDEX),
            license_before_crossing=_first([t.license_before_crossing for t in tallies], ["key", "side"]),
            license_rows_over=_sum([t.license_rows_over for t in tallies], ["key"]),
            license_not_covered=_sum([t.license_not_covered for t in tallies], ["key", "code"]),
        )

    # ------------------------------------------------------------------ summary.json parts
    def decision_counts(self) -> dict:
        """Rows per decision, in decision order, zeros left out."""
        counts = self.decisions.groupby(level="decision").sum()
        return {name: int(counts[name]) for name in DECISIONS if counts.get(name, 0)}

    def by_status(self) -> dict:
        """Rows per decision for each status."""
        table = self.decisions.groupby(level=["status", "decision"]).sum()
        return {status: {name: int(table[(status, name)]) for name in DECISIONS if table.get((status, name), 0)}
                for status in table.index.get_level_values("status").unique()}

    def by_destination(self) -> dict:
        """Rows per decision for each destination, the busiest destination first."""
        table = self.decisions.groupby(level=["destination", "decision"]).sum()
        totals = table.groupby(level="destination").sum()
        order = sorted(totals.index, key=lambda d: (-int(totals[d]), d))
        return {d: {name: int(table[(d, name)]) for name in DECISIONS if table.get((d, name), 0)} for d in order}

    def headroom(self, carry: Carry) -> list[dict]:
        """Cap use per allocation with candidates: allocated (within cap), requested, remaining.

        ``carry`` holds the totals after the last row (what was requested in all).
        """
        out = []
        for label, total in carry.allocation.items():
            if total == 0 or label not in self.allocations:
                continue
            allocation = self.allocations[label]
            allocated = int(self.allocated_before_crossing.get(label, total))
            out.append({
                "destination": allocation.destination, "allocation": label,
                "window_start": allocation.window_start, "window_end": allocation.window_end,
                "cap_tpp": allocation.cap_tpp, "allocated_tpp": allocated, "requested_tpp": int(total),
                "remaining_tpp": allocation.cap_tpp - allocated, "exceeded_rows": int(self.exceeded_rows.get(label, 0)),
            })
        return sorted(out, key=lambda item: (item["remaining_tpp"], item["allocation"]))

    def lpp(self, carry: Carry) -> dict | None:
        """LPP use: consignee-years with LPP candidates, those over the limit, lines over it."""
        if self.lpp_limit is None:
            return None
        totals = carry.lpp.to_numpy(np.int64)
        return {"limit_tpp": self.lpp_limit, "consignee_years": int(np.count_nonzero(totals)),
                "consignee_years_over_limit": int(np.count_nonzero(totals > self.lpp_limit)),
                "rows_over_limit": self.lpp_rows_over}

    def china_volume(self) -> dict | None:
        """The China volume condition per (exporter, SKU) with licensed China lines: totals,
        headroom and lines over, at the end of each month with rows of the key (totals carried
        forward between them); the :data:`VOLUME_SHOWN` keys nearest or over the share in full,
        all keys counted.

        Headroom is ``floor(max_share_percent × us / 100) − cn``: what more may be licensed to
        China/Macau before a line is over (negative: over). ``cn`` counts every licensed line
        that entered the condition, those over it included (first crossing, as every running
        total).
        """
        if self.volume_share is None:
            return None
        share = self.volume_share
        empty = {"unit": self.volume_unit, "max_share_percent": share, "key_count": 0, "keys_over": 0, "keys": []}
        if not len(self.volume_by_month):
            return empty
        table = self.volume_by_month.unstack("side").reindex(columns=["cn", "us"]).sort_index()
        table = table.groupby(level="key").ffill().fillna(0).astype(np.int64)
        with_cn = table["cn"].groupby(level="key").max()
        table = table[table.index.get_level_values("key").isin(with_cn.index[with_cn > 0])]
        if not len(table):
            return empty
        us = table["us"].to_numpy(np.int64)
        table["headroom"] = (us // 100) * share + (us % 100) * share // 100 - table["cn"].to_numpy(np.int64)
        last = table.groupby(level="key").tail(1).reset_index()
        parts = last["key"].str.split("|", n=1, expand=True)
        last["sku"], last["exporter"] = parts[0], parts[1].fillna("")
        last = last.sort_values(["headroom", "sku", "exporter"], kind="stable")
        shown = last.head(VOLUME_SHOWN)
        months = table[table.index.get_level_values("key").isin(shown["key"])].reset_index()
        by_key = {key: [{"month": _month_text(int(m)), "us": int(u), "cn": int(c), "headroom": int(h)}
                        for m, u, c, h in zip(rows["month"], rows["us"], rows["cn"], rows["headroom"])]
                  for key, rows in months.groupby("key", sort=False)}
        keys = [{"exporter": row.exporter, "sku": row.sku, "us": int(row.us), "cn": int(row.cn),
                 "headroom": int(row.headroom), "rows_over": int(self.volume_rows_over.get(row.key, 0)),
                 "by_month": by_key[row.key]} for row in shown.itertuples(index=False)]
        return {"unit": self.volume_unit, "max_share_percent": share, "key_count": len(last),
                "keys_over": int((last["headroom"] < 0).sum()), "keys": keys}

    def licenses(self, carry: Carry, register) -> dict | None:
        """License depletion per register row that was drawn on or named: maxima, used (within the
        maximum: the totals before the first line over), requested, remaining, first and last
        use, lines over and lines the license did not cover; the :data:`LICENSES_SHOWN` nearest
        their limits first (all counted); and the license ids not in the register."""
        if register is None:
            return None
        table = register.table.reset_index(drop=True)
        keys = pd.Index(table["license_id"], dtype=object)
        frame = pd.DataFrame({"license_id": table["license_id"].to_numpy(dtype=object),
                              "destination_country": table["destination_country"].to_numpy(dtype=object),
                              "valid_from": table["valid_from_date"].astype(str).to_numpy(dtype=object),
                              "valid_until": table["valid_until_date"].astype(str).to_numpy(dtype=object)})

        def per_key(series: pd.Series) -> np.ndarray:
            return series.reindex(keys).to_numpy() if len(series) else np.full(len(keys), np.nan)

        not_covered = self.license_not_covered
        codes = (not_covered.unstack("code") if len(not_covered)
                 else pd.DataFrame(index=pd.Index([], name="key"), dtype=np.int64))
        crossing = self.license_before_crossing.unstack("side") if len(self.license_before_crossing) else None
        days = self.license_days.unstack("side") if len(self.license_days) else None
        share = np.zeros(len(keys))
        for side, name in (("units", "license_units"), ("tpp", "license_tpp")):
            limit = table[f"max_{side}"].astype("Int64")
            requested = per_key(carry.get(name).droplevel("year"))
            requested = np.nan_to_num(requested.astype(float), nan=0).astype(np.int64) if len(requested) else requested
            before = per_key(crossing[side]) if crossing is not None and side in crossing else np.full(len(keys), np.nan)
            used = np.where(np.isnan(before.astype(float)), requested, np.nan_to_num(before.astype(float))).astype(np.int64)
            frame[f"max_{side}"] = limit.to_numpy(dtype=object, na_value=None)
            frame[f"requested_{side}"] = requested
            frame[f"used_{side}"] = used
            has = limit.notna().to_numpy()
            values = limit.fillna(0).to_numpy(np.int64)
            frame[f"remaining_{side}"] = np.where(has, values - used, None)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.maximum(share, np.where(has & (values > 0), used / np.where(values > 0, values, 1),
                                                   np.where(has & (values == 0), 1.0, 0.0)))
        for side in ("first", "last"):
            found = per_key(days[side]) if days is not None and side in days else np.full(len(keys), np.nan)
            frame[f"{side}_use"] = [None if np.isnan(d) else str(EPOCH_DAY + np.timedelta64(int(d), "D"))
                                    for d in found.astype(float)]
        frame["lines_over"] = np.nan_to_num(per_key(self.license_rows_over).astype(float)).astype(np.int64)
        for code in NOT_COVERED_CODES[1:]:
            counts = per_key(codes[code]) if code in codes else np.full(len(keys), np.nan)
            frame[f"lines_{code[len('LICENSE_'):].lower()}"] = np.nan_to_num(counts.astype(float)).astype(np.int64)
        frame["used_share"] = np.round(share, 6)
        named = keys.isin(codes.index) if len(codes) else np.zeros(len(keys), dtype=bool)
        frame = frame[(frame["requested_units"] > 0) | named]
        frame = frame.sort_values(["used_share", "license_id"], ascending=[False, True], kind="stable")
        known = set(table["license_id"])
        unknown = {} if not len(not_covered) else {
            str(key): int(count) for (key, code), count in not_covered.items()
            if code == "LICENSE_UNKNOWN" and key not in known}
        most = sorted(unknown.items(), key=lambda pair: (-pair[1], pair[0]))[:UNKNOWN_SHOWN]
        return {"register": register.path.name, "sha256": register.sha256, "licenses": len(table),
                "drawn_on": int((frame["requested_units"] > 0).sum()), "listed": len(frame),
                "table": frame.head(LICENSES_SHOWN).to_dict("records"),
                "unknown_ids": dict(most), "unknown_id_count": len(unknown),
                "lines_over": int(self.license_rows_over.sum()) if len(self.license_rows_over) else 0,
                "lines_not_covered": {code: int(not_covered.xs(code, level="code").sum())
                                      if len(not_covered) and code in not_covered.index.get_level_values("code")
                                      else 0 for code in NOT_COVERED_CODES}}

    def flagged(self) -> dict:
        """Rows per informational reason code (:data:`FLAGGED_CODES`)."""
        return {code: int(self.flagged_rows.get(code, 0)) for code in FLAGGED_CODES}

    # ------------------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        """JSON-ready form (for checkpoints); :meth:`from_dict` reads it back."""
        def pairs(series: pd.Series) -> list:
            return [[*(key if isinstance(key, tuple) else (key,)), int(value)] for key, value in series.items()]
        return {
            "decisions": pairs(self.decisions), "tpp_total": self.tpp_total,
            "allocations": [vars(a) for a in self.allocations.values()],
            "allocated_before_crossing": pairs(self.allocated_before_crossing),
            "exceeded_rows": pairs(self.exceeded_rows), "allocation_by_month": pairs(self.allocation_by_month),
            "lpp_limit": self.lpp_limit, "lpp_rows_over": self.lpp_rows_over,
            "lpp_crossings_by_month": pairs(self.lpp_crossings_by_month),
            "volume_by_month": pairs(self.volume_by_month), "volume_rows_over": pairs(self.volume_rows_over),
            "volume_share": self.volume_share, "volume_unit": self.volume_unit,
            "flagged_rows": pairs(self.flagged_rows),
            "license_days": pairs(self.license_days), "license_by_month": pairs(self.license_by_month),
            "license_before_crossing": pairs(self.license_before_crossing),
            "license_rows_over": pairs(self.license_rows_over), "license_not_covered": pairs(self.license_not_covered),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Tally":
        """Inverse of :meth:`to_dict`."""
        def series(items: list, names: list[str]) -> pd.Series:
            if not items:
                return _sum([], names)
            keys = [tuple(item[:-1]) if len(names) > 1 else item[0] for item in items]
            index = (pd.MultiIndex.from_tuples(keys, names=names) if len(names) > 1
                     else pd.Index(keys, name=names[0]))
            return pd.Series([item[-1] for item in items], index=index, dtype=np.int64)
        return cls(
            decisions=series(data["decisions"], ["destination", "status", "decision"]),
            tpp_total=int(data["tpp_total"]),
            allocations={a["label"]: Allocation(**a) for a in data["allocations"]},
            allocated_before_crossing=series(data["allocated_before_crossing"], ["allocation"]),
            exceeded_rows=series(data["exceeded_rows"], ["allocation"]),
            allocation_by_month=series(data["allocation_by_month"], ["allocation", "month"]),
            lpp_limit=data["lpp_limit"], lpp_rows_over=int(data["lpp_rows_over"]),
            lpp_crossings_by_month=series(data["lpp_crossings_by_month"], ["month"]),
            volume_by_month=series(data.get("volume_by_month", []), VOLUME_INDEX),
            volume_rows_over=series(data.get("volume_rows_over", []), ["key"]),
            volume_share=data.get("volume_share"), volume_unit=data.get("volume_unit"),
            flagged_rows=series(data.get("flagged_rows", []), ["code"]),
            license_days=series(data.get("license_days", []), ["key", "side"]),
            license_by_month=series(data.get("license_by_month", []), LICENSE_MONTH_INDEX),
            license_before_crossing=series(data.get("license_before_crossing", []), ["key", "side"]),
            license_rows_over=series(data.get("license_rows_over", []), ["key"]),
            license_not_covered=series(data.get("license_not_covered", []), ["key", "code"]),
        )
