"""Deterministic synthetic shipment ledgers (DESIGN §3 columns) for demos, tests and benchmarks.

The generator is vectorised: rows are produced in fixed-size internal blocks of
:data:`BLOCK_ROWS` rows, each from its own random stream derived from ``(seed, block index)``,
and strings are built by indexing precomputed pools or by composing fixed-width digits. The file
content therefore depends only on the arguments that shape the data, never on ``chunk_rows``
(which only sets the Parquet row-group size and the progress granularity).

Shape of the data
-----------------
* Rows are in ``(ship_date, shipment_id)`` order. Valid rows have ids ``SHP-`` + 12 digits, the
  global row number; dates run from ``start`` to ``end`` (``status="shipped"``), then a tail of
  ``pending_days`` days of ``status="pending"`` rows (about 2 % of rows).
* Destinations follow Zipf-like weights over 60 ISO codes (heavy: US, JP, GB, ...; light: BR, MX,
  ...; rare: CN, HK, RU, MO, IR, KH, BY). Each row picks a destination, then a consignee of that
  destination with a skewed (large buyers) weight.
* SKUs come from the chip catalog with a mix that drifts from Hopper to Blackwell over time; rare
  Huawei Ascend (GP10), H20 and L4 rows; China, Hong Kong and Macau rows are mostly H20.
* Quantities are mostly multiples of 8 (servers), heavy-tailed, within 1..4096.
* About 15 % of rows carry a ``license_id``, 3 % a ``veu_id``; shipped rows record an authorization
  (their license, VEU, AIA for Tier-1 consignees, else LPP; 2 % claim NLR), pending rows none.

Malformed rows (``bad_rows``) are inserted right after randomly chosen valid rows and cycle
through :data:`BAD_KINDS`; valid rows are identical with or without them.

:func:`generate_next` writes the next night of an existing ledger: dates after its last row,
ids continuing its numbering, its consignees; mostly ``pending`` rows.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.reference import load_catalog, load_countries

COLUMNS = (
    "shipment_id", "ship_date", "status", "exporter", "consignee_id", "consignee_name",
    "consignee_address", "destination_country", "consignee_hq_country", "sku", "quantity",
    "license_id", "veu_id", "recorded_authorization",
)
"""Ledger columns, in file order (DESIGN §3)."""

BLOCK_ROWS = 1 << 16
"""Valid rows per internal generation block; each block has its own random stream."""

BAD_KINDS = (
    "missing_field", "bad_date", "unknown_country", "bad_quantity", "unknown_sku",
    "conflicting_duplicate", "exact_duplicate",
)
"""Kinds of malformed rows, used in turn: bad row ``j`` is of kind ``BAD_KINDS[j % 7]``."""

FORMATS = ("parquet", "csv", "jsonl")
PENDING_SHARE = 0.02
LICENSE_SHARE = 0.15
VEU_SHARE = 0.03
LISTED_ROW_SHARE = 0.0015
"""Share of rows routed to consignees that carry a restricted-party name (when names are given)."""
MAX_QUANTITY = 4096
NEXT_SHIPPED_SHARE = 0.1
"""Share of ``shipped`` rows in a ledger that continues another (:func:`generate_next`); the rest are pending."""
ID_NUMBER = r"^SHP-\d{12}"
"""The number of a generated ``shipment_id`` (valid ``SHP-<12 digits>``, bad ``SHP-<12 digits>-B<j>``)."""
SKU_PERIODS = 12

# Random streams: default_rng([seed, stream, ...]).
_POOL, _DAYS, _BAD, _BLOCK = 0, 1, 2, 3

# --------------------------------------------------------------------------------- reference pools
_HEAVY = ["US", "JP", "GB", "DE", "KR", "TW", "IN", "SG", "AE", "SA", "MY", "IL", "NL", "FR", "CA", "AU"]
_LIGHT = ["BR", "MX", "PL", "VN", "TH", "ID", "TR", "CH", "SE", "ES", "IT", "FI", "NO", "DK", "IE", "BE",
          "AT", "NZ", "ZA", "QA", "KW", "PH", "CL", "AR", "CO", "PK", "KZ", "GR", "PT", "CZ", "RO", "HU",
          "EG", "BH", "OM", "JO", "LU"]
_RARE = {"CN": 0.004, "HK": 0.003, "KH": 0.0008, "RU": 0.001, "MO": 0.0005, "BY": 0.0003, "IR": 0.0002}
"""Rare destinations with their share of rows (about 1 % together)."""
_CHINA_LIKE = ("CN", "HK", "MO")


DICTIONARY_PAGE_BYTES = 16 << 20
"""Parquet dictionary page limit of generated ledgers."""

RECORDED = (None, "NLR", "AIA", "LPP", "VEU", "LICENSE")
"""recorded_authorization values by code (0: none, for pending rows)."""
RECORDED_NLR_SHARE = 0.02

def _destination_weights() -> tuple[list[str], np.ndarray]:
    """Destination codes and row shares: Zipf(1) over heavy then light codes, plus fixed rare shares."""
    codes = _HEAVY + _LIGHT
    ranks = np.arange(1, len(codes) + 1, dtype=np.float64)
    zipf = 1.0 / ranks
    zipf[len(_HEAVY):] *= 0.6
    zipf *= (1.0 - sum(_RARE.values())) / zipf.sum()
    weights = np.concatenate([zipf, np.array(list(_RARE.values()))])
    return codes + list(_RARE), weights / weights.sum()


# SKU weight at the start and at the end of the shipped range (linear drift in between).
_SKU_WEIGHTS = {
    "NVIDIA-H100-SXM": (30, 6), "NVIDIA-H100-PCIE": (6, 1.5), "NVIDIA-H100-NVL": (4, 1.5),
    "NVIDIA-H200": (18, 12), "NVIDIA-H200-NVL": (4, 3), "NVIDIA-B100": (2, 1), "NVIDIA-B200": (8, 22),
    "NVIDIA-GB200": (4, 18), "NVIDIA-B300": (0, 8), "NVIDIA-GB300": (0, 8), "NVIDIA-A100": (12, 2),
    "NVIDIA-A800": (0.3, 0.1), "NVIDIA-H800-SXM": (0.3, 0.1), "NVIDIA-H800-PCIE": (0.2, 0.1),
    "NVIDIA-L40S": (9, 6), "NVIDIA-L4": (0.6, 0.5), "NVIDIA-H20": (0.5, 0.3), "NVIDIA-RTX-4090": (0.8, 0.5),
    "AMD-MI250X": (1, 0.3), "AMD-MI300X": (8, 5), "AMD-MI325X": (1, 4), "INTEL-GAUDI2": (1, 0.3),
    "INTEL-GAUDI3": (0.5, 2), "HUAWEI-ASCEND-910B": (0.04, 0.03), "HUAWEI-ASCEND-910C": (0.02, 0.04),
}
_SKU_DEFAULT_WEIGHT = (0.2, 0.2)
_CHINA_SKU = "NVIDIA-H20"

_EXPORTERS = [
    ("Northbridge Systems Inc.", 30), ("Cascadia Server Corp.", 18), ("Redwood Compute Inc.", 14),
    ("Lakeshore Electronics Distribution LLC", 10), ("Granite Peak Integration Inc.", 8),
    ("Silver Creek Technologies Inc.", 6), ("Bayview Hardware Export LLC", 5),
    ("Pioneer Rack Solutions Inc.", 4), ("Summit Ridge Supply Co.", 3), ("Atlantic Channel Partners LLC", 1),
    (None, 1),
]

_WORD_A = """Nimbus Aurora Helix Quanta Vertex Zenith Cobalt Stratus Orion Meridian Lumen Pinnacle Tessera
Kestrel Solace Arbor Cirrus Nexa Polaris Sable Tidal Vantage Argent Boreal Cascade Delphi Ember Fathom
Granite Harbor Indigo Juniper Keystone Lattice Northwind Onyx Paragon Quill Radiant Summit Trident Umbra
Vela Willow Xenon Yarrow Zephyr Altair Beacon Crescent Dynamo Equinox Falcon Gemini Halcyon Ionic Jadeite
Krypton Lyra Mistral Nova Obsidian Prism Rigel""".split()
_WORD_B = """Compute Data Cloud AI Digital Neural Quantum Silicon Tensor Vector Photon Cyber Info Logic Matrix
Signal Grid Hyper Deep Smart Core Fusion Pixel Binary Cognitive Edge Flux Orbit Sigma Stream Node Wave""".split()
_WORD_C = """Systems Technologies Solutions Networks Labs Holdings Industries Services Infrastructure Dynamics
Analytics Ventures Partners Group Works Research Semiconductor Electronics Computing Capital Innovations
Integration Platforms Engineering""".split()
_WORD_D = ["", " International", " Global", " Asia Pacific", " Worldwide"]
_STREETS = """Harbor Station Park Lake River Hill Market Garden Cedar Maple Oak Pine Elm Spring Bridge Mill
Church Castle Forest Meadow Ocean Sunset Valley Ridge Innovation Science Technology Enterprise Commerce
Industrial Gateway Central Airport Canal University""".split()
_STREET_TYPES = ["Road", "Street", "Avenue", "Boulevard", "Drive", "Lane", "Way", "Park"]

_LEGAL_FORMS = {
    "US": ["Inc.", "LLC", "Corp."], "CA": ["Inc.", "Ltd."], "GB": ["Ltd", "Limited", "PLC"],
    "IE": ["Limited", "DAC"], "DE": ["GmbH", "AG"], "AT": ["GmbH"], "CH": ["AG", "GmbH", "SA"],
    "JP": ["K.K.", "Co., Ltd."], "KR": ["Co., Ltd."], "TW": ["Co., Ltd.", "Corp."],
    "CN": ["Co., Ltd.", "Limited"], "HK": ["Limited", "Co., Limited"], "MO": ["Limited"],
    "IN": ["Pvt. Ltd.", "Private Limited"], "SG": ["Pte. Ltd."], "MY": ["Sdn. Bhd."],
    "AE": ["FZ-LLC", "FZE", "LLC"], "SA": ["Co.", "LLC"], "QA": ["W.L.L."], "KW": ["W.L.L."],
    "BH": ["W.L.L."], "OM": ["LLC"], "IL": ["Ltd."], "NL": ["B.V.", "N.V."], "BE": ["NV", "BV"],
    "LU": ["S.A.", "S.a r.l."], "FR": ["SAS", "S.A."], "ES": ["S.L.", "S.A."], "PT": ["Lda.", "S.A."],
    "IT": ["S.r.l.", "S.p.A."], "AU": ["Pty Ltd"], "NZ": ["Limited"], "BR": ["Ltda.", "S.A."],
    "MX": ["S.A. de C.V."], "AR": ["S.A.", "S.R.L."], "CL": ["SpA", "S.A."], "CO": ["S.A.S."],
    "PL": ["Sp. z o.o."], "CZ": ["s.r.o."], "RO": ["S.R.L."], "HU": ["Kft."], "GR": ["S.A."],
    "VN": ["JSC", "Co., Ltd."], "TH": ["Co., Ltd."], "ID": ["Tbk"], "PH": ["Inc."], "TR": ["A.S."],
    "SE": ["AB"], "FI": ["Oy"], "NO": ["AS"], "DK": ["A/S"], "ZA": ["(Pty) Ltd"], "PK": ["(Pvt.) Ltd."],
    "KZ": ["LLP"], "RU": ["LLC", "JSC", "OOO"], "BY": ["LLC", "JSC"], "IR": ["Co."], "EG": ["S.A.E."],
    "JO": ["LLC"], "KH": ["Co., Ltd."],
}
_DEFAULT_LEGAL_FORMS = ["Ltd.", "LLC"]

_CITIES = {
    "US": ["San Jose", "Austin", "Ashburn", "Seattle", "Columbus", "Phoenix"], "JP": ["Tokyo", "Osaka"],
    "GB": ["London", "Manchester", "Cambridge"], "DE": ["Frankfurt", "Munich", "Berlin"],
    "KR": ["Seoul", "Pangyo", "Busan"], "TW": ["Taipei", "Hsinchu", "Taichung"],
    "IN": ["Bengaluru", "Mumbai", "Hyderabad", "Chennai"], "SG": ["Singapore"],
    "AE": ["Dubai", "Abu Dhabi"], "SA": ["Riyadh", "Jeddah", "Dammam"],
    "MY": ["Kuala Lumpur", "Johor Bahru", "Cyberjaya"],
    "IL": ["Tel Aviv", "Haifa"], "NL": ["Amsterdam", "Eindhoven"], "FR": ["Paris", "Lyon"],
    "CA": ["Toronto", "Montreal", "Vancouver"], "AU": ["Sydney", "Melbourne"], "BR": ["Sao Paulo", "Campinas"],
    "MX": ["Monterrey", "Queretaro"], "PL": ["Warsaw", "Krakow"], "VN": ["Hanoi", "Ho Chi Minh City"],
    "TH": ["Bangkok"], "ID": ["Jakarta", "Batam"], "TR": ["Istanbul", "Ankara"], "CH": ["Zurich", "Geneva"],
    "SE": ["Stockholm"], "ES": ["Madrid", "Barcelona"], "IT": ["Milan", "Rome"], "FI": ["Helsinki"],
    "NO": ["Oslo"], "DK": ["Copenhagen"], "IE": ["Dublin"], "BE": ["Brussels", "Antwerp"], "AT": ["Vienna"],
    "NZ": ["Auckland"], "ZA": ["Johannesburg", "Cape Town"], "QA": ["Doha"], "KW": ["Kuwait City"],
    "PH": ["Manila"], "CL": ["Santiago"], "AR": ["Buenos Aires"], "CO": ["Bogota"], "PK": ["Karachi", "Lahore"],
    "KZ": ["Almaty", "Astana"], "GR": ["Athens"], "PT": ["Lisbon"], "CZ": ["Prague"], "RO": ["Bucharest"],
    "HU": ["Budapest"], "EG": ["Cairo"], "BH": ["Manama"], "OM": ["Muscat"], "JO": ["Amman"],
    "LU": ["Luxembourg"], "CN": ["Shenzhen", "Beijing", "Shanghai", "Hangzhou"], "HK": ["Kowloon", "Hong Kong"],
    "KH": ["Phnom Penh"], "RU": ["Moscow", "Saint Petersburg"], "MO": ["Macau"], "BY": ["Minsk"],
    "IR": ["Tehran"], "UA": ["Kyiv"],
}
_COUNTRY_DISPLAY = {
    "US": "USA", "GB": "United Kingdom", "KR": "South Korea", "TW": "Taiwan", "IR": "Iran", "RU": "Russia",
    "VN": "Vietnam", "TR": "Turkey", "MO": "Macau", "AE": "United Arab Emirates", "CZ": "Czech Republic",
    "KP": "North Korea", "SY": "Syria", "VE": "Venezuela", "BO": "Bolivia", "LA": "Laos", "MD": "Moldova",
}
# Hints for the destination of a restricted-party name: (regular expression, ISO code), first hit wins.
_LISTED_HINTS = [
    (r"hong kong|kowloon", "HK"), (r"maca[uo]", "MO"),
    (r"beijing|shanghai|shenzhen|chengdu|guangzhou|wuhan|xi'?an|tianjin|hangzhou|nanjing|harbin|changsha|"
     r"sichuan|guangdong|jiangsu|shaanxi|hunan|hubei|zhejiang|huawei|\bprc\b|\bcetc\b", "CN"),
    (r"moscow|petersburg|kazan|novosibirsk|yekaterinburg|ryazan|\btula\b|\bural|gazprom|rostec", "RU"),
    (r"crimea", "UA"), (r"tehran|isfahan|shiraz|\biranian\b", "IR"), (r"minsk|belarus|\bkgb\b", "BY"),
    (r"dubai|sharjah|abu dhabi|ajman|\bfze\b|\bfzc\b|\bfzco\b|fz-llc", "AE"),
    (r"karachi|lahore|islamabad|rawalpindi", "PK"), (r"jordanian", "JO"),
    (r"\b(?:ooo|oao|zao|pjsc|ojsc|cjsc|jsc|npo|npp)\b|federal|scientific-production|research production|"
     r"design office|zavod|\bplant\b", "RU"), (r"co\.,? ltd", "CN"),
]
_LISTED_FALLBACK = {"CN": 0.4, "RU": 0.2, "HK": 0.12, "AE": 0.1, "IR": 0.06, "TR": 0.04, "SG": 0.04, "MY": 0.04}

_UNKNOWN_COUNTRIES = ("ZZ", "UK")
_UNKNOWN_SKUS = ("NVIDIA-H100", "ACME-TPU-9")
_BAD_QUANTITIES = (0, -3, 2.5, "abc")
_MISSING_FIELDS = ("consignee_name", "sku", "shipment_id")


# ------------------------------------------------------------------------------------- string helpers
def _compose(parts: Sequence[bytes | tuple[np.ndarray, int]], n: int,
             valid: np.ndarray | None = None) -> pa.StringArray:
    """Fixed-width strings from literal byte strings and zero-padded decimal numbers.

    Parameters
    ----------
    parts : sequence
        ``bytes`` literals and ``(numbers, digits)`` pairs (non-negative integers, ``digits`` wide).
    n : int
        Number of strings.
    valid : numpy.ndarray of bool, optional
        Rows that are not null (all when omitted).

    Returns
    -------
    pyarrow.StringArray
    """
    width = sum(len(p) if isinstance(p, bytes) else p[1] for p in parts)
    buf = np.empty((n, width), dtype=np.uint8)
    at = 0
    for part in parts:
        if isinstance(part, bytes):
            buf[:, at:at + len(part)] = np.frombuffer(part, dtype=np.uint8)
            at += len(part)
        else:
            numbers, digits = part
            x = np.asarray(numbers, dtype=np.int64).copy()
            for pos in range(at + digits - 1, at - 1, -1):
                x, digit = np.divmod(x, 10)
                buf[:, pos] = digit + 48
            at += digits
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    bitmap, nulls = None, 0
    if valid is not None:
        nulls = int(n - np.count_nonzero(valid))
        if nulls:
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf), bitmap, nulls)


def _join(*arrays) -> pa.Array:
    """Element-wise concatenation of string arrays and scalars (nulls propagate)."""
    return pc.binary_join_element_wise(*arrays, "")


def _json_fragments(name: str, values: pa.Array, first: bool = False) -> pa.Array:
    """``,"name":<json value>`` per distinct pool value (``null`` for nulls)."""
    lead = "{" if first else ","
    return pa.array([f'{lead}"{name}":' + json.dumps(v, ensure_ascii=False) for v in values.to_pylist()],
                    type=pa.string())


def _string_data(lines: pa.Array) -> memoryview:
    """The contiguous UTF-8 bytes of a non-null string array."""
    lines = lines.cast(pa.string()) if not pa.types.is_string(lines.type) else lines
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    return memoryview(data)[offsets[0]:offsets[-1]] if len(lines) else memoryview(b"")


# --------------------------------------------------------------------------------------------- plan
@dataclass
class _Plan:
    """Everything shared by the blocks of one generation run (small: O(pool + days))."""

    rows: int
    seed: int
    start: dt.date
    day_ends: np.ndarray          # cumulative rows per day (int64), over shipped then pending days
    shipped_days: int
    day_period: np.ndarray        # SKU period per day
    date_text: pa.Array           # "YYYY-MM-DD" per day
    start_days: int               # start as days since 1970-01-01
    dest_cdf: np.ndarray
    segment_start: np.ndarray     # first pool index of each destination segment
    segment_end: np.ndarray
    segment_cdf: np.ndarray       # within-segment cdf, offset by segment number
    n_regular: int
    n_listed: int
    pool_serial: np.ndarray
    pool_china: np.ndarray
    pool_tier1: np.ndarray        # destination and HQ (if any) in Tier 1: shipments record AIA
    pool: dict                    # column -> pa.Array over the consignee pool
    sku_names: pa.Array
    sku_cdf: np.ndarray           # per-period cdf, offset by period number
    china_sku: int
    exporters: pa.Array
    exporter_cdf: np.ndarray
    bad_after: np.ndarray         # sorted global valid row after which bad row j is inserted
    bad_kinds: np.ndarray
    id_offset: int = 0            # number of the first row's shipment_id


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


def _day_counts(rng: np.random.Generator, rows: int, start: dt.date, end: dt.date,
                pending_days: int, pending_share: float = PENDING_SHARE) -> tuple[np.ndarray, int]:
    """Rows per calendar day: growth trend, weekday and month-end effects, noise; then a pending tail."""
    shipped_days = (end - start).days + 1
    pending_rows = int(round(rows * pending_share)) if pending_days > 0 else 0
    shipped_rows = rows - pending_rows
    offsets = np.arange(shipped_days + pending_days)
    dates = np.datetime64(start.isoformat(), "D") + offsets
    weekday = (dates.astype(np.int64) + 3) % 7          # 0 = Monday (1970-01-01 was a Thursday)
    weekday_factor = np.where(weekday == 5, 0.35, np.where(weekday == 6, 0.2, 1.0))
    next_month = (dates + 3).astype("datetime64[M]") != dates.astype("datetime64[M]")
    noise = rng.lognormal(0.0, 0.15, size=len(offsets))
    trend = 1.0 + 1.5 * offsets[:shipped_days] / max(1, shipped_days - 1)
    shipped = (trend * weekday_factor[:shipped_days] * np.where(next_month[:shipped_days], 1.3, 1.0)
               * noise[:shipped_days])
    counts = rng.multinomial(shipped_rows, shipped / shipped.sum())
    if pending_days > 0:
        tail = np.exp(-np.arange(pending_days) / 20.0) * weekday_factor[shipped_days:] * noise[shipped_days:]
        counts = np.concatenate([counts, rng.multinomial(pending_rows, tail / tail.sum())])
    return counts.astype(np.int64), shipped_days


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
    pool = {
        "consignee_id": _compose([b"C-", (serial, 7)], total, has_id),
        "consignee_name": pa.concat_arrays([name.cast(pa.string()), pa.array(listed, type=pa.string())]),
        "consignee_address": pa.concat_arrays([address.cast(pa.string()),
                                               pa.array(listed_address, type=pa.string())]),
        "destination_country": pa.concat_arrays([dest, pa.array(listed_dest, type=pa.string())]),
        "consignee_hq_country": pa.array(list(hq) + listed_hq, type=pa.string()),
    }
    china = np.isin(np.array(list(dest_obj) + listed_dest, dtype=object), _CHINA_LIKE)
    return {"pool": pool, "serial": serial, "china": china, "segment_start": segment_start,
            "segment_end": segment_end, "segment_cdf": segment_cdf, "n_regular": n_regular, "n_listed": n_listed}


def _sku_table(periods: int) -> tuple[pa.Array, np.ndarray, int]:
    """Catalog SKUs, their per-period cdf (offset by period) and the index of the China-market SKU."""
    skus = load_catalog()["sku"].tolist()
    w0 = np.array([_SKU_WEIGHTS.get(s, _SKU_DEFAULT_WEIGHT)[0] for s in skus], dtype=np.float64)
    w1 = np.array([_SKU_WEIGHTS.get(s, _SKU_DEFAULT_WEIGHT)[1] for s in skus], dtype=np.float64)
    t = np.linspace(0.0, 1.0, periods)[:, None]
    weights = w0 + (w1 - w0) * t
    cdf = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True) + np.arange(periods)[:, None]
    china = skus.index(_CHINA_SKU) if _CHINA_SKU in skus else -1
    return pa.array(skus, type=pa.string()), cdf.ravel(), china


def _make_plan(rows: int, seed: int, bad_rows: int, listed_names: Sequence[str], start: dt.date,
               end: dt.date, pending_days: int, *, known: dict | None = None) -> _Plan:
    """Pools, day table and bad-row positions for one run; independent of ``chunk_rows``.

    ``known`` (from :func:`_ledger_facts`) continues an existing ledger: its consignee pool and
    destination shares, ids after its own, the SKU mix of the end of the drift, mostly pending rows.
    """
    if known is None:
        dest_codes, dest_weights = _destination_weights()
        size = min(200_000, max(50, rows // 200))
        pool = _build_pool(np.random.default_rng([seed, _POOL]), size, listed_names, dest_codes, dest_weights)
        pending_share, id_offset = PENDING_SHARE, 0
    else:
        dest_weights, pool = known["dest_weights"], known["pool"]
        pending_share, id_offset = 1.0 - NEXT_SHIPPED_SHARE, known["next_id"]
    counts, shipped_days = _day_counts(np.random.default_rng([seed, _DAYS]), rows, start, end, pending_days,
                                       pending_share)
    total_days = len(counts)
    day_period = np.minimum(np.arange(total_days) * SKU_PERIODS // max(1, shipped_days), SKU_PERIODS - 1)
    if known is not None:
        day_period[:] = SKU_PERIODS - 1
    date_text = pa.array([(start + dt.timedelta(days=int(i))).isoformat() for i in range(total_days)],
                         type=pa.string())
    sku_names, sku_cdf, china_sku = _sku_table(SKU_PERIODS)
    exporter_weight = np.array([w for _, w in _EXPORTERS], dtype=np.float64)
    bad_rng = np.random.default_rng([seed, _BAD])
    if bad_rows and rows < 1:
        raise ValueError("bad_rows needs at least one valid row to attach to")
    if bad_rows <= rows:
        bad_after = np.sort(bad_rng.choice(rows, size=bad_rows, replace=False)) if bad_rows else np.zeros(0, np.int64)
    else:
        bad_after = np.sort(bad_rng.integers(0, rows, size=bad_rows))
    return _Plan(
        rows=rows, seed=seed, start=start, day_ends=np.cumsum(counts), shipped_days=shipped_days,
        day_period=day_period, date_text=date_text, start_days=(start - dt.date(1970, 1, 1)).days,
        dest_cdf=np.cumsum(dest_weights) / dest_weights.sum(), segment_start=pool["segment_start"],
        segment_end=pool["segment_end"], segment_cdf=pool["segment_cdf"], n_regular=pool["n_regular"],
        n_listed=pool["n_listed"], pool_serial=pool["serial"], pool_china=pool["china"], pool_tier1=_tier1_consignees(pool["pool"]),
        pool=pool["pool"],
        sku_names=sku_names, sku_cdf=sku_cdf, china_sku=china_sku,
        exporters=pa.array([name for name, _ in _EXPORTERS], type=pa.string()),
        exporter_cdf=np.cumsum(exporter_weight) / exporter_weight.sum(),
        bad_after=bad_after.astype(np.int64), bad_kinds=np.arange(bad_rows) % len(BAD_KINDS), id_offset=id_offset,
    )


def _tier1_consignees(pool: dict) -> np.ndarray:
    """Consignees whose destination, and HQ if given, are Tier 1 of the IFR (they record AIA)."""
    from pipeline.policy import load_policy

    tier1 = set(load_policy("ai-diffusion-2025").get("tiers.tier1"))
    destination = pool["destination_country"].to_pylist()
    headquarters = pool["consignee_hq_country"].to_pylist()
    return np.array([d in tier1 and (h is None or h in tier1) for d, h in zip(destination, headquarters)], dtype=bool)


# -------------------------------------------------------------------------------------------- blocks
def _pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-cdf sampling: index of the category of each uniform draw ``u``."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def _block_codes(plan: _Plan, block: int) -> dict[str, np.ndarray]:
    """Integer codes for the valid rows of one block, from the block's own random stream."""
    first = block * BLOCK_ROWS
    n = min(BLOCK_ROWS, plan.rows - first)
    rng = np.random.default_rng([plan.seed, _BLOCK, block])
    row = np.arange(first, first + n, dtype=np.int64) + plan.id_offset  # the shipment_id number
    # Day of each row: rows are spread over days by the global table of rows per day.
    lo, hi = np.searchsorted(plan.day_ends, [first, first + n - 1], side="right") if n else (0, 0)
    ends = np.minimum(plan.day_ends[lo:hi + 1], first + n) - first
    day = np.repeat(np.arange(lo, hi + 1, dtype=np.int32), np.diff(ends, prepend=0))

    # Consignee: destination by weight, then a skewed pick within the destination's segment.
    dest = _pick(plan.dest_cdf, rng.random(n))
    within = np.searchsorted(plan.segment_cdf, dest + rng.random(n), side="right")
    consignee = np.clip(within, plan.segment_start[dest], plan.segment_end[dest] - 1)
    listed_u, listed_pick = rng.random(n), rng.integers(0, max(1, plan.n_listed), size=n)
    if plan.n_listed:
        consignee = np.where(listed_u < LISTED_ROW_SHARE, plan.n_regular + listed_pick, consignee)

    # SKU: period mix; China-like destinations mostly get the China-market part.
    period = plan.day_period[day]
    n_sku = len(plan.sku_names)
    sku = np.searchsorted(plan.sku_cdf, period + rng.random(n), side="right") - period * n_sku
    sku = np.clip(sku, 0, n_sku - 1)
    china_u = rng.random(n)
    if plan.china_sku >= 0:
        sku = np.where(plan.pool_china[consignee] & (china_u < 0.55), plan.china_sku, sku)

    # Quantity: servers of 8 (heavy-tailed), a few loose units, some odd lots.
    kind_u = rng.random(n)
    servers = np.minimum(rng.zipf(1.8, size=n), MAX_QUANTITY // 8)
    loose = rng.integers(1, 9, size=n)
    odd = np.minimum(rng.zipf(1.6, size=n), MAX_QUANTITY)
    quantity = np.where(kind_u < 0.82, servers * 8, np.where(kind_u < 0.92, loose, odd)).astype(np.int64)

    exporter = _pick(plan.exporter_cdf, rng.random(n))
    has_license = rng.random(n) < LICENSE_SHARE
    has_veu = rng.random(n) < VEU_SHARE
    year = (np.datetime64(plan.start.isoformat(), "D") + day).astype("datetime64[Y]").astype(np.int64) + 1970
    # What the exporter recorded for shipped lines: its license, VEU, AIA for Tier-1 consignees,
    # otherwise LPP; a few lines claim NLR. Drawn last so the other columns keep their streams.
    recorded = np.where(has_license, RECORDED.index("LICENSE"), np.where(
        has_veu, RECORDED.index("VEU"), np.where(plan.pool_tier1[consignee], RECORDED.index("AIA"),
                                                 RECORDED.index("LPP"))))
    recorded = np.where(rng.random(n) < RECORDED_NLR_SHARE, RECORDED.index("NLR"), recorded)
    recorded = np.where(day >= plan.shipped_days, 0, recorded)
    return {"row": row, "day": day, "consignee": consignee, "sku": sku, "quantity": quantity,
            "exporter": exporter, "license": has_license, "veu": has_veu, "year": year, "recorded": recorded}


def _block_table(plan: _Plan, codes: dict[str, np.ndarray], text: bool) -> pa.Table:
    """Arrow table of the valid rows of a block; ``text`` writes ship_date and quantity as strings."""
    n = len(codes["row"])
    day = pa.array(codes["day"])
    consignee = pa.array(codes["consignee"])
    pending = codes["day"] >= plan.shipped_days
    if text:
        ship_date = plan.date_text.take(day)
        quantity = pa.array(codes["quantity"]).cast(pa.string())
    else:
        epoch_days = codes["day"] + np.int32(plan.start_days)
        ship_date = pa.Array.from_buffers(pa.date32(), n, [None, pa.py_buffer(epoch_days)])
        quantity = pa.array(codes["quantity"], type=pa.int64())
    serial = plan.pool_serial[codes["consignee"]]
    columns = {
        "shipment_id": _compose([b"SHP-", (codes["row"], 12)], n),
        "ship_date": ship_date,
        "status": pa.array(["shipped", "pending"], type=pa.string()).take(pa.array(pending.astype(np.int8))),
        "exporter": plan.exporters.take(pa.array(codes["exporter"])),
        "consignee_id": plan.pool["consignee_id"].take(consignee),
        "consignee_name": plan.pool["consignee_name"].take(consignee),
        "consignee_address": plan.pool["consignee_address"].take(consignee),
        "destination_country": plan.pool["destination_country"].take(consignee),
        "consignee_hq_country": plan.pool["consignee_hq_country"].take(consignee),
        "sku": plan.sku_names.take(pa.array(codes["sku"])),
        "quantity": quantity,
        "license_id": _compose([b"LIC-", (codes["year"] % 100, 2), b"-", (serial, 7)], n, codes["license"]),
        "veu_id": _compose([b"VEU-", (serial, 7)], n, codes["veu"]),
        "recorded_authorization": pa.array(RECORDED, pa.string()).take(pa.array(codes["recorded"])),
    }
    return pa.table(columns)


class _JsonPools:
    """Per-value JSON fragments, so JSON Lines are built by indexing, not by per-row encoding."""

    def __init__(self, plan: _Plan):
        self.date = _json_fragments("ship_date", plan.date_text)
        self.status = _json_fragments("status", pa.array(["shipped", "pending"]))
        self.exporter = _json_fragments("exporter", plan.exporters)
        self.pool = {name: _json_fragments(name, values) for name, values in plan.pool.items()}
        self.sku = _json_fragments("sku", plan.sku_names)
        self.quantity = pa.array([f',"quantity":{q}' for q in range(MAX_QUANTITY + 1)], type=pa.string())


def _block_lines(plan: _Plan, json_pools: _JsonPools, codes: dict[str, np.ndarray]) -> pa.Array:
    """JSON Lines (with newlines) for the valid rows of a block."""
    n = len(codes["row"])
    consignee = pa.array(codes["consignee"])
    serial = plan.pool_serial[codes["consignee"]]
    license_id = pc.if_else(pa.array(codes["license"]),
                            _compose([b',"license_id":"LIC-', (codes["year"] % 100, 2), b"-", (serial, 7), b'"'], n),
                            ',"license_id":null')
    veu_id = pc.if_else(pa.array(codes["veu"]), _compose([b',"veu_id":"VEU-', (serial, 7), b'"'], n), ',"veu_id":null')
    pending = pa.array((codes["day"] >= plan.shipped_days).astype(np.int8))
    return _join(
        _compose([b'{"shipment_id":"SHP-', (codes["row"], 12), b'"'], n),
        json_pools.date.take(pa.array(codes["day"])),
        json_pools.status.take(pending),
        json_pools.exporter.take(pa.array(codes["exporter"])),
        *(json_pools.pool[name].take(consignee) for name in (
            "consignee_id", "consignee_name", "consignee_address", "destination_country", "consignee_hq_country")),
        json_pools.sku.take(pa.array(codes["sku"])),
        json_pools.quantity.take(pa.array(codes["quantity"])),
        license_id, veu_id,
        pa.array([',"recorded_authorization":' + (f'"{r}"' if r else "null") + "}\n" for r in RECORDED],
                 pa.string()).take(pa.array(codes["recorded"])),
    )


def _bad_record(base: dict, kind: str, variant: int, bad_id: str, text: bool) -> dict:
    """One malformed row derived from valid row ``base`` (values as Python objects)."""
    row = dict(base)
    if kind not in ("conflicting_duplicate", "exact_duplicate"):
        row["shipment_id"] = bad_id
    if kind == "missing_field":
        row[_MISSING_FIELDS[variant % len(_MISSING_FIELDS)]] = None
    elif kind == "bad_date":
        day = dt.date.fromisoformat(str(base["ship_date"]))
        row["ship_date"] = (day.strftime("%d/%m/%Y"), f"{day.year}-02-30", "TBD")[variant % 3]
    elif kind == "unknown_country":
        row["destination_country"] = _UNKNOWN_COUNTRIES[variant % len(_UNKNOWN_COUNTRIES)]
    elif kind == "bad_quantity":
        row["quantity"] = _BAD_QUANTITIES[variant % len(_BAD_QUANTITIES)]
    elif kind == "unknown_sku":
        row["sku"] = _UNKNOWN_SKUS[variant % len(_UNKNOWN_SKUS)]
    elif kind == "conflicting_duplicate":
        row["quantity"] = int(base["quantity"]) + 8
    if text:
        row = {k: (None if v is None else str(v)) for k, v in row.items()}
    return row


def _bad_rows_for_block(plan: _Plan, block: int, table: pa.Table, codes: dict[str, np.ndarray],
                        text: bool) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """Malformed rows attached to this block: local insert positions, records, global bad indices."""
    first = block * BLOCK_ROWS
    lo, hi = np.searchsorted(plan.bad_after, [first, first + len(codes["row"])])
    if lo == hi:
        return np.zeros(0, np.int64), [], np.zeros(0, np.int64)
    local = plan.bad_after[lo:hi] - first
    bases = table.take(pa.array(local)).to_pylist()
    records = []
    for j, k, base in zip(range(lo, hi), local, bases):
        base["ship_date"] = str(base["ship_date"])
        base["quantity"] = int(codes["quantity"][k])
        kind = BAD_KINDS[plan.bad_kinds[j]]
        bad_id = f"SHP-{plan.id_offset + first + int(k):012d}-B{j:09d}"
        records.append(_bad_record(base, kind, j // len(BAD_KINDS), bad_id, text))
    return local, records, np.arange(lo, hi)


def _interleave_order(n: int, local: np.ndarray) -> np.ndarray:
    """Take order for ``[valid rows; bad rows]`` that puts bad row ``i`` right after valid row ``local[i]``."""
    keys = np.concatenate([np.arange(n, dtype=np.float64), local.astype(np.float64) + 0.5])
    return np.argsort(keys, kind="stable")


def _with_bad_rows(plan: _Plan, block: int, part, table: pa.Table, codes: dict[str, np.ndarray], kind: str,
                   schema: pa.Schema):
    """``part`` (a table, or JSON lines) with this block's malformed rows inserted in place."""
    jsonl = kind == "jsonl"
    local, records, bad_index = _bad_rows_for_block(plan, block, table, codes, text=not jsonl)
    if not records:
        return part
    if jsonl:
        lines = [part[int(k)].as_py() if BAD_KINDS[plan.bad_kinds[j]] == "exact_duplicate"
                 else json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
                 for record, j, k in zip(records, bad_index, local)]
        combined = pa.concat_arrays([part, pa.array(lines, type=pa.string())])
    else:
        combined = pa.concat_tables([part, pa.Table.from_pylist(records, schema=schema)])
    return combined.take(pa.array(_interleave_order(len(codes["row"]), local)))


# -------------------------------------------------------------------------------------------- writers
def _text_schema() -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in COLUMNS])


def _typed_schema() -> pa.Schema:
    return pa.schema([(c, pa.date32() if c == "ship_date" else pa.int64() if c == "quantity" else pa.string())
                      for c in COLUMNS])


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    name = path.name.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    return "parquet"


def generate_ledger(path, rows: int, *, seed: int = 0, bad_rows: int = 0, chunk_rows: int = 1_000_000,
                    listed_names: Sequence[str] = (), start: dt.date = dt.date(2025, 1, 1),
                    end: dt.date = dt.date(2027, 12, 31), pending_days: int = 45, fmt: str | None = None,
                    progress: Callable[[int], None] | None = None) -> dict:
    """Write a deterministic synthetic shipment ledger.

    Parameters
    ----------
    path : str or path-like
        File to write; replaced if it exists (written to a temporary name, then renamed).
    rows : int
        Valid rows to generate.
    seed : int, default 0
        Non-negative random seed; the same arguments give byte-identical files.
    bad_rows : int, default 0
        Malformed rows to mix in, cycling through :data:`BAD_KINDS`: missing required field
        (``consignee_name``, ``sku`` or ``shipment_id`` null), unparseable date, unknown country
        code, quantity not a positive integer (0, -3, "2.5", "abc"), unknown SKU, duplicate
        ``shipment_id`` with different content, and exact duplicate row. Each is placed right
        after a distinct valid row (while ``bad_rows <= rows``).
    chunk_rows : int, default 1_000_000
        Rows per written chunk: the Parquet row-group size and the progress step. The content of
        the file does not depend on it.
    listed_names : sequence of str or of (str, str), default ()
        Real restricted-party names, optionally paired with an ISO country code. A few
        consignees (about 0.5 % of the pool, at least ``min(5, len(names))``, each name used
        once) take these names and receive about 0.15 % of the rows. Their destination is the
        given code, else one inferred from place names and legal forms in the name (``Moscow``,
        ``OOO``, ``Shenzhen``, ``FZE``, country names ...), else a draw weighted towards CN, RU,
        HK and AE.
    start, end : datetime.date
        Range of ship dates of ``shipped`` rows.
    pending_days : int, default 45
        Days after ``end`` holding the ``pending`` rows (about 2 % of rows); 0 for none.
    fmt : {"parquet", "csv", "jsonl"}, optional
        Output format; by default from the suffix (``.csv``, ``.jsonl``/``.ndjson``), else Parquet.
    progress : callable, optional
        Called with the number of rows written so far (valid and bad) after each chunk.

    Returns
    -------
    dict
        ``path``, ``format``, ``rows`` (valid rows), ``bad_rows``, ``rows_written``,
        ``bad_by_kind`` (kind -> count), ``expected_quarantined`` (bad rows plus the originals
        of conflicting duplicates, which a strict reader rejects too), ``shipped``, ``pending``,
        ``consignees``, ``listed_consignees``, ``columns``, ``column_types``, ``chunks``,
        ``seconds``.

    Raises
    ------
    ValueError
        Negative counts or seed, ``start`` after ``end``, unknown format, or bad rows without
        valid rows.

    Notes
    -----
    Column types: Parquet has ``ship_date`` as date32 and ``quantity`` as int64, other columns as
    nullable strings; with ``bad_rows > 0`` ``ship_date`` and ``quantity`` are strings too (ISO
    dates) so that malformed values can be stored. CSV is all text with empty fields for nulls;
    JSON Lines writes every key, ``null`` for empty fields and ``quantity`` as a number (the bad
    values 2.5 and "abc" as a float and a string).

    Valid rows have ids ``SHP-`` + 12 digits, their global row number, and are identical
    whatever ``bad_rows`` is. Malformed rows other than duplicates get
    ``SHP-<row>-B<j>``, which sorts right after the row they follow.

    Examples
    --------
    >>> import tempfile, pyarrow.parquet as pq
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     stats = generate_ledger(f"{folder}/l.parquet", 1000, seed=1, bad_rows=7)
    ...     table = pq.read_table(stats["path"])
    >>> stats["rows_written"], table.num_rows, stats["bad_by_kind"]["exact_duplicate"]
    (1007, 1007, 1)
    """
    started = time.perf_counter()
    path = Path(path)
    rows, bad_rows, chunk_rows, pending_days = int(rows), int(bad_rows), int(chunk_rows), int(pending_days)
    _check_counts(rows, bad_rows, chunk_rows, pending_days, seed)
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    kind = _format_of(path, fmt)
    plan = _make_plan(rows, int(seed), bad_rows, listed_names, start, end, pending_days)
    return _write_plan(plan, path, kind, bad_rows, chunk_rows, progress, started)


def _check_counts(rows: int, bad_rows: int, chunk_rows: int, pending_days: int, seed: int) -> None:
    if rows < 0 or bad_rows < 0 or pending_days < 0 or seed < 0:
        raise ValueError("rows, bad_rows, pending_days and seed must be non-negative")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")


def _write_plan(plan: _Plan, path: Path, kind: str, bad_rows: int, chunk_rows: int,
                progress: Callable[[int], None] | None, started: float) -> dict:
    """Write the rows of ``plan`` to ``path`` (via a temporary file) and return the run's statistics."""
    rows = plan.rows
    text = bad_rows > 0 or kind == "csv"
    schema = _text_schema() if (text and kind != "jsonl") else _typed_schema()
    json_pools = _JsonPools(plan) if kind == "jsonl" else None

    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    written, chunks = 0, 0
    buffered: list = []
    buffered_rows = 0

    if kind == "parquet":
        # Dictionary pages large enough for the consignee pool (~50k names at 10M rows): with the
        # 1 MiB default the writer falls back to plain strings, doubling file size and read time.
        writer = pq.ParquetWriter(tmp, schema, dictionary_pagesize_limit=DICTIONARY_PAGE_BYTES)
        close = writer.close
    elif kind == "csv":
        writer = pacsv.CSVWriter(tmp, schema)
        close = writer.close
    else:
        handle = open(tmp, "wb")
        close = handle.close

    def write(pieces: list, count: int) -> int:
        if kind == "parquet":
            writer.write_table(pa.concat_tables(pieces), row_group_size=count)
        elif kind == "csv":
            for piece in pieces:
                writer.write_table(piece)
        else:
            for piece in pieces:
                handle.write(_string_data(piece))
        return count

    # One background thread writes chunk i while the main thread generates chunk i + 1
    # (Arrow and NumPy release the GIL); at most one chunk is in flight.
    executor = ThreadPoolExecutor(max_workers=1)
    in_flight = None

    def settle() -> None:
        nonlocal in_flight, written, chunks
        if in_flight is not None:
            done, in_flight = in_flight, None
            written += done.result()
            chunks += 1
            if progress is not None:
                progress(written)

    def flush(count: int) -> None:
        """Hand the first ``count`` buffered rows to the writer as one chunk (one Parquet row group)."""
        nonlocal buffered_rows, in_flight
        pieces, need = [], count
        while need:
            head = buffered[0]
            if len(head) <= need:
                pieces.append(buffered.pop(0))
                need -= len(head)
            else:
                pieces.append(head.slice(0, need))
                buffered[0] = head.slice(need)
                need = 0
        buffered_rows -= count
        settle()
        in_flight = executor.submit(write, pieces, count)

    try:
        n_blocks = -(-rows // BLOCK_ROWS)
        for block in range(n_blocks):
            codes = _block_codes(plan, block)
            has_bad = bool(len(plan.bad_after))
            table = _block_table(plan, codes, text and kind != "jsonl") if kind != "jsonl" or has_bad else None
            part = _block_lines(plan, json_pools, codes) if kind == "jsonl" else table
            if has_bad:
                part = _with_bad_rows(plan, block, part, table, codes, kind, schema)
            buffered.append(part)
            buffered_rows += len(part)
            while buffered_rows >= chunk_rows:
                flush(chunk_rows)
        if buffered_rows:
            flush(buffered_rows)
        settle()
        if kind == "parquet" and chunks == 0:
            writer.write_table(schema.empty_table())
    except BaseException:
        if in_flight is not None:
            in_flight.exception()
        executor.shutdown()
        close()
        tmp.unlink(missing_ok=True)
        raise
    executor.shutdown()
    close()
    os.replace(tmp, path)

    counts = np.bincount(plan.bad_kinds, minlength=len(BAD_KINDS))
    bad_by_kind = {name: int(count) for name, count in zip(BAD_KINDS, counts)}
    pending = int(plan.day_ends[-1] - plan.day_ends[plan.shipped_days - 1]) if rows else 0
    return {
        "path": str(path), "format": kind, "rows": rows, "bad_rows": bad_rows, "rows_written": rows + bad_rows,
        "bad_by_kind": bad_by_kind,
        "expected_quarantined": bad_rows + bad_by_kind["conflicting_duplicate"],
        "shipped": rows - pending, "pending": pending,
        "consignees": plan.n_regular + plan.n_listed, "listed_consignees": plan.n_listed,
        "columns": list(COLUMNS),
        "column_types": {f.name: str(f.type) for f in schema} if kind != "jsonl" else None,
        "chunks": chunks, "seconds": round(time.perf_counter() - started, 3),
    }


# ----------------------------------------------------------------------------- continuing a ledger
def _ledger_facts(after: Path) -> dict:
    """What continuing ``after`` needs: its last date, the next free id number, its consignees.

    The consignee pool is the ledger's valid rows' distinct (destination, name, id, HQ), each with
    its row count as weight (destinations weighted by their rows), addresses as first seen.
    """
    from pipeline.ingest import read_ledger_file, read_ledgers

    ledger = read_ledgers([after])  # LedgerReadError for a missing or unreadable file
    valid = ledger.rows
    if valid.num_rows == 0:
        raise ValueError(f"{after}: no valid rows to continue")
    last = pc.max(valid.column("ship_date")).as_py()
    ids = pa.chunked_array(list(valid.column("shipment_id").chunks) + list(
        pc.utf8_trim_whitespace(ledger.quarantine.column("shipment_id").cast(pa.string())).chunks), pa.string())
    ids = pc.drop_null(ids)
    numbered = ids.filter(pc.match_substring_regex(ids, ID_NUMBER))
    top = pc.max(pc.cast(pc.utf8_slice_codeunits(numbered, 4, 16), pa.int64())).as_py() if len(numbered) else None
    next_id = 0 if top is None else top + 1

    keys = ["destination_country", "consignee_name", "consignee_id", "consignee_hq_country"]
    groups = pa.table({k: valid.column(k).cast(pa.string()) for k in keys}).group_by(
        keys, use_threads=False).aggregate([([], "count_all")])
    groups = groups.sort_by([("destination_country", "ascending"), ("count_all", "descending"),
                             ("consignee_name", "ascending"), ("consignee_id", "ascending"),
                             ("consignee_hq_country", "ascending")])
    count = groups.column("count_all").to_numpy().astype(np.float64)
    dest_codes, dest_index = np.unique(groups.column("destination_country").to_numpy(zero_copy_only=False),
                                       return_inverse=True)
    per_dest = np.bincount(dest_index, minlength=len(dest_codes))
    dest_rows = np.bincount(dest_index, weights=count, minlength=len(dest_codes))
    segment_end = np.cumsum(per_dest)
    segment_start = segment_end - per_dest
    cumulative = np.cumsum(count)
    before = np.concatenate([[0.0], cumulative[segment_end - 1]])
    segment_cdf = (cumulative - before[dest_index]) / np.diff(before)[dest_index] + dest_index

    names = groups.column("consignee_name").to_pylist()
    addresses = _first_addresses(after, read_ledger_file)
    pool = {
        "consignee_id": groups.column("consignee_id").combine_chunks(),
        "consignee_name": groups.column("consignee_name").combine_chunks(),
        "consignee_address": pa.array([addresses.get((name, code)) for name, code in
                                       zip(names, dest_codes[dest_index])], pa.string()),
        "destination_country": groups.column("destination_country").combine_chunks(),
        "consignee_hq_country": groups.column("consignee_hq_country").combine_chunks(),
    }
    digits = [m.group(1) if (m := re.fullmatch(r"C-(\d{7})", cid or "")) else None
              for cid in groups.column("consignee_id").to_pylist()]
    serial = np.array([int(d) if d else 1_000_000 + i % 9_000_000 for i, d in enumerate(digits)], np.int64)
    return {
        "last_date": last, "next_id": next_id, "dest_weights": dest_rows / dest_rows.sum(),
        "pool": {"pool": pool, "serial": serial, "china": np.isin(dest_codes[dest_index], _CHINA_LIKE),
                 "segment_start": segment_start, "segment_end": segment_end, "segment_cdf": segment_cdf,
                 "n_regular": len(names), "n_listed": 0},
    }


def _first_addresses(path: Path, read_ledger_file) -> dict:
    """``(consignee_name, destination_country)`` -> the first address given for them (names trimmed)."""
    if path.name.lower().endswith((".parquet", ".pq")):
        table = pq.read_table(path, columns=[c for c in ("consignee_name", "destination_country", "consignee_address")
                                             if c in pq.read_schema(path).names])
    else:
        table = read_ledger_file(path).table
    if "consignee_address" not in table.column_names:
        return {}
    text = {name: pc.utf8_trim_whitespace(table.column(name).cast(pa.string()))
            for name in ("consignee_name", "destination_country", "consignee_address")}
    text["destination_country"] = pc.utf8_upper(text["destination_country"])
    first = pa.table(text).group_by(["consignee_name", "destination_country"], use_threads=False).aggregate(
        [("consignee_address", "first")])
    return {(name, code): address for name, code, address in zip(
        *(first.column(c).to_pylist() for c in ("consignee_name", "destination_country", "consignee_address_first")))}


def generate_next(path, after, rows: int, *, seed: int = 0, bad_rows: int = 0, days: int = 1,
                  pending_days: int = 14, chunk_rows: int = 1_000_000, fmt: str | None = None,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Write the next night of an existing ledger: later dates, new ids, the same consignees.

    Parameters
    ----------
    path : str or path-like
        File to write, as in :func:`generate_ledger`.
    after : str or path-like
        The ledger to continue (Parquet, CSV or JSON Lines), e.g. the history already in a lake.
    rows : int
        Valid rows to generate.
    seed : int, default 0
    bad_rows : int, default 0
        Malformed rows to mix in, as in :func:`generate_ledger`.
    days : int, default 1
        Days after the last ``ship_date`` of ``after`` holding the ``shipped`` rows (about
        :data:`NEXT_SHIPPED_SHARE` of them).
    pending_days : int, default 14
        Days after those holding the ``pending`` rows (the rest); 0 makes every row shipped.
    chunk_rows, fmt, progress
        As in :func:`generate_ledger`.

    Returns
    -------
    dict
        The statistics of :func:`generate_ledger`, plus ``after`` (the file), ``after_last_date``,
        ``first_id`` (the first new ``shipment_id``), ``first_date`` and ``last_date``.

    Raises
    ------
    pipeline.ingest.LedgerReadError
        ``after`` is missing or cannot be read as a ledger.
    ValueError
        Bad counts, ``after`` without valid rows, or ids past ``SHP-999999999999``.

    Notes
    -----
    Ids continue the numbering: ``SHP-`` + 12 digits, from one past the highest number in any
    ``SHP-<12 digits>`` id of ``after`` (valid or not), so they cannot collide with its ids.
    Consignees (name, id, destination, HQ, address) are those of the valid rows of ``after``,
    drawn with their weight there, so the new rows add to the same LPP and allocation totals.
    The SKU mix is that of the end of :func:`generate_ledger`'s drift.
    """
    started = time.perf_counter()
    path, after = Path(path), Path(after)
    rows, bad_rows, chunk_rows, pending_days, days = int(rows), int(bad_rows), int(chunk_rows), int(pending_days), int(days)
    _check_counts(rows, bad_rows, chunk_rows, pending_days, seed)
    if days < 1:
        raise ValueError("days must be at least 1")
    kind = _format_of(path, fmt)
    known = _ledger_facts(after)
    if known["next_id"] + rows > 10 ** 12:
        raise ValueError(f"{after}: no room for {rows:,} more ids after SHP-{known['next_id'] - 1:012d}")
    start = known["last_date"] + dt.timedelta(days=1)
    end = start + dt.timedelta(days=days - 1)
    plan = _make_plan(rows, int(seed), bad_rows, (), start, end, pending_days, known=known)
    stats = _write_plan(plan, path, kind, bad_rows, chunk_rows, progress, started)
    first_day, last_day = np.searchsorted(plan.day_ends, [0, max(0, rows - 1)], side="right")
    stats.update(after=str(after), after_last_date=known["last_date"].isoformat(),
                 first_id=f"SHP-{known['next_id']:012d}",
                 first_date=(start + dt.timedelta(days=int(first_day))).isoformat() if rows else None,
                 last_date=(start + dt.timedelta(days=int(last_day))).isoformat() if rows else None)
    return stats
