"""Per-row screening from a table of situations: the pass that runs where the rows are.

Screening (``pipeline.decide``) evaluates the rules once per *situation*, a small table, and
leaves per row only array steps written against an array namespace ``xp`` (NumPy on the CPU,
CuPy on a GPU), run on one time-ordered chunk of rows at a time:

1. :func:`profile_key` packs a row's rule inputs (dictionary codes of destination, HQ, SKU,
   party result, license, VEU, date class) into one int64; :func:`profile_codes` numbers the
   distinct keys (the host turns the few distinct keys into the situation table);
2. :func:`evaluate` runs the accumulators the rules declare (:class:`AccumulatorTable`: LPP per
   (consignee, year), allocation per destination window, the China volume share per (exporter,
   SKU), ...), each a per-key running total with its limit check, stage after stage, and
   gathers each row's decision, authorization, reason and tier from the table.

Per-key totals come in and go out as arrays (the carry), so chunks chain exactly. Integers
only: every namespace and every chunking gives the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.running_totals import NOT_CANDIDATE, over_limit, running_totals


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
class AccumulatorTable:
    """One running total as the rules declare it: which rows enter, under which key, and its limit.

    Attributes
    ----------
    name : str
        Names the accumulator in the carry and the outputs (``lpp``, ``allocation``, ``china_volume``).
    stage : int
        Candidacy is read at the situation reached after the over flags of all earlier stages
        (stage 0: at the profile's first situation).
    bit : int
        Weight its over flag adds to the situation index (a power of two; 0: it has no limit).
    candidate : array of bool, shape (s p,)
        The row enters the accumulator, per situation.
    key : array of int64, shape (s p,), or None
        Key per situation; ``None``: the key is per row (``row_keys[name]`` of :func:`evaluate`).
    amount : str
        Which per-row amount it sums (a key of ``amounts``: ``"tpp"`` or ``"units"``).
    n_keys : int
    limits : array of int64, shape (n_keys,), or None
        A candidate is over when its running total is greater than its key's limit.
    limit : int or None
        The same limit for every key (instead of ``limits``).
    base_candidate : array of bool, shape (s p,), or None
        A share condition instead of a limit: the rows that make up the base, per situation. The
        base total runs over the same keys; a candidate is over when
        ``100 * total > max_share_percent * base total`` (the base rows before it).
    max_share_percent : int
    """

    name: str
    stage: int
    bit: int
    candidate: object
    key: object
    amount: str
    n_keys: int
    limits: object = None
    limit: int | None = None
    base_candidate: object = None
    max_share_percent: int = 0


@dataclass(frozen=True)
class SituationTable:
    """What the rules say about each situation, as arrays in the namespace of the rows.

    A profile ``p`` has ``situations`` situations; entry ``situations * p + sum(bit of each
    accumulator over its limit)`` is what holds for it.

    Attributes
    ----------
    situations : int
        Situations per profile: 2 to the number of accumulators with a limit.
    accumulators : tuple of AccumulatorTable
        In stage order.
    decision, authorization : array of int8, shape (s p,)
    reason : array of int64, shape (s p,)
    tier : array of int8, shape (s p,), or None
    """

    situations: int
    accumulators: tuple
    decision: object
    authorization: object
    reason: object
    tier: object


@dataclass(frozen=True)
class AccumulatorOutcome:
    """Per-row results of one accumulator (arrays in the rows' namespace) and its carry-out.

    Attributes
    ----------
    keys : array of int64, shape (n,)
        Key of each candidate row, ``-1`` elsewhere.
    cumulative : array of int64, shape (n,)
        Running total, the row included; ``-1`` where not a candidate.
    over : array of bool, shape (n,)
    totals : array of int64, shape (n_keys,)
        Per-key totals after the last row: the carry-in of the next chunk.
    base_keys : array of int64, shape (n,), or None
        Share conditions: the key of each candidate or base row (``-1`` elsewhere).
    base_cumulative : array of int64, shape (n,), or None
        Share conditions: the base total at each candidate or base row (``-1`` elsewhere).
    base_totals : array of int64, shape (n_keys,), or None
    """

    keys: object
    cumulative: object
    over: object
    totals: object
    base_keys: object = None
    base_cumulative: object = None
    base_totals: object = None


@dataclass(frozen=True)
class RowOutcome:
    """Per-row results of :func:`evaluate` (arrays in the rows' namespace) and the carry-out."""

    decision: object
    authorization: object
    reason: object
    tier: object
    accumulators: dict


def share_over(total, base, max_share_percent: int, xp):
    """``100 * total > max_share_percent * base``, exactly, without forming either product.

    Parameters
    ----------
    total, base : array of int64
        Non-negative running totals.
    max_share_percent : int
        In [0, 100].

    Examples
    --------
    >>> import numpy as np
    >>> share_over(np.array([5, 6, 1]), np.array([10, 10, 1]), 50, np).tolist()
    [False, True, True]
    """
    # 100 t > p b  <=>  t > floor(p b / 100), and floor(p b / 100) = p (b // 100) + floor(p (b % 100) / 100).
    quotient, remainder = xp.divmod(base, 100)
    return total > quotient * max_share_percent + (remainder * max_share_percent) // 100


def evaluate(profile, row_keys: dict, amounts: dict, table: SituationTable, *, carries: dict | None = None,
             xp=np, method: str | None = None) -> RowOutcome:
    """Screen one chunk of rows: every accumulator with its limit, then the outcome gathers.

    Parameters
    ----------
    profile : array of int64, shape (n,)
        Profile code per row.
    row_keys : dict of str to array of int64, shape (n,)
        Key per row of each accumulator whose key is per row.
    amounts : dict of str to array of int64, shape (n,)
        Amounts per row (``"tpp"``, ``"units"``).
    table : SituationTable
    carries : dict of str to array of int64, optional
        Per-key totals before the first row, by accumulator name (and ``name + ".base"`` for the
        base of a share condition); zeros where missing.
    xp : module
    method : str, optional
        Running-total algorithm (:data:`kernels.running_totals.METHODS`).

    Returns
    -------
    RowOutcome
        ``accumulators[name].totals`` are the carry-in of the next chunk.

    Raises
    ------
    kernels.TotalsOverflowError
        A running total passes int64; ``row`` counts from this chunk's first row.
    """
    carries = carries or {}
    first = table.situations * profile
    reached = first  # the situation with the over flags of the stages done so far
    stage, stage_start = None, first
    results = {}
    for acc in table.accumulators:
        if acc.stage != stage:
            stage, stage_start = acc.stage, reached
        key = row_keys[acc.name] if acc.key is None else acc.key[stage_start]
        entering = acc.candidate[stage_start]
        keys = xp.where(entering, key, NOT_CANDIDATE)
        amount = amounts[acc.amount]
        cumulative, totals = running_totals(keys, amount, acc.n_keys, carry=carries.get(acc.name), xp=xp,
                                            method=method)
        base_keys = base_cumulative = base_totals = None
        if acc.base_candidate is not None:
            base = acc.base_candidate[stage_start]
            base_keys = xp.where(entering | base, key, NOT_CANDIDATE)
            base_cumulative, base_totals = running_totals(
                base_keys, xp.where(base, amount, 0), acc.n_keys, carry=carries.get(acc.name + ".base"), xp=xp,
                method=method)
            over = entering & share_over(cumulative, base_cumulative, acc.max_share_percent, xp)
        elif acc.limits is not None:
            over = over_limit(cumulative, keys, acc.limits, xp=xp)
        elif acc.limit is not None:
            over = cumulative > acc.limit  # non-candidates hold -1
        else:
            over = xp.zeros(len(keys), dtype=bool)
        if acc.bit:
            reached = reached + acc.bit * over
        results[acc.name] = AccumulatorOutcome(keys, cumulative, over, totals, base_keys, base_cumulative, base_totals)
    return RowOutcome(decision=table.decision[reached], authorization=table.authorization[reached],
                      reason=table.reason[reached], tier=table.tier[first] if table.tier is not None else None,
                      accumulators=results)
