"""Tokens of normalized names: kinds, weights, blocking keys and the token table.

Each token of a normalized name (:func:`pipeline.parties.normalize_name`) has a weight: the
inverse document frequency of the token among the listed names, lowered for legal forms,
particles and generic business words (``data/parties/``: :mod:`pipeline.parties.vocabulary`), so
"Technology Co., Ltd." adds little and a distinctive word adds a lot. Abbreviations
(``data/parties/abbreviations.csv``) are read as their expansion on both sides.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kernels.pair_scores import MAX_TOKENS, SWAP_PENALTY
from kernels.similarity import char_masks
from pipeline.parties.vocabulary import ABBREVIATIONS, GENERIC_WORDS, LEGAL_WORDS, PARTICLES

MIN_TOKEN_SIMILARITY = 0.7
"""Token pairs less similar than this count as unpaired."""
ALPHA = 0.6
"""Share of the score given to the coverage of the listed name (the rest: of the query)."""
MAX_KEY_POSTINGS = 400
"""Blocking keys shared by more listed names than this are used only when a query has no rarer key."""
MAX_FALLBACK_POSTINGS = 5000
"""A query whose rarest key is shared by more listed names than this gets no fuzzy candidates."""

LEGAL_WEIGHT, PARTICLE_WEIGHT, GENERIC_WEIGHT = 0.1, 0.1, 0.35
"""Factors applied to the inverse document frequency of legal, particle and generic words."""

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
        self._token_cache: dict[str, list] = {"lengths": [], "kinds": [], "factor": [], "keys": [], "chars": []}
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

    def encode_many(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of many normalized names as CSR ``(tokens int32, offsets int64)``: the same as
        :meth:`encode` of each name in turn (new tokens get ids in the same order).

        The names are split once, joined; abbreviations and ids are looked up once per distinct
        token, not per name. Names that are not single-space separated fall back to :meth:`encode`.
        """
        texts = list(texts)
        filled = [text for text in texts if text]
        joined = " ".join(filled)
        flat = joined.split(" ") if filled else []
        if flat != joined.split():  # other whitespace, doubled or edge spaces: the plain way
            return _csr([self.encode(text) for text in texts])
        counts = np.fromiter((text.count(" ") + 1 if text else 0 for text in texts), np.int64, len(texts))
        starts = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
        keep = np.arange(len(flat), dtype=np.int64) - starts[owner] < MAX_TOKENS
        if not keep.all():
            kept = np.flatnonzero(keep)
            flat = [flat[i] for i in kept.tolist()]
            owner = owner[kept]
        codes, uniques = pd.factorize(np.asarray(flat, dtype=object), sort=False)
        ids, tokens = self.ids, self._tokens
        unique_ids = np.empty(len(uniques), np.int64)
        for u, token in enumerate(uniques.tolist()):  # distinct tokens in order of first use
            token = ABBREVIATIONS.get(token, token)
            token_id = ids.get(token)
            if token_id is None:
                token_id = ids[token] = len(tokens)
                tokens.append(token)
                self._arrays = None
            unique_ids[u] = token_id
        offsets = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(np.bincount(owner, minlength=len(texts)), out=offsets[1:])
        return unique_ids[codes].astype(np.int32), offsets

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
        # Per-token Python work (kind, weight factor, keys) is done once per token and kept; only
        # the tokens added since the last call are looked at (elementwise, so the same values).
        cache = self._token_cache
        tokens = self._tokens
        done = len(cache["kinds"])
        new = tokens[done:]
        cache["lengths"].extend(len(t) for t in new)
        cache["kinds"].extend(token_kind(t) for t in new)
        cache["factor"].extend(LEGAL_WEIGHT if t in LEGAL_WORDS else PARTICLE_WEIGHT if (t in PARTICLES or len(t) == 1)
                               else GENERIC_WEIGHT if t in GENERIC_WORDS else 1.0 for t in new)
        cache["keys"].extend([k for k in (self._key_ids.get(key) for key in token_keys(t)) if k is not None]
                             for t in new)
        if new:
            cache["chars"].append(np.frombuffer("".join(new).encode("utf-32-le"), dtype=np.int32))
        lengths = np.asarray(cache["lengths"], np.int64)
        offsets = np.zeros(len(tokens) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        chars = np.concatenate(cache["chars"]) if cache["chars"] else np.zeros(0, np.int32)
        kinds = np.asarray(cache["kinds"], np.int8)
        df = np.ones(len(tokens), np.float64)
        df[: len(self._listed_df)] = np.maximum(self._listed_df, 1)
        weights = np.log1p(max(self.n_listed, 1) / df)
        factor = np.asarray(cache["factor"], np.float64)
        weights *= factor
        key_ids, key_offsets = _csr(cache["keys"])
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




@dataclass(frozen=True)
class TokenArrays:
    """Token names as flat arrays: the input of :func:`pipeline.parties.score.score_pairs`.

    Attributes
    ----------
    tokens, offsets : ndarray
        Token ids of name ``k`` are ``tokens[offsets[k]:offsets[k + 1]]`` (int32, int64).
    """

    tokens: np.ndarray
    offsets: np.ndarray

