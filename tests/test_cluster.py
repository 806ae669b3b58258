"""A real Dask deployment: `dask scheduler` and `dask worker` processes on loopback, as a user starts them.

The workers run in a folder of their own, so a lake given by a relative path must reach them
resolved; their decisions must equal the one-process scan, for a full run and for a night.
"""
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import write_ledger
from test_differential import random_rows
from test_lake_screen import columns

pytest.importorskip("distributed")

DASK = Path(sys.executable).with_name("dask")
START_S = 60
"""Seconds to wait for the scheduler file and the workers."""


def _start(arguments, folder, log):
    return subprocess.Popen([str(DASK), *arguments], cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"})


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory, s3):
    """The address of a scheduler with two single-threaded worker processes, started by the `dask` CLI
    (their environment points them at the test's S3 endpoint, as a deployment's would)."""
    if not DASK.exists():
        pytest.skip(f"no `dask` command beside {sys.executable}")
    folder = tmp_path_factory.mktemp("dask-processes")
    (folder / "workers").mkdir()
    spec = folder / "scheduler.json"
    log = open(folder / "dask.log", "wb")
    processes = [_start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                         "--scheduler-file", str(spec)], folder, log)]
    try:
        deadline = time.monotonic() + START_S
        while not spec.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert spec.is_file(), (folder / "dask.log").read_text()
        address = json.loads(spec.read_text())["address"]
        processes.append(_start(["worker", "--scheduler-file", str(spec), "--nworkers", "2", "--nthreads", "1",
                                 "--no-dashboard", "--host", "127.0.0.1"], folder / "workers", log))
        import distributed

        with distributed.Client(address, timeout=START_S) as client:
            client.wait_for_workers(2, timeout=START_S)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def chipscreen(*arguments, cwd):
    result = subprocess.run([str(Path(sys.executable).with_name("chipscreen")), *map(str, arguments)], cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_screening_on_scheduler_processes_equals_one_process(scheduler_address, tmp_path):
    rows = sorted(random_rows(random.Random(11), 600), key=lambda r: (r["ship_date"], r["shipment_id"]))
    history = write_ledger(rows[:500], tmp_path / "history.parquet")
    tonight = write_ledger(rows[500:], tmp_path / "tonight.parquet")
    chipscreen("ingest", "history.parquet", "--lake", "lake", cwd=tmp_path)
    policy = ["-p", "ai-diffusion-2025"]
    chipscreen("screen", "--lake", "lake", *policy, "-o", "cluster", "--scheduler", scheduler_address, "-q",
               cwd=tmp_path)
    chipscreen("screen", "--lake", "lake", *policy, "-o", "one", "--scheduler", "none", "--full", "-q", cwd=tmp_path)
    cluster = pq.read_table(tmp_path / "cluster" / "decisions.parquet")
    assert cluster.num_rows == 500
    assert columns(cluster) == columns(pq.read_table(tmp_path / "one" / "decisions.parquet"))
    # A night on the cluster: tonight's rows screened there, the history carried, the same as one process.
    chipscreen("ingest", tonight.name, "--lake", "lake", cwd=tmp_path)
    chipscreen("screen", "--lake", "lake", *policy, "-o", "cluster", "--scheduler", scheduler_address, "-q",
               cwd=tmp_path)
    summary = json.loads((tmp_path / "cluster" / "summary.json").read_text())
    assert summary["lake"]["run"] == "incremental" and summary["rows"]["screened_this_run"] == 100
    assert summary["lake"]["scheduler"] == scheduler_address
    chipscreen("screen", "--lake", "lake", *policy, "-o", "one", "--scheduler", "none", "--full", "-q", cwd=tmp_path)
    both = [pq.read_table(tmp_path / out / "decisions.parquet") for out in ("cluster", "one")]
    assert both[0].num_rows == 600 and columns(both[0]) == columns(both[1])
    assert history.exists()


def test_a_lake_in_s3_on_scheduler_processes_equals_the_lake_on_disk(scheduler_address, s3, tmp_path):
    rows = sorted(random_rows(random.Random(13), 500), key=lambda r: (r["ship_date"], r["shipment_id"]))
    write_ledger(rows, tmp_path / "ledger.parquet")
    s3.create_dir("cluster-lakes")
    url = "s3://cluster-lakes/lake"
    chipscreen("ingest", "ledger.parquet", "--lake", url, "-q", cwd=tmp_path)
    chipscreen("ingest", "ledger.parquet", "--lake", "lake", "-q", cwd=tmp_path)
    policy = ["-p", "in-force"]
    chipscreen("screen", "--lake", url, *policy, "-o", "from-s3", "--scheduler", scheduler_address, "-q", cwd=tmp_path)
    chipscreen("screen", "--lake", "lake", *policy, "-o", "on-disk", "--scheduler", "none", "-q", cwd=tmp_path)
    both = [pq.read_table(tmp_path / out / "decisions.parquet") for out in ("from-s3", "on-disk")]
    assert both[0].num_rows == 500 and columns(both[0]) == columns(both[1])
