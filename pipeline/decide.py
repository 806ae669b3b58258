"""Decisions, authorizations and reason codes per row, for both rule-set frameworks (DESIGN §4).

Everything is vectorised over rows. The running totals come from :mod:`kernels.running_totals`;
this module decides which rows are candidates for each accumulator and what crossing a limit means.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kernels.running_totals import NOT_CANDIDATE, over_limit, running_totals
from pipeline.enrich import PARTY_BLOCK, PARTY_REVIEW, Features, day_number, membership
from pipeline.policy import Policy

DECISIONS = ("NLR", "AUTHORIZED", "LICENSE_REQUIRED", "CAP_EXCEEDED", "REVIEW", "DENIED")
"""Decision names; the index is the precedence (higher wins)."""
NLR, AUTHORIZED, LICENSE_REQUIRED, CAP_EXCEEDED, REVIEW, DENIED = range(len(DECISIONS))

AUTHORIZATIONS = (None, "NLR", "AIA", "LPP", "VEU", "LICENSE")
NO_AUTH, AUTH_NLR, AUTH_AIA, AUTH_LPP, AUTH_VEU, AUTH_LICENSE = range(len(AUTHORIZATIONS))

REASON_CODES = (
    "PARTY", "GP10", "TIER3", "TIER3_HQ", "D5", "D5_HQ", "PARTY_REVIEW", "ALLOCATION_EXCEEDED",
    "LPP_EXCEEDED", "LICENSE_REQUIRED", "TIER2", "D1_D4", "TIER1", "VEU", "LPP", "LICENSE",
    "NOT_CONTROLLED", "NO_LICENSE_REQUIREMENT",
)
"""Reason codes, most severe first; ``PARTY`` and ``PARTY_REVIEW`` are written ``PARTY:<list>``."""
BIT = {code: np.int32(1 << i) for i, code in enumerate(REASON_CODES)}


@dataclass
class Allocation:
    """One allocation accumulator key: a destination's cap over a window."""

    destination: str
    window_start: str
    window_end: str
    cap_tpp: int
    label: str


@dataclass
class Decisions:
    """Per-row outcome of screening, aligned with the ledger rows.

    Attributes
    ----------
    decision : ndarray of int8
        Index into :data:`DECISIONS`.
    authorization : ndarray of int8
        Index into :data:`AUTHORIZATIONS` (0: none).
    reasons : ndarray of int32
        Bit set over :data:`REASON_CODES`.
    tier : ndarray of int8 or None
        1, 2 or 3 under tiered rule sets; ``None`` otherwise.
    lpp_cum_tpp, country_cum_tpp : ndarray of int64
        Running totals of candidate rows; ``-1`` where the row is not a candidate.
    lpp_keys, allocation_keys : ndarray of int64
        Accumulator key per row (``-1``: not a candidate).
    lpp_totals, allocation_totals : ndarray of int64
        Per-key totals after the last row (the carry-out).
    allocation_over : ndarray of bool
        Allocation candidates whose running total is over their cap.
    allocations : list of Allocation
        Description of each allocation key.
    lpp_limit : int or None
    """

    decision: np.ndarray
    authorization: np.ndarray
    reasons: np.ndarray
    tier: np.ndarray | None
    lpp_cum_tpp: np.ndarray
    country_cum_tpp: np.ndarray
    lpp_keys: np.ndarray
    allocation_keys: np.ndarray
    lpp_totals: np.ndarray
    allocation_totals: np.ndarray
    allocation_over: np.ndarray
    allocations: list[Allocation] = field(default_factory=list)
    lpp_limit: int | None = None


class _Outcome:
    """Accumulates decision, authorization and reason bits row-set by row-set."""

    def __init__(self, n: int):
        self.decision = np.zeros(n, dtype=np.int8)
        self.authorization = np.zeros(n, dtype=np.int8)
        self.reasons = np.zeros(n, dtype=np.int32)

    def flag(self, rows: np.ndarray, code: str) -> None:
        """Add a reason code to ``rows`` (a boolean mask)."""
        np.bitwise_or(self.reasons, BIT[code], out=self.reasons, where=rows)

    def decide(self, rows: np.ndarray, decision: int, authorization: int = NO_AUTH) -> None:
        """Raise ``rows`` to ``decision`` (precedence: the higher code wins); set the authorization."""
        np.maximum(self.decision, np.int8(decision), out=self.decision, where=rows)
        if authorization != NO_AUTH:
            np.copyto(self.authorization, np.int8(authorization), where=rows)


def _party_and_gp10(features: Features, policy: Policy, out: _Outcome) -> tuple[np.ndarray, np.ndarray]:
    block = features.party_outcome == PARTY_BLOCK
    review = features.party_outcome == PARTY_REVIEW
    gp10 = features.gp10 & bool(policy.get("controls.gp10_denied"))
    out.flag(block, "PARTY")
    out.flag(review, "PARTY_REVIEW")
    out.flag(gp10, "GP10")
    return block | gp10, review


def _finish(out: _Outcome, denied: np.ndarray, review: np.ndarray) -> None:
    out.decide(review & ~denied, REVIEW)
    out.decide(denied, DENIED)
    out.authorization[out.decision >= LICENSE_REQUIRED] = NO_AUTH


def _allocation_totals(candidates: np.ndarray, keys: np.ndarray, allocations: list[Allocation], features: Features):
    """Running totals of allocation candidates and which rows cross their cap."""
    keys = np.where(candidates, keys, NOT_CANDIDATE)
    cum, totals = running_totals(keys, features.tpp, len(allocations))
    caps = np.array([a.cap_tpp for a in allocations], dtype=np.int64)
    return keys, cum, totals, over_limit(cum, keys, caps)


def decide_tiered(features: Features, policy: Policy) -> Decisions:
    """Decisions under the AI Diffusion framework (Tier 1 / 2 / 3, LPP, country allocation)."""
    n = len(features.tpp)
    out = _Outcome(n)
    denied, review = _party_and_gp10(features, policy, out)
    controlled = features.controlled
    tier3_groups = policy.get("tiers.tier3_groups")
    tier1 = policy.get("tiers.tier1")
    tier3_dest = membership(features, policy, tier3_groups)
    tier3_hq = membership(features, policy, tier3_groups, "headquarters")
    tier1_dest = membership(features, policy, tier1)
    tier1_hq = membership(features, policy, tier1, "headquarters") | (features.headquarters < 0)
    tier = np.where(tier3_dest, 3, np.where(tier1_dest, 1, 2)).astype(np.int8)

    out.flag(controlled & tier3_dest, "TIER3")
    out.flag(controlled & tier3_hq, "TIER3_HQ")
    denied = denied | (controlled & (tier3_dest | tier3_hq))
    live = ~denied

    not_controlled = live & ~controlled
    out.flag(not_controlled, "NOT_CONTROLLED")
    out.decide(not_controlled, NLR, AUTH_NLR)

    aia = live & controlled & tier1_dest & tier1_hq
    out.flag(aia, "TIER1")
    out.decide(aia, AUTHORIZED, AUTH_AIA)

    rest = live & controlled & ~(tier1_dest & tier1_hq)
    out.flag(rest & (tier == 2), "TIER2")
    veu = rest & features.has_veu
    out.flag(veu, "VEU")
    out.decide(veu, AUTHORIZED, AUTH_VEU)
    licensed = rest & ~features.has_veu & features.has_license
    out.flag(licensed, "LICENSE")

    # Stage 1: LPP per (consignee, calendar year).
    lpp_candidates = rest & ~features.has_veu & ~features.has_license
    first_year = int(features.year.min()) if n else 0
    n_years = int(features.year.max()) - first_year + 1 if n else 0
    lpp_keys = np.where(lpp_candidates, features.party_key * n_years + (features.year - first_year), NOT_CANDIDATE)
    lpp_limit = int(policy.get("lpp.limit_tpp"))
    lpp_cum, lpp_totals = running_totals(lpp_keys, features.tpp, features.n_party_keys * n_years)
    lpp_over = lpp_cum > lpp_limit
    within_lpp = lpp_candidates & ~lpp_over
    out.flag(within_lpp, "LPP")
    out.decide(within_lpp, AUTHORIZED, AUTH_LPP)
    over_lpp = lpp_candidates & lpp_over
    out.flag(over_lpp, "LPP_EXCEEDED")

    # Stage 2: country allocation per (destination, window) over licensed and LPP-exceeded rows.
    start, end = policy.get("allocation.window_start"), policy.get("allocation.window_end")
    in_window = (features.day >= day_number(start)) & (features.day <= day_number(end))
    caps = policy.get("allocation.caps")
    default_cap = int(policy.get("allocation.default_cap_tpp"))
    codes = features.countries.codes
    allocations = [Allocation(code, str(start), str(end), int(caps.get(code, default_cap)), f"{code} {start}..{end}")
                   for code in codes]
    keys, alloc_cum, alloc_totals, cap_over = _allocation_totals(
        (licensed | over_lpp) & in_window, features.destination.astype(np.int64), allocations, features)
    out.flag(cap_over, "ALLOCATION_EXCEEDED")
    out.decide(cap_over, CAP_EXCEEDED)
    granted = licensed & ~cap_over
    out.decide(granted, AUTHORIZED, AUTH_LICENSE)
    needs_license = over_lpp & ~cap_over
    out.flag(needs_license, "LICENSE_REQUIRED")
    out.decide(needs_license, LICENSE_REQUIRED)

    _finish(out, denied, review)
    return Decisions(out.decision, out.authorization, out.reasons, tier, lpp_cum, alloc_cum,
                     lpp_keys, keys, lpp_totals, alloc_totals, cap_over, allocations, lpp_limit)


def decide_country_groups(features: Features, policy: Policy) -> Decisions:
    """Decisions under the post-rescission controls (country groups, HQ test, bilateral agreements)."""
    n = len(features.tpp)
    out = _Outcome(n)
    denied, review = _party_and_gp10(features, policy, out)
    controlled = features.controlled
    denied_groups = policy.get("controls.denied_groups")
    d5_dest = controlled & membership(features, policy, denied_groups)
    d5_hq = controlled & membership(features, policy, denied_groups, "headquarters")
    out.flag(d5_dest, "D5")
    out.flag(d5_hq, "D5_HQ")
    denied = denied | d5_dest | d5_hq
    live = ~denied

    not_controlled = live & ~controlled
    out.flag(not_controlled, "NOT_CONTROLLED")
    out.decide(not_controlled, NLR, AUTH_NLR)
    needs = (membership(features, policy, policy.get("controls.license_groups"))
             & ~membership(features, policy, policy.get("controls.exempt_groups")))
    free = live & controlled & ~needs
    out.flag(free, "NO_LICENSE_REQUIREMENT")
    out.decide(free, NLR, AUTH_NLR)

    scoped = live & controlled & needs
    out.flag(scoped, "D1_D4")
    veu = scoped & features.has_veu
    out.flag(veu, "VEU")
    out.decide(veu, AUTHORIZED, AUTH_VEU)
    licensed = scoped & ~features.has_veu & features.has_license
    out.flag(licensed, "LICENSE")
    unlicensed = scoped & ~features.has_veu & ~features.has_license
    out.flag(unlicensed, "LICENSE_REQUIRED")
    out.decide(unlicensed, LICENSE_REQUIRED)

    # Bilateral agreements: the first agreement whose destination and window cover the row.
    allocations, keys = [], np.full(n, NOT_CANDIDATE, dtype=np.int64)
    position = {code: i for i, code in enumerate(features.countries.codes)}
    aliases = policy.get("destinations.aliases")
    for entry in policy.params.get("agreements", []):
        destination = aliases.get(entry["destination"], entry["destination"])
        start, end = entry["window_start"], entry["window_end"]
        covered = ((keys == NOT_CANDIDATE) & (features.destination == position[destination])
                   & (features.day >= day_number(start)) & (features.day <= day_number(end)))
        keys[covered] = len(allocations)
        allocations.append(Allocation(destination, str(start), str(end), int(entry["cap_tpp"]),
                                      f"{destination} agreement {start}..{end}"))
    keys, alloc_cum, alloc_totals, cap_over = _allocation_totals(licensed & (keys >= 0), keys, allocations, features)
    out.flag(cap_over, "ALLOCATION_EXCEEDED")
    out.decide(cap_over, CAP_EXCEEDED)
    out.decide(licensed & ~cap_over, AUTHORIZED, AUTH_LICENSE)

    _finish(out, denied, review)
    empty = np.zeros(0, dtype=np.int64)
    return Decisions(out.decision, out.authorization, out.reasons, None,
                     np.full(n, NOT_CANDIDATE, dtype=np.int64), alloc_cum,
                     np.full(n, NOT_CANDIDATE, dtype=np.int64), keys, empty, alloc_totals, cap_over, allocations,
                     None)


def decide(features: Features, policy: Policy) -> Decisions:
    """Screen every row under ``policy`` (dispatches on its framework)."""
    if policy.framework == "tiered":
        return decide_tiered(features, policy)
    return decide_country_groups(features, policy)
