"""Shared helpers: build small ledgers by hand and write them in any supported format."""
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from pipeline.ingest import LEDGER_COLUMNS


def shipment(shipment_id, ship_date="2025-03-01", **fields):
    """One ledger row with sensible defaults (a Tier-2 H100 line to India)."""
    row = {
        "shipment_id": shipment_id, "ship_date": ship_date, "status": "shipped", "exporter": "Exporter A",
        "consignee_id": None, "consignee_name": "Nimbus Compute Pvt", "consignee_address": None,
        "destination_country": "IN", "consignee_hq_country": None, "sku": "NVIDIA-H100-SXM",
        "quantity": 8, "license_id": None, "veu_id": None, "recorded_authorization": None,
    }
    row.update(fields)
    return row


def write_ledger(rows, path: Path) -> Path:
    """Write rows (dicts) as .parquet, .csv or .jsonl, every value as text except quantity in JSON."""
    path = Path(path)
    if path.suffix == ".jsonl":
        with open(path, "w") as handle:
            for row in rows:
                handle.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")
        return path
    table = pa.table({c: pa.array([None if r.get(c) is None else str(r.get(c)) for r in rows], pa.string())
                      for c in LEDGER_COLUMNS})
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


@pytest.fixture
def ledger_file(tmp_path):
    """``ledger_file(rows, name="ledger.parquet")`` writes a ledger into the test's folder."""
    def make(rows, name="ledger.parquet"):
        return write_ledger(rows, tmp_path / name)
    return make


@pytest.fixture(scope="session")
def dask_cluster():
    """A two-worker Dask LocalCluster (processes) shared by the distributed tests."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


def cupy_or_skip():
    """The CuPy backend, or a skip saying why no CUDA device works here."""
    from kernels.backend import probe_cupy, select_backend

    cupy, detail = probe_cupy()
    if cupy is None:
        pytest.skip(f"no working CUDA device: {detail}")
    return select_backend("cupy")


@pytest.fixture
def fake_gpu(monkeypatch):
    """Install a NumPy-backed stand-in for CuPy; returns a function that swaps in another."""
    import sys

    import fake_cupy
    from kernels.backend import reset_probe

    def install(**options):
        monkeypatch.setitem(sys.modules, "cupy", fake_cupy.make(**options))
        reset_probe()
    install()
    yield install
    reset_probe()


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "chipscreen-test", "AWS_SECRET_ACCESS_KEY": "chipscreen-test",
                  "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3 API on loopback (moto's threaded server), as a pyarrow file system.

    The environment points every S3 client of this process and of processes started after it
    (Dask workers) at it, and keeps the checkpoints of lakes in the store in a test folder.
    """
    import pyarrow.fs as pafs

    from pipeline.lake.store import STATE_ENV

    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {key: os.environ.get(key) for key in [*S3_CREDENTIALS, "AWS_ENDPOINT_URL", STATE_ENV]}
    os.environ.update(S3_CREDENTIALS, AWS_ENDPOINT_URL=f"http://{host}:{port}")
    os.environ[STATE_ENV] = str(tmp_path_factory.mktemp("lake-state"))
    try:
        yield pafs.S3FileSystem(endpoint_override=f"http://{host}:{port}", allow_bucket_creation=True)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
