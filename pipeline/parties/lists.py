"""The screening list: reading a Consolidated Screening List (CSL) export, checking its size, refreshing it.

The CSL quirks handled here are described in ``data/csl/SOURCES.md``; the list codes are data
(``data/parties/list-codes.csv``).
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import re
import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.parties.normalize import TRAILING_PARENTHESIS, normalize_name
from pipeline.parties.vocabulary import KNOWN_CODES, LIST_CODES
from pipeline.reference import COUNTRIES_PATH, CSL_CHECK_PATH, CSL_PATH, load_list_check

ENTRY_COLUMNS = ["entry_id", "list_code", "listed_name", "alias", "normalized", "countries", "listed_on",
                 "license_requirement"]
"""Columns of :func:`load_screening_list`."""
FIRST_LISTING_DATE, LAST_LISTING_DATE = "1900-01-01", "2199-12-31"
"""Range of a usable ``start_date``; one outside it (``0097-06-30``) reads as missing."""


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
    raise ScreeningListError(f"unknown screening-list source {source!r}; add it to data/parties/list-codes.csv")


_AFFILIATE = re.compile(r"\s*\bAffiliated Entit(?:y|ies)\s*:\s*", re.IGNORECASE)
_REQUIRED = ("_id", "source", "name", "alt_names", "addresses")
_OPTIONAL = ("start_date", "license_requirement")  # absent: missing on every entry


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
        base = TRAILING_PARENTHESIS.sub("", part).strip(" .;,")
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
        ``normalized``, ``countries`` (``;``-joined ISO-2 codes, ``""`` if none),
        ``listed_on`` (the record's ``start_date`` as ``YYYY-MM-DD``; missing where blank or
        unusable) and ``license_requirement`` (whitespace collapsed; missing where blank), all
        of pandas' ``str`` dtype. ``attrs`` holds ``records`` (complete records read),
        ``skipped`` (truncated or malformed records), ``duplicate_headers``,
        ``blank_start_dates`` (records with a blank or no ``start_date``), ``bad_start_dates``
        (records whose non-blank ``start_date`` is not a ``YYYY-MM-DD`` date from
        :data:`FIRST_LISTING_DATE` to :data:`LAST_LISTING_DATE`) and ``path``.

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
    record, are left out. A file without a ``start_date`` or ``license_requirement`` column
    reads with that column missing on every entry.
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
    columns: dict[str, list[str]] = {name: [] for name in ENTRY_COLUMNS[:6]}
    record_of: list[int] = []  # per entry: its record, 0-based
    start_dates: list[str] = []  # per record
    requirements: list[str] = []
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
        at = {name: header.index(name) for name in _REQUIRED + _OPTIONAL if name in header}
        start_at, requirement_at = at.get("start_date"), at.get("license_requirement")
        for row in reader:
            if row == header:
                duplicate_headers += 1
                continue
            if len(row) != len(header):
                skipped += 1
                continue
            records += 1
            start_dates.append(row[start_at] if start_at is not None else "")
            requirements.append(row[requirement_at] if requirement_at is not None else "")
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
                record_of.append(records - 1)
                for column, value in zip(ENTRY_COLUMNS, (entry_id, code, listed, text, normalized,
                                                         countries)):
                    columns[column].append(value)
    listed_on, blank, bad = listing_dates(start_dates)
    requirement = pd.Series(requirements, dtype="str").str.split().str.join(" ")
    requirement = requirement.where(requirement != "")
    rows = np.asarray(record_of, dtype=np.int64)
    columns["listed_on"] = listed_on.to_numpy(dtype=object)[rows]
    columns["license_requirement"] = requirement.to_numpy(dtype=object)[rows]
    frame = pd.DataFrame(columns, columns=ENTRY_COLUMNS, dtype="str")
    frame.attrs.update(records=records, skipped=skipped, duplicate_headers=duplicate_headers,
                       blank_start_dates=blank, bad_start_dates=bad, path=str(path))
    return frame


def listing_dates(start_dates) -> tuple[pd.Series, int, int]:
    """Usable listing dates of CSL ``start_date`` texts, and how many were blank or unusable.

    Parameters
    ----------
    start_dates : sequence of str
        ``start_date`` fields as written.

    Returns
    -------
    dates : pandas.Series
        ``YYYY-MM-DD`` text (``str`` dtype), missing where the text is blank or not a
        ``YYYY-MM-DD`` date from :data:`FIRST_LISTING_DATE` to :data:`LAST_LISTING_DATE`.
    blank : int
        Texts that are blank.
    bad : int
        Non-blank texts that are not such a date.

    Examples
    --------
    >>> dates, blank, bad = listing_dates(["2020-05-22", " ", "0097-06-30", "2021-02-30", "05/22/2020"])
    >>> dates.tolist(), blank, bad
    (['2020-05-22', nan, nan, nan, nan], 1, 3)
    """
    texts = pd.Series(list(start_dates), dtype="str").str.strip()
    blank = texts.isna() | (texts == "")
    shaped = texts.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fillna(False).astype(bool)
    parsed = pd.to_datetime(texts.where(shaped), format="%Y-%m-%d", errors="coerce")
    usable = (parsed.notna() & (texts >= FIRST_LISTING_DATE) & (texts <= LAST_LISTING_DATE)).astype(bool)
    return texts.where(usable), int(blank.sum()), int((~blank & ~usable).sum())


def distinct_names(entries: pd.DataFrame) -> int:
    """Distinct usable names of a screening list: non-blank normalized texts, each counted once.

    Examples
    --------
    >>> distinct_names(pd.DataFrame({"normalized": ["acme", "acme", "", "zenith"]}))
    2
    """
    texts = entries["normalized"] if "normalized" in entries else pd.Series([], dtype="str")
    return int(texts[texts.fillna("").str.strip() != ""].nunique())


def _reference_names(path: Path = CSL_CHECK_PATH) -> int:
    """``reference_names`` of ``data/csl/list_check.toml``: distinct usable names of the packaged list."""
    import tomllib

    with open(path, "rb") as handle:
        names = tomllib.load(handle).get("reference_names")
    if not isinstance(names, int) or isinstance(names, bool) or names < 1:
        raise ValueError(f"{path}: reference_names must be a positive integer")
    return names


def check_list_size(entries: pd.DataFrame, allow_short: bool = False) -> None:
    """Refuse a screening list with no records, or much shorter than the packaged list.

    A truncated download or a header-only file reads as a valid list; screened against it, every
    party on the missing lines would pass. So would a list of as many records whose names are
    blank, or that repeat one record: the distinct usable names (:func:`distinct_names`) are
    counted as well. The packaged list's record and name counts and the shrink allowed are data
    (``data/csl/list_check.toml``).

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
        The list is empty, has fewer records or fewer distinct usable names than allowed, and
        ``allow_short`` is false.

    Notes
    -----
    Counting cannot tell a list that lacks only a few records (say, those of one party) from a
    newer version of the list; that is what the list's hash in ``summary.json`` is for.
    """
    records = entries.attrs.get("records")
    if allow_short or records is None:
        return
    path = entries.attrs.get("path", "the screening list")
    hint = "; pass --allow-short-list (policy parameter parties.allow_short_list) to screen with it anyway"
    if records == 0:
        raise ScreeningListError(f"screening list {path} has no records{hint}")
    check = load_list_check()
    kept = 1 - check["max_shrink"]
    least = math.ceil(check["reference_records"] * kept)
    if records < least:
        raise ScreeningListError(
            f"screening list {path} has {records:,} records, fewer than {least:,} ({kept:.0%} "
            f"of the {check['reference_records']:,} of the packaged list, {CSL_CHECK_PATH.name}): a truncated "
            f"or partial file?{hint}")
    reference_names = _reference_names()
    names = distinct_names(entries)
    least_names = math.ceil(reference_names * kept)
    if names < least_names:
        raise ScreeningListError(
            f"screening list {path} has {records:,} records but {names:,} distinct usable names, fewer than "
            f"{least_names:,} ({kept:.0%} of the {reference_names:,} of the packaged list, "
            f"{CSL_CHECK_PATH.name}): blank names or repeated records?{hint}")


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
