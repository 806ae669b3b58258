"""Screening a lake: equal to screening its files, incremental from the checkpoint, published whole."""
import datetime as dt
import random

import pyarrow.parquet as pq
import pytest

from conftest import shipment, write_ledger
from pipeline import lake_screen
from pipeline.parties import PartyScreen
from pipeline.lake import ingest
from pipeline.lake_screen import screen_lake, screened_in_run
from pipeline.policy import load_policy
from pipeline.screen import screen_ledgers
from test_differential import COMPARED, OVERRIDES, random_rows


def columns(table, rows=None):
    out = {c: table.column(c).cast("string").to_pylist() if c in ("decision", "authorization", "reasons")
           else table.column(c).to_pylist() for c in COMPARED}
    return out if rows is None else {c: [v for v, keep in zip(values, rows) if keep] for c, values in out.items()}


@pytest.fixture
def ledger_rows():
    rows = random_rows(random.Random(7), 400)
    return sorted(rows, key=lambda r: (r["ship_date"], r["shipment_id"]))


def split(rows, day):
    return [r for r in rows if r["ship_date"] <= day], [r for r in rows if r["ship_date"] > day]


@pytest.mark.parametrize("policy_id", ["ai-diffusion-2025", "post-rescission-2025", "in-force"])
def test_lake_screen_equals_screening_the_files(ledger_rows, policy_id, tmp_path):
    policy = load_policy(policy_id, OVERRIDES[policy_id])
    path = write_ledger(ledger_rows, tmp_path / "all.parquet")
    ingest([path], tmp_path / "lake")
    run = screen_lake(tmp_path / "lake", policy, tmp_path / "out", scheduler="none")
    expected = screen_ledgers([path], policy)
    assert columns(pq.read_table(tmp_path / "out" / "decisions.parquet")) == columns(expected.decisions)
    for key in ("decisions", "by_destination", "allocation_headroom", "lpp"):
        assert run.summary[key] == expected.summary[key], key
    assert run.plan.mode == "full" and len(run.scan.pieces) > 3


def test_nightly_rows_after_the_checkpoint_are_screened_alone(ledger_rows, tmp_path, monkeypatch):
    policy = load_policy("ai-diffusion-2025", OVERRIDES["ai-diffusion-2025"])
    history, tonight = split(ledger_rows, "2027-09-10")
    assert history and tonight
    tonight[0]["consignee_name"] = "Brand New Compute Ltd"  # one name the history never saw
    lake = tmp_path / "lake"
    ingest([write_ledger(history, tmp_path / "history.parquet")], lake)
    first = screen_lake(lake, policy, tmp_path / "out", scheduler="none")
    assert first.plan.mode == "full"
    ingest([write_ledger(tonight, tmp_path / "tonight.parquet")], lake)
    # Party results live in the run (no process-wide cache): tonight starts from the checkpoint's.
    matched = []
    original = PartyScreen.screen_policy
    monkeypatch.setattr(PartyScreen, "screen_policy",
                        lambda self, names, policy, **options: matched.extend(zip(names, options["countries"]))
                        or original(self, names, policy, **options))
    second = screen_lake(lake, policy, tmp_path / "out", scheduler="none")
    # Consignees are (name, destination) under this rule set: the country moves fuzzy scores.
    seen = {(r["consignee_name"], r["destination_country"]) for r in history}
    new = {(r["consignee_name"], r["destination_country"]) for r in tonight} - seen
    assert set(matched) == new and ("Brand New Compute Ltd", tonight[0]["destination_country"]) in new
    assert len(matched) < len({(r["consignee_name"], r["destination_country"]) for r in tonight})
    assert second.plan.mode == "incremental"
    assert second.scan.rows == len(tonight)  # only the new rows were read and screened
    expected = screen_ledgers([write_ledger(ledger_rows, tmp_path / "all.parquet")], policy)
    in_tonight = [i >= len(history) for i in range(len(ledger_rows))]
    # The published set is complete (history carried from the checkpoint); the run names what it screened.
    assert columns(pq.read_table(tmp_path / "out" / "decisions.parquet")) == columns(expected.decisions)
    assert columns(screened_in_run(tmp_path / "out")) == columns(expected.decisions, in_tonight)
    assert second.summary["decisions"] == expected.summary["decisions"]
    assert second.summary["lake"]["decisions"]["carried_files"] == len(first.scan.pieces)
    assert second.summary["allocation_headroom"] == expected.summary["allocation_headroom"]
    assert second.summary["lpp"] == expected.summary["lpp"]
    third = screen_lake(lake, policy, tmp_path / "out", scheduler="none")
    assert third.plan.mode == "unchanged" and third.scan.rows == 0
    # Into a new folder: the complete set again, carried from the checkpoint, nothing screened.
    fourth = screen_lake(lake, policy, tmp_path / "new-out", scheduler="none")
    assert fourth.plan.mode == "unchanged" and fourth.scan.rows == 0
    assert columns(pq.read_table(tmp_path / "new-out" / "decisions.parquet")) == columns(expected.decisions)
    assert screened_in_run(tmp_path / "new-out").num_rows == 0
    assert fourth.summary["decisions"] == expected.summary["decisions"]


def test_nights_in_a_row_and_a_correction_after_them(ledger_rows, tmp_path):
    """Appends on appends (checkpoint parts reused), then a backdated row: always the whole-ledger result."""
    policy = load_policy("ai-diffusion-2025", OVERRIDES["ai-diffusion-2025"])
    lake, out = tmp_path / "lake", tmp_path / "out"
    nights = [split(ledger_rows, day)[0] for day in ("2026-12-31", "2027-09-10", "2027-12-31")] + [ledger_rows]
    done = 0
    for number, rows in enumerate(nights):
        ingest([write_ledger(rows[done:], tmp_path / f"night{number}.parquet")], lake)
        run = screen_lake(lake, policy, out, scheduler="none")
        assert run.plan.mode == ("full" if number == 0 else "incremental") and run.scan.rows == len(rows) - done
        expected = screen_ledgers([write_ledger(rows, tmp_path / f"upto{number}.parquet")], policy)
        assert columns(pq.read_table(out / "decisions.parquet")) == columns(expected.decisions)
        assert columns(screened_in_run(out)) == columns(expected.decisions, [i >= done for i in range(len(rows))])
        assert run.summary["allocation_headroom"] == expected.summary["allocation_headroom"]
        done = len(rows)
    late = shipment("ZZ-LATE", "2026-02-03", quantity=3000, destination_country="IN")
    ingest([write_ledger([late], tmp_path / "late.parquet")], lake)
    run = screen_lake(lake, policy, out, scheduler="none")
    assert run.plan.mode == "recompute" and run.scan.pieces[0].name == "2026-02"
    expected = screen_ledgers([tmp_path / f"upto{len(nights) - 1}.parquet", tmp_path / "late.parquet"], policy)
    assert columns(pq.read_table(out / "decisions.parquet")) == columns(expected.decisions)
    assert run.summary["allocation_headroom"] == expected.summary["allocation_headroom"]
    assert run.summary["lpp"] == expected.summary["lpp"]
    again = screen_lake(lake, policy, out, scheduler="none", incremental=False)
    assert again.scan.carry.equals(run.scan.carry)


def test_a_backdated_row_recomputes_from_its_partition(ledger_rows, tmp_path):
    policy = load_policy("ai-diffusion-2025", OVERRIDES["ai-diffusion-2025"])
    lake = tmp_path / "lake"
    ingest([write_ledger(ledger_rows, tmp_path / "all.parquet")], lake)
    screen_lake(lake, policy, tmp_path / "out", scheduler="none")
    late = shipment("ZZ-BACKDATED", "2025-06-15", sku="NVIDIA-H100-SXM", quantity=5000, destination_country="IN")
    ingest([write_ledger([late], tmp_path / "late.parquet")], lake)
    run = screen_lake(lake, policy, tmp_path / "out", scheduler="none")
    assert run.plan.mode == "recompute" and run.scan.pieces[0].name == "2025-06"
    expected = screen_ledgers([tmp_path / "all.parquet", tmp_path / "late.parquet"], policy)
    days = [d.isoformat() for d in expected.decisions.column("ship_date").to_pylist()]
    from_june = [d >= "2025-06-01" for d in days]
    assert columns(pq.read_table(tmp_path / "out" / "decisions.parquet")) == columns(expected.decisions)
    assert columns(screened_in_run(tmp_path / "out")) == columns(expected.decisions, from_june)
    assert run.summary["allocation_headroom"] == expected.summary["allocation_headroom"]


def test_replay_as_of_a_date(ledger_rows, tmp_path):
    policy = load_policy("post-rescission-2025", OVERRIDES["post-rescission-2025"])
    path = write_ledger(ledger_rows, tmp_path / "all.parquet")
    ingest([path], tmp_path / "lake")
    day = dt.date(2026, 7, 1)
    run = screen_lake(tmp_path / "lake", policy, tmp_path / "out", scheduler="none", as_of=day)
    expected = screen_ledgers([path], policy, as_of=day)
    assert columns(pq.read_table(tmp_path / "out" / "decisions.parquet")) == columns(expected.decisions)
    assert run.plan.mode == "full" and run.summary["as_of"] == "2026-07-01"
    assert not (tmp_path / "lake" / "checkpoints").exists()  # replays leave the checkpoint alone


def test_a_failed_run_leaves_the_published_results(ledger_rows, tmp_path, monkeypatch):
    policy = load_policy("ai-diffusion-2025")
    ingest([write_ledger(ledger_rows, tmp_path / "all.parquet")], tmp_path / "lake")
    screen_lake(tmp_path / "lake", policy, tmp_path / "out", scheduler="none")
    before = (tmp_path / "out" / "summary.json").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(lake_screen, "scan", broken)
    with pytest.raises(RuntimeError):
        screen_lake(tmp_path / "lake", policy, tmp_path / "out", scheduler="none", incremental=False)
    assert (tmp_path / "out" / "summary.json").read_text() == before
    assert pq.read_table(tmp_path / "out" / "decisions.parquet").num_rows == len(ledger_rows)


def test_dask_cluster_equals_one_process(ledger_rows, tmp_path, dask_cluster):
    policy = load_policy("ai-diffusion-2025", OVERRIDES["ai-diffusion-2025"])
    ingest([write_ledger(ledger_rows, tmp_path / "all.parquet")], tmp_path / "lake")
    one = screen_lake(tmp_path / "lake", policy, tmp_path / "one", scheduler="none", incremental=False)
    dask = screen_lake(tmp_path / "lake", policy, tmp_path / "dask", scheduler=dask_cluster.scheduler_address,
                       incremental=False)
    assert columns(pq.read_table(tmp_path / "dask" / "decisions.parquet")) == \
        columns(pq.read_table(tmp_path / "one" / "decisions.parquet"))
    assert dask.summary["allocation_headroom"] == one.summary["allocation_headroom"]
    assert dask.scan.carry.equals(one.scan.carry)


def test_replay_counts_reconcile(ledger_rows, tmp_path):
    ingest([write_ledger(ledger_rows, tmp_path / "all.parquet")], tmp_path / "lake")
    run = screen_lake(tmp_path / "lake", load_policy("ai-diffusion-2025"), None, scheduler="none",
                      as_of=dt.date(2026, 7, 1))
    rows = run.summary["rows"]
    assert rows["rows_read"] == rows["accepted"] + rows["quarantined"] + rows["excluded_after_as_of"] == 400
    assert rows["accepted"] == rows["screened_this_run"] == run.scan.rows > 0 and rows["excluded_after_as_of"] > 0
