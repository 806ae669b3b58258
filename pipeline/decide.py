"""Decisions, authorizations and reason codes per row, for both rule-set frameworks (DESIGN §4).

Rows are grouped into **profiles**: the distinct combinations of everything the rules look at
except the running totals (destination, HQ, SKU, party result, license, VEU, and a date class
that keeps dated group memberships and windows constant). The rules are evaluated once per
*situation* = (profile, LPP total over its limit?, allocation total over its cap?), a small table.
Per row there remain array steps, run on the backend (NumPy or CuPy) by
:mod:`kernels.situations` in time-ordered chunks with carry:

1. the profile key of each row and its code (the host builds the situation table from the few
   distinct keys);
2. LPP candidates (a property of the profile) accumulate per (consignee, calendar year);
3. allocation candidates (profile and the LPP outcome) accumulate per allocation key;
4. the row's situation picks its decision, authorization and reasons.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kernels import TotalsOverflowError
from kernels.backend import NUMPY, Backend
from kernels.running_totals import NOT_CANDIDATE
from kernels.situations import (SITUATIONS_PER_PROFILE, SituationTable, evaluate, profile_codes, profile_key,
                                split_key)
from pipeline.carry import Carry
from pipeline.enrich import PARTY_BLOCK, PARTY_CLEARED, PARTY_REVIEW, CountryTable, Features, day_number, membership
from pipeline.policy import Policy

DECISIONS = ("NLR", "AUTHORIZED", "LICENSE_REQUIRED", "CAP_EXCEEDED", "REVIEW", "DENIED")
"""Decision names; the index is the precedence (higher wins)."""
NLR, AUTHORIZED, LICENSE_REQUIRED, CAP_EXCEEDED, REVIEW, DENIED = range(len(DECISIONS))

AUTHORIZATIONS = (None, "NLR", "AIA", "LPP", "VEU", "LICENSE")
NO_AUTH, AUTH_NLR, AUTH_AIA, AUTH_LPP, AUTH_VEU, AUTH_LICENSE = range(len(AUTHORIZATIONS))

REASON_CODES = (
    "PARTY", "GP10", "TIER3", "TIER3_HQ", "D5", "D5_HQ", "PARTY_REVIEW", "ALLOCATION_EXCEEDED",
    "LPP_EXCEEDED", "LICENSE_REQUIRED", "TIER2", "D1_D4", "TIER1", "VEU", "LPP", "LICENSE",
    "NOT_CONTROLLED", "NO_LICENSE_REQUIREMENT", "PARTY_CLEARED",
)
"""Reason codes, most severe first; ``PARTY``, ``PARTY_REVIEW`` and ``PARTY_CLEARED`` (an analyst cleared
the match) are written ``<code>:<list>``."""
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
        Index into ``reason_labels``.
    reason_labels : list of str
        Distinct ``;``-joined reason strings, e.g. ``"PARTY:EL;TIER3"``.
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
    carry : Carry
        Per-key totals after the last row, carry-in included: the carry-in of the next piece.
    """

    decision: np.ndarray
    authorization: np.ndarray
    reasons: np.ndarray
    reason_labels: list[str]
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
    carry: Carry = field(default_factory=Carry.empty)


# ------------------------------------------------------------------------------------ profiles
@dataclass
class Situations:
    """The rule inputs of each situation (profile x LPP over x cap over), as equal-length arrays.

    Attribute names match :class:`pipeline.enrich.Features` where they mean the same, so
    :func:`pipeline.enrich.membership` works on both.
    """

    destination: np.ndarray
    headquarters: np.ndarray
    day: np.ndarray
    controlled: np.ndarray
    gp10: np.ndarray
    party_outcome: np.ndarray
    party_list: list
    has_license: np.ndarray
    has_veu: np.ndarray
    lpp_over: np.ndarray
    cap_over: np.ndarray
    countries: CountryTable


def date_boundaries(policy: Policy) -> np.ndarray:
    """Days on which some rule input changes: dated memberships end, windows open or close."""
    days: list[dt.date] = [entry["until"] + dt.timedelta(days=1)
                           for entry in policy.params["country_groups"].get("dated", [])]
    if policy.framework == "tiered":
        days += [policy.get("allocation.window_start"), policy.get("allocation.window_end") + dt.timedelta(days=1)]
    for entry in policy.params.get("agreements", []):
        days += [entry["window_start"], entry["window_end"] + dt.timedelta(days=1)]
    return np.unique(np.array([day_number(d) for d in days], dtype=np.int64))


def profile_sizes(features: Features, boundaries: np.ndarray) -> list[int]:
    """Number of values of each profile part, in :func:`profile_parts` order."""
    n_countries = len(features.countries.codes)
    return [n_countries, n_countries + 1, max(len(features.sku_controlled), 1), max(len(features.party_outcome), 1),
            2, 2, len(boundaries) + 1]


def profile_parts(features: Features, rows: slice, boundaries: np.ndarray, backend: Backend) -> list:
    """The profile parts of ``rows``, in the backend's memory: destination, HQ (+1), SKU, party
    class, license, VEU, date class."""
    to = backend.to_device
    xp = backend.xp
    day_class = xp.searchsorted(to(boundaries), to(features.day[rows]), side="right")
    return [to(features.destination[rows]), to(features.headquarters[rows]) + 1, to(features.sku[rows]),
            to(features.party[rows]), to(features.has_license[rows]), to(features.has_veu[rows]), day_class]


def situations_of(keys: np.ndarray, features: Features, boundaries: np.ndarray) -> Situations:
    """The four situations of each distinct profile key (see :func:`kernels.situations.profile_key`)."""
    dest, hq, sku, party, lic, veu, cls = split_key(keys, profile_sizes(features, boundaries))
    # A representative day per date class: classes are the intervals between boundaries.
    starts = np.concatenate([[boundaries[0] - 1 if len(boundaries) else 0], boundaries])

    def four(values):  # four situations per profile
        return np.repeat(values, SITUATIONS_PER_PROFILE)

    n = len(dest)
    return Situations(
        destination=four(dest.astype(np.int32)), headquarters=four(hq.astype(np.int32) - 1), day=four(starts[cls]),
        controlled=four(features.sku_controlled[sku]) if n else np.zeros(0, bool),
        gp10=four(features.sku_gp10[sku]) if n else np.zeros(0, bool),
        party_outcome=four(features.party_outcome[party]) if n else np.zeros(0, np.int8),
        party_list=[features.party_list[p] for p in party.tolist() for _ in range(SITUATIONS_PER_PROFILE)],
        has_license=four(lic.astype(bool)), has_veu=four(veu.astype(bool)),
        lpp_over=np.tile([False, False, True, True], n), cap_over=np.tile([False, True], 2 * n),
        countries=features.countries,
    )


# ------------------------------------------------------------------------------------- rules
class _Outcome:
    """Decision, authorization and reason bits, filled in rule by rule over the situations."""

    def __init__(self, n: int):
        self.decision = np.zeros(n, dtype=np.int8)
        self.authorization = np.zeros(n, dtype=np.int8)
        self.reasons = np.zeros(n, dtype=np.int32)

    def flag(self, rows: np.ndarray, code: str) -> None:
        """Add a reason code where ``rows`` is true."""
        self.reasons[rows] |= BIT[code]

    def decide(self, rows: np.ndarray, decision: int, authorization: int = NO_AUTH) -> None:
        """Raise ``rows`` to ``decision`` (the higher code wins) and set their authorization."""
        self.decision[rows] = np.maximum(self.decision[rows], decision)
        if authorization != NO_AUTH:
            self.authorization[rows] = authorization


@dataclass
class RuleTable:
    """What the rules say about each situation.

    ``lpp_candidate``: the row accumulates toward LPP. ``allocation_candidate``: it accumulates
    toward ``allocation_key`` (an index into ``allocations``). The outcome arrays are final for
    the situation's LPP and cap flags.
    """

    outcome: _Outcome
    tier: np.ndarray | None
    lpp_candidate: np.ndarray
    allocation_candidate: np.ndarray
    allocation_key: np.ndarray
    allocations: list[Allocation]
    lpp_limit: int | None


def _party_and_gp10(s: Situations, policy: Policy, out: _Outcome) -> tuple[np.ndarray, np.ndarray]:
    block = s.party_outcome == PARTY_BLOCK
    review = s.party_outcome == PARTY_REVIEW
    gp10 = s.gp10 & bool(policy.get("controls.gp10_denied"))
    out.flag(block, "PARTY")
    out.flag(review, "PARTY_REVIEW")
    out.flag(s.party_outcome == PARTY_CLEARED, "PARTY_CLEARED")
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
    return licensed, rows & ~s.has_veu & ~s.has_license


def _cap_check(out: _Outcome, s: Situations, candidate: np.ndarray, licensed: np.ndarray) -> np.ndarray:
    """Allocation candidates over their cap are ``CAP_EXCEEDED``; licensed lines within it may ship."""
    cap_over = candidate & s.cap_over
    out.flag(cap_over, "ALLOCATION_EXCEEDED")
    out.decide(cap_over, CAP_EXCEEDED)
    out.decide(licensed & ~cap_over, AUTHORIZED, AUTH_LICENSE)
    return cap_over


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

    _finish(out, denied, review)
    return RuleTable(out, tier, lpp_candidate, allocation_candidate, s.destination.astype(np.int64), allocations,
                     int(policy.get("lpp.limit_tpp")))


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

    # Bilateral agreements: the first agreement whose destination and window cover the row.
    allocations, keys = [], np.full(n, NOT_CANDIDATE, dtype=np.int64)
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
    allocation_candidate = licensed & (keys >= 0)
    _cap_check(out, s, allocation_candidate, licensed)

    _finish(out, denied, review)
    return RuleTable(out, None, np.zeros(n, bool), allocation_candidate, keys, allocations, None)


def reason_labels(reasons: np.ndarray, party_list: list) -> tuple[np.ndarray, list[str]]:
    """Render reason bit sets as ``;``-joined codes; ``PARTY`` codes take the matched list.

    Returns the label index of each entry and the distinct labels.

    Examples
    --------
    >>> import numpy as np
    >>> reason_labels(np.array([BIT["PARTY"] | BIT["TIER3"], BIT["LPP"]]), ["EL", None])
    (array([0, 1], dtype=int32), ['PARTY:EL;TIER3', 'LPP'])
    """
    list_codes, list_names = pd.factorize(pd.Series(party_list, dtype=object), use_na_sentinel=True)
    combined, distinct = pd.factorize(reasons.astype(np.int64) * (len(list_names) + 1) + (list_codes + 1))
    texts = []
    for value in np.asarray(distinct).tolist():  # few distinct combinations: render each once
        bits, listed = divmod(value, len(list_names) + 1)
        name = list_names[listed - 1] if listed else ""
        texts.append(";".join(f"{code}:{name}" if code in ("PARTY", "PARTY_REVIEW", "PARTY_CLEARED") else code
                              for i, code in enumerate(REASON_CODES) if bits >> i & 1))
    label_of, labels = pd.factorize(pd.Series(texts, dtype=object))
    return label_of.astype(np.int32)[combined], list(labels)


# -------------------------------------------------------------------------------------- rows
DECIDE_BYTES_PER_ROW = 384
"""Device memory one row of a :func:`decide` chunk may take at its peak: the seven profile parts
and their key, the sort behind :func:`kernels.situations.profile_codes`, codes, consignee keys and
amounts, two accumulators (:data:`kernels.backend.DEVICE_BYTES_PER_ROW` each, not at once) and
the outcome arrays. Counted at about 300; rounded up."""

ROW_FIELDS = ("decision", "authorization", "reason", "tier", "lpp_keys", "lpp_cum", "allocation_keys",
              "allocation_cum", "allocation_over")


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

    rule_set = rules_tiered if policy.framework == "tiered" else rules_country_groups
    boundaries = date_boundaries(policy).astype(features.day.dtype)
    sizes = profile_sizes(features, boundaries)
    n = len(features.day)
    first_year = int(features.year.min()) if n else 0
    n_years = int(features.year.max()) - first_year + 1 if n else 0
    n_lpp_keys = features.n_party_keys * n_years
    lpp_totals = to(carry.lpp_for(features.party_key_values, first_year, n_years)) if carry is not None else None
    allocation_totals, allocations, lpp_limit = None, None, None
    labels: dict[str, int] = {}
    pieces: dict[str, list] = {name: [] for name in ROW_FIELDS}
    step = backend.rows_per_chunk(DECIDE_BYTES_PER_ROW) or max(n, 1)
    for start in range(0, max(n, 1), step):
        rows = slice(start, min(start + step, n))
        key = profile_key(profile_parts(features, rows, boundaries, backend), sizes, xp)
        profile, keys = profile_codes(key, xp)
        del key
        situations = situations_of(keys, features, boundaries)
        rules = rule_set(situations, policy)
        if allocations is None:  # the same allocation keys in every chunk: they come from the policy
            allocations, lpp_limit = rules.allocations, rules.lpp_limit
            if carry is not None:
                allocation_totals = to(carry.allocation_for([a.label for a in allocations]))
        label_of, chunk_labels = reason_labels(rules.outcome.reasons, situations.party_list)
        book = np.array([labels.setdefault(text, len(labels)) for text in chunk_labels], dtype=np.int32)
        table = SituationTable(
            lpp_candidate=to(rules.lpp_candidate), allocation_candidate=to(rules.allocation_candidate),
            allocation_key=to(rules.allocation_key), decision=to(rules.outcome.decision),
            authorization=to(rules.outcome.authorization), reason=to(book[label_of]),
            tier=to(rules.tier) if rules.tier is not None else None,
            caps=to(np.array([a.cap_tpp for a in allocations], dtype=np.int64)), lpp_limit=lpp_limit)
        lpp_key = to(features.party_key[rows]) * n_years + (to(features.year[rows]) - first_year)
        try:
            outcome = evaluate(profile, lpp_key, to(features.tpp[rows]), table, n_lpp_keys=n_lpp_keys,
                               lpp_carry=lpp_totals, allocation_carry=allocation_totals, xp=xp, method=backend.method)
        except TotalsOverflowError as error:
            raise error.after(start) from None
        del profile, lpp_key
        lpp_totals, allocation_totals = outcome.lpp_totals, outcome.allocation_totals
        for name in ROW_FIELDS:
            value = getattr(outcome, name)
            pieces[name].append(None if value is None else backend.to_host(value))
        del outcome

    rows_of = {name: (None if parts[0] is None else parts[0] if len(parts) == 1 else np.concatenate(parts))
               for name, parts in pieces.items()}
    texts = list(labels)  # in the order first met
    order = np.argsort(np.array(texts, dtype=object), kind="stable") if texts else np.zeros(0, np.int64)
    canonical = np.empty(len(order), dtype=np.int32)
    canonical[order] = np.arange(len(order), dtype=np.int32)
    lpp_totals, allocation_totals = backend.to_host(lpp_totals), backend.to_host(allocation_totals)

    used = np.flatnonzero(lpp_totals)
    party_of, year_of = np.divmod(used, max(n_years, 1))
    after = Carry.from_arrays(features.party_key_values[party_of], year_of + first_year, lpp_totals[used],
                              [a.label for a in allocations], allocation_totals)
    if carry is not None:
        after = carry.replaced_by(after)
    return Decisions(
        decision=rows_of["decision"], authorization=rows_of["authorization"],
        reasons=canonical[rows_of["reason"]], reason_labels=[texts[i] for i in order.tolist()],
        tier=rows_of["tier"], lpp_cum_tpp=rows_of["lpp_cum"], country_cum_tpp=rows_of["allocation_cum"],
        lpp_keys=rows_of["lpp_keys"], allocation_keys=rows_of["allocation_keys"], lpp_totals=lpp_totals,
        allocation_totals=allocation_totals, allocation_over=rows_of["allocation_over"],
        allocations=allocations, lpp_limit=lpp_limit, carry=after,
    )
