"""Per-row screening from a table of situations: the pass that runs where the rows are.

Screening (``pipeline.decide``) evaluates the rules once per *situation*, a small table, and
leaves per row only array steps written against an array namespace ``xp`` (NumPy on the CPU,
CuPy on a GPU), run on one time-ordered chunk of rows at a time:

1. :func:`profile_key` packs a row's rule inputs (dictionary codes of destination, HQ, SKU,
   party result, license, VEU, date class) into one int64; :func:`profile_codes` numbers the
   distinct keys (the host turns the few distinct keys into the situation table);
2. :func:`evaluate` runs the LPP accumulator per (consignee, year), the LPP limit check, the
   allocation accumulator per allocation key with the cap check, and gathers each row's
   decision, authorization, reason and tier from the table.

Per-key totals come in and go out as arrays (the carry), so chunks chain exactly. Integers
only: every namespace and every chunking gives the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.running_totals import NOT_CANDIDATE, over_limit, running_totals

SITUATIONS_PER_PROFILE = 4
"""Situation ``4 * profile + 2 * lpp_over + cap_over``."""


def profile_key(parts, sizes, xp):
    """Mixed-radix int64 key of per-row codes: ``((p0 * s1 + p1) * s2 + p2) ...``.

    Parameters
    ----------
    parts : sequence of arrays, each shape (n,)
        Codes per row, ``0 <= parts[i] < sizes[i]``.
    sizes : sequence of int
        Number of values of each part; their product must stay below 2**63.
    xp : module

    Returns
    -------
    array of int64, shape (n,)

    Examples
    --------
    >>> import numpy as np
    >>> profile_key([np.array([1, 0]), np.array([2, 1])], [2, 3], np).tolist()
    [5, 1]
    """
    product = 1
    for size in sizes:
        product *= max(int(size), 1)
    if product >= 2**63:
        raise OverflowError(f"profile key space {product} does not fit int64")
    key = xp.zeros(len(parts[0]) if parts else 0, dtype=xp.int64)
    for size, part in zip(sizes, parts):
        key *= int(size)
        key += part
    return key


def split_key(keys: np.ndarray, sizes) -> list[np.ndarray]:
    """The parts of :func:`profile_key` values, on the host.

    Examples
    --------
    >>> import numpy as np
    >>> [p.tolist() for p in split_key(np.array([5, 1]), [2, 3])]
    [[1, 0], [2, 1]]
    """
    keys = np.asarray(keys, dtype=np.int64)
    parts = []
    for size in reversed(list(sizes)):
        keys, value = np.divmod(keys, int(size))
        parts.append(value)
    return parts[::-1]


def profile_codes(key, xp):
    """Dense code per row of ``key`` and the distinct keys, on the host.

    On NumPy a hash table numbers keys in order of first appearance (fast on a CPU); elsewhere
    a sort numbers them in increasing order (fast on a GPU). Screening results do not depend on
    the numbering.

    Returns
    -------
    codes : array of int64, shape (n,)
        In ``xp``'s memory.
    distinct : ndarray of int64
        Key of each code, on the host.
    """
    if xp is np:
        import pandas as pd

        codes, distinct = pd.factorize(key)
        return codes.astype(np.int64, copy=False), np.asarray(distinct, dtype=np.int64)
    distinct, codes = xp.unique(key, return_inverse=True)
    distinct = distinct if isinstance(distinct, np.ndarray) else xp.asnumpy(distinct)
    return codes.reshape(-1).astype(xp.int64, copy=False), np.asarray(distinct, dtype=np.int64)


@dataclass(frozen=True)
class SituationTable:
    """What the rules say about each situation, as arrays in the namespace of the rows.

    Entry ``4 * p + 2 * lpp_over + cap_over`` is profile ``p``'s situation when its LPP total is
    over the limit (``lpp_over``) and its allocation total over the cap (``cap_over``).

    Attributes
    ----------
    lpp_candidate : array of bool, shape (4 p,)
        The row accumulates toward the LPP limit (read at the ``4 p`` entry).
    allocation_candidate : array of bool, shape (4 p,)
        The row accumulates toward its allocation (read at ``4 p + 2 lpp_over``).
    allocation_key : array of int64, shape (4 p,)
        Allocation key (read at the ``4 p`` entry).
    decision, authorization : array of int8, shape (4 p,)
    reason : array of int32, shape (4 p,)
    tier : array of int8, shape (4 p,), or None
    caps : array of int64, shape (n_allocations,)
    lpp_limit : int or None
        ``None``: the rule set has no LPP accumulator.
    """

    lpp_candidate: object
    allocation_candidate: object
    allocation_key: object
    decision: object
    authorization: object
    reason: object
    tier: object
    caps: object
    lpp_limit: int | None


@dataclass(frozen=True)
class RowOutcome:
    """Per-row results of :func:`evaluate` (arrays in the rows' namespace) and the carry-out."""

    decision: object
    authorization: object
    reason: object
    tier: object
    lpp_keys: object
    lpp_cum: object
    allocation_keys: object
    allocation_cum: object
    allocation_over: object
    lpp_totals: object
    allocation_totals: object


def evaluate(profile, lpp_key, amounts, table: SituationTable, *, n_lpp_keys: int, lpp_carry=None,
             allocation_carry=None, xp=np, method: str | None = None) -> RowOutcome:
    """Screen one chunk of rows: both accumulators, both limit checks, the outcome gathers.

    Parameters
    ----------
    profile : array of int64, shape (n,)
        Profile code per row (index into the table, divided by 4).
    lpp_key : array of int64, shape (n,)
        LPP accumulator key per row (consignee x year) if the row were an LPP candidate.
    amounts : array of int64, shape (n,)
        TPP per row.
    table : SituationTable
    n_lpp_keys : int
    lpp_carry : array of int64, shape (n_lpp_keys,), optional
    allocation_carry : array of int64, shape (len(table.caps),), optional
        Totals before the first row (earlier chunks, partitions, nights).
    xp : module
    method : str, optional
        Running-total algorithm (:data:`kernels.running_totals.METHODS`).

    Returns
    -------
    RowOutcome
        ``lpp_totals`` and ``allocation_totals`` are the carry-in of the next chunk.

    Raises
    ------
    kernels.TotalsOverflowError
        A running total passes int64; ``row`` counts from this chunk's first row.
    """
    first = SITUATIONS_PER_PROFILE * profile
    lpp_keys = xp.where(table.lpp_candidate[first], lpp_key, NOT_CANDIDATE)
    lpp_cum, lpp_totals = running_totals(lpp_keys, amounts, n_lpp_keys, carry=lpp_carry, xp=xp, method=method)
    after_lpp = first
    if table.lpp_limit is not None:
        after_lpp = first + 2 * (lpp_cum > table.lpp_limit)
    allocation_keys = xp.where(table.allocation_candidate[after_lpp], table.allocation_key[first], NOT_CANDIDATE)
    allocation_cum, allocation_totals = running_totals(allocation_keys, amounts, len(table.caps),
                                                       carry=allocation_carry, xp=xp, method=method)
    cap_over = over_limit(allocation_cum, allocation_keys, table.caps, xp=xp)
    situation = after_lpp + cap_over
    return RowOutcome(
        decision=table.decision[situation], authorization=table.authorization[situation],
        reason=table.reason[situation], tier=table.tier[first] if table.tier is not None else None,
        lpp_keys=lpp_keys, lpp_cum=lpp_cum, allocation_keys=allocation_keys, allocation_cum=allocation_cum,
        allocation_over=cap_over, lpp_totals=lpp_totals, allocation_totals=allocation_totals,
    )
