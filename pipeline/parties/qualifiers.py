"""Qualifiers of a party name: where or which office of a party, not which party.

:func:`qualifier_bases` and :func:`strip_qualifiers` read the vocabulary of
``data/parties/qualifiers.csv`` (:data:`QUALIFIERS_PATH`) and the country names of
``data/countries.csv``.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from pipeline.parties.normalize import _FORMS, TRAILING_PARENTHESIS, _drop_legal_forms, normalize_name
from pipeline.parties.vocabulary import (GENERIC_WORDS, LEGAL_WORDS, PARTICLES, QUALIFIERS_PATH, read_rows)
from pipeline.reference import COUNTRIES_PATH

_BRACKETED = re.compile(r"[(\[]([^()\[\]]*)[)\]]")


@lru_cache(maxsize=1)
def _qualifiers() -> tuple[dict, frozenset, int, re.Pattern, frozenset]:
    """Qualifier phrases (token tuple -> kind), connectors, the longest phrase, the c/o pattern, weak words.

    Phrases come from ``data/parties/qualifiers.csv`` and the country names of
    ``data/countries.csv`` (also the part before a comma and without a parenthesis); weak words
    are the legal, particle and generic words (:mod:`pipeline.parties.vocabulary`) and the connectors.
    """
    phrases, connectors, markers = {}, set(), []
    for row in read_rows(QUALIFIERS_PATH, ("phrase", "kind", "country")):
        if row["kind"] in ("number_word", "address"):
            continue  # read by _address_words: an address phrase counts only with its number
        if row["kind"] == "care_of":
            markers.append(row["phrase"])
        elif row["kind"] == "connector":
            connectors.add(row["phrase"])
        else:
            phrases[tuple(normalize_name(row["phrase"]).split())] = row["kind"]
    for row in read_rows(COUNTRIES_PATH, ("alpha2", "name")):
        country = row["name"]
        for variant in (country, country.split(",")[0], TRAILING_PARENTHESIS.sub("", country)):
            phrases.setdefault(tuple(normalize_name(variant).split()), "country")
    phrases.pop((), None)
    alternatives = "|".join(re.escape(marker) for marker in sorted(markers, key=len, reverse=True))
    care_of = re.compile(rf"(?<![^\s(\[,;])(?:{alternatives})(?![^\s:,)\]])", re.IGNORECASE)
    weak = frozenset(LEGAL_WORDS | PARTICLES | GENERIC_WORDS | connectors)
    return phrases, frozenset(connectors), max(map(len, phrases)), care_of, weak


@lru_cache(maxsize=1)
def _care_of_markers() -> tuple[str, ...]:
    """The ``care_of`` phrases of the vocabulary, lower-case (a quick test before the pattern)."""
    rows = read_rows(QUALIFIERS_PATH, ("phrase", "kind"))
    return tuple(row["phrase"].lower() for row in rows if row["kind"] == "care_of")


@lru_cache(maxsize=1)
def _phrase_ends() -> frozenset[str]:
    """The last word of each qualifier phrase (a name ending otherwise has no trailing qualifier)."""
    return frozenset(phrase[-1] for phrase in _qualifiers()[0])


@lru_cache(maxsize=1)
def _address_words() -> tuple[frozenset, frozenset, int]:
    """Address phrases (token tuples: "warehouse", "p o box"), the words between one and its number
    ("no": "Warehouse No. 7"), the longest phrase; kinds ``address`` and ``number_word``."""
    rows = read_rows(QUALIFIERS_PATH, ("phrase", "kind"))
    phrases = frozenset(tuple(normalize_name(row["phrase"]).split()) for row in rows if row["kind"] == "address")
    numbers = frozenset(row["phrase"] for row in rows if row["kind"] == "number_word")
    return phrases, numbers, max(map(len, phrases), default=0)


def _address_at(tokens: list[str], i: int) -> int:
    """How many tokens from ``i`` are an address phrase, a number word or none, and a number; or 0."""
    phrases, numbers, longest = _address_words()
    for size in range(min(longest, len(tokens) - i - 1), 0, -1):
        if tuple(tokens[i:i + size]) in phrases:
            j = i + size + (i + size < len(tokens) - 1 and tokens[i + size] in numbers)
            if j < len(tokens) and _is_number(tokens[j]):
                return j + 1 - i
    return 0


def _is_number(token: str) -> bool:
    """A house, box or unit number: a token with a digit ("7", "500175", "b12")."""
    return any(char.isdigit() for char in token)


def _numbered_address(tokens: list[str]) -> int:
    """How many trailing tokens are an ``address`` phrase and its number ("p o box 500175"), or 0."""
    phrases, numbers, longest = _address_words()
    if len(tokens) < 3 or not _is_number(tokens[-1]):
        return 0
    end = len(tokens) - 1
    if tokens[end - 1] in numbers:
        end -= 1
    for size in range(min(longest, end - 1), 0, -1):
        if tuple(tokens[end - size:end]) in phrases:
            return len(tokens) - end + size
    return 0


def _drop_spelled_forms(tokens: list[str]) -> bool:
    """Drop a legal form spelled letter by letter at the end ("l l c", "f z e"), and the forms before it.

    In place, keeping at least one token; whether anything was dropped. Only the consignee's side
    is read this way (:func:`qualifier_bases`); ``normalize_name`` keeps "l l c" as written.
    """
    dropped = False
    while len(tokens) > 2:
        run = 0
        while run < len(tokens) - 1 and len(tokens[-1 - run]) == 1 and tokens[-1 - run].isascii() \
                and tokens[-1 - run].isalpha():
            run += 1
        size = next((s for s in range(run, 1, -1) if ("".join(tokens[-s:]),) in _FORMS), 0)
        if not size:
            break
        del tokens[-size:]
        _drop_legal_forms(tokens)
        dropped = True
    return dropped


def _all_qualifiers(tokens: list[str]) -> bool:
    """Whether ``tokens`` are qualifier phrases, legal forms and connectors only (and not none)."""
    phrases, connectors, longest, _, _ = _qualifiers()
    i, found = 0, False
    while i < len(tokens):
        size = next((s for s in range(min(longest, len(tokens) - i), 0, -1)
                     if tuple(tokens[i:i + s]) in phrases), 0)
        if not size:
            size = _address_at(tokens, i)
        if size:
            i, found = i + size, True
        elif tokens[i] in connectors or (tokens[i],) in _FORMS:
            i += 1
        else:
            return False
    return found


def strip_qualifiers(name: str | None, normalized: str | None = None) -> str:
    """The normalized name without its qualifiers: where or which office of a party, not which party.

    The last of :func:`qualifier_bases`, or ``""``.

    Dropped: a ``c/o`` (or "care of") marker and the rest of the name; a parenthesis or bracket of
    qualifiers only ("(Dubai Branch)", "(UAE)"); trailing qualifiers ("... Dubai", "... Middle East",
    "... Representative Office"), with legal forms and connectors between them. Qualifiers are
    places (countries, major cities, free zones, regions) and branch words
    (``data/parties/qualifiers.csv``, :data:`QUALIFIERS_PATH`); a qualifier at the start of a name
    ("Dubai Trading") stays.

    Parameters
    ----------
    name : str or None
        A consignee name, as written.
    normalized : str, optional
        ``normalize_name(name)``, when already known.

    Returns
    -------
    str
        The normalized name without qualifiers; ``""`` when there are none, or when what would be
        left is qualifiers, legal forms, particles and generic words only, or one word after a bare place
        ("Michael Jordan" stays; "Sugon (Dubai)", "CNOOC Representative Office" do not).

    Examples
    --------
    >>> strip_qualifiers("Huawei Technologies Co., Ltd. (Dubai Branch)")
    'huawei technologies'
    >>> strip_qualifiers("Huawei Technologies Co., Ltd. c/o Acme Freight")
    'huawei technologies'
    >>> strip_qualifiers("Huawei Technologies Middle East FZ-LLC")
    'huawei technologies'
    >>> strip_qualifiers("Dubai Trading LLC"), strip_qualifiers("Bank of Armenia")
    ('', '')
    """
    bases = qualifier_bases(name, normalized)
    return bases[-1] if bases else ""


def qualifier_bases(name: str | None, normalized: str | None = None) -> list[str]:
    """The normalized name less more and more of its qualifiers (see :func:`strip_qualifiers`).

    The name less each trailing qualifier in turn (bracketed words read as words; without a
    ``c/o`` tail), and the same without bracketed qualifiers; the longest first: "Huawei
    Technologies Morocco Dubai" gives "huawei technologies morocco" before "huawei technologies".
    Forms that :func:`strip_qualifiers` would refuse are left out.

    Examples
    --------
    >>> qualifier_bases("Huawei Technologies Morocco (Dubai Branch)")
    ['huawei technologies morocco dubai', 'huawei technologies morocco', 'huawei technologies']
    """
    if not name:
        return []
    phrases, connectors, longest, care_of, weak = _qualifiers()
    ends = _phrase_ends()
    if normalized is None:
        normalized = normalize_name(name)
    streams = [(normalized.split(), False)]  # (tokens, whether a c/o or a bracket marked the name's end)
    lowered = name.lower()
    if "(" in name or "[" in name or (any(m in lowered for m in _care_of_markers()) and care_of.search(name)):
        text = name
        cut = care_of.search(text)
        if cut:
            text = text[:cut.start()]
        dropped = []

        def drop(match: re.Match) -> str:
            if _all_qualifiers(normalize_name(match.group(1)).split()):
                dropped.append(match.group(1))
                return " "
            return match.group(0)

        streams = [(normalize_name(text).split(), bool(cut))]  # brackets read as words first
        bare = _BRACKETED.sub(drop, text)
        if dropped:
            streams.append((normalize_name(bare).split(), True))
    levels = []
    for tokens, marked in streams:
        spelled = _drop_spelled_forms(tokens)  # "huawei technologies l l c": a legal form only
        first = list(tokens)
        if marked or spelled:  # the name as cut, unless it has trailing qualifiers to drop as well
            levels.append(first)
        kinds: list[str] = []
        while len(tokens) > 1 and (tokens[-1] in ends or _is_number(tokens[-1])):
            size = _numbered_address(tokens)
            if size:
                kind = "address"
            else:
                size = next((s for s in range(min(longest, len(tokens) - 1), 0, -1)
                             if tuple(tokens[-s:]) in phrases), 0)
                if not size:
                    break
                kind = phrases[tuple(tokens[-size:])]
            kinds.append(kind)
            del tokens[-size:]
            while len(tokens) > 1 and tokens[-1] in connectors:
                tokens.pop()
            _drop_legal_forms(tokens)
            _drop_spelled_forms(tokens)
            strong = marked or len(kinds) > 1 or bool({"branch", "free_zone", "region"} & set(kinds))
            if marked and levels and levels[-1] is first:
                levels.pop()
            if len(tokens) > 1 or strong:
                levels.append(list(tokens))
    bases = []
    for level in levels:
        base = " ".join(level)
        if not level or base == normalized or base in bases or all(t in weak for t in level) or _all_qualifiers(level):
            continue
        bases.append(base)
    return sorted(bases, key=lambda base: -base.count(" "))  # least stripped first


def _qualifier_tail(name: str, normalized: str) -> Counter:
    """The words that :func:`strip_qualifiers` drops from a name (empty when it drops none)."""
    base = strip_qualifiers(name, normalized)
    return Counter(normalized.split()) - Counter(base.split()) if base else Counter()


def _tail_kept(base: str, tail: Counter) -> bool:
    """Whether a query less its qualifiers still has a listed name's own qualifier words."""
    return not tail or not tail - Counter(base.split())



PLACE_KINDS = frozenset({"city", "country", "region", "free_zone"})
"""Qualifier kinds that :func:`leading_place_bases` drops at the start of a name."""


def leading_place_bases(texts: list[str]) -> list[str]:
    """Normalized names less a place at their start ("dubai huawei technologies" → "huawei technologies").

    Such a form is a candidate for an exact hit only (:class:`pipeline.parties.PartyScreen`): a
    place word at the start of a name is often part of another company's name ("Dubai Trading",
    "Hong Kong Technologies"), so only a listed name that equals what remains makes a hit.

    Parameters
    ----------
    texts : list of str
        Normalized names (a name and its forms less trailing qualifiers).

    Returns
    -------
    list of str
        Per text with a leading place (and connectors after it), the rest, when it has at least two
        words, not all of them weak (legal, particle, generic words) or qualifiers; not repeating
        one of ``texts``.

    Examples
    --------
    >>> leading_place_bases(["dubai huawei technologies", "dubai trading", "abu dhabi iran air"])
    ['huawei technologies', 'iran air']
    """
    phrases, connectors, longest, _, weak = _qualifiers()
    found = []
    for text in texts:
        tokens = text.split()
        size = next((s for s in range(min(longest, len(tokens) - 1), 0, -1)
                     if phrases.get(tuple(tokens[:s])) in PLACE_KINDS), 0)
        if not size:
            continue
        rest = tokens[size:]
        while rest and rest[0] in connectors:
            rest = rest[1:]
        base = " ".join(rest)
        if len(rest) < 2 or all(t in weak for t in rest) or _all_qualifiers(rest) or base in texts or base in found:
            continue
        found.append(base)
    return found
