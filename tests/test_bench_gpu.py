"""The GPU benchmark script runs end to end on the CPU (its dry run), so it is tested where no GPU is."""
import json
import sys
from pathlib import Path

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
    assert result["kernel_stage"][0]["candidates"]["lpp"] > 0
    assert written["pairwise"][0]["pairs"] == 20000  # the dry run's default pair count


def test_dry_run_measures_pairwise_scoring(tmp_path):
    result = bench_gpu.main(["--backend", "numpy", "--kernel-rows", "", "--screen-rows", "", "--pairs", "3000",
                             "--repeats", "1", "--results", str(tmp_path), "--commit", "abc"])
    (stage,) = result["pairwise"]
    assert stage["pairs"] == 3000 and stage["queries"] > 0 and stage["max_abs_difference"] == 0.0
    assert stage["numba_cpu"]["pairs_per_s"] > 0 and stage["device_resident"]["pairs_per_s"] > 0
    assert json.loads(next(tmp_path.glob("screen-gpu-numpy-*.json")).read_text())["pairwise"][0]["pairs"] == 3000


def test_peak_bandwidth_lookup():
    assert bench_gpu.peak_bandwidth("NVIDIA H100 80GB HBM3") == 3350.0
    assert bench_gpu.peak_bandwidth("NVIDIA H100 PCIe") == 2000.0
    assert bench_gpu.peak_bandwidth("NVIDIA H200") == 4800.0
    assert bench_gpu.peak_bandwidth(None) is None
