"""Blocking: the (query, listed name) pairs worth scoring.

Every informative token of a listed name yields keys (its first and last three letters, or the
whole token when short: :func:`pipeline.parties.tokens.token_keys`); a query is compared only
with the listed names that share one of its keys, skipping keys shared by more than
:data:`MAX_KEY_POSTINGS` names unless the query has no rarer key. One Numba pass over the
queries' token arrays, no Python loop per name.
"""
from __future__ import annotations

import numba
import numpy as np

from pipeline.parties.tokens import MAX_FALLBACK_POSTINGS, MAX_KEY_POSTINGS, TokenArrays, TokenTable

@numba.njit(cache=True)
def _candidate_pairs(q_tokens, q_offsets, key_ids, key_offsets, postings, posting_offsets, n_listed,
                     max_postings, max_fallback, count_only, out_query, out_listed):
    """Pairs (query, listed name) sharing a usable blocking key; returns how many."""
    stamp = np.full(n_listed, -1, np.int64)
    n = 0
    keys = np.empty(4 * (q_offsets[1:] - q_offsets[:-1]).max() + 4 if len(q_offsets) > 1 else 4, np.int64)
    for q in range(len(q_offsets) - 1):
        n_keys = 0
        rarest, rarest_size = -1, max_fallback + 1
        for p in range(q_offsets[q], q_offsets[q + 1]):
            token = q_tokens[p]
            for k in range(key_offsets[token], key_offsets[token + 1]):
                key = key_ids[k]
                size = posting_offsets[key + 1] - posting_offsets[key]
                if size <= max_postings:
                    keys[n_keys] = key
                    n_keys += 1
                elif size < rarest_size:
                    rarest, rarest_size = key, size
        if n_keys == 0 and rarest >= 0:
            keys[0] = rarest
            n_keys = 1
        for a in range(n_keys):
            key = keys[a]
            for p in range(posting_offsets[key], posting_offsets[key + 1]):
                name = postings[p]
                if stamp[name] != q:
                    stamp[name] = q
                    if not count_only:
                        out_query[n] = q
                        out_listed[n] = name
                    n += 1
    return n


def candidate_pairs(queries: TokenArrays, table: TokenTable, max_postings: int = MAX_KEY_POSTINGS,
                    max_fallback: int = MAX_FALLBACK_POSTINGS) -> tuple[np.ndarray, np.ndarray]:
    """Blocking: the (query, listed name) pairs worth scoring.

    Returns
    -------
    pair_query, pair_listed : ndarray of int64
        Pairs grouped by query, in query order; each pair once.
    """
    _, _, _, _, key_ids, key_offsets = table.arrays()
    args = (queries.tokens, queries.offsets, key_ids, key_offsets, table.postings, table.posting_offsets,
            table.n_listed, max_postings, max_fallback)
    empty = np.zeros(0, np.int64)
    n = _candidate_pairs(*args, True, empty, empty)
    pair_query, pair_listed = np.empty(n, np.int64), np.empty(n, np.int64)
    _candidate_pairs(*args, False, pair_query, pair_listed)
    return pair_query, pair_listed

