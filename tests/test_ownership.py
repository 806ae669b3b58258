"""Ownership (issue 19): the affiliates fixpoint (kernels.ownership) and the holdings reader (pipeline.ownership).

The kernel is checked against a plain Python fixpoint written from the issue text, on NumPy and on
the NumPy-backed stand-in for CuPy (and on a real device where one works).
"""
from __future__ import annotations

import datetime as dt
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fake_cupy
from conftest import cupy_or_skip
from kernels.ownership import Affiliates, resolve_affiliates, segment_sums
from pipeline.ownership import (OPEN_FROM, OPEN_UNTIL, OWNERSHIP_COLUMNS, REASONS, TABLE_COLUMNS, OwnershipError,
                                percent_bp, read_holdings)
from pipeline.parties import normalize_name

ROOT = Path(__file__).resolve().parent.parent
FAKE = fake_cupy.make()
EPOCH = dt.date(1970, 1, 1)


# ------------------------------------------------------------------------------ the plain fixpoint
def plain_fixpoint(owner, owned, bp, listed, threshold=5000) -> dict:
    """Issue 19, item 3, written out: affiliates until nothing changes; then levels, parents, lists.

    A holding of an entity in itself is ignored and one owner's holdings in one entity are summed
    (the kernel's documented conventions).
    """
    n = len(listed)
    holders: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for o, e, b in zip(owner, owned, bp):
        if o != e:
            holders[e][o] += b
    is_listed = [mask != 0 for mask in listed]
    affiliates: set[int] = set()
    steps = 0
    while True:
        steps += 1
        qualified = {i for i in range(n) if is_listed[i]} | affiliates
        found = {e for e in range(n) if not is_listed[e]
                 and sum(b for o, b in holders[e].items() if o in qualified) >= threshold}
        if found == affiliates:
            break
        affiliates = found
    qualified = {i for i in range(n) if is_listed[i]} | affiliates
    held = [sum(b for o, b in holders[e].items() if o in qualified) for e in range(n)]
    level = [0 if is_listed[i] else -1 for i in range(n)]
    depth, reached = 0, {i for i in range(n) if is_listed[i]}
    while True:
        depth += 1
        step = {e for e in affiliates if level[e] < 0 and any(o in reached and level[o] == depth - 1
                                                              for o in holders[e])}
        if not step:
            break
        for e in step:
            level[e] = depth
        reached |= step
    parent = [-1] * n
    for e in affiliates:
        candidates = [o for o in holders[e] if o in qualified and level[o] == level[e] - 1]
        parent[e] = min(candidates, key=lambda o: (-holders[e][o], o))
    lists = [mask if is_listed[i] else 0 for i, mask in enumerate(listed)]
    while True:
        updated = list(lists)
        for e in range(n):
            if not is_listed[e]:
                for o in holders[e]:
                    if o in qualified:
                        updated[e] |= lists[o]
        updated = [int(np.int64(np.uint64(v & (2**64 - 1)))) for v in updated]
        if updated == lists:
            break
        lists = updated
    return {"affiliate": [i in affiliates for i in range(n)], "held_bp": held, "lists": lists, "level": level,
            "parent": parent, "steps": steps if any(is_listed) else 0}


def as_lists(result: Affiliates) -> dict:
    return {"affiliate": np.asarray(result.affiliate).tolist(), "held_bp": np.asarray(result.held_bp).tolist(),
            "lists": np.asarray(result.lists).tolist(), "level": np.asarray(result.level).tolist(),
            "parent": np.asarray(result.parent).tolist(), "steps": result.steps}


def resolve(owner, owned, bp, listed, threshold=5000, xp=np) -> dict:
    result = resolve_affiliates(xp.asarray(np.asarray(owner, np.int64)), xp.asarray(np.asarray(owned, np.int64)),
                                xp.asarray(np.asarray(bp, np.int64)), xp.asarray(np.asarray(listed, np.int64)),
                                threshold_bp=threshold, xp=xp)
    assert result.affiliate.dtype == bool and result.held_bp.dtype == np.int64 and result.lists.dtype == np.int64
    assert result.level.dtype == np.int32 and result.parent.dtype == np.int64
    return as_lists(result)


MASKS = st.sampled_from([0, 0, 0, 0, 1, 2, 4, 5, 7, -2**63, 2**62 + 1])
BPS = st.one_of(st.integers(1, 10_000), st.sampled_from([1, 2000, 2500, 3000, 4999, 5000, 5001, 6000, 10_000]))


@st.composite
def graphs(draw, max_entities=9, max_holdings=24):
    n = draw(st.integers(0, max_entities))
    listed = draw(st.lists(MASKS, min_size=n, max_size=n))
    entity = st.integers(0, n - 1) if n else st.nothing()
    holdings = draw(st.lists(st.tuples(entity, entity, BPS), max_size=max_holdings if n else 0))
    owner = [h[0] for h in holdings]
    owned = [h[1] for h in holdings]
    bp = [h[2] for h in holdings]
    threshold = draw(st.sampled_from([5000, 5000, 5000, 2500, 1, 10_000]))
    return owner, owned, bp, listed, threshold


# ------------------------------------------------------------------------------ kernel: properties
@settings(max_examples=400, deadline=None)
@given(graph=graphs())
def test_the_kernel_equals_the_plain_fixpoint(graph):
    owner, owned, bp, listed, threshold = graph
    expected = plain_fixpoint(owner, owned, bp, listed, threshold)
    assert resolve(owner, owned, bp, listed, threshold) == expected
    assert resolve(owner, owned, bp, listed, threshold, xp=FAKE) == expected


@settings(max_examples=60, deadline=None)
@given(graph=graphs(max_entities=40, max_holdings=120), data=st.data())
def test_larger_graphs_and_any_holding_order(graph, data):
    owner, owned, bp, listed, threshold = graph
    expected = plain_fixpoint(owner, owned, bp, listed, threshold)
    order = data.draw(st.permutations(range(len(owner))))
    shuffled = [[values[i] for i in order] for values in (owner, owned, bp)]
    assert resolve(*shuffled, listed, threshold) == expected
    assert resolve(*shuffled, listed, threshold, xp=FAKE) == expected


@settings(max_examples=100, deadline=None)
@given(graph=graphs())
def test_invariants(graph):
    owner, owned, bp, listed, threshold = graph
    r = resolve(owner, owned, bp, listed, threshold)
    for i, mask in enumerate(listed):
        assert r["affiliate"][i] == (mask == 0 and r["held_bp"][i] >= threshold)
        if mask:
            assert (r["level"][i], r["parent"][i], r["lists"][i]) == (0, -1, mask)
        elif r["affiliate"][i]:
            p = r["parent"][i]
            assert r["level"][i] >= 1 and r["level"][p] == r["level"][i] - 1
            assert r["lists"][i] != 0 and r["lists"][p] & ~r["lists"][i] == 0
        else:
            assert (r["level"][i], r["parent"][i]) == (-1, -1)
    if any(listed) and any(r["affiliate"]):
        assert r["steps"] >= max(r["level"]) + 1


# ------------------------------------------------------------------------------ kernel: cases
A, B, C, D, E, F, X, Y = range(8)


def test_the_worked_examples():
    listed = [1, 0, 0, 0, 0, 0, 2, 4]  # A on list bit 1, X on bit 2, Y on bit 4
    owner = [A, B, X, Y, A, E]
    owned = [B, C, D, D, E, F]
    bp = [5000, 5000, 3000, 2000, 4000, 10_000]
    r = resolve(owner, owned, bp, listed)
    assert r == plain_fixpoint(owner, owned, bp, listed)
    assert [i for i, a in enumerate(r["affiliate"]) if a] == [B, C, D]  # not E, not F
    assert r["level"][B] == 1 and r["level"][C] == 2 and r["level"][D] == 1 and r["level"][E] == -1
    assert r["parent"][B] == A and r["parent"][C] == B and r["parent"][D] == X  # 30% before 20%
    assert r["lists"][D] == 2 | 4 and r["lists"][C] == 1 and r["lists"][E] == 1 and r["lists"][F] == 0
    assert r["held_bp"][D] == 5000 and r["held_bp"][E] == 4000 and r["held_bp"][F] == 0


def test_cycles():
    # A owns 60% of B and B 60% of A, neither listed: neither is an affiliate.
    r = resolve([0, 1], [1, 0], [6000, 6000], [0, 0])
    assert r["affiliate"] == [False, False] and r["steps"] == 0 and r["held_bp"] == [0, 0]
    # A listed owner of 50% of A: both.
    r = resolve([0, 1, 2], [1, 0, 0], [6000, 6000, 5000], [0, 0, 4])
    assert r["affiliate"] == [True, True, False]
    assert r["level"] == [1, 2, 0] and r["parent"] == [2, 0, -1] and r["lists"] == [4, 4, 4]
    assert r["held_bp"] == [11000, 6000, 0]  # the kernel does not police 100% (the reader does)
    assert r["steps"] == 3


def test_a_cycle_held_in_aggregate_by_a_listed_party_and_the_cycle():
    # L holds 30% of A; B holds 30% of A; A holds 60% of B: no affiliates (the cycle never starts).
    r = resolve([2, 1, 0], [0, 0, 1], [3000, 3000, 6000], [0, 0, 1])
    assert r["affiliate"] == [False, False, False] and r["held_bp"] == [3000, 0, 0] and r["lists"] == [1, 0, 1]


def test_a_100_level_chain():
    n = 101
    listed = [1] + [0] * (n - 1)
    owner = list(range(n - 1))
    owned = list(range(1, n))
    r = resolve(owner, owned, [5000] * (n - 1), listed)
    assert all(r["affiliate"][1:]) and r["level"] == list(range(n)) and r["parent"] == [-1] + list(range(n - 1))
    assert r["steps"] == n and r["lists"] == [1] * n
    assert resolve(owner, owned, [5000] * (n - 1), listed, xp=FAKE) == r
    # One link at 49.99% cuts the chain there.
    bp = [5000] * (n - 1)
    bp[49] = 4999
    r = resolve(owner, owned, bp, listed)
    assert r["affiliate"] == [False] + [True] * 49 + [False] * 51
    assert r["lists"][50] == 1 and r["lists"][51] == 0 and r["held_bp"][50] == 4999


def test_a_long_chain_reversed_and_shuffled_indices():
    rng = np.random.default_rng(3)
    n = 300
    names = rng.permutation(n)
    owner, owned = names[:-1], names[1:]
    listed = np.zeros(n, np.int64)
    listed[names[0]] = 2
    r = resolve(owner[::-1], owned[::-1], np.full(n - 1, 10_000), listed)
    assert sum(r["affiliate"]) == n - 1 and r["level"][names[-1]] == n - 1 and r["parent"][names[-1]] == names[-2]


def test_full_and_minimal_holdings():
    r = resolve([0, 0], [1, 2], [10_000, 1], [1, 0, 0])
    assert r["affiliate"] == [False, True, False] and r["held_bp"] == [0, 10_000, 1] and r["lists"] == [1, 1, 1]
    r = resolve([0, 0], [1, 2], [10_000, 1], [1, 0, 0], threshold=1)
    assert r["affiliate"] == [False, True, True]
    r = resolve([0], [1], [4999], [1, 0])
    assert r["affiliate"] == [False, False] and r["level"] == [0, -1]
    # Two holdings of one owner in one entity add up; a holding in itself is ignored.
    r = resolve([0, 0, 1], [1, 1, 1], [2500, 2500, 10_000], [1, 0])
    assert r["affiliate"] == [False, True] and r["held_bp"] == [0, 5000]


def test_parent_ties_larger_holding_then_lower_index():
    # C (3) held by listed A (0) 25%, listed B (1) 25%, listed G (2) 30%: parent G.
    r = resolve([0, 1, 2], [3, 3, 3], [2500, 2500, 3000], [1, 1, 2, 0])
    assert r["parent"][3] == 2 and r["lists"][3] == 3
    r = resolve([1, 0], [2, 2], [2500, 2500], [1, 1, 0])
    assert r["parent"][2] == 0
    # A shortest chain wins over a larger holding further away.
    # L(0) -> M(1) 90%, M -> T(2) 90%, L -> T 10%: level 1 via L.
    r = resolve([0, 1, 0], [1, 2, 2], [9000, 9000, 1000], [1, 0, 0])
    assert r["level"][2] == 1 and r["parent"][2] == 0


def test_lists_of_minority_held_and_listed_entities():
    # Listed A(1) owns 20% of listed B(2) and 10% of N; affiliate C (A 60%) owns 5% of N.
    r = resolve([0, 0, 0, 2], [1, 3, 2, 3], [2000, 1000, 6000, 500], [1, 2, 0, 0])
    assert r["lists"] == [1, 2, 1, 1] and r["held_bp"] == [0, 2000, 6000, 1500]
    assert r["affiliate"] == [False, False, True, False]


def test_no_entities_no_holdings():
    assert resolve([], [], [], []) == {"affiliate": [], "held_bp": [], "lists": [], "level": [], "parent": [],
                                       "steps": 0}
    r = resolve([], [], [], [0, 1])
    assert r["steps"] == 1 and r["level"] == [-1, 0]


@pytest.mark.parametrize("owner, owned, bp, listed, message", [
    ([0], [2], [100], [0, 0], "out of range"),
    ([-1], [0], [100], [0], "out of range"),
    ([0], [1], [0], [0, 0], "1..10000"),
    ([0], [1], [10_001], [0, 0], "1..10000"),
    ([0, 1], [1], [5], [0, 0], "differ in length"),
])
def test_bad_input(owner, owned, bp, listed, message):
    with pytest.raises(ValueError, match=message):
        resolve(owner, owned, bp, listed)


def test_segment_sums_are_exact_int64():
    big = 2**62
    keys, sums = segment_sums(np.array([1, 0, 1, 1]), np.array([big, 3, big - 1, -big]), np)
    assert keys.tolist() == [0, 1] and sums.tolist() == [3, big - 1]


def test_on_the_fake_cupy_namespace(fake_gpu):
    cupy = sys.modules["cupy"]
    rng = np.random.default_rng(11)
    n, m = 2000, 5000
    owner, owned = rng.integers(0, n, m), rng.integers(0, n, m)
    bp = rng.choice([1000, 2500, 3000, 5000, 6000, 10_000], m)
    listed = np.where(rng.random(n) < 0.05, rng.choice([1, 2, 4, 5], n), 0)
    expected = resolve(owner, owned, bp, listed)
    assert resolve(owner, owned, bp, listed, xp=cupy) == expected
    assert expected == plain_fixpoint(owner.tolist(), owned.tolist(), bp.tolist(), listed.tolist())


def test_on_a_device():
    backend = cupy_or_skip()
    rng = np.random.default_rng(5)
    n, m = 5000, 20_000
    owner, owned = rng.integers(0, n, m), rng.integers(0, n, m)
    bp = rng.choice([1000, 2500, 3000, 5000, 6000, 10_000], m)
    listed = np.where(rng.random(n) < 0.05, rng.choice([1, 2, 4, -2**63], n), 0)
    on_device = resolve_affiliates(*(backend.xp.asarray(a) for a in (owner, owned, bp, listed)), xp=backend.xp)
    host = {k: backend.to_host(getattr(on_device, k)).tolist() for k in ("affiliate", "held_bp", "lists", "level",
                                                                          "parent")}
    assert {**host, "steps": on_device.steps} == resolve(owner, owned, bp, listed)


def test_the_benchmark_dry_run():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_ownership import main, synthetic_graph

    graph = synthetic_graph(3000, 6000, chains=5, chain_length=100, cycles=20)
    r = resolve(graph["owner"], graph["owned"], graph["bp"], graph["listed"])
    assert r == plain_fixpoint(graph["owner"].tolist(), graph["owned"].tolist(), graph["bp"].tolist(),
                               graph["listed"].tolist())
    record = main(["--dry-run"])
    assert record["affiliates"] > 0 and record["steps"] > 1


# ------------------------------------------------------------------------------ the holdings reader
def holding(owner_id="A", owned_id="B", percent="50", **fields) -> dict:
    row = {"owner_id": owner_id, "owned_id": owned_id, "percent": percent}
    row.update(fields)
    return row


def write(rows, path: Path, columns=None) -> Path:
    """Rows (dicts) as a CSV or Parquet file, every value as text (``None``: empty)."""
    columns = columns or [c for c in OWNERSHIP_COLUMNS if any(c in row for row in rows)] or ["owner_id", "owned_id",
                                                                                            "percent"]
    table = pa.table({c: pa.array([row.get(c) for row in rows], pa.string()) for c in columns})
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def day(text: str) -> int:
    return (dt.date.fromisoformat(text) - EPOCH).days


def reasons_of(holdings) -> dict[int, str]:
    return dict(zip(holdings.quarantine["source_row"].tolist(), holdings.quarantine["reason"].tolist()))


def reconciled(holdings) -> None:
    counts = holdings.counts
    assert counts["rows_read"] == counts["accepted"] + counts["quarantined"]
    assert counts["accepted"] == len(holdings.table) and counts["quarantined"] == len(holdings.quarantine)
    assert sum(counts["by_reason"].values()) == counts["quarantined"]
    assert sorted(holdings.table["source_row"].tolist() + holdings.quarantine["source_row"].tolist()) == list(
        range(1, counts["rows_read"] + 1))


@pytest.mark.parametrize("text, bp", [("12.34", 1234), ("50", 5000), ("0.01", 1), ("100", 10_000), ("100.00", 10_000),
                                      ("050.5", 5050), (".5", 50), ("7.", 700), ("12.340000", 1234), ("+3", 300)])
def test_exact_basis_points(text, bp):
    assert percent_bp(text) == bp


@pytest.mark.parametrize("text, reason", [("12.345", "percent finer than a basis point"),
                                          ("0.001", "percent finer than a basis point"),
                                          ("0", "percent out of range"), ("0.00", "percent out of range"),
                                          ("-5", "percent out of range"), ("100.01", "percent out of range"),
                                          ("1" * 5000, "percent out of range"), ("abc", "unknown percent"),
                                          (".", "unknown percent"), ("1e2", "unknown percent"),
                                          ("50%", "unknown percent"), ("12,5", "unknown percent")])
def test_refused_percents(text, reason):
    assert percent_bp(text) == reason


def test_every_quarantine_reason(tmp_path):
    rows = [
        holding(percent="12.34", source="registry"),                      # 1 accepted
        holding(owner_id=None, owner_name=None),                          # 2 missing owner
        holding(owned_id=None),                                           # 3 missing owned
        holding(percent=None),                                            # 4 unknown percent
        holding(percent="abc"),                                           # 5 unknown percent
        holding(percent="12.345"),                                        # 6 finer
        holding(percent="0"),                                             # 7 range
        holding(percent="100.5"),                                         # 8 range
        holding(valid_from="2025-02-30"),                                 # 9 bad date
        holding(valid_until="31/12/2025"),                                # 10 bad date
        holding(valid_from="2025-03-01", valid_until="2025-02-28"),       # 11 window
        holding(owner_country="XX"),                                      # 12 unknown country
        holding(owner_id=None, owner_name="...", owned_id="C"),           # 13 normalizes to nothing
        holding(owned_id="A"),                                            # 14 self-ownership
        holding(percent="12.34", source="again"),                         # 15 duplicate of 1
        holding(owner_id="P", owned_id="Q", percent="60"),                # 16 over 100%
        holding(owner_id="R", owned_id="Q", percent="40.01"),             # 17 over 100%
    ]
    h = read_holdings(write(rows, tmp_path / "h.csv"))
    reconciled(h)
    got = reasons_of(h)
    assert got == {2: "missing owner", 3: "missing owned entity", 4: "unknown percent", 5: "unknown percent",
                   6: "percent finer than a basis point", 7: "percent out of range", 8: "percent out of range",
                   9: "bad date", 10: "bad date", 11: "valid_until before valid_from", 12: "unknown country",
                   13: "name normalizes to nothing", 14: "self-ownership",
                   15: "duplicate holding: same owner, owned entity and window as row 1",
                   16: "over 100% held in one entity: id:Q held 10001 bp in all on the start",
                   17: "over 100% held in one entity: id:Q held 10001 bp in all on the start"}
    assert set(h.counts["by_reason"]) == set(REASONS)
    assert h.counts["by_reason"]["unknown percent"] == 2 and h.counts["rows_read"] == 17
    assert h.table["source_row"].tolist() == [1] and h.table["bp"].tolist() == [1234]
    assert h.quarantine.columns.tolist() == list(OWNERSHIP_COLUMNS) + ["reason", "source_row"]
    assert h.quarantine.loc[h.quarantine["source_row"] == 10, "valid_until"].item() == "31/12/2025"


def test_the_accepted_table(tmp_path):
    rows = [holding(owner_id="  A-1 ", owner_name="Acme Ltd.", owned_id=None, owned_name="Beta GmbH",
                    owned_country="de", percent=" 25.5 ", valid_from="2025-09-29", valid_until="2026-11-09",
                    source="filing 7"),
            holding(owner_id=None, owner_name="ACME Limited", owner_country="CN", owned_id="B-2", percent="100")]
    h = read_holdings(write(rows, tmp_path / "h.csv"))
    assert h.table.columns.tolist() == list(TABLE_COLUMNS)
    first, second = h.table.to_dict("records")
    assert first["owner_key"] == "id:A-1" and first["owner_id"] == "A-1"
    assert first["owned_key"] == f"name:{normalize_name('Beta GmbH')}@DE" and first["owned_country"] == "DE"
    assert first["owned_normalized"] == normalize_name("Beta GmbH")
    assert (first["bp"], first["valid_from"], first["valid_until"]) == (2550, day("2025-09-29"), day("2026-11-09"))
    assert first["source"] == "filing 7" and first["source_row"] == 1
    assert second["owner_key"] == f"name:{normalize_name('ACME Limited')}@CN"
    assert (second["valid_from"], second["valid_until"]) == (OPEN_FROM, OPEN_UNTIL)
    assert pd.isna(second["owner_id"]) and pd.isna(second["source"])
    assert h.table["bp"].dtype == np.int64 and h.table["valid_from"].dtype == np.int64
    assert h.table["source_row"].dtype == np.int64
    assert len(h.sha256) == 64


def test_names_key_by_normalized_name_and_country(tmp_path):
    rows = [holding(owner_id=None, owner_name="Acme Co., Ltd.", owned_id="T", percent="30"),
            holding(owner_id=None, owner_name="ACME CO LTD", owned_id="T", percent="30"),  # same key: duplicate
            holding(owner_id=None, owner_name="Acme Co., Ltd.", owner_country="CN", owned_id="T", percent="30")]
    h = read_holdings(write(rows, tmp_path / "h.csv"))
    assert reasons_of(h) == {2: "duplicate holding: same owner, owned entity and window as row 1"}
    assert h.table["owner_key"].tolist() == ["name:acme@", "name:acme@CN"]


def test_dated_holdings_over_100_percent_only_when_they_overlap(tmp_path):
    rows = [holding("P", "Q", "60", valid_from="2025-01-01", valid_until="2025-06-30"),
            holding("R", "Q", "50", valid_from="2025-07-01"),                        # follows: fine
            holding("S", "T", "60", valid_until="2025-06-30"),
            holding("U", "T", "50", valid_from="2025-06-30"),                        # one day together
            holding("V", "W", "60", valid_from="2025-01-01", valid_until="2025-01-31"),
            holding("V", "W", "60", valid_from="2025-02-01", valid_until="2025-02-28")]  # not duplicates
    h = read_holdings(write(rows, tmp_path / "h.csv"))
    reconciled(h)
    assert reasons_of(h) == {3: "over 100% held in one entity: id:T held 11000 bp in all on 2025-06-30",
                             4: "over 100% held in one entity: id:T held 11000 bp in all on 2025-06-30"}


def test_duplicates_keep_the_first_row_whatever_the_percent(tmp_path):
    rows = [holding(percent="10"), holding(percent="20"), holding(percent="10", valid_from="2025-01-01"),
            holding(percent="30")]
    h = read_holdings(write(rows, tmp_path / "h.csv"))
    assert h.table["source_row"].tolist() == [1, 3]
    assert reasons_of(h) == {2: "duplicate holding: same owner, owned entity and window as row 1",
                             4: "duplicate holding: same owner, owned entity and window as row 1"}


def test_a_refused_row_does_not_count_towards_100_percent(tmp_path):
    rows = [holding("P", "Q", "60"), holding("R", "Q", "50", owner_country="ZZ"), holding("P", "Q", "60")]
    h = read_holdings(write(rows, tmp_path / "h.csv"))
    assert h.table["source_row"].tolist() == [1]


def test_csv_and_parquet_give_the_same_table(tmp_path):
    rows = [holding(owner_id=None, owner_name="Acme Ltd.", owner_country="cn", percent="12.5",
                    valid_from="2025-01-01", source="s"),
            holding("B", "C", "50.01"), holding("C", "D", "12.345"), holding("X", "X", "1")]
    csv_file = read_holdings(write(rows, tmp_path / "h.csv"))
    parquet = read_holdings(write(rows, tmp_path / "h.parquet"))
    pd.testing.assert_frame_equal(csv_file.table, parquet.table)
    pd.testing.assert_frame_equal(csv_file.quarantine, parquet.quarantine)
    assert csv_file.counts == parquet.counts and csv_file.sha256 != parquet.sha256


def test_parquet_numbers_and_dates_are_read_as_their_text(tmp_path):
    table = pa.table({"owner_id": pa.array([1, 2], pa.int64()), "owned_id": ["B", "B"],
                      "percent": pa.array([12.34, 0.1 + 0.2]), "valid_from": pa.array([dt.date(2025, 1, 1), None])})
    pq.write_table(table, tmp_path / "h.pq")
    h = read_holdings(tmp_path / "h.pq")
    assert h.table["owner_key"].tolist() == ["id:1"] and h.table["bp"].tolist() == [1234]
    assert h.table["valid_from"].tolist() == [day("2025-01-01")]
    assert reasons_of(h) == {2: "percent finer than a basis point"}


def test_parquet_decimals_and_dictionaries(tmp_path):
    import decimal

    table = pa.table({"owner_name": pa.array(["Acme", "Acme"]).dictionary_encode(), "owned_id": ["B", "C"],
                      "percent": pa.array([decimal.Decimal("12.340"), decimal.Decimal("0.005")], pa.decimal128(6, 3))})
    pq.write_table(table, tmp_path / "h.parquet")
    h = read_holdings(tmp_path / "h.parquet")
    assert h.table["bp"].tolist() == [1234] and reasons_of(h) == {2: "percent finer than a basis point"}
    pq.write_table(pa.table({"owner_id": pa.array([[1]]), "owned_id": ["B"], "percent": ["5"]}), tmp_path / "l.parquet")
    with pytest.raises(OwnershipError, match="column owner_id has type list"):
        read_holdings(tmp_path / "l.parquet")


def test_csv_byte_order_mark_and_bad_bytes(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(b"\xef\xbb\xbfowner_id,owned_id,percent\nA,B,50\n")
    assert read_holdings(path).table["owner_key"].tolist() == ["id:A"]
    path.write_bytes(b"owner_id,owned_id,percent\nA\xff,B,50\n")
    with pytest.raises(OwnershipError, match="cannot read as CSV"):
        read_holdings(path)
    path.write_bytes("owner_id,owned_id,percent\nA,B,50\n".encode("utf-16"))
    with pytest.raises(OwnershipError, match="UTF-16"):
        read_holdings(path)


def test_an_empty_file_with_a_header(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("owner_name,owned_name,percent\n")
    h = read_holdings(path)
    assert h.counts == {"rows_read": 0, "accepted": 0, "quarantined": 0, "by_reason": {}}
    assert h.table.columns.tolist() == list(TABLE_COLUMNS) and len(h.quarantine) == 0


def test_header_names_are_trimmed(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(" owner_id , owned_id ,percent\nA,B,50\n")
    assert read_holdings(path).table["bp"].tolist() == [5000]


@pytest.mark.parametrize("content, name, message", [
    (None, "missing.csv", "no such ownership file"),
    ("owner_id,owned_id,percent\n", "h.txt", "unknown ownership file format"),
    ("", "h.csv", "empty file"),
    ("owner_id,owned_id,percnt\nA,B,50\n", "h.csv", "unknown column 'percnt' \\(did you mean percent\\?\\)"),
    ("owner_id,owned_id\nA,B\n", "h.csv", "missing required column percent"),
    ("owner_id,percent\nA,50\n", "h.csv", "missing column owned_id or owned_name"),
    ("owner_id,owner_id,owned_id,percent\nA,A,B,50\n", "h.csv", "given twice"),
    ("owner_id,owned_id,percent\nA,B,50,7\n", "h.csv", "4 field\\(s\\), the header has 3"),
    ("owner_id;owned_id;percent\nA;B;50\n", "h.csv", "';'-separated"),
    ("owner_id,owned_id,percent\nA,B,50\n", "h.parquet", "cannot read as Parquet"),
])
def test_files_that_cannot_be_read(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(OwnershipError, match=message):
        read_holdings(path)


def test_parquet_named_csv_and_a_folder(tmp_path):
    write([holding()], tmp_path / "h.parquet").rename(tmp_path / "h.csv")
    with pytest.raises(OwnershipError, match="is Parquet"):
        read_holdings(tmp_path / "h.csv")
    with pytest.raises(OwnershipError, match="is a directory"):
        read_holdings(tmp_path)


def test_holdings_feed_the_kernel(tmp_path):
    """The reader's keys, factorized, are the kernel's entity indices (how the engine joins them)."""
    rows = [holding("A", "B", "50"), holding("B", "C", "50"), holding("X", "D", "30"), holding("Y", "D", "20"),
            holding("A", "E", "40"), holding("E", "F", "100")]
    h = read_holdings(write(rows, tmp_path / "h.parquet"))
    codes, keys = pd.factorize(pd.concat([h.table["owner_key"], h.table["owned_key"]], ignore_index=True))
    n = len(keys)
    listed = np.array([1 if key in ("id:A", "id:X", "id:Y") else 0 for key in keys], np.int64)
    r = resolve_affiliates(codes[:len(h.table)], codes[len(h.table):], h.table["bp"].to_numpy(), listed)
    assert sorted(keys[np.flatnonzero(r.affiliate)]) == ["id:B", "id:C", "id:D"] and n == 8
