"""Decisions, authorizations and reason codes per row, for every rule-set framework (DESIGN §4).

Rows are grouped into **profiles**: the distinct combinations of everything the rules look at
except the running totals (destination, HQ, ultimate parent, SKU, party result, license, VEU,
export origin, and a date class that keeps dated group memberships, components and windows
constant). The rules are evaluated once per *situation* = (profile, each accumulator over its
limit or not), a small table. Per row there remain array steps, run on the backend (NumPy or
CuPy) by :mod:`kernels.situations` in time-ordered chunks with carry:

1. the profile key of each row and its code (the host builds the situation table from the few
   distinct keys);
2. the accumulators the rule set declares (:class:`AccumulatorRule`), stage after stage: LPP per
   (consignee, calendar year), allocation per destination window, the China volume share per
   (SKU, exporter); each a per-key running total with its limit;
3. the row's situation picks its decision, authorization and reasons.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from kernels import TotalsOverflowError
from kernels.backend import NUMPY, Backend
from kernels.running_totals import NOT_CANDIDATE
from kernels.situations import (AccumulatorOutcome, AccumulatorTable, SituationTable, evaluate, profile_codes,
                                profile_key, split_key)
from pipeline.carry import Carry
from pipeline.enrich import (LICENSE_COVERED, LICENSE_STATUSES, PARTY_BLOCK, PARTY_CLEARED, PARTY_REVIEW, CountryTable,
                             Features, day_number, membership)
from pipeline.ownership.affiliates import AFFILIATE, MINORITY
from pipeline.policy import ADVANCED_COMPUTING, Policy

DECISIONS = ("NLR", "AUTHORIZED", "LICENSE_REQUIRED", "CAP_EXCEEDED", "REVIEW", "DENIED")
"""Decision names; the index is the precedence (higher wins)."""
NLR, AUTHORIZED, LICENSE_REQUIRED, CAP_EXCEEDED, REVIEW, DENIED = range(len(DECISIONS))

AUTHORIZATIONS = (None, "NLR", "AIA", "LPP", "VEU", "LICENSE")
NO_AUTH, AUTH_NLR, AUTH_AIA, AUTH_LPP, AUTH_VEU, AUTH_LICENSE = range(len(AUTHORIZATIONS))

REASON_CODES = (
    "PARTY", "AFFILIATE", "GP10", "TIER3", "TIER3_HQ", "CN_ABOVE_THRESHOLD", "REEXPORT", "D5", "D5_HQ", "PARTY_REVIEW",
    "AFFILIATE_MINORITY", "CN_US_RATIO", "LICENSE_EXHAUSTED", "ALLOCATION_EXCEEDED", "LPP_EXCEEDED", "LICENSE_REQUIRED",
    "LICENSE_UNKNOWN", "LICENSE_NOT_YET_VALID", "LICENSE_EXPIRED", "LICENSE_OUT_OF_SCOPE", "TIER2", "CN_CASE_BY_CASE",
    "IS_INFORMED", "D1_D4", "TIER1", "VEU", "LPP", "LICENSE", "NOT_CONTROLLED", "NO_LICENSE_REQUIREMENT",
    "PARTY_CLEARED", "PARTY_BEFORE_LISTING", "AFFILIATE_TGL", "BEFORE_TIMELINE",
)
"""Reason codes, most severe first; the party codes (:data:`LISTED_CODES`) are written ``<code>:<list>``."""
LISTED_CODES = ("PARTY", "PARTY_REVIEW", "PARTY_CLEARED", "PARTY_BEFORE_LISTING")
"""Reason codes that name the screening list of the match."""
AFFILIATE_CODES = ("AFFILIATE", "AFFILIATE_MINORITY", "AFFILIATE_TGL")
"""Reason codes that name the lists of an affiliate's owners."""
BIT = {code: np.int64(1 << i) for i, code in enumerate(REASON_CODES)}

ACCUMULATORS = {"tiered": ("lpp", "allocation"), "country-groups": ("allocation",),
                "in-force": ("allocation", "china_volume")}
"""The accumulators each framework declares, in the order of their over flags (the first is the
highest bit of the situation offset); a license register adds :data:`LICENSE_ACCUMULATORS`."""
LICENSE_ACCUMULATORS = ("license_units", "license_tpp")
STAGES = {"tiered": (("lpp",), ("allocation",)), "country-groups": (("allocation",),),
          "in-force": (("allocation", "china_volume", "china_volume.base"),)}
"""Carry names of each framework by stage: candidacy in a stage depends only on the totals of
earlier stages, so a distributed scan needs one pass per stage (:func:`pipeline.run.scan.scan_dask`)."""


def accumulator_names(policy: Policy) -> tuple[str, ...]:
    """The accumulators a rule set declares (:data:`ACCUMULATORS`, plus the license totals with a register)."""
    names = ACCUMULATORS[policy.framework]
    return names + LICENSE_ACCUMULATORS if policy.license_register() is not None else names


def stages(policy: Policy) -> tuple[tuple[str, ...], ...]:
    """The carry names of a rule set by stage (:data:`STAGES`; license totals in the first)."""
    found = STAGES[policy.framework]
    if policy.license_register() is None:
        return found
    return (found[0] + LICENSE_ACCUMULATORS,) + found[1:]


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
        Index into ``reason_labels``.
    reason_labels : list of str
        Distinct ``;``-joined reason strings, e.g. ``"PARTY:EL;TIER3"``.
    tier : ndarray of int8 or None
        1, 2 or 3 under tiered rule sets; ``None`` otherwise.
    accumulators : dict of str to kernels.situations.AccumulatorOutcome
        Per accumulator the rule set declares (:data:`ACCUMULATORS`): keys, running totals, over
        flags and per-key totals after the last row, as host arrays. The properties
        ``lpp_cum_tpp``, ``country_cum_tpp``, ``lpp_keys``, ``allocation_keys``,
        ``allocation_over``, ``lpp_totals``, ``allocation_totals``, ``cn_volume_cum`` and
        ``us_volume_cum`` read them (``-1`` rows where the rule set has no such accumulator).
    allocations : list of Allocation
        Description of each allocation key.
    lpp_limit : int or None
    volume_keys : ndarray of object
        Text of each China volume key (``<sku>|<exporter>``).
    volume_share, volume_unit : int or None, str or None
        The China volume condition's ``max_share_percent`` and unit (None: no such condition).
    license_ids : ndarray of object
        ``license_id`` of each register row (the license accumulators' keys; empty without a register).
    carry : Carry
        Per-key totals after the last row, carry-in included: the carry-in of the next piece.
    """

    decision: np.ndarray
    authorization: np.ndarray
    reasons: np.ndarray
    reason_labels: list[str]
    tier: np.ndarray | None
    accumulators: dict = field(default_factory=dict)
    allocations: list[Allocation] = field(default_factory=list)
    lpp_limit: int | None = None
    volume_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    volume_share: int | None = None
    volume_unit: str | None = None
    license_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    carry: Carry = field(default_factory=Carry.empty)

    def with_reason(self, code: str) -> np.ndarray:
        """Rows whose reasons carry ``code`` (``PARTY`` matches ``PARTY:EL``), as bool per row."""
        has = np.array([code in (part.split(":")[0] for part in label.split(";")) for label in self.reason_labels]
                       + [False])
        return has[self.reasons]

    def _rows(self, name: str, attribute: str) -> np.ndarray:
        found = self.accumulators.get(name)
        value = getattr(found, attribute) if found is not None else None
        return value if value is not None else np.full(len(self.decision), -1, dtype=np.int64)

    def _totals(self, name: str) -> np.ndarray:
        found = self.accumulators.get(name)
        return found.totals if found is not None else np.zeros(0, dtype=np.int64)

    lpp_cum_tpp = property(lambda self: self._rows("lpp", "cumulative"))
    lpp_keys = property(lambda self: self._rows("lpp", "keys"))
    lpp_totals = property(lambda self: self._totals("lpp"))
    country_cum_tpp = property(lambda self: self._rows("allocation", "cumulative"))
    allocation_keys = property(lambda self: self._rows("allocation", "keys"))
    allocation_totals = property(lambda self: self._totals("allocation"))
    allocation_over = property(lambda self: self._rows("allocation", "over").astype(bool) & (self.allocation_keys >= 0))
    cn_volume_cum = property(lambda self: self._rows("china_volume", "cumulative"))
    us_volume_cum = property(lambda self: self._rows("china_volume", "base_cumulative"))
    volume_over = property(lambda self: self._rows("china_volume", "over").astype(bool) & (self.cn_volume_cum >= 0))
    license_cum_units = property(lambda self: self._rows("license_units", "cumulative"))
    license_cum_tpp = property(lambda self: self._rows("license_tpp", "cumulative"))
    license_keys = property(lambda self: self._rows("license_units", "keys"))
    license_over = property(lambda self: (self._rows("license_units", "over").astype(bool)
                                          | self._rows("license_tpp", "over").astype(bool)) & (self.license_keys >= 0))


# ------------------------------------------------------------------------------------ profiles
@dataclass
class Situations:
    """The rule inputs of each situation (profile x over flags), as equal-length arrays.

    Attribute names match :class:`pipeline.enrich.Features` where they mean the same, so
    :func:`pipeline.enrich.membership` works on both. ``over[name]``: the situation has
    accumulator ``name`` over its limit.
    """

    destination: np.ndarray
    headquarters: np.ndarray
    parent: np.ndarray
    day: np.ndarray
    sku: np.ndarray
    controlled: np.ndarray
    gp10: np.ndarray
    party_outcome: np.ndarray
    party_list: list
    before_listing: np.ndarray
    has_license: np.ndarray
    license_status: np.ndarray
    has_veu: np.ndarray
    export: np.ndarray
    over: dict
    affiliate_status: np.ndarray
    affiliate_list: list
    countries: CountryTable
    features: Features

    @property
    def lpp_over(self) -> np.ndarray:
        return self.over.get("lpp", np.zeros(len(self.day), bool))

    @property
    def cap_over(self) -> np.ndarray:
        return self.over.get("allocation", np.zeros(len(self.day), bool))


def _next_day(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=1)


def date_boundaries(policy: Policy) -> np.ndarray:
    """Days on which some rule input changes: dated memberships begin or end, windows and
    components open or close, the timeline starts."""
    days: list[dt.date] = []
    for entry in policy.params["country_groups"].get("dated", []):
        days += [entry[key] if key == "from" else _next_day(entry[key]) for key in ("from", "until") if key in entry]
    if policy.framework == "tiered":
        days += [policy.get("allocation.window_start"), _next_day(policy.get("allocation.window_end"))]
    for entry in policy.params.get("agreements", []):
        days += [entry["window_start"], _next_day(entry["window_end"])]
    if policy.framework == "in-force":
        days.append(policy.get("timeline_start"))
        for component in policy.params["components"].values():
            if component.get("in_force", True):
                days.append(component["effective_from"])
                if "effective_until" in component:
                    days.append(_next_day(component["effective_until"]))
    return np.unique(np.array([day_number(d) for d in days], dtype=np.int64))


def profile_sizes(features: Features, boundaries: np.ndarray) -> list[int]:
    """Number of values of each profile part, in :func:`profile_parts` order."""
    n_countries = len(features.countries.codes)
    return [n_countries, n_countries + 1, n_countries + 1, max(len(features.sku_controlled), 1),
            2 * max(len(features.party_outcome), 1), len(LICENSE_STATUSES), 2, n_countries + 1,
            max(len(features.affiliate_status), 1), len(boundaries) + 1]


def profile_parts(features: Features, rows: slice, boundaries: np.ndarray, backend: Backend) -> list:
    """The profile parts of ``rows``, in the backend's memory: destination, HQ (+1), ultimate
    parent (+1), SKU, party class and listing flag, license status, VEU, export country (+1), date class."""
    to = backend.to_device
    xp = backend.xp
    day_class = xp.searchsorted(to(boundaries), to(features.day[rows]), side="right")
    party = to(features.party[rows]) * 2 + to(features.before_listing[rows])
    return [to(features.destination[rows]), to(features.headquarters[rows]) + 1, to(features.parent[rows]) + 1,
            to(features.sku[rows]), party, to(features.license_status[rows]), to(features.has_veu[rows]),
            to(features.export[rows]) + 1, to(features.affiliate[rows]), day_class]


def situations_of(keys: np.ndarray, features: Features, boundaries: np.ndarray, names: tuple[str, ...]) -> Situations:
    """The ``2 ** len(names)`` situations of each distinct profile key (see
    :func:`kernels.situations.profile_key`); ``names`` are the accumulators with a limit, the first
    the highest bit of the situation offset."""
    dest, hq, parent, sku, party, lic, veu, export, affiliate, cls = split_key(keys, profile_sizes(features, boundaries))
    party, before = np.divmod(party, 2)
    # A representative day per date class: classes are the intervals between boundaries.
    starts = np.concatenate([[boundaries[0] - 1 if len(boundaries) else 0], boundaries])
    per = 2 ** len(names)

    def each(values):  # every situation of a profile
        return np.repeat(values, per)

    n = len(dest)
    offset = np.tile(np.arange(per), n)
    over = {name: (offset >> (len(names) - 1 - i) & 1).astype(bool) for i, name in enumerate(names)}
    return Situations(
        destination=each(dest.astype(np.int32)), headquarters=each(hq.astype(np.int32) - 1),
        parent=each(parent.astype(np.int32) - 1), day=each(starts[cls]), sku=each(sku),
        controlled=each(features.sku_controlled[sku]) if n else np.zeros(0, bool),
        gp10=each(features.sku_gp10[sku]) if n else np.zeros(0, bool),
        party_outcome=each(features.party_outcome[party]) if n else np.zeros(0, np.int8),
        party_list=[features.party_list[p] for p in party.tolist() for _ in range(per)],
        before_listing=each(before.astype(bool)), has_license=each(lic == LICENSE_COVERED),
        license_status=each(lic.astype(np.int8)), has_veu=each(veu.astype(bool)),
        export=each(export.astype(np.int32) - 1), over=over,
        affiliate_status=each(features.affiliate_status[affiliate]) if n else np.zeros(0, np.int8),
        affiliate_list=[features.affiliate_list[a] for a in affiliate.tolist() for _ in range(per)], countries=features.countries, features=features,
    )


# ------------------------------------------------------------------------------------- rules
class _Outcome:
    """Decision, authorization and reason bits, filled in rule by rule over the situations."""

    def __init__(self, n: int):
        self.decision = np.zeros(n, dtype=np.int8)
        self.authorization = np.zeros(n, dtype=np.int8)
        self.reasons = np.zeros(n, dtype=np.int64)
        self.licensed = np.zeros(n, dtype=bool)  # lines authorized by a covering license (they draw on it)

    def flag(self, rows: np.ndarray, code: str) -> None:
        """Add a reason code where ``rows`` is true."""
        self.reasons[rows] |= BIT[code]

    def decide(self, rows: np.ndarray, decision: int, authorization: int = NO_AUTH) -> None:
        """Raise ``rows`` to ``decision`` (the higher code wins) and set their authorization."""
        self.decision[rows] = np.maximum(self.decision[rows], decision)
        if authorization != NO_AUTH:
            self.authorization[rows] = authorization


@dataclass
class AccumulatorRule:
    """One accumulator as the rules declare it, per situation (see
    :class:`kernels.situations.AccumulatorTable`).

    Attributes
    ----------
    name : str
        One of the framework's :data:`ACCUMULATORS`.
    stage : int
        Candidacy depends on the over flags of the accumulators of earlier stages only.
    candidate : ndarray of bool
    amount : str
        ``"tpp"`` or ``"units"``.
    key : ndarray of int64 or None
        Key per situation (an index into ``allocations``); ``None``: the key is per row.
    limit : int or None
        One limit for every key.
    limits : ndarray of int64 or None
        A limit per key.
    base_candidate : ndarray of bool or None
        A share condition: the base rows (see :func:`kernels.situations.share_over`).
    max_share_percent : int
    """

    name: str
    stage: int
    candidate: np.ndarray
    amount: str = "tpp"
    key: np.ndarray | None = None
    limit: int | None = None
    limits: np.ndarray | None = None
    base_candidate: np.ndarray | None = None
    max_share_percent: int = 0


@dataclass
class RuleTable:
    """What the rules say about each situation: the outcome (final for the situation's over
    flags), the tier, and the accumulators with their candidates."""

    outcome: _Outcome
    tier: np.ndarray | None
    accumulators: list[AccumulatorRule]
    allocations: list[Allocation]
    lpp_limit: int | None = None


def _party(s: Situations, out: _Outcome) -> tuple[np.ndarray, np.ndarray]:
    """Restricted-party hits: blocked and held rows. A hit on an entry listed after the row's
    ship date does not count (``PARTY_BEFORE_LISTING``)."""
    listed = ~s.before_listing
    block = (s.party_outcome == PARTY_BLOCK) & listed
    review = (s.party_outcome == PARTY_REVIEW) & listed
    out.flag(block, "PARTY")
    out.flag(review, "PARTY_REVIEW")
    out.flag(s.party_outcome == PARTY_CLEARED, "PARTY_CLEARED")
    out.flag(s.before_listing, "PARTY_BEFORE_LISTING")
    return block, review


def _party_and_gp10(s: Situations, policy: Policy, out: _Outcome) -> tuple[np.ndarray, np.ndarray]:
    block, review = _party(s, out)
    gp10 = s.gp10 & bool(policy.get("controls.gp10_denied"))
    out.flag(gp10, "GP10")
    return block | gp10, review


def _veu_then_license(out: _Outcome, s: Situations, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Controlled lines that need an authorization: a VEU covers them first, then a license.

    Returns the licensed lines and those with neither.
    """
    veu = rows & s.has_veu
    out.flag(veu, "VEU")
    out.decide(veu, AUTHORIZED, AUTH_VEU)
    licensed = rows & ~s.has_veu & s.has_license
    out.flag(licensed, "LICENSE")
    out.licensed |= licensed
    for code in LICENSE_STATUSES[2:]:  # a license_id the register does not let cover the line
        out.flag(rows & ~s.has_veu & (s.license_status == LICENSE_STATUSES.index(code)), code)
    return licensed, rows & ~s.has_veu & ~s.has_license


def _cap_check(out: _Outcome, s: Situations, candidate: np.ndarray, licensed: np.ndarray) -> np.ndarray:
    """Allocation candidates over their cap are ``CAP_EXCEEDED``; licensed lines within it may ship."""
    cap_over = candidate & s.cap_over
    out.flag(cap_over, "ALLOCATION_EXCEEDED")
    out.decide(cap_over, CAP_EXCEEDED)
    out.decide(licensed & ~cap_over, AUTHORIZED, AUTH_LICENSE)
    return cap_over


def _agreements(s: Situations, policy: Policy, out: _Outcome,
                licensed: np.ndarray) -> tuple[AccumulatorRule, list[Allocation]]:
    """Bilateral agreements: licensed lines to an agreement's destination within its window
    draw on the first such agreement (file order); over its cap, ``CAP_EXCEEDED``."""
    allocations, keys = [], np.full(len(s.day), NOT_CANDIDATE, dtype=np.int64)
    position = {code: i for i, code in enumerate(s.countries.codes)}
    aliases = policy.get("destinations.aliases")
    for entry in policy.params.get("agreements", []):
        destination = aliases.get(entry["destination"], entry["destination"])
        start, end = entry["window_start"], entry["window_end"]
        covered = ((keys == NOT_CANDIDATE) & (s.destination == position[destination])
                   & (s.day >= day_number(start)) & (s.day <= day_number(end)))
        keys[covered] = len(allocations)
        allocations.append(Allocation(destination, str(start), str(end), int(entry["cap_tpp"]),
                                      f"{destination} agreement {start}..{end}"))
    candidate = licensed & (keys >= 0)
    _cap_check(out, s, candidate, licensed)
    return AccumulatorRule("allocation", 0, candidate, key=keys,
                           limits=np.array([a.cap_tpp for a in allocations], dtype=np.int64)), allocations


def _license_depletion(s: Situations, policy: Policy, out: _Outcome, denied: np.ndarray) -> list[AccumulatorRule]:
    """With a register: covered licensed lines (not denied) draw on their license, units and TPP;
    over either maximum, ``CAP_EXCEEDED`` (``LICENSE_EXHAUSTED``)."""
    if "license_units" not in s.over:
        return []
    register = policy.license_register()
    candidate = out.licensed & ~denied
    over = candidate & (s.over["license_units"] | s.over["license_tpp"])
    out.flag(over, "LICENSE_EXHAUSTED")
    out.decide(over, CAP_EXCEEDED)
    unlimited = np.iinfo(np.int64).max
    return [AccumulatorRule(name, 0, candidate, amount=amount,
                            limits=register.table[column].fillna(unlimited).to_numpy(np.int64))
            for name, amount, column in (("license_units", "units", "max_units"), ("license_tpp", "tpp", "max_tpp"))]


def _finish(out: _Outcome, denied: np.ndarray, review: np.ndarray) -> None:
    out.decide(review & ~denied, REVIEW)
    out.decide(denied, DENIED)
    out.authorization[out.decision >= LICENSE_REQUIRED] = NO_AUTH


def rules_tiered(s: Situations, policy: Policy) -> RuleTable:
    """The AI Diffusion framework (Tier 1 / 2 / 3, LPP, country allocation) on situations."""
    out = _Outcome(len(s.day))
    denied, review = _party_and_gp10(s, policy, out)
    controlled = s.controlled
    tier3_groups, tier1 = policy.get("tiers.tier3_groups"), policy.get("tiers.tier1")
    tier3_dest = membership(s, policy, tier3_groups)
    tier3_hq = membership(s, policy, tier3_groups, "headquarters")
    tier1_dest = membership(s, policy, tier1)
    tier1_hq = membership(s, policy, tier1, "headquarters") | (s.headquarters < 0)
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
    licensed, lpp_candidate = _veu_then_license(out, s, rest)

    # Stage 1: LPP per (consignee, calendar year); over the limit, the row needs an allocation.
    within_lpp = lpp_candidate & ~s.lpp_over
    out.flag(within_lpp, "LPP")
    out.decide(within_lpp, AUTHORIZED, AUTH_LPP)
    over_lpp = lpp_candidate & s.lpp_over
    out.flag(over_lpp, "LPP_EXCEEDED")

    # Stage 2: country allocation per (destination, window) over licensed and LPP-exceeded rows.
    start, end = policy.get("allocation.window_start"), policy.get("allocation.window_end")
    in_window = (s.day >= day_number(start)) & (s.day <= day_number(end))
    caps, default_cap = policy.get("allocation.caps"), int(policy.get("allocation.default_cap_tpp"))
    allocations = [Allocation(code, str(start), str(end), int(caps.get(code, default_cap)), f"{code} {start}..{end}")
                   for code in s.countries.codes]
    allocation_candidate = (licensed | over_lpp) & in_window
    cap_over = _cap_check(out, s, allocation_candidate, licensed)
    needs_license = over_lpp & ~cap_over
    out.flag(needs_license, "LICENSE_REQUIRED")
    out.decide(needs_license, LICENSE_REQUIRED)

    licenses = _license_depletion(s, policy, out, denied)
    _finish(out, denied, review)
    limit = int(policy.get("lpp.limit_tpp"))
    return RuleTable(out, tier, [
        AccumulatorRule("lpp", 0, lpp_candidate, limit=limit),
        AccumulatorRule("allocation", 1, allocation_candidate, key=s.destination.astype(np.int64),
                        limits=np.array([a.cap_tpp for a in allocations], dtype=np.int64)),
    ] + licenses, allocations, limit)


def rules_country_groups(s: Situations, policy: Policy) -> RuleTable:
    """The post-rescission controls (country groups, HQ test, bilateral agreements) on situations."""
    n = len(s.day)
    out = _Outcome(n)
    denied, review = _party_and_gp10(s, policy, out)
    controlled = s.controlled
    denied_groups = policy.get("controls.denied_groups")
    d5_dest = controlled & membership(s, policy, denied_groups)
    d5_hq = controlled & membership(s, policy, denied_groups, "headquarters")
    out.flag(d5_dest, "D5")
    out.flag(d5_hq, "D5_HQ")
    denied = denied | d5_dest | d5_hq
    live = ~denied

    not_controlled = live & ~controlled
    out.flag(not_controlled, "NOT_CONTROLLED")
    out.decide(not_controlled, NLR, AUTH_NLR)
    needs = (membership(s, policy, policy.get("controls.license_groups"))
             & ~membership(s, policy, policy.get("controls.exempt_groups")))
    free = live & controlled & ~needs
    out.flag(free, "NO_LICENSE_REQUIREMENT")
    out.decide(free, NLR, AUTH_NLR)

    scoped = live & controlled & needs
    out.flag(scoped, "D1_D4")
    licensed, unlicensed = _veu_then_license(out, s, scoped)
    out.flag(unlicensed, "LICENSE_REQUIRED")
    out.decide(unlicensed, LICENSE_REQUIRED)

    allocation, allocations = _agreements(s, policy, out, licensed)
    licenses = _license_depletion(s, policy, out, denied)
    _finish(out, denied, review)
    return RuleTable(out, None, [allocation] + licenses, allocations)


def rules_in_force(s: Situations, policy: Policy) -> RuleTable:
    """The controls in force on each row's date (``in-force`` framework, README "How screening
    works"): the components of the timeline, each applied where the situation's day is in its window."""
    n = len(s.day)
    out = _Outcome(n)
    start = day_number(policy.get("timeline_start"))
    out.flag(s.day < start, "BEFORE_TIMELINE")
    s = replace(s, day=np.maximum(s.day, start))  # earlier rows: the earliest components
    components = policy.params["components"]

    def active(name: str) -> np.ndarray:
        component = components[name]
        if not component.get("in_force", True):
            return np.zeros(n, dtype=bool)
        on = s.day >= day_number(component["effective_from"])
        if "effective_until" in component:
            on &= s.day <= day_number(component["effective_until"])
        return on

    def hq_in(groups: list[str]) -> np.ndarray:
        return membership(s, policy, groups, "headquarters") | membership(s, policy, groups, "parent")

    position = {code: i for i, code in enumerate(s.countries.codes)}
    features = s.features
    memory = features.sku_memory_bandwidth[s.sku]
    io = features.sku_io_bandwidth[s.sku]
    unit_tpp = features.sku_unit_tpp[s.sku]
    abroad = s.destination != position["US"]

    denied, review = _party(s, out)
    gp10 = s.gp10 & active("gp10-guidance")
    out.flag(gp10, "GP10")
    denied = denied | gp10

    # The Affiliates rule: consignees owned 50% or more by listed parties, in its windows; the
    # temporary general license spares affiliates located in A:5/A:6 that no SDN party owns.
    rule_on = active("affiliates-2025") | active("affiliates-2026")
    sdn_owned = np.array(["SDN" in (label or "").split("+") for label in s.affiliate_list], dtype=bool)
    spared = (active("affiliates-tgl") & ~sdn_owned
              & membership(s, policy, components["affiliates-tgl"]["exempt_groups"]))
    affiliate = rule_on & (s.affiliate_status == AFFILIATE)
    out.flag(affiliate & ~spared, "AFFILIATE")
    out.flag(affiliate & spared, "AFFILIATE_TGL")
    minority = rule_on & (s.affiliate_status == MINORITY)
    out.flag(minority, "AFFILIATE_MINORITY")
    denied = denied | (affiliate & ~spared)
    review = review | minority

    ac = components[ADVANCED_COMPUTING]
    controlled = s.controlled & active(ADVANCED_COMPUTING)
    informed_rule = components["is-informed"]
    informed_chip = active("is-informed") & (
        (memory >= informed_rule["memory_bandwidth_gbs"]) | (io >= informed_rule["io_bandwidth_gbs"])
        | (memory + io >= informed_rule["combined_bandwidth_gbs"]))
    informed = informed_chip & (membership(s, policy, informed_rule["groups"])
                                | (abroad & hq_in(informed_rule["groups"])))

    # The H200 rule: China/Macau destinations, controlled or informed chips in the band, from the US.
    h200 = components["h200-china"]
    china = active("h200-china") & membership(s, policy, h200["destinations"])
    band = (unit_tpp < h200["max_tpp"]) & (memory < h200["max_memory_bandwidth_gbs"])
    origin = np.where(s.export < 0, position["US"], s.export)
    from_origin = origin == position[h200["export_country"]]
    hq_outside = np.zeros(n, dtype=bool)  # an HQ or ultimate parent in D:5/Macau outside China/Macau
    for which in ("headquarters", "parent"):
        hq_outside |= (membership(s, policy, ac["hq_groups"], which)
                       & ~membership(s, policy, h200["destinations"], which))
    above = china & controlled & ~band  # denial codes add up
    reexport = china & controlled & ~from_origin
    outside = china & controlled & hq_outside
    out.flag(above, "CN_ABOVE_THRESHOLD")
    out.flag(reexport, "REEXPORT")
    case = china & band & from_origin & (controlled | informed_chip) & ~outside
    h200_denied = above | reexport | outside

    # Every other row: the October 2023 controls and the is-informed letters.
    rest = ~case & ~h200_denied
    d5 = rest & controlled & membership(s, policy, ac["denied_groups"])
    d5_hq = (outside | (rest & controlled & abroad & hq_in(ac["hq_groups"])))
    out.flag(d5, "D5")
    out.flag(d5_hq, "D5_HQ")
    denied = denied | h200_denied | d5 | d5_hq
    live = ~denied

    case = live & case
    out.flag(case, "CN_CASE_BY_CASE")
    out.flag(case & informed_chip & ~controlled, "IS_INFORMED")
    informed_rows = live & rest & informed
    out.flag(informed_rows, "IS_INFORMED")
    needs = (membership(s, policy, ac["license_groups"]) & ~membership(s, policy, ac["exempt_groups"]))
    d1_d4 = live & rest & controlled & needs & ~informed_rows
    out.flag(d1_d4, "D1_D4")
    licensed_case, unlicensed_case = _veu_then_license(out, s, case)
    licensed_rest, unlicensed_rest = _veu_then_license(out, s, informed_rows | d1_d4)
    unlicensed = unlicensed_case | unlicensed_rest
    out.flag(unlicensed, "LICENSE_REQUIRED")
    out.decide(unlicensed, LICENSE_REQUIRED)
    free = live & rest & controlled & ~needs & ~informed_rows
    out.flag(free, "NO_LICENSE_REQUIREMENT")
    out.decide(free, NLR, AUTH_NLR)
    not_controlled = live & rest & ~controlled & ~informed_rows
    out.flag(not_controlled, "NOT_CONTROLLED")
    out.decide(not_controlled, NLR, AUTH_NLR)

    allocation, allocations = _agreements(s, policy, out, licensed_case | licensed_rest)

    # The China volume condition: licensed case-by-case lines against the same exporter's US
    # shipments of the SKU (rows to the US that are not denied, on any date).
    volume = components["china-volume"]
    volume_candidate = licensed_case & active("china-volume")
    volume_over = volume_candidate & s.over["china_volume"]
    out.flag(volume_over, "CN_US_RATIO")
    out.decide(volume_over, CAP_EXCEEDED)
    us_base = ~abroad & ~denied

    licenses = _license_depletion(s, policy, out, denied)
    _finish(out, denied, review)
    return RuleTable(out, None, [
        allocation,
        AccumulatorRule("china_volume", 0, volume_candidate, amount="units" if volume["unit"] == "units" else "tpp",
                        base_candidate=us_base, max_share_percent=int(volume["max_share_percent"])),
    ] + licenses, allocations)


RULES = {"tiered": rules_tiered, "country-groups": rules_country_groups, "in-force": rules_in_force}
"""The rules of each framework."""


def reason_labels(reasons: np.ndarray, party_list: list, affiliate_list: list | None = None
                  ) -> tuple[np.ndarray, list[str]]:
    """Render reason bit sets as ``;``-joined codes; party codes take the matched list, affiliate
    codes the owners' lists.

    Returns the label index of each entry and the distinct labels.

    Examples
    --------
    >>> import numpy as np
    >>> reason_labels(np.array([BIT["PARTY"] | BIT["TIER3"], BIT["LPP"]]), ["EL", None])
    (array([0, 1], dtype=int32), ['PARTY:EL;TIER3', 'LPP'])
    """
    affiliate_list = affiliate_list if affiliate_list is not None else [None] * len(party_list)
    list_codes, list_names = pd.factorize(pd.Series(party_list, dtype=object), use_na_sentinel=True)
    owner_codes, owner_names = pd.factorize(pd.Series(affiliate_list, dtype=object), use_na_sentinel=True)
    width = (len(list_names) + 1) * (len(owner_names) + 1)
    combined, distinct = pd.factorize(reasons.astype(np.int64) * width + (list_codes + 1) * (len(owner_names) + 1)
                                      + (owner_codes + 1))
    texts = []
    for value in np.asarray(distinct).tolist():  # few distinct combinations: render each once
        bits, rest = divmod(value, width)
        listed, owners = divmod(rest, len(owner_names) + 1)
        name = list_names[listed - 1] if listed else ""
        owner = owner_names[owners - 1] if owners else ""
        texts.append(";".join(f"{code}:{name}" if code in LISTED_CODES else f"{code}:{owner}"
                              if code in AFFILIATE_CODES else code
                              for i, code in enumerate(REASON_CODES) if bits >> i & 1))
    label_of, labels = pd.factorize(pd.Series(texts, dtype=object))
    return label_of.astype(np.int32)[combined], list(labels)


# -------------------------------------------------------------------------------------- rows
DECIDE_BYTES_PER_ROW = 512
"""Device memory one row of a :func:`decide` chunk may take at its peak: the nine profile parts
and their key, the sort behind :func:`kernels.situations.profile_codes`, codes, row keys and
amounts, the accumulators (:data:`kernels.backend.DEVICE_BYTES_PER_ROW` each, not at once; a
share condition two) and the outcome arrays. Counted at about 400; rounded up."""


@dataclass
class _KeySpace:
    """How an accumulator's dense keys map to carry keys: ``key * n_years + year - first_year``
    with ``key`` an index into ``values``."""

    values: np.ndarray
    first_year: int = 0
    n_years: int = 1

    @property
    def size(self) -> int:
        return len(self.values) * self.n_years


def decide(features: Features, policy: Policy, carry: Carry | None = None, *,
           backend: Backend | None = None) -> Decisions:
    """Screen every row under ``policy``.

    Rows go through :func:`kernels.situations.evaluate` on the backend in time-ordered chunks
    (one chunk on the CPU; as many as the device's free memory needs on a GPU), each chunk
    starting from the per-key totals the previous one ended with.

    Parameters
    ----------
    features : Features
        Rows in screening order.
    policy : Policy
    carry : Carry, optional
        Totals of the rows screened before these (earlier chunks, partitions or nights), by key.
        The rows here must all come after those rows in screening order.
    backend : Backend, optional
        Where the per-row work runs (:func:`kernels.backend.select_backend`); NumPy when
        omitted. Every backend and chunk size gives the same integers.

    Returns
    -------
    Decisions
        With ``carry`` holding the totals after the last row (keys not seen here kept as carried in).
        ``reason_labels`` are sorted, so the codes do not depend on backend or chunks.

    Raises
    ------
    kernels.TotalsOverflowError
        A running total passes int64; ``row`` counts from the first row.
    """
    backend = backend or NUMPY
    xp = backend.xp

    def to(array):
        return None if array is None else backend.to_device(array)

    rule_set = RULES[policy.framework]
    names = accumulator_names(policy)
    boundaries = date_boundaries(policy).astype(features.day.dtype)
    sizes = profile_sizes(features, boundaries)
    n = len(features.day)
    first_year = int(features.year.min()) if n else 0
    n_years = int(features.year.max()) - first_year + 1 if n else 0
    spaces = {"lpp": _KeySpace(features.party_key_values, first_year, n_years),
              "china_volume": _KeySpace(features.volume_key_values),
              "license_units": _KeySpace(features.license_key_values),
              "license_tpp": _KeySpace(features.license_key_values)}
    carries: dict[str, object] = {}
    if carry is not None:
        for name, space in spaces.items():
            for stored in (name, name + ".base"):
                dense = carry.dense(stored, space.values, space.first_year, space.n_years)
                if dense is not None:
                    carries[stored] = to(dense)
    amounts_of = {"tpp": features.tpp, "units": features.units}
    allocations, lpp_limit = None, None
    labels: dict[str, int] = {}
    pieces: dict[str, list] = {name: [] for name in ("decision", "authorization", "reason", "tier")}
    accumulated: dict[str, dict[str, list]] = {}
    step = backend.rows_per_chunk(DECIDE_BYTES_PER_ROW) or max(n, 1)
    for start in range(0, max(n, 1), step):
        rows = slice(start, min(start + step, n))
        key = profile_key(profile_parts(features, rows, boundaries, backend), sizes, xp)
        profile, keys = profile_codes(key, xp)
        del key
        situations = situations_of(keys, features, boundaries, names)
        rules = rule_set(situations, policy)
        if allocations is None:  # the same allocation keys in every chunk: they come from the policy
            allocations, lpp_limit = rules.allocations, rules.lpp_limit
            spaces["allocation"] = _KeySpace(np.array([a.label for a in allocations], dtype=object))
            if carry is not None:
                carries["allocation"] = to(carry.allocation_for([a.label for a in allocations]))
        label_of, chunk_labels = reason_labels(rules.outcome.reasons, situations.party_list, situations.affiliate_list)
        book = np.array([labels.setdefault(text, len(labels)) for text in chunk_labels], dtype=np.int32)
        tables = tuple(_accumulator_table(rule, names, spaces[rule.name].size, to)
                       for rule in sorted(rules.accumulators, key=lambda r: r.stage))
        table = SituationTable(
            situations=2 ** len(names), accumulators=tables, decision=to(rules.outcome.decision),
            authorization=to(rules.outcome.authorization), reason=to(book[label_of]),
            tier=to(rules.tier) if rules.tier is not None else None)
        row_keys = {}
        if "lpp" in names:
            row_keys["lpp"] = to(features.party_key[rows]) * n_years + (to(features.year[rows]) - first_year)
        if "china_volume" in names:
            row_keys["china_volume"] = to(features.volume_key[rows])
        if "license_units" in names:
            row_keys["license_units"] = row_keys["license_tpp"] = to(features.license[rows])
        amounts = {name: to(values[rows]) for name, values in amounts_of.items()
                   if any(t.amount == name for t in tables)}
        try:
            outcome = evaluate(profile, row_keys, amounts, table, carries=carries, xp=xp, method=backend.method)
        except TotalsOverflowError as error:
            raise error.after(start) from None
        del profile, row_keys
        for name, result in outcome.accumulators.items():
            carries[name] = result.totals
            if result.base_totals is not None:
                carries[name + ".base"] = result.base_totals
            stored = accumulated.setdefault(name, {"keys": [], "cumulative": [], "over": [], "base_keys": [],
                                                   "base_cumulative": []})
            for field_name in stored:
                value = getattr(result, field_name)
                if value is not None:
                    stored[field_name].append(backend.to_host(value))
        for name in pieces:
            value = getattr(outcome, name)
            pieces[name].append(None if value is None else backend.to_host(value))
        del outcome

    def joined(parts):
        return None if not parts or parts[0] is None else parts[0] if len(parts) == 1 else np.concatenate(parts)

    rows_of = {name: joined(parts) for name, parts in pieces.items()}
    texts = list(labels)  # in the order first met
    order = np.argsort(np.array(texts, dtype=object), kind="stable") if texts else np.zeros(0, np.int64)
    canonical = np.empty(len(order), dtype=np.int32)
    canonical[order] = np.arange(len(order), dtype=np.int32)

    results, after = {}, {}
    for name, stored in accumulated.items():
        space = spaces[name]
        final = backend.to_host(carries[name])
        base = backend.to_host(carries[name + ".base"]) if name + ".base" in carries else None
        results[name] = AccumulatorOutcome(
            keys=joined(stored["keys"]), cumulative=joined(stored["cumulative"]), over=joined(stored["over"]),
            totals=final, base_keys=joined(stored["base_keys"]), base_cumulative=joined(stored["base_cumulative"]),
            base_totals=base)
        after[name] = Carry.series_of(final, space.values, space.first_year, space.n_years)
        if base is not None:
            after[name + ".base"] = Carry.series_of(base, space.values, space.first_year, space.n_years)
    after_carry = Carry({name: series for name, series in after.items() if len(series)})
    if carry is not None:
        after_carry = carry.replaced_by(after_carry)
    return Decisions(
        decision=rows_of["decision"], authorization=rows_of["authorization"],
        reasons=canonical[rows_of["reason"]], reason_labels=[texts[i] for i in order.tolist()],
        tier=rows_of["tier"], accumulators=results, allocations=allocations, lpp_limit=lpp_limit,
        volume_keys=features.volume_key_values, license_ids=features.license_key_values, carry=after_carry,
        volume_share=(int(policy.get("components.china-volume.max_share_percent")) if "china_volume" in names
                      else None),
        volume_unit=policy.get("components.china-volume.unit") if "china_volume" in names else None,
    )


def _accumulator_table(rule: AccumulatorRule, names: tuple[str, ...], n_keys: int, to) -> AccumulatorTable:
    """The device form of one declared accumulator."""
    bit = 1 << (len(names) - 1 - names.index(rule.name))
    limits = rule.limits
    if rule.limit is not None:
        limits = None
    return AccumulatorTable(
        name=rule.name, stage=rule.stage, bit=bit, candidate=to(rule.candidate),
        key=to(rule.key) if rule.key is not None else None, amount=rule.amount, n_keys=n_keys,
        limits=to(limits) if limits is not None else None, limit=rule.limit,
        base_candidate=to(rule.base_candidate) if rule.base_candidate is not None else None,
        max_share_percent=rule.max_share_percent)
