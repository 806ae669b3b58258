"""Stages of ``benchmarks/gpu_check.sh``: each checks or measures one part of the GPU path.

Each stage runs in its own process (the shell script gives each its own time limit) and writes
``<work>/<stage>.json``; ``merge`` gathers them, with each stage's exit status and time, into
``<out>/gpu-check.json`` (device, commit, date). A stage that fails or runs out of time leaves
its error (or nothing) and the others still run.

Stages
------
env
    Versions, the device probe, what ``auto`` chooses, and the no-device fallback: with
    ``CUDA_VISIBLE_DEVICES=`` in a fresh process ``auto`` must give NumPy and ``cupy`` a clear
    error (API and CLI).
accumulators
    Both accumulators at each size: on the device (against the HBM bound of the bytes moved),
    host to host (chunks, transfers) and NumPy; results checked equal; device bytes per row.
screen
    ``chipscreen screen`` with the backend and with NumPy, fresh processes; outputs compared
    column by column.
parties
    Party screening and ``decide`` on NumPy and on the backend, compared exactly, with the
    device memory per row each took.
pairs
    Pair scoring throughput (device and host to host against Numba) and bit-for-bit equality.
dask
    Where dask-cuda is importable (carried wheels): a ``LocalCUDACluster`` runs a CuPy task, and
    a lake screened on it equals the one-process NumPy screen.

``--dry-run`` runs every stage with ``--backend numpy`` at tiny sizes (a CPU test of this file).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_gpu  # noqa: E402
from kernels.backend import NUMPY, select_backend  # noqa: E402

SIZES = {  # stage: (device sizes, dry-run sizes)
    "accumulators": ([10_000_000, 100_000_000], [20_000]),
    "screen": ([10_000_000], [3_000]),
    "parties": ([2_000_000], [3_000]),
    "pairs": ([2_000_000], [2_000]),
    "dask": ([200_000], [2_000]),
    "ownership": ([10_000_000], [20_000]),
}
STAGES = ("env", "accumulators", "screen", "parties", "pairs", "ownership", "dask")
POLICY = "ai-diffusion-2025"
PACKAGES = ("numpy", "pandas", "pyarrow", "numba", "numba-cuda", "cupy-cuda13x", "cupy-cuda12x", "cupy", "typer",
            "rich", "hypothesis", "pytest", "pytest-timeout", "duckdb", "dask", "distributed", "dask-cuda", "rmm-cu13",
            "rmm-cu12", "prefect")


def versions() -> dict:
    """Installed versions of the packages the GPU path touches (``None``: not installed)."""
    from importlib import metadata

    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def nvidia_smi() -> str | None:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,"
                               "clocks.mem,temperature.gpu,power.draw", "--format=csv"], capture_output=True,
                              text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        return f"not run: {error}"


NO_DEVICE = """
import json
from kernels.backend import BackendUnavailableError, select_backend
out = {"auto": select_backend("auto").name}
try:
    select_backend("cupy")
    out["cupy"] = "ran: no error"
except BackendUnavailableError as error:
    out["cupy"] = str(error)
print(json.dumps(out))
"""


def stage_env(args, backend) -> dict:
    from kernels.backend import probe_cupy

    cupy, detail = probe_cupy()
    auto = select_backend("auto")
    out = {"python": sys.version, "versions": versions(), "nvidia_smi": nvidia_smi(), "probe": detail,
           "probe_found_device": cupy is not None,
           "auto": {"name": auto.name, "device": auto.device, "scores_pairs_on_device": auto.scores_pairs_on_device,
                    "rows_per_chunk": auto.rows_per_chunk()},
           "backend_under_test": backend.name, "cpu_count": os.cpu_count()}
    if cupy is not None:
        out["cuda"] = {"runtime": cupy.cuda.runtime.runtimeGetVersion(), "driver": cupy.cuda.runtime.driverGetVersion(),
                       "free_bytes": auto.free_bytes(), "cache_dir": os.environ.get("CUPY_CACHE_DIR"),
                       "compute_capability": cupy.cuda.Device().compute_capability}
        out["copy_gbs"] = bench_gpu.copy_bandwidth(auto)
        out["peak_bandwidth_gbs"] = bench_gpu.peak_bandwidth(auto.device)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", NO_DEVICE], env=env, capture_output=True, text=True, cwd=ROOT)
    fallback = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-2000:]}
    fallback["ok"] = fallback.get("auto") == "numpy" and "cannot run here" in fallback.get("cupy", "")
    ledger = bench_gpu.ledger_file(Path(args.work), 200, args.seed)
    command = bench_gpu._screen_command(ledger, POLICY, Path(args.work) / "no-device-out", "cupy")
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    fallback["cli_cupy"] = {"exit_code": done.returncode, "output": (done.stdout + done.stderr)[-600:]}
    fallback["ok"] = fallback["ok"] and done.returncode != 0 and "cannot run here" in done.stdout + done.stderr
    out["no_device"] = fallback
    return out


def stage_accumulators(args, backend) -> dict:
    peak = bench_gpu.peak_bandwidth(backend.device)
    copy_gbs = bench_gpu.copy_bandwidth(backend)
    out = {"peak_bandwidth_gbs": peak, "measured_copy_gbs": copy_gbs, "sizes": []}
    for rows in args.sizes:
        out["sizes"].append(bench_gpu.kernel_stage(backend, rows, args.repeats, args.seed, peak, copy_gbs))
        save(args, "accumulators", out)
    return out


def stage_screen(args, backend) -> dict:
    out = {"sizes": []}
    for rows in args.sizes:
        ledger = bench_gpu.ledger_file(Path(args.work), rows, args.seed)
        out["sizes"].append(bench_gpu.whole_job(backend, ledger, POLICY, Path(args.work), 1, duckdb_wanted=False))
        save(args, "screen", out)
    return out


def _frames_equal(a, b) -> str | None:
    """``None`` when two frames are equal (floats bit for bit), else what differs."""
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        return None
    except AssertionError as error:
        return str(error)[:1500]


def stage_parties(args, backend) -> dict:
    from pipeline.enrich import build_features
    from pipeline.ingest import read_ledgers
    from pipeline.parties import PartyScreen
    from pipeline.policy import load_policy
    from pipeline.screen import CSL_PATH, consignees

    rows = args.sizes[0]
    ledger = read_ledgers([bench_gpu.ledger_file(Path(args.work), rows, args.seed)])
    policy = load_policy(POLICY)
    name_codes, names, countries = consignees(ledger.rows, policy)
    screen = PartyScreen.from_path(CSL_PATH)
    out: dict = {"rows": rows, "distinct_consignees": len(names), "policy": POLICY}
    found = {}
    for chosen in (NUMPY, backend):
        with bench_gpu.DevicePeak(chosen) as peak:
            start = time.perf_counter()
            found[chosen.name] = screen.screen_policy(names, policy, backend=chosen, countries=countries)
            seconds = time.perf_counter() - start
        out[f"parties_{chosen.name}"] = {"seconds": seconds, "device_peak_bytes": peak.peak,
                                         "pairs_on_device": chosen.scores_pairs_on_device}
    cpu, dev = found["numpy"], found[backend.name]
    out["parties_difference"] = _frames_equal(dev, cpu)
    if "matches" in cpu.attrs:
        out["matches_difference"] = _frames_equal(dev.attrs["matches"].frame, cpu.attrs["matches"].frame)
    features = build_features(ledger.rows, policy, cpu, name_codes)
    out.update(_decide_both(features, policy, backend, rows, ""))
    # The dated rule set: its share condition (two running totals per key) on the device too.
    in_force = load_policy("in-force")
    found_in_force = screen.screen_policy(names, in_force, countries=countries)
    out.update(_decide_both(build_features(ledger.rows, in_force, found_in_force, name_codes), in_force, backend,
                            rows, "in_force_"))
    out["equal"] = (not out["decide_differences"] and not out["in_force_decide_differences"]
                    and out["parties_difference"] is None and out.get("matches_difference") is None)
    return out


DECIDE_ARRAYS = ("decision", "authorization", "reasons", "tier", "lpp_cum_tpp", "country_cum_tpp", "lpp_keys",
                 "allocation_keys", "lpp_totals", "allocation_totals", "allocation_over", "cn_volume_cum",
                 "us_volume_cum", "volume_over")


def _decide_both(features, policy, backend, rows: int, prefix: str) -> dict:
    """Decide on the CPU and on ``backend``: timings, device memory and every array compared."""
    from pipeline.decide import DECIDE_BYTES_PER_ROW, decide

    out, decided = {}, {}
    for chosen in (NUMPY, backend):
        decide(features, policy, backend=chosen)  # warm: kernels compiled, pools filled
        with bench_gpu.DevicePeak(chosen) as peak:
            start = time.perf_counter()
            decided[chosen.name] = decide(features, policy, backend=chosen)
            seconds = time.perf_counter() - start
        out[f"{prefix}decide_{chosen.name}"] = {
            "policy": policy.id, "seconds": seconds, "rows_per_s": rows / seconds, "device_peak_bytes": peak.peak,
            "device_bytes_per_row": None if peak.peak is None else peak.peak / rows,
            "planned_device_bytes_per_row": DECIDE_BYTES_PER_ROW,
            "rows_per_chunk": chosen.rows_per_chunk(DECIDE_BYTES_PER_ROW)}
    got, expected = decided[backend.name], decided["numpy"]
    differ = {}
    for name in DECIDE_ARRAYS:
        a, b = getattr(got, name, None), getattr(expected, name, None)
        if not ((a is None and b is None) or np.array_equal(a, b)):
            bad = np.flatnonzero(np.asarray(a) != np.asarray(b)) if np.shape(a) == np.shape(b) else []
            differ[name] = {"rows_differing": len(bad), "first_row": int(bad[0]) if len(bad) else None}
    if got.reason_labels != expected.reason_labels:
        differ["reason_labels"] = [got.reason_labels[:20], expected.reason_labels[:20]]
    if not got.carry.equals(expected.carry):
        differ["carry"] = "differs"
    out[f"{prefix}decide_differences"] = differ
    return out


def stage_ownership(args, backend) -> dict:
    """The Affiliates fixpoint (kernels/ownership.py) on a synthetic graph of ``sizes[0]`` holdings
    over half as many entities: the device against NumPy, every array compared, both timed."""
    from bench_ownership import synthetic_graph
    from kernels.ownership import resolve_affiliates

    holdings = args.sizes[0]
    graph = synthetic_graph(max(holdings // 2, 10), holdings, seed=args.seed)
    out: dict = {"holdings": holdings, "entities": len(graph["listed"])}
    found = {}
    for chosen in (NUMPY, backend):
        arrays = [chosen.to_device(graph[k]) for k in ("owner", "owned", "bp", "listed")]
        resolve_affiliates(*arrays, xp=chosen.xp)  # warm: kernels compiled, pools filled
        with bench_gpu.DevicePeak(chosen) as peak:
            start = time.perf_counter()
            result = resolve_affiliates(*arrays, xp=chosen.xp)
            bench_gpu.synchronize(chosen)
            seconds = time.perf_counter() - start
        found[chosen.name] = {k: chosen.to_host(getattr(result, k)) for k in
                              ("affiliate", "held_bp", "lists", "level", "parent")}
        out[f"resolve_{chosen.name}"] = {"seconds": seconds, "steps": int(result.steps),
                                         "affiliates": int(found[chosen.name]["affiliate"].sum()),
                                         "device_peak_bytes": peak.peak}
    out["differences"] = {k: int(np.count_nonzero(found[backend.name][k] != found["numpy"][k]))
                          for k in found["numpy"] if not np.array_equal(found[backend.name][k], found["numpy"][k])}
    out["equal"] = not out["differences"]
    return out


def stage_pairs(args, backend) -> dict:
    return {"sizes": [bench_gpu.pairwise_stage(backend, count, args.repeats, args.seed) for count in args.sizes]}


def stage_dask(args, backend) -> dict:
    try:
        import distributed
    except ImportError as error:
        return {"skipped": f"dask is not importable here ({error}); carry the wheels (dask, distributed and dask-cuda wheels in .whl/)"}
    out: dict = {"distributed": distributed.__version__}
    if backend.xp is np:
        out["cuda_cluster"] = "skipped: numpy backend (dry run)"
    else:
        try:
            from dask_cuda import LocalCUDACluster

            with LocalCUDACluster(dashboard_address=None) as cluster, distributed.Client(cluster) as client:
                out["cuda_cluster"] = {"workers": len(client.scheduler_info()["workers"]),
                                       "cupy_sum": client.submit(_cupy_sum, 1000).result()}
        except Exception as error:  # report, do not stop: the lake screen below says more
            out["cuda_cluster"] = f"failed: {type(error).__name__}: {error}"
    from pipeline.generate import generate_ledger
    from pipeline.lake import ingest
    from pipeline.lake_screen import screen_lake
    from pipeline.policy import load_policy
    import pyarrow.parquet as pq

    work = Path(args.work) / "dask"
    work.mkdir(parents=True, exist_ok=True)
    policy = load_policy(POLICY)
    generate_ledger(work / "ledger.parquet", args.sizes[0], seed=args.seed)
    ingest([work / "ledger.parquet"], work / "lake")
    runs = {}
    for name, scheduler, chosen in (("one_process_numpy", "none", "numpy"), ("dask_backend", "local", backend.name)):
        start = time.perf_counter()
        try:
            screen_lake(work / "lake", policy, work / f"out-{name}", scheduler=scheduler, backend=chosen,
                        incremental=False)
            runs[name] = time.perf_counter() - start
        except Exception as error:
            out[name] = f"failed: {type(error).__name__}: {error}"
            return out
    out["seconds"] = runs
    out["comparison"] = bench_gpu.compare_tables(pq.read_table(work / "out-dask_backend" / "decisions.parquet"),
                                                 pq.read_table(work / "out-one_process_numpy" / "decisions.parquet"))
    return out


def _cupy_sum(n: int) -> int:  # pragma: no cover - runs on a GPU worker
    import cupy

    return int(cupy.arange(n, dtype=cupy.int64).sum())


def save(args, stage: str, result: dict) -> None:
    path = Path(args.work) / f"{stage}.json"
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")


def merge(work: Path, out: Path, dry_run: bool) -> dict:
    """``<out>/gpu-check.json``: every stage's result and status, with device, commit and date."""
    env = json.loads((work / "env.json").read_text()) if (work / "env.json").exists() else {}
    result = {"check": "gpu-check", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "commit": os.environ.get("CHIPSCREEN_COMMIT") or bench_gpu.commit(), "dry_run": dry_run,
              "device": (env.get("auto") or {}).get("device"), "machine": bench_gpu.machine(), "status": {},
              "stages": {}}
    for stage in ("pytest", *STAGES):
        status = work / f"status-{stage}.json"
        if status.exists():
            result["status"][stage] = json.loads(status.read_text())
        if (work / f"{stage}.json").exists():
            result["stages"][stage] = json.loads((work / f"{stage}.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-check.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=[*STAGES, "merge"])
    parser.add_argument("--work", required=True, help="Folder for the stage's result and its data.")
    parser.add_argument("--out", help="Folder for gpu-check.json (merge).")
    parser.add_argument("--dry-run", action="store_true", help="NumPy backend, tiny sizes: a CPU test.")
    parser.add_argument("--sizes", default=None, help="Comma-separated sizes (rows or pairs) for the stage.")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if args.stage == "merge":
        merge(Path(args.work), Path(args.out), args.dry_run)
        return 0
    device_sizes, dry_sizes = SIZES.get(args.stage, ([], []))
    args.sizes = ([int(float(s)) for s in args.sizes.split(",") if s.strip()] if args.sizes is not None else
                  dry_sizes if args.dry_run else device_sizes)
    args.repeats = args.repeats or (1 if args.dry_run else 3 if args.stage == "accumulators" else 2)
    backend = select_backend("numpy" if args.dry_run else "cupy") if args.stage != "env" else (
        NUMPY if args.dry_run else select_backend("auto"))
    print(f"stage {args.stage}: backend {backend.name} ({backend.device}), sizes {args.sizes}", flush=True)
    try:
        result = globals()[f"stage_{args.stage}"](args, backend)
    except Exception as error:
        save(args, args.stage, {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()})
        traceback.print_exc()
        return 1
    save(args, args.stage, result)
    print(json.dumps(result, default=str)[:1500], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
