"""Pairwise name similarity vectorised over pairs, written against an array namespace ``xp``.

:func:`pair_similarity` computes what :func:`kernels.pair_scores.pair_scores` (Numba, one pair
after another) computes, from the same flat arrays, in whole-array steps that run on NumPy and
on CuPy. The caller owns tokenisation and weights; this module imports nothing of the pipeline.

Steps, per batch of pairs:

1. Token similarities. Every (query token, listed token) of every pair, deduplicated with
   ``unique``: equal tokens score 1; a token with digits, a token shorter than 4 letters or a
   length difference over ``(1 - min_token_similarity)`` of the longer one scores 0; the rest
   ``1 - OSA distance / longer length`` (0 below ``min_token_similarity``). The OSA distances
   (Levenshtein plus adjacent transpositions) of a batch of string pairs are computed along the
   anti-diagonals of their dynamic-programming tables, one whole-array step per anti-diagonal
   (:func:`osa_distances`).
2. Greedy pairing. Pairs are grouped by padded token counts ``(M, N)``; per group a
   ``(pairs, M, N)`` matrix of ``similarity * (1 + listed weight)``, then ``min(M, N)`` rounds of
   ``argmax`` (the first maximum in row-major order, as the CPU scan takes it), each pairing the
   two tokens and zeroing their row and column.
3. The score: weights summed token by token in token order, the coverage formula, the penalty
   for weight left unpaired on both sides, and for pairs with unequal token counts the
   similarity of the two names with spaces removed (glued words); clipped to [0, 1].

Every floating-point operation is the CPU one, on the same operands, in the same order (sums run
token by token, not by pairwise reduction), so on NumPy the scores equal the Numba ones bit for
bit. On CuPy each step is its own elementwise kernel doing one IEEE double operation (division
correctly rounded, nothing to contract into a multiply-add), so the scores must be bit for bit
the same there too: the tests assert exact equality on every namespace. A fused kernel added
later must compile with :data:`kernels.NO_FMA_OPTIONS`.

Ties. Greedy pairing takes the first maximum in row-major order (``argmax``), as the CPU scan;
CuPy's ``argmax`` must break ties the same way (not verified on a device yet: the device tests
include tied similarities, and a tie broken otherwise changes scores).

Cost. A batch of pairs launches one kernel per step: about 200,000 launches and 1,900
synchronisations per batch of 4M pairs. That is why ``auto`` leaves pair scoring on the CPU
(:attr:`kernels.backend.Backend.pairs_on_device`) until a device measurement
(``benchmarks/gpu_check.sh``) shows this form faster than the Numba loop.
"""
from __future__ import annotations

import numpy as np

JOINED_MIN_SIMILARITY = 0.9
"""Glued-word similarity that replaces a lower score (as in :mod:`kernels.pair_scores`)."""
JOINED_LENGTH_SLACK = 0.1
"""Names whose lengths without spaces differ by more than this share of the longer one, plus 1,
are not compared glued."""

MAX_CELLS = 1 << 23
"""Padded cells (pairs x tokens x tokens, or strings x characters) one whole-array step may use."""

_BIG = 1 << 20
_WIDTHS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def pair_similarity(q_tokens, q_offsets, t_tokens, t_offsets, pair_query, pair_listed, chars, char_offsets,
                    weights, kinds, *, alpha: float, min_token_similarity: float, swap_penalty: float, xp=np,
                    max_cells: int = MAX_CELLS, masks=None):
    """Similarity in [0, 1] of each pair ``(query pair_query[p], listed name pair_listed[p])``.

    Parameters
    ----------
    q_tokens, q_offsets : array of int
        Token ids of query name ``k``: ``q_tokens[q_offsets[k]:q_offsets[k + 1]]``.
    t_tokens, t_offsets : array of int
        The same for the listed names.
    pair_query, pair_listed : array of int
        The pairs, as name indices of each side.
    chars, char_offsets : array of int
        Code points of token ``t``: ``chars[char_offsets[t]:char_offsets[t + 1]]``.
    weights : array of float64
        Weight per token (positive).
    kinds : array of int8
        Kind per token; kind 1 (digits) only ever equals itself.
    alpha, min_token_similarity, swap_penalty : float
        As :data:`pipeline.parties.ALPHA`, ``MIN_TOKEN_SIMILARITY`` and ``SWAP_PENALTY``.
    xp : module
        :mod:`numpy` or :mod:`cupy`; host arrays are moved to it.
    max_cells : int
        Bound on the padded cells of one step (memory).
    masks : array of uint64, optional
        Character mask per token (:func:`char_masks`): token pairs and glued names whose
        characters alone keep them under their threshold skip the OSA distance. Same scores.

    Returns
    -------
    array of float64, in ``xp``
        One score per pair; a name without tokens scores 0.
    """
    i64 = xp.int64
    ctx = {
        "q_tokens": xp.asarray(q_tokens).astype(i64), "q_offsets": xp.asarray(q_offsets).astype(i64),
        "t_tokens": xp.asarray(t_tokens).astype(i64), "t_offsets": xp.asarray(t_offsets).astype(i64),
        "chars": xp.asarray(chars).astype(xp.int32), "char_offsets": xp.asarray(char_offsets).astype(i64),
        "weights": xp.asarray(weights).astype(xp.float64), "kinds": xp.asarray(kinds).astype(xp.int8),
        "alpha": float(alpha), "min_sim": float(min_token_similarity), "swap": float(swap_penalty),
        "max_cells": int(max_cells), "xp": xp,
        "masks": xp.asarray(masks).astype(xp.uint64) if masks is not None else None,
    }
    pair_query = xp.asarray(pair_query).astype(i64)
    pair_listed = xp.asarray(pair_listed).astype(i64)
    out = xp.zeros(len(pair_query), dtype=xp.float64)
    if len(pair_query) == 0:
        return out
    m = ctx["q_offsets"][pair_query + 1] - ctx["q_offsets"][pair_query]
    n = ctx["t_offsets"][pair_listed + 1] - ctx["t_offsets"][pair_listed]
    sizes = _padded_sizes(int(max(int(m.max()), int(n.max()))))
    sizes_xp = xp.asarray(sizes)
    gm = sizes_xp[xp.searchsorted(sizes_xp, m)]
    gn = sizes_xp[xp.searchsorted(sizes_xp, n)]
    # Batches of consecutive pairs holding about max_cells padded token cells each.
    cum = xp.cumsum(gm * gn)
    total = int(cum[-1])
    step = max(int(max_cells), 1)
    cuts = _to_host(xp, xp.searchsorted(cum, xp.asarray(np.arange(1, total // step + 1, dtype=np.int64) * step),
                                        side="right"))
    bounds = sorted({0, len(pair_query), *(int(c) for c in cuts if 0 < c < len(pair_query))})
    for start, stop in zip(bounds[:-1], bounds[1:]):
        if stop > start:
            out[start:stop] = _score_batch(ctx, pair_query[start:stop], pair_listed[start:stop], m[start:stop],
                                           n[start:stop], gm[start:stop], gn[start:stop])
    return out


def _padded_sizes(largest: int) -> np.ndarray:
    sizes = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24]
    while sizes[-1] < largest:
        sizes.append(sizes[-1] * 2)
    return np.asarray(sizes, dtype=np.int64)


def _to_host(xp, array) -> np.ndarray:
    return array if xp is np else xp.asnumpy(array)


def _token_matrix(xp, tokens, offsets, names, counts, width):
    """``(len(names), width)`` token ids of ``names``, ``-1`` past each name's end."""
    column = xp.arange(width, dtype=xp.int64)
    valid = column[None, :] < counts[:, None]
    position = offsets[names][:, None] + column[None, :]
    position = xp.where(valid, position, 0)
    gathered = tokens[position] if len(tokens) else xp.zeros(position.shape, dtype=xp.int64)
    return xp.where(valid, gathered, -1)


def _score_batch(ctx, pq, pl, m, n, gm, gn):
    xp = ctx["xp"]
    offsets = ctx["char_offsets"]
    n_tokens = len(offsets) - 1
    out = xp.zeros(len(pq), dtype=xp.float64)
    codes = gm * (int(gn.max()) + 1) + gn
    groups = []
    for code in _to_host(xp, xp.unique(codes)).tolist():
        rows = xp.flatnonzero(codes == code)
        width_q, width_t = int(gm[rows[0]]), int(gn[rows[0]])
        if width_q == 0 or width_t == 0:
            continue  # a name without tokens has no weight: score 0
        q = _token_matrix(xp, ctx["q_tokens"], ctx["q_offsets"], pq[rows], m[rows], width_q)
        t = _token_matrix(xp, ctx["t_tokens"], ctx["t_offsets"], pl[rows], n[rows], width_t)
        cells = (q[:, :, None] >= 0) & (t[:, None, :] >= 0)
        keys = q[:, :, None] * n_tokens + t[:, None, :]
        groups.append((rows, q, t, cells, keys[cells]))
    if not groups:
        return out
    # 1. token similarities, once per distinct token pair of the batch
    unique, inverse = xp.unique(xp.concatenate([g[4] for g in groups]), return_inverse=True)
    inverse = inverse.reshape(-1)
    token_sim = token_similarities(xp, unique // n_tokens, unique % n_tokens, ctx["chars"], offsets, ctx["kinds"],
                                   ctx["min_sim"], ctx["max_cells"], ctx["masks"])
    start = 0
    for rows, q, t, cells, keys in groups:
        sim = xp.zeros(cells.shape, dtype=xp.float64)
        sim[cells] = token_sim[inverse[start:start + len(keys)]]
        start += len(keys)
        out[rows] = _group_scores(ctx, q, t, sim)
    return out


def char_masks(chars, offsets) -> np.ndarray:
    """Per token, the set of its characters as 64 bits (on the host): one bit each for ``a``-``z``
    and ``0``-``9``, the other code points hashed onto the remaining 28.

    Examples
    --------
    >>> import numpy as np
    >>> char_masks(np.array([ord(c) for c in "abba0"], np.int32), np.array([0, 4, 5])).tolist()
    [3, 67108864]
    """
    chars = np.asarray(chars, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    bits = np.where((chars >= 97) & (chars <= 122), chars - 97,
                    np.where((chars >= 48) & (chars <= 57), chars - 22, 36 + chars % 28))
    values = np.left_shift(np.uint64(1), bits.astype(np.uint64))
    lengths = np.diff(offsets)
    masks = np.zeros(len(lengths), dtype=np.uint64)
    filled = np.flatnonzero(lengths > 0)
    if len(filled):
        masks[filled] = np.bitwise_or.reduceat(values, offsets[filled])[: len(filled)] if len(values) else 0
    return masks


def _popcount(xp, x):
    x = x - ((x >> 1) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> 2) & np.uint64(0x3333333333333333))
    x = (x + (x >> 4)) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((x * np.uint64(0x0101010101010101)) >> 56).astype(xp.int64)


def fewest_edits(xp, mask_a, mask_b):
    """Lower bound of the OSA distance of strings with character masks ``mask_a`` and ``mask_b``
    (:func:`char_masks`): a character one side lacks costs its own edit, and one edit mends at
    most one position on each side."""
    return xp.maximum(_popcount(xp, mask_a & ~mask_b), _popcount(xp, mask_b & ~mask_a))


def token_similarities(xp, a, b, chars, offsets, kinds, min_sim: float, max_cells: int = MAX_CELLS, masks=None):
    """Similarity of token ``a[k]`` (query) to token ``b[k]`` (listed), as the CPU's token rule.

    ``masks`` (:func:`char_masks`, in ``xp``) lets pairs whose characters alone rule them out skip
    the OSA distance; the result is the same.

    Returns
    -------
    array of float64
        1 for equal ids; 0 when either has digits (kind 1), the shorter has under 4 characters,
        or the lengths differ by more than ``(1 - min_sim)`` of the longer; else ``1 - OSA /
        longer``, set to 0 below ``min_sim``.
    """
    la = offsets[a + 1] - offsets[a]
    lb = offsets[b + 1] - offsets[b]
    longer = xp.maximum(la, lb)
    out = xp.where(a == b, 1.0, 0.0)
    fuzzy = ((a != b) & (kinds[a] != 1) & (kinds[b] != 1) & (xp.minimum(la, lb) >= 4)
             & ~(xp.abs(la - lb) > (1.0 - min_sim) * longer))
    if masks is not None:  # the bound puts the similarity under min_sim: so is the true one
        fuzzy &= ~(1.0 - fewest_edits(xp, masks[a], masks[b]) / xp.maximum(longer, 1) < min_sim)
    which = xp.flatnonzero(fuzzy)
    if len(which):
        starts_a, starts_b = offsets[a[which]], offsets[b[which]]

        def build(rows, width):
            return (_gather_chars(xp, chars, starts_a[rows], la[which][rows], width, -1),
                    _gather_chars(xp, chars, starts_b[rows], lb[which][rows], width, -2))

        distance = osa_distances(xp, la[which], lb[which], build, max_cells)
        sim = 1.0 - distance / longer[which]
        out[which] = xp.where(sim >= min_sim, sim, 0.0)
    return out


def _gather_chars(xp, chars, starts, lengths, width, fill):
    column = xp.arange(width, dtype=xp.int64)
    valid = column[None, :] < lengths[:, None]
    position = xp.where(valid, starts[:, None] + column[None, :], 0)
    return xp.where(valid, chars[position], fill).astype(xp.int32)


def _joined_chars(xp, tokens, chars, offsets, width, fill):
    """``(rows, width)`` code points of each row's tokens written without spaces (``tokens``
    padded with ``-1``), and each row's length."""
    valid = tokens >= 0
    lengths = xp.where(valid, offsets[xp.maximum(tokens, 0) + 1] - offsets[xp.maximum(tokens, 0)], 0)
    column_start = xp.cumsum(lengths, axis=1) - lengths
    row_lengths = lengths.sum(axis=1)
    out = xp.full((tokens.shape[0], width), fill, dtype=xp.int32)
    flat_rows = xp.nonzero(valid)[0]
    flat_tokens = tokens[valid]
    flat_lengths = lengths[valid]
    flat_columns = column_start[valid]
    ends = xp.cumsum(flat_lengths)
    total = int(ends[-1]) if len(ends) else 0
    if total:
        position = xp.arange(total, dtype=xp.int64)
        token = xp.searchsorted(ends, position, side="right")
        within = position - (ends[token] - flat_lengths[token])
        out[flat_rows[token], flat_columns[token] + within] = chars[offsets[flat_tokens[token]] + within]
    return out, row_lengths


def osa_distances(xp, la, lb, build, max_cells: int = MAX_CELLS):
    """Optimal-string-alignment distances of a batch of string pairs.

    Parameters
    ----------
    xp : module
    la, lb : array of int
        Lengths of the strings of each pair.
    build : callable
        ``build(rows, width)`` returns the two ``(len(rows), width)`` int32 code-point matrices
        of the pairs ``rows``, padded past each string's end with distinct negative fills
        (``-1`` on the first side, ``-2`` on the second).
    max_cells : int
        Bound on pairs times padded width per step.

    Returns
    -------
    array of int32
        One distance per pair.

    Notes
    -----
    Pairs are bucketed by the longer length (widths 8, 16, 24, 32, 48 ...). Within a bucket the
    table ``D[i, j]`` is filled one anti-diagonal ``i + j = d`` at a time, for all pairs at once:
    ``D[i, j] = min(D[i-1, j] + 1, D[i, j-1] + 1, D[i-1, j-1] + (a[i-1] != b[j-1]))``, and
    ``D[i-2, j-2] + 1`` when ``a[i-1] == b[j-2]`` and ``a[i-2] == b[j-1]``. A pair's distance is
    read on its diagonal ``la + lb`` at ``i = la``; cells past a string's end never feed it.
    """
    out = xp.zeros(len(la), dtype=xp.int32)
    if len(la) == 0:
        return out
    longer = xp.maximum(la, lb)
    top = int(longer.max())
    widths = list(_WIDTHS)
    while widths[-1] < top:
        widths.append(widths[-1] * 2)
    widths_xp = xp.asarray(np.asarray(widths, dtype=np.int64))
    bucket = xp.searchsorted(widths_xp, longer)
    for index in _to_host(xp, xp.unique(bucket)).tolist():
        rows = xp.flatnonzero(bucket == index)
        width = widths[index]
        step = max(max_cells // (width + 1), 1)
        for begin in range(0, len(rows), step):
            part = rows[begin:begin + step]
            a, b = build(part, width)
            out[part] = _osa_padded(xp, a, la[part], b, lb[part])
    return out


def _osa_padded(xp, a, la, b, lb):
    """OSA distances of the rows of two padded code-point matrices, along anti-diagonals."""
    rows, width = a.shape
    i32 = xp.int32
    pad = width + 2
    filler = xp.full((rows, pad), -2, dtype=i32)
    # b[c] sits at column pad + width - 1 - c, so b[j - 1] for i = 1..width on diagonal d is one slice.
    b_ext = xp.concatenate([filler, b[:, ::-1].astype(i32), filler], axis=1)
    a = a.astype(i32)
    big = xp.full((rows, width + 1), _BIG, dtype=i32)
    first = big.copy()
    first[:, 0] = 0
    prev1, prev2, prev3, prev4 = first, big, big, big  # diagonals d - 1 .. d - 4
    target = (la + lb).astype(xp.int64)
    at = la.astype(xp.int64)[:, None]
    out = xp.zeros(rows, dtype=i32)
    last = int(target.max())
    a_now, a_next, a_prev = a[:, :width], a[:, 1:], a[:, :width - 1]
    for d in range(1, last + 1):
        base = pad + width - d
        cost = (a_now != b_ext[:, base + 1:base + width + 1]).astype(i32)
        inner = xp.minimum(xp.minimum(prev1[:, :width], prev1[:, 1:]) + 1, prev2[:, :width] + cost)
        if width >= 2:
            swap = (a_next == b_ext[:, base + 3:base + width + 2]) & (a_prev == b_ext[:, base + 2:base + width + 1])
            inner[:, 1:] = xp.where(swap, xp.minimum(inner[:, 1:], prev4[:, :width - 1] + 1), inner[:, 1:])
        current = xp.empty((rows, width + 1), dtype=i32)
        current[:, 1:] = inner
        current[:, 0] = d  # i = 0, j = d
        if d <= width:
            current[:, d] = d  # j = 0
        out = xp.where(target == d, xp.take_along_axis(current, at, axis=1)[:, 0], out)
        prev1, prev2, prev3, prev4 = current, prev1, prev2, prev3
    return out


def _group_scores(ctx, q, t, sim):
    """Scores of one group of pairs: ``q`` (P, M) and ``t`` (P, N) token ids, ``sim`` their similarities."""
    xp, weights = ctx["xp"], ctx["weights"]
    alpha, swap = ctx["alpha"], ctx["swap"]
    count, width_q, width_t = sim.shape
    valid_q, valid_t = q >= 0, t >= 0
    w_q = xp.where(valid_q, weights[xp.maximum(q, 0)], 0.0)
    w_t = xp.where(valid_t, weights[xp.maximum(t, 0)], 0.0)
    # 2. greedy pairing, best value first; ties: the first in row-major order, as the CPU scan
    value = sim * (1.0 + w_t)[:, None, :]
    value = xp.where(valid_q[:, :, None] & valid_t[:, None, :], value, 0.0)
    rows = xp.arange(count, dtype=xp.int64)
    pair_of = xp.full((count, width_q), -1, dtype=xp.int64)
    matched = xp.zeros(count, dtype=xp.float64)
    for _ in range(min(width_q, width_t)):
        flat = value.reshape(count, width_q * width_t)
        index = xp.argmax(flat, axis=1)
        active = flat[rows, index] > 0.0
        if not bool(active.any()):
            break
        bi, bj = index // width_t, index % width_t
        matched = xp.where(active, matched + sim[rows, bi, bj] * w_t[rows, bj], matched)
        pair_of[rows, bi] = xp.where(active, bj, pair_of[rows, bi])
        value[rows, bi, :] = 0.0
        value[rows, :, bj] = 0.0
    # 3. weight sums token by token, in token order, as the CPU loops add them
    paired_w = xp.where(pair_of >= 0, xp.take_along_axis(w_t, xp.maximum(pair_of, 0), axis=1), 0.0)
    w_listed = xp.zeros(count, dtype=xp.float64)
    for j in range(width_t):
        w_listed = w_listed + w_t[:, j]
    w_query = xp.zeros(count, dtype=xp.float64)
    paired = xp.zeros(count, dtype=xp.float64)
    for i in range(width_q):
        w_query = w_query + xp.where(pair_of[:, i] >= 0, paired_w[:, i], w_q[:, i])
        paired = paired + paired_w[:, i]
    ok = (w_listed > 0.0) & (w_query > 0.0)
    w_listed = xp.where(ok, w_listed, 1.0)
    w_query = xp.where(ok, w_query, 1.0)
    unpaired = xp.minimum((w_listed - paired) / w_listed, (w_query - paired) / w_query)
    score = alpha * matched / w_listed + (1.0 - alpha) * matched / w_query - swap * xp.maximum(unpaired, 0.0)
    score = xp.where(ok, score, 0.0)
    # glued words: unequal token counts, compared with spaces removed
    m, n = valid_q.sum(axis=1), valid_t.sum(axis=1)
    char_len = ctx["char_offsets"][1:] - ctx["char_offsets"][:-1]
    la = xp.where(valid_q, char_len[xp.maximum(q, 0)], 0).sum(axis=1)
    lb = xp.where(valid_t, char_len[xp.maximum(t, 0)], 0).sum(axis=1)
    longer = xp.maximum(la, lb)
    glued = ok & (m != n) & (score < 1.0) & (longer > 0) & ~(xp.abs(la - lb) > JOINED_LENGTH_SLACK * longer + 1)
    masks = ctx["masks"]
    if masks is not None:  # names whose characters alone keep them under the glued threshold
        mask_q = xp.zeros(count, dtype=xp.uint64)
        mask_t = xp.zeros(count, dtype=xp.uint64)
        for i in range(width_q):
            mask_q |= xp.where(valid_q[:, i], masks[xp.maximum(q[:, i], 0)], np.uint64(0))
        for j in range(width_t):
            mask_t |= xp.where(valid_t[:, j], masks[xp.maximum(t[:, j], 0)], np.uint64(0))
        glued &= ~(1.0 - fewest_edits(xp, mask_q, mask_t) / xp.maximum(longer, 1) < JOINED_MIN_SIMILARITY)
    which = xp.flatnonzero(glued)
    if len(which):
        q_sel, t_sel = q[which], t[which]

        def build(part, width):
            return (_joined_chars(xp, q_sel[part], ctx["chars"], ctx["char_offsets"], width, -1)[0],
                    _joined_chars(xp, t_sel[part], ctx["chars"], ctx["char_offsets"], width, -2)[0])

        distance = osa_distances(xp, la[which], lb[which], build, ctx["max_cells"])
        joined = 1.0 - distance / longer[which]
        before = score[which]
        score[which] = xp.where((joined >= JOINED_MIN_SIMILARITY) & (joined > before), joined, before)
    return xp.minimum(xp.maximum(score, 0.0), 1.0)
