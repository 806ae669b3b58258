"""Per-key totals carried between pieces of one screening order (DESIGN §6).

One mechanism serves every way a ledger is cut: time-ordered chunks in one process, Dask
partitions, and nightly increments on top of a checkpoint. A :class:`Carry` holds, for each
accumulator and each of its keys, the total of all rows screened before the piece at hand:

- ``lpp``: per (consignee key text, calendar year), the LPP candidates' TPP;
- ``allocation``: per allocation label (destination and window), the allocation candidates' TPP;
- ``china_volume`` and ``china_volume.base``: per ``<sku>|<exporter>``, the licensed China/Macau
  lines under the H200 rule and the US shipments they are measured against;
- any other accumulator a rule set declares, under its name.

Keys are stable text plus a year (0 where the accumulator is not per year; see
:attr:`pipeline.enrich.Features.party_key_values` and :attr:`pipeline.decide.Allocation.label`),
never the dense codes of one piece. All sums are exact int64; a sum that would overflow raises.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kernels.running_totals import TotalsOverflowError

INDEX = ["key", "year"]
"""Index of every accumulator's totals: key text and year (0 where not per year)."""


def totals_series(keys=(), years=None, totals=()) -> pd.Series:
    """Totals by (key text, year) as a :class:`pandas.Series` of int64.

    Examples
    --------
    >>> totals_series(["id:1"], [2025], [5]).to_dict()
    {('id:1', 2025): 5}
    """
    keys = list(keys) if not isinstance(keys, np.ndarray) else keys
    years = np.zeros(len(keys), dtype=np.int64) if years is None else np.asarray(years, dtype=np.int64)
    index = pd.MultiIndex.from_arrays([pd.Index(keys, dtype=object), pd.Index(years, dtype=np.int64)], names=INDEX)
    return pd.Series(np.asarray(totals, dtype=np.int64), index=index, name="amount")


def _lpp_series(keys=(), years=(), totals=()) -> pd.Series:
    return totals_series(keys, years, totals)


def _allocation_series(labels=(), totals=()) -> pd.Series:
    return totals_series(labels, None, totals)


_EMPTY = totals_series()


def _checked_sum(parts: list[pd.Series], empty: pd.Series = _EMPTY) -> pd.Series:
    """Per-key exact sum of series whose keys may repeat; raises rather than wrap past int64."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty
    stacked = pd.concat(parts) if len(parts) > 1 else parts[0]
    levels = list(range(stacked.index.nlevels))
    if stacked.index.is_unique:
        return stacked.sort_index().astype(np.int64)
    # int64 group sums wrap silently: where float64 says a sum may come near the bound, redo
    # that check in Python integers.
    approximate = stacked.abs().astype(np.float64).groupby(level=levels).sum()
    if float(approximate.max()) > 2.0 ** 62:
        exact = stacked.astype(object).groupby(level=levels).sum()
        if max(abs(int(v)) for v in exact) > np.iinfo(np.int64).max:
            raise TotalsOverflowError("carried total overflows int64")
    return stacked.groupby(level=levels, sort=True).sum().astype(np.int64)


def _nonzero(series: pd.Series) -> pd.Series:
    return series[series != 0]


@dataclass(frozen=True)
class Carry:
    """Totals of the rows before a piece, per accumulator and key.

    Attributes
    ----------
    totals : dict of str to pandas.Series
        Per accumulator name, int64 totals indexed by (``key``, ``year``); an accumulator
        without an entry has all totals zero.
    """

    totals: dict = field(default_factory=dict)

    @classmethod
    def empty(cls) -> "Carry":
        """No rows before: every total is zero."""
        return cls({})

    @classmethod
    def of(cls, **totals: pd.Series) -> "Carry":
        """A carry from series by accumulator name (``Carry.of(lpp=..., allocation=...)``)."""
        return cls({name.replace("__", "."): series for name, series in totals.items() if len(series)})

    def get(self, name: str) -> pd.Series:
        """Totals of one accumulator (empty when it has none)."""
        return self.totals.get(name, _EMPTY)

    @property
    def lpp(self) -> pd.Series:
        """LPP totals by (consignee key, year)."""
        return self.get("lpp")

    @property
    def allocation(self) -> pd.Series:
        """Allocation totals by label."""
        return self.get("allocation").droplevel("year")

    def only(self, names) -> "Carry":
        """The totals of these accumulators only."""
        return Carry({name: series for name, series in self.totals.items() if name in set(names)})

    def __len__(self) -> int:
        return sum(len(series) for series in self.totals.values())

    def _combined(self, others: tuple["Carry", ...], how) -> "Carry":
        names = sorted({name for carry in (self,) + others for name in carry.totals})
        out = {name: how([carry.get(name) for carry in (self,) + others]) for name in names}
        return Carry({name: series for name, series in out.items() if len(series)})

    def plus(self, *others: "Carry") -> "Carry":
        """Per-key sum with other carries (contributions of consecutive pieces)."""
        return self._combined(others, _checked_sum)

    def since(self, before: "Carry") -> "Carry":
        """What the rows between ``before`` and these totals contributed, per key (zeros left out)."""
        return self._combined((before,), lambda pair: _nonzero(_checked_sum([pair[0], -pair[1]])))

    def replaced_by(self, later: "Carry") -> "Carry":
        """These totals with the keys of ``later`` taking ``later``'s values (totals after a piece)."""
        def replace(pair):
            mine, theirs = pair
            return pd.concat([mine[~mine.index.isin(theirs.index)], theirs]).sort_index().astype(np.int64)
        return self._combined((later,), replace)

    def dense(self, name: str, key_values, first_year: int = 0, n_years: int = 1) -> np.ndarray | None:
        """Dense carry-in of one accumulator for a piece whose keys are
        ``key * n_years + year - first_year`` (``key`` indexes ``key_values``).

        Returns ``None`` when no carried key occurs in the piece.
        """
        series = self.get(name)
        if not len(series) or not n_years or not len(key_values):
            return None
        keys = series.index.get_level_values("key")
        years = series.index.get_level_values("year").to_numpy(np.int64)
        position = pd.Index(key_values, dtype=object).get_indexer(keys)
        hit = (position >= 0) & (years >= first_year) & (years < first_year + n_years)
        if not hit.any():
            return None
        dense = np.zeros(len(key_values) * n_years, dtype=np.int64)
        dense[position[hit] * n_years + (years[hit] - first_year)] = series.to_numpy(np.int64)[hit]
        return dense

    def lpp_for(self, party_key_values: np.ndarray, first_year: int, n_years: int) -> np.ndarray | None:
        """Dense LPP carry-in (see :meth:`dense`)."""
        return self.dense("lpp", party_key_values, first_year, n_years)

    def allocation_for(self, labels: list[str]) -> np.ndarray:
        """Dense allocation carry-in for allocation keys with these labels."""
        dense = self.dense("allocation", labels)
        return dense if dense is not None else np.zeros(len(labels), dtype=np.int64)

    @staticmethod
    def series_of(totals: np.ndarray, key_values, first_year: int = 0, n_years: int = 1) -> pd.Series:
        """The non-zero entries of dense totals (inverse of :meth:`dense`)."""
        totals = np.asarray(totals, dtype=np.int64)
        used = np.flatnonzero(totals)
        key, year = np.divmod(used, max(n_years, 1))
        return totals_series(np.asarray(key_values, dtype=object)[key], year + first_year, totals[used])

    @classmethod
    def from_arrays(cls, party_keys: np.ndarray, years: np.ndarray, lpp_totals: np.ndarray,
                    labels: Iterable[str], allocation_totals: np.ndarray) -> "Carry":
        """Carry of the non-zero totals of the LPP and allocation arrays."""
        lpp_totals = np.asarray(lpp_totals, dtype=np.int64)
        kept = np.flatnonzero(lpp_totals)
        return cls.of(lpp=totals_series(np.asarray(party_keys, dtype=object)[kept], np.asarray(years)[kept],
                                        lpp_totals[kept]),
                      allocation=cls.series_of(allocation_totals, list(labels)))

    def equals(self, other: "Carry") -> bool:
        """Same keys with the same totals (zeros count as absent)."""
        def same(a: pd.Series, b: pd.Series) -> bool:
            a, b = a[a != 0].sort_index(), b[b != 0].sort_index()
            return a.index.equals(b.index) and np.array_equal(a.to_numpy(), b.to_numpy())
        names = set(self.totals) | set(other.totals)
        return all(same(self.get(name), other.get(name)) for name in names)

    # ----------------------------------------------------------------------------- files
    def to_table(self) -> pa.Table:
        """One table for every accumulator: ``kind`` (its name), ``key``, ``year``, ``tpp`` (the amount)."""
        names = sorted(self.totals)
        frames = [self.totals[name].reset_index() for name in names]
        kinds = [name for name, frame in zip(names, frames) for _ in range(len(frame))]
        return pa.table({
            "kind": pa.array(kinds, pa.string()).dictionary_encode(),
            "key": pa.array([k for frame in frames for k in frame["key"]], pa.string()),
            "year": pa.array(np.concatenate([f["year"].to_numpy(np.int64) for f in frames] or [np.zeros(0, np.int64)])),
            "tpp": pa.array(np.concatenate([f["amount"].to_numpy(np.int64) for f in frames] or
                                           [np.zeros(0, np.int64)])),
        })

    @classmethod
    def from_table(cls, table: pa.Table) -> "Carry":
        """Inverse of :meth:`to_table`."""
        frame = table.to_pandas()
        kind = frame["kind"].astype(str)
        return cls({name: totals_series(rows["key"].to_numpy(object), rows["year"].to_numpy(np.int64), rows["tpp"])
                    for name, rows in frame.groupby(kind, sort=True)})

    def write(self, path: str | Path) -> None:
        """Write as Parquet (see :meth:`to_table`)."""
        pq.write_table(self.to_table(), path)

    @classmethod
    def read(cls, path: str | Path) -> "Carry":
        """Read a carry written by :meth:`write`."""
        return cls.from_table(pq.read_table(path))


def _prefix(parts: list[pd.Series]) -> tuple[list[pd.Series], pd.Series]:
    """Exclusive per-key prefix sums of consecutive parts, each kept to its own keys; and the total."""
    if not any(len(p) for p in parts):
        return [_EMPTY] * len(parts), _EMPTY
    frame = pd.concat([p.reset_index().assign(piece=i) for i, p in enumerate(parts) if len(p)], ignore_index=True)
    total = _checked_sum([frame.set_index(INDEX)["amount"]])  # raises before the cumsum can wrap
    frame["before"] = frame.groupby(INDEX, sort=False)["amount"].cumsum() - frame["amount"]
    out = [_EMPTY] * len(parts)
    for piece, rows in frame.groupby("piece", sort=True):
        out[piece] = rows.set_index(INDEX)["before"].astype(np.int64).rename("amount")
    return out, total.astype(np.int64)


def _with_siblings(carry: Carry, names: list[str]) -> Carry:
    """``carry`` with zero totals added so that ``x`` and ``x.base`` hold the same keys."""
    totals = dict(carry.totals)
    for name in names:
        if name.endswith(".base") and name[:-5] in names:
            share, base = carry.get(name[:-5]), carry.get(name)
            keys = share.index.union(base.index)
            if len(keys):
                totals[name[:-5]] = share.reindex(keys, fill_value=0).astype(np.int64)
                totals[name] = base.reindex(keys, fill_value=0).astype(np.int64)
    return Carry(totals)


def carries_in(contributions: list[Carry]) -> tuple[list[Carry], Carry]:
    """Carry-in of each piece from the contributions of all pieces (the carry task, DESIGN §6).

    Parameters
    ----------
    contributions : list of Carry
        Per piece, in screening order, the totals of its own rows (pass 1).

    Returns
    -------
    carries : list of Carry
        Per piece, the per-key sum of the contributions of all earlier pieces, kept to the keys
        the piece itself contributes to (the only carried keys its rows can read).
    total : Carry
        The totals after the last piece.

    Examples
    --------
    >>> a = Carry.of(lpp=totals_series(["id:1"], [2025], [5]), allocation=totals_series(["X"], None, [3]))
    >>> carries, total = carries_in([a, a, a])
    >>> [int(c.lpp.iloc[0]) for c in carries], int(total.allocation.iloc[0])
    ([0, 5, 10], 9)
    """
    names = sorted({name for carry in contributions for name in carry.totals})
    # A share condition's two totals (``x`` and ``x.base``) are read together: a piece with rows
    # of either gets the carry-in of both.
    contributions = [_with_siblings(carry, names) for carry in contributions]
    per_piece: list[dict] = [{} for _ in contributions]
    total = {}
    for name in names:
        before, total[name] = _prefix([carry.get(name) for carry in contributions])
        for piece, series in zip(per_piece, before):
            if len(series):
                piece[name] = series
    return [Carry(piece) for piece in per_piece], Carry({n: t for n, t in total.items() if len(t)})
