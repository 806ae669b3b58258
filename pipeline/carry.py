"""Per-key totals carried between pieces of one screening order (DESIGN §6).

One mechanism serves every way a ledger is cut: time-ordered chunks in one process, Dask
partitions, and nightly increments on top of a checkpoint. A :class:`Carry` holds, for each
accumulator key, the total of all rows screened before the piece at hand:

- ``lpp``: per (consignee key text, calendar year), the LPP candidates' TPP;
- ``allocation``: per allocation label (destination and window), the allocation candidates' TPP.

Keys are stable text (see :attr:`pipeline.enrich.Features.party_key_values` and
:attr:`pipeline.decide.Allocation.label`), never the dense codes of one piece. All sums are
exact int64; a sum that would overflow raises.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kernels.running_totals import TotalsOverflowError

LPP_INDEX = ["party_key", "year"]


def _lpp_series(keys=(), years=(), totals=()) -> pd.Series:
    index = pd.MultiIndex.from_arrays([pd.Index(keys, dtype=object), pd.Index(years, dtype=np.int64)],
                                      names=LPP_INDEX)
    return pd.Series(np.asarray(totals, dtype=np.int64), index=index, name="tpp")


def _allocation_series(labels=(), totals=()) -> pd.Series:
    return pd.Series(np.asarray(totals, dtype=np.int64), index=pd.Index(labels, dtype=object, name="allocation"),
                     name="tpp")


def _checked_sum(parts: list[pd.Series], empty: pd.Series) -> pd.Series:
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


@dataclass(frozen=True)
class Carry:
    """Totals of the rows before a piece, per accumulator key.

    Attributes
    ----------
    lpp : pandas.Series of int64
        Indexed by (``party_key``, ``year``).
    allocation : pandas.Series of int64
        Indexed by allocation label.
    """

    lpp: pd.Series
    allocation: pd.Series

    @classmethod
    def empty(cls) -> "Carry":
        """No rows before: every total is zero."""
        return cls(_lpp_series(), _allocation_series())

    @classmethod
    def from_arrays(cls, party_keys: np.ndarray, years: np.ndarray, lpp_totals: np.ndarray,
                    labels: Iterable[str], allocation_totals: np.ndarray) -> "Carry":
        """Carry of the non-zero totals of dense arrays.

        Parameters
        ----------
        party_keys, years, lpp_totals : ndarray, shape (n,)
            Key text, calendar year and total per LPP key.
        labels : iterable of str
            Allocation label per allocation key.
        allocation_totals : ndarray of int64
            Total per allocation key.
        """
        lpp_totals = np.asarray(lpp_totals, dtype=np.int64)
        kept = np.flatnonzero(lpp_totals)
        labels = np.asarray(list(labels), dtype=object)
        allocation_totals = np.asarray(allocation_totals, dtype=np.int64)
        used = np.flatnonzero(allocation_totals)
        return cls(_lpp_series(np.asarray(party_keys, dtype=object)[kept], np.asarray(years)[kept], lpp_totals[kept]),
                   _allocation_series(labels[used], allocation_totals[used]))

    def __len__(self) -> int:
        return len(self.lpp) + len(self.allocation)

    def plus(self, *others: "Carry") -> "Carry":
        """Per-key sum with other carries (contributions of consecutive pieces)."""
        pieces = (self,) + others
        return Carry(_checked_sum([c.lpp for c in pieces], _lpp_series()),
                     _checked_sum([c.allocation for c in pieces], _allocation_series()))

    def since(self, before: "Carry") -> "Carry":
        """What the rows between ``before`` and these totals contributed, per key (zeros left out)."""
        lpp = _checked_sum([self.lpp, -before.lpp], _lpp_series())
        allocation = _checked_sum([self.allocation, -before.allocation], _allocation_series())
        return Carry(lpp[lpp != 0], allocation[allocation != 0])

    def replaced_by(self, later: "Carry") -> "Carry":
        """These totals with the keys of ``later`` taking ``later``'s values (totals after a piece)."""
        lpp = pd.concat([self.lpp[~self.lpp.index.isin(later.lpp.index)], later.lpp]).sort_index()
        allocation = pd.concat([self.allocation[~self.allocation.index.isin(later.allocation.index)],
                                later.allocation]).sort_index()
        return Carry(lpp.astype(np.int64), allocation.astype(np.int64))

    def lpp_for(self, party_key_values: np.ndarray, first_year: int, n_years: int) -> np.ndarray | None:
        """Dense LPP carry-in for a piece whose keys are ``party_key * n_years + year - first_year``.

        Returns ``None`` when no carried key occurs in the piece.
        """
        if not len(self.lpp) or not n_years:
            return None
        keys = self.lpp.index.get_level_values("party_key")
        years = self.lpp.index.get_level_values("year").to_numpy(np.int64)
        party = pd.Index(party_key_values, dtype=object).get_indexer(keys)
        hit = (party >= 0) & (years >= first_year) & (years < first_year + n_years)
        if not hit.any():
            return None
        dense = np.zeros(len(party_key_values) * n_years, dtype=np.int64)
        dense[party[hit] * n_years + (years[hit] - first_year)] = self.lpp.to_numpy(np.int64)[hit]
        return dense

    def allocation_for(self, labels: list[str]) -> np.ndarray:
        """Dense allocation carry-in for allocation keys with these labels."""
        dense = np.zeros(len(labels), dtype=np.int64)
        if len(self.allocation):
            position = pd.Index(labels, dtype=object).get_indexer(self.allocation.index)
            hit = position >= 0
            dense[position[hit]] = self.allocation.to_numpy(np.int64)[hit]
        return dense

    def equals(self, other: "Carry") -> bool:
        """Same keys with the same totals (zeros count as absent)."""
        def same(a: pd.Series, b: pd.Series) -> bool:
            a, b = a[a != 0].sort_index(), b[b != 0].sort_index()
            return a.index.equals(b.index) and np.array_equal(a.to_numpy(), b.to_numpy())
        return same(self.lpp, other.lpp) and same(self.allocation, other.allocation)

    # ----------------------------------------------------------------------------- files
    def to_table(self) -> pa.Table:
        """One table for both accumulators: ``kind`` (``lpp`` / ``allocation``), ``key``, ``year``, ``tpp``."""
        lpp = self.lpp.reset_index()
        allocation = self.allocation.reset_index()
        return pa.table({
            "kind": pa.array(["lpp"] * len(lpp) + ["allocation"] * len(allocation)).dictionary_encode(),
            "key": pa.array(list(lpp["party_key"]) + list(allocation["allocation"]), pa.string()),
            "year": pa.array(np.concatenate([lpp["year"].to_numpy(np.int64), np.zeros(len(allocation), np.int64)])),
            "tpp": pa.array(np.concatenate([lpp["tpp"].to_numpy(np.int64), allocation["tpp"].to_numpy(np.int64)])),
        })

    @classmethod
    def from_table(cls, table: pa.Table) -> "Carry":
        """Inverse of :meth:`to_table`."""
        frame = table.to_pandas()
        kind = frame["kind"].astype(str)
        lpp, allocation = frame[kind == "lpp"], frame[kind == "allocation"]
        return cls(_lpp_series(lpp["key"].to_numpy(object), lpp["year"].to_numpy(np.int64), lpp["tpp"]),
                   _allocation_series(allocation["key"].to_numpy(object), allocation["tpp"]))

    def write(self, path: str | Path) -> None:
        """Write as Parquet (see :meth:`to_table`)."""
        pq.write_table(self.to_table(), path)

    @classmethod
    def read(cls, path: str | Path) -> "Carry":
        """Read a carry written by :meth:`write`."""
        return cls.from_table(pq.read_table(path))


def _prefix(parts: list[pd.Series], empty: pd.Series) -> tuple[list[pd.Series], pd.Series]:
    """Exclusive per-key prefix sums of consecutive parts, each kept to its own keys; and the total."""
    if not any(len(p) for p in parts):
        return [empty] * len(parts), empty
    levels = list(empty.index.names)
    frame = pd.concat([p.reset_index().assign(piece=i) for i, p in enumerate(parts) if len(p)], ignore_index=True)
    total = _checked_sum([frame.set_index(levels)["tpp"]], empty)  # raises before the cumsum can wrap
    frame["before"] = frame.groupby(levels, sort=False)["tpp"].cumsum() - frame["tpp"]
    out = [empty] * len(parts)
    for piece, rows in frame.groupby("piece", sort=True):
        out[piece] = rows.set_index(levels)["before"].astype(np.int64).rename("tpp")
    return out, total.astype(np.int64)


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
    >>> a = Carry(_lpp_series(["id:1"], [2025], [5]), _allocation_series(["X"], [3]))
    >>> carries, total = carries_in([a, a, a])
    >>> [int(c.lpp.iloc[0]) for c in carries], int(total.allocation.iloc[0])
    ([0, 5, 10], 9)
    """
    lpp, lpp_total = _prefix([c.lpp for c in contributions], _lpp_series())
    allocation, allocation_total = _prefix([c.allocation for c in contributions], _allocation_series())
    return [Carry(a, b) for a, b in zip(lpp, allocation)], Carry(lpp_total, allocation_total)
