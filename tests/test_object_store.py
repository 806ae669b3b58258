"""Lakes in an object store: a real S3 API on loopback (moto's server), read by one process and by Dask workers.

The lake is ingested on local disk and copied into a bucket as it is (as `aws s3 sync` would);
screening it from its ``s3://`` URL must give the decisions of the local lake, row for row.
"""
import os
import random
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from conftest import write_ledger
from pipeline.checkpoint import CHECKPOINTS_ENV
from pipeline.lake import Lake, LakeError, ingest, verify
from pipeline.lake.store import LakeStore, lake_location
from pipeline.lake_screen import screen_lake
from pipeline.policy import load_policy
from test_differential import random_rows
from test_lake_screen import columns

moto_server = pytest.importorskip("moto.server")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "chipscreen-test", "AWS_SECRET_ACCESS_KEY": "chipscreen-test",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 endpoint on loopback; the environment points every S3 client (and Dask worker) at it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {key: os.environ.get(key) for key in [*CREDENTIALS, "AWS_ENDPOINT_URL", CHECKPOINTS_ENV]}
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=f"http://{host}:{port}")
    os.environ[CHECKPOINTS_ENV] = str(tmp_path_factory.mktemp("checkpoints"))
    try:
        yield pafs.S3FileSystem(endpoint_override=f"http://{host}:{port}", allow_bucket_creation=True)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


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
    assert len(list(Path(os.environ[CHECKPOINTS_ENV]).glob("*/ai-diffusion-2025-*"))) == 1
    assert verify(url).ok and len(verify(url).verified) == len(verify(local_lake).verified)


def test_dask_workers_read_the_partitions_from_the_store(s3, local_lake, tmp_path):
    distributed = pytest.importorskip("distributed")
    url = upload(s3, local_lake, "lakes-dask")
    policy = load_policy("ai-diffusion-2025")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
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
    for command in (["ingest", str(tmp_path / "out" / "summary.json"), "--lake", url],
                    ["nightly", "--lake", url, "-o", "nightly", "--scheduler", "none"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1 and "error:" in result.output and "local disk" in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "s3:").exists()  # the URL was never taken for a folder name
