"""Both accumulators of a screening run at 1B rows on a GPU, in one device call of its own.

The keys are made on the device by a counter hash (:func:`bench_gpu.synthetic_keys` with
``xp=cupy``: about a second for 1B rows, where ``rng.zipf`` on the host took about 5 minutes),
then copied to the host once for the other two runs. Timed:

1. on the device, inputs and outputs resident (one call of the sorted form per accumulator; the
   bytes the kernels must move against the HBM bound and a measured device copy), with the
   device memory it took per row;
2. host to host through :meth:`kernels.backend.Backend.accumulate` (chunks sized from free
   device memory, transfers included; what ``decide`` does);
3. the NumPy path (the compiled CPU loop).

All three are checked equal, row for row. The result JSON (device, commit, date) is rewritten
after each step, so a run cut short keeps what it measured.

Usage (about 3 minutes of a 540 s device call; ``--dry-run`` runs NumPy at 200,000 rows)::

    CHIPSCREEN_COMMIT=<sha> python benchmarks/bench_gpu_1b.py --results "$OUT"
    python benchmarks/bench_gpu_1b.py --dry-run --results /tmp/out
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_gpu  # noqa: E402
from kernels.backend import NUMPY, select_backend  # noqa: E402
from kernels.running_totals import over_limit, running_totals  # noqa: E402


def resident_run(backend, data) -> tuple:
    """Both accumulators and the cap check on device arrays; results stay on the device."""
    xp = backend.xp
    (lpp_keys, n_lpp), (allocation_keys, n_allocation) = data["lpp"], data["allocation"]
    lpp, lpp_totals = running_totals(lpp_keys, data["amounts"], n_lpp, xp=xp, method=backend.method)
    allocation, allocation_totals = running_totals(allocation_keys, data["amounts"], n_allocation, xp=xp,
                                                   method=backend.method)
    over = over_limit(allocation, allocation_keys, xp.asarray(data["caps"]), xp=xp)
    bench_gpu.synchronize(backend)
    return lpp, lpp_totals, allocation, allocation_totals, over


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, default=None, help="Rows (default 1e9; 200,000 with --dry-run).")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dry-run", action="store_true", help="NumPy backend, small: a CPU test of this script.")
    parser.add_argument("--results", type=Path, default=Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results"))
    parser.add_argument("--commit", default=None)
    args = parser.parse_args(argv)
    rows = int(args.rows or (200_000 if args.dry_run else 1e9))
    backend = select_backend("numpy" if args.dry_run else "cupy")
    xp = backend.xp
    stamp = dt.datetime.now(dt.timezone.utc)
    result = {"benchmark": "accumulators-1b", "date": stamp.isoformat(timespec="seconds"),
              "commit": args.commit or os.environ.get("CHIPSCREEN_COMMIT") or bench_gpu.commit(),
              "machine": bench_gpu.machine(), "backend": backend.name, "device": backend.device, "rows": rows,
              "peak_bandwidth_gbs": bench_gpu.peak_bandwidth(backend.device),
              "measured_copy_gbs": bench_gpu.copy_bandwidth(backend),
              "bytes_moved_per_row": bench_gpu.KERNEL_BYTES_PER_ROW}
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"accumulators-1b-{backend.name}-{stamp:%Y%m%d-%H%M}.json"

    def save() -> None:
        path.write_text(json.dumps(result, indent=1, default=str) + "\n")

    print(f"{rows:,} rows on {backend.name} ({backend.device})", flush=True)
    start = time.perf_counter()
    data = bench_gpu.synthetic_keys(rows, args.seed, xp=xp)
    bench_gpu.synchronize(backend)
    result["generate_s"] = time.perf_counter() - start
    result["candidates"] = {"lpp": int((data["lpp"][0] >= 0).sum()), "allocation": int((data["allocation"][0] >= 0).sum())}
    print(f"  keys made in {result['generate_s']:.1f} s", flush=True)
    save()

    device = None
    try:
        resident_run(backend, data)  # compile, warm the pool
        with bench_gpu.DevicePeak(backend) as peak:
            resident_run(backend, data)
        times, device = bench_gpu.timed(lambda: resident_run(backend, data), args.repeats)
        best = min(times)
        result["device_resident"] = {
            "seconds": times, "rows_per_s": rows / best,
            "achieved_gbs": bench_gpu.KERNEL_BYTES_PER_ROW * rows / best / 1e9,
            "device_peak_bytes": peak.peak, "device_bytes_per_row": None if peak.peak is None else peak.peak / rows}
        if result["peak_bandwidth_gbs"]:
            result["device_resident"]["fraction_of_hbm_bound"] = (result["device_resident"]["achieved_gbs"]
                                                                  / result["peak_bandwidth_gbs"])
        result["device_resident"]["fraction_of_copy"] = (result["device_resident"]["achieved_gbs"]
                                                         / result["measured_copy_gbs"])
        device = tuple(backend.to_host(a) for a in device)
        print(f"  on device: {best:.3f} s, {result['device_resident']['achieved_gbs']:.0f} GB/s", flush=True)
    except Exception as error:  # out of device memory, most likely: the chunked path below still runs
        result["device_resident"] = f"failed: {type(error).__name__}: {error}"
        print(f"  on device: {result['device_resident']}", flush=True)
    save()

    host = {"amounts": backend.to_host(data["amounts"]), "lpp": (backend.to_host(data["lpp"][0]), data["lpp"][1]),
            "allocation": (backend.to_host(data["allocation"][0]), data["allocation"][1]), "caps": data["caps"]}
    del data
    if xp is not np:
        xp.get_default_memory_pool().free_all_blocks()
    with bench_gpu.DevicePeak(backend) as peak:
        times, chunked = bench_gpu.timed(lambda: bench_gpu.both_accumulators(backend, host, host["amounts"]), 1)
    more, _ = bench_gpu.timed(lambda: bench_gpu.both_accumulators(backend, host, host["amounts"]), args.repeats - 1)
    times += more
    result["host_to_host"] = {"seconds": times, "rows_per_s": rows / min(times),
                              "rows_per_chunk": backend.rows_per_chunk(), "device_peak_bytes": peak.peak}
    print(f"  host to host: {min(times):.2f} s", flush=True)
    save()

    times, expected = bench_gpu.timed(lambda: bench_gpu.both_accumulators(NUMPY, host, host["amounts"]), 1)
    result["numpy"] = {"seconds": times, "rows_per_s": rows / min(times)}
    print(f"  numpy: {min(times):.2f} s", flush=True)
    lpp, allocation = expected
    checks = {"host_to_host": all(np.array_equal(a, b) for mine, theirs in zip(chunked, expected)
                                  for a, b in ((mine.cumulative, theirs.cumulative), (mine.totals, theirs.totals)))
              and np.array_equal(chunked[1].over, allocation.over)}
    if device is not None:
        checks["device_resident"] = all(np.array_equal(a, b) for a, b in zip(
            device, (lpp.cumulative, lpp.totals, allocation.cumulative, allocation.totals, allocation.over)))
    result["checked_equal"] = checks
    result["speedup_host_to_host_vs_numpy"] = min(result["numpy"]["seconds"]) / min(result["host_to_host"]["seconds"])
    if isinstance(result["device_resident"], dict):
        result["speedup_device_resident_vs_numpy"] = (min(result["numpy"]["seconds"])
                                                      / min(result["device_resident"]["seconds"]))
    save()
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine",)}, default=str)[:2000])
    print(f"wrote {path}")
    if not all(checks.values()):
        raise SystemExit(f"results differ from NumPy: {checks}")
    return result


if __name__ == "__main__":
    main()
