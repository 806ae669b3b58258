"""The consignee pool: regular consignees grouped by destination, then those with listed names.

Names, legal forms, headquarters and addresses are drawn from :mod:`pipeline.generate.pools`;
a restricted-party name is placed in a country from place and legal-form hints.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.generate.pools import (_CHINA_LIKE, _CITIES, _COUNTRY_DISPLAY, _DEFAULT_LEGAL_FORMS, _LEGAL_FORMS,
                                     _LISTED_FALLBACK, _LISTED_HINTS, _PARENT_CN_SHARE, _PARENT_COUNTRIES,
                                     _PARENT_LOCATIONS, _STREET_TYPES, _STREETS, _WORD_A, _WORD_B, _WORD_C, _WORD_D)
from pipeline.generate.shape import PARENT_SHARE
from pipeline.generate.strings import _compose, _join
from pipeline.reference import load_countries


def _display_names() -> dict[str, str]:
    countries = load_countries()
    names = {code: name.split(",")[0].strip() for code, name in zip(countries["alpha2"], countries["name"])}
    names.update(_COUNTRY_DISPLAY)
    return names


def _listed_destination(name: str, country_patterns: list[tuple[re.Pattern, str]]) -> str | None:
    """A destination that fits a restricted-party name, from place and legal-form hints."""
    text = name.lower()
    for pattern, code in country_patterns:
        if pattern.search(text):
            return code
    for pattern, code in _LISTED_HINTS:
        if re.search(pattern, text):
            return code
    return None


def _country_patterns(known: set[str]) -> list[tuple[re.Pattern, str]]:
    """Word patterns for country names (longest first), skipping names shared by two codes."""
    countries = load_countries()
    seen: dict[str, list[str]] = {}
    for code, name in zip(countries["alpha2"], countries["name"]):
        for variant in {name.split(",")[0].strip().lower(), _COUNTRY_DISPLAY.get(code, "").lower()} - {""}:
            seen.setdefault(variant, []).append(code)
    extra = {"russia": "RU", "iran": "IR", "china": "CN", "vietnam": "VN", "turkey": "TR", "uae": "AE",
             "emirates": "AE", "syria": "SY", "north korea": "KP", "burma": "MM"}
    pairs = [(variant, codes[0]) for variant, codes in seen.items() if len(set(codes)) == 1 and len(variant) > 3]
    pairs += [(variant, code) for variant, code in extra.items() if code in known]
    pairs.sort(key=lambda pair: -len(pair[0]))
    return [(re.compile(r"\b" + re.escape(variant) + r"\b"), code) for variant, code in pairs if code in known]


def _build_pool(rng: np.random.Generator, size: int, listed_names: Sequence[str], dest_codes: list[str],
                dest_weights: np.ndarray) -> dict:
    """The consignee pool: regular consignees grouped by destination, then the listed-name ones."""
    display = _display_names()
    n_dest = len(dest_codes)
    given: dict[str, str | None] = {}
    for item in listed_names:
        name, code = (item, None) if isinstance(item, str) else (item[0], item[1])
        if name and name.strip():
            given.setdefault(name.strip(), code)
    names = list(given)
    n_listed = min(len(names), max(5, int(round(0.005 * size)))) if names else 0
    n_regular = max(size - n_listed, n_dest)

    # Destinations: at least one consignee each, the rest flatter than the row weights.
    flat = dest_weights ** 0.8
    per_dest = 1 + rng.multinomial(n_regular - n_dest, flat / flat.sum())
    dest_index = np.repeat(np.arange(n_dest), per_dest)
    segment_end = np.cumsum(per_dest)
    segment_start = segment_end - per_dest
    within = np.arange(n_regular) - segment_start[dest_index]
    weight = 1.0 / (within + 1.0) ** 0.9
    cumulative = np.cumsum(weight)
    before = np.concatenate([[0.0], cumulative[segment_end - 1]])
    segment_total = np.diff(before)
    segment_cdf = (cumulative - before[dest_index]) / segment_total[dest_index] + dest_index

    # Unique names: a sample of the word-combination space, then a legal form of the destination.
    sizes = (len(_WORD_A), len(_WORD_B), len(_WORD_C), len(_WORD_D))
    space = int(np.prod(sizes))
    combo = rng.choice(space, size=n_regular, replace=n_regular > space)
    a, rest = np.divmod(combo, sizes[1] * sizes[2] * sizes[3])
    b, rest = np.divmod(rest, sizes[2] * sizes[3])
    c, d = np.divmod(rest, sizes[3])
    forms = [_LEGAL_FORMS.get(code, _DEFAULT_LEGAL_FORMS) for code in dest_codes]
    form_offset = np.cumsum([0] + [len(f) for f in forms])
    form_count = np.array([len(f) for f in forms])[dest_index]
    form_pick = form_offset[dest_index] + (rng.random(n_regular) * form_count).astype(np.int64)
    flat_forms = pa.array([f for group in forms for f in group], type=pa.string())
    name = _join(pa.array(_WORD_A).take(a), " ", pa.array(_WORD_B).take(b), " ", pa.array(_WORD_C).take(c),
                 pa.array(_WORD_D).take(d), " ", flat_forms.take(pa.array(form_pick)))

    dest = pa.array(dest_codes, type=pa.string()).take(pa.array(dest_index))

    # HQ: usually the destination; sometimes a US, Chinese or other parent; sometimes unknown.
    hq_draw = rng.random(n_regular)
    parents = np.array(["JP", "GB", "DE", "KR", "TW", "SG", "FR", "NL", "HK", "MO", "RU"], dtype=object)
    parent_weight = np.array([20, 15, 15, 12, 12, 10, 6, 5, 3, 1, 1], dtype=np.float64)
    other = parents[rng.choice(len(parents), size=n_regular, p=parent_weight / parent_weight.sum())]
    dest_obj = np.array(dest_codes, dtype=object)[dest_index]
    hq = np.where(hq_draw < 0.78, dest_obj, np.where(hq_draw < 0.85, "US", np.where(
        hq_draw < 0.89, "CN", np.where(hq_draw < 0.93, other, None))))

    # Addresses.
    cities = [_CITIES.get(code) or [display.get(code, code)] for code in dest_codes]
    city_offset = np.cumsum([0] + [len(c) for c in cities])
    city_count = np.array([len(c) for c in cities])[dest_index]
    city_pick = city_offset[dest_index] + (rng.random(n_regular) * city_count).astype(np.int64)
    flat_cities = pa.array([c for group in cities for c in group], type=pa.string())
    country_name = pa.array([display.get(code, code) for code in dest_codes], type=pa.string())
    number = pa.array(rng.integers(1, 2000, size=n_regular)).cast(pa.string())
    street = pa.array(_STREETS).take(pa.array(rng.integers(0, len(_STREETS), size=n_regular)))
    street_type = pa.array(_STREET_TYPES).take(pa.array(rng.integers(0, len(_STREET_TYPES), size=n_regular)))
    address = _join(number, " ", street, " ", street_type, ", ", flat_cities.take(pa.array(city_pick)), ", ",
                    country_name.take(pa.array(dest_index)))
    address = pc.if_else(pa.array(rng.random(n_regular) < 0.9), address, pa.scalar(None, pa.string()))

    # Listed-name consignees.
    listed = [names[i] for i in rng.permutation(len(names))[:n_listed]] if n_listed else []
    known = set(load_countries()["alpha2"])
    patterns = _country_patterns(known)
    fallback_codes = list(_LISTED_FALLBACK)
    fallback_p = np.array(list(_LISTED_FALLBACK.values()))
    fallback = rng.choice(len(fallback_codes), size=max(1, n_listed), p=fallback_p / fallback_p.sum())
    listed_dest, listed_hq, listed_address = [], [], []
    for i, listed_name in enumerate(listed):
        code = given[listed_name] if given[listed_name] in known else None
        code = code or _listed_destination(listed_name, patterns) or fallback_codes[fallback[i]]
        listed_dest.append(code)
        lower = listed_name.lower()
        listed_hq.append("CN" if ("huawei" in lower or "china" in lower) else (code if i % 2 == 0 else None))
        places = _CITIES.get(code) or [display.get(code, code)]
        city = places[i % len(places)]
        listed_address.append(f"{1 + (i * 37) % 400} {_STREETS[i % len(_STREETS)]} Street, {city}, "
                              f"{display.get(code, code)}")

    total = n_regular + n_listed
    serial = rng.choice(9_000_000, size=total, replace=False) + 1_000_000
    has_id = rng.random(total) < 0.7
    parent = _parents(rng, dest_obj, hq)  # drawn last: the other columns keep their draws
    pool = {
        "consignee_id": _compose([b"C-", (serial, 7)], total, has_id),
        "consignee_name": pa.concat_arrays([name.cast(pa.string()), pa.array(listed, type=pa.string())]),
        "consignee_address": pa.concat_arrays([address.cast(pa.string()),
                                               pa.array(listed_address, type=pa.string())]),
        "destination_country": pa.concat_arrays([dest, pa.array(listed_dest, type=pa.string())]),
        "consignee_hq_country": pa.array(list(hq) + listed_hq, type=pa.string()),
        "ultimate_parent_hq_country": pa.array(list(parent) + [None] * n_listed, type=pa.string()),
    }
    china = np.isin(np.array(list(dest_obj) + listed_dest, dtype=object), _CHINA_LIKE)
    return {"pool": pool, "serial": serial, "china": china, "segment_start": segment_start,
            "segment_end": segment_end, "segment_cdf": segment_cdf, "n_regular": n_regular, "n_listed": n_listed}


def _parents(rng: np.random.Generator, destination: np.ndarray, hq: np.ndarray) -> np.ndarray:
    """``ultimate_parent_hq_country`` of the regular consignees: :data:`PARENT_SHARE` of them carry one.

    Consignees in :data:`_PARENT_LOCATIONS` (Singapore, Malaysia, ...) are picked more often and
    their parents are mostly Chinese; a parent never equals the consignee's HQ (or, without
    one, its destination). The rest are null.
    """
    n = len(destination)
    out = np.full(n, None, dtype=object)
    count = int(round(PARENT_SHARE * n))
    weight = np.array([_PARENT_LOCATIONS.get(code, 1.0) for code in destination], dtype=np.float64)
    chosen = np.sort(rng.choice(n, size=count, replace=False, p=weight / weight.sum())) if count else \
        np.zeros(0, np.int64)
    codes = list(_PARENT_COUNTRIES)
    share = np.array(list(_PARENT_COUNTRIES.values()), dtype=np.float64)
    pick = rng.choice(len(codes), size=count, p=share / share.sum())
    located = np.array([destination[i] in _PARENT_LOCATIONS for i in chosen], dtype=bool)
    pick = np.where(located & (rng.random(count) < _PARENT_CN_SHARE), codes.index("CN"), pick)
    for i, k in zip(chosen, pick):
        own = hq[i] if hq[i] is not None else destination[i]
        code = codes[k]
        out[i] = code if code != own else codes[(k + 1) % len(codes)]
    return out
