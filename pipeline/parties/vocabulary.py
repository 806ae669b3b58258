"""The vocabularies of party screening, read from the data files under ``data/parties/``.

One file per concept, each described (with its sources) in ``data/parties/SOURCES.md``:
legal forms (``legal-forms.csv``), name particles (``particles.csv``), generic business words
(``generic-words.csv``), abbreviations (``abbreviations.csv``), transliteration tables
(``transliteration.csv``), CSL list codes (``list-codes.csv``) and qualifiers
(``qualifiers.csv``, read by :mod:`pipeline.parties.qualifiers`). Each is read once per process.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from pipeline.reference import DATA_DIR

PARTIES_DIR = DATA_DIR / "parties"
"""The folder of the vocabulary files."""
LEGAL_FORMS_PATH = PARTIES_DIR / "legal-forms.csv"
PARTICLES_PATH = PARTIES_DIR / "particles.csv"
GENERIC_WORDS_PATH = PARTIES_DIR / "generic-words.csv"
ABBREVIATIONS_PATH = PARTIES_DIR / "abbreviations.csv"
TRANSLITERATION_PATH = PARTIES_DIR / "transliteration.csv"
LIST_CODES_PATH = PARTIES_DIR / "list-codes.csv"
QUALIFIERS_PATH = PARTIES_DIR / "qualifiers.csv"
"""Places, free zones, branch words and c/o markers (``data/parties/SOURCES.md``)."""


class VocabularyError(ValueError):
    """A vocabulary file under ``data/parties/`` that does not read as described."""


def read_rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a vocabulary CSV (``#`` lines are comments), checked for ``columns``.

    Parameters
    ----------
    path : Path
        The file.
    columns : tuple of str
        The columns the file must have.

    Returns
    -------
    list of dict
        One dict per row, in file order.

    Raises
    ------
    VocabularyError
        A missing column, or a row with another number of fields.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(line for line in handle if not line.startswith("#"))
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise VocabularyError(f"{path}: missing columns {missing}")
        rows = list(reader)
    for number, row in enumerate(rows, start=1):
        if None in row or any(row[c] is None for c in columns):
            raise VocabularyError(f"{path}: row {number} has the wrong number of fields")
    return rows


def _words(path: Path) -> frozenset[str]:
    return frozenset(row["word"] for row in read_rows(path, ("word",)))


@lru_cache(maxsize=1)
def legal_forms() -> tuple[frozenset[tuple[str, ...]], frozenset[str]]:
    """Legal forms: the phrases dropped from the end of a name, and the low-weight words.

    Returns
    -------
    drop_at_end : frozenset of tuple of str
        Token tuples (``("co", "ltd")``, ``("有限公司",)``) that :func:`pipeline.parties.normalize_name`
        drops from the end of a name.
    low_weight : frozenset of str
        Single words that the fuzzy matcher weights by ``LEGAL_WEIGHT`` (:data:`LEGAL_WORDS`).
    """
    rows = read_rows(LEGAL_FORMS_PATH, ("form", "drop_at_end", "low_weight"))
    drop = frozenset(tuple(row["form"].split()) for row in rows if row["drop_at_end"] == "1")
    low = [row["form"] for row in rows if row["low_weight"] == "1"]
    if any(len(word.split()) != 1 for word in low):
        raise VocabularyError(f"{LEGAL_FORMS_PATH}: low_weight=1 on a phrase of several words")
    return drop, frozenset(low)


@lru_cache(maxsize=1)
def particles() -> frozenset[str]:
    """Name particles (``data/parties/particles.csv``)."""
    return _words(PARTICLES_PATH)


@lru_cache(maxsize=1)
def generic_words() -> frozenset[str]:
    """Generic business words (``data/parties/generic-words.csv``)."""
    return _words(GENERIC_WORDS_PATH)


@lru_cache(maxsize=1)
def abbreviations() -> dict[str, str]:
    """Abbreviation or variant → the form both sides of a comparison read (``abbreviations.csv``)."""
    return {row["abbreviation"]: row["expansion"]
            for row in read_rows(ABBREVIATIONS_PATH, ("abbreviation", "expansion"))}


@lru_cache(maxsize=1)
def transliteration() -> dict[str, str]:
    """Letter → Latin text, for casefolded NFKD text (``data/parties/transliteration.csv``).

    Raises
    ------
    VocabularyError
        A ``letter`` that is not the character of its ``code_point``.
    """
    table = {}
    for row in read_rows(TRANSLITERATION_PATH, ("script", "code_point", "letter", "latin")):
        char = chr(int(row["code_point"].removeprefix("U+"), 16))
        if row["letter"] != char:
            raise VocabularyError(f"{TRANSLITERATION_PATH}: {row['letter']!r} is not {row['code_point']}")
        table[char] = row["latin"]
    return table


@lru_cache(maxsize=1)
def list_codes() -> dict[str, str]:
    """CSL ``source`` string → short list code (``data/parties/list-codes.csv``)."""
    return {row["source"]: row["code"] for row in read_rows(LIST_CODES_PATH, ("source", "code"))}


LEGAL_WORDS = legal_forms()[1]
"""Single legal-form words of low weight (``legal-forms.csv``, ``low_weight=1``)."""
PARTICLES = particles()
"""Name particles (``particles.csv``)."""
GENERIC_WORDS = generic_words()
"""Generic business words (``generic-words.csv``)."""
ABBREVIATIONS = abbreviations()
"""Abbreviations and spelling variants read as one form on both sides (``abbreviations.csv``)."""
LIST_CODES = list_codes()
"""CSL ``source`` strings of the known lists, mapped to their short codes (``list-codes.csv``)."""
KNOWN_CODES = frozenset(LIST_CODES.values())
"""The short codes of :data:`LIST_CODES`."""
