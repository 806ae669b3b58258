"""Rule sets: versioned, effective-dated policy files under ``data/policies``.

A rule set is data. :func:`load_policy` reads one, applies what-if overrides (``--set KEY=VALUE``)
and checks that every parameter the screening needs is present with the right type.
"""
from __future__ import annotations

import copy
import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pipeline.reference import POLICY_DIR

FRAMEWORKS = ("tiered", "country-groups")


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

    def group_members(self, group: str) -> list[str]:
        """Static members of a country group (dated members excluded)."""
        try:
            return list(self.params["country_groups"][group])
        except KeyError:
            raise PolicyError(f"{self.id}: unknown country group {group!r}") from None

    def dated_members(self, group: str) -> list[tuple[str, dt.date]]:
        """``(country, until)`` pairs: members of ``group`` on ship dates up to ``until``."""
        return [
            (entry["country"], entry["until"])
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
        Unknown id, unreadable file, missing or mistyped parameter, bad override.

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
    for item in overrides:
        params = apply_override(params, item)
    check_policy(params, path)
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
    only inside per-destination tables such as ``allocation.caps``.
    """
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise PolicyError(f"override {item!r} is not KEY=VALUE")
    value = parse_value(text.strip())
    params = copy.deepcopy(params)
    parts = key.split(".")
    node = params
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]  # agreements.0.cap_tpp
            continue
        if not isinstance(node, dict) or part not in node:
            raise PolicyError(f"override {key!r}: no parameter {'.'.join(parts[: depth + 1])!r}")
        node = node[part]
    leaf = parts[-1]
    if not isinstance(node, dict):
        raise PolicyError(f"override {key!r}: {'.'.join(parts[:-1])!r} is not a table")
    if leaf in node:
        old = node[leaf]
        if isinstance(old, bool) != isinstance(value, bool) or (
            not isinstance(value, type(old)) and not (isinstance(old, float) and isinstance(value, int))
        ):
            raise PolicyError(
                f"override {key!r}: expected {type(old).__name__}, got {type(value).__name__} ({text!r})"
            )
    elif parts[:-1] not in (["allocation", "caps"], ["destinations", "aliases"]):
        raise PolicyError(f"override {key!r}: no parameter {leaf!r} in {'.'.join(parts[:-1]) or 'the rule set'}")
    node[leaf] = value
    return params


def _require(params: dict, dotted: str, kind: type | tuple[type, ...], path: Path) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise PolicyError(f"{path}: missing parameter {dotted!r}")
        node = node[part]
    if not isinstance(node, kind) or (isinstance(node, bool) and kind is int):
        raise PolicyError(f"{path}: parameter {dotted!r} must be {getattr(kind, '__name__', kind)}")
    return node


def check_policy(params: dict, path: Path) -> None:
    """Check that a parsed rule set has every parameter its framework needs.

    Raises
    ------
    PolicyError
    """
    _require(params, "id", str, path)
    framework = _require(params, "framework", str, path)
    if framework not in FRAMEWORKS:
        raise PolicyError(f"{path}: framework must be one of {FRAMEWORKS}, not {framework!r}")
    groups = _require(params, "country_groups", dict, path)
    for name, members in groups.items():
        if name == "dated":
            for entry in members:
                if set(entry) < {"group", "country", "until"} or not isinstance(entry["until"], dt.date):
                    raise PolicyError(f"{path}: country_groups.dated entries need group, country, until (a date)")
                if entry["group"] not in groups:
                    raise PolicyError(f"{path}: dated membership names unknown group {entry['group']!r}")
        elif not isinstance(members, list) or not all(isinstance(c, str) and len(c) == 2 for c in members):
            raise PolicyError(f"{path}: country group {name!r} must be a list of ISO alpha-2 codes")
    _require(params, "destinations.aliases", dict, path)
    _require(params, "controls.controlled_classes", list, path)
    _require(params, "controls.gp10_denied", bool, path)
    for key in ("deny_lists", "review_lists"):
        _require(params, f"parties.{key}", list, path)
    scores = [_require(params, f"parties.{key}", (int, float), path) for key in ("block_score", "review_score")]
    if not 0 <= scores[1] <= scores[0] <= 1:
        raise PolicyError(f"{path}: need 0 <= parties.review_score <= parties.block_score <= 1")
    for key in ("country_bonus", "country_penalty"):  # optional
        value = params["parties"].get(key, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise PolicyError(f"{path}: parameter 'parties.{key}' must be a number in [0, 1]")
    if not isinstance(params["parties"].get("reviews_file", ""), str):
        raise PolicyError(f"{path}: parameter 'parties.reviews_file' must be str")
    if framework == "tiered":
        _require(params, "tiers.tier1", list, path)
        for group in _require(params, "tiers.tier3_groups", list, path):
            if group not in groups:
                raise PolicyError(f"{path}: tiers.tier3_groups names unknown group {group!r}")
        if _require(params, "lpp.limit_tpp", int, path) < 0:
            raise PolicyError(f"{path}: lpp.limit_tpp must be >= 0")
        start = _require(params, "allocation.window_start", dt.date, path)
        end = _require(params, "allocation.window_end", dt.date, path)
        if end < start:
            raise PolicyError(f"{path}: allocation window ends before it starts")
        _require(params, "allocation.default_cap_tpp", int, path)
        for country, cap in _require(params, "allocation.caps", dict, path).items():
            if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
                raise PolicyError(f"{path}: allocation.caps.{country} must be a non-negative integer")
    else:
        for key in ("denied_groups", "license_groups", "exempt_groups"):
            for group in _require(params, f"controls.{key}", list, path):
                if group not in groups:
                    raise PolicyError(f"{path}: controls.{key} names unknown group {group!r}")
        for entry in params.get("agreements", []):
            if set(entry) < {"destination", "window_start", "window_end", "cap_tpp"}:
                raise PolicyError(f"{path}: agreements need destination, window_start, window_end, cap_tpp")
            if not isinstance(entry["cap_tpp"], int) or entry["cap_tpp"] < 0:
                raise PolicyError(f"{path}: agreement cap_tpp must be a non-negative integer")
