"""Shared helpers: build small ledgers by hand and write them in any supported format."""
import json
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
