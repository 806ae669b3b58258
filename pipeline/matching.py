"""Fuzzy restricted-party matching: token similarity with blocking on rare token keys.

Names are compared as sequences of tokens of their normalized text
(:func:`pipeline.parties.normalize_name`). Each token has a weight: the inverse document frequency
of the token among the listed names, lowered for legal forms, particles and generic business
words, so "Technology Co., Ltd." adds little and a distinctive word adds a lot. Two names score

    score = ALPHA * M / W_listed + (1 - ALPHA) * M / W_query

where ``M`` is the weighted similarity of the tokens paired one-to-one (greedily, best pair first;
equal tokens score 1, others ``1 - OSA distance / longer length`` when at least
:data:`MIN_TOKEN_SIMILARITY`, else 0) and ``W`` the total weight of each side. Names whose tokens
differ only in spacing ("Ramimakhlouf", "Rami Makhlouf") are also compared with spaces removed.

Blocking: every informative token of a listed name yields keys (its first and last three letters,
or the whole token when short); a query is compared only with the listed names that share one of
its keys, skipping keys shared by more than :data:`MAX_KEY_POSTINGS` names unless the query has
no rarer key. The pairs are then scored by :func:`score_pairs`, a function of flat arrays: a
Numba loop on the CPU, or with a CuPy backend the vectorized form of the same computation
(:func:`kernels.similarity.pair_similarity`), equal to it bit for bit on NumPy.

The CPU loop skips work that cannot change a score: a token pair whose character sets alone
(:func:`_fewest_edits`, :func:`kernels.similarity.char_masks`) put its similarity under :data:`MIN_TOKEN_SIMILARITY` scores 0 without an
OSA table, and the OSA table stops once its distance can only exceed that threshold.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from kernels.backend import Backend, select_backend
from kernels.similarity import char_masks

MIN_TOKEN_SIMILARITY = 0.7
"""Token pairs less similar than this count as unpaired."""
ALPHA = 0.6
"""Share of the score given to the coverage of the listed name (the rest: of the query)."""
SWAP_PENALTY = 1.0
"""Subtracted per unit of the smaller unpaired weight share of the two sides (a swapped word)."""
MAX_TOKENS = 24
"""Tokens kept per name (longer names are cut)."""
MAX_KEY_POSTINGS = 400
"""Blocking keys shared by more listed names than this are used only when a query has no rarer key."""
MAX_FALLBACK_POSTINGS = 5000
"""A query whose rarest key is shared by more listed names than this gets no fuzzy candidates."""

# Words that say little about identity. Legal forms and their spelled-out Russian and English
# forms, particles, and generic business words; they keep a small weight so they still count.
LEGAL_WORDS = frozenset("""
co company corp corporation inc incorporated ltd limited llc llp lp plc pvt pte pty private public
gmbh ag kg sa sas sarl srl sl spa ltda bv nv oy oyj ab as sro doo bhd sdn tbk kk jsc ojsc pjsc cjsc
ooo oao zao ao pao tov fze fzco fzc fzllc cv rl de obshchestvo ogranichennoi ogranichennoy
otvetstvennostyu aktsionernoe otkrytoe zakrytoe publichnoe joint stock open closed liability
aktiengesellschaft gesellschaft mbh sociedad anonima societe anonyme responsabilidad limitada
""".split())
PARTICLES = frozenset("""
a an the of and for in on at to by al el ul ad ud bin ibn ben bint abu la le les da das do dos du
des del della di van von der den y e et und s
""".split())
GENERIC_WORDS = frozenset("""
technology technologies tech trading trade international industrial industry industries group
holding holdings electronics electronic engineering development science scientific research
institute services service systems system solutions global general national enterprise enterprises
import export imp exp manufacturing production products equipment materials center centre branch
office factory plant works university laboratory laboratories academy department investment investments management logistics shipping supply commercial
import-export partners associates agency network networks digital energy resources
""".split())
LEGAL_WEIGHT, PARTICLE_WEIGHT, GENERIC_WEIGHT = 0.1, 0.1, 0.35
"""Factors applied to the inverse document frequency of these words."""

ABBREVIATIONS = {
    "intl": "international", "int": "international", "mfg": "manufacturing", "tech": "technology",
    "techs": "technologies", "univ": "university", "inst": "institute", "sci": "science",
    "eng": "engineering", "engg": "engineering", "dev": "development", "elec": "electronics",
    "ind": "industrial", "natl": "national", "nat": "national", "assn": "association",
    "assoc": "association", "mgmt": "management", "svcs": "services", "svc": "service",
    "sys": "systems", "grp": "group", "hldgs": "holdings", "hldg": "holding", "bros": "brothers",
    "dept": "department", "govt": "government", "ctr": "center", "centre": "center",
    "labs": "laboratories", "lab": "laboratory", "acad": "academy", "mohd": "muhammad",
    "md": "muhammad", "mohamed": "muhammad", "mohammed": "muhammad", "mohammad": "muhammad",
    "mohamad": "muhammad", "muhammed": "muhammad",
}
"""Abbreviations and spelling variants read as one form on both sides of a comparison."""

KIND_WORD, KIND_NUMBER, KIND_LOW = 0, 1, 2
"""Token kinds: an ordinary word (fuzzy, keyed), a token with digits (exact only, keyed), a
low-information word (fuzzy, not keyed)."""


def token_kind(token: str) -> int:
    """Kind of a normalized token: :data:`KIND_WORD`, :data:`KIND_NUMBER` or :data:`KIND_LOW`.

    Examples
    --------
    >>> token_kind("huawei"), token_kind("140"), token_kind("ltd")
    (0, 1, 2)
    """
    if any(char.isdigit() for char in token):
        return KIND_NUMBER
    if token in LEGAL_WORDS or token in PARTICLES or token in GENERIC_WORDS or len(token) == 1:
        return KIND_LOW
    return KIND_WORD


def token_keys(token: str) -> list[str]:
    """Blocking keys of one token: its first and last three letters, or itself when short.

    Examples
    --------
    >>> token_keys("huawei"), token_keys("smic"), token_keys("ltd")
    (['<hua', 'wei>'], ['=smic'], [])
    """
    kind = token_kind(token)
    if kind == KIND_LOW:
        return []
    if kind == KIND_NUMBER or len(token) <= 5:
        return ["=" + token]
    return ["<" + token[:3], token[-3:] + ">"]


class TokenTable:
    """A growing vocabulary of tokens with their characters, kinds, weights and blocking keys.

    The listed names fix the document frequencies and the key table; tokens first seen in queries
    are added with the weight of a token that occurs once, and only look keys up.

    Parameters
    ----------
    listed : sequence of str
        The distinct normalized listed names.
    """

    def __init__(self, listed: Sequence[str]):
        self.ids: dict[str, int] = {}
        self._tokens: list[str] = []
        self._key_ids: dict[str, int] = {}
        names = [self.encode(text) for text in listed]
        self.n_listed = len(names)
        flat, offsets = _csr(names)
        owner = np.repeat(np.arange(len(names), dtype=np.int64), np.diff(offsets))
        distinct = np.unique(owner * max(len(self._tokens), 1) + flat)  # each token once per name
        self._listed_df = np.bincount(distinct % max(len(self._tokens), 1),
                                      minlength=len(self._tokens)).astype(np.int64)
        self.listed_names = names
        # Keys and their postings (listed-name indices), built from the listed side only.
        key_of_token = [[self._key_ids.setdefault(key, len(self._key_ids)) for key in token_keys(token)]
                        for token in self._tokens]
        pairs_key, pairs_name = [], []
        for name, ids in enumerate(names):
            keys = {key for token in ids for key in key_of_token[token]}
            pairs_key.extend(keys)
            pairs_name.extend([name] * len(keys))
        order = np.lexsort((np.asarray(pairs_name, np.int64), np.asarray(pairs_key, np.int64)))
        keys_sorted = np.asarray(pairs_key, np.int64)[order]
        self.postings = np.asarray(pairs_name, np.int32)[order]
        self.posting_offsets = np.searchsorted(keys_sorted, np.arange(len(self._key_ids) + 1)).astype(np.int64)
        self._arrays: tuple | None = None
        self._masks: np.ndarray | None = None
        self.name_tokens, self.name_offsets = _csr(names)

    def encode(self, text: str) -> list[int]:
        """Token ids of a normalized name (new tokens are added), at most :data:`MAX_TOKENS`."""
        ids = self.ids
        out = []
        for token in text.split()[:MAX_TOKENS]:
            token = ABBREVIATIONS.get(token, token)
            token_id = ids.get(token)
            if token_id is None:
                token_id = ids[token] = len(self._tokens)
                self._tokens.append(token)
                self._arrays = None
            out.append(token_id)
        return out

    def token(self, token_id: int) -> str:
        """The text of a token id."""
        return self._tokens[token_id]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(chars, char_offsets, weights, kinds, key_ids, key_offsets)`` for all tokens so far.

        ``chars`` holds the code points of every token (int32), ``weights`` float64, ``kinds``
        int8, and ``key_ids`` the blocking-key ids of each token (CSR by ``key_offsets``; keys
        unknown to the listed names are left out).
        """
        if self._arrays is not None and len(self._arrays[2]) == len(self._tokens):
            return self._arrays
        tokens = self._tokens
        lengths = np.fromiter((len(t) for t in tokens), np.int64, len(tokens))
        offsets = np.zeros(len(tokens) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        chars = np.frombuffer("".join(tokens).encode("utf-32-le"), dtype=np.int32) if tokens else np.zeros(0, np.int32)
        kinds = np.fromiter((token_kind(t) for t in tokens), np.int8, len(tokens))
        df = np.ones(len(tokens), np.float64)
        df[: len(self._listed_df)] = np.maximum(self._listed_df, 1)
        weights = np.log1p(max(self.n_listed, 1) / df)
        factor = np.fromiter((LEGAL_WEIGHT if t in LEGAL_WORDS else PARTICLE_WEIGHT if (t in PARTICLES or len(t) == 1)
                              else GENERIC_WEIGHT if t in GENERIC_WORDS else 1.0 for t in tokens), np.float64, len(tokens))
        weights *= factor
        keys = [[k for k in (self._key_ids.get(key) for key in token_keys(t)) if k is not None] for t in tokens]
        key_ids, key_offsets = _csr(keys)
        self._arrays = (chars, offsets, weights, kinds, key_ids, key_offsets)
        return self._arrays

    def masks(self) -> np.ndarray:
        """Character mask of each token (:func:`kernels.similarity.char_masks`), for all tokens so far."""
        chars, offsets = self.arrays()[:2]
        if self._masks is None or len(self._masks) != len(offsets) - 1:
            self._masks = char_masks(chars, offsets)
        return self._masks


def _csr(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(r) for r in rows), np.int64, len(rows))
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((v for r in rows for v in r), np.int32, int(offsets[-1]))
    return flat, offsets


# --- the pairwise similarity ------------------------------------------------------------------------

@numba.njit(cache=True, nogil=True)
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(cache=True, nogil=True)
def _fewest_edits(mask_a, mask_b):
    """A lower bound of the OSA distance of two strings from their character masks.

    Each bit set on one side only stands for a character that the other string lacks, at its own
    position, so it costs its own edit; one edit mends at most one position on each side.
    """
    return max(_popcount(mask_a & ~mask_b), _popcount(mask_b & ~mask_a))


@numba.njit(cache=True, nogil=True)
def _osa(chars, a0, a1, b0, b1, row0, row1, row2, cap):
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


@numba.njit(cache=True, nogil=True)
def _token_similarity(ta, tb, chars, offsets, kinds, masks, min_sim, row0, row1, row2):
    if ta == tb:
        return 1.0
    if kinds[ta] == 1 or kinds[tb] == 1:
        return 0.0
    a0, a1, b0, b1 = offsets[ta], offsets[ta + 1], offsets[tb], offsets[tb + 1]
    la, lb = a1 - a0, b1 - b0
    longer = max(la, lb)
    if min(la, lb) < 4 or abs(la - lb) > (1.0 - min_sim) * longer:
        return 0.0
    if 1.0 - _fewest_edits(masks[ta], masks[tb]) / longer < min_sim:  # then so is the true similarity
        return 0.0
    # A distance above the cap gives a similarity below min_sim (by at least 1 / longer).
    cap = int((1.0 - min_sim) * longer) + 1
    distance = _osa(chars, a0, a1, b0, b1, row0, row1, row2, cap)
    if distance > cap:
        return 0.0
    sim = 1.0 - distance / longer
    return sim if sim >= min_sim else 0.0


@numba.njit(cache=True, nogil=True)
def _joined_similarity(q_tok, t_tok, chars, offsets, masks, buf_a, buf_b, row0, row1, row2):
    """Similarity of the two names with spaces removed (for glued or split words); 0 where it is
    below 0.9, the least that counts."""
    la = 0
    for t in q_tok:
        for c in range(offsets[t], offsets[t + 1]):
            buf_a[la] = chars[c]
            la += 1
    lb = 0
    for t in t_tok:
        for c in range(offsets[t], offsets[t + 1]):
            buf_b[lb] = chars[c]
            lb += 1
    longer = max(la, lb)
    if longer == 0 or abs(la - lb) > 0.1 * longer + 1:
        return 0.0
    mask_a, mask_b = np.uint64(0), np.uint64(0)
    for t in q_tok:
        mask_a |= masks[t]
    for t in t_tok:
        mask_b |= masks[t]
    if 1.0 - _fewest_edits(mask_a, mask_b) / longer < 0.9:
        return 0.0
    joined = np.empty(la + lb, np.int32)
    joined[:la] = buf_a[:la]
    joined[la:] = buf_b[:lb]
    cap = int(0.1 * longer) + 1  # above it the similarity is below 0.9: too low to count
    distance = _osa(joined, 0, la, la, la + lb, row0, row1, row2, cap)
    return 0.0 if distance > cap else 1.0 - distance / longer


@numba.njit(cache=True, nogil=True)
def _pair_score(q_tok, t_tok, chars, offsets, weights, kinds, masks, alpha, min_sim, pair_of_query, sim_of_query,
                sim, row0, row1, row2, buf_a, buf_b):
    """Score one pair; ``pair_of_query[i]`` gets the listed-token position paired with query token i."""
    m, n = len(q_tok), len(t_tok)
    for i in range(m):
        pair_of_query[i] = -1
        sim_of_query[i] = 0.0
        for j in range(n):
            sim[i, j] = _token_similarity(q_tok[i], t_tok[j], chars, offsets, kinds, masks, min_sim, row0, row1,
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
        joined = _joined_similarity(q_tok, t_tok, chars, offsets, masks, buf_a, buf_b, row0, row1, row2)
        if joined >= 0.9 and joined > score:
            score = joined
    return min(max(score, 0.0), 1.0)


@numba.njit(cache=True, parallel=True)
def _score_pairs(q_tokens, q_offsets, t_tokens, t_offsets, pair_query, pair_listed, chars, offsets, weights,
                 kinds, masks, alpha, min_sim, max_chars, n_threads):
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
        sim = np.empty((24, 24), np.float64)  # MAX_TOKENS
        pair_of_query = np.empty(24, np.int64)
        sim_of_query = np.empty(24, np.float64)
        for p in range(chunk * size, min(n_pairs, (chunk + 1) * size)):
            q, t = pair_query[p], pair_listed[p]
            out[p] = _pair_score(q_tokens[q_offsets[q]:q_offsets[q + 1]], t_tokens[t_offsets[t]:t_offsets[t + 1]],
                                 chars, offsets, weights, kinds, masks, alpha, min_sim, pair_of_query,
                                 sim_of_query, sim, row0, row1, row2, buf_a, buf_b)
    return out


@dataclass(frozen=True)
class TokenArrays:
    """Token names as flat arrays: the input of :func:`score_pairs`.

    Attributes
    ----------
    tokens, offsets : ndarray
        Token ids of name ``k`` are ``tokens[offsets[k]:offsets[k + 1]]`` (int32, int64).
    """

    tokens: np.ndarray
    offsets: np.ndarray


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
    return _score_pairs(queries.tokens, queries.offsets, listed.tokens, listed.offsets,
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
    score = _pair_score(q, t, chars, offsets, weights, kinds, table.masks(), float(alpha),
                        float(min_token_similarity),
                        pair_of_query, sim_of_query, np.empty((MAX_TOKENS, MAX_TOKENS)), *scratch,
                        np.empty(longest, np.int32), np.empty(longest, np.int32))
    items = []
    for i, token in enumerate(q.tolist()):
        j = pair_of_query[i]
        items.append(f"{table.token(token)}=" + (f"{table.token(int(t[j]))}({sim_of_query[i]:.2f})" if j >= 0 else "-"))
    return float(score), " ".join(items)


# --- blocking -----------------------------------------------------------------------------------

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

    def encode(self, names: Sequence[str]) -> TokenArrays:
        """Token arrays of normalized query names (new tokens join the vocabulary)."""
        return TokenArrays(*_csr([self.table.encode(name) for name in names]))

    def top_matches(self, names: Sequence[str], k: int = 5, floor: float = 0.5, chunk: int = 50_000,
                    backend: str | Backend | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best listed names for each normalized query name.

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
        """
        if k < 1:
            raise ValueError("k must be at least 1")
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
