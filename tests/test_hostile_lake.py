"""A lake under stress: ingests committing while readers run, damaged files, `chipscreen lake verify`."""
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import shipment, write_ledger
from flows.cli import app
from pipeline.lake import MANIFEST, Lake, LakeError, ingest, verify
from pipeline.lake import manifest as lake_manifest
from pipeline.lake_screen import screen_lake
from pipeline.policy import load_policy

POLICY = "post-rescission-2025"


def march(prefix, n, day="2025-03-0{}"):
    return [shipment(f"{prefix}{i}", day.format(1 + i % 9), quantity=1 + i) for i in range(n)]


def ids(table):
    return sorted(table.column("shipment_id").cast(pa.string()).to_pylist())


def manifest_of(lake_dir):
    return json.loads((Path(lake_dir) / MANIFEST).read_text())


def on_disk(lake_dir):
    return sorted(p.relative_to(lake_dir).as_posix() for p in (Path(lake_dir) / "partitions").rglob("*.parquet"))


def named_or_kept(lake_dir):
    manifest = manifest_of(lake_dir)
    return sorted([p["path"] for p in manifest["partitions"]] + [p["index"] for p in manifest["partitions"]]
                  + [r["path"] for r in manifest.get("retired", [])])


@pytest.fixture
def small_lake(tmp_path):
    """A lake of two months (March, April 2025) and one quarantined row, at generation 1."""
    rows = march("A", 6) + [shipment("APR1", "2025-04-02"), shipment("BAD", quantity=0)]
    ingest([write_ledger(rows, tmp_path / "first.parquet")], tmp_path / "lake")
    return tmp_path / "lake"


def cli(*args):
    """Exit code and output (stdout and stderr, line wrapping undone) of one command."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


# ------------------------------------------------------------------------ C9: one generation
def test_a_reader_keeps_its_generation_while_an_ingest_rewrites_its_partition(small_lake, tmp_path):
    old = Lake.open(small_lake)
    old_march = old.partition("2025-03")
    ingest([write_ledger(march("B", 4), tmp_path / "more.parquet")], small_lake)  # rewrites 2025-03
    new = Lake.open(small_lake)
    assert new.generation == old.generation + 1 and new.partition("2025-03").path != old_march.path
    # The old snapshot still reads generation g, rows and index alike.
    assert ids(old.read("2025-03")) == sorted(f"A{i}" for i in range(6))
    assert ids(old.read_index("2025-03")) == sorted(f"A{i}" for i in range(6))
    assert ids(old.ledger().rows) == sorted([f"A{i}" for i in range(6)] + ["APR1"])
    assert ids(new.read("2025-03")) == sorted([f"A{i}" for i in range(6)] + [f"B{i}" for i in range(4)])
    # The superseded files are listed as kept, and nothing else lies about.
    retired = manifest_of(small_lake)["retired"]
    assert {r["path"] for r in retired} == {old_march.path, old._index_paths["2025-03"]}
    assert all(r["generation"] == old.generation for r in retired)
    assert on_disk(small_lake) == named_or_kept(small_lake)


def test_superseded_files_go_after_the_retention_then_readers_get_a_clear_error(small_lake, tmp_path, monkeypatch):
    old = Lake.open(small_lake)
    gone = old.partition("2025-03").path
    for night in range(3):  # three more commits, each rewriting March
        ingest([write_ledger(march(f"N{night}-", 2), tmp_path / f"night{night}.parquet")], small_lake)
        assert on_disk(small_lake) == named_or_kept(small_lake)
    assert (small_lake / gone).exists()  # three commits but within the hour: kept
    assert ids(old.read("2025-03")) == sorted(f"A{i}" for i in range(6))
    monkeypatch.setattr(lake_manifest, "RETAIN_SECONDS", 0)
    middle = Lake.open(small_lake)  # generation 4
    ingest([write_ledger(march("Z", 2), tmp_path / "z.parquet")], small_lake)  # generation 5
    assert not (small_lake / gone).exists()  # 4 commits back and past the grace period
    assert (small_lake / middle.partition("2025-03").path).exists()  # one commit back: kept
    assert middle.read("2025-03").num_rows == middle.partition("2025-03").rows == 12
    assert on_disk(small_lake) == named_or_kept(small_lake)
    with pytest.raises(LakeError, match=r"the lake changed during the run \(generation 1 → 5\).*run again"):
        old.read("2025-03")
    assert ids(old.read("2025-04")) == ["APR1"]  # April was never rewritten


def test_a_lake_screen_survives_an_ingest_committing_mid_run(small_lake, tmp_path):
    policy = load_policy(POLICY)
    committed = []

    def ingest_now(message):
        if not committed:  # after the run opened the lake and planned, before it read a partition
            committed.append(ingest([write_ledger(march("LATE", 3), tmp_path / "late.parquet")], small_lake))

    run = screen_lake(small_lake, policy, tmp_path / "out", scheduler="none", progress=ingest_now)
    assert committed and committed[0].committed
    assert run.summary["lake"]["generation"] == 1
    decisions = pq.read_table(tmp_path / "out" / "decisions.parquet")
    assert ids(decisions) == sorted([f"A{i}" for i in range(6)] + ["APR1"])
    # The next run sees the late rows.
    again = screen_lake(small_lake, policy, tmp_path / "out", scheduler="none")
    assert again.summary["lake"]["generation"] == 2
    assert "LATE0" in pq.read_table(tmp_path / "out" / "decisions.parquet").column("shipment_id").to_pylist()


def test_clean_up_removes_only_the_lakes_own_files(small_lake, tmp_path):
    march_dir = small_lake / "partitions" / "2025-03"
    mine = [march_dir / "NOTES.txt", small_lake / "quarantine" / "README.md", march_dir / "copy.parquet"]
    for path in mine:
        path.write_text("kept by its owner\n")
    (small_lake / "partitions" / "2025-03" / "rows-deadbeefdeadbeef.parquet").write_bytes(b"crashed ingest")
    ingest([write_ledger(march("C", 2), tmp_path / "c.parquet")], small_lake)
    assert all(path.read_text() == "kept by its owner\n" for path in mine)
    assert not (march_dir / "rows-deadbeefdeadbeef.parquet").exists()  # a leftover of the lake's own


# ------------------------------------------------------------------- C10: damaged partitions
def test_a_truncated_partition_is_a_clear_error(small_lake, tmp_path):
    part = Lake.open(small_lake).partition("2025-03")
    path = small_lake / part.path
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(LakeError, match=r"partition 2025-03 .*chipscreen lake verify"):
        Lake.open(small_lake).read("2025-03")
    code, output = cli("screen", "--lake", small_lake, "-p", POLICY, "-o", tmp_path / "out", "--scheduler", "none",
                       "-q")
    assert code == 1 and "error:" in output and "Traceback" not in output
    assert "2025-03" in output and "chipscreen lake verify" in output
    code, output = cli("lake", "verify", small_lake)
    assert code == 1 and f"{part.path}: " in output and "bytes" in output


def test_a_partition_rewritten_with_other_content_is_refused(small_lake):
    part = Lake.open(small_lake).partition("2025-03")
    path = small_lake / part.path
    table = pq.read_table(path)
    quantity = table.column("quantity")
    changed = table.set_column(table.schema.get_field_index("quantity"), "quantity", pc.add(quantity, 1000))
    pq.write_table(changed, path, compression="zstd")  # same rows, other quantities
    with pytest.raises(LakeError, match=r"partition 2025-03 does not match the lake's manifest"):
        Lake.open(small_lake).read("2025-03")
    with pytest.raises(LakeError, match="chipscreen lake verify"):
        Lake.open(small_lake).ledger()


def test_same_size_corruption_is_found_by_verify(small_lake):
    lake = Lake.open(small_lake)
    part = lake.partition("2025-03")
    path = small_lake / part.path
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF  # inside the first data page: size, footer and row count unchanged
    path.write_bytes(bytes(data))
    code, output = cli("lake", "verify", small_lake)
    assert code == 1, output
    assert f"{part.path}: content differs from the manifest (SHA-256)" in output
    assert "error: 1 of 5 files" in output and "Traceback" not in output


def test_a_missing_index_is_a_clear_error_naming_verify(small_lake):
    lake = Lake.open(small_lake)
    (small_lake / lake._index_paths["2025-04"]).unlink()
    with pytest.raises(LakeError, match=r"id index of partition 2025-04 is missing .*generation 1.*lake verify"):
        lake.read_index("2025-04")
    found = verify(small_lake)
    assert found.bad == [(lake._index_paths["2025-04"], "missing")] and len(found.verified) == 4


def test_verify_a_sound_lake(small_lake):
    code, output = cli("lake", "verify", small_lake)
    assert code == 0, output
    assert "5 files verified (lake generation 1)" in output  # 2 partitions, 2 indexes, 1 quarantine


def test_verify_and_reads_accept_manifests_without_sizes(small_lake):
    manifest = manifest_of(small_lake)
    for part in manifest["partitions"]:
        for key in ("bytes", "footer_sha256", "index_sha256", "index_bytes", "index_footer_sha256"):
            part.pop(key)
    for entry in manifest["quarantine"]:
        entry.pop("bytes"), entry.pop("footer_sha256")
    manifest.pop("retired")
    (small_lake / MANIFEST).write_text(json.dumps(manifest))
    lake = Lake.open(small_lake)
    assert ids(lake.ledger().rows) == sorted([f"A{i}" for i in range(6)] + ["APR1"])
    assert lake.quarantine().num_rows == 1
    code, output = cli("lake", "verify", small_lake)
    assert code == 0 and "5 files verified" in output and "2 id indexes" in output
    # Row counts still guard the reads of such a lake.
    path = small_lake / lake.partition("2025-03").path
    pq.write_table(pq.read_table(path).slice(0, 2), path)
    with pytest.raises(LakeError, match=r"2 rows, the manifest records 6"):
        Lake.open(small_lake).read("2025-03")


def test_verify_a_folder_that_is_not_a_lake(tmp_path):
    code, output = cli("lake", "verify", tmp_path)
    assert code == 1 and "error:" in output and "not a ledger lake" in output


def test_a_damaged_partition_read_on_a_dask_worker_is_a_lake_error(small_lake, tmp_path, dask_cluster):
    path = small_lake / Lake.open(small_lake).partition("2025-03").path
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(LakeError, match=r"partition 2025-03 does not match .*chipscreen lake verify"):
        screen_lake(small_lake, load_policy(POLICY), tmp_path / "out", scheduler=dask_cluster.scheduler_address)
    assert not (tmp_path / "out").exists()  # nothing published


def test_a_manifest_with_a_damaged_entry_is_a_clear_error(small_lake):
    manifest = manifest_of(small_lake)
    del manifest["partitions"][0]["rows"]
    (small_lake / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(LakeError, match=r"manifest.json: damaged manifest \(KeyError: 'rows'\)"):
        Lake.open(small_lake)
    code, output = cli("lake", "verify", small_lake)
    assert code == 1 and "error:" in output and "damaged manifest" in output and "Traceback" not in output


# ------------------------------------------------------- ingest into a damaged lake: a LakeError
def _break_manifest(lake_dir):
    (lake_dir / MANIFEST).write_text("{\n")


def _empty_quarantine(lake_dir):
    (lake_dir / manifest_of(lake_dir)["quarantine"][0]["path"]).write_bytes(b"")


def _truncate_march_index(lake_dir):
    path = lake_dir / Lake.open(lake_dir)._index_paths["2025-03"]
    path.write_bytes(path.read_bytes()[:-40])


def _april_rows_as_march(lake_dir):
    lake = Lake.open(lake_dir)
    (lake_dir / lake.partition("2025-03").path).write_bytes((lake_dir / lake.partition("2025-04").path).read_bytes())


def _april_rows_as_march_without_sizes(lake_dir):
    manifest = manifest_of(lake_dir)
    for part in manifest["partitions"]:
        for key in ("bytes", "footer_sha256", "index_bytes", "index_footer_sha256"):
            part.pop(key)
    (lake_dir / MANIFEST).write_text(json.dumps(manifest))
    _april_rows_as_march(lake_dir)


def _damaged_quarantine_entry(lake_dir):
    manifest = manifest_of(lake_dir)
    del manifest["quarantine"][0]["path"]
    (lake_dir / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, expected", [
    (_break_manifest, r"manifest"),
    (_empty_quarantine, r"quarantine file"),
    (_truncate_march_index, r"id index of partition 2025-03"),
    (_april_rows_as_march, r"partition 2025-03"),
    (_april_rows_as_march_without_sizes, r"partition 2025-03"),
    (_damaged_quarantine_entry, r"damaged manifest"),
])
def test_ingest_into_a_damaged_lake_is_a_clear_error_and_changes_nothing(small_lake, tmp_path, damage, expected):
    damage(small_lake)
    before = {p.relative_to(small_lake).as_posix(): p.read_bytes() for p in small_lake.rglob("*") if p.is_file()}
    # New March rows (pass the id index, rewrite the partition), a repeat of a lake row, a bad row.
    rows = march("NEW", 2) + [shipment("A0", "2025-03-01", quantity=5), shipment("BAD2", quantity=0),
                              shipment("BAD", quantity=0)]
    ledger = write_ledger(rows, tmp_path / "damaged.csv")
    with pytest.raises(LakeError, match=expected):
        ingest([ledger], small_lake)
    code, output = cli("ingest", ledger, "--lake", small_lake)
    assert code == 1 and "error:" in output and "Traceback" not in output, output
    # A damaged file names `chipscreen lake verify`; a damaged manifest says so (as screen does).
    assert ("chipscreen lake verify" in output) != ("damaged manifest" in output or "unreadable manifest" in output)
    after = {p.relative_to(small_lake).as_posix(): p.read_bytes() for p in small_lake.rglob("*") if p.is_file()}
    assert after == before


def test_a_lake_opened_by_a_relative_path_reads_from_any_working_folder(small_lake, tmp_path, monkeypatch):
    import pickle

    from pipeline.run.source import LakePiece

    monkeypatch.chdir(small_lake.parent)
    lake = Lake.open("lake")  # as `--lake lake` would: Dask workers may run in another folder
    assert lake.path.is_absolute()
    piece = pickle.dumps(LakePiece(lake, lake.partition("2025-03")))
    expected = lake.read("2025-03")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert pickle.loads(piece).read().equals(expected)


@pytest.mark.parametrize("damage", ["delete", "empty", "swap", "quarantine"])
def test_ingest_refuses_a_damaged_lake_even_where_it_writes_nothing(small_lake, tmp_path, damage):
    lake = Lake.open(small_lake)
    march_file, april_file = (small_lake / lake.partition(k).path for k in ("2025-03", "2025-04"))
    if damage == "delete":
        april_file.unlink()
    elif damage == "empty":
        april_file.write_bytes(b"")
    elif damage == "swap":
        march, april = march_file.read_bytes(), april_file.read_bytes()
        march_file.write_bytes(april)
        april_file.write_bytes(march)
    else:
        next(iter((small_lake / "quarantine").glob("*.parquet"))).write_bytes(b"")
    manifest = (small_lake / MANIFEST).read_bytes()
    may = write_ledger([shipment("MAY1", "2025-05-02")], tmp_path / "may.csv")  # a month no damaged file holds
    with pytest.raises(LakeError, match="lake verify"):
        ingest([may], small_lake)
    assert (small_lake / MANIFEST).read_bytes() == manifest
    assert not list((small_lake / "partitions").glob("2025-05*"))
