"""Analysts' reviewed decisions on restricted-party matches, with an audit trail.

A reviewed-decisions file is a CSV with one row per decision:

=============  ==================================================================================
column         meaning
=============  ==================================================================================
party          the consignee name as reviewed (matched by its normalized form)
entry_id       the CSL entry the decision is about (``entry_id`` of the screening list)
decision       ``clear`` (a false positive: not this listed party) or ``confirm`` (a true match)
analyst        who decided
decided_at     when (ISO 8601 date or date-time; without a UTC offset it is taken as UTC)
reason         why (free text, required)
fingerprint    the entry's :func:`entry_fingerprint` when the decision was taken
=============  ==================================================================================

Later runs honour a decision only while the entry's fingerprint is unchanged: a changed list entry
(new alias, address, list) re-opens the review. Rows are appended, never edited; when a party and
entry have several rows, the latest ``decided_at`` wins, compared as instants (file order breaks
ties).
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REVIEW_COLUMNS = ["party", "entry_id", "decision", "analyst", "decided_at", "reason", "fingerprint"]
DECISIONS = ("clear", "confirm")


class ReviewFileError(ValueError):
    """A reviewed-decisions file that cannot be used (missing column, bad value)."""


@dataclass(frozen=True)
class Review:
    """One analyst decision on a (party, listed entry) pair."""

    party: str
    entry_id: str
    decision: str
    analyst: str
    decided_at: str
    reason: str
    fingerprint: str

    def note(self) -> str:
        """Audit text for ``reasons``-style outputs, e.g. ``"cleared by ana on 2026-01-02: ..."``."""
        verb = "cleared" if self.decision == "clear" else "confirmed"
        return f"{verb} by {self.analyst} on {self.decided_at}: {self.reason}"

    def instant(self) -> dt.datetime:
        """When the decision was taken (:func:`decided_instant`)."""
        try:
            return decided_instant(self.decided_at)
        except ValueError:
            raise ReviewFileError(f"decided_at {self.decided_at!r} of the review of {self.party!r} / "
                                  f"{self.entry_id} is not an ISO date") from None


def decided_instant(text: str) -> dt.datetime:
    """The instant of a ``decided_at`` value, in UTC.

    Parameters
    ----------
    text : str
        An ISO 8601 date or date-time. One without a UTC offset (a bare date too) is taken as
        UTC: ``2026-03-01`` is ``2026-03-01T00:00:00+00:00``.

    Returns
    -------
    datetime.datetime
        Aware, in UTC.

    Raises
    ------
    ValueError
        ``text`` is not an ISO 8601 date or date-time.

    Examples
    --------
    >>> decided_instant("2026-03-01T09:00:00-05:00") > decided_instant("2026-03-01T12:00:00+00:00")
    True
    """
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def entry_fingerprint(entries: pd.DataFrame) -> dict[str, str]:
    """A short hash per ``entry_id`` of what an analyst saw: list, listed name, aliases, countries.

    Parameters
    ----------
    entries : pandas.DataFrame
        Rows of :func:`pipeline.parties.load_screening_list`.

    Returns
    -------
    dict
        ``entry_id`` → 16 hexadecimal characters.
    """
    out = {}
    for entry_id, group in entries.groupby("entry_id", sort=False):
        text = "\x1f".join([group["list_code"].iloc[0], group["listed_name"].iloc[0],
                            *sorted(group["alias"]), group["countries"].iloc[0]])
        out[str(entry_id)] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


class ReviewBook:
    """The reviewed decisions in force, looked up by normalized party name and entry id.

    Parameters
    ----------
    reviews : iterable of Review
        Decisions in file order.
    normalize : callable
        The name normalization used by screening.

    Raises
    ------
    ReviewFileError
        A ``decided_at`` that is not an ISO date.

    Notes
    -----
    Per (party, entry) the decision with the latest ``decided_at`` instant is in force
    (:func:`decided_instant`: offsets applied, none means UTC); of equal instants, the later in
    file order.
    """

    def __init__(self, reviews, normalize):
        latest: dict[tuple[str, str], tuple[dt.datetime, Review]] = {}
        for review in reviews:
            key = (normalize(review.party), review.entry_id)
            when = review.instant()
            if key not in latest or when >= latest[key][0]:
                latest[key] = (when, review)
        self._latest = {key: review for key, (_, review) in latest.items()}

    def __len__(self) -> int:
        return len(self._latest)

    def lookup(self, normalized_party: str, entry_id: str) -> Review | None:
        """The decision in force for a party and entry, if any."""
        return self._latest.get((normalized_party, entry_id))

    def parties(self) -> set[str]:
        """Normalized party names with at least one decision."""
        return {party for party, _ in self._latest}


def read_reviews(path: str | Path) -> list[Review]:
    """Read and check a reviewed-decisions file.

    Raises
    ------
    ReviewFileError
        Unreadable file, not UTF-8 CSV text, missing column, unknown decision, bad date, or an
        empty analyst, reason or fingerprint; the message names the file (and the line). An empty
        file holds no reviews.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader if row]
    except OSError as error:
        raise ReviewFileError(f"cannot read reviews file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ReviewFileError(f"reviews file {path} is not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
                              "save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise ReviewFileError(f"reviews file {path} is not a readable CSV file: {error}") from None
    if header is None and not rows:  # an empty file holds no reviews yet (review-party starts such files)
        return []
    header = header or []
    missing = [column for column in REVIEW_COLUMNS if column not in header]
    if missing:
        raise ReviewFileError(f"{path}: missing columns {missing}")
    at = {column: header.index(column) for column in REVIEW_COLUMNS}
    reviews = []
    for line, row in rows:
        values = {column: (row[i] if i < len(row) else "").strip() for column, i in at.items()}
        if values["decision"] not in DECISIONS:
            raise ReviewFileError(f"{path}:{line}: decision must be one of {DECISIONS}, not {values['decision']!r}")
        for column in ("party", "entry_id", "analyst", "reason", "fingerprint"):
            if not values[column]:
                raise ReviewFileError(f"{path}:{line}: empty {column}")
        try:
            decided_instant(values["decided_at"])
        except ValueError:
            raise ReviewFileError(f"{path}:{line}: decided_at {values['decided_at']!r} is not an ISO date") from None
        reviews.append(Review(**values))
    return reviews


def append_review(path: str | Path, review: Review) -> None:
    """Append one decision to a reviewed-decisions file, writing the header for a new file.

    Raises
    ------
    ReviewFileError
        ``path`` is a folder, an existing file :func:`read_reviews` refuses (nothing is appended
        to it), or the decision has an empty party, entry, analyst, reason or fingerprint.
    """
    path = Path(path)
    for column in ("party", "entry_id", "analyst", "reason", "fingerprint"):
        if not str(getattr(review, column)).strip():
            raise ReviewFileError(f"empty {column}: a reviewed decision needs one")
    if review.decision not in DECISIONS:
        raise ReviewFileError(f"decision must be one of {DECISIONS}, not {review.decision!r}")
    check_reviews_file(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a+b") as handle:
        if not new:  # a last line without its end would take the new row in
            handle.seek(-1, 2)
            if handle.read(1) not in (b"\n", b"\r"):
                handle.write(b"\r\n")
    with open(path, "a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(REVIEW_COLUMNS)
        writer.writerow([getattr(review, column) for column in REVIEW_COLUMNS])


def check_reviews_file(path: str | Path) -> None:
    """Refuse a reviews file a decision cannot be appended to: a folder, or a file :func:`read_reviews` refuses.

    An absent or empty file is accepted (it is created with its header).

    Raises
    ------
    ReviewFileError
    """
    path = Path(path)
    if not str(path).strip() or path.is_dir():
        raise ReviewFileError(f"reviews file {path} is a folder; give a CSV file")
    if path.exists() and not path.is_file():
        raise ReviewFileError(f"reviews file {path} is not a regular file")
    if path.is_file() and path.stat().st_size:
        read_reviews(path)
