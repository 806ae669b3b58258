"""Affiliates by ownership (the 50 percent rule): a cascade to a fixpoint over a holdings graph.

An entity is an *affiliate* when the basis points held directly in it by listed parties and by
affiliates sum to at least ``threshold_bp``; affiliates' own holdings then count, and so on until
nothing changes (issue 19, item 3). Listed entities are listed, never affiliates.

The graph is a sparse matrix (one entry per (owner, owned) pair, basis points summed over repeated
holdings; holdings of an entity in itself dropped) and the qualified set (listed or affiliate) a
vector. Each step is a sparse matrix-vector product restricted to the *frontier*, the entities
that qualified in the previous step: only their rows can change ``held_bp``, so each entity's
holdings are read once and the whole fixpoint costs O(holdings) plus a sort per step, however long
the chains. The steps are composed of array-namespace calls (``xp`` = :mod:`numpy` or
:mod:`cupy`): gathers, stable sorts, ``cumsum`` segment sums (exact int64: no float, no
``bincount``) and scatters of unique indices or of equal values, so every namespace gives the same
integers. Nothing here imports a GPU library.
"""
from __future__ import annotations

from dataclasses import dataclass

from kernels import namespace

MAX_BP = 10_000
"""Basis points in 100 percent: the largest holding."""

MAX_ENTITIES = 3_000_000_000
"""Most entities per call: a pair key ``owner * n + owned`` fits int64."""


@dataclass(frozen=True, eq=False)
class Affiliates:
    """Result of :func:`resolve_affiliates`; arrays of the input's namespace, one entry per entity.

    Attributes
    ----------
    affiliate : array of bool
        Owned at least ``threshold_bp`` by listed parties and affiliates, and not itself listed.
    held_bp : array of int64
        Basis points held directly in the entity by listed parties and affiliates at the fixpoint
        (for every entity: listed, affiliate, minority-held or not held).
    lists : array of int64
        List bitmask: a listed entity's own bits; any other entity the OR of the lists of every
        listed or affiliate owner holding a stake in it (0 if none).
    level : array of int32
        0 for a listed entity; for an affiliate the length of a shortest chain of holdings from a
        listed party through affiliates; -1 otherwise.
    parent : array of int64
        For an affiliate, the owner (listed or affiliate, at level ``level - 1``) on one shortest
        chain: the largest holding among those owners, then the lowest index; -1 otherwise.
    steps : int
        Fixpoint steps run: frontiers propagated, the last one qualifying nothing new (0 when
        nothing is listed; the deepest affiliate's qualifying step plus one otherwise).
    """

    affiliate: object
    held_bp: object
    lists: object
    level: object
    parent: object
    steps: int


def _argsort(values, xp, stable: bool = False):
    """Sorting permutation; ``stable`` keeps ties in input order (stated, as CuPy wants it)."""
    return xp.argsort(values, kind="stable") if stable else xp.argsort(values)


def _runs(sorted_keys, xp):
    """Start and end (exclusive) positions of the runs of equal values in sorted keys."""
    n = len(sorted_keys)
    change = xp.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    edges = xp.concatenate([xp.zeros(1, dtype=xp.int64), change.astype(xp.int64),
                            xp.full(1, n, dtype=xp.int64)])
    return edges[:-1], edges[1:]


def segment_sums(keys, values, xp):
    """Exact int64 sums of ``values`` per distinct key, by sort and ``cumsum``.

    Parameters
    ----------
    keys : array of int64, shape (k,)
    values : array of int64, shape (k,)
        Their sum must fit int64 (a difference of the scan is then exact).
    xp : module

    Returns
    -------
    unique : array of int64
        The distinct keys, ascending.
    sums : array of int64
        Sum of the values of each.

    Examples
    --------
    >>> import numpy as np
    >>> u, s = segment_sums(np.array([3, 1, 3]), np.array([5, 2, 7]), np)
    >>> u.tolist(), s.tolist()
    ([1, 3], [2, 12])
    """
    if not len(keys):
        return keys.astype(xp.int64), values.astype(xp.int64)
    order = _argsort(keys, xp)
    keys, values = keys[order], values[order]
    starts, ends = _runs(keys, xp)
    scanned = xp.concatenate([xp.zeros(1, dtype=xp.int64), xp.cumsum(values, dtype=xp.int64)])
    return keys[starts], scanned[ends] - scanned[starts]


def _gather(frontier, offsets, xp):
    """Positions of the out-edges of the ``frontier`` entities in the owner-sorted edge arrays."""
    starts = offsets[frontier]
    counts = offsets[frontier + 1] - starts
    ends = xp.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    if not total:
        return xp.zeros(0, dtype=xp.int64)
    position = xp.arange(total, dtype=xp.int64)
    segment = xp.searchsorted(ends, position, side="right")
    return starts[segment] + position - (ends[segment] - counts[segment])


def _check(owner, owned, bp, listed, threshold_bp, xp):
    n = len(listed)
    if not (len(owner) == len(owned) == len(bp)):
        raise ValueError(f"owner, owned and bp differ in length: {len(owner)}, {len(owned)}, {len(bp)}")
    if int(threshold_bp) < 1:
        raise ValueError(f"threshold_bp must be at least 1, not {threshold_bp}")
    if len(owner):
        low = min(int(owner.min()), int(owned.min()))
        high = max(int(owner.max()), int(owned.max()))
        if low < 0 or high >= n:
            raise ValueError(f"entity index out of range 0..{n - 1}: {low if low < 0 else high}")
        if int(bp.min()) < 1 or int(bp.max()) > MAX_BP:
            raise ValueError(f"holdings must be 1..{MAX_BP} basis points, found {int(bp.min())}..{int(bp.max())}")


def _matrix(owner, owned, bp, n: int, xp):
    """The holdings as a sparse matrix in CSR form by owner, one entry per (owner, owned) pair.

    Returns ``(offsets, owned, bp, owner)``: entries sorted by owner then owned, repeated pairs
    summed, holdings of an entity in itself dropped.
    """
    keep = owner != owned
    owner, owned, bp = owner[keep], owned[keep], bp[keep]
    if n > MAX_ENTITIES:  # pragma: no cover - owner * n + owned must fit int64
        raise ValueError(f"at most {MAX_ENTITIES} entities, not {n}")
    pair, sums = segment_sums(owner * n + owned, bp, xp)
    owner, owned = pair // n, pair % n
    offsets = xp.searchsorted(owner, xp.arange(n + 1, dtype=xp.int64), side="left")
    return offsets, owned, sums, owner


def _fixpoint(offsets, e_owned, e_bp, qualified, threshold_bp: int, xp):
    """Run the cascade in place on ``qualified``; returns ``(held_bp, steps)``."""
    n = len(qualified)
    held = xp.zeros(n, dtype=xp.int64)
    frontier = xp.flatnonzero(qualified).astype(xp.int64)
    steps = 0
    while len(frontier):
        steps += 1
        edges = _gather(frontier, offsets, xp)
        targets, sums = segment_sums(e_owned[edges], e_bp[edges], xp)
        held[targets] += sums  # targets are distinct
        frontier = targets[(held[targets] >= threshold_bp) & ~qualified[targets]]
        qualified[frontier] = True
    return held, steps


def _levels(offsets, e_owned, e_bp, e_owner, listed_mask, affiliate, xp):
    """Breadth-first levels and parents over holdings from listed parties into affiliates."""
    n = len(affiliate)
    level = xp.full(n, -1, dtype=xp.int32)
    parent = xp.full(n, -1, dtype=xp.int64)
    frontier = xp.flatnonzero(listed_mask).astype(xp.int64)
    level[frontier] = 0
    depth = 0
    while len(frontier):
        depth += 1
        edges = _gather(frontier, offsets, xp)
        owners = e_owner[edges]
        targets = e_owned[edges]
        fresh = affiliate[targets] & (level[targets] < 0)
        edges, owners, targets = edges[fresh], owners[fresh], targets[fresh]
        if not len(targets):
            break
        # Per target: the largest holding, then the lowest owner (owners ascend in a gather).
        order = _argsort(-e_bp[edges], xp, stable=True)
        order = order[_argsort(targets[order], xp, stable=True)]
        starts, _ = _runs(targets[order], xp)
        first = order[starts]
        frontier = targets[first]
        level[frontier] = depth
        parent[frontier] = owners[first]
    return level, parent


def _bits(mask: int):
    """Bit positions set in a 64-bit mask."""
    mask &= (1 << 64) - 1
    return [bit for bit in range(64) if mask >> bit & 1]


def _lists(offsets, e_owned, e_owner, listed, listed_mask, qualified, affiliate, xp):
    """List bitmasks: own bits for listed entities; the OR of qualified owners' lists otherwise.

    For affiliates a bit is set when a listed party carrying it reaches the affiliate through
    affiliates (reachability per bit, the least fixpoint of the OR); every other entity then takes
    the OR over its direct qualified owners in one pass. Scatters write equal values only.
    """
    n = len(listed)
    ulisted = listed.view(xp.uint64)
    used = 0
    for mask in xp.unique(listed).tolist():  # few distinct masks
        used |= int(mask)
    out = xp.where(listed_mask, ulisted, xp.zeros(1, dtype=xp.uint64))
    carrying = {}
    for bit in _bits(used):
        one = xp.uint64(1 << bit)
        reached = (ulisted & one) != 0
        frontier = xp.flatnonzero(reached).astype(xp.int64)
        while len(frontier):
            targets = e_owned[_gather(frontier, offsets, xp)]
            targets = targets[affiliate[targets] & ~reached[targets]]
            reached[targets] = True
            frontier = xp.unique(targets)
        carrying[bit] = reached
    stake = qualified[e_owner] & ~listed_mask[e_owned]
    for bit, reached in carrying.items():
        has = xp.zeros(n, dtype=bool)
        has[e_owned[stake & reached[e_owner]]] = True
        out = out | (has.astype(xp.uint64) << xp.uint64(bit))
    return out.view(xp.int64)


def resolve_affiliates(owner, owned, bp, listed, *, threshold_bp: int = 5000, xp=None) -> Affiliates:
    """Affiliates of listed parties by ownership: the cascade of issue 19 to its fixpoint.

    Parameters
    ----------
    owner, owned : array of int64, shape (m,)
        Entity indices (``0..n-1``) of each holding's owner and owned entity.
    bp : array of int64, shape (m,)
        Basis points of each holding, ``1..10000``. Holdings of one owner in one entity are
        summed; a holding of an entity in itself is ignored.
    listed : array of int64, shape (n,)
        List bitmask per entity; ``0``: not listed.
    threshold_bp : int
        Basis points that make an affiliate (5000: 50 percent).
    xp : module, optional
        Array namespace; inferred from ``listed`` when omitted. Inputs are moved into it.

    Returns
    -------
    Affiliates

    Raises
    ------
    ValueError
        Arrays of different lengths, an index out of range, a holding outside 1..10000 basis
        points, or a threshold below 1.

    Examples
    --------
    Listed A (0) owns 50% of B (1), B owns 50% of C (2):

    >>> import numpy as np
    >>> r = resolve_affiliates(np.array([0, 1]), np.array([1, 2]), np.array([5000, 5000]),
    ...                        np.array([1, 0, 0]))
    >>> r.affiliate.tolist(), r.level.tolist(), r.parent.tolist(), r.lists.tolist(), r.steps
    ([False, True, True], [0, 1, 2], [-1, 0, 1], [1, 1, 1], 3)
    """
    xp = xp or namespace(listed)
    listed = xp.asarray(listed, dtype=xp.int64)
    owner = xp.asarray(owner, dtype=xp.int64).ravel()
    owned = xp.asarray(owned, dtype=xp.int64).ravel()
    bp = xp.asarray(bp, dtype=xp.int64).ravel()
    _check(owner, owned, bp, listed, threshold_bp, xp)
    n = len(listed)
    offsets, e_owned, e_bp, e_owner = _matrix(owner, owned, bp, n, xp)
    listed_mask = listed != 0
    qualified = listed_mask.copy()
    held, steps = _fixpoint(offsets, e_owned, e_bp, qualified, int(threshold_bp), xp)
    affiliate = qualified & ~listed_mask
    level, parent = _levels(offsets, e_owned, e_bp, e_owner, listed_mask, affiliate, xp)
    lists = _lists(offsets, e_owned, e_owner, listed, listed_mask, qualified, affiliate, xp)
    return Affiliates(affiliate=affiliate, held_bp=held, lists=lists, level=level, parent=parent, steps=steps)
