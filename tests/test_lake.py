"""The ledger lake: partitions and manifest, idempotent and incremental ingest, duplicates, crash safety."""
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import shipment, write_ledger
from flows.cli import app
from pipeline.generate import generate_ledger
from pipeline.ingest import REASON_CONFLICT, REASON_EXACT_DUPLICATE, LedgerReadError, file_digest, read_ledgers
from pipeline.lake import (CRASH_ENV, MANIFEST, STORED_COLUMNS, REASON_ALREADY_SHIPPED, REASON_LAKE_CONFLICT, Lake, LakeError,
                           ingest, verify)
from pipeline.policy import load_policy
from pipeline.screen import screen_ledger, screen_ledgers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A small synthetic ledger with every kind of bad row, and the same rows split by quarter."""
    folder = tmp_path_factory.mktemp("generated")
    whole = folder / "ledger.parquet"
    generate_ledger(whole, 6000, seed=7, bad_rows=35, chunk_rows=1000)
    clean = folder / "clean.parquet"
    generate_ledger(clean, 4000, seed=8, chunk_rows=1000)
    table = pq.read_table(clean)
    quarter = pc.cast(table.column("ship_date"), pa.int32()).to_numpy() // 91
    parts = []
    for number, value in enumerate(sorted(set(quarter.tolist()))):
        parts.append(folder / f"clean-{number:02d}.parquet")
        pq.write_table(table.filter(pa.array(quarter == value)), parts[-1])
    return whole, clean, parts


def manifest_of(lake):
    return json.loads((Path(lake) / MANIFEST).read_text())


def plain(table):
    """Dictionary columns decoded (dictionaries may list values that no row uses)."""
    return pa.table({name: (column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column)
                     for name, column in zip(table.column_names, table.columns)})


def reconcile(counts):
    assert counts["rows_read"] == counts["accepted"] + counts["duplicates"] + counts["quarantined"], counts


def test_partitions_and_manifest(tmp_path, ledger_file):
    rows = [shipment("S3", "2025-03-02"), shipment("S1", "2025-01-31"), shipment("S2", "2025-01-05"),
            shipment("S4", "2025-03-02", status="pending"), shipment("S0", "2025-03-01")]
    path = ledger_file(rows, "ledger.csv")
    report = ingest([path], tmp_path / "lake")
    assert report.committed and report.generation == 1 and report.counts["accepted"] == 5
    lake = Lake.open(tmp_path / "lake")
    assert [p.key for p in lake.partitions] == ["2025-01", "2025-03"]
    first, second = lake.partitions
    assert (first.first_date, first.last_date, first.rows) == (dt.date(2025, 1, 5), dt.date(2025, 1, 31), 2)
    assert (second.first_date, second.last_date, second.rows) == (dt.date(2025, 3, 1), dt.date(2025, 3, 2), 3)
    for part in lake.partitions:
        assert part.sha256 == file_digest(lake.path / part.path)
        assert part.path.startswith(f"partitions/{part.key}/")
        dt.datetime.fromisoformat(part.ingested_at)
    assert lake.read(second).column("shipment_id").to_pylist() == ["S0", "S3", "S4"]
    assert lake.read_index(second).column("shipment_id").to_pylist() == ["S0", "S3", "S4"]
    assert lake.read(second, columns=["shipment_id", "exporter"]).column("exporter").to_pylist() == ["Exporter A"] * 3
    manifest = manifest_of(lake.path)
    assert manifest["generation"] == 1 and manifest["counts"]["rows"] == 5
    assert manifest["files"][0]["sha256"] == file_digest(path) and manifest["files"][0]["rows_read"] == 5
    assert {p["key"]: p["rows"] for p in manifest["partitions"]} == {"2025-01": 2, "2025-03": 3}


def test_lake_ledger_equals_read_ledgers_and_screens_the_same(tmp_path, generated):
    whole, _, _ = generated
    report = ingest([whole], tmp_path / "lake")
    reconcile(report.counts)
    lake_ledger = Lake.open(tmp_path / "lake").ledger()
    files_ledger = read_ledgers([whole])
    assert lake_ledger.rows.schema == files_ledger.rows.schema
    assert plain(lake_ledger.rows).equals(plain(files_ledger.rows))
    assert lake_ledger.counts == files_ledger.counts
    assert report.counts["by_reason"] == files_ledger.counts["by_reason"]
    assert lake_ledger.quarantine.drop_columns(["source_sha256"]).equals(files_ledger.quarantine)
    policy = load_policy("ai-diffusion-2025")
    decisions = screen_ledger(lake_ledger, policy).decisions
    assert decisions.num_rows == report.counts["accepted"]
    assert plain(decisions).equals(plain(screen_ledgers([whole], policy).decisions))
    as_of = dt.date(2026, 2, 14)
    assert plain(Lake.open(tmp_path / "lake").ledger(as_of).rows).equals(plain(read_ledgers([whole], as_of=as_of).rows))


def test_ingesting_again_changes_nothing(tmp_path, generated):
    whole, _, _ = generated
    first = ingest([whole], tmp_path / "lake")
    before = (tmp_path / "lake" / MANIFEST).read_bytes()
    again = ingest([whole], tmp_path / "lake")
    assert not again.committed and again.generation == first.generation
    assert (tmp_path / "lake" / MANIFEST).read_bytes() == before
    assert again.counts["accepted"] == 0 and again.counts["duplicates"] == first.counts["accepted"]
    assert again.counts["quarantine_added"] == 0
    reconcile(again.counts)
    # The same rows in another file: nothing added, but the file is recorded as ingested.
    lake = Lake.open(tmp_path / "lake")
    stored = pa.concat_tables([lake.read(p, columns=STORED_COLUMNS) for p in lake.partitions])
    copy = write_ledger(stored.to_pylist()[::-1], tmp_path / "copy.csv")
    third = ingest([copy], tmp_path / "lake")
    assert third.counts["accepted"] == 0 and third.counts["duplicates"] == first.counts["accepted"]
    after = manifest_of(tmp_path / "lake")
    assert after["partitions"] == json.loads(before)["partitions"]
    assert [f["sha256"] for f in after["files"]][-1] == file_digest(copy)


def test_conflicting_duplicate_is_quarantined_with_reason(tmp_path, ledger_file):
    ingest([ledger_file([shipment("A", quantity=8), shipment("B")], "one.csv")], tmp_path / "lake")
    conflict = ledger_file([shipment("A", quantity=9), shipment("C")], "two.csv")
    report = ingest([conflict], tmp_path / "lake")
    assert report.counts == {**report.counts, "accepted": 1, "quarantined": 1, "quarantine_added": 1,
                             "by_reason": {REASON_LAKE_CONFLICT: 1}}
    reconcile(report.counts)
    lake = Lake.open(tmp_path / "lake")
    ledger = lake.ledger()
    assert ledger.rows.column("shipment_id").to_pylist() == ["A", "B", "C"]
    assert ledger.rows.column("quantity").to_pylist() == [8, 8, 8]
    quarantine = lake.quarantine().to_pylist()
    assert [(q["shipment_id"], q["quantity"], q["reason"], q["source_row"]) for q in quarantine] == \
        [("A", "9", REASON_LAKE_CONFLICT, 1)]
    assert ledger.counts["quarantined"] == 1
    again = ingest([conflict], tmp_path / "lake")  # known: not quarantined twice
    assert not again.committed and again.counts["quarantined"] == 1 and again.counts["quarantine_added"] == 0
    # Within one call, as read_ledgers: exact repeats count once, conflicting ids are all quarantined.
    both = ledger_file([shipment("D"), shipment("D"), shipment("E", quantity=1), shipment("E", quantity=2)], "3.csv")
    report = ingest([both], tmp_path / "lake")
    assert report.counts["by_reason"] == {REASON_EXACT_DUPLICATE: 1, REASON_CONFLICT: 2}


def test_shipped_row_supersedes_pending_row(tmp_path, ledger_file):
    pending = ledger_file([shipment("P1", "2025-05-20", status="pending"), shipment("K", "2025-05-02")], "a.csv")
    ingest([pending], tmp_path / "lake")
    shipped = ledger_file([shipment("P1", "2025-04-28", status="shipped", quantity=6)], "b.csv")
    report = ingest([shipped], tmp_path / "lake")
    assert (report.counts["accepted"], report.counts["superseded"], report.counts["quarantined"]) == (1, 1, 0)
    assert report.partitions_written == ["2025-04", "2025-05"]
    lake = Lake.open(tmp_path / "lake")
    rows = lake.ledger().rows.to_pylist()
    assert [(r["shipment_id"], r["status"], r["quantity"]) for r in rows] == [("P1", "shipped", 6), ("K", "shipped", 8)]
    assert lake.counts["superseded"] == 1 and lake.counts["rows"] == 2
    # The stale pending line arriving again is rejected, not re-added.
    report = ingest([pending], tmp_path / "lake")
    assert report.counts["by_reason"] == {REASON_ALREADY_SHIPPED: 1} and report.counts["duplicates"] == 1


def test_ingest_in_several_calls_equals_one(tmp_path, generated):
    _, clean, parts = generated
    ingest([clean], tmp_path / "once")
    held_back = parts[1]  # a backdated file, ingested last
    for path in [p for p in parts if p != held_back]:
        ingest([path], tmp_path / "steps")
    last = ingest([held_back], tmp_path / "steps")
    assert last.partitions_written and last.counts["accepted"] == pq.read_metadata(held_back).num_rows
    once, steps = Lake.open(tmp_path / "once"), Lake.open(tmp_path / "steps")
    assert steps.generation == len(parts)
    assert steps.ledger().rows.equals(once.ledger().rows)
    assert [(p.key, p.rows, p.sha256) for p in steps.partitions] == [(p.key, p.rows, p.sha256) for p in once.partitions]
    on_disk = sorted(p.relative_to(steps.path).as_posix() for p in (steps.path / "partitions").rglob("*.parquet"))
    kept = [r["path"] for r in manifest_of(steps.path).get("retired", [])]  # superseded, kept for readers
    assert kept and on_disk == sorted([p.path for p in steps.partitions]
                                      + [steps._index_paths[p.key] for p in steps.partitions] + kept)


_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from pipeline.lake import ingest
def progress(stage, done, total):
    if {stop!r} and stage == "writing partitions" and done == 2:
        print("READY", flush=True)
        time.sleep(60)
ingest({paths!r}, {lake!r}, progress=progress)
"""


def _child(paths, lake, stop=False, env=None):
    code = _CHILD.format(root=str(ROOT), paths=[str(p) for p in paths], lake=str(lake), stop=stop)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def test_crash_mid_ingest_leaves_the_lake_as_it_was(tmp_path, generated):
    _, clean, parts = generated
    lake_dir = tmp_path / "lake"
    ingest(parts[:2], lake_dir)
    before = (lake_dir / MANIFEST).read_bytes()
    rows_before = Lake.open(lake_dir).ledger().rows
    # 1. the test hook: exit abruptly after 2 partitions written; 2. a real SIGKILL at the same point.
    hooked = _child(parts[2:], lake_dir, env={CRASH_ENV: "2"})
    killed = None
    try:
        assert hooked.wait(60) == 1
        assert (lake_dir / MANIFEST).read_bytes() == before
        killed = _child(parts[2:], lake_dir, stop=True)
        assert killed.stdout.readline().strip() == "READY"
        os.kill(killed.pid, signal.SIGKILL)
        assert killed.wait(60) == -signal.SIGKILL
    finally:
        for child in (hooked, killed):
            if child is not None and child.poll() is None:
                child.kill()
    assert (lake_dir / MANIFEST).read_bytes() == before
    lake = Lake.open(lake_dir)
    assert lake.ledger().rows.equals(rows_before)
    assert (lake_dir / ".staging").exists()  # left behind, invisible to readers
    report = ingest(parts[2:], lake_dir)
    assert report.committed and not (lake_dir / ".staging").exists()
    assert plain(Lake.open(lake_dir).ledger().rows).equals(plain(read_ledgers([clean]).rows))
    named = {p.path for p in Lake.open(lake_dir).partitions} \
        | {r["path"] for r in manifest_of(lake_dir)["retired"] if "/rows-" in r["path"]}  # kept for readers
    assert {p.relative_to(lake_dir).as_posix() for p in (lake_dir / "partitions").rglob("rows-*")} == named


def test_bad_input_is_quarantined_or_a_clear_error(tmp_path, ledger_file):
    path = ledger_file([shipment("A"), shipment("B", quantity=0), shipment("C", destination_country="XX"),
                        shipment("D", ship_date="2025-02-30")], "bad.csv")
    with open(path, "a") as handle:
        handle.write('"unterminated,line\n')
    report = ingest([path], tmp_path / "lake")
    reconcile(report.counts)
    assert report.counts["accepted"] == 1 and report.counts["quarantined"] == 4
    quarantine = Lake.open(tmp_path / "lake").quarantine()
    assert quarantine.num_rows == 4 and quarantine.column("source_sha256").to_pylist() == [file_digest(path)] * 4
    assert read_ledgers([path]).counts["by_reason"] == report.counts["by_reason"]
    before = (tmp_path / "lake" / MANIFEST).read_bytes()
    with pytest.raises(LedgerReadError, match="missing.parquet"):
        ingest([path, tmp_path / "missing.parquet"], tmp_path / "lake")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(LedgerReadError, match="broken.parquet"):
        ingest([tmp_path / "broken.parquet"], tmp_path / "lake")
    assert (tmp_path / "lake" / MANIFEST).read_bytes() == before
    with pytest.raises(LakeError, match="not a ledger lake"):
        Lake.open(tmp_path)
    with pytest.raises(LakeError, match="not a ledger lake"):
        ingest([path], ROOT / "tests")


def test_files_without_rows_ingest_as_nothing_beside_others(tmp_path, ledger_file):
    """A header-only Parquet file and an empty JSON Lines file add no rows, also beside a real ledger."""
    from pipeline.ingest import LEDGER_COLUMNS

    header_only = tmp_path / "empty.parquet"
    pq.write_table(pa.table({c: pa.array([], pa.string()) for c in LEDGER_COLUMNS}), header_only)
    (tmp_path / "empty.jsonl").write_text("")
    report = ingest([header_only, tmp_path / "empty.jsonl"], tmp_path / "lake")
    assert report.counts["rows_read"] == 0 and report.counts["accepted"] == 0
    report = ingest([header_only, ledger_file([shipment("A"), shipment("B")], "two.csv")], tmp_path / "lake")
    reconcile(report.counts)
    assert report.counts["accepted"] == 2
    assert Lake.open(tmp_path / "lake").ledger().rows.column("shipment_id").to_pylist() == ["A", "B"]


def test_cli_ingest_prints_a_report(tmp_path, ledger_file):
    path = ledger_file([shipment("A"), shipment("B", quantity=0)], "l.csv")
    result = CliRunner().invoke(app, ["ingest", str(path), "--lake", str(tmp_path / "lake"), "-q"])
    assert result.exit_code == 0, result.output
    assert "2 rows read = 1 added" in result.output and "generation 1" in result.output
    result = CliRunner().invoke(app, ["ingest", str(path), "--lake", str(tmp_path / "lake"), "-q"])
    assert result.exit_code == 0 and "unchanged (generation 1)" in result.output


def test_a_csv_ledger_streams_in_small_blocks_with_the_same_result(tmp_path, monkeypatch):
    """CSV is read a block at a time: many blocks give the same lake and quarantine as one."""
    import pipeline.lake.sources as lake_sources

    path = tmp_path / "ledger.csv"
    generate_ledger(path, 300, seed=4, bad_rows=30)
    whole = ingest([path], tmp_path / "one-block")
    monkeypatch.setattr(lake_sources, "CSV_BLOCK_BYTES", 2048)
    blocks = list(lake_sources._csv_batches(path, []))
    assert len(blocks) > 5
    streamed = ingest([path], tmp_path / "many-blocks")
    assert streamed.counts == whole.counts and streamed.counts["quarantined"] > 0
    one, many = Lake.open(tmp_path / "one-block"), Lake.open(tmp_path / "many-blocks")
    assert [p.sha256 for p in many.partitions] == [p.sha256 for p in one.partitions]
    key = ["source_row", "reason"]
    assert many.quarantine().sort_by([(k, "ascending") for k in key]).select(key).equals(
        one.quarantine().sort_by([(k, "ascending") for k in key]).select(key))


def ingest_each(calls, lake):
    """Ingest each call's files in turn into ``lake``; the counts of each call."""
    return [ingest(paths, lake).counts for paths in calls]


def test_duplicate_checks_give_the_same_lake_in_many_hash_buckets(tmp_path, monkeypatch, generated):
    """Ingest holds one id-hash bucket at a time: with buckets of a few rows (thousands of them) the
    repeats within a call, the no-ops, supersedes and conflicts against the lake come out the same."""
    import pipeline.lake.dedupe as dedupe

    whole, _, parts = generated  # `whole` has exact duplicates and conflicting repeats
    history = [shipment(f"H{i}", "2025-05-20", status="pending" if i % 3 == 0 else "shipped") for i in range(40)]
    tonight = ([dict(history[i], status="shipped", ship_date="2025-05-21") for i in range(0, 40, 3)]  # supersede
               + [history[1], dict(history[2], quantity=99), dict(history[4], status="pending")]  # no-op, conflicts
               + [shipment(f"N{i}", "2025-06-02") for i in range(20)] + [shipment("N1", "2025-06-03")])
    calls = [[whole, parts[0]], [write_ledger(history, tmp_path / "history.csv")],
             [write_ledger(tonight, tmp_path / "tonight.csv")], [whole]]
    few = ingest_each(calls, tmp_path / "one-bucket")
    monkeypatch.setattr(dedupe, "BUCKET_ROWS", 3)
    assert dedupe.bucket_bits(6000) == 11
    many = ingest_each(calls, tmp_path / "many-buckets")
    assert many == few
    assert few[2]["superseded"] == 14 and few[2]["duplicates"] == 1 and few[3]["duplicates"] > 0
    assert set(few[2]["by_reason"]) == {REASON_LAKE_CONFLICT, REASON_ALREADY_SHIPPED, REASON_CONFLICT}
    one, split = Lake.open(tmp_path / "one-bucket"), Lake.open(tmp_path / "many-buckets")
    assert [p.sha256 for p in split.partitions] == [p.sha256 for p in one.partitions]
    assert split.quarantine().equals(one.quarantine())


def test_months_written_a_few_days_at_a_time_hold_the_same_rows(tmp_path, monkeypatch, generated):
    """A month is built a range of days at a time (bounded memory for dense months): with ranges of a
    few rows, the same calls give the same counts, rows, id index and screening as whole months."""
    import pipeline.lake.partitions as partitions

    whole, _, parts = generated
    history = [shipment(f"H{i}", f"2025-05-{1 + i % 28:02d}", status="pending" if i % 3 == 0 else "shipped")
               for i in range(60)]
    tonight = ([dict(history[i], status="shipped") for i in range(0, 60, 3)]  # supersede: old rows removed
               + [shipment(f"N{i}", f"2025-05-{1 + i % 5:02d}") for i in range(25)])
    calls = [[whole, parts[0]], [write_ledger(history, tmp_path / "history.csv")],
             [write_ledger(tonight, tmp_path / "tonight.csv")], [whole]]
    monthly = ingest_each(calls, tmp_path / "whole-months")
    monkeypatch.setattr(partitions, "PARTITION_CHUNK_ROWS", 4)
    ranged = ingest_each(calls, tmp_path / "day-ranges")
    assert ranged == monthly and monthly[2]["superseded"] == 20
    one, split = Lake.open(tmp_path / "whole-months"), Lake.open(tmp_path / "day-ranges")
    assert [(p.key, p.rows, p.first_date, p.last_date) for p in split.partitions] == \
        [(p.key, p.rows, p.first_date, p.last_date) for p in one.partitions]
    for a, b in zip(one.partitions, split.partitions):
        rows = [lake.read(p, columns=list(STORED_COLUMNS)) for lake, p in ((one, a), (split, b))]
        assert [r.to_pylist() for r in rows][0] == rows[1].to_pylist(), a.key
        assert one.read_index(a).equals(split.read_index(b)), a.key
        if a.rows > 8:
            assert pq.ParquetFile(split.path / b.path).metadata.num_row_groups > 1, a.key
    assert verify(tmp_path / "day-ranges").ok
    policy = load_policy("ai-diffusion-2025")
    screened = [screen_ledger(Lake.open(tmp_path / name).ledger(), policy).decisions
                for name in ("whole-months", "day-ranges")]
    assert screened[0].num_rows == one.counts["rows"] and screened[0].to_pylist() == screened[1].to_pylist()
