"""The party-result cache of one run: each consignee screened once, whatever piece it shows up in.

A consignee is a name, or a name with the row's destination where the rule set moves scores by
country (:func:`pipeline.run.rows.consignees`). Results are kept per ``[parties]`` settings (a
diff screens under two rule sets) and only grow, so a copy sent to a Dask worker returns what it
added as the rows after a mark (:meth:`PartyResultCache.added_since`).

Results from elsewhere (a checkpoint's ``names.parquet`` of an earlier night) that lack a column
of :data:`pipeline.parties.RESULT_COLUMNS` were written by an older version: they are not kept,
so those consignees are screened again (a missing ``party_listed_on`` would read as "listed
always").
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from pipeline.ingest import file_digest
from pipeline.parties import RESULT_COLUMNS
from pipeline.policy import Policy

_TEXT_COLUMNS = ("party_listed_on", "party_license_requirement")


def settings_key(policy: Policy) -> tuple:
    """What party results depend on besides the list: the ``[parties]`` settings and the reviews file."""
    settings = policy.get("parties")
    reviews = settings.get("reviews_file")
    return (json.dumps(settings, sort_keys=True, default=str), file_digest(Path(reviews)) if reviews else None)


class PartyResultCache:
    """Party results per consignee for one screening list, kept for the life of a run.

    Parameters
    ----------
    csl_path : path
        The screening list every result comes from.
    """

    def __init__(self, csl_path: str | Path):
        self.csl_path = Path(csl_path)
        self._results: dict[tuple, tuple[dict, pd.DataFrame]] = {}

    def copy(self) -> "PartyResultCache":
        """A cache that starts with these results and grows on its own (results are shared, not copied)."""
        other = PartyResultCache(self.csl_path)
        other._results = {key: (dict(position), frame) for key, (position, frame) in self._results.items()}
        return other

    def known(self, policy: Policy) -> pd.DataFrame | None:
        """Every result kept under ``policy``'s settings (to store with a checkpoint), or None."""
        return self._results.get(settings_key(policy), (None, None))[1]

    def marks(self) -> dict[tuple, int]:
        """Results kept per settings now (see :meth:`added_since`)."""
        return {key: len(frame) for key, (_, frame) in self._results.items()}

    def added_since(self, marks: dict[tuple, int]) -> dict[tuple, pd.DataFrame]:
        """Results added after :meth:`marks` returned ``marks``, per settings."""
        return {key: frame.iloc[marks.get(key, 0):].reset_index(drop=True)
                for key, (_, frame) in self._results.items() if len(frame) > marks.get(key, 0)}

    def add(self, policy: Policy, results: pd.DataFrame) -> None:
        """Keep results screened elsewhere (an earlier night, a worker) under ``policy``'s settings.

        Results without every column of :data:`pipeline.parties.RESULT_COLUMNS` (an older
        version's) are not kept: their consignees are screened again when met.
        """
        self._add(settings_key(policy), results)

    def keep(self, policy: Policy, results: pd.DataFrame, countries: Sequence[str | None] | None = None) -> None:
        """Keep what :meth:`pipeline.parties.PartyScreen.screen_policy` returned for names screened
        with ``countries`` (None: countries do not move scores), as :meth:`screened` would have."""
        kept = results.copy()
        kept.attrs.clear()
        kept["query_country"] = pd.Series(list(countries) if countries is not None else [None] * len(kept),
                                          dtype="str")
        self.add(policy, kept)

    def merge(self, added: dict[tuple, pd.DataFrame]) -> None:
        """Keep what :meth:`added_since` returned from copies of this cache."""
        for key, results in added.items():
            self._add(key, results)

    def _add(self, key: tuple, results: pd.DataFrame) -> None:
        if any(column not in results.columns for column in RESULT_COLUMNS):
            return
        results = _typed(results)
        position, known = self._results.get(key, ({}, None))
        pairs = _pairs(results)
        fresh, seen = [], set(position)
        for i, pair in enumerate(pairs):
            if pair not in seen:
                seen.add(pair)
                fresh.append(i)
        if not fresh and known is not None:
            return
        add = results.iloc[fresh].reset_index(drop=True)
        start = 0 if known is None else len(known)
        position.update({pairs[i]: start + j for j, i in enumerate(fresh)})
        self._results[key] = (position, add if known is None else pd.concat([known, add], ignore_index=True))

    def screened(self, screen, names: Sequence[str | None], policy: Policy, backend=None,
                 countries: Sequence[str | None] | None = None) -> pd.DataFrame:
        """Party results of distinct consignees, in their order, screening only those not kept yet.

        Parameters
        ----------
        screen : PartyScreen
            The run's screening list.
        names : sequence of str or None
        policy : Policy
        backend : Backend, optional
            Where fuzzy pairs are scored (the scores are the same everywhere).
        countries : sequence of str or None, optional
            Country of each name, where countries move scores.

        Returns
        -------
        pandas.DataFrame
            As :meth:`pipeline.parties.PartyScreen.screen_policy` returns for ``names`` (without
            per-name candidate lists), plus ``query_country``.
        """
        key = settings_key(policy)
        position, known = self._results.get(key, ({}, None))
        wanted = list(zip(names, countries if countries is not None else [None] * len(names)))
        new = [pair for pair in dict.fromkeys(wanted) if pair not in position]
        if new or known is None:
            new_countries = [c for _, c in new]
            found = screen.screen_policy([n for n, _ in new], policy, backend=backend,
                                         countries=new_countries if countries is not None else None)
            found.attrs.clear()  # per-name candidate lists stay with single-piece runs
            found["query_country"] = pd.Series(new_countries, dtype="str")
            start = 0 if known is None else len(known)
            position.update({pair: start + i for i, pair in enumerate(new)})
            known = found if known is None else pd.concat([known, found], ignore_index=True)
            self._results[key] = (position, known)
        return known.iloc[[position[pair] for pair in wanted]].reset_index(drop=True)


def _typed(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with the listing columns of pandas' ``str`` dtype (a frame built elsewhere may hold
    an all-missing column as ``object`` or ``float64``)."""
    retype = [column for column in _TEXT_COLUMNS if results[column].dtype != "str"]
    if not retype:
        return results
    return results.assign(**{column: results[column].astype("str") for column in retype})


def _pairs(results: pd.DataFrame) -> list[tuple]:
    names = results["name"].to_numpy(dtype=object, na_value=None).tolist()
    countries = (results["query_country"].to_numpy(dtype=object, na_value=None).tolist()
                 if "query_country" in results.columns else [None] * len(names))
    return list(zip(names, countries))
