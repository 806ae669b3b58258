"""The decide stage of party screening: thresholds, list severity, countries, analysts' decisions.

:func:`decide` picks, for each name with candidates, the listed entry a result reports and its
outcome; :func:`party_results` turns the picks into the result table of
:meth:`pipeline.parties.PartyScreen.screen`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.parties.matches import MATCH_COLUMNS, PartyMatches
from pipeline.parties.qualifiers import _tail_kept
from pipeline.parties.score import country_adjusted

DEFAULT_BLOCK_SCORE = 0.92
"""Block threshold when none is given (policies set ``parties.block_score``)."""
DEFAULT_REVIEW_SCORE = 0.78
"""Review threshold when none is given (policies set ``parties.review_score``)."""
TOP_MATCHES = 5
"""Best listed names kept per consignee for ``parties.parquet``."""
RESULT_COLUMNS = ["name", "normalized", "party_match", "party_alias", "party_list", "party_entry_id",
                  "party_score", "outcome", "party_tokens", "review_status", "party_listed_on",
                  "party_license_requirement"]
"""Columns of a screen result."""
SEVERITY = {"block": 2, "review": 1, None: 0}
"""Rank of an outcome: the most severe hit of a name is the one reported."""
OUTCOME_OF_SEVERITY = {rank: outcome for outcome, rank in SEVERITY.items()}


@dataclass
class Decisions:
    """What :func:`decide` picked, per name.

    Attributes
    ----------
    best : ndarray of int64
        The entry row reported (-1: none).
    score : ndarray of float64
        Its score (NaN: none).
    outcome, status : list of str or None
        ``"block"``, ``"review"``, ``"cleared"`` or None; the review status.
    via_base : dict of int to str
        Position → the form less qualifiers that the reported hit matched.
    match_rows : dict of str to list
        The :data:`pipeline.parties.matches.MATCH_COLUMNS` of the best matches of every name.
    listed_on : dict of int to str or None
        Position → the earliest listing date among every entry that gives a block or review
        outcome of the same class as the reported one (None where one of them has no date:
        "listed always"); positions without such an outcome are absent.
    """

    best: np.ndarray
    score: np.ndarray
    outcome: list
    status: list
    via_base: dict = field(default_factory=dict)
    match_rows: dict = field(default_factory=dict)
    listed_on: dict = field(default_factory=dict)


def _earliest(dates) -> str | None:
    """The earliest of ``YYYY-MM-DD`` dates; None when any is None (an undated entry counts always)."""
    dates = list(dates)
    return None if any(date is None for date in dates) else min(dates)


def _entry_texts(entries: pd.DataFrame, column: str) -> list:
    """``entries[column]`` as a list, None where missing; all None for a frame without it (built in memory)."""
    if column not in entries:
        return [None] * len(entries)
    return entries[column].to_numpy(dtype=object, na_value=None).tolist()


def _country_adjusted(value: float, query: str, listed: str, bonus: float, penalty: float) -> float:
    return float(country_adjusted(np.array([value]), [query], [listed], bonus, penalty)[0])


def decide(screen, names, candidates, deny: set, review: set, block_score: float, review_score: float,
           countries=None, country_bonus: float = 0.0, country_penalty: float = 0.0, reviews=None) -> Decisions:
    """Pick each name's reported entry and outcome from its candidates.

    Parameters
    ----------
    screen : pipeline.parties.PartyScreen
        The list (entries, their distinct texts and fingerprints).
    names : pipeline.parties.screen.NormalizedNames
        Stage 1.
    candidates : pipeline.parties.screen.Candidates
        Stage 2.
    deny, review : set of str
        List codes whose hits block, and whose hits are held for review.
    block_score, review_score : float
        Thresholds, as in :meth:`pipeline.parties.PartyScreen.screen`.
    countries : sequence of str or None, optional
        Per name, ``;``-joined ISO-2 countries.
    country_bonus, country_penalty : float
        Moves of fuzzy scores by countries.
    reviews : pipeline.review.ReviewBook, optional
        Analysts' decisions to honour.

    Returns
    -------
    Decisions

    Notes
    -----
    Python runs once per name that has a candidate (exact, fuzzy or by a form less qualifiers),
    not once per name; the order of preference is described in
    :meth:`pipeline.parties.PartyScreen.screen`.
    """
    names_list, normalized, base_texts, base_owner = names.names, names.normalized, names.base_texts, names.base_owner
    exact, top, top_scores = candidates.exact, candidates.top, candidates.top_scores
    base_exact, base_top, base_scores = candidates.base_exact, candidates.base_top, candidates.base_scores
    n = len(names_list)
    base_of: dict[int, list[int]] = {}  # position -> its rows in base_texts, least stripped first
    for k in np.flatnonzero((base_exact >= 0) | (base_top[:, 0] >= 0)).tolist():
        base_of.setdefault(int(base_owner[k]), []).append(k)
    review_parties = reviews.parties() if reviews is not None else set()
    with_base = np.zeros(n, bool)
    with_base[list(base_of)] = True
    positions = np.flatnonzero((exact >= 0) | (top[:, 0] >= 0) | with_base)
    via_base: dict[int, str] = {}  # position -> the name less qualifiers that the chosen hit matched
    tails = screen._listed_tails() if base_of else None

    best = np.full(n, -1, np.int64)
    score = np.full(n, np.nan)
    outcome: list[str | None] = [None] * n
    status: list[str | None] = [None] * n
    match_rows: dict[str, list] = {column: [] for column in MATCH_COLUMNS}
    earliest: dict[int, str | None] = {}  # position -> listing date that makes its outcome count
    codes = screen._codes
    entry_ids = screen.entries["entry_id"].tolist()
    entry_countries = screen.entries["countries"].tolist()
    listed_names, aliases = screen.entries["listed_name"].tolist(), screen.entries["alias"].tolist()
    listed_on, requirements = _entry_texts(screen.entries, "listed_on"), _entry_texts(screen.entries,
                                                                                      "license_requirement")
    index, texts_of = screen._index, screen._texts
    for position in positions.tolist():
        texts: dict[int, tuple[float, int]] = {}  # listed text -> (score, -level); level 0: as written
        offers = [(int(exact[position]), 1.0, 0)]
        offers += [(text, value, 0) for text, value in zip(top[position].tolist(), top_scores[position].tolist())]
        for level, k in enumerate(base_of.get(position, ()), start=1):
            offers.append((int(base_exact[k]), 1.0, level))
            offers += [(text, value, level) for text, value in zip(base_top[k].tolist(), base_scores[k].tolist())]
        for text, value, level in offers:
            if text < 0 or (level and not _tail_kept(base_texts[base_of[position][level - 1]], tails[text])):
                continue  # "X (Spain)" less its qualifiers is not "X (Netherlands)"
            if text not in texts or (value, -level) > texts[text]:
                texts[text] = (value, -level)
        query_country = countries[position] if countries is not None else None
        reviewed = normalized[position] in review_parties
        options = []  # (severity, score, -level, deny, review, -order, row)
        cleared = None
        for text, (value, level) in texts.items():
            rows = index[texts_of[text]]
            for order, row in enumerate(rows):
                row_score = value
                if value < 1.0 and query_country and (country_bonus or country_penalty):
                    row_score = _country_adjusted(value, query_country, entry_countries[row],
                                                  country_bonus, country_penalty)
                if reviewed:
                    decision = reviews.lookup(normalized[position], entry_ids[row])
                    if decision is not None:
                        if decision.fingerprint != screen.fingerprints().get(entry_ids[row]):
                            status[position] = (f"reopened: entry {entry_ids[row]} changed since "
                                                f"{decision.note()}")
                        elif decision.decision == "clear":
                            if row_score >= review_score and (cleared is None or row_score > cleared[1]):
                                cleared = (row, row_score, decision)
                            continue
                        else:
                            row_score = 1.0
                            status[position] = decision.note()
                code = codes[row]
                kind = ("block" if code in deny and row_score >= block_score else
                        "review" if (code in deny or code in review) and row_score >= review_score else None)
                options.append((SEVERITY[kind], row_score, level, code in deny, code in review, -len(options), row))
        if options:
            chosen = max(options)
            for rank, option in enumerate(sorted(options, reverse=True)[:TOP_MATCHES]):
                row = option[6]
                for column, value in zip(MATCH_COLUMNS, (names_list[position], normalized[position], rank + 1,
                                                         entry_ids[row], codes[row], listed_names[row],
                                                         aliases[row], option[1], listed_on[row],
                                                         requirements[row])):
                    match_rows[column].append(value)
            if chosen[1] >= review_score:
                best[position], score[position] = chosen[6], chosen[1]
                outcome[position] = OUTCOME_OF_SEVERITY[chosen[0]]
                if chosen[0]:  # every entry that gives the same outcome counts from its own date
                    earliest[position] = _earliest(listed_on[option[6]] for option in options
                                                   if option[0] == chosen[0])
                if chosen[2]:
                    via_base[position] = base_texts[base_of[position][-chosen[2] - 1]]
                continue
        if cleared is not None:
            best[position], score[position], outcome[position] = cleared[0], cleared[1], "cleared"
            status[position] = cleared[2].note()
    return Decisions(best, score, outcome, status, via_base, match_rows, earliest)


def party_results(screen, names, decisions: Decisions) -> pd.DataFrame:
    """The result table of :meth:`pipeline.parties.PartyScreen.screen` from the decisions.

    Parameters
    ----------
    screen : pipeline.parties.PartyScreen
        The list.
    names : pipeline.parties.screen.NormalizedNames
        Stage 1.
    decisions : Decisions
        Stage 3.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESULT_COLUMNS`; ``party_license_requirement`` is the reported entry's
        ``license_requirement``; ``party_listed_on`` is, for a block or review outcome, the
        earliest ``listed_on`` among all matched entries that give that outcome (missing when one
        of them has no date: the outcome holds on every date), else the reported entry's (both
        missing without a hit, or where the entry has none); ``attrs["matches"]`` a
        :class:`pipeline.parties.matches.PartyMatches`.
    """
    n = len(names.names)
    normalized, best, score, via_base = names.normalized, decisions.best, decisions.score, decisions.via_base
    hit = best >= 0
    picked = screen.entries.iloc[np.where(hit, best, 0)] if len(screen.entries) else None

    def party(column: str) -> pd.Series:
        if picked is None or column not in picked:
            return pd.Series([None] * n, dtype="str")
        values = picked[column].to_numpy(dtype=object).copy()
        values[~hit] = None
        return pd.Series(values, dtype="str")

    listed = party("listed_on")
    if decisions.listed_on:
        positions = list(decisions.listed_on)
        listed.iloc[positions] = pd.Series([decisions.listed_on[p] for p in positions], dtype="str").to_numpy()
    tokens: list[str | None] = [None] * n
    for position in np.flatnonzero(hit).tolist():
        query = via_base.get(position, normalized[position])
        listed_text = screen.entries.at[int(best[position]), "normalized"]
        if score[position] < 1.0 or query != listed_text:
            tokens[position] = screen.matcher.explain(query, listed_text)[1]
        else:
            tokens[position] = "exact"
        if position in via_base:  # say which words were read as qualifiers
            dropped = Counter(normalized[position].split()) - Counter(query.split())
            tokens[position] += " qualifiers=" + "+".join(dropped.elements())
    result = pd.DataFrame({
        "name": pd.Series(names.names, dtype="str"),
        "normalized": pd.Series(normalized, dtype="str"),
        "party_match": party("listed_name"),
        "party_alias": party("alias"),
        "party_list": party("list_code"),
        "party_entry_id": party("entry_id"),
        "party_score": score,
        "outcome": pd.Series(decisions.outcome, dtype="str"),
        "party_tokens": pd.Series(tokens, dtype="str"),
        "review_status": pd.Series(decisions.status, dtype="str"),
        "party_listed_on": listed,
        "party_license_requirement": party("license_requirement"),
    }, columns=RESULT_COLUMNS)
    result.attrs["matches"] = PartyMatches.from_rows(decisions.match_rows)
    return result
