"""Synthetic ownership graphs around the real screening list (issue 19): :func:`generate_ownership`.

The file has one row per holding, columns :data:`OWNERSHIP_COLUMNS`, all text: ``percent`` is
written with at most two decimals (``"50"``, ``"12.34"``), dates ``YYYY-MM-DD`` or empty. CSV by
default, Parquet for a ``.parquet`` name (row groups of :data:`CHUNK_ROWS`). ``source`` names the
structure a row belongs to (``synthetic/chain``; ``synthetic/bad:<kind>`` for bad rows). Rows are
shuffled.

Entities
--------
* **Listed owners**: real names on the EL, MEU and SDN lists of the packaged screening list (no
  vessels or aircraft), each with the country of its first address where the list gives one,
  referred to by name and country (no id). Their normalized names are distinct.
* **Ledger consignees** (with ``ledger``): distinct consignees of a generated ledger, by their
  ``consignee_id`` where they have one, with their name and destination country; only those whose
  name, id and (normalized name, destination) belong to no other consignee and whose name is not
  on the screening list.
* **Synthetic companies**: names from the ledger generator's word pools plus a word of
  :data:`REGION_WORDS` (so they never equal a ledger consignee or a listed name), a legal form of
  their country. About 60 % of the structures' companies (85 % of the background's) have an id
  (``OE-`` + 9 digits) and are referred to by it, with their name and country; the others by name
  and country alone, their (normalized name, country) unique. A quarter of the holdings *by*
  chain links give the owner's id alone.

Structures (:data:`STRUCTURES`, several copies each, more with more holdings)
-----------------------------------------------------------------------------
``chain``: a listed owner, then 2 to 100 levels, each link 50-100 % (one chain of 2 and one of 100
levels); every level is an affiliate. ``aggregation``: two or three listed owners, each below 50 %,
together 50 % or more (30 + 20; 20 + 20 + 10; then random), the rest held by a company: an
affiliate. ``aggregation_affiliate``: listed L holds 60 % of B and 25 % of D, B holds 25 % of D:
B and D are affiliates (an affiliate's stake counts). ``fan_out``: one listed owner with 60 % of
10 to 50 subsidiaries (an investor holds the other 40 %). ``cycle_listed``: L holds 50 % of A, A
60 % of B, B 40 % of A (or a three-cycle A → B → C → A of 60 %, 60 %, 50 %): all affiliates.
``cycle_unlisted``: a two- or three-cycle of 60 % holdings with no listed owner: none.
``cycle_decoy``: L holds 40 % of A, A 60 % of B, B 60 % of A: neither (the cascade starts from the
listed parties). ``decoy_40``, ``decoy_4999``: a listed 40 % or 49.99 % stake (a company holds the
rest). ``decoy_parent``: L holds 40 % of E, E 100 % of F: neither. ``minority``: listed parties
hold 25 % to 49.99 % in aggregate (25; 30 + 19.99; then random): red flag 29. ``dated_2025``: L
holds 60 % of D from 2025-01-01 to 2025-12-31 (a company the other 40 %, undated), D 100 % of G:
D and G are affiliates in 2025 only. ``dated_2026``: the same, L's stake from 2026-06-01.
``background``: companies holding companies (1 to 4 owners each, at most 100 % in all, many
cross-holdings and cycles), no listed owner: fills the file up to ``holdings``. The structures
take about half of the first 200,000 holdings and 8 % of the rest, so a large file is mostly
background with about two holdings per entity (10M holdings: about 5M entities).

No entity is held above 100 % on any day, no (owner, owned, window) repeats, nobody holds itself:
the file reads with nothing quarantined (:func:`pipeline.ownership.read_holdings`) unless
``bad_rows`` asks for bad rows (:data:`BAD_OWNERSHIP_KINDS`, in turn, among fresh entities;
``over_100_total`` is a pair of 60 % holdings in one entity, both refused). The valid rows are the
same with or without bad rows (in another order).

Expected results, by design (the returned dict): affiliates on :data:`CHECK_DATES` (a day in each
window of the rule), entities held 25 % to 49.99 % by listed parties (the red-flag minority,
the same whether or not affiliates' stakes count, since no affiliate holds below 50 % outside an
affiliate), and the ledger consignees placed in the structures (the owned end of a chain, an
aggregation, a fan-out subsidiary, a cycle member, a dated stake, a minority stake, a decoy).

Random streams: ``default_rng([seed, 19, part])``; the file depends on ``seed``, ``holdings``,
``bad_rows`` and the ledger, not on the format's chunking.
"""
from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.generate.pools import _DEFAULT_LEGAL_FORMS, _LEGAL_FORMS, _WORD_A, _WORD_B, _WORD_C, _WORD_D
from pipeline.generate.strings import _compose, _join
from pipeline.reference import CSL_PATH


OWNERSHIP_COLUMNS = ("owner_id", "owner_name", "owned_id", "owned_name", "owner_country", "owned_country",
                     "percent", "valid_from", "valid_until", "source")
"""Columns of a generated ownership file, in file order (issue 19, item 1)."""
OWNERSHIP_SUFFIXES = (".csv", ".parquet")
OWNER_LISTS = ("EL", "MEU", "SDN")
"""Lists the listed owners come from (the lists the Affiliates rule names)."""
STRUCTURES = ("chain", "aggregation", "aggregation_affiliate", "fan_out", "cycle_listed", "cycle_unlisted",
              "cycle_decoy", "decoy_40", "decoy_4999", "decoy_parent", "minority", "dated_2025", "dated_2026",
              "background")
BAD_OWNERSHIP_KINDS = ("self_ownership", "percent_zero", "percent_over_100", "percent_text", "percent_precision",
                       "missing_owner", "over_100_total")
"""Kinds of bad rows, used in turn: bad row ``j`` is of kind ``BAD_OWNERSHIP_KINDS[j % 7]``."""
DATED = {"dated_2025": ("2025-01-01", "2025-12-31"), "dated_2026": ("2026-06-01", None)}
"""Window of the listed stake of the dated structures."""
CHECK_DATES = ("2025-10-01", "2026-12-01")
"""Days the expected affiliates are counted on: in the rule's first window and after its return."""
CHUNK_ROWS = 1 << 20
"""Rows materialized and written at a time (one Parquet row group)."""
REGION_WORDS = ("Pacific", "Nordic", "Continental", "Atlas", "Coastal", "Highland", "Alpine", "Eastern", "Western",
                "Northern", "Southern", "Central", "Union", "Frontier", "Crown", "Imperial", "Heritage", "Liberty",
                "Premier", "Sterling", "Titan", "Oriental", "Golden", "Evergreen")
"""A word in every synthetic company name, in no ledger-generator pool: a synthetic company never
bears a ledger consignee's name."""

_STREAM = 19
_P_LEDGER, _P_PLAN, _P_NAMES, _P_BACKGROUND, _P_ORDER, _P_BAD = range(1, 7)
_SHARE = {"chain": 0.20, "aggregation": 0.04, "aggregation_affiliate": 0.02, "fan_out": 0.10,
          "cycle_listed": 0.02, "cycle_unlisted": 0.01, "cycle_decoy": 0.01, "decoy_40": 0.02, "decoy_4999": 0.02,
          "decoy_parent": 0.02, "minority": 0.04, "dated_2025": 0.01, "dated_2026": 0.01}
"""Share of ``holdings`` each structure takes (the background fills the rest)."""
_ROWS_PER_COPY = {"chain": 51, "aggregation": 3.4, "aggregation_affiliate": 5, "fan_out": 60, "cycle_listed": 4.5,
                  "cycle_unlisted": 2.5, "cycle_decoy": 4, "decoy_40": 2, "decoy_4999": 2, "decoy_parent": 3,
                  "minority": 2.4, "dated_2025": 3, "dated_2026": 3}
_MIN_COPIES = 3
_FULL_SHARE_UP_TO = 200_000
_LATER_SHARE = 0.15
_LEDGER_SLOTS = ("chain", "aggregation", "decoy_40", "minority", "fan_out", "decoy_parent", "cycle_listed",
                 "decoy_4999", "dated_2025", "aggregation_affiliate", "dated_2026", "cycle_decoy")
"""Structures ledger consignees are placed in, in turn."""
_LEDGER_AFFILIATE = ("chain", "aggregation", "aggregation_affiliate", "fan_out", "cycle_listed")
_LEDGER_MINORITY = ("minority", "decoy_40", "decoy_4999")
_LEDGER_DECOY = ("decoy_40", "decoy_4999", "decoy_parent", "cycle_decoy")
_COUNTRIES = {"CN": 24, "HK": 12, "SG": 8, "US": 8, "AE": 6, "RU": 6, "MY": 5, "GB": 4, "TW": 3, "KR": 3, "JP": 3,
              "DE": 3, "IN": 3, "TR": 3, "NL": 2, "CH": 2, "KZ": 2, "VN": 2, "TH": 2, "IR": 1, "BY": 1}
"""Countries of synthetic companies, by weight."""
# Expected status of an entity: affiliate always, in 2025 only, from 2026-06-01; minority (always).
_NEVER, _ALWAYS, _IN_2025, _FROM_2026 = 0, 1, 2, 3
_PERCENT_TEXT = [str(bp // 100) + ("" if bp % 100 == 0 else (f".{bp % 100:02d}".rstrip("0"))) for bp in range(10_001)]
_BAD_PERCENT = {"percent_over_100": "120", "percent_text": "abc", "percent_precision": "12.345"}
_BAD_CODE = {kind: 10_001 + i for i, kind in enumerate(_BAD_PERCENT)}  # percent codes past 100 %
_DATE_TEXT = ((None, None), DATED["dated_2025"], DATED["dated_2026"])


# ----------------------------------------------------------------------------------- entities
@lru_cache(maxsize=4)
def listed_owner_pool(lists: tuple[str, ...] = OWNER_LISTS) -> pd.DataFrame:
    """Real listed names to own companies: ``name``, ``country`` (first address; None unknown), ``list_code``.

    One row per listed name on ``lists`` of the packaged screening list, vessels and aircraft
    left out, in name order; names that normalize to nothing or to the same text and country as
    an earlier name are dropped.
    """
    from pipeline.parties import PartyScreen
    from pipeline.parties.normalize import normalize_name
    from pipeline.reference import load_countries

    entries = PartyScreen.from_path(CSL_PATH).entries
    entries = entries[entries["list_code"].isin(lists)]
    try:  # the entry type is not in the screen's entries: read it from the list itself
        raw = pacsv.read_csv(CSL_PATH, convert_options=pacsv.ConvertOptions(
            include_columns=["_id", "entity_number", "type"],
            column_types={c: pa.string() for c in ("_id", "entity_number", "type")}))
        kinds = dict(zip(raw.column("_id").to_pylist(), raw.column("type").to_pylist()))
        kinds.update((k, t) for k, t in zip(raw.column("entity_number").to_pylist(), raw.column("type").to_pylist())
                     if k)
        craft = entries["entry_id"].map(kinds).isin(["Vessel", "Aircraft"]).to_numpy()
        entries = entries[~craft]
    except (pa.ArrowException, OSError, KeyError):  # pragma: no cover - another list layout: keep all
        pass
    first = entries.drop_duplicates("listed_name", keep="first")
    known = set(load_countries()["alpha2"])
    country = [next((c for c in str(text).split(";") if c in known), None) if isinstance(text, str) else None
               for text in first["countries"]]
    pool = pd.DataFrame({"name": first["listed_name"].astype(str).str.strip().to_numpy(), "country": country,
                         "list_code": first["list_code"].to_numpy()})
    pool["normalized"] = [normalize_name(name) for name in pool["name"]]
    pool = pool[(pool["name"] != "") & (pool["normalized"] != "")]
    pool = pool.sort_values("name", kind="stable")
    pool = pool.drop_duplicates(["normalized", "country"], keep="first").reset_index(drop=True)
    return pool


def _listed_normalized() -> frozenset:
    """Normalized names of every entry of the packaged screening list (all lists, all aliases)."""
    from pipeline.parties import PartyScreen

    return frozenset(PartyScreen.from_path(CSL_PATH).entries["normalized"].dropna())


def _strings(values) -> pa.Array:
    """Text values as an Arrow string array (None and NaN as null)."""
    return pa.array([v if isinstance(v, str) else None for v in values], pa.string())


def _text(column) -> pa.ChunkedArray:
    """A (dictionary) text column as plain text."""
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _ledger_consignees(ledger: Path) -> pd.DataFrame:
    """Distinct consignees of a ledger that can be placed in a structure unambiguously.

    Rows accepted by :func:`pipeline.ingest.read_ledgers` are grouped by (name, id, destination)
    with Arrow; kept are consignees whose name, id and (normalized name, destination) belong to
    no other group, whose normalized name is on no screening list, sorted by name.
    """
    from pipeline.ingest import read_ledgers
    from pipeline.parties.normalize import normalize_name

    rows = read_ledgers([ledger]).rows
    table = pa.table({"name": _text(rows.column("consignee_name")), "id": _text(rows.column("consignee_id")),
                      "country": _text(rows.column("destination_country"))})
    groups = table.group_by(["name", "id", "country"], use_threads=False).aggregate([("name", "count")])
    frame = pd.DataFrame({k: groups.column(k).to_pylist() for k in ("name", "id", "country")})
    frame = frame[frame["name"].notna() & frame["country"].notna()]
    frame["normalized"] = [normalize_name(name) for name in frame["name"]]
    listed = _listed_normalized()
    unique = ~frame.duplicated("name", keep=False) & ~frame.duplicated(["normalized", "country"], keep=False)
    unique &= frame["id"].isna() | ~frame.duplicated("id", keep=False)
    frame = frame[unique & (frame["normalized"] != "") & ~frame["normalized"].isin(listed)]
    return frame.sort_values(["name", "country"], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------- structures
def _segments(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offset of each segment and the segment of each element."""
    ends = np.cumsum(lengths)
    return ends - lengths, np.repeat(np.arange(len(lengths)), lengths)


class _Graph:
    """Holdings as integer arrays over entity indices: listed ``[0, L)``, ledger ``[L, L + C)``,
    synthetic companies after; expected statuses by design."""

    def __init__(self, rng: np.random.Generator, n_listed: int, ledger_slots: dict[str, np.ndarray]):
        self.rng = rng
        self.n_listed = n_listed
        self.next = n_listed + sum(len(v) for v in ledger_slots.values())
        self.ledger = ledger_slots
        self.parts: list = []
        self.expected: list = []
        self.minority: list = []
        self.copies: dict[str, int] = {}
        self.longest = 0
        # Listed owners: a skewed choice (a few own much) over a seed-dependent order.
        weight = 1.0 / (np.arange(n_listed) + 10.0)
        self._listed_p = weight[np.argsort(rng.permutation(n_listed))]
        self._listed_p /= self._listed_p.sum()

    def new(self, n: int) -> np.ndarray:
        start, self.next = self.next, self.next + int(n)
        return np.arange(start, self.next, dtype=np.int64)

    def listed(self, n: int, k: int = 1) -> np.ndarray:
        """``n`` rows of ``k`` distinct listed owners."""
        base = self.rng.choice(self.n_listed, size=n, p=self._listed_p)
        step = self.rng.integers(1, max(2, self.n_listed // k), size=n)
        return (base[:, None] + np.arange(k)[None, :] * step[:, None]) % self.n_listed if k > 1 else base

    def place(self, structure: str, targets: np.ndarray) -> np.ndarray:
        """``targets`` with the ledger consignees assigned to ``structure`` in front."""
        chosen = self.ledger.get(structure, np.zeros(0, np.int64))
        targets[:len(chosen)] = chosen
        return targets

    def add(self, structure: str, owner, owned, bp, date: int = 0, id_only=None) -> None:
        owner = np.asarray(owner, np.int64)
        n = len(owner)
        self.parts.append((owner, np.asarray(owned, np.int64), np.broadcast_to(np.asarray(bp, np.int32), (n,)),
                           np.full(n, date, np.int8), np.full(n, STRUCTURES.index(structure), np.int8),
                           np.zeros(n, bool) if id_only is None else id_only))

    def expect(self, entities, when: int = _ALWAYS) -> None:
        self.expected.append((np.asarray(entities, np.int64), when))

    def expect_minority(self, entities) -> None:
        self.minority.append(np.asarray(entities, np.int64))

    def arrays(self):
        return [np.concatenate([p[i] for p in self.parts]) if self.parts else np.zeros(0)
                for i in range(6)]


def _chain(g: _Graph, c: int) -> None:
    rng = g.rng
    levels = rng.integers(2, 101, size=c)
    levels[0] = 2
    if c > 1:
        levels[1] = 100
    starts, _ = _segments(levels)
    nodes = g.new(levels.sum())
    last = starts + levels - 1
    chosen = g.ledger.get("chain", np.zeros(0, np.int64))
    nodes[last[:len(chosen)]] = chosen
    owner = np.empty(len(nodes), np.int64)
    owner[1:] = nodes[:-1]
    owner[starts] = g.listed(c)
    draw = rng.random(len(nodes))
    bp = np.where(draw < 0.6, 100 * rng.integers(50, 101, size=len(nodes)), rng.integers(5000, 10_001,
                                                                                           size=len(nodes)))
    bp[draw > 0.95] = 5000  # exactly the threshold
    id_only = rng.random(len(nodes)) < 0.25
    id_only[starts] = False  # the listed owner: by name
    g.add("chain", owner, nodes, bp, id_only=id_only)
    g.expect(nodes)
    g.longest = int(levels.max())


def _aggregation(g: _Graph, c: int) -> None:
    rng = g.rng
    three = rng.random(c) < 0.4
    total = rng.integers(5000, 10_001, size=c)
    t2 = np.minimum(total, 9998)
    a2 = rng.integers(t2 - 4999, 5000)
    a3 = rng.integers(np.maximum(1, total - 9998), np.minimum(4999, total - 2) + 1)
    rest = total - a3
    b3 = rng.integers(np.maximum(1, rest - 4999), np.minimum(4999, rest - 1) + 1)
    shares = np.where(three[:, None], np.stack([a3, b3, rest - b3], 1), np.stack([a2, t2 - a2, 0 * a2], 1))
    shares[0] = (3000, 2000, 0)  # 30 + 20
    if c > 1:
        shares[1] = (2000, 2000, 1000)  # 20 + 20 + 10
    owners = g.listed(c, 3)
    target = g.place("aggregation", g.new(c))
    for j in range(3):
        some = shares[:, j] > 0
        g.add("aggregation", owners[some, j], target[some], shares[some, j])
    remainder = 10_000 - shares.sum(1)
    some = remainder > 0
    g.add("aggregation", g.new(some.sum()), target[some], remainder[some])
    g.expect(target)


def _aggregation_affiliate(g: _Graph, c: int) -> None:
    listed, b, u1, u2 = g.listed(c), g.new(c), g.new(c), g.new(c)
    d = g.place("aggregation_affiliate", g.new(c))
    for owner, owned, bp in ((listed, b, 6000), (u1, b, 4000), (listed, d, 2500), (b, d, 2500), (u2, d, 5000)):
        g.add("aggregation_affiliate", owner, owned, bp)
    g.expect(b)
    g.expect(d)


def _fan_out(g: _Graph, c: int) -> None:
    width = g.rng.integers(10, 51, size=c)
    width[0] = 10
    if c > 1:
        width[1] = 50
    starts, segment = _segments(width)
    subsidiaries = g.new(width.sum())
    chosen = g.ledger.get("fan_out", np.zeros(0, np.int64))
    subsidiaries[starts[:len(chosen)]] = chosen
    listed, investor = g.listed(c), g.new(c)
    g.add("fan_out", listed[segment], subsidiaries, 6000)
    g.add("fan_out", investor[segment], subsidiaries, 4000)
    g.expect(subsidiaries)


def _cycle_listed(g: _Graph, c: int) -> None:
    c2 = max(-(-c // 2), len(g.ledger.get("cycle_listed", ())))
    c3 = max(c - c2, 1)
    listed, a, u = g.listed(c2), g.new(c2), g.new(c2)  # L 50% of A, A 60% of B, B 40% of A
    b = g.place("cycle_listed", g.new(c2))
    for owner, owned, bp in ((listed, a, 5000), (a, b, 6000), (b, a, 4000), (u, b, 4000)):
        g.add("cycle_listed", owner, owned, bp)
    g.expect(a)
    g.expect(b)
    listed, a, b, c_, u = g.listed(c3), g.new(c3), g.new(c3), g.new(c3), g.new(c3)  # A → B → C → A
    for owner, owned, bp in ((listed, a, 5000), (a, b, 6000), (b, c_, 6000), (c_, a, 5000), (u, b, 4000),
                             (u, c_, 4000)):
        g.add("cycle_listed", owner, owned, bp)
    for entities in (a, b, c_):
        g.expect(entities)
    g.copies["cycle_listed"] = c2 + c3


def _cycle_unlisted(g: _Graph, c: int) -> None:
    c2, c3 = -(-c // 2), max(c // 2, 1)
    a, b = g.new(c2), g.new(c2)
    g.add("cycle_unlisted", a, b, 6000)
    g.add("cycle_unlisted", b, a, 6000)
    a, b, c_ = g.new(c3), g.new(c3), g.new(c3)
    for owner, owned in ((a, b), (b, c_), (c_, a)):
        g.add("cycle_unlisted", owner, owned, 6000)
    g.copies["cycle_unlisted"] = c2 + c3


def _cycle_decoy(g: _Graph, c: int) -> None:
    listed, a, u = g.listed(c), g.new(c), g.new(c)
    b = g.place("cycle_decoy", g.new(c))
    for owner, owned, bp in ((listed, a, 4000), (b, a, 6000), (a, b, 6000), (u, b, 4000)):
        g.add("cycle_decoy", owner, owned, bp)
    g.expect_minority(a)


def _decoy_stake(g: _Graph, c: int, structure: str, bp: int) -> None:
    listed, other = g.listed(c), g.new(c)
    target = g.place(structure, g.new(c))
    g.add(structure, listed, target, bp)
    g.add(structure, other, target, 10_000 - bp)
    g.expect_minority(target)


def _decoy_parent(g: _Graph, c: int) -> None:
    listed, other, parent = g.listed(c), g.new(c), g.new(c)
    child = g.place("decoy_parent", g.new(c))
    for owner, owned, bp in ((listed, parent, 4000), (other, parent, 6000), (parent, child, 10_000)):
        g.add("decoy_parent", owner, owned, bp)
    g.expect_minority(parent)


def _minority(g: _Graph, c: int) -> None:
    rng = g.rng
    pair = rng.random(c) < 0.4
    total = rng.integers(2500, 5000, size=c)
    first = np.where(pair, rng.integers(1, total), total)
    shares = np.stack([first, total - first], 1)
    shares[0] = (2500, 0)  # exactly 25 %
    if c > 1:
        shares[1] = (3000, 1999)  # 30 + 19.99
    owners = g.listed(c, 2)
    target = g.place("minority", g.new(c))
    for j in range(2):
        some = shares[:, j] > 0
        g.add("minority", owners[some, j], target[some], shares[some, j])
    g.add("minority", g.new(c), target, 10_000 - shares.sum(1))
    g.expect_minority(target)


def _dated(g: _Graph, c: int, structure: str) -> None:
    date, when = (1, _IN_2025) if structure == "dated_2025" else (2, _FROM_2026)
    listed, other = g.listed(c), g.new(c)
    target = g.place(structure, g.new(c))
    child = g.new(c)
    g.add(structure, listed, target, 6000, date=date)
    g.add(structure, other, target, 4000)
    g.add(structure, target, child, 10_000)
    g.expect(target, when)
    g.expect(child, when)


def _background(g: _Graph, rows: int) -> None:
    """Companies held by 1 to 4 distinct companies (2.4 on average, at most 100 % in all); one in
    nine owns only."""
    if rows <= 0:
        return
    rng = g.rng
    degree = rng.choice(4, size=rows, p=[0.25, 0.3, 0.25, 0.2]) + 1  # enough: each at least 1
    ends = np.cumsum(degree)
    n_owned = int(np.searchsorted(ends, rows)) + 1
    degree = degree[:n_owned].copy()
    degree[-1] -= int(ends[n_owned - 1] - rows)
    n = n_owned + max(n_owned // 8, 8)
    entities = g.new(n)
    starts, segment = _segments(degree)
    # Owners: the owned entity's position plus distinct, increasing offsets in 1..n-1.
    step = 1 + rng.integers(0, max(1, (n - 1) // 4), size=rows)
    scanned = np.cumsum(step)
    offset = scanned - (scanned[starts] - step[starts])[segment]
    owner = entities[(segment + offset) % n]
    owned = entities[segment]
    # Percent: a total per owned entity (half 100 %), split by random weights, floored.
    total = np.where(rng.random(n_owned) < 0.5, 10_000, rng.integers(1000, 10_001, size=n_owned))
    weight = rng.uniform(0.05, 1.0, size=rows)
    sums = np.bincount(segment, weights=weight, minlength=n_owned)
    bp = np.floor(weight / sums[segment] * total[segment]).astype(np.int64)
    whole = rng.random(rows) < 0.7
    bp = np.where(whole & (bp >= 100), bp // 100 * 100, bp)
    g.add("background", owner, owned, np.maximum(bp, 1))


def _copies(holdings: int, ledger_slots: dict[str, np.ndarray]) -> dict[str, int]:
    """Copies per structure: their shares of the first :data:`_FULL_SHARE_UP_TO` holdings, then of
    :data:`_LATER_SHARE` of the rest (a large file is mostly background: about two holdings per
    entity); at least :data:`_MIN_COPIES`, and one per ledger consignee placed."""
    scale = min(holdings, _FULL_SHARE_UP_TO) + _LATER_SHARE * max(0, holdings - _FULL_SHARE_UP_TO)
    return {name: max(_MIN_COPIES, int(share * scale / _ROWS_PER_COPY[name]), len(ledger_slots.get(name, ())))
            for name, share in _SHARE.items()}


# ----------------------------------------------------------------------------------- names
def _synthetic(rng: np.random.Generator, n: int, background_from: int, first: int = 0, all_ids: bool = False) -> dict:
    """Ids, names and countries of ``n`` synthetic companies (those from ``background_from`` on
    are the background's; ``first``: the number of the first, for distinct ids; ``all_ids``:
    every one with an id)."""
    codes = list(_COUNTRIES)
    weight = np.array(list(_COUNTRIES.values()), np.float64)
    country = rng.choice(len(codes), size=n, p=weight / weight.sum())
    has_id = (rng.random(n) < np.where(np.arange(n) >= background_from, 0.85, 0.6)) | all_ids
    named = np.flatnonzero(~has_id)
    sizes = (len(REGION_WORDS), len(_WORD_A), len(_WORD_B), len(_WORD_C), len(_WORD_D))
    space = int(np.prod(sizes))
    if len(named) > space // 2:  # unique names run short: the rest get ids
        has_id[named[space // 2:]] = True
        named = named[:space // 2]
    combo = rng.integers(0, space, size=n)
    combo[named] = rng.choice(space, size=len(named), replace=False)  # (name, country) unique
    e, rest = np.divmod(combo, space // sizes[0])
    a, rest = np.divmod(rest, sizes[2] * sizes[3] * sizes[4])
    b, rest = np.divmod(rest, sizes[3] * sizes[4])
    c, d = np.divmod(rest, sizes[4])
    forms = [_LEGAL_FORMS.get(code, _DEFAULT_LEGAL_FORMS) for code in codes]
    offset = np.cumsum([0] + [len(f) for f in forms])
    count = np.array([len(f) for f in forms])[country]
    form = pa.array([f for group in forms for f in group], pa.string()).take(
        pa.array(offset[country] + (rng.random(n) * count).astype(np.int64)))
    words = {key: pa.array(pool, pa.string()) for key, pool in
             (("e", REGION_WORDS), ("a", _WORD_A), ("b", _WORD_B), ("c", _WORD_C), ("d", _WORD_D))}
    take = {key: words[key].take(pa.array(idx)) for key, idx in (("e", e), ("a", a), ("b", b), ("c", c), ("d", d))}
    # By id: "Nimbus Compute Pacific Systems Ltd."; by name: "Pacific Nimbus Compute Systems Ltd."
    id_name = _join(take["a"], " ", take["b"], " ", take["e"], " ", take["c"], take["d"], " ", form)
    plain_name = _join(take["e"], " ", take["a"], " ", take["b"], " ", take["c"], take["d"], " ", form)
    name = pc.if_else(pa.array(has_id), id_name, plain_name)
    serial = ((first + np.arange(n, dtype=np.int64)) * 738_219_541 + 104_729) % 1_000_000_000  # distinct, scattered
    return {"id": _compose([b"OE-", (serial, 9)], n, has_id), "name": name,
            "country": np.asarray(codes, dtype=object)[country], "has_id": has_id}


# ----------------------------------------------------------------------------------- writing
def _bad_rows(g: _Graph, count: int) -> tuple[list, np.ndarray]:
    """Bad rows (kinds in turn) among fresh companies: arrays like :meth:`_Graph.arrays` (rows
    written) and the kind of each bad row asked for."""
    owner, owned, code = [], [], []
    for j in range(count):
        kind = BAD_OWNERSHIP_KINDS[j % len(BAD_OWNERSHIP_KINDS)]
        a, b = g.new(2)
        if kind == "self_ownership":
            owner.append(a), owned.append(a), code.append(3000)
        elif kind == "percent_zero":
            owner.append(a), owned.append(b), code.append(0)
        elif kind in _BAD_CODE:
            owner.append(a), owned.append(b), code.append(_BAD_CODE[kind])
        elif kind == "missing_owner":
            owner.append(-1), owned.append(b), code.append(4000)
        else:  # over_100_total: two 60 % holdings in one entity, both refused
            c = g.new(1)[0]
            owner += [a, c]
            owned += [b, b]
            code += [6000, 6000]
    n = len(owner)
    kinds = np.array([BAD_OWNERSHIP_KINDS[j % len(BAD_OWNERSHIP_KINDS)] for j in range(count)], dtype=object)
    kind_of_row = [k for k in kinds for _ in range(2 if k == "over_100_total" else 1)]
    structure = np.array([len(STRUCTURES) + BAD_OWNERSHIP_KINDS.index(k) for k in kind_of_row], np.int8)
    return [np.array(owner, np.int64), np.array(owned, np.int64), np.array(code, np.int32), np.zeros(n, np.int8),
            structure, np.zeros(n, bool)], kinds


def _tables(attributes: dict, arrays: list, order: np.ndarray, chunk: int):
    """The rows in ``order`` as Arrow tables of ``chunk`` rows."""
    owner, owned, bp, date, structure, id_only = arrays
    percent = pa.array(_PERCENT_TEXT + list(_BAD_PERCENT.values()), pa.string())
    valid_from = pa.array([d[0] for d in _DATE_TEXT], pa.string())
    valid_until = pa.array([d[1] for d in _DATE_TEXT], pa.string())
    source = pa.array([f"synthetic/{s}" for s in STRUCTURES] + [f"synthetic/bad:{k}" for k in BAD_OWNERSHIP_KINDS],
                      pa.string())
    ident, name, has_id = attributes["id"], attributes["name"], attributes["has_id"]
    # Countries as small codes into a table of the distinct ones (-1: none): cheap to gather.
    codes, distinct = pd.factorize(attributes["country"], use_na_sentinel=True)  # None, NaN: -1
    country_code = codes.astype(np.int32)
    countries = pa.array(list(distinct), pa.string())
    for start in range(0, len(order), chunk):
        rows = order[start:start + chunk]
        o, w = owner[rows], owned[rows]
        missing = o < 0
        o_safe = np.where(missing, 0, o)
        by_id_only = id_only[rows] & has_id[o_safe] & ~missing
        o_all = pa.array(o_safe, mask=missing)
        o_named = pa.array(o_safe, mask=missing | by_id_only)
        w_all = pa.array(w)
        yield pa.table({
            "owner_id": ident.take(o_all), "owner_name": name.take(o_named),
            "owned_id": ident.take(w_all), "owned_name": name.take(w_all),
            "owner_country": countries.take(pa.array(country_code[o_safe], mask=missing | by_id_only
                                                     | (country_code[o_safe] < 0))),
            "owned_country": countries.take(pa.array(country_code[w], mask=country_code[w] < 0)),
            "percent": percent.take(pa.array(bp[rows])),
            "valid_from": valid_from.take(pa.array(date[rows])), "valid_until": valid_until.take(pa.array(date[rows])),
            "source": source.take(pa.array(structure[rows])),
        })


def _write(path: Path, tables, schema: pa.Schema) -> None:
    """Write the tables to ``path`` through a temporary file in the same folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    parquet = path.name.lower().endswith(".parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = pq.ParquetWriter(tmp, schema) if parquet else pacsv.CSVWriter(tmp, schema)
    try:
        wrote = False
        for table in tables:
            if parquet:
                writer.write_table(table, row_group_size=len(table))
            else:
                writer.write_table(table)
            wrote = True
        if parquet and not wrote:
            writer.write_table(schema.empty_table())
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------------- entry point
def generate_ownership(path: str | Path, *, ledger: str | Path | None = None, holdings: int = 2000, seed: int = 0,
                       bad_rows: int = 0) -> dict:
    """Write a synthetic ownership file around the real screening list (deterministic by seed).

    Parameters
    ----------
    path : path
        File to write: ``.csv`` or ``.parquet``; replaced if it exists (written to a temporary
        name, then renamed).
    ledger : path, optional
        A ledger (``.parquet``, ``.csv`` or ``.jsonl``, e.g. from ``chipscreen generate``): some of
        its consignees become the owned end of structures, so screening it with this file finds
        affiliates, minority holdings and decoys among them.
    holdings : int
        Valid holdings to write; at least the structures' minimum (about 450 holdings, more with
        ledger consignees). The structures take about half of a small file and less of a large
        one (see the module), the background the rest.
    seed : int
        Random seed: the same arguments give the same file.
    bad_rows : int
        Bad rows to add (:data:`BAD_OWNERSHIP_KINDS` in turn) for quarantine tests.

    Returns
    -------
    dict
        ``path``, ``format``, ``rows`` (written), ``holdings`` (valid rows), ``bad_rows``,
        ``bad_by_kind``, ``expected_quarantined`` (bad rows written: ``over_100_total`` writes
        two), ``entities`` (in valid rows), ``listed_owners``, ``entities_by_id``,
        ``entities_by_name``, ``rows_by_id_only`` (owner given by id alone), ``structures``
        (copies per structure; ``background`` its rows), ``rows_by_structure``, ``longest_chain``,
        ``affiliates`` (expected count on each of :data:`CHECK_DATES`), ``minority`` (expected
        entities held 25 % to 49.99 % by listed parties, not affiliates), ``dated`` (the windows
        of the dated stakes), ``ledger_consignees`` (consignees placed), ``ledger_affiliates``
        (names of consignees that are affiliates on every date), ``ledger_dated`` (name → the
        window its affiliation holds), ``ledger_minority`` (names held 25 % to 49.99 % by listed
        parties), ``ledger_decoys`` (names that must not be affiliates, some minority),
        ``ledger_placed`` (name → structure, id, country), ``seconds``.

    Raises
    ------
    ValueError
        A bad argument, or an output path that is the ledger.
    pipeline.ingest.LedgerReadError
        A ledger that cannot be read.
    """
    started = time.perf_counter()
    path = Path(path)
    if holdings < 1:
        raise ValueError(f"holdings must be at least 1, not {holdings}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, not {seed}")
    if bad_rows < 0:
        raise ValueError(f"bad_rows must be non-negative, not {bad_rows}")
    if not path.name.lower().endswith(OWNERSHIP_SUFFIXES):
        raise ValueError(f"{path}: unknown extension; give a file ending in {', '.join(OWNERSHIP_SUFFIXES)}")
    if ledger is not None and Path(os.path.realpath(path)) == Path(os.path.realpath(ledger)):
        raise ValueError(f"{path} is the ledger {ledger}; give another file name")

    def stream(part: int) -> np.random.Generator:
        return np.random.default_rng([seed, _STREAM, part])

    pool = listed_owner_pool()
    n_listed = len(pool)
    # Ledger consignees: a seed-dependent sample, placed in the structures in turn.
    consignees = _ledger_consignees(Path(ledger)) if ledger is not None else pd.DataFrame(
        columns=["name", "id", "country", "normalized"])
    use = min(len(consignees), max(len(_LEDGER_SLOTS), len(consignees) // 50))
    picked = consignees.iloc[np.sort(stream(_P_LEDGER).permutation(len(consignees))[:use])].reset_index(drop=True)
    slot = np.array([_LEDGER_SLOTS[i % len(_LEDGER_SLOTS)] for i in range(use)], dtype=object)
    ledger_slots = {name: n_listed + np.flatnonzero(slot == name) for name in _LEDGER_SLOTS if (slot == name).any()}

    g = _Graph(stream(_P_PLAN), n_listed, ledger_slots)
    copies = _copies(holdings, ledger_slots)
    _chain(g, copies["chain"])
    _aggregation(g, copies["aggregation"])
    _aggregation_affiliate(g, copies["aggregation_affiliate"])
    _fan_out(g, copies["fan_out"])
    _cycle_listed(g, copies["cycle_listed"])
    _cycle_unlisted(g, copies["cycle_unlisted"])
    _cycle_decoy(g, copies["cycle_decoy"])
    _decoy_stake(g, copies["decoy_40"], "decoy_40", 4000)
    _decoy_stake(g, copies["decoy_4999"], "decoy_4999", 4999)
    _decoy_parent(g, copies["decoy_parent"])
    _minority(g, copies["minority"])
    _dated(g, copies["dated_2025"], "dated_2025")
    _dated(g, copies["dated_2026"], "dated_2026")
    copies = {**copies, **g.copies}
    structure_rows = sum(len(p[0]) for p in g.parts)
    background_from = g.next
    g.rng = stream(_P_BACKGROUND)
    _background(g, holdings - structure_rows)
    valid = g.arrays()
    n_valid = len(valid[0])
    n_valid_entities = g.next
    bad, bad_kinds = _bad_rows(g, bad_rows)
    n_entities = g.next

    # Entity attributes: listed, ledger consignees, synthetic companies.
    n_ledger = len(picked)
    first_synthetic = n_listed + n_ledger
    synthetic = _synthetic(stream(_P_NAMES), n_valid_entities - first_synthetic, background_from - first_synthetic)
    if n_entities > n_valid_entities:  # the bad rows' companies: drawn apart, so valid rows do not change
        extra = _synthetic(stream(_P_BAD), n_entities - n_valid_entities, 0, n_valid_entities - first_synthetic, True)
        synthetic = {"id": pa.concat_arrays([synthetic["id"], extra["id"]]),
                     "name": pa.concat_arrays([synthetic["name"].cast(pa.string()), extra["name"].cast(pa.string())]),
                     **{k: np.concatenate([synthetic[k], extra[k]]) for k in ("country", "has_id")}}
    ledger_ids = [i if isinstance(i, str) else None for i in picked["id"]]
    attributes = {
        "id": pa.concat_arrays([pa.nulls(n_listed, pa.string()), _strings(ledger_ids), synthetic["id"]]),
        "name": pa.concat_arrays([_strings(pool["name"]), _strings(picked["name"]),
                                  synthetic["name"].cast(pa.string())]),
        "country": np.concatenate([pool["country"].to_numpy(dtype=object), picked["country"].to_numpy(dtype=object),
                                   synthetic["country"]]),
        "has_id": np.concatenate([np.zeros(n_listed, bool), np.array([i is not None for i in ledger_ids], bool),
                                  synthetic["has_id"]]),
    }

    # Row order: the valid rows shuffled, the bad rows at random places among them.
    rng = stream(_P_ORDER)
    n_bad = len(bad[0])
    arrays = [np.concatenate([v, b]) for v, b in zip(valid, bad)]
    total = n_valid + n_bad
    is_bad = np.zeros(total, bool)
    is_bad[rng.choice(total, size=n_bad, replace=False)] = True
    order = np.empty(total, np.int64)
    order[~is_bad] = rng.permutation(n_valid)
    order[is_bad] = n_valid + np.arange(n_bad)
    schema = pa.schema([(name, pa.string()) for name in OWNERSHIP_COLUMNS])
    _write(path, _tables(attributes, arrays, order, CHUNK_ROWS), schema)

    # Expected statuses, by design.
    when = np.zeros(n_entities, np.int8)
    for entities, code in g.expected:
        when[entities] = code
    minority = np.zeros(n_entities, bool)
    for entities in g.minority:
        minority[entities] = True
    owner, owned, _, _, structure, id_only = valid
    used = np.zeros(n_entities, bool)
    used[owner] = True
    used[owned] = True
    by_id_only = id_only & attributes["has_id"][owner]
    rows_by_structure = np.bincount(structure, minlength=len(STRUCTURES))
    at = {CHECK_DATES[0]: (_ALWAYS, _IN_2025), CHECK_DATES[1]: (_ALWAYS, _FROM_2026)}
    names = picked["name"].tolist()
    placed = {name: {"structure": str(s), "id": i, "country": c}
              for name, s, i, c in zip(names, slot, ledger_ids, picked["country"].tolist())}
    bad_by_kind = {kind: int((bad_kinds == kind).sum()) for kind in BAD_OWNERSHIP_KINDS}
    return {
        "path": str(path), "format": "parquet" if path.name.lower().endswith(".parquet") else "csv",
        "rows": total, "holdings": n_valid, "bad_rows": bad_rows, "bad_by_kind": bad_by_kind,
        "expected_quarantined": n_bad,
        "entities": int(used.sum()), "listed_owners": int(used[:n_listed].sum()),
        "entities_by_id": int((used & attributes["has_id"]).sum()),
        "entities_by_name": int((used & ~attributes["has_id"]).sum()),
        "rows_by_id_only": int(by_id_only.sum()),
        "structures": {**{name: int(copies[name]) for name in STRUCTURES[:-1]},
                       "background": int(rows_by_structure[-1])},
        "rows_by_structure": {name: int(n) for name, n in zip(STRUCTURES, rows_by_structure)},
        "longest_chain": g.longest,
        "affiliates": {day: int(np.isin(when, codes).sum()) for day, codes in at.items()},
        "minority": int(minority.sum()),
        "dated": {name: {"valid_from": window[0], "valid_until": window[1]} for name, window in DATED.items()},
        "ledger_consignees": n_ledger,
        "ledger_affiliates": sorted(n for n, s in zip(names, slot) if s in _LEDGER_AFFILIATE),
        "ledger_dated": {n: {"valid_from": DATED[s][0], "valid_until": DATED[s][1]}
                         for n, s in sorted(zip(names, slot)) if s in DATED},
        "ledger_minority": sorted(n for n, s in zip(names, slot) if s in _LEDGER_MINORITY),
        "ledger_decoys": sorted(n for n, s in zip(names, slot) if s in _LEDGER_DECOY),
        "ledger_placed": placed,
        "seconds": round(time.perf_counter() - started, 3),
    }
