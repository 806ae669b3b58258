"""Pair similarity of token names, one pair after another: the Numba loop, parallel over pairs.

:func:`pair_scores` scores pairs of names given as flat arrays (token ids per name, code points
and weights per token); :func:`kernels.similarity.pair_similarity` is the array form of the same
computation (NumPy or CuPy), equal to it bit for bit. The formula is described in
:mod:`pipeline.parties.score`. This module imports nothing of the pipeline.

The loop skips work that cannot change a score: a token pair whose character sets alone
(:func:`fewest_edits`, :func:`kernels.similarity.char_masks`) put its similarity under the
token threshold scores 0 without an OSA table, and the OSA table stops once its distance can
only exceed that threshold.

Every helper is inlined into :func:`pair_scores` (``inline="always"``): a call between compiled
functions passes each array with its reference count, which cost more than the scoring itself
(8.5M pairs of the 10M-row benchmark ledger: 8 s before, 3 s after, on 2 threads).
"""
from __future__ import annotations

import numba
import numpy as np

SWAP_PENALTY = 1.0
"""Subtracted per unit of the smaller unpaired weight share of the two sides (a swapped word)."""
MAX_TOKENS = 24
"""Tokens per name the loop has room for (names are cut to this many by the caller)."""

@numba.njit(cache=True, nogil=True, inline='always')
def popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(cache=True, nogil=True, inline='always')
def fewest_edits(mask_a, mask_b):
    """A lower bound of the OSA distance of two strings from their character masks.

    Each bit set on one side only stands for a character that the other string lacks, at its own
    position, so it costs its own edit; one edit mends at most one position on each side.
    """
    return max(popcount(mask_a & ~mask_b), popcount(mask_b & ~mask_a))


@numba.njit(cache=True, nogil=True, inline='always')
def osa(chars, a0, a1, b0, b1, row0, row1, row2, cap):
    """Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), exact when it
    is at most ``cap``; otherwise some value above ``cap``.

    Stops once two rows in a row are all above ``cap``: a cell comes from the row above (+0 or +1),
    its left neighbour (+1) or, by a transposition, two rows up (+1), so no later row can get back
    to ``cap`` (the distance is in the last row).
    """
    la, lb = a1 - a0, b1 - b0
    previous_low = 0  # row 0 is 0, 1, ..., lb
    for j in range(lb + 1):
        row1[j] = j
    for i in range(1, la + 1):
        row2[0] = i
        low = i
        ca = chars[a0 + i - 1]
        for j in range(1, lb + 1):
            cb = chars[b0 + j - 1]
            cost = 0 if ca == cb else 1
            best = min(row1[j] + 1, row2[j - 1] + 1, row1[j - 1] + cost)
            if i > 1 and j > 1 and ca == chars[b0 + j - 2] and chars[a0 + i - 2] == cb:
                best = min(best, row0[j - 2] + 1)
            row2[j] = best
            low = min(low, best)
        for j in range(lb + 1):
            row0[j] = row1[j]
            row1[j] = row2[j]
        if low > cap and previous_low > cap:
            return cap + 1
        previous_low = low
    return row1[lb]


@numba.njit(cache=True, nogil=True, inline='always')
def token_similarity(ta, tb, chars, offsets, kinds, masks, min_sim, row0, row1, row2):
    if ta == tb:
        return 1.0
    if kinds[ta] == 1 or kinds[tb] == 1:
        return 0.0
    a0, a1, b0, b1 = offsets[ta], offsets[ta + 1], offsets[tb], offsets[tb + 1]
    la, lb = a1 - a0, b1 - b0
    longer = max(la, lb)
    if min(la, lb) < 4 or abs(la - lb) > (1.0 - min_sim) * longer:
        return 0.0
    if 1.0 - fewest_edits(masks[ta], masks[tb]) / longer < min_sim:  # then so is the true similarity
        return 0.0
    # A distance above the cap gives a similarity below min_sim (by at least 1 / longer).
    cap = int((1.0 - min_sim) * longer) + 1
    distance = osa(chars, a0, a1, b0, b1, row0, row1, row2, cap)
    if distance > cap:
        return 0.0
    sim = 1.0 - distance / longer
    return sim if sim >= min_sim else 0.0


@numba.njit(cache=True, nogil=True, inline='always')
def joined_similarity(q_tok, t_tok, chars, offsets, masks, buf_a, buf_b, row0, row1, row2):
    """Similarity of the two names with spaces removed (for glued or split words); 0 where it is
    below 0.9, the least that counts."""
    la = 0
    mask_a = np.uint64(0)
    for t in q_tok:
        la += offsets[t + 1] - offsets[t]
        mask_a |= masks[t]
    lb = 0
    mask_b = np.uint64(0)
    for t in t_tok:
        lb += offsets[t + 1] - offsets[t]
        mask_b |= masks[t]
    longer = max(la, lb)
    if longer == 0 or abs(la - lb) > 0.1 * longer + 1:
        return 0.0
    if 1.0 - fewest_edits(mask_a, mask_b) / longer < 0.9:
        return 0.0
    k = 0
    for t in q_tok:
        for c in range(offsets[t], offsets[t + 1]):
            buf_a[k] = chars[c]
            k += 1
    k = 0
    for t in t_tok:
        for c in range(offsets[t], offsets[t + 1]):
            buf_b[k] = chars[c]
            k += 1
    joined = np.empty(la + lb, np.int32)
    joined[:la] = buf_a[:la]
    joined[la:] = buf_b[:lb]
    cap = int(0.1 * longer) + 1  # above it the similarity is below 0.9: too low to count
    distance = osa(joined, 0, la, la, la + lb, row0, row1, row2, cap)
    return 0.0 if distance > cap else 1.0 - distance / longer


@numba.njit(cache=True, nogil=True, inline='always')
def pair_score(q_tok, t_tok, chars, offsets, weights, kinds, masks, alpha, min_sim, pair_of_query, sim_of_query,
                sim, row0, row1, row2, buf_a, buf_b):
    """Score one pair; ``pair_of_query[i]`` gets the listed-token position paired with query token i."""
    m, n = len(q_tok), len(t_tok)
    for i in range(m):
        pair_of_query[i] = -1
        sim_of_query[i] = 0.0
        for j in range(n):
            sim[i, j] = token_similarity(q_tok[i], t_tok[j], chars, offsets, kinds, masks, min_sim, row0, row1,
                                          row2)
    used_t = 0  # bit j: listed token j is paired (at most MAX_TOKENS tokens); query: pair_of_query >= 0
    matched = 0.0
    while True:
        best, bi, bj = 0.0, -1, -1
        for i in range(m):
            if pair_of_query[i] >= 0:
                continue
            for j in range(n):
                if not (used_t >> j) & 1:
                    value = sim[i, j] * (1.0 + weights[t_tok[j]])
                    if value > best:
                        best, bi, bj = value, i, j
        if bi < 0:
            break
        used_t |= 1 << bj
        pair_of_query[bi] = bj
        sim_of_query[bi] = sim[bi, bj]
        matched += sim[bi, bj] * weights[t_tok[bj]]
    w_listed = 0.0
    for j in range(n):
        w_listed += weights[t_tok[j]]
    w_query = 0.0
    for i in range(m):
        w_query += weights[t_tok[pair_of_query[i]]] if pair_of_query[i] >= 0 else weights[q_tok[i]]
    if w_listed <= 0.0 or w_query <= 0.0:
        return 0.0
    # Weight left unpaired on each side: extra words on one side are common in true variants,
    # unpaired words on both sides (one word swapped for another) point to a different party.
    paired = 0.0
    for i in range(m):
        if pair_of_query[i] >= 0:
            paired += weights[t_tok[pair_of_query[i]]]
    unpaired = min((w_listed - paired) / w_listed, (w_query - paired) / w_query)
    score = alpha * matched / w_listed + (1.0 - alpha) * matched / w_query - SWAP_PENALTY * max(unpaired, 0.0)
    if m != n and score < 1.0:
        joined = joined_similarity(q_tok, t_tok, chars, offsets, masks, buf_a, buf_b, row0, row1, row2)
        if joined >= 0.9 and joined > score:
            score = joined
    return min(max(score, 0.0), 1.0)


@numba.njit(cache=True, parallel=True)
def pair_scores(q_tokens, q_offsets, t_tokens, t_offsets, pair_query, pair_listed, chars, offsets, weights,
                 kinds, masks, alpha, min_sim, max_chars, n_threads):
    """Similarity in [0, 1] of each pair ``(query pair_query[p], listed name pair_listed[p])``.

    Parameters
    ----------
    q_tokens, q_offsets, t_tokens, t_offsets : ndarray
        Token ids of each query and listed name (CSR: ``q_tokens[q_offsets[k]:q_offsets[k + 1]]``),
        at most :data:`MAX_TOKENS` per name.
    pair_query, pair_listed : ndarray of int64
        The pairs.
    chars, offsets, weights, kinds, masks : ndarray
        Per token: code points (CSR by ``offsets``), weight, kind (1: digits), character mask.
    alpha, min_sim : float
        Share of the listed side's coverage; least token similarity that counts.
    max_chars : int
        The most characters of any name (scratch size).
    n_threads : int
        Threads to share the pairs among: the pairs are cut into ``8 * n_threads`` chunks, run
        with ``numba.prange``.

    Returns
    -------
    ndarray of float64
        One score per pair.
    """
    n_pairs = len(pair_query)
    out = np.empty(n_pairs, np.float64)
    n_chunks = max(1, min(n_pairs, n_threads * 8))
    size = (n_pairs + n_chunks - 1) // n_chunks
    for chunk in numba.prange(n_chunks):
        row0 = np.empty(max_chars + 1, np.int64)
        row1 = np.empty(max_chars + 1, np.int64)
        row2 = np.empty(max_chars + 1, np.int64)
        buf_a = np.empty(max_chars, np.int32)
        buf_b = np.empty(max_chars, np.int32)
        sim = np.empty((MAX_TOKENS, MAX_TOKENS), np.float64)
        pair_of_query = np.empty(MAX_TOKENS, np.int64)
        sim_of_query = np.empty(MAX_TOKENS, np.float64)
        for p in range(chunk * size, min(n_pairs, (chunk + 1) * size)):
            q, t = pair_query[p], pair_listed[p]
            out[p] = pair_score(q_tokens[q_offsets[q]:q_offsets[q + 1]], t_tokens[t_offsets[t]:t_offsets[t + 1]],
                                 chars, offsets, weights, kinds, masks, alpha, min_sim, pair_of_query,
                                 sim_of_query, sim, row0, row1, row2, buf_a, buf_b)
    return out
