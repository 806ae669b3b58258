"""Restricted-party screening against the Consolidated Screening List (CSL).

The distinct consignee names of a ledger are screened once; the result table is joined back to
the rows by dictionary code (DESIGN 2). Matching runs in two stages: exact on normalized names
(a consignee hits a CSL entry when :func:`normalize_name` gives the same text for both, score 1.0),
then fuzzy token similarity with blocking (:mod:`pipeline.matching`); a consignee name is also
matched without its qualifiers (:func:`strip_qualifiers`: "... (Dubai Branch)", "... c/o ...").
Analysts' reviewed decisions (:mod:`pipeline.review`) are honoured.

The CSL quirks handled here are described in ``data/csl/SOURCES.md``.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.reference import COUNTRIES_PATH, CSL_CHECK_PATH, CSL_PATH, load_list_check

LIST_CODES: dict[str, str] = {
    "Entity List (EL) - Bureau of Industry and Security": "EL",
    "Specially Designated Nationals (SDN) - Treasury Department": "SDN",
    "Denied Persons List (DPL) - Bureau of Industry and Security": "DPL",
    "Unverified List (UVL) - Bureau of Industry and Security": "UVL",
    "Military End User (MEU) List - Bureau of Industry and Security": "MEU",
    "ITAR Debarred (DTC) - State Department": "DTC",
    "Nonproliferation Sanctions (ISN) - State Department": "ISN",
    "Sectoral Sanctions Identifications List (SSI) - Treasury Department": "SSI",
    "Palestinian Legislative Council List (PLC) - Treasury Department": "PLC",
    "Non-SDN Chinese Military-Industrial Complex Companies List (CMIC) - Treasury Department": "CMIC",
    "Capta List (CAP) - Treasury Department": "CAP",
    "Non-SDN Menu-Based Sanctions List (NS-MBS List) - Treasury Department": "NS-MBS",
    "Foreign Sanctions Evaders (FSE) - Treasury Department": "FSE",
}
"""CSL ``source`` strings of the known lists, mapped to their short codes."""

KNOWN_CODES = frozenset(LIST_CODES.values())

ENTRY_COLUMNS = ["entry_id", "list_code", "listed_name", "alias", "normalized", "countries"]
RESULT_COLUMNS = ["name", "normalized", "party_match", "party_alias", "party_list", "party_entry_id",
                  "party_score", "outcome", "party_tokens", "review_status"]


class ScreeningListError(ValueError):
    """A screening-list file that cannot be used (unreadable, not a CSL export, unknown source,
    missing columns, or empty or much shorter than the packaged list)."""


def list_code(source: str) -> str:
    """Short code of a CSL ``source`` string, from its parenthesised abbreviation.

    Parameters
    ----------
    source : str
        The ``source`` field, e.g. ``"Entity List (EL) - Bureau of Industry and Security"``.

    Returns
    -------
    str
        One of the codes in :data:`LIST_CODES`.

    Raises
    ------
    ScreeningListError
        When no known code is in parentheses, so a new list is never screened silently.

    Examples
    --------
    >>> list_code("Entity List (EL) - Bureau of Industry and Security")
    'EL'
    >>> list_code("Non-SDN Menu-Based Sanctions List (NS-MBS List) - Treasury Department")
    'NS-MBS'
    """
    if source in LIST_CODES:
        return LIST_CODES[source]
    for inner in re.findall(r"\(([^()]*)\)", source):
        code = re.sub(r"\s+List$", "", inner.strip())
        if code in KNOWN_CODES:
            return code
    raise ScreeningListError(f"unknown screening-list source {source!r}; add it to LIST_CODES")


# --- name normalization --------------------------------------------------------------------------

# Apostrophes, incl. cp1252's 0x91/0x92 read as Latin-1 controls ("Xi\x92an" in the CSL).
_APOSTROPHES = frozenset("'`\u00b4\u02b9\u02bb\u02bc\u02bd\u2018\u2019\u201b\u2032\x91\x92")
# In the CSL export a lost apostrophe or accent reads "?": "People?s", "Xi?an". Inside a word it
# is dropped (like an apostrophe); elsewhere (lost quotes and dashes) it becomes a space.
_LOST_INSIDE_WORD = re.compile(r"(?<=[^\W\d_])\?(?=[sS]\b)|(?<=[a-z])\?(?=[a-z])")


# Transliteration to Latin of the scripts common on the CSL and in ledgers, applied to casefolded,
# NFKD-decomposed text (so accents are already split off). Russian/Ukrainian/Belarusian Cyrillic
# after BGN/PCGN, Greek after ELOT 743 (simplified), Hangul jamo after the Revised Romanization
# (initial ieung silent). Latin letters that NFKD does not decompose are folded too. Scripts without
# a practical table here (Han, Kana, Arabic, Hebrew...) are kept as they are.
_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґўђјљњћџѐѝ",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "i", "yi",
     "ye", "g", "w", "dj", "j", "lj", "nj", "c", "dz", "e", "i"]))
_GREEK = dict(zip(
    "αβγδεζηθικλμνξοπρσςτυφχψω",
    ["a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "x", "o", "p", "r", "s",
     "s", "t", "y", "f", "ch", "ps", "o"]))
_LATIN = {"æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i",
          "ħ": "h", "ŀ": "l", "ŧ": "t", "ĸ": "k", "ŋ": "ng", "ſ": "s", "ß": "ss"}
_HANGUL_INITIAL = ["g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch",
                   "k", "t", "p", "h"]
_HANGUL_VOWEL = ["a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u",
                 "wo", "we", "wi", "yu", "eu", "ui", "i"]
_HANGUL_FINAL = ["k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m",
                 "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t"]
_TRANSLITERATION = {**_CYRILLIC, **_GREEK, **_LATIN}
_TRANSLITERATION.update({chr(0x1100 + i): text for i, text in enumerate(_HANGUL_INITIAL)})
_TRANSLITERATION.update({chr(0x1161 + i): text for i, text in enumerate(_HANGUL_VOWEL)})
_TRANSLITERATION.update({chr(0x11A8 + i): text for i, text in enumerate(_HANGUL_FINAL)})


class _CharMap(dict):
    """``str.translate`` table, filled on first sight of each character.

    Letters with a transliteration (:data:`_TRANSLITERATION`) become Latin; other letters,
    digits and spacing marks stay; apostrophes, combining marks and invisible format
    characters go; ``&`` reads "and"; every other character (punctuation, symbols, spaces,
    controls) becomes a space.
    """

    def __missing__(self, code: int):
        char = chr(code)
        category = unicodedata.category(char)
        if char in _TRANSLITERATION:
            value = _TRANSLITERATION[char]
        elif char in _APOSTROPHES or category in ("Mn", "Me", "Cf"):
            value = None  # also combining marks and invisible format characters (soft hyphen)
        elif char == "&":
            value = " and "
        elif category[0] in "LN" or category == "Mc":
            value = code
        else:
            value = " "
        self[code] = value
        return value


_CHARS = _CharMap()

_LEGAL_FORMS = """
co, company, corp, corporation, inc, incorporated, ltd, limited, llc, llp, lp, plc, pvt, pte, pty,
gmbh, ag, kg, and co, and co kg, gmbh and co kg, sa, s a, sas, sarl, sa de cv, s a de c v, de cv,
s de rl, s de rl de cv, srl, s r l, sl, s l, spa, s p a, ltda, bv, b v, nv, n v, oy, oyj, ab, as,
a s, sro, s r o, doo, d o o, bhd, sdn bhd, tbk, kk, jsc, ojsc, pjsc, cjsc, ooo, oao, zao, ao, fze,
fzco, fzc, fzllc, fz llc, co ltd, company limited, private limited, pvt ltd, public limited company,
aktiengesellschaft, gesellschaft mit beschrankter haftung, kft, zrt, sp z o o, spolka z o o, pao,
tov, ead, eood, saog, sae, wll, fze llc, pte ltd, ltda me,
有限公司, 股份有限公司, 有限责任公司, 有限責任公司, 股份公司, 公司, 株式会社, 有限会社, 주식회사
"""
_FORMS = frozenset(tuple(form.split()) for form in _LEGAL_FORMS.replace("\n", " ").split(","))
_FORM_LENGTHS = sorted({len(form) for form in _FORMS}, reverse=True)
_CJK_FORMS = sorted((form[0] for form in _FORMS if not form[0].isascii()), key=len, reverse=True)


def normalize_name(name: str | None) -> str:
    """Normalize a party name for exact matching.

    Steps: a ``?`` that stands for a lost apostrophe or accent inside a word is dropped; Unicode
    NFKC and casefold; accents stripped (NFKD, combining marks dropped); apostrophes dropped, ``&``
    read as "and", all other punctuation and symbols read as spaces; whitespace collapsed; then
    legal-form words at the end (``co ltd``, ``gmbh``, ``ooo``, ``有限公司`` ...) dropped
    repeatedly, never leaving the name empty.

    Parameters
    ----------
    name : str or None
        A consignee name or a listed name.

    Returns
    -------
    str
        The normalized text; ``""`` for ``None``, empty or punctuation-only input.

    Notes
    -----
    Pure Python and deterministic. ASCII names (most of them) skip the Unicode steps. Legal forms
    are dropped only at the end of a name: ``"OOO DSK"`` and ``"DSK LLC"`` stay different.

    Examples
    --------
    >>> normalize_name("Huawei Technologies Co., Ltd.")
    'huawei technologies'
    >>> normalize_name("HUAWEI TECHNOLOGIES CO LTD")
    'huawei technologies'
    >>> normalize_name("Donetsk People?s Republic") == normalize_name("Donetsk People's Republic")
    True
    >>> normalize_name("Société Générale S.A.")
    'societe generale'
    >>> normalize_name("Smith & Sons GmbH & Co. KG")
    'smith and sons'
    >>> normalize_name("华为技术有限公司")
    '华为技术'
    >>> normalize_name(None)
    ''
    """
    if not name:
        return ""
    if "?" in name:
        name = _LOST_INSIDE_WORD.sub("", name)
    if name.isascii():
        text = name.lower().translate(_CHARS)
    else:
        text = unicodedata.normalize("NFKC", name).casefold()
        text = unicodedata.normalize("NFKD", text).translate(_CHARS)
        text = unicodedata.normalize("NFC", text)
    tokens = text.split()
    return " ".join(_drop_legal_forms(tokens))


def _drop_legal_forms(tokens: list[str]) -> list[str]:
    """Drop legal-form words from the end of ``tokens`` (in place), keeping at least one token."""
    changed = True
    while changed and len(tokens) > 1:
        changed = False
        for size in _FORM_LENGTHS:
            if len(tokens) > size and tuple(tokens[-size:]) in _FORMS:
                del tokens[-size:]
                changed = True
                break
    if tokens and not tokens[-1].isascii():
        # CJK legal forms are written without a space: 华为技术有限公司.
        for form in _CJK_FORMS:
            if tokens[-1].endswith(form) and len(tokens[-1]) > len(form):
                tokens[-1] = tokens[-1][: -len(form)]
                return _drop_legal_forms(tokens)
    return tokens


# --- qualifiers -----------------------------------------------------------------------------------

QUALIFIERS_PATH = COUNTRIES_PATH.parent / "parties" / "qualifiers.csv"
"""Places, free zones, branch words and c/o markers (``data/parties/SOURCES.md``)."""

_BRACKETED = re.compile(r"[(\[]([^()\[\]]*)[)\]]")


@lru_cache(maxsize=1)
def _qualifiers() -> tuple[dict, frozenset, int, re.Pattern, frozenset]:
    """Qualifier phrases (token tuple -> kind), connectors, the longest phrase, the c/o pattern, weak words.

    Phrases come from ``data/parties/qualifiers.csv`` and the country names of
    ``data/countries.csv`` (also the part before a comma and without a parenthesis); weak words
    are the legal, particle and generic words of :mod:`pipeline.matching` and the connectors.
    """
    from pipeline.matching import GENERIC_WORDS, LEGAL_WORDS, PARTICLES

    phrases, connectors, markers = {}, set(), []
    with open(QUALIFIERS_PATH, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(line for line in handle if not line.startswith("#")):
            if row["kind"] == "care_of":
                markers.append(row["phrase"])
            elif row["kind"] == "connector":
                connectors.add(row["phrase"])
            else:
                phrases[tuple(normalize_name(row["phrase"]).split())] = row["kind"]
    with open(COUNTRIES_PATH, encoding="utf-8", newline="") as handle:
        rows = csv.reader(line for line in handle if not line.startswith("#"))
        next(rows)
        for _, country in rows:
            for variant in (country, country.split(",")[0], _TRAILING_PARENTHESIS.sub("", country)):
                phrases.setdefault(tuple(normalize_name(variant).split()), "country")
    phrases.pop((), None)
    alternatives = "|".join(re.escape(marker) for marker in sorted(markers, key=len, reverse=True))
    care_of = re.compile(rf"(?<![^\s(\[,;])(?:{alternatives})(?![^\s:,)\]])", re.IGNORECASE)
    weak = frozenset(LEGAL_WORDS | PARTICLES | GENERIC_WORDS | connectors)
    return phrases, frozenset(connectors), max(map(len, phrases)), care_of, weak


@lru_cache(maxsize=1)
def _care_of_markers() -> tuple[str, ...]:
    """The ``care_of`` phrases of the vocabulary, lower-case (a quick test before the pattern)."""
    with open(QUALIFIERS_PATH, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return tuple(row["phrase"].lower() for row in rows if row["kind"] == "care_of")


@lru_cache(maxsize=1)
def _phrase_ends() -> frozenset[str]:
    """The last word of each qualifier phrase (a name ending otherwise has no trailing qualifier)."""
    return frozenset(phrase[-1] for phrase in _qualifiers()[0])


def _all_qualifiers(tokens: list[str]) -> bool:
    """Whether ``tokens`` are qualifier phrases, legal forms and connectors only (and not none)."""
    phrases, connectors, longest, _, _ = _qualifiers()
    i, found = 0, False
    while i < len(tokens):
        size = next((s for s in range(min(longest, len(tokens) - i), 0, -1)
                     if tuple(tokens[i:i + s]) in phrases), 0)
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
        first = list(tokens)
        if marked:  # the name as cut, unless it has trailing qualifiers to drop as well
            levels.append(first)
        kinds: list[str] = []
        while len(tokens) > 1 and tokens[-1] in ends:
            size = next((s for s in range(min(longest, len(tokens) - 1), 0, -1) if tuple(tokens[-s:]) in phrases), 0)
            if not size:
                break
            kinds.append(phrases[tuple(tokens[-size:])])
            del tokens[-size:]
            while len(tokens) > 1 and tokens[-1] in connectors:
                tokens.pop()
            _drop_legal_forms(tokens)
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


# --- reading the list ----------------------------------------------------------------------------

_AFFILIATE = re.compile(r"\s*\bAffiliated Entit(?:y|ies)\s*:\s*", re.IGNORECASE)
_TRAILING_PARENTHESIS = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)\s*\.?\s*$")
_REQUIRED = ("_id", "source", "name", "alt_names", "addresses")


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    return opener(path, "rt", encoding="utf-8-sig", newline="")  # a spreadsheet's BOM is not part of "_id"


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """ISO-2 code by code and by casefolded English name, from ``data/countries.csv``."""
    with open(COUNTRIES_PATH, encoding="utf-8", newline="") as handle:
        rows = csv.reader(line for line in handle if not line.startswith("#"))
        next(rows)
        lookup = {}
        for code, country in rows:
            lookup[code] = code
            lookup[country.casefold()] = code
    return lookup


def address_countries(addresses: str) -> str:
    """``;``-joined ISO-2 countries at the end of each ``"; "``-separated address.

    A spelled-out country (``"China"``) is mapped through ``data/countries.csv``; an address that
    ends in neither (a postcode, a city) adds nothing.

    Examples
    --------
    >>> address_countries("Minsk, BY; Borisov, 222512, BY; Room 5, Shenzhen, China; Tehran")
    'BY;CN'
    """
    lookup = _country_names()
    found: dict[str, None] = {}
    for address in addresses.split(";"):
        tail = address.rsplit(",", 1)[-1].strip()
        code = lookup.get(tail) if len(tail) == 2 else lookup.get(tail.casefold())
        if code:
            found[code] = None
    return ";".join(found)


def _searchable_names(name: str, alt_names: str) -> list[str]:
    """The texts to match for one record: name parts, their base forms, and aliases."""
    parts = _AFFILIATE.split(name)
    texts = []
    for part in parts:
        part = part.strip(" .;,")
        texts.append(part)
        base = _TRAILING_PARENTHESIS.sub("", part).strip(" .;,")
        if base and base != part:
            texts.append(base)  # "Huawei Technologies Co., Ltd. (Huawei)" -> "... Co., Ltd."
    for alias in alt_names.split("; "):
        alias = alias.strip()
        if alias[:4].lower() == "and ":
            alias = alias[4:].strip()
        texts.append(alias)
    return [text for text in dict.fromkeys(texts) if text]


def load_screening_list(path: str | Path = CSL_PATH) -> pd.DataFrame:
    """Read a CSL CSV export into one row per searchable name.

    Parameters
    ----------
    path : str or Path
        A CSL CSV file, plain or gzip-compressed (detected from the content).

    Returns
    -------
    pandas.DataFrame
        Columns ``entry_id`` (the record's ``_id``; the k-th repeat of an ``_id`` gets ``"#k"``),
        ``list_code``, ``listed_name`` (the primary name, whitespace collapsed, without an
        embedded "Affiliated Entity: ..." tail), ``alias`` (the
        text matched against: the name, a part of it, or an ``alt_names`` alias),
        ``normalized`` and ``countries`` (``;``-joined ISO-2 codes, ``""`` if none).
        ``attrs`` holds ``records`` (complete records read), ``skipped`` (truncated or
        malformed records), ``duplicate_headers`` and ``path``.

    Raises
    ------
    ScreeningListError
        A file that is missing or unreadable, empty (0 bytes), not UTF-8 CSV text (binary
        content), a truncated gzip stream, a missing column or an unknown ``source``; the message
        names the file. A header-only or short list reads; :func:`check_list_size` refuses it.

    Notes
    -----
    Searchable names per record: the primary name split at an embedded "Affiliated Entity:"
    (each part an entry), each part also without a trailing parenthetical such as an acronym or
    "(f.k.a. ...)", and each ``alt_names`` alias (split on ``"; "``, leading "and " dropped).
    Entries whose normalized text is empty, or that repeat one already kept for the same
    record, are left out.
    """
    path = Path(path)
    try:
        return _read_screening_list(path)
    except OSError as error:  # missing, a folder, no permission, not gzip after all
        raise ScreeningListError(f"cannot read screening list {path}: {error.strerror or error}") from None
    except EOFError:
        raise ScreeningListError(f"screening list {path} ends early: a truncated gzip file") from None
    except UnicodeDecodeError as error:
        raise ScreeningListError(f"screening list {path} is not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                                 "binary content?") from None
    except (csv.Error, zlib.error) as error:
        raise ScreeningListError(f"screening list {path} is not a readable CSV file: {error}") from None


def _read_screening_list(path: Path) -> pd.DataFrame:
    """:func:`load_screening_list` without the translation of read errors."""
    records = skipped = duplicate_headers = 0
    seen_ids: Counter[str] = Counter()
    columns: dict[str, list[str]] = {name: [] for name in ENTRY_COLUMNS}
    normalized_cache: dict[str, str] = {}
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ScreeningListError(f"screening list {path} is empty (no header, no records)")
        missing = [name for name in _REQUIRED if name not in header]
        if missing:
            raise ScreeningListError(f"{path}: missing CSL columns {missing}; is it a Consolidated Screening "
                                     "List CSV export?")
        at = {name: header.index(name) for name in _REQUIRED}
        for row in reader:
            if row == header:
                duplicate_headers += 1
                continue
            if len(row) != len(header):
                skipped += 1
                continue
            records += 1
            raw_id = row[at["_id"]].strip()
            seen_ids[raw_id] += 1
            entry_id = raw_id if seen_ids[raw_id] == 1 else f"{raw_id}#{seen_ids[raw_id]}"
            try:
                code = list_code(row[at["source"]])
            except ScreeningListError as error:
                raise ScreeningListError(f"{path}:{reader.line_num}: {error}") from None
            full_name = " ".join(row[at["name"]].split())
            if _AFFILIATE.search(full_name):
                listed = _AFFILIATE.split(full_name, maxsplit=1)[0].strip(" .;,") or full_name
            else:
                listed = full_name
            countries = address_countries(row[at["addresses"]])
            kept = set()
            for text in _searchable_names(full_name, row[at["alt_names"]]):
                normalized = normalized_cache.get(text)
                if normalized is None:
                    normalized = normalized_cache[text] = normalize_name(text)
                if not normalized or normalized in kept:
                    continue
                kept.add(normalized)
                for column, value in zip(ENTRY_COLUMNS, (entry_id, code, listed, text, normalized,
                                                         countries)):
                    columns[column].append(value)
    frame = pd.DataFrame(columns, columns=ENTRY_COLUMNS, dtype="str")
    frame.attrs.update(records=records, skipped=skipped, duplicate_headers=duplicate_headers,
                       path=str(path))
    return frame


def check_list_size(entries: pd.DataFrame, allow_short: bool = False) -> None:
    """Refuse a screening list with no records, or much shorter than the packaged list.

    A truncated download or a header-only file reads as a valid list; screened against it, every
    party on the missing lines would pass. The packaged list's record count and the shrink
    allowed are data (``data/csl/list_check.toml``).

    Parameters
    ----------
    entries : pandas.DataFrame
        A frame of :func:`load_screening_list` (its ``attrs`` give ``records`` and ``path``);
        a frame built in memory, without ``records``, is not checked.
    allow_short : bool
        Accept such a list anyway (``--allow-short-list``, policy parameter
        ``parties.allow_short_list``).

    Raises
    ------
    ScreeningListError
        The list is empty or shorter than allowed, and ``allow_short`` is false.
    """
    records = entries.attrs.get("records")
    if allow_short or records is None:
        return
    path = entries.attrs.get("path", "the screening list")
    hint = "; pass --allow-short-list (policy parameter parties.allow_short_list) to screen with it anyway"
    if records == 0:
        raise ScreeningListError(f"screening list {path} has no records{hint}")
    check = load_list_check()
    least = math.ceil(check["reference_records"] * (1 - check["max_shrink"]))
    if records < least:
        raise ScreeningListError(
            f"screening list {path} has {records:,} records, fewer than {least:,} ({1 - check['max_shrink']:.0%} "
            f"of the {check['reference_records']:,} of the packaged list, {CSL_CHECK_PATH.name}): a truncated "
            f"or partial file?{hint}")


# --- screening -----------------------------------------------------------------------------------


DEFAULT_BLOCK_SCORE = 0.92
"""Block threshold when none is given (policies set ``parties.block_score``)."""
DEFAULT_REVIEW_SCORE = 0.78
"""Review threshold when none is given (policies set ``parties.review_score``)."""
TOP_MATCHES = 5
"""Best listed names kept per consignee for ``parties.parquet``."""
MATCH_COLUMNS = ["name", "normalized", "rank", "entry_id", "list_code", "listed_name", "alias", "score"]


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
        self._matcher = None
        self._fingerprints: dict[str, str] | None = None

    @property
    def matcher(self):
        """The fuzzy matcher over the distinct listed texts (built on first use)."""
        if self._matcher is None:
            from pipeline.matching import NameMatcher

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
        :meth:`pipeline.matching.NameMatcher.score` (no blocking, no countries), on ``backend``
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
            by ``country_bonus`` / ``-country_penalty`` (:func:`pipeline.matching.country_adjusted`).
        reviews : pipeline.review.ReviewBook, optional
            Analysts' decisions to honour.
        fuzzy : bool
            Run the fuzzy stage after the exact one.
        backend : {"auto", "numpy", "cupy"} or Backend, optional
            Where the fuzzy pairs are scored (:func:`pipeline.matching.score_pairs`); the CPU
            when omitted or NumPy. Scores are the same on every backend.

        Returns
        -------
        pandas.DataFrame
            One row per input name, in input order, columns :data:`RESULT_COLUMNS`: ``name``,
            ``normalized``, ``party_match`` (listed name of the chosen hit), ``party_alias`` (the
            listed text that matched), ``party_list``, ``party_entry_id``, ``party_score`` (1.0 on
            an exact hit, the fuzzy score otherwise, NaN without a hit), ``outcome``
            (``"block"``, ``"review"``, ``"cleared"`` or missing), ``party_tokens`` (which query
            token paired with which listed token, and how similar) and ``review_status`` (the
            analyst decision applied, or why one was not). Text columns use pandas' ``str``
            dtype, so "no hit" reads as a missing value. ``attrs["matches"]`` holds the
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
        names = list(names)
        once: dict = {}  # a name may come once per country: normalize and score each text once
        normalized = [once[name] if name in once else once.setdefault(name, normalize_name(name)) for name in names]
        once_base: dict = {}  # the name less its qualifiers: more texts to match (qualifier_bases)
        bases = [once_base[name] if name in once_base else once_base.setdefault(name, qualifier_bases(name, text))
                 for name, text in zip(names, normalized)]
        base_owner = np.fromiter((i for i, texts in enumerate(bases) for _ in texts), np.int64)
        base_texts = [text for texts in bases for text in texts]
        n = len(names)
        text_row = {text: i for i, text in enumerate(self._texts)}
        if fuzzy and self._texts and n:
            floor = max(0.0, min(0.5, review_score - country_bonus))
            position_of: dict[str, int] = {}
            inverse = np.fromiter((position_of.setdefault(text, len(position_of)) for text in normalized), np.int64, n)
            base_inverse = np.fromiter((position_of.setdefault(text, len(position_of)) for text in base_texts),
                                       np.int64, len(base_texts))
            top, top_scores = self.matcher.top_matches(list(position_of), k=TOP_MATCHES, floor=floor, backend=backend)
            base_top, base_scores = top[base_inverse], top_scores[base_inverse]
            top, top_scores = top[inverse], top_scores[inverse]
        else:
            top, top_scores = np.full((n, 1), -1, np.int64), np.zeros((n, 1))
            base_top, base_scores = np.full((len(base_texts), 1), -1, np.int64), np.zeros((len(base_texts), 1))
        exact = np.array([text_row.get(text, -1) if text else -1 for text in normalized], np.int64)
        base_exact = np.array([text_row.get(text, -1) for text in base_texts], np.int64)
        base_of: dict[int, list[int]] = {}  # position -> its rows in base_texts, least stripped first
        for k in np.flatnonzero((base_exact >= 0) | (base_top[:, 0] >= 0)).tolist():
            base_of.setdefault(int(base_owner[k]), []).append(k)
        review_parties = reviews.parties() if reviews is not None else set()
        candidates = np.flatnonzero((exact >= 0) | (top[:, 0] >= 0) | np.isin(np.arange(n), list(base_of)))
        via_base: dict[int, str] = {}  # position -> the name less qualifiers that the chosen hit matched
        tails = self._listed_tails() if base_of else None

        best = np.full(n, -1, np.int64)
        score = np.full(n, np.nan)
        outcome: list[str | None] = [None] * n
        status: list[str | None] = [None] * n
        match_rows: dict[str, list] = {column: [] for column in MATCH_COLUMNS}
        codes = self._codes
        entry_ids = self.entries["entry_id"].tolist()
        entry_countries = self.entries["countries"].tolist()
        listed_names, aliases = self.entries["listed_name"].tolist(), self.entries["alias"].tolist()
        severity = {"block": 2, "review": 1, None: 0}
        for position in candidates.tolist():
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
                rows = self._index[self._texts[text]]
                for order, row in enumerate(rows):
                    row_score = value
                    if value < 1.0 and query_country and (country_bonus or country_penalty):
                        row_score = float(_country_adjusted(value, query_country, entry_countries[row],
                                                            country_bonus, country_penalty))
                    if reviewed:
                        decision = reviews.lookup(normalized[position], entry_ids[row])
                        if decision is not None:
                            if decision.fingerprint != self.fingerprints().get(entry_ids[row]):
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
                    options.append((severity[kind], row_score, level, code in deny, code in review, -len(options),
                                    row))
            if options:
                chosen = max(options)
                for rank, option in enumerate(sorted(options, reverse=True)[:TOP_MATCHES]):
                    row = option[6]
                    for column, value in zip(MATCH_COLUMNS, (names[position], normalized[position], rank + 1,
                                                             entry_ids[row], codes[row], listed_names[row],
                                                             aliases[row], option[1])):
                        match_rows[column].append(value)
                if chosen[1] >= review_score:
                    kind = {2: "block", 1: "review", 0: None}[chosen[0]]
                    best[position], score[position], outcome[position] = chosen[6], chosen[1], kind
                    if chosen[2]:
                        via_base[position] = base_texts[base_of[position][-chosen[2] - 1]]
                    continue
            if cleared is not None:
                best[position], score[position], outcome[position] = cleared[0], cleared[1], "cleared"
                status[position] = cleared[2].note()
        hit = best >= 0
        picked = self.entries.iloc[np.where(hit, best, 0)] if len(self.entries) else None

        def party(column: str) -> pd.Series:
            if picked is None:
                return pd.Series([None] * n, dtype="str")
            values = picked[column].to_numpy(dtype=object).copy()
            values[~hit] = None
            return pd.Series(values, dtype="str")

        tokens: list[str | None] = [None] * n
        for position in np.flatnonzero(hit).tolist():
            query = via_base.get(position, normalized[position])
            listed_text = self.entries.at[int(best[position]), "normalized"]
            if score[position] < 1.0 or query != listed_text:
                tokens[position] = self.matcher.explain(query, listed_text)[1]
            else:
                tokens[position] = "exact"
            if position in via_base:  # say which words were read as qualifiers
                dropped = Counter(normalized[position].split()) - Counter(query.split())
                tokens[position] += " qualifiers=" + "+".join(dropped.elements())
        result = pd.DataFrame({
            "name": pd.Series(names, dtype="str"),
            "normalized": pd.Series(normalized, dtype="str"),
            "party_match": party("listed_name"),
            "party_alias": party("alias"),
            "party_list": party("list_code"),
            "party_entry_id": party("entry_id"),
            "party_score": score,
            "outcome": pd.Series(outcome, dtype="str"),
            "party_tokens": pd.Series(tokens, dtype="str"),
            "review_status": pd.Series(status, dtype="str"),
        }, columns=RESULT_COLUMNS)
        matches = pd.DataFrame(match_rows, columns=MATCH_COLUMNS)
        matches["rank"] = matches["rank"].astype(np.int8)
        matches["score"] = matches["score"].astype(np.float64)
        result.attrs["matches"] = PartyMatches(matches)
        return result


class PartyMatches:
    """Holder of the best-matches table in a screen result's ``attrs`` (compared by identity, so
    pandas can propagate ``attrs`` without comparing frames).

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns :data:`MATCH_COLUMNS`.
    """

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame


def _country_adjusted(value: float, query: str, listed: str, bonus: float, penalty: float) -> float:
    from pipeline.matching import country_adjusted

    return float(country_adjusted(np.array([value]), [query], [listed], bonus, penalty)[0])


def write_party_matches(parties: pd.DataFrame, path: str | Path) -> None:
    """Write ``parties.parquet``: each distinct consignee's outcome and best listed matches.

    One row per (consignee, candidate entry), best first (``rank``), with the consignee's
    ``outcome``, ``party_score``, ``party_tokens`` and ``review_status`` repeated on its rows;
    consignees without any candidate are left out.
    """
    holder = parties.attrs.get("matches")
    matches = holder.frame if holder is not None else pd.DataFrame(columns=MATCH_COLUMNS)
    chosen = parties[["name", "outcome", "party_entry_id", "party_tokens", "review_status"]].drop_duplicates("name")
    table = matches.merge(chosen, on="name", how="left")
    table["chosen"] = table["entry_id"] == table["party_entry_id"]
    table.drop(columns="party_entry_id").to_parquet(path, index=False)


@lru_cache(maxsize=8)
def _screen_for(path: Path) -> PartyScreen:
    return PartyScreen(load_screening_list(path))


def refresh_screening_list(source: str | Path, folder: str | Path) -> Path:
    """Check a newly downloaded Consolidated Screening List and keep a copy named by its hash.

    Parameters
    ----------
    source : path
        The new file (CSV, optionally gzip-compressed).
    folder : path
        Where screening-list versions are kept (e.g. ``<lake>/reference``).

    Returns
    -------
    Path
        The kept copy, ``csl-<sha256 prefix>.csv[.gz]``; an identical earlier copy is reused.

    Raises
    ------
    pipeline.parties.ScreeningListError
        If the file does not read as a screening list (the previous version stays in use). Its
        size is checked when a run screens with it (:func:`check_list_size`).
    """
    import hashlib
    import os
    import shutil

    source = Path(source)
    try:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    except OSError as error:
        raise ScreeningListError(f"cannot read screening list {source}: {error.strerror or error}") from None
    suffix = ".csv.gz" if source.name.endswith(".gz") else ".csv"
    folder = Path(folder)
    kept = folder / f"csl-{digest}{suffix}"
    if kept.exists():
        return kept
    load_screening_list(source)  # raises on a file that is not a screening list
    folder.mkdir(parents=True, exist_ok=True)
    partial = kept.with_name(kept.name + ".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, kept)
    return kept
