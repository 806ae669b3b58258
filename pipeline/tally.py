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


def _months(days: np.ndarray) -> np.ndarray:
    """Month index (``(year - 1970) * 12 + month - 1``) of day numbers."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


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
        return cls(decisions=decisions, tpp_total=int(tpp.sum()) if len(tpp) else 0,
                   allocations={a.label: a for a in result.allocations},
                   allocated_before_crossing=first_over, exceeded_rows=exceeded, allocation_by_month=by_month,
                   lpp_limit=result.lpp_limit, lpp_rows_over=lpp_over, lpp_crossings_by_month=crossings)

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
        )
