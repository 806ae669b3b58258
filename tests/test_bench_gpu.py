"""The GPU benchmark script runs end to end on the CPU (its dry run), so it is tested where no GPU is."""
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_gpu  # noqa: E402


def test_dry_run_writes_a_result(tmp_path):
    result = bench_gpu.main(["--backend", "numpy", "--kernel-rows", "20000", "--screen-rows", "", "--repeats", "1",
                             "--results", str(tmp_path), "--commit", "abc"])
    written = json.loads(next(tmp_path.glob("screen-gpu-numpy-*.json")).read_text())
    assert written["commit"] == "abc" and written["backend"] == "numpy" and written["measured_copy_gbs"] > 0
    stage = written["kernel_stage"][0]
    assert stage["rows"] == 20000 and stage["checked_equal"] and stage["device_resident"]["achieved_gbs"] > 0
    assert stage["host_to_host"]["device_peak_bytes"] is None  # no device pool on NumPy
    assert result["kernel_stage"][0]["candidates"]["lpp"] > 0
    assert written["pairwise"][0]["pairs"] == 20000  # the dry run's default pair count


def test_dry_run_measures_pairwise_scoring(tmp_path):
    result = bench_gpu.main(["--backend", "numpy", "--kernel-rows", "", "--screen-rows", "", "--pairs", "3000",
                             "--repeats", "1", "--results", str(tmp_path), "--commit", "abc"])
    (stage,) = result["pairwise"]
    assert stage["pairs"] == 3000 and stage["queries"] > 0 and stage["max_abs_difference"] == 0.0
    assert stage["pairs_differing"] == 0 and stage["checked_equal"] == "bit for bit"
    assert stage["numba_cpu"]["pairs_per_s"] > 0 and stage["device_resident"]["pairs_per_s"] > 0
    assert json.loads(next(tmp_path.glob("screen-gpu-numpy-*.json")).read_text())["pairwise"][0]["pairs"] == 3000


def test_peak_bandwidth_lookup():
    assert bench_gpu.peak_bandwidth("NVIDIA H100 80GB HBM3") == 3350.0
    assert bench_gpu.peak_bandwidth("NVIDIA H100 PCIe") == 2000.0
    assert bench_gpu.peak_bandwidth("NVIDIA H200") == 4800.0
    assert bench_gpu.peak_bandwidth(None) is None


def test_synthetic_keys_are_cheap_deterministic_and_shaped_like_a_run():
    data = bench_gpu.synthetic_keys(200_000, seed=3)
    again = bench_gpu.synthetic_keys(200_000, seed=3)
    assert all(np.array_equal(a, b) for a, b in ((data["amounts"], again["amounts"]),
                                                 (data["lpp"][0], again["lpp"][0]),
                                                 (data["allocation"][0], again["allocation"][0])))
    assert not np.array_equal(bench_gpu.synthetic_keys(1000, seed=4)["amounts"], data["amounts"][:1000])
    lpp, n_lpp = data["lpp"]
    allocation, n_allocation = data["allocation"]
    assert 0.27 < (lpp >= 0).mean() < 0.33 and 0.17 < (allocation >= 0).mean() < 0.23
    assert lpp.max() < n_lpp and allocation.max() < n_allocation == 200 and allocation.min() == -1
    counts = np.bincount(allocation[allocation >= 0], minlength=200)
    assert counts[:10].sum() > 0.35 * counts.sum() and (counts > 0).sum() > 150  # skewed, yet most windows used
    assert (data["amounts"] % 15_832 == 0).all() and data["amounts"].min() >= 15_832
    # Cut into generation steps, the stream is the same.
    bench_gpu.GENERATE_STEP, step = 7_777, bench_gpu.GENERATE_STEP
    try:
        assert np.array_equal(bench_gpu.synthetic_keys(200_000, seed=3)["allocation"][0], allocation)
    finally:
        bench_gpu.GENERATE_STEP = step


def test_compare_tables_names_the_first_differing_row():
    import pyarrow as pa

    a = pa.table({"d": pa.array(["NLR", "DENIED", None]).dictionary_encode(), "x": [0.1, 0.2, 0.3],
                  "n": pa.array([1, None, 3], pa.int64())})
    assert bench_gpu.compare_tables(a, a)["equal"]
    b = pa.table({"d": pa.array(["NLR", "REVIEW", None]).dictionary_encode(),
                  "x": [0.1, float(np.nextafter(0.2, 1.0)), 0.3], "n": pa.array([1, None, 4], pa.int64())})
    got = bench_gpu.compare_tables(b, a)
    assert not got["equal"]
    assert got["columns"]["d"]["first_row"] == 1 and got["columns"]["x"]["first_row"] == 1
    assert got["columns"]["n"] == {"rows_differing": 1, "first_row": 2, "first_values": ["4", "3"]}


def test_gpu_check_dry_run_writes_every_result(tmp_path):
    """``benchmarks/gpu_check.sh --dry-run``: every stage on NumPy at tiny sizes, each within its
    limit, at most 8 files back, the outputs of both backends compared column by column."""
    import os
    import subprocess
    import xml.etree.ElementTree as ET

    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, CHIPSCREEN_COMMIT="abc", TMPDIR=str(tmp_path))
    env.pop("OUT", None)
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu-check.json", "gpu-check.log", "kernel-cache.tar.gz", "pytest-junit.xml", "pytest.txt"]
    result = json.loads((out / "gpu-check.json").read_text())
    assert result["commit"] == "abc" and result["dry_run"] and result["date"]
    assert set(result["status"]) == {"env", "pytest", "accumulators", "screen", "parties", "pairs", "ownership"}
    assert all(s["exit_code"] == 0 and not s["timed_out"] for s in result["status"].values()), result["status"]
    stages = result["stages"]
    assert stages["env"]["no_device"]["ok"] and stages["env"]["auto"]["name"] == "numpy"
    assert stages["accumulators"]["sizes"][0]["checked_equal"]
    assert stages["screen"]["sizes"][0]["comparison"]["equal"]
    assert stages["screen"]["sizes"][0]["comparison"]["decisions.parquet"]["columns"]["party_score"] == "equal"
    assert stages["parties"]["equal"] and stages["parties"]["decide_differences"] == {}
    assert stages["parties"]["in_force_decide_differences"] == {}
    assert stages["ownership"]["equal"] and stages["ownership"]["resolve_numpy"]["affiliates"] > 0
    assert stages["pairs"]["sizes"][0]["pairs_differing"] == 0
    cases = ET.parse(out / "pytest-junit.xml").getroot().iter("testcase")
    assert any("[cupy" in case.get("name") for case in cases)  # the CuPy cases ran (skipped here: no device)
    assert not list(tmp_path.glob("gpu-check.*"))  # its work folder is removed


def test_1b_script_dry_run(tmp_path):
    import bench_gpu_1b

    result = bench_gpu_1b.main(["--dry-run", "--rows", "50000", "--results", str(tmp_path), "--commit", "abc"])
    assert result["checked_equal"] == {"host_to_host": True, "device_resident": True}
    assert result["device_resident"]["achieved_gbs"] > 0 and result["candidates"]["lpp"] > 0
    written = json.loads(next(tmp_path.glob("accumulators-1b-numpy-*.json")).read_text())
    assert written["commit"] == "abc" and written["rows"] == 50000 and "numpy" in written
