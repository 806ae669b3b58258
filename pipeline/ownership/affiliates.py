"""The Affiliates (50 percent) rule over an ownership graph: who is an affiliate, when, and why.

Entities are the owners and owned parties of the holdings file (:mod:`pipeline.ownership.holdings`).
The listed ones are those whose name matches the screening list on the rule's lists (the same
matcher and block score as consignees). The holdings valid in each date window form one graph; the
fixpoint of :func:`kernels.ownership.resolve_affiliates` runs once per window on the run's backend.
Ledger consignees are joined to entities by ``consignee_id``, else by normalized name and
destination (or by name alone where the entity has no country).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kernels.backend import NUMPY, Backend

NONE, AFFILIATE, MINORITY = 0, 1, 2
"""Affiliate status of an entity in a window."""
OPEN_START, OPEN_END = -(2**31), 2**31 - 1


@dataclass
class AffiliateWindows:
    """Affiliate status of every entity in each date window of the holdings.

    Attributes
    ----------
    boundaries : ndarray of int64
        Days on which the holdings change; window ``k`` holds the days ``boundaries[k-1] <= day <
        boundaries[k]`` (open at both ends).
    entities : pandas.DataFrame
        One row per entity: ``key``, ``id``, ``name``, ``normalized``, ``country``, ``listed`` (list
        codes, ``+``-joined, or ``""``).
    status : ndarray of int8, shape (windows, entities)
        :data:`NONE`, :data:`AFFILIATE` or :data:`MINORITY`.
    lists : ndarray of int64, shape (windows, entities)
        Bitmask of the owners' lists (bit ``i`` is ``list_codes[i]``).
    held_bp : ndarray of int64, shape (windows, entities)
    level, parent : ndarray, shape (windows, entities)
        Chain length to a listed party and the owner on one shortest chain (see the kernel).
    list_codes : list of str
    holdings : pandas.DataFrame
        The accepted holdings (evidence).
    steps : list of int
        Fixpoint iterations per window.
    """

    boundaries: np.ndarray
    entities: pd.DataFrame
    status: np.ndarray
    lists: np.ndarray
    held_bp: np.ndarray
    level: np.ndarray
    parent: np.ndarray
    list_codes: list
    holdings: pd.DataFrame
    steps: list

    def window_of(self, days: np.ndarray) -> np.ndarray:
        """Window index of each day."""
        return np.searchsorted(self.boundaries, days, side="right")

    def label(self, mask: int) -> str:
        """``+``-joined list codes of a bitmask."""
        return "+".join(code for i, code in enumerate(self.list_codes) if mask >> i & 1)

    def evidence(self, window: int, entity: int) -> dict:
        """Why an entity is an affiliate (or a minority holding) in a window: the owners that hold
        in it with their percentages, and one shortest chain back to a listed party."""
        held = self.holdings
        active = self._active(window)
        qualifying = (self.entities["listed"].to_numpy() != "") | (self.status[window] == AFFILIATE)
        into = held[active & (held["owned"].to_numpy() == entity)]
        owners = into[qualifying[into["owner"].to_numpy()]].sort_values(["bp", "owner"], ascending=[False, True])
        names = self.entities["name"].to_numpy(dtype=object)
        chain, at, seen = [], entity, set()
        while at >= 0 and at not in seen:
            seen.add(at)
            chain.append(str(names[at]))
            at = int(self.parent[window, at])
        return {"owners": "; ".join(f"{names[o]} {bp / 100:g}%" for o, bp in zip(owners["owner"], owners["bp"])),
                "chain": " ← ".join(chain), "held_percent": int(self.held_bp[window, entity]) / 100,
                "level": int(self.level[window, entity])}

    def _active(self, window: int) -> np.ndarray:
        day = self.boundaries[window - 1] if window > 0 else OPEN_START
        return (self.holdings["valid_from"].to_numpy() <= day) & (day <= self.holdings["valid_until"].to_numpy())


def entity_keys(ids, normalized, countries) -> list:
    """Entity key of each party: ``id:<id>``, else ``name:<normalized>@<country or ''>``."""
    return [f"id:{i}" if isinstance(i, str) and i else f"name:{n}@{c if isinstance(c, str) else ''}"
            for i, n, c in zip(ids, normalized, countries)]


def resolve(holdings, screen, lists: list[str], block_score: float, *, threshold_bp: int = 5000,
            minority_bp: int = 2500, backend: Backend | None = None) -> AffiliateWindows:
    """Affiliates of every date window of a holdings file.

    Parameters
    ----------
    holdings : pipeline.ownership.Holdings
    screen : pipeline.parties.PartyScreen
        The run's screening list.
    lists : list of str
        The lists whose parties the rule names (EL, MEU, SDN).
    block_score : float
        Names matching at or above it are listed.
    threshold_bp, minority_bp : int
        The affiliate threshold and the red-flag-29 minority share, in basis points.
    backend : Backend, optional
        Where the fixpoint runs.

    Returns
    -------
    AffiliateWindows
    """
    from kernels.ownership import resolve_affiliates

    backend = backend or NUMPY
    table = holdings.table
    sides = []
    for side in ("owner", "owned"):
        sides.append(pd.DataFrame({"key": table[f"{side}_key"].to_numpy(dtype=object),
                                   "id": table[f"{side}_id"].to_numpy(dtype=object),
                                   "name": table[f"{side}_name"].to_numpy(dtype=object),
                                   "normalized": table[f"{side}_normalized"].to_numpy(dtype=object),
                                   "country": table[f"{side}_country"].to_numpy(dtype=object)}))
    entities = pd.concat(sides, ignore_index=True).drop_duplicates("key").reset_index(drop=True)
    index = pd.Index(entities["key"], dtype=object)
    owner = index.get_indexer(table["owner_key"]).astype(np.int64)
    owned = index.get_indexer(table["owned_key"]).astype(np.int64)
    names = entities["name"].where(entities["name"].notna(), None).tolist()
    named = [n for n in dict.fromkeys(names) if isinstance(n, str) and n]
    found = screen.screen(named, lists, [], block_score=block_score, review_score=block_score)
    hit = dict(zip(found["name"], np.where(found["outcome"] == "block", found["party_list"], None)))
    list_codes = list(lists)
    listed_code = np.array([hit.get(n) if isinstance(n, str) else None for n in names], dtype=object)
    listed = np.array([1 << list_codes.index(c) if c in list_codes else 0 for c in listed_code], dtype=np.int64)
    entities["listed"] = [c if isinstance(c, str) else "" for c in listed_code]

    valid_from, valid_until = table["valid_from"].to_numpy(np.int64), table["valid_until"].to_numpy(np.int64)
    edges = np.concatenate([valid_from[valid_from > OPEN_START], valid_until[valid_until < OPEN_END] + 1])
    boundaries = np.unique(edges).astype(np.int64)
    starts = np.concatenate([[OPEN_START], boundaries])
    bp = table["bp"].to_numpy(np.int64)
    out = {name: [] for name in ("status", "lists", "held_bp", "level", "parent")}
    steps = []
    xp = backend.xp
    for day in starts:
        active = (valid_from <= day) & (day <= valid_until)
        result = resolve_affiliates(*(backend.to_device(a) for a in (owner[active], owned[active], bp[active],
                                                                     listed)),
                                    threshold_bp=threshold_bp, xp=xp)
        affiliate = backend.to_host(result.affiliate)
        held = backend.to_host(result.held_bp)
        status = np.where(affiliate, AFFILIATE, np.where((held >= minority_bp) & (listed == 0), MINORITY, NONE))
        out["status"].append(status.astype(np.int8))
        out["lists"].append(np.where(status != NONE, backend.to_host(result.lists), 0).astype(np.int64))
        out["held_bp"].append(held.astype(np.int64))
        out["level"].append(backend.to_host(result.level))
        out["parent"].append(backend.to_host(result.parent))
        steps.append(int(result.steps))
    return AffiliateWindows(boundaries=boundaries, entities=entities,
                            **{k: np.stack(v) for k, v in out.items()}, list_codes=list_codes,
                            holdings=table.assign(owner=owner, owned=owned), steps=steps)


_RESOLVED: dict = {}
"""Affiliate windows by (file, its hash, screening list, parameters, backend): one resolution per process."""


def affiliates_for(policy, screen, backend: Backend | None = None) -> AffiliateWindows | None:
    """The affiliate windows of a rule set's ownership file (``affiliates.ownership``), computed
    once per process for the same file, screening list and parameters; ``None`` without one."""
    table = policy.params.get("affiliates")
    if not table or not table.get("ownership"):
        return None
    from pipeline.policy import load_holdings

    backend = backend or NUMPY
    path = table["ownership"]
    holdings = load_holdings(path)
    key = (path, holdings.sha256, id(screen), tuple(table["lists"]), float(policy.get("parties.block_score")),
           int(table["threshold_percent"]), int(table["minority_percent"]), backend.name)
    if key not in _RESOLVED:
        _RESOLVED.clear()
        _RESOLVED[key] = resolve(holdings, screen, list(table["lists"]), key[4],
                                 threshold_bp=key[5] * 100, minority_bp=key[6] * 100, backend=backend)
    return _RESOLVED[key]


def evidence_table(affiliates: AffiliateWindows | None, features) -> pd.DataFrame:
    """One row per (consignee entity, date window) of the screened rows that is an affiliate or a
    minority holding: status, owners' lists, percent held, the owners with their stakes, one
    shortest chain back to a listed party, and the rows concerned (``affiliates.parquet``)."""
    columns = ["entity", "name", "country", "window_from", "window_until", "status", "lists", "held_percent",
               "owners", "chain", "chain_length", "rows"]
    if affiliates is None or not len(affiliates.entities):
        return pd.DataFrame(columns=columns)
    entity, window = features.affiliate_entity, features.affiliate_window
    found = entity >= 0
    status = np.where(found, affiliates.status[window, np.where(found, entity, 0)], NONE)
    hit = np.flatnonzero(status != NONE)
    pairs, counts = np.unique(np.stack([entity[hit], window[hit]]), axis=1, return_counts=True) if len(hit) else \
        (np.zeros((2, 0), np.int64), np.zeros(0, np.int64))
    bounds = affiliates.boundaries
    epoch = np.datetime64("1970-01-01", "D")
    rows = []
    for (e, w), count in zip(pairs.T.tolist(), counts.tolist()):
        proof = affiliates.evidence(w, e)
        rows.append({
            "entity": affiliates.entities.at[e, "key"], "name": affiliates.entities.at[e, "name"],
            "country": affiliates.entities.at[e, "country"],
            "window_from": str(epoch + np.timedelta64(int(bounds[w - 1]), "D")) if w > 0 else None,
            "window_until": str(epoch + np.timedelta64(int(bounds[w]) - 1, "D")) if w < len(bounds) else None,
            "status": "affiliate" if affiliates.status[w, e] == AFFILIATE else "minority",
            "lists": affiliates.label(int(affiliates.lists[w, e])), "held_percent": proof["held_percent"],
            "owners": proof["owners"], "chain": proof["chain"], "chain_length": proof["level"], "rows": count})
    return pd.DataFrame(rows, columns=columns)


def ownership_summary(affiliates: AffiliateWindows | None, holdings_counts: dict | None,
                      evidence: pd.DataFrame) -> dict | None:
    """``summary.json``'s ``ownership`` section: the file's rows (read = accepted + quarantined),
    entities, listed owners, affiliates per window, and the consignees found among them."""
    if affiliates is None:
        return None
    per_window = [{"affiliates": int((affiliates.status[w] == AFFILIATE).sum()),
                   "minority": int((affiliates.status[w] == MINORITY).sum()), "steps": affiliates.steps[w]}
                  for w in range(len(affiliates.steps))]
    return {"holdings": holdings_counts, "entities": len(affiliates.entities),
            "listed_owners": int((affiliates.entities["listed"] != "").sum()), "windows": per_window,
            "consignee_affiliates": int((evidence["status"] == "affiliate").sum()),
            "consignee_minority": int((evidence["status"] == "minority").sum()),
            "rows_of_affiliates": int(evidence.loc[evidence["status"] == "affiliate", "rows"].sum())}
