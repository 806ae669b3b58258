"""Pieces with carry-in give the single-process decisions row for row: chunks, Dask partitions, increments."""
import dataclasses
import random

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import write_ledger
from kernels.running_totals import TotalsOverflowError
from pipeline.carry import Carry, _allocation_series, _lpp_series, carries_in, totals_series
from pipeline.ingest import read_ledgers
from pipeline.policy import load_policy
from pipeline.scale import scan, scan_dask, split_rows
from pipeline.screen import screen_ledger
from pipeline.tally import Tally
from test_differential import COMPARED, OVERRIDES, random_rows

POLICIES = ["ai-diffusion-2025", "post-rescission-2025", "in-force"]


def columns(table):
    return {c: table.column(c).cast("string").to_pylist() if c in ("decision", "authorization", "reasons")
            else table.column(c).to_pylist() for c in COMPARED}


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    return {n: read_ledgers([write_ledger(random_rows(random.Random(n), n), folder / f"l{n}.parquet")])
            for n in (90, 400)}


def whole(ledger, policy):
    return screen_ledger(ledger, policy)


def assert_same(run, scanned, out):
    expected = columns(run.decisions)
    got = columns(pq.read_table(out / "decisions.parquet"))
    for column in COMPARED:
        assert got[column] == expected[column], column
    summary = run.summary
    assert scanned.tally.decision_counts() == summary["decisions"]
    assert scanned.tally.by_destination() == summary["by_destination"]
    assert scanned.tally.by_status() == summary["decisions_by_status"]
    assert scanned.tally.headroom(scanned.carry) == summary["allocation_headroom"]
    assert scanned.tally.lpp(scanned.carry) == summary["lpp"]
    assert scanned.carry.equals(run.outcome.carry)
    assert scanned.rows == run.decisions.num_rows


@pytest.mark.parametrize("policy_id", POLICIES)
@pytest.mark.parametrize("size,rows_per_piece", [(90, 1), (400, 7), (400, 64), (400, 400)])
def test_sequential_pieces_equal_one_process(ledgers, policy_id, size, rows_per_piece, tmp_path):
    policy = load_policy(policy_id, OVERRIDES[policy_id])
    ledger = ledgers[size]
    run = whole(ledger, policy)
    assert run.summary["allocation_headroom"] or size < 400, "the ledger must reach an allocation"
    scanned = scan(split_rows(ledger.rows, rows_per_piece), policy, tmp_path)
    assert_same(run, scanned, tmp_path)


def test_carry_decides_crossings(ledgers):
    """The equalities above only mean something if caps are crossed and the carry decides some of them."""
    policy = load_policy("ai-diffusion-2025", OVERRIDES["ai-diffusion-2025"])
    run = whole(ledgers[400], policy)
    assert run.summary["lpp"]["rows_over_limit"] > 0
    assert any(h["exceeded_rows"] for h in run.summary["allocation_headroom"])
    alone = Tally.merge([scan([piece], policy).tally for piece in split_rows(ledgers[400].rows, 64)])
    assert alone.decision_counts() != run.summary["decisions"]


@pytest.mark.parametrize("policy_id", POLICIES)
def test_increment_from_carry_equals_one_process(ledgers, policy_id, tmp_path):
    """A nightly run on the last rows, from the carry of the history before them."""
    policy = load_policy(policy_id, OVERRIDES[policy_id])
    rows = ledgers[400].rows
    history = scan(split_rows(rows.slice(0, 330), 100), policy)
    tonight = scan(split_rows(rows.slice(330), 30), policy, tmp_path, carry=history.carry)
    expected = columns(whole(ledgers[400], policy).decisions)
    got = columns(pq.read_table(tmp_path / "decisions.parquet"))
    for column in COMPARED:
        assert got[column] == expected[column][330:], column
    assert history.carry.plus(*[p.contribution for p in tonight.pieces]).equals(tonight.carry)


@pytest.fixture(scope="module")
def client(dask_cluster):
    import distributed

    with distributed.Client(dask_cluster) as c:
        yield c


@pytest.mark.parametrize("policy_id", POLICIES)
@pytest.mark.parametrize("size,rows_per_piece", [(30, 1), (400, 37)])
def test_dask_passes_equal_one_process(ledgers, client, policy_id, size, rows_per_piece, tmp_path):
    policy = load_policy(policy_id, OVERRIDES[policy_id])
    ledger = ledgers[size] if size in ledgers else dataclasses.replace(ledgers[90], rows=ledgers[90].rows.slice(0, size))
    run = whole(ledger, policy)
    scanned = scan_dask(split_rows(ledger.rows, rows_per_piece), policy, client, tmp_path)
    assert_same(run, scanned, tmp_path)
    sequential = scan(split_rows(ledger.rows, rows_per_piece), policy)
    for mine, theirs in zip(scanned.pieces, sequential.pieces):
        assert mine.contribution.equals(theirs.contribution)


def test_carries_in_is_an_exclusive_prefix_per_key():
    a = Carry.of(lpp=_lpp_series(["id:1", "id:2"], [2025, 2025], [5, 1]), allocation=_allocation_series(["X"], [3]))
    b = Carry.of(lpp=_lpp_series(["id:1"], [2026], [7]), allocation=_allocation_series(["X", "Y"], [4, 9]))
    carries, total = carries_in([a, b, a])
    assert carries[0].lpp.to_dict() == {("id:1", 2025): 0, ("id:2", 2025): 0}
    assert carries[1].lpp.to_dict() == {("id:1", 2026): 0}  # only the keys the piece touches
    assert carries[1].allocation.to_dict() == {"X": 3, "Y": 0}
    assert carries[2].lpp.to_dict() == {("id:1", 2025): 5, ("id:2", 2025): 1}
    assert carries[2].allocation.to_dict() == {"X": 7}
    assert total.lpp.to_dict() == {("id:1", 2025): 10, ("id:1", 2026): 7, ("id:2", 2025): 2}
    assert total.allocation.to_dict() == {"X": 10, "Y": 9}


def test_carried_totals_never_wrap():
    big = np.iinfo(np.int64).max // 2 + 1
    a = Carry.of(lpp=_lpp_series(["id:1"], [2025], [big]), allocation=_allocation_series())
    with pytest.raises(TotalsOverflowError):
        carries_in([a, a])
    with pytest.raises(TotalsOverflowError):
        a.plus(a)


def test_carry_round_trips_through_parquet(tmp_path):
    a = Carry.of(lpp=_lpp_series(["id:1", "name:acme@IN"], [2025, 2026], [5, 1]), allocation=_allocation_series(["IN 2025"], [3]))
    a.write(tmp_path / "carry.parquet")
    assert Carry.read(tmp_path / "carry.parquet").equals(a)
    assert not Carry.read(tmp_path / "carry.parquet").equals(Carry.empty())


def test_share_condition_pieces_get_both_carry_ins():
    """A piece with only China lines of a key still gets the US base carried in, and the reverse."""
    us = Carry.of(china_volume__base=totals_series(["SKU|acme"], None, [10]))
    cn = Carry.of(china_volume=totals_series(["SKU|acme"], None, [3]))
    carries, total = carries_in([us, cn, us])
    assert carries[1].get("china_volume.base").to_dict() == {("SKU|acme", 0): 10}
    assert carries[2].get("china_volume").to_dict() == {("SKU|acme", 0): 3}
    assert total.get("china_volume.base").to_dict() == {("SKU|acme", 0): 20}


def test_carry_keeps_every_accumulator_through_parquet(tmp_path):
    a = Carry.of(lpp=_lpp_series(["id:1"], [2025], [5]), china_volume=totals_series(["A|x"], None, [2]),
                 china_volume__base=totals_series(["A|x"], None, [9]))
    a.write(tmp_path / "carry.parquet")
    back = Carry.read(tmp_path / "carry.parquet")
    assert back.equals(a) and sorted(back.totals) == ["china_volume", "china_volume.base", "lpp"]
