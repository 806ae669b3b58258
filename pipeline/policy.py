"""Rule sets: versioned, effective-dated policy files under ``data/policies``.

A rule set is data. :func:`load_policy` reads one, applies what-if overrides (``--set KEY=VALUE``)
and checks that every parameter the screening needs is present, of the right type and in range
(:func:`check_policy`), the file first and then the rule set after each override.
"""
from __future__ import annotations

import copy
import datetime as dt
import difflib
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from pipeline.reference import COUNTRIES_PATH, POLICY_DIR, load_catalog, load_countries

FRAMEWORKS = ("tiered", "country-groups", "in-force")

POLICY_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""A rule-set id: a slug (it names checkpoint folders and output subfolders), never with ``..``."""

INT64_MAX = 2**63 - 1
"""Largest TPP amount a parameter may hold: all accounting is exact int64."""

ECCN = re.compile(r"[0-9][A-E][0-9]{3}(\.[a-z0-9]+)*")
"""An export control classification number, e.g. ``3A090.a``."""

CONTROLLED_CLASSES = ("3A090.a", "3A090.b", "4A090.a", "4A090.b")
"""Classes a rule set may control besides those of the chip catalog (``data/chips.csv`` column ``eccn``)."""

LPP_PERIODS = ("calendar-year",)
"""LPP periods the screening implements."""

AGREEMENT_KEYS = frozenset({"destination", "window_start", "window_end", "cap_tpp"})
"""What each ``[[agreements]]`` entry must give."""

NEW_KEY_TABLES = (["allocation", "caps"], ["destinations", "aliases"], ["catalog", "memory_bandwidth_gbs"],
                  ["catalog", "io_bandwidth_gbs"])
"""Tables whose overrides may add keys (per-destination entries)."""

ADVANCED_COMPUTING = "advanced-computing-2023"
COMPONENT_KEYS = {
    ADVANCED_COMPUTING: ("controlled_classes", "denied_groups", "license_groups", "exempt_groups", "hq_groups"),
    "ai-diffusion-2025": (),
    "gp10-guidance": (),
    "is-informed": ("memory_bandwidth_gbs", "io_bandwidth_gbs", "combined_bandwidth_gbs", "groups"),
    "h200-china": ("destinations", "max_tpp", "max_memory_bandwidth_gbs", "export_country"),
    "china-volume": ("unit", "max_share_percent"),
    "affiliates-2025": (),
    "affiliates-2026": (),
    "affiliates-tgl": ("exempt_groups",),
}
"""The components of an ``in-force`` rule set and the parameters each holds besides the common ones
(:data:`COMPONENT_COMMON`). Every component must be present; one may be switched off with
``in_force = false`` or an ``effective_until``."""
COMPONENT_COMMON = ("title", "effective_from", "effective_until", "in_force", "source", "status")
VOLUME_UNITS = ("units", "tpp")
"""What the China volume condition counts: units (quantity) or TPP."""
CATALOG_OVERRIDES = ("memory_bandwidth_gbs", "io_bandwidth_gbs")
"""Catalog columns a rule set may override per SKU (``[catalog.<column>]``)."""

KEYS = {
    "": ("id", "title", "framework", "effective_from", "status_note", "version", "destinations", "country_groups",
         "tiers", "controls", "parties", "lpp", "allocation", "agreements", "timeline_start", "components",
         "catalog", "status", "licenses", "affiliates"),
    "licenses": ("register",),
    "affiliates": ("lists", "threshold_percent", "minority_percent", "ownership"),
    "destinations": ("aliases",),
    "tiers": ("tier1", "tier3_groups"),
    "controls": ("controlled_classes", "gp10_denied", "denied_groups", "license_groups", "exempt_groups"),
    "parties": ("deny_lists", "review_lists", "block_score", "review_score", "country_bonus", "country_penalty",
                "reviews_file", "allow_short_list", "listing_dates"),
    "lpp": ("limit_tpp", "period"),
    "allocation": ("window_start", "window_end", "default_cap_tpp", "caps"),
    "country_groups.dated": ("group", "country", "from", "until"),
    "agreements": tuple(sorted(AGREEMENT_KEYS)),
}
"""The keys a rule set may hold, per table (``""``: top level; ``country_groups`` and the per-destination
tables ``allocation.caps`` and ``destinations.aliases`` name their own keys). Any other key is refused."""

FRAMEWORK_ONLY = {"tiers": "tiered", "lpp": "tiered", "allocation": "tiered", "agreements": ("country-groups", "in-force"),
                  "controls.denied_groups": "country-groups", "controls.license_groups": "country-groups",
                  "controls.exempt_groups": "country-groups", "controls": ("tiered", "country-groups"),
                  "timeline_start": "in-force", "components": "in-force", "catalog": "in-force",
                  "status": "in-force", "affiliates": "in-force"}
"""Parameters that only one framework reads: in a rule set of the other they would be ignored, so are refused."""

OPTIONAL = {"parties.country_bonus": 0.0, "parties.country_penalty": 0.0, "parties.reviews_file": "",
            "parties.allow_short_list": False, "parties.listing_dates": False, "licenses.register": ""}
"""Parameters a rule-set file may omit, with their defaults; an override may set them anyway."""


class PolicyError(ValueError):
    """A rule set is missing, malformed, or an override does not fit it."""


@dataclass(frozen=True)
class Policy:
    """One rule set, after overrides.

    Attributes
    ----------
    id : str
        Rule-set identifier, e.g. ``"ai-diffusion-2025"``.
    params : dict
        The parsed policy file with overrides applied.
    path : Path
        File it was read from.
    overrides : tuple of str
        The ``KEY=VALUE`` overrides applied, in order.
    """

    id: str
    params: dict
    path: Path
    overrides: tuple[str, ...] = ()

    @property
    def framework(self) -> str:
        """``"tiered"`` (AI Diffusion IFR) or ``"country-groups"`` (post-rescission controls)."""
        return self.params["framework"]

    def get(self, dotted: str) -> Any:
        """Value of a dotted parameter, e.g. ``policy.get("lpp.limit_tpp")``."""
        node: Any = self.params
        for part in dotted.split("."):
            node = node[part]
        return node

    def license_register(self):
        """The rule set's license register (:class:`pipeline.licenses.LicenseRegister`), or None."""
        register = self.params.get("licenses", {}).get("register", "")
        return load_register(register) if register else None

    def controlled_classes(self) -> list[str]:
        """The ECCN classes the rule set controls (``in-force``: those of its advanced-computing component)."""
        if self.framework == "in-force":
            return list(self.params["components"][ADVANCED_COMPUTING]["controlled_classes"])
        return list(self.get("controls.controlled_classes"))

    def timeline(self) -> list[dict]:
        """What applies when: each component (``in-force`` rule sets), dated group membership and
        agreement window, as dicts with ``component``, ``title``, ``from``, ``until`` (ISO dates or
        ``None``: open), ``status`` and ``source``; earliest first. Empty for rule sets without
        components."""
        if self.framework != "in-force":
            return []
        items = []
        for name, component in self.params["components"].items():
            on = component.get("in_force", True)
            items.append({
                "component": name, "title": component.get("title", ""),
                "from": str(component["effective_from"]) if on else None,
                "until": str(component["effective_until"]) if on and "effective_until" in component else None,
                "status": component.get("status", "") if on else "not in force on any date. "
                + component.get("status", ""),
                "source": component.get("source", ""),
            })
        for entry in self.params["country_groups"].get("dated", []):
            items.append({"component": f"country group {entry['group']}",
                          "title": f"{entry['country']} is a member of {entry['group']}",
                          "from": str(entry["from"]) if "from" in entry else None,
                          "until": str(entry["until"]) if "until" in entry else None, "status": "", "source": ""})
        for entry in self.params.get("agreements", []):
            items.append({"component": f"agreement {entry['destination']}",
                          "title": f"bilateral allocation {entry['cap_tpp']:,} TPP for {entry['destination']}",
                          "from": str(entry["window_start"]), "until": str(entry["window_end"]), "status": "",
                          "source": ""})
        for dotted, note in self.params.get("status", {}).items():
            items.append({"component": "parameter", "title": f"{dotted} = {self._value(dotted)}", "from": None,
                          "until": None, "status": note, "source": ""})
        start = str(self.params["timeline_start"])
        return sorted(items, key=lambda item: (item["from"] or (start if item["component"] != "parameter"
                                                                else "9999"), item["component"]))

    def _value(self, dotted: str) -> Any:
        node: Any = self.params
        for part in dotted.split("."):
            node = node[part]
        return node

    def unconfirmed(self) -> dict[str, str]:
        """Parameter or component → status note, for everything the rule set marks as unconfirmed."""
        notes = {f"components.{name}": c["status"] for name, c in self.params.get("components", {}).items()
                 if c.get("status")}
        notes.update(self.params.get("status", {}))
        return notes

    def group_members(self, group: str) -> list[str]:
        """Static members of a country group (dated members excluded)."""
        try:
            return list(self.params["country_groups"][group])
        except KeyError:
            raise PolicyError(f"{self.id}: unknown country group {group!r}") from None

    def dated_members(self, group: str) -> list[tuple[str, dt.date | None, dt.date | None]]:
        """``(country, from, until)``: members of ``group`` on ship dates from ``from`` up to
        ``until`` (inclusive; ``None``: open)."""
        return [
            (entry["country"], entry.get("from"), entry.get("until"))
            for entry in self.params["country_groups"].get("dated", [])
            if entry["group"] == group
        ]


def policy_paths() -> dict[str, Path]:
    """Rule-set id → file, for every file in ``data/policies``."""
    return {path.stem: path for path in sorted(POLICY_DIR.glob("*.toml"))}


def list_policies() -> list[Policy]:
    """Every shipped rule set, parsed and checked."""
    return [load_policy(policy_id) for policy_id in policy_paths()]


def load_policy(ref: str | Path, overrides: Iterable[str] = ()) -> Policy:
    """Read a rule set by id or path and apply overrides.

    Parameters
    ----------
    ref : str or Path
        A rule-set id (a file stem in ``data/policies``) or a path to a TOML file.
    overrides : iterable of str
        ``KEY=VALUE`` items; ``KEY`` is a dotted parameter path (``lpp.limit_tpp``,
        ``allocation.caps.AE``, ``agreements.0.cap_tpp``); ``VALUE`` is a TOML value (``7916000``, ``2026-01-01``,
        ``["CN"]``) or a bare string.

    Returns
    -------
    Policy

    Raises
    ------
    PolicyError
        Unknown id, unreadable file, missing, mistyped or out-of-range parameter (the file is
        checked, then the rule set after each override, by :func:`check_policy`), bad override.

    Examples
    --------
    >>> load_policy("ai-diffusion-2025", ["lpp.limit_tpp=7916000"]).get("lpp.limit_tpp")
    7916000
    """
    path = Path(ref)
    if not path.suffix:
        known = policy_paths()
        if str(ref) not in known:
            raise PolicyError(f"unknown rule set {ref!r}; known: {', '.join(known) or 'none'}")
        path = known[str(ref)]
    try:
        with open(path, "rb") as handle:
            params = tomllib.load(handle)
    except OSError as error:
        raise PolicyError(f"cannot read rule set {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{path}: not valid TOML: {error}") from None
    overrides = tuple(overrides)
    check_policy(params, path)
    for item in overrides:
        params = apply_override(params, item)
        try:
            _check(params)
        except _Invalid as error:
            raise PolicyError(f"override {item!r}: {error}") from None
    return Policy(id=params["id"], params=params, path=path, overrides=overrides)


def parse_value(text: str) -> Any:
    """Parse an override value as TOML, falling back to a bare string.

    Examples
    --------
    >>> parse_value("26_900_000"), parse_value("2026-01-01"), parse_value("CN")
    (26900000, datetime.date(2026, 1, 1), 'CN')
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(params: dict, item: str) -> dict:
    """Return a copy of ``params`` with one ``KEY=VALUE`` override applied.

    An existing parameter keeps its type (an integer stays an integer). New keys are allowed
    only inside per-destination tables such as ``allocation.caps``, and for the optional
    parameters of :data:`OPTIONAL`. Values are checked by :func:`check_policy`, not here.
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise PolicyError(f"override {item!r} is not KEY=VALUE")
    if key.startswith("affiliates.") and "affiliates" not in params:
        raise PolicyError(f"rule set {params.get('id')!r} has no Affiliates rule (an ownership file and the "
                          "affiliates.* parameters apply to the dated rule set in-force)")
    value = parse_value(text.strip())
    params = copy.deepcopy(params)
    parts = key.split(".")
    if not all(parts):
        raise PolicyError(f"override {key!r}: empty part in the parameter name")
    if key in OPTIONAL and len(parts) == 2 and parts[0] not in params:
        params[parts[0]] = {}  # an optional table the file leaves out
    node = params
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]  # agreements.0.cap_tpp
            continue
        if not isinstance(node, dict) or part not in node:
            hint = _did_you_mean(part, node) if isinstance(node, dict) else ""
            raise PolicyError(f"override {key!r}: no parameter {'.'.join(parts[: depth + 1])!r}{hint}")
        node = node[part]
    leaf = parts[-1]
    if not isinstance(node, dict):
        raise PolicyError(f"override {key!r}: {'.'.join(parts[:-1])!r} is not a table")
    if leaf in node or key in OPTIONAL:
        old = node.get(leaf, OPTIONAL.get(key))
        if isinstance(old, bool) != isinstance(value, bool) or (
            not isinstance(value, type(old)) and not (isinstance(old, float) and isinstance(value, int))
        ):
            raise PolicyError(
                f"override {key!r}: expected {type(old).__name__}, got {type(value).__name__} ({text!r})"
            )
    elif parts[:-1] not in NEW_KEY_TABLES and not (parts[0] == "components" and len(parts) == 3
                                                   and leaf in ("effective_until", "status")):
        raise PolicyError(f"override {key!r}: no parameter {leaf!r} in {'.'.join(parts[:-1]) or 'the rule set'}"
                          f"{_did_you_mean(leaf, node)}")
    node[leaf] = value
    return params


class _Invalid(ValueError):
    """A parameter problem, before it is attributed to the file or to an override."""


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_keys(params: dict, framework: str) -> None:
    """Refuse a key the rule set does not know (:data:`KEYS`) or that its framework does not read."""
    def known(table: str, node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        for key in node:
            if key not in KEYS[table]:
                raise _Invalid(f"unknown parameter {where + str(key)!r}{_did_you_mean(str(key), KEYS[table])}")
            dotted = where + key
            allowed = FRAMEWORK_ONLY.get(dotted, framework)
            allowed = allowed if isinstance(allowed, tuple) else (allowed,)
            if framework not in allowed:
                raise _Invalid(f"parameter {dotted!r} applies to the {' and '.join(map(repr, allowed))} framework"
                               f"{'s' if len(allowed) > 1 else ''} only, not to {framework!r}")

    known("", params, "")
    for table in ("destinations", "tiers", "controls", "parties", "lpp", "allocation", "licenses", "affiliates"):
        known(table, params.get(table), f"{table}.")
    groups = params.get("country_groups")
    dated = groups.get("dated") if isinstance(groups, dict) else None
    for i, entry in enumerate(dated if isinstance(dated, list) else []):
        known("country_groups.dated", entry, f"country_groups.dated.{i}.")
    agreements = params.get("agreements")
    for i, entry in enumerate(agreements if isinstance(agreements, list) else []):
        known("agreements", entry, f"agreements.{i}.")


@lru_cache(maxsize=1)
def known_classes() -> tuple[str, ...]:
    """Classes ``controls.controlled_classes`` may name: :data:`CONTROLLED_CLASSES` and the catalog's."""
    catalog = {str(e) for e in load_catalog()["eccn"] if ECCN.fullmatch(str(e))}
    return tuple(sorted(catalog | set(CONTROLLED_CLASSES)))


def _check_aliases(aliases: dict) -> None:
    """Aliases map a code to the destination it is treated as, in one step: no self-alias, cycle or chain."""
    for alias, target in aliases.items():
        _country(alias, "destinations.aliases")
        _country(target, f"destinations.aliases.{alias}")
    for alias, target in aliases.items():
        if alias == target:
            raise _Invalid(f"destinations.aliases.{alias}: {alias!r} is an alias of itself")
        if target in aliases:
            if aliases[target] == alias:
                raise _Invalid(f"destinations.aliases: {alias!r} and {target!r} are aliases of each other (a cycle)")
            raise _Invalid(f"destinations.aliases.{alias}: target {target!r} is itself an alias (of "
                           f"{aliases[target]!r}); map {alias!r} to the final destination")


def _require(params: dict, dotted: str, kind: type | tuple[type, ...]) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise _Invalid(f"missing parameter {dotted!r}")
        node = node[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (not isinstance(node, kinds) or (isinstance(node, bool) and bool not in kinds)
            or (isinstance(node, dt.datetime) and dt.datetime not in kinds)):
        names = " or ".join("number" if k is float else "date" if k is dt.date else k.__name__
                            for k in kinds if k is not int or float not in kinds)
        raise _Invalid(f"parameter {dotted!r} must be {names}, not {node!r}")
    return node


def _amount(value: Any, dotted: str) -> int:
    """A TPP amount: an integer in [0, 2**63 - 1]."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INT64_MAX:
        raise _Invalid(f"parameter {dotted!r} must be an integer in [0, {INT64_MAX}], not {value!r}")
    return value


def _countries(values: Any, dotted: str) -> list[str]:
    """A list of known ISO 3166-1 alpha-2 codes (``data/countries.csv``, upper case)."""
    if not isinstance(values, list):
        raise _Invalid(f"parameter {dotted!r} must be a list of country codes, not {values!r}")
    for value in values:
        _country(value, dotted)
    return values


def _country(value: Any, dotted: str) -> str:
    known = _known_countries()
    if not isinstance(value, str) or value not in known:
        hint = f"; did you mean {value.upper()!r}?" if isinstance(value, str) and value.upper() in known else ""
        raise _Invalid(f"{dotted}: {value!r} is not a country code of {COUNTRIES_PATH.name} "
                       f"(ISO 3166-1 alpha-2, upper case){hint}")
    return value


@lru_cache(maxsize=1)
def _known_countries() -> frozenset[str]:
    return frozenset(load_countries()["alpha2"])


def _groups(params: dict, dotted: str, groups: dict) -> None:
    for group in _require(params, dotted, list):
        if not isinstance(group, str) or group not in groups or group == "dated":
            raise _Invalid(f"{dotted} names unknown country group {group!r}")


def _window(start: Any, end: Any, dotted: str) -> None:
    for value in (start, end):
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise _Invalid(f"{dotted}: window dates must be dates (YYYY-MM-DD), not {value!r}")
    if end < start:
        raise _Invalid(f"{dotted}: window ends before it starts ({start}..{end})")


def check_policy(params: dict, path: Path) -> None:
    """Check that a parsed rule set has every parameter its framework needs, each of the right
    type and in range.

    Checks: every key is known (:data:`KEYS`) and read by the framework (:data:`FRAMEWORK_ONLY`);
    the id is a slug (``[a-z0-9][a-z0-9._-]{0,63}``, no ``..``); country codes (group
    members, tiers, aliases and their targets, caps, agreements) are in ``data/countries.csv``;
    group names refer to groups; TPP amounts are integers in [0, 2**63 - 1]; scores are in [0, 1];
    windows are dates in order; list codes are known CSL lists; controlled classes are known
    (:func:`known_classes`); aliases map straight to a destination (no self-alias, cycle or chain);
    a ``parties.reviews_file`` reads
    (:func:`pipeline.review.read_reviews`).

    Raises
    ------
    PolicyError
        Naming ``path`` and the parameter.
    """
    try:
        _check(params)
    except _Invalid as error:
        raise PolicyError(f"{path}: {error}") from None


def _check(params: dict) -> None:
    """:func:`check_policy` without the file name; raises :class:`_Invalid`."""
    policy_id = _require(params, "id", str)
    if not POLICY_ID.fullmatch(policy_id) or ".." in policy_id:
        raise _Invalid(f"id {policy_id!r} must be 1 to 64 characters of a-z, 0-9, '.', '_', '-', starting "
                       "with a letter or digit, without '..'")
    framework = _require(params, "framework", str)
    if framework not in FRAMEWORKS:
        raise _Invalid(f"framework must be one of {FRAMEWORKS}, not {framework!r}")
    _check_keys(params, framework)
    for key in ("title", "version", "status_note"):
        if key in params:
            _require(params, key, str)
    if "effective_from" in params:
        _require(params, "effective_from", dt.date)
    groups = _require(params, "country_groups", dict)
    for name, members in groups.items():
        if name == "dated":
            if not isinstance(members, list):
                raise _Invalid("country_groups.dated must be a list of tables")
            for entry in members:
                if not isinstance(entry, dict) or not {"group", "country"} <= set(entry) or not (
                        {"from", "until"} & set(entry)):
                    raise _Invalid("country_groups.dated entries need group, country and from and/or until (dates)")
                for bound in ("from", "until"):
                    if bound in entry and (not isinstance(entry[bound], dt.date)
                                           or isinstance(entry[bound], dt.datetime)):
                        raise _Invalid(f"country_groups.dated: {bound} must be a date, not {entry[bound]!r}")
                if "from" in entry and "until" in entry and entry["until"] < entry["from"]:
                    raise _Invalid(f"country_groups.dated: {entry['country']} in {entry['group']} ends before it "
                                   f"starts ({entry['from']}..{entry['until']})")
                if not isinstance(entry["group"], str) or entry["group"] not in groups or entry["group"] == "dated":
                    raise _Invalid(f"dated membership names unknown group {entry['group']!r}")
                _country(entry["country"], "country_groups.dated")
        else:
            _countries(members, f"country_groups.{name}")
    _check_aliases(_require(params, "destinations.aliases", dict))
    _check_parties(params)
    _check_licenses(params)
    if framework == "in-force":
        _check_in_force(params, groups)
        _check_agreements(params)
        return
    _check_classes(_require(params, "controls.controlled_classes", list), "controls.controlled_classes")
    _require(params, "controls.gp10_denied", bool)
    if framework == "tiered":
        _countries(_require(params, "tiers.tier1", list), "tiers.tier1")
        _groups(params, "tiers.tier3_groups", groups)
        _amount(_require(params, "lpp.limit_tpp", int), "lpp.limit_tpp")
        if _require(params, "lpp", dict).get("period", LPP_PERIODS[0]) not in LPP_PERIODS:
            raise _Invalid(f"lpp.period must be one of {LPP_PERIODS}, not {params['lpp']['period']!r}")
        _window(_require(params, "allocation.window_start", dt.date),
                _require(params, "allocation.window_end", dt.date), "allocation")
        _amount(_require(params, "allocation.default_cap_tpp", int), "allocation.default_cap_tpp")
        for country, cap in _require(params, "allocation.caps", dict).items():
            _country(country, "allocation.caps")
            _amount(cap, f"allocation.caps.{country}")
    else:
        for key in ("denied_groups", "license_groups", "exempt_groups"):
            _groups(params, f"controls.{key}", groups)
        _check_agreements(params)


def _check_classes(classes: list, dotted: str) -> None:
    for eccn in classes:
        if not isinstance(eccn, str) or not ECCN.fullmatch(eccn):
            raise _Invalid(f"{dotted}: {eccn!r} is not an ECCN such as '3A090.a'")
        if eccn not in known_classes():
            raise _Invalid(f"{dotted}: unknown class {eccn!r}{_did_you_mean(eccn, known_classes())} "
                           f"(known: {', '.join(known_classes())})")


def _check_agreements(params: dict) -> None:
    agreements = params.get("agreements", [])
    if not isinstance(agreements, list):
        raise _Invalid("agreements must be a list of tables")
    for i, entry in enumerate(agreements):
        if not isinstance(entry, dict) or not AGREEMENT_KEYS <= set(entry):
            raise _Invalid("agreements need destination, window_start, window_end, cap_tpp")
        _country(entry["destination"], f"agreements.{i}.destination")
        _window(entry["window_start"], entry["window_end"], f"agreements.{i}")
        _amount(entry["cap_tpp"], f"agreements.{i}.cap_tpp")


def _date(value: Any, dotted: str) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise _Invalid(f"parameter {dotted!r} must be a date (YYYY-MM-DD), not {value!r}")
    return value


def _int_in(value: Any, dotted: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _Invalid(f"parameter {dotted!r} must be an integer in [{low}, {high}], not {value!r}")
    return value


def _check_in_force(params: dict, groups: dict) -> None:
    """The timeline of an ``in-force`` rule set: every component, its window and its parameters."""
    _date(_require(params, "timeline_start", dt.date), "timeline_start")
    components = _require(params, "components", dict)
    for name in components:
        if name not in COMPONENT_KEYS:
            raise _Invalid(f"unknown component {name!r}{_did_you_mean(name, COMPONENT_KEYS)} "
                           f"(known: {', '.join(COMPONENT_KEYS)})")
    for name, keys in COMPONENT_KEYS.items():
        where = f"components.{name}"
        component = _require(params, where, dict)
        for key in component:
            if key not in keys + COMPONENT_COMMON:
                raise _Invalid(f"unknown parameter {where}.{key!r}{_did_you_mean(key, keys + COMPONENT_COMMON)}")
        for key in ("title", "source", "status"):
            if key in component and not isinstance(component[key], str):
                raise _Invalid(f"parameter '{where}.{key}' must be str")
        if not isinstance(component.get("in_force", True), bool):
            raise _Invalid(f"parameter '{where}.in_force' must be true or false")
        if component.get("in_force", True):
            start = _date(_require(params, f"{where}.effective_from", dt.date), f"{where}.effective_from")
            if "effective_until" in component:
                until = _date(component["effective_until"], f"{where}.effective_until")
                if until < start:
                    raise _Invalid(f"{where}: effective_until {until} is before effective_from {start}")
    ac = f"components.{ADVANCED_COMPUTING}"
    _check_classes(_require(params, f"{ac}.controlled_classes", list), f"{ac}.controlled_classes")
    for key in ("denied_groups", "license_groups", "exempt_groups", "hq_groups"):
        _groups(params, f"{ac}.{key}", groups)
    _groups(params, "components.is-informed.groups", groups)
    for key in ("memory_bandwidth_gbs", "io_bandwidth_gbs", "combined_bandwidth_gbs"):
        _int_in(_require(params, f"components.is-informed.{key}", int), f"components.is-informed.{key}", 0, INT64_MAX)
    _groups(params, "components.h200-china.destinations", groups)
    for key in ("max_tpp", "max_memory_bandwidth_gbs"):
        _int_in(_require(params, f"components.h200-china.{key}", int), f"components.h200-china.{key}", 0, INT64_MAX)
    _country(_require(params, "components.h200-china.export_country", str), "components.h200-china.export_country")
    unit = _require(params, "components.china-volume.unit", str)
    if unit not in VOLUME_UNITS:
        raise _Invalid(f"components.china-volume.unit must be one of {VOLUME_UNITS}, not {unit!r}")
    _int_in(_require(params, "components.china-volume.max_share_percent", int),
            "components.china-volume.max_share_percent", 0, 100)
    _groups(params, "components.affiliates-tgl.exempt_groups", groups)
    _check_affiliates(params)
    catalog = params.get("catalog", {})
    if not isinstance(catalog, dict):
        raise _Invalid("catalog must be a table of per-SKU overrides")
    skus = set(load_catalog()["sku"])
    for column, values in catalog.items():
        if column not in CATALOG_OVERRIDES or not isinstance(values, dict):
            raise _Invalid(f"catalog.{column}: only per-SKU tables of {', '.join(CATALOG_OVERRIDES)} may be overridden")
        for sku, value in values.items():
            if sku not in skus:
                raise _Invalid(f"catalog.{column}: unknown SKU {sku!r}{_did_you_mean(sku, skus)}")
            _int_in(value, f"catalog.{column}.{sku}", 0, INT64_MAX)
    status = params.get("status", {})
    if not isinstance(status, dict):
        raise _Invalid("status must be a table of parameter = note")
    for dotted, note in status.items():
        if not isinstance(note, str):
            raise _Invalid(f"status.{dotted!r}: the note must be text")
        node: Any = params
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise _Invalid(f"status names unknown parameter {dotted!r}")
            node = node[part]


def _check_affiliates(params: dict) -> None:
    from pipeline.parties import KNOWN_CODES

    for code in _require(params, "affiliates.lists", list):
        if not isinstance(code, str) or code not in KNOWN_CODES:
            raise _Invalid(f"affiliates.lists: unknown list code {code!r}; known: {', '.join(sorted(KNOWN_CODES))}")
    threshold = _int_in(_require(params, "affiliates.threshold_percent", int), "affiliates.threshold_percent", 1, 100)
    minority = _int_in(_require(params, "affiliates.minority_percent", int), "affiliates.minority_percent", 1, 100)
    if minority > threshold:
        raise _Invalid("need affiliates.minority_percent <= affiliates.threshold_percent")
    path = _require(params, "affiliates.ownership", str)
    if path:
        from pipeline.ownership.holdings import OwnershipError

        try:
            load_holdings(path)
        except OwnershipError as error:
            raise _Invalid(f"affiliates.ownership: {error}") from None


def _check_licenses(params: dict) -> None:
    table = params.get("licenses", {})
    if not isinstance(table, dict):
        raise _Invalid("licenses must be a table")
    register = table.get("register", "")
    if not isinstance(register, str):
        raise _Invalid("parameter 'licenses.register' must be str (a file path, or \"\" for none)")
    if register:
        from pipeline.licenses import LicenseRegisterError

        try:
            load_register(register)
        except LicenseRegisterError as error:
            raise _Invalid(f"licenses.register: {error}") from None


def load_holdings(path: str):
    """The ownership file at ``path`` (:func:`pipeline.ownership.holdings.read_holdings`), read once
    per file version."""
    return _read_once("holdings", path)


def load_register(path: str):
    """The license register at ``path`` (:func:`pipeline.licenses.read_register`), read once per
    file version."""
    return _read_once("register", path)


def _read_once(kind: str, path: str):
    """A reference file read by its reader, cached by resolved path and file version (mtime, size)."""
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None
    return _read(kind, str(resolved), version)


@lru_cache(maxsize=6)
def _read(kind: str, path: str, version):
    if kind == "holdings":
        from pipeline.ownership.holdings import read_holdings

        return read_holdings(path)
    from pipeline.licenses import read_register

    return read_register(path)


def _check_parties(params: dict) -> None:
    from pipeline.parties import KNOWN_CODES  # heavy imports only when a rule set is checked

    for key in ("deny_lists", "review_lists"):
        for code in _require(params, f"parties.{key}", list):
            if not isinstance(code, str) or code not in KNOWN_CODES:
                raise _Invalid(f"parties.{key}: unknown list code {code!r}; known: {', '.join(sorted(KNOWN_CODES))}")
    scores = [_require(params, f"parties.{key}", (int, float)) for key in ("block_score", "review_score")]
    if not 0 <= scores[1] <= scores[0] <= 1:
        raise _Invalid("need 0 <= parties.review_score <= parties.block_score <= 1")
    parties = params["parties"]
    for key in ("country_bonus", "country_penalty"):  # optional
        value = parties.get(key, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise _Invalid(f"parameter 'parties.{key}' must be a number in [0, 1]")
    for key in ("allow_short_list", "listing_dates"):
        if not isinstance(parties.get(key, False), bool):
            raise _Invalid(f"parameter 'parties.{key}' must be true or false")
    reviews = parties.get("reviews_file", "")
    if not isinstance(reviews, str):
        raise _Invalid("parameter 'parties.reviews_file' must be str")
    if reviews:
        from pipeline.review import ReviewFileError, read_reviews

        try:
            read_reviews(reviews)
        except ReviewFileError as error:
            raise _Invalid(f"parties.reviews_file: {error}") from None
