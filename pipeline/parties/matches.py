"""The best-matches table of a screen result and ``parties.parquet`` (:func:`write_party_matches`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MATCH_COLUMNS = ["name", "normalized", "rank", "entry_id", "list_code", "listed_name", "alias", "score", "listed_on",
                 "license_requirement"]
"""Columns of the best-matches table: one row per (name, candidate entry), best first (``rank``); ``listed_on``
and ``license_requirement`` are the entry's (:func:`pipeline.parties.load_screening_list`)."""
_TEXT_MATCH_COLUMNS = [column for column in MATCH_COLUMNS if column not in ("rank", "score")]
_CHOSEN_COLUMNS = ["name", "outcome", "party_entry_id", "party_tokens", "review_status"]


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

    @classmethod
    def from_rows(cls, rows: dict[str, list]) -> "PartyMatches":
        """The table of column lists ``rows`` (keys :data:`MATCH_COLUMNS`); ``rank`` int8, ``score`` float64."""
        matches = pd.DataFrame(rows, columns=MATCH_COLUMNS)
        matches["rank"] = matches["rank"].astype(np.int8)
        matches["score"] = matches["score"].astype(np.float64)
        return cls(matches)


def _typed_matches(matches: pd.DataFrame) -> pd.DataFrame:
    """``matches`` with text columns of pandas' ``str`` dtype, ``rank`` int8 and ``score`` float64
    (an empty table otherwise reads as numbers or nulls)."""
    matches = matches.reindex(columns=MATCH_COLUMNS).copy()
    for column in _TEXT_MATCH_COLUMNS:
        matches[column] = matches[column].astype("str") if len(matches) else pd.Series([], dtype="str")
    matches["rank"] = matches["rank"].astype(np.int8)
    matches["score"] = matches["score"].astype(np.float64)
    return matches


def write_party_matches(parties: pd.DataFrame | None, path: str | Path) -> None:
    """Write ``parties.parquet``: each distinct consignee's outcome and best listed matches.

    One row per (consignee, candidate entry), best first (``rank``), with the entry's listing
    date (``listed_on``) and ``license_requirement`` as evidence, and the consignee's
    ``outcome``, ``party_tokens`` and ``review_status`` repeated on its rows;
    consignees without any candidate are left out. Text columns are strings, ``rank`` int8,
    ``score`` float64 and ``chosen`` bool, also when no consignee has a candidate (or there are
    none).

    Parameters
    ----------
    parties : pandas.DataFrame or None
        A result of :meth:`pipeline.parties.PartyScreen.screen` (its ``attrs["matches"]``; none:
        no rows); None for a run without consignees (no rows, the same column types).
    path : str or Path
        The Parquet file to write.
    """
    holder = parties.attrs.get("matches") if parties is not None else None
    matches = _typed_matches(holder.frame if holder is not None else pd.DataFrame(columns=MATCH_COLUMNS))
    chosen = (parties[_CHOSEN_COLUMNS].drop_duplicates("name") if parties is not None
              else pd.DataFrame({column: pd.Series([], dtype="str") for column in _CHOSEN_COLUMNS}))
    table = matches.merge(chosen, on="name", how="left")
    table["chosen"] = (table["entry_id"] == table["party_entry_id"]).astype(bool)
    table.drop(columns="party_entry_id").to_parquet(path, index=False)
