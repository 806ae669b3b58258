"""Analysts' reviewed decisions on restricted-party matches, with an audit trail.

A reviewed-decisions file is a CSV with one row per decision:

=============  ==================================================================================
column         meaning
=============  ==================================================================================
party          the consignee name as reviewed (matched by its normalized form)
entry_id       the CSL entry the decision is about (``entry_id`` of the screening list)
decision       ``clear`` (a false positive: not this listed party) or ``confirm`` (a true match)
analyst        who decided
decided_at     when (ISO 8601 date or date-time)
reason         why (free text, required)
fingerprint    the entry's :func:`entry_fingerprint` when the decision was taken
=============  ==================================================================================

Later runs honour a decision only while the entry's fingerprint is unchanged: a changed list entry
(new alias, address, list) re-opens the review. Rows are appended, never edited; when a party and
entry have several rows, the latest ``decided_at`` wins (file order breaks ties).
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
    """

    def __init__(self, reviews, normalize):
        latest: dict[tuple[str, str], Review] = {}
        for review in reviews:
            key = (normalize(review.party), review.entry_id)
            if key not in latest or review.decided_at >= latest[key].decided_at:
                latest[key] = review
        self._latest = latest

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
        Unreadable file, missing column, unknown decision, bad date, or an empty analyst,
        reason or fingerprint.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else None
    except OSError as error:
        raise ReviewFileError(f"cannot read reviews file {path}: {error.strerror}") from None
    if header is None:
        with open(path, encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), [])
    missing = [column for column in REVIEW_COLUMNS if column not in header]
    if missing:
        raise ReviewFileError(f"{path}: missing columns {missing}")
    reviews = []
    for line, row in enumerate(rows, start=2):
        values = {column: (row[column] or "").strip() for column in REVIEW_COLUMNS}
        if values["decision"] not in DECISIONS:
            raise ReviewFileError(f"{path}:{line}: decision must be one of {DECISIONS}, not {values['decision']!r}")
        for column in ("party", "entry_id", "analyst", "reason", "fingerprint"):
            if not values[column]:
                raise ReviewFileError(f"{path}:{line}: empty {column}")
        try:
            dt.datetime.fromisoformat(values["decided_at"])
        except ValueError:
            raise ReviewFileError(f"{path}:{line}: decided_at {values['decided_at']!r} is not an ISO date") from None
        reviews.append(Review(**values))
    return reviews


def append_review(path: str | Path, review: Review) -> None:
    """Append one decision to a reviewed-decisions file, writing the header for a new file."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(REVIEW_COLUMNS)
        writer.writerow([getattr(review, column) for column in REVIEW_COLUMNS])
