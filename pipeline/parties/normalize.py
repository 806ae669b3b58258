"""Name normalization for exact matching: :func:`normalize_name`.

The transliteration tables and the legal forms are data (``data/parties/transliteration.csv``,
``data/parties/legal-forms.csv``; :mod:`pipeline.parties.vocabulary`).
"""
from __future__ import annotations

import re
import unicodedata

from pipeline.parties.vocabulary import legal_forms, transliteration

# Apostrophes, incl. cp1252's 0x91/0x92 read as Latin-1 controls ("Xi\x92an" in the CSL).
_APOSTROPHES = frozenset("'`\u00b4\u02b9\u02bb\u02bc\u02bd\u2018\u2019\u201b\u2032\x91\x92")
# In the CSL export a lost apostrophe or accent reads "?": "People?s", "Xi?an". Inside a word it
# is dropped (like an apostrophe); elsewhere (lost quotes and dashes) it becomes a space.
_LOST_INSIDE_WORD = re.compile(r"(?<=[^\W\d_])\?(?=[sS]\b)|(?<=[a-z])\?(?=[a-z])")

TRAILING_PARENTHESIS = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)\s*\.?\s*$")
"""A parenthesis (one level of nesting) at the end of a name, with a trailing full stop."""

# Transliteration to Latin of the scripts common on the CSL and in ledgers, applied to casefolded,
# NFKD-decomposed text (so accents are already split off): data/parties/transliteration.csv.
# Scripts without a practical table there (Han, Kana, Arabic, Hebrew...) are kept as they are.
_TRANSLITERATION = transliteration()

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

_FORMS = legal_forms()[0]
_FORM_LENGTHS = sorted({len(form) for form in _FORMS}, reverse=True)
_CJK_FORMS = sorted((form[0] for form in _FORMS if not form[0].isascii()), key=len, reverse=True)
_FORM_ENDS = frozenset(form[-1] for form in _FORMS)
"""The last word of each legal form: a name ending otherwise has no legal form to drop."""


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
        if tokens[-1] not in _FORM_ENDS:
            break
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

