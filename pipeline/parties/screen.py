"""Party screening in stages: normalize → candidates → score → decide (:class:`PartyScreen`).

The distinct consignee names of a ledger are screened once; the result table is joined back to
the rows by dictionary code (DESIGN 2). Stages, each over arrays of the distinct names:

1. :func:`normalize_stage`: normalized text (:func:`pipeline.parties.normalize_name`) and the
   forms without qualifiers (:func:`pipeline.parties.qualifier_bases`), once per distinct name.
2. :func:`candidate_stage`: exact hits (equal normalized text) and, over the distinct texts, the
   fuzzy candidates by blocking (:mod:`pipeline.parties.candidates`) scored by
   :func:`pipeline.parties.score.score_pairs` (Numba, parallel over pairs).
3. :func:`pipeline.parties.decide.decide`: thresholds, list severity, countries and analysts'
   reviewed decisions (:mod:`pipeline.parties.decide`), then the result table.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.parties.decide import (DEFAULT_BLOCK_SCORE, DEFAULT_REVIEW_SCORE, RESULT_COLUMNS, TOP_MATCHES, decide,
                                     party_results)
from pipeline.parties.lists import ScreeningListError, check_list_size, load_screening_list
from pipeline.parties.normalize import normalize_name
from pipeline.parties.qualifiers import _qualifier_tail, _tail_kept, leading_place_bases, qualifier_bases
from pipeline.parties.vocabulary import KNOWN_CODES
from pipeline.reference import CSL_PATH


@dataclass
class NormalizedNames:
    """Stage 1 of :class:`PartyScreen`: the names, their normalized texts and forms less qualifiers.

    Attributes
    ----------
    names : list of str
        The names as given (``None`` for no name).
    normalized : list of str
        :func:`pipeline.parties.normalize_name` of each name.
    base_texts : list of str
        The forms less qualifiers of every name (:func:`pipeline.parties.qualifier_bases`), name
        after name, least stripped first.
    base_owner : ndarray of int64
        The position in ``names`` of each of ``base_texts``.
    base_exact_only : ndarray of bool
        Per ``base_texts`` item: a form less a leading place (:func:`leading_place_bases`), a
        candidate for an exact hit only. Empty: none is.
    """

    names: list
    normalized: list
    base_texts: list
    base_owner: np.ndarray
    base_exact_only: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def normalize_stage(names: Sequence[str | None]) -> NormalizedNames:
    """Normalize each distinct name once, and find its forms less qualifiers.

    Parameters
    ----------
    names : sequence of str or None
        Consignee names; a name may repeat (once per country).

    Returns
    -------
    NormalizedNames
    """
    names = list(names)
    distinct = list(dict.fromkeys(names))
    texts = {name: normalize_name(name) for name in distinct}
    may_strip, may_lead = _may_have_bases(distinct, [texts[name] for name in distinct])
    bases_of, leading_of = {}, {}
    for i in np.flatnonzero(may_strip | may_lead).tolist():  # the few names with a qualifier or a place
        name = distinct[i]
        bases_of[name] = qualifier_bases(name, texts[name]) if may_strip[i] else []
        leading_of[name] = leading_place_bases([texts[name], *bases_of[name]]) if texts[name] else []
    normalized = [texts[name] for name in names]
    none: list = []
    bases = [bases_of.get(name, none) + leading_of.get(name, none) for name in names]
    exact_only = [flag for name in names
                  for flag in [False] * len(bases_of.get(name, none)) + [True] * len(leading_of.get(name, none))]
    counts = np.fromiter((len(texts) for texts in bases), np.int64, len(bases))
    base_owner = np.repeat(np.arange(len(names), dtype=np.int64), counts)
    return NormalizedNames(names, normalized, [text for texts in bases for text in texts], base_owner,
                           np.array(exact_only, bool))


def _may_have_bases(names: list, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct name, over arrays (Arrow kernels): whether :func:`qualifier_bases` may give any
    form, and whether :func:`leading_place_bases` may give one from the normalized text alone.

    A superset test: ``False`` only where the function is sure to give nothing. An ASCII name with
    no bracket and no care-of marker whose last normalized word is no qualifier phrase end, has no
    digit and is not one letter has no forms less qualifiers; a text whose first word starts no
    place phrase has no form less a leading place. Non-ASCII names are always looked at.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.parties import qualifiers as q

    n = len(names)
    try:
        raw = pa.array(names, pa.large_string())
        norm = pa.array(texts, pa.large_string())
    except (pa.ArrowException, TypeError, ValueError):
        return np.ones(n, bool), np.ones(n, bool)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, bool)
    ascii_ = pc.fill_null(pc.and_(pc.string_is_ascii(raw), pc.string_is_ascii(norm)), False)
    lowered = pc.utf8_lower(raw)
    marked = pc.or_(pc.match_substring(raw, "("), pc.match_substring(raw, "["))
    for marker in q._care_of_markers():
        marked = pc.or_(marked, pc.match_substring(lowered, marker))
    last = pc.replace_substring_regex(norm, r"^.* ", "")
    ends = pa.array(sorted(q._phrase_ends()), pa.large_string())
    tail = pc.or_(pc.or_(pc.is_in(last, value_set=ends), pc.match_substring_regex(last, "[0-9]")),
                  pc.equal(pc.utf8_length(last), 1))
    may_strip = pc.or_(pc.invert(ascii_), pc.fill_null(pc.or_(marked, tail), True))
    phrases = q._qualifiers()[0]
    firsts = pa.array(sorted({phrase[0] for phrase, kind in phrases.items() if kind in q.PLACE_KINDS}), pa.large_string())
    first = pc.replace_substring_regex(norm, r" .*$", "")
    may_lead = pc.or_(pc.invert(ascii_), pc.fill_null(pc.is_in(first, value_set=firsts), True))
    return (np.asarray(may_strip.to_numpy(zero_copy_only=False), bool),
            np.asarray(may_lead.to_numpy(zero_copy_only=False), bool))


@dataclass
class Candidates:
    """Stage 2 of :class:`PartyScreen`: the listed texts each name and each form less qualifiers may be.

    Attributes
    ----------
    exact, base_exact : ndarray of int64
        Per name, per form less qualifiers: the distinct listed text equal to it, or -1.
    top, top_scores, base_top, base_scores : ndarray
        Per name, per form less qualifiers: the best fuzzy listed texts (-1 where none) and their
        scores, best first (:meth:`pipeline.parties.score.NameMatcher.top_matches`).
    """

    exact: np.ndarray
    top: np.ndarray
    top_scores: np.ndarray
    base_exact: np.ndarray
    base_top: np.ndarray
    base_scores: np.ndarray


def candidate_stage(screen: "PartyScreen", names: NormalizedNames, floor: float, fuzzy: bool = True,
                    backend=None) -> Candidates:
    """Exact and fuzzy candidates of each distinct text of ``names`` (names and forms less qualifiers).

    Parameters
    ----------
    screen : PartyScreen
        The list to match against.
    names : NormalizedNames
        Stage 1.
    floor : float
        Fuzzy scores below this are dropped.
    fuzzy : bool
        Look for fuzzy candidates too.
    backend : {"auto", "numpy", "cupy"} or Backend, optional
        Where the pairs are scored.

    Returns
    -------
    Candidates
    """
    normalized, base_texts = names.normalized, names.base_texts
    n = len(normalized)
    text_row = screen._text_row
    exact_only = names.base_exact_only if len(names.base_exact_only) else np.zeros(len(base_texts), bool)
    if fuzzy and screen._texts and n:
        fuzzy_bases = [text for text, only in zip(base_texts, exact_only.tolist()) if not only]
        codes, uniques = pd.factorize(pd.Series(normalized + fuzzy_bases, dtype=object), sort=False)
        top, top_scores = screen.matcher.top_matches(list(uniques), k=TOP_MATCHES, floor=floor, backend=backend)
        top, top_scores = top[codes], top_scores[codes]
        base_top = np.full((len(base_texts), top.shape[1]), -1, np.int64)
        base_scores = np.zeros((len(base_texts), top.shape[1]))
        base_top[~exact_only], base_scores[~exact_only] = top[n:], top_scores[n:]
        top, top_scores = top[:n], top_scores[:n]
    else:
        top, top_scores = np.full((n, 1), -1, np.int64), np.zeros((n, 1))
        base_top, base_scores = np.full((len(base_texts), 1), -1, np.int64), np.zeros((len(base_texts), 1))
    exact = np.array([text_row.get(text, -1) if text else -1 for text in normalized], np.int64)
    base_exact = np.array([text_row.get(text, -1) for text in base_texts], np.int64)
    return Candidates(exact, top, top_scores, base_exact, base_top, base_scores)


class PartyScreen:
    """Screen of consignee names against a loaded screening list: exact, then fuzzy.

    Parameters
    ----------
    entries : pandas.DataFrame
        The frame of :func:`load_screening_list`; kept as ``entries``.

    Examples
    --------
    >>> entries = pd.DataFrame({"entry_id": ["1"], "list_code": ["EL"],
    ...     "listed_name": ["Acme Ltd."], "alias": ["Acme Ltd."], "normalized": ["acme"],
    ...     "countries": ["CN"]})
    >>> result = PartyScreen(entries).screen(["ACME LIMITED", "Other"], ["EL"], [])
    >>> result[["party_match", "outcome"]].values.tolist()
    [['Acme Ltd.', 'block'], [nan, nan]]
    """

    def __init__(self, entries: pd.DataFrame):
        self.entries = entries.reset_index(drop=True)
        self._codes = self.entries["list_code"].tolist()
        entry_ids = self.entries["entry_id"].tolist()
        normalized = self.entries["normalized"].tolist()
        index: dict[str, list[int]] = {}
        for row in sorted(range(len(normalized)), key=lambda row: (self._codes[row], entry_ids[row])):
            index.setdefault(normalized[row], []).append(row)
        self._index = index
        self._texts = list(index)  # distinct listed texts; fuzzy matches refer to these
        self._text_row = {text: i for i, text in enumerate(self._texts)}
        self._matcher = None
        self._fingerprints: dict[str, str] | None = None

    @property
    def matcher(self):
        """The fuzzy matcher over the distinct listed texts (built on first use)."""
        if self._matcher is None:
            from pipeline.parties.score import NameMatcher

            self._matcher = NameMatcher(self._texts)
        return self._matcher

    def _listed_tails(self) -> list[Counter]:
        """Per distinct listed text: its own trailing qualifier words (:func:`_qualifier_tail`)."""
        if getattr(self, "_tails", None) is None:
            self._tails = [_qualifier_tail(text, text) for text in self._texts]
        return self._tails

    def fingerprints(self) -> dict[str, str]:
        """``entry_id`` → fingerprint of the entry (see :func:`pipeline.review.entry_fingerprint`)."""
        if self._fingerprints is None:
            from pipeline.review import entry_fingerprint

            self._fingerprints = entry_fingerprint(self.entries)
        return self._fingerprints

    @classmethod
    def from_path(cls, path: str | Path = CSL_PATH) -> "PartyScreen":
        """The screen for a CSL file, loaded once per resolved path and process.

        Raises
        ------
        ScreeningListError
            The file cannot be read as a screening list (:func:`load_screening_list`). Its size
            is checked when a rule set screens with it (:meth:`screen_policy`).
        """
        return _screen_for(Path(path).resolve())

    def pair_scores(self, queries: Sequence[str], candidates: Sequence[str], backend=None) -> np.ndarray:
        """Similarity in [0, 1] of aligned (query, candidate) name pairs, with this list's token weights.

        Equal normalized names score 1.0 and an empty name 0.0; the rest are scored by
        :meth:`pipeline.parties.score.NameMatcher.score` (no blocking, no countries), on ``backend``
        (``"auto"``, ``"numpy"``, ``"cupy"`` or a :class:`kernels.backend.Backend`; default the CPU).
        A query with qualifiers scores the best of itself and its names without them
        (:func:`qualifier_bases`) that keep the candidate's own qualifiers ("X (Spain)" against
        "X (Netherlands)" is scored as written).

        Examples
        --------
        >>> entries = pd.DataFrame({"entry_id": ["1"], "list_code": ["EL"], "listed_name": ["Acme Ltd."],
        ...     "alias": ["Acme Ltd."], "normalized": ["acme"], "countries": [""]})
        >>> PartyScreen(entries).pair_scores(["ACME Co.", "Acme", ""], ["Acme Ltd", "Zenith", "Acme"]).tolist()
        [1.0, 0.0, 0.0]
        """
        if len(queries) != len(candidates):
            raise ValueError("queries and candidates must have the same length")
        left = [normalize_name(name) for name in queries]
        right = [normalize_name(name) for name in candidates]
        scores = self.matcher.score(left, right, backend=backend) if left else np.zeros(0)
        scores[[a == b and a != "" for a, b in zip(left, right)]] = 1.0
        pairs = [(i, base) for i, (name, text) in enumerate(zip(queries, left)) if right[i]
                 for base in qualifier_bases(name, text) if _tail_kept(base, _qualifier_tail(candidates[i], right[i]))]
        if pairs:
            base_scores = self.matcher.score([base for _, base in pairs], [right[i] for i, _ in pairs], backend=backend)
            base_scores[[base == right[i] for i, base in pairs]] = 1.0
            np.maximum.at(scores, np.array([i for i, _ in pairs], np.int64), base_scores)
        for i, (name, text) in enumerate(zip(queries, left)):  # less a leading place: exact hits only
            if right[i] and text and right[i] in leading_place_bases([text, *qualifier_bases(name, text)]):
                scores[i] = 1.0
        scores[[a == "" or b == "" for a, b in zip(left, right)]] = 0.0
        return scores

    def screen_policy(self, names: Sequence[str], policy, backend=None,
                      countries: Sequence[str | None] | None = None) -> pd.DataFrame:
        """:meth:`screen` with the lists, thresholds and reviewed decisions of a rule set's ``[parties]``;
        fuzzy scores on ``backend`` and moved by ``countries`` (as in :meth:`screen`).

        Raises
        ------
        ScreeningListError
            The list is empty or much shorter than the packaged one (:func:`check_list_size`)
            and the rule set does not allow it (``parties.allow_short_list``).
        """
        params = policy.get("parties")
        check_list_size(self.entries, params.get("allow_short_list", False))
        reviews = None
        if params.get("reviews_file"):
            from pipeline.review import ReviewBook, read_reviews

            reviews = ReviewBook(read_reviews(params["reviews_file"]), normalize_name)
        return self.screen(names, params["deny_lists"], params["review_lists"],
                           block_score=params["block_score"], review_score=params["review_score"],
                           country_bonus=params.get("country_bonus", 0.0),
                           country_penalty=params.get("country_penalty", 0.0), reviews=reviews,
                           backend=backend, countries=countries)

    def warm(self, names: Sequence[str], policy, backend=None) -> None:
        """Score the fuzzy candidates of ``names`` under ``policy``'s ``[parties]`` ahead of screening.

        The matcher keeps them (:meth:`pipeline.parties.score.NameMatcher.top_matches`), so a
        later :meth:`screen_policy` of any of these names does not score them again; its results
        are the same either way. Lets a run screen the names of a ledger while it is validated.
        """
        params = policy.get("parties")
        if self._texts and len(names):
            candidate_stage(self, normalize_stage(names),
                            _floor(params["review_score"], params.get("country_bonus", 0.0)), backend=backend)

    def screen(self, names: Sequence[str], deny_lists: Iterable[str] = (), review_lists: Iterable[str] = (), *,
               block_score: float = DEFAULT_BLOCK_SCORE, review_score: float = DEFAULT_REVIEW_SCORE,
               countries: Sequence[str | None] | None = None, country_bonus: float = 0.0,
               country_penalty: float = 0.0, reviews=None, fuzzy: bool = True, backend=None) -> pd.DataFrame:
        """Screen distinct consignee names.

        Parameters
        ----------
        names : sequence of str
            Distinct consignee names (``None`` screens as no name).
        deny_lists, review_lists : iterable of str
            List codes whose hits give outcome ``"block"`` and ``"review"``.
        block_score, review_score : float
            A deny-list hit scoring at least ``block_score`` blocks; any listed hit scoring at
            least ``review_score`` (and not blocking) is held for review. ``0 <= review_score <=
            block_score <= 1``.
        countries : sequence of str or None, optional
            Per name, ``;``-joined ISO-2 countries (destination, address); moves fuzzy scores
            by ``country_bonus`` / ``-country_penalty`` (:func:`pipeline.parties.score.country_adjusted`).
        reviews : pipeline.review.ReviewBook, optional
            Analysts' decisions to honour.
        fuzzy : bool
            Run the fuzzy stage after the exact one.
        backend : {"auto", "numpy", "cupy"} or Backend, optional
            Where the fuzzy pairs are scored (:func:`pipeline.parties.score.score_pairs`); the CPU
            when omitted or NumPy. Scores are the same on every backend.

        Returns
        -------
        pandas.DataFrame
            One row per input name, in input order, columns :data:`RESULT_COLUMNS`: ``name``,
            ``normalized``, ``party_match`` (listed name of the chosen hit), ``party_alias`` (the
            listed text that matched), ``party_list``, ``party_entry_id``, ``party_score`` (1.0 on
            an exact hit, the fuzzy score otherwise, NaN without a hit), ``outcome``
            (``"block"``, ``"review"``, ``"cleared"`` or missing), ``party_tokens`` (which query
            token paired with which listed token, and how similar), ``review_status`` (the
            analyst decision applied, or why one was not), ``party_listed_on`` (the listing
            date, ``YYYY-MM-DD``, from which the outcome holds: the earliest among all matched
            entries that give it, missing where one of them has none) and
            ``party_license_requirement`` (the chosen entry's license requirement text, missing
            where it has none). Text columns use pandas'
            ``str`` dtype, so "no hit" reads as a missing value. ``attrs["matches"]`` holds the
            :data:`TOP_MATCHES` best listed entries per name (a :class:`PartyMatches`).

        Raises
        ------
        ScreeningListError
            Unknown list codes or thresholds out of order.

        Notes
        -----
        A hit is a listed entry scoring at least ``review_score``. The chosen hit is the most
        severe (block, then review, then none), then the highest score, then a deny-list entry,
        then a review-list entry, then the first by list code and entry id. Exact hits (equal
        normalized text) score 1.0 and are not moved by countries. A name with qualifiers (places,
        branch words, ``c/o ...``, bracketed qualifiers: :func:`qualifier_bases`) is matched as
        written and without them, the best score counting (as written first on a tie); a
        listed name that has qualifiers of its own is matched only by forms that keep them, and
        ``party_tokens`` ends in ``qualifiers=...`` when the hit came from such a form. A ``clear`` decision removes
        its entry from the hits of that name; when nothing else is a hit the outcome reads
        ``"cleared"``. A ``confirm`` decision scores its entry 1.0. A decision whose entry changed
        since (fingerprint) is not applied: ``review_status`` says ``"reopened: ..."``.
        """
        deny, review = set(deny_lists), set(review_lists)
        unknown = (deny | review) - KNOWN_CODES
        if unknown:
            raise ScreeningListError(f"unknown list codes {sorted(unknown)}")
        if not 0.0 <= review_score <= block_score <= 1.0:
            raise ScreeningListError(f"need 0 <= review_score ({review_score}) <= block_score ({block_score}) <= 1")
        if countries is not None and len(countries) != len(names):
            raise ScreeningListError("countries must have one item per name")
        stage1 = normalize_stage(names)
        stage2 = candidate_stage(self, stage1, _floor(review_score, country_bonus), fuzzy=fuzzy, backend=backend)
        decisions = decide(self, stage1, stage2, deny, review, block_score, review_score, countries=countries,
                           country_bonus=country_bonus, country_penalty=country_penalty, reviews=reviews)
        return party_results(self, stage1, decisions)



def _floor(review_score: float, country_bonus: float) -> float:
    """Fuzzy scores below this cannot become a hit (the country bonus included)."""
    return max(0.0, min(0.5, review_score - country_bonus))


@lru_cache(maxsize=8)
def _screen_for(path: Path) -> PartyScreen:
    return PartyScreen(load_screening_list(path))

