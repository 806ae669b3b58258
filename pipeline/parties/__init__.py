"""Restricted-party screening against the Consolidated Screening List (CSL).

Stages, each over arrays of the distinct names (:mod:`pipeline.parties.screen`):
normalize (:mod:`~pipeline.parties.normalize`, :mod:`~pipeline.parties.qualifiers`) →
candidates (:mod:`~pipeline.parties.tokens`, :mod:`~pipeline.parties.candidates`) →
score (:mod:`~pipeline.parties.score`; the kernels in :mod:`kernels.pair_scores` and
:mod:`kernels.similarity`) → decide (:mod:`~pipeline.parties.decide`). The list is read by
:mod:`~pipeline.parties.lists`, the vocabularies by :mod:`~pipeline.parties.vocabulary` from
``data/parties/``, and ``parties.parquet`` written by :mod:`~pipeline.parties.matches`.
Analysts' reviewed decisions (:mod:`pipeline.review`) are honoured.
"""
from __future__ import annotations

from pipeline.parties.candidates import candidate_pairs
from pipeline.parties.decide import DEFAULT_BLOCK_SCORE, DEFAULT_REVIEW_SCORE, RESULT_COLUMNS, TOP_MATCHES
from pipeline.parties.lists import (ENTRY_COLUMNS, ScreeningListError, address_countries, check_list_size, list_code,
                                    load_screening_list, refresh_screening_list)
from pipeline.parties.matches import MATCH_COLUMNS, PartyMatches, write_party_matches
from pipeline.parties.normalize import normalize_name
from pipeline.parties.qualifiers import qualifier_bases, strip_qualifiers
from pipeline.parties.score import (GPU_BYTES_PER_CELL, NameMatcher, country_adjusted, explain_pair, naive_top_match,
                                    score_pairs)
from pipeline.parties.screen import PartyScreen
from pipeline.parties.tokens import (ALPHA, GENERIC_WEIGHT, KIND_LOW, KIND_NUMBER, KIND_WORD, LEGAL_WEIGHT,
                                     MAX_FALLBACK_POSTINGS, MAX_KEY_POSTINGS, MAX_TOKENS, MIN_TOKEN_SIMILARITY,
                                     PARTICLE_WEIGHT, SWAP_PENALTY, TokenArrays, TokenTable, token_keys, token_kind)
from pipeline.parties.vocabulary import (ABBREVIATIONS, GENERIC_WORDS, KNOWN_CODES, LEGAL_WORDS, LIST_CODES, PARTICLES,
                                         QUALIFIERS_PATH)

__all__ = [
    "ABBREVIATIONS", "ALPHA", "DEFAULT_BLOCK_SCORE", "DEFAULT_REVIEW_SCORE", "ENTRY_COLUMNS", "GENERIC_WEIGHT",
    "GENERIC_WORDS", "GPU_BYTES_PER_CELL", "KIND_LOW", "KIND_NUMBER", "KIND_WORD", "KNOWN_CODES", "LEGAL_WEIGHT",
    "LEGAL_WORDS", "LIST_CODES", "MATCH_COLUMNS", "MAX_FALLBACK_POSTINGS", "MAX_KEY_POSTINGS", "MAX_TOKENS",
    "MIN_TOKEN_SIMILARITY", "NameMatcher", "PARTICLES", "PARTICLE_WEIGHT", "PartyMatches", "PartyScreen",
    "QUALIFIERS_PATH", "RESULT_COLUMNS", "SWAP_PENALTY", "ScreeningListError", "TOP_MATCHES", "TokenArrays",
    "TokenTable", "address_countries", "candidate_pairs", "check_list_size", "country_adjusted", "explain_pair",
    "list_code", "load_screening_list", "naive_top_match", "normalize_name", "qualifier_bases",
    "refresh_screening_list", "score_pairs", "strip_qualifiers", "token_keys", "token_kind", "write_party_matches",
]
