"""Lakes in an object store: a real S3 API on loopback (moto's server), read by one process and by Dask workers.

The lake is ingested on local disk and copied into a bucket as it is (as `aws s3 sync` would);
screening it from its ``s3://`` URL must give the decisions of the local lake, row for row.
"""
import json
import os
import random
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from conftest import write_ledger
from pipeline.lake.store import STATE_ENV
from pipeline.lake import Lake, LakeError, ingest, verify
from pipeline.lake.store import LakeStore, lake_location
from pipeline.lake_screen import screen_lake
from pipeline.policy import load_policy
from test_differential import random_rows
from test_lake_screen import columns

pytest.importorskip("moto.server")

def upload(s3, folder, bucket):
    """Copy a local lake into ``s3://bucket/lake`` as it is; its URL."""
    s3.create_dir(bucket)
    pafs.copy_files(str(folder), f"{bucket}/lake", source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3)
    return f"s3://{bucket}/lake"


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s3-lake")
    rows = sorted(random_rows(random.Random(23), 400), key=lambda r: (r["ship_date"], r["shipment_id"]))
    ingest([write_ledger(rows, folder / "ledger.parquet")], folder / "lake")
    return folder / "lake"


def test_locations_are_absolute_paths_or_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert lake_location("lake") == str(tmp_path / "lake")
    assert lake_location("s3://bucket/some/lake/") == "s3://bucket/some/lake"
    for bad in ("ftp://host/lake", "s3://", "s3:///"):
        with pytest.raises(LakeError):
            lake_location(bad)


def test_a_lake_in_s3_screens_like_the_local_lake(s3, local_lake, tmp_path):
    url = upload(s3, local_lake, "lakes-one")
    policy = load_policy("ai-diffusion-2025")
    local = screen_lake(local_lake, policy, tmp_path / "local", scheduler="none", incremental=False)
    remote = screen_lake(url, policy, tmp_path / "remote", scheduler="none")
    assert columns(pq.read_table(tmp_path / "remote" / "decisions.parquet")) == \
        columns(pq.read_table(tmp_path / "local" / "decisions.parquet"))
    assert remote.summary["decisions"] == local.summary["decisions"] and remote.summary["lake"]["path"] == url
    assert remote.summary["rows"] == local.summary["rows"]
    # The checkpoint of a lake in a store lives on this machine: the next run finds nothing new.
    again = screen_lake(url, policy, tmp_path / "remote", scheduler="none")
    assert again.plan.mode == "unchanged" and again.scan.rows == 0
    assert len(list(Path(os.environ[STATE_ENV]).glob("*/checkpoints/ai-diffusion-2025-*"))) == 1
    assert verify(url).ok and len(verify(url).verified) == len(verify(local_lake).verified)


def test_dask_workers_read_the_partitions_from_the_store(s3, local_lake, tmp_path):
    distributed = pytest.importorskip("distributed")
    url = upload(s3, local_lake, "lakes-dask")
    policy = load_policy("ai-diffusion-2025")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        run = screen_lake(url, policy, tmp_path / "dask", scheduler=cluster.scheduler_address, incremental=False)
    local = screen_lake(local_lake, policy, tmp_path / "local", scheduler="none", incremental=False)
    assert len(run.scan.pieces) == len(Lake.open(local_lake).partitions) > 3
    assert run.summary["decisions"] == local.summary["decisions"] and run.scan.carry.equals(local.scan.carry)
    assert columns(pq.read_table(tmp_path / "dask" / "decisions.parquet")) == \
        columns(pq.read_table(tmp_path / "local" / "decisions.parquet"))


def test_damage_in_the_store_is_named(s3, local_lake, tmp_path):
    url = upload(s3, local_lake, "lakes-damaged")
    lake = Lake.open(url)
    target = lake.partitions[1].path
    with s3.open_output_stream(f"lakes-damaged/lake/{target}") as stream:
        stream.write(b"not the partition")
    with pytest.raises(LakeError, match="does not match the lake's manifest"):
        lake.read(lake.partitions[1])
    found = verify(url)
    assert [path for path, _ in found.bad] == [target]
    s3.delete_file(f"lakes-damaged/lake/{target}")
    with pytest.raises(LakeError, match="missing"):
        Lake.open(url).read(lake.partitions[1])
    with pytest.raises(LakeError, match="not a ledger lake"):
        Lake.open("s3://lakes-damaged/nothing-here")
    assert LakeStore.at(url).exists("manifest.json")


def test_the_commands_take_lake_urls(s3, local_lake, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    url = upload(s3, local_lake, "lakes-cli")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["screen", "--lake", url, "-p", "ai-diffusion-2025", "-o", "out", "--scheduler",
                                 "none", "-q"])
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "out" / "decisions.parquet").num_rows == sum(p.rows for p in Lake.open(url).partitions)
    result = runner.invoke(app, ["audit", url, "-p", "ai-diffusion-2025", "-o", "audit", "-q"])
    assert result.exit_code == 0, result.output
    local = runner.invoke(app, ["audit", str(local_lake), "-p", "ai-diffusion-2025", "-o", "audit-local", "-q"])
    assert local.exit_code == 0, local.output
    assert columns(pq.read_table(tmp_path / "audit" / "decisions.parquet")) == \
        columns(pq.read_table(tmp_path / "audit-local" / "decisions.parquet"))
    assert pq.read_table(tmp_path / "audit" / "discrepancies.parquet").equals(
        pq.read_table(tmp_path / "audit-local" / "discrepancies.parquet"))
    result = runner.invoke(app, ["lake", "verify", url])
    assert result.exit_code == 0 and "files verified" in result.output, result.output
    history, _ = night_files(tmp_path)
    result = runner.invoke(app, ["ingest", str(history), "--lake", "s3://lakes-cli/fresh", "-q"])
    assert result.exit_code == 0 and "generation 1" in result.output, result.output
    assert not (tmp_path / "s3:").exists()  # the URL was never taken for a folder name


# ------------------------------------------------------------------ ingest straight into the store
def night_files(tmp_path):
    rows = sorted(random_rows(random.Random(29), 500), key=lambda r: (r["ship_date"], r["shipment_id"]))
    return (write_ledger(rows[:420], tmp_path / "history.parquet"), write_ledger(rows[420:], tmp_path / "tonight.parquet"))


def test_ingest_into_s3_and_nights_equal_the_local_lake(s3, tmp_path):
    s3.create_dir("lakes-ingest")
    url = "s3://lakes-ingest/ledgers/lake"
    history, tonight = night_files(tmp_path)
    policy = load_policy("ai-diffusion-2025")
    runs = {}
    for where in (url, tmp_path / "local-lake"):
        first = ingest([history], where)
        assert first.committed and first.generation == 1 and first.lake == (url if where == url else where)
        runs[str(where)] = [screen_lake(where, policy, tmp_path / f"out-{first.lake == url}", scheduler="none")]
        again = ingest([history, tonight], where)  # the history again: no-ops; tonight: new rows
        assert again.generation == 2 and again.counts["duplicates"] == 420
        runs[str(where)].append(screen_lake(where, policy, tmp_path / f"out-{first.lake == url}", scheduler="none"))
    remote, local = runs[url], runs[str(tmp_path / "local-lake")]
    assert [r.plan.mode for r in remote] == ["full", "incremental"] and remote[1].scan.rows == 80
    assert columns(pq.read_table(tmp_path / "out-True" / "decisions.parquet")) == \
        columns(pq.read_table(tmp_path / "out-False" / "decisions.parquet"))
    assert remote[1].summary["rows"] == local[1].summary["rows"]
    assert s3.get_file_info("lakes-ingest/ledgers/lake/manifests/g-00000002.json").size > 0
    assert verify(url).ok
    lake = Lake.open(url)
    assert lake.generation == 2 and lake.counts == Lake.open(tmp_path / "local-lake").counts


def test_a_killed_ingest_into_s3_leaves_the_lake_as_it_was(s3, tmp_path, monkeypatch):
    import subprocess
    import sys

    from pipeline.lake import CRASH_ENV, manifest

    s3.create_dir("lakes-killed")
    url = "s3://lakes-killed/lake"
    history, tonight = night_files(tmp_path)
    ingest([history], url)
    before = Lake.open(url)
    script = "import sys; from pipeline.lake import ingest; ingest([sys.argv[1]], sys.argv[2])"
    killed = subprocess.run([sys.executable, "-c", script, str(tonight), url], env={**os.environ, CRASH_ENV: "1"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 1, killed.stderr
    after = Lake.open(url)
    assert after.generation == before.generation and after.counts == before.counts
    assert [p.path for p in after.partitions] == [p.path for p in before.partitions]
    uploaded = {store_file for store_file in listing(s3, "lakes-killed/lake/partitions")}
    assert uploaded - {f"lakes-killed/lake/{p}" for p in named(after)}  # the killed ingest's uploads are there
    # The next ingest commits; uploads no manifest keeps go once they are old enough (here: at once).
    monkeypatch.setattr(manifest, "RETAIN_SECONDS", 0)
    report = ingest([tonight], url)
    assert report.committed and report.generation == before.generation + 1
    now = Lake.open(url)
    assert set(listing(s3, "lakes-killed/lake/partitions")) == {f"lakes-killed/lake/{p}" for p in named(now)}
    assert now.counts["rows"] == 500 and verify(url).ok


def listing(s3, folder):
    return [i.path for i in s3.get_file_info(pafs.FileSelector(folder, recursive=True)) if i.type == pafs.FileType.File]


def named(lake):
    entries = lake._manifest
    return {p["path"] for p in entries["partitions"]} | {p["index"] for p in entries["partitions"]} | \
        {r["path"] for r in entries.get("retired", []) if r["path"].startswith("partitions/")}


def test_two_ingests_at_once_the_second_commit_fails_cleanly(s3, tmp_path):
    s3.create_dir("lakes-race")
    url = "s3://lakes-race/lake"
    history, tonight = night_files(tmp_path)
    ingest([history], url)
    raced = []

    def meanwhile(stage, done, total):  # another ingest commits while this one writes its partitions
        if stage == "writing partitions" and not raced:
            raced.append(ingest([tonight], url))

    late = write_ledger(random_rows(random.Random(31), 30), tmp_path / "late.parquet")
    with pytest.raises(LakeError, match="another ingest committed generation 2 first"):
        ingest([late], url, progress=meanwhile)
    lake = Lake.open(url)
    assert raced[0].generation == lake.generation == 2 and lake.counts["rows"] == 500  # the other one, whole
    again = ingest([late], url)  # run again: on top of it
    counts = again.counts
    assert again.generation == 3 and counts["accepted"] > 0
    assert counts["rows_read"] == 30 == counts["accepted"] + counts["duplicates"] + counts["quarantined"]
    assert Lake.open(url).counts["rows"] == 500 + counts["accepted"]


def test_ingest_refuses_what_it_cannot_commit_to(s3, tmp_path):
    s3.create_dir("lakes-foreign")
    s3.open_output_stream("lakes-foreign/data/report.csv").close()
    history, _ = night_files(tmp_path)
    with pytest.raises(LakeError, match="holds other objects"):
        ingest([history], "s3://lakes-foreign/data")
    with pytest.raises(LakeError, match="not supported yet"):
        ingest([history], "gs://bucket/lake")
    assert listing(s3, "lakes-foreign") == ["lakes-foreign/data/report.csv"]


def test_store_failures_are_errors_not_tracebacks(s3, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app
    from pipeline.lake import LakeWarning
    from pipeline.lake import store as store_module

    history, tonight = night_files(tmp_path)
    for url, why in (("s3://no-such-bucket-here/lake", "no bucket"), ("s3:///lake", "give a bucket")):
        result = CliRunner().invoke(app, ["ingest", str(history), "--lake", url, "-q"])
        assert result.exit_code == 1 and "error:" in result.output and why in result.output, result.output
        assert "Traceback" not in result.output
    # A service that ignores If-None-Match would let two commits overwrite each other: refused.
    s3.create_dir("lakes-unconditional")
    monkeypatch.setattr(store_module.LakeStore, "create", lambda self, relative, data: True)
    with pytest.raises(LakeError, match="does not honour conditional writes"):
        ingest([history], "s3://lakes-unconditional/lake")
    monkeypatch.undo()
    # After the commit, a failing copy of manifest.json or clean-up is a warning: the ingest stands.
    url = "s3://lakes-unconditional/lake"
    ingest([history], url)

    def refused(self, relative, data):
        raise LakeError(f"{self.describe(relative)}: cannot write to the store: AccessDenied")

    monkeypatch.setattr(store_module.LakeStore, "write_bytes", refused)
    with pytest.warns(LakeWarning, match="generation 2 is committed"):
        report = ingest([tonight], url)
    monkeypatch.undo()
    assert report.committed and Lake.open(url).generation == 2  # found past the stale manifest.json
    assert json.loads(s3.open_input_file("lakes-unconditional/lake/manifest.json").read())["generation"] == 1
