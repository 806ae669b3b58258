"""Fuzzy scoring of name pairs and the best listed names per query.

Two names, as sequences of weighted tokens (:mod:`pipeline.parties.tokens`), score

    score = ALPHA * M / W_listed + (1 - ALPHA) * M / W_query

where ``M`` is the weighted similarity of the tokens paired one-to-one (greedily, best pair first;
equal tokens score 1, others ``1 - OSA distance / longer length`` when at least
:data:`MIN_TOKEN_SIMILARITY`, else 0) and ``W`` the total weight of each side, less
:data:`SWAP_PENALTY` per unit of weight left unpaired on both sides. Names whose tokens differ only
in spacing ("Ramimakhlouf", "Rami Makhlouf") are also compared with spaces removed.

:func:`score_pairs` is a function of flat arrays: the Numba loop on the CPU
(:func:`kernels.pair_scores.pair_scores`, parallel over pairs on all Numba threads), or with a
CuPy backend the array form of the same computation (:func:`kernels.similarity.pair_similarity`),
equal to it bit for bit on NumPy.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numba
import numpy as np

from kernels.backend import Backend, select_backend
from kernels.pair_scores import pair_score, pair_scores
from pipeline.parties.candidates import candidate_pairs
from pipeline.parties.tokens import ALPHA, MAX_TOKENS, MIN_TOKEN_SIMILARITY, SWAP_PENALTY, TokenArrays, TokenTable

def score_pairs(queries: TokenArrays, listed: TokenArrays, pair_query: np.ndarray, pair_listed: np.ndarray,
                table: TokenTable, alpha: float = ALPHA, min_token_similarity: float = MIN_TOKEN_SIMILARITY,
                backend: str | Backend | None = None) -> np.ndarray:
    """Similarity in [0, 1] of each pair ``(queries[pair_query[p]], listed[pair_listed[p]])``.

    Parameters
    ----------
    queries, listed : TokenArrays
        Token ids of the names on each side (ids of ``table``).
    pair_query, pair_listed : ndarray of int
        The pairs to score, as indices into ``queries`` and ``listed``.
    table : TokenTable
        The vocabulary: characters, weights and kinds of the tokens.
    alpha, min_token_similarity : float
        See :data:`ALPHA` and :data:`MIN_TOKEN_SIMILARITY`.
    backend : {"auto", "numpy", "cupy"} or Backend, optional
        Where to score (:func:`kernels.backend.select_backend`). ``None``, ``numpy`` or ``auto``:
        the Numba loop, in parallel over pairs; an explicit ``cupy``: the vectorized form
        (:func:`kernels.similarity.pair_similarity`) on the GPU
        (:attr:`kernels.backend.Backend.scores_pairs_on_device`).

    Returns
    -------
    ndarray of float64
        One score per pair (on the host); symmetric formulas aside, equal names score 1.0.

    Notes
    -----
    Pure function of arrays. The vectorized form performs the same floating-point operations in
    the same order: on NumPy its scores equal the Numba ones bit for bit.
    """
    chars, offsets, weights, kinds, _, _ = table.arrays()
    if backend is not None:
        backend = select_backend(backend)
        if backend.scores_pairs_on_device:
            return _score_pairs_on(backend, queries, listed, pair_query, pair_listed, chars, offsets, weights,
                                   kinds, alpha, min_token_similarity, table.masks())
    max_chars = int(max(_max_name_chars(queries, offsets), _max_name_chars(listed, offsets), 1))
    return pair_scores(queries.tokens, queries.offsets, listed.tokens, listed.offsets,
                       np.asarray(pair_query, np.int64), np.asarray(pair_listed, np.int64), chars, offsets,
                       weights, kinds, table.masks(), float(alpha), float(min_token_similarity),
                       max_chars, numba.get_num_threads())


GPU_BYTES_PER_CELL = 96
"""Device bytes one padded cell of :func:`kernels.similarity.pair_similarity` may take at its peak
(token-pair keys, similarities and values; the OSA diagonals); counted at about 64, rounded up."""


def _score_pairs_on(backend: Backend, queries: TokenArrays, listed: TokenArrays, pair_query, pair_listed, chars,
                    offsets, weights, kinds, alpha, min_token_similarity, masks=None) -> np.ndarray:
    """:func:`score_pairs` by the vectorized form on ``backend``; steps sized from its free memory."""
    from kernels.similarity import MAX_CELLS, pair_similarity

    free = backend.free_bytes()
    cells = MAX_CELLS if free is None else int(min(max(free * 0.5 // GPU_BYTES_PER_CELL, 1 << 20), 1 << 26))
    scores = pair_similarity(queries.tokens, queries.offsets, listed.tokens, listed.offsets, pair_query, pair_listed,
                             chars, offsets, weights, kinds, alpha=alpha, min_token_similarity=min_token_similarity,
                             swap_penalty=SWAP_PENALTY, xp=backend.xp, max_cells=cells, masks=masks)
    return backend.to_host(scores)


def _max_name_chars(names: TokenArrays, offsets: np.ndarray) -> int:
    if len(names.tokens) == 0:
        return 0
    lengths = offsets[names.tokens.astype(np.int64) + 1] - offsets[names.tokens]
    total = np.concatenate([[0], np.cumsum(lengths)])
    return int((total[names.offsets[1:]] - total[names.offsets[:-1]]).max())


def explain_pair(query: Sequence[int], listed: Sequence[int], table: TokenTable,
                 alpha: float = ALPHA, min_token_similarity: float = MIN_TOKEN_SIMILARITY) -> tuple[float, str]:
    """Score one pair and say which tokens were paired.

    Returns
    -------
    score : float
    explanation : str
        ``query_token=listed_token(similarity)`` items, space-separated; unpaired query tokens
        read ``token=-``.
    """
    chars, offsets, weights, kinds, _, _ = table.arrays()
    q = np.asarray(query, np.int32)
    t = np.asarray(listed, np.int32)
    longest = int(sum(offsets[i + 1] - offsets[i] for i in list(q) + list(t))) + 1
    pair_of_query = np.empty(MAX_TOKENS, np.int64)
    sim_of_query = np.empty(MAX_TOKENS, np.float64)
    scratch = [np.empty(longest + 1, np.int64) for _ in range(3)]
    score = pair_score(q, t, chars, offsets, weights, kinds, table.masks(), float(alpha),
                        float(min_token_similarity),
                       pair_of_query, sim_of_query, np.empty((MAX_TOKENS, MAX_TOKENS)), *scratch,
                        np.empty(longest, np.int32), np.empty(longest, np.int32))
    items = []
    for i, token in enumerate(q.tolist()):
        j = pair_of_query[i]
        items.append(f"{table.token(token)}=" + (f"{table.token(int(t[j]))}({sim_of_query[i]:.2f})" if j >= 0 else "-"))
    return float(score), " ".join(items)



@numba.njit(cache=True)
def _top_k(pair_query, pair_listed, scores, n_queries, k, floor):
    best_listed = np.full((n_queries, k), -1, np.int64)
    best_score = np.zeros((n_queries, k), np.float64)
    for p in range(len(pair_query)):
        s = scores[p]
        if s < floor:
            continue
        q = pair_query[p]
        if s <= best_score[q, k - 1] and best_listed[q, k - 1] >= 0:
            continue
        pos = k - 1
        while pos > 0 and (best_listed[q, pos - 1] < 0 or s > best_score[q, pos - 1]
                           or (s == best_score[q, pos - 1] and pair_listed[p] < best_listed[q, pos - 1])):
            best_listed[q, pos] = best_listed[q, pos - 1]
            best_score[q, pos] = best_score[q, pos - 1]
            pos -= 1
        best_listed[q, pos] = pair_listed[p]
        best_score[q, pos] = s
    return best_listed, best_score


KEPT_TEXTS = 2_000_000
"""Query texts whose best matches a :class:`NameMatcher` keeps (about 100 bytes each)."""


class NameMatcher:
    """Fuzzy matcher of query names against a fixed set of listed names.

    Parameters
    ----------
    listed : sequence of str
        Distinct normalized listed names.

    Examples
    --------
    >>> matcher = NameMatcher(["huawei technologies", "dahua technology"])
    >>> names, scores = matcher.top_matches(["huawei technologes", "acme widgets"], k=1)
    >>> names[:, 0].tolist(), bool(scores[0, 0] > 0.9)
    ([0, -1], True)
    """

    def __init__(self, listed: Sequence[str]):
        self.listed = list(listed)
        self.table = TokenTable(self.listed)
        self.listed_arrays = TokenArrays(self.table.name_tokens, self.table.name_offsets)
        self._known: dict[tuple, tuple[dict[str, int], np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()  # the vocabulary and the kept matches change while scoring

    def encode(self, names: Sequence[str]) -> TokenArrays:
        """Token arrays of normalized query names (new tokens join the vocabulary)."""
        return TokenArrays(*self.table.encode_many(names))

    def top_matches(self, names: Sequence[str], k: int = 5, floor: float = 0.5, chunk: int = 50_000,
                    backend: str | Backend | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best listed names of each query scoring at least ``floor``.

        Parameters
        ----------
        names : sequence of str
            Normalized query names.
        k : int
            Matches kept per query.
        floor : float
            Scores below this are dropped.
        chunk : int
            Queries per blocking and scoring batch (bounds memory).
        backend : {"auto", "numpy", "cupy"} or Backend, optional
            Where the pairs are scored (:func:`score_pairs`); blocking runs on the CPU.

        Returns
        -------
        listed : ndarray of int64, shape (n, k)
            Indices into ``self.listed``, best first; -1 where fewer matched.
        scores : ndarray of float64, shape (n, k)
            Their scores (0 where none).

        Notes
        -----
        A query's matches depend on its text alone (and ``k``, ``floor``), on every backend, so
        the matcher keeps them: a text asked for again (a later piece, a run that screened the
        names while the ledger was read) is not scored again. At most :data:`KEPT_TEXTS` texts
        are kept; past that the memory starts over.
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        with self._lock:
            return self._top_matches(names, k, floor, chunk, backend)

    def _top_matches(self, names: Sequence[str], k: int, floor: float, chunk: int,
                     backend: str | Backend | None) -> tuple[np.ndarray, np.ndarray]:
        index, kept, kept_scores = self._known.get((k, floor), ({}, None, None))
        new = [text for text in dict.fromkeys(names) if text not in index]
        if new:
            top, top_scores = self._score_top(new, k, floor, chunk, backend)
            if len(index) + len(new) > KEPT_TEXTS:
                index, kept, kept_scores = {}, None, None
            start = len(index)
            index.update((text, start + i) for i, text in enumerate(new))
            kept = top if kept is None else np.concatenate([kept, top])
            kept_scores = top_scores if kept_scores is None else np.concatenate([kept_scores, top_scores])
            self._known[(k, floor)] = (index, kept, kept_scores)
        if not len(names):
            return np.full((0, k), -1, np.int64), np.zeros((0, k), np.float64)
        rows = np.fromiter((index[text] for text in names), np.int64, len(names))
        return kept[rows], kept_scores[rows]

    def _score_top(self, names: list[str], k: int, floor: float, chunk: int,
                   backend: str | Backend | None) -> tuple[np.ndarray, np.ndarray]:
        best = np.full((len(names), k), -1, np.int64)
        best_scores = np.zeros((len(names), k), np.float64)
        for start in range(0, len(names), chunk):
            queries = self.encode(names[start:start + chunk])
            pair_query, pair_listed = candidate_pairs(queries, self.table)
            scores = score_pairs(queries, self.listed_arrays, pair_query, pair_listed, self.table, backend=backend)
            part, part_scores = _top_k(pair_query, pair_listed, scores, len(queries.offsets) - 1, k, floor)
            best[start:start + chunk] = part
            best_scores[start:start + chunk] = part_scores
        return best, best_scores

    def score(self, left: Sequence[str], right: Sequence[str], backend: str | Backend | None = None) -> np.ndarray:
        """Scores of aligned pairs of normalized names (no blocking); ``backend`` as in :func:`score_pairs`."""
        if len(left) != len(right):
            raise ValueError("left and right must have the same length")
        a, b = self.encode(left), self.encode(right)
        index = np.arange(len(left), dtype=np.int64)
        return score_pairs(a, b, index, index, self.table, backend=backend)

    def explain(self, query: str, listed: str) -> tuple[float, str]:
        """Score and token pairing of one normalized pair (see :func:`explain_pair`)."""
        return explain_pair(self.table.encode(query), self.table.encode(listed), self.table)


def country_adjusted(scores: np.ndarray, query_countries: Sequence[str | None], listed_countries: Sequence[str],
                     bonus: float, penalty: float) -> np.ndarray:
    """Raise a score when a query's country is among the listed party's countries, lower it when not.

    Parameters
    ----------
    scores : ndarray of float64
        Fuzzy scores (exact hits excluded by the caller).
    query_countries : sequence of str or None
        ``;``-joined ISO-2 codes of each query (destination, address country); None or ``""``: unknown.
    listed_countries : sequence of str
        ``;``-joined ISO-2 codes of each listed entry; ``""``: unknown.
    bonus, penalty : float
        Added when the countries overlap, subtracted when both are known and disjoint.

    Returns
    -------
    ndarray of float64
        Adjusted scores, clipped to [0, 1].

    Examples
    --------
    >>> country_adjusted(np.array([0.9, 0.9, 0.9]), ["CN", "DE", None], ["CN;HK", "CN", "CN"], 0.03, 0.05).round(2).tolist()
    [0.93, 0.85, 0.9]
    """
    out = np.asarray(scores, np.float64).copy()
    for i, (mine, theirs) in enumerate(zip(query_countries, listed_countries)):
        if mine and theirs:
            overlap = set(mine.split(";")) & set(theirs.split(";"))
            out[i] += bonus if overlap else -penalty
    return np.clip(out, 0.0, 1.0)


def naive_top_match(matcher: NameMatcher, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs baseline without blocking: every query against every listed name.

    Returns the best listed index and score per query; for benchmarks only.
    """
    queries = matcher.encode(names)
    n_listed = len(matcher.listed)
    best = np.full(len(names), -1, np.int64)
    best_score = np.zeros(len(names), np.float64)
    listed_index = np.arange(n_listed, dtype=np.int64)
    for q in range(len(names)):
        scores = score_pairs(queries, matcher.listed_arrays, np.full(n_listed, q, np.int64), listed_index,
                             matcher.table)
        if n_listed:
            best[q] = int(np.argmax(scores))
            best_score[q] = float(scores[best[q]])
    return best, best_score
