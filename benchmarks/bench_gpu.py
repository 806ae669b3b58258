"""Benchmark of the GPU path against the NumPy path and DuckDB, on one machine, in one run.

1. Kernel stage: the two accumulators of a screening run (LPP per consignee-year, allocation per
   destination-window with the cap check) on synthetic keys shaped like a ledger's, at each of
   ``--kernel-rows``. Timed three ways: on data already on the device (the kernels alone, set
   against the memory-bandwidth bound of the bytes they must move), host to host through
   :meth:`kernels.backend.Backend.accumulate` (transfers and chunks included; what ``decide``
   calls), and the NumPy path (the compiled CPU loop). Results are checked equal.
2. Whole job: ``chipscreen screen`` in a fresh process on a generated Parquet ledger, at each of
   ``--screen-rows``, with ``--backend`` and with ``--backend numpy``; DuckDB SQL computing the
   same decisions from the same file (when the ``duckdb`` module is importable). Decision counts
   are checked equal.
3. Pairwise name scoring: ``--pairs`` blocked (consignee, listed name) pairs of synthetic consignee
   names against the real screening list, scored by the vectorised form
   (:func:`kernels.similarity.pair_similarity`) on the backend, on data already there and host to
   host, and by the Numba loop on the CPU (all cores). Scores are checked equal within 1e-6.

The result JSON (device, commit, date, every timing) is rewritten after each measurement, so a
run cut short keeps what it measured. ``--backend numpy`` runs everything on the CPU: a dry run
that tests this script where no GPU exists.

Usage::

    python benchmarks/bench_gpu.py --kernel-rows 10000000,100000000,1000000000 \\
        --screen-rows 10000000,100000000 --results "$OUT"
    python benchmarks/bench_gpu.py --backend numpy --kernel-rows 100000 --screen-rows 100000   # dry run
    python benchmarks/bench_gpu.py --kernel-rows '' --screen-rows '' --pairs 10000000 --results "$OUT"
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_screen import commit, machine, timed  # noqa: E402
from kernels.backend import NUMPY, Backend, select_backend  # noqa: E402

PEAK_BANDWIDTH_GBS = {  # datasheet HBM bandwidth, GB/s (10**9 bytes), by a substring of the device name
    "H200": 4800.0, "H100 NVL": 3900.0, "H100 PCIe": 2000.0, "H100": 3350.0, "GH200": 4000.0,
    "A100-SXM4-80GB": 2039.0, "A100 80GB PCIe": 1935.0, "A100": 1555.0, "L40S": 864.0, "L4": 300.0,
}
KERNEL_BYTES_PER_ROW = 8 + 8 + 8 + 8 + 8 + 8 + 1
"""Fewest device bytes per row of the kernel stage: each accumulator reads a key and an amount
and writes a running total (3 x 8 bytes, twice); the cap check writes one byte."""


def peak_bandwidth(device: str | None) -> float | None:
    """Datasheet memory bandwidth (GB/s) of a device name, or ``None`` when not in the table."""
    for name, peak in PEAK_BANDWIDTH_GBS.items():
        if device and name in device:
            return peak
    return None


def synchronize(backend: Backend) -> None:
    if backend.xp is not np:
        backend.xp.cuda.Device().synchronize()


def copy_bandwidth(backend: Backend, size: int | None = None, repeats: int = 10) -> float:
    """Measured copy bandwidth (GB/s, bytes read plus written) within the backend's memory
    (1 GiB on a GPU; 64 MiB on the CPU, where this is only a dry run's figure)."""
    xp = backend.xp
    size = size or (1 << 30 if xp is not np else 1 << 26)
    source = xp.arange(size // 8, dtype=xp.int64)
    target = xp.empty_like(source)
    target[...] = source
    synchronize(backend)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        target[...] = source
        synchronize(backend)
        times.append(time.perf_counter() - start)
    del source, target
    return 2 * size / float(np.median(times)) / 1e9


def synthetic_keys(rows: int, seed: int) -> dict:
    """Keys and amounts shaped like a screening run's: ~30 % LPP candidates over many
    consignee-years, ~20 % allocation candidates over 200 destination windows."""
    rng = np.random.default_rng(seed)
    n_lpp = max(min(rows // 50, 2_000_000), 1)
    amounts = 15_832 * rng.integers(1, 512, rows, dtype=np.int64)
    lpp = rng.integers(0, n_lpp, rows, dtype=np.int64)
    lpp[rng.random(rows) >= 0.3] = -1
    allocation = (rng.zipf(1.5, rows) % 200).astype(np.int64)
    allocation[rng.random(rows) >= 0.2] = -1
    caps = rng.integers(10**10, 10**12, 200, dtype=np.int64)
    return {"amounts": amounts, "lpp": (lpp, n_lpp), "allocation": (allocation, 200), "caps": caps}


def both_accumulators(backend: Backend, data: dict, amounts):
    lpp_keys, n_lpp = data["lpp"]
    allocation_keys, n_allocation = data["allocation"]
    lpp = backend.accumulate(lpp_keys, amounts, n_lpp)
    allocation = backend.accumulate(allocation_keys, amounts, n_allocation, limits=data["caps"])
    return lpp, allocation


def device_resident(backend: Backend, data: dict, repeats: int) -> dict | None:
    """The kernels alone, inputs and outputs on the device; ``None`` when they do not fit."""
    from kernels.running_totals import over_limit, running_totals

    rows = len(data["amounts"])
    limit = backend.rows_per_chunk()
    if limit is not None and rows > limit:
        return None
    xp = backend.xp
    amounts = backend.to_device(data["amounts"])
    (lpp_keys, n_lpp), (allocation_keys, n_allocation) = data["lpp"], data["allocation"]
    lpp_keys, allocation_keys = backend.to_device(lpp_keys), backend.to_device(allocation_keys)
    caps = backend.to_device(data["caps"])

    def run():
        lpp, _ = running_totals(lpp_keys, amounts, n_lpp, xp=xp, method=backend.method)
        allocation, _ = running_totals(allocation_keys, amounts, n_allocation, xp=xp, method=backend.method)
        over = over_limit(allocation, allocation_keys, caps, xp=xp)
        synchronize(backend)
        return lpp, allocation, over

    run()  # compile and warm the allocator
    times, _ = timed(run, repeats)
    best = min(times)
    moved = KERNEL_BYTES_PER_ROW * rows
    return {"seconds": times, "rows_per_s": rows / best, "bytes_moved_per_row": KERNEL_BYTES_PER_ROW,
            "achieved_gbs": moved / best / 1e9}


def kernel_stage(backend: Backend, rows: int, repeats: int, seed: int, peak: float | None, copy_gbs: float) -> dict:
    data = synthetic_keys(rows, seed)
    out = {"rows": rows, "keys": {"lpp": data["lpp"][1], "allocation": 200},
           "candidates": {"lpp": int((data["lpp"][0] >= 0).sum()),
                          "allocation": int((data["allocation"][0] >= 0).sum())}}
    print(f"  kernel stage, {rows:,} rows: on device ...", flush=True)
    resident = device_resident(backend, data, repeats)
    if resident is not None:
        resident["fraction_of_peak"] = resident["achieved_gbs"] / peak if peak else None
        resident["fraction_of_copy"] = resident["achieved_gbs"] / copy_gbs
    out["device_resident"] = resident or "inputs and working memory exceed the device: see host_to_host (chunked)"
    if backend.xp is not np:
        backend.xp.get_default_memory_pool().free_all_blocks()

    print("  host to host ...", flush=True)
    times, result = timed(lambda: both_accumulators(backend, data, backend.resident(data["amounts"])), repeats)
    out["host_to_host"] = {"seconds": times, "rows_per_s": rows / min(times),
                           "rows_per_chunk": backend.rows_per_chunk(),
                           "transfer_bytes_per_row": 8 + 8 + 8 + 8 + 8 + 1}
    if backend.xp is not np:
        backend.xp.get_default_memory_pool().free_all_blocks()

    print("  numpy ...", flush=True)
    cpu_times, expected = timed(lambda: both_accumulators(NUMPY, data, data["amounts"]), repeats)
    for mine, theirs in zip(result, expected):
        assert np.array_equal(mine.cumulative, theirs.cumulative) and np.array_equal(mine.totals, theirs.totals)
    assert np.array_equal(result[1].over, expected[1].over)
    out["numpy"] = {"seconds": cpu_times, "rows_per_s": rows / min(cpu_times)}
    out["speedup_host_to_host_vs_numpy"] = min(cpu_times) / min(times)
    if resident is not None:
        out["speedup_device_resident_vs_numpy"] = min(cpu_times) / min(resident["seconds"])
    out["checked_equal"] = True
    return out


def _screen_command(ledger: Path, policy_id: str, out: Path, backend: str) -> list[str]:
    runner = "import sys; from pipeline.cli import app; sys.argv[0] = 'chipscreen'; app()"
    return [sys.executable, "-c", runner, "screen", str(ledger), "--policy", policy_id, "--out", str(out), "--quiet",
            "--backend", backend]


def whole_job(backend: Backend, ledger: Path, policy_id: str, work: Path, repeats: int, duckdb_wanted: bool) -> dict:
    """``chipscreen screen`` per backend in fresh processes, and DuckDB SQL, on one Parquet ledger."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out: dict = {"policy": policy_id}
    summaries = {}
    for name in dict.fromkeys([backend.name, "numpy"]):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            done = subprocess.run(_screen_command(ledger, policy_id, work / f"out-{name}", name), env=env,
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode:
                raise RuntimeError(f"chipscreen screen --backend {name} failed:\n{done.stdout}\n{done.stderr}")
        summary = json.loads((work / f"out-{name}" / "summary.json").read_text())
        assert summary["backend"] == name, summary["backend"]
        summaries[name] = summary
        rows = summary["rows"]["rows_read"]
        out[name] = {"seconds": times, "rows_per_s": rows / min(times), "stage_s": summary["timings_s"]}
        print(f"  screen --backend {name}: {min(times):.2f} s {json.dumps(summary['timings_s'])}", flush=True)
    assert summaries[backend.name]["decisions"] == summaries["numpy"]["decisions"]
    out["rows"] = summaries["numpy"]["rows"]["rows_read"]
    out["speedup_vs_numpy"] = min(out["numpy"]["seconds"]) / min(out[backend.name]["seconds"])
    out["decide_speedup_vs_numpy"] = (out["numpy"]["stage_s"]["decide"] / out[backend.name]["stage_s"]["decide"])
    try:
        if not duckdb_wanted:
            raise ImportError("--no-duckdb")
        import duckdb

        sys.path.insert(0, str(ROOT / "tests"))
        from oracle_sql import screen_sql_parquet
    except ImportError as error:
        out["duckdb"] = f"not run: {error}"
        print(f"  duckdb: not run ({error})", flush=True)
        return out
    import pyarrow.parquet as pq

    from bench_screen import peer_parties
    from pipeline.policy import load_policy
    from pipeline.reference import load_catalog

    policy = load_policy(policy_id)
    parties = peer_parties(pq.read_table(ledger, columns=["consignee_name", "destination_country"]), policy)
    duck = [screen_sql_parquet(ledger, work / "duckdb.parquet", policy.params, load_catalog(), parties)
            for _ in range(repeats)]
    counts = dict(duckdb.sql(f"select decision, count(*) from read_parquet('{work / 'duckdb.parquet'}') "
                             "group by decision").fetchall())
    assert counts == summaries["numpy"]["decisions"], (counts, summaries["numpy"]["decisions"])
    out["duckdb"] = {"seconds": duck, "rows_per_s": out["rows"] / min(duck), "version": duckdb.__version__}
    out["speedup_vs_duckdb"] = min(duck) / min(out[backend.name]["seconds"])
    print(f"  duckdb: {min(duck):.2f} s", flush=True)
    return out


def ledger_file(work: Path, rows: int, seed: int) -> Path:
    path = work / f"ledger-{rows}-{seed}.parquet"
    if not path.exists():
        from pipeline.cli import listed_party_names
        from pipeline.generate import generate_ledger

        print(f"  generating {rows:,} rows → {path}", flush=True)
        start = time.perf_counter()
        generate_ledger(path, rows, seed=seed, listed_names=listed_party_names())
        print(f"  generated in {time.perf_counter() - start:.1f} s", flush=True)
    return path


def blocked_pairs(count: int, seed: int):
    """At least ``count`` blocked pairs of synthetic consignee names (``bench_parties``) against the
    real list, cut to ``count``: ``(matcher, queries, pair_query, pair_listed)``."""
    from bench_parties import synthetic_names
    from pipeline.matching import TokenArrays, candidate_pairs
    from pipeline.parties import PartyScreen, normalize_name

    matcher = PartyScreen.from_path().matcher
    names = max(count // 80, 100)
    while True:
        queries = matcher.encode([normalize_name(name) for name in synthetic_names(names, seed=seed)])
        pair_query, pair_listed = candidate_pairs(queries, matcher.table)
        if len(pair_query) >= count or names >= 50 * count:
            break
        names = int(names * 1.3 * count / max(len(pair_query), 1)) + 1
    keep = min(count, len(pair_query))
    return matcher, TokenArrays(queries.tokens, queries.offsets), pair_query[:keep], pair_listed[:keep]


def pairwise_stage(backend: Backend, count: int, repeats: int, seed: int) -> dict:
    """Pairs per second of the vectorised pair scoring on ``backend`` against the Numba loop on the CPU."""
    import numba

    from kernels.similarity import pair_similarity
    from pipeline.matching import ALPHA, MIN_TOKEN_SIMILARITY, SWAP_PENALTY, _score_pairs_on, score_pairs

    print(f"  pairwise scoring, {count:,} pairs: building pairs ...", flush=True)
    matcher, queries, pair_query, pair_listed = blocked_pairs(count, seed)
    listed, table = matcher.listed_arrays, matcher.table
    chars, offsets, weights, kinds, _, _ = table.arrays()
    count = len(pair_query)
    out = {"pairs": count, "queries": int(len(queries.offsets) - 1), "listed_names": len(matcher.listed),
           "cpu_threads": numba.get_num_threads()}

    print("  numba (CPU) ...", flush=True)
    score_pairs(queries, listed, pair_query[:1000], pair_listed[:1000], table)  # load the compiled loop
    cpu_times, expected = timed(lambda: score_pairs(queries, listed, pair_query, pair_listed, table), repeats)
    out["numba_cpu"] = {"seconds": cpu_times, "pairs_per_s": count / min(cpu_times)}

    print(f"  {backend.name}, host to host ...", flush=True)
    masks = table.masks()
    host = lambda: _score_pairs_on(backend, queries, listed, pair_query, pair_listed, chars, offsets,  # noqa: E731
                                   weights, kinds, ALPHA, MIN_TOKEN_SIMILARITY, masks)
    host()  # compile the device kernels and warm the allocator
    times, got = timed(host, repeats)
    out["host_to_host"] = {"seconds": times, "pairs_per_s": count / min(times)}

    print(f"  {backend.name}, on device ...", flush=True)
    arrays = [backend.to_device(np.ascontiguousarray(a)) for a in (queries.tokens, queries.offsets, listed.tokens,
                                                                   listed.offsets, pair_query, pair_listed, chars,
                                                                   offsets, weights, kinds, masks)]
    resident = []
    for _ in range(repeats):
        start = time.perf_counter()
        pair_similarity(*arrays[:-1], alpha=ALPHA, min_token_similarity=MIN_TOKEN_SIMILARITY,
                        swap_penalty=SWAP_PENALTY, xp=backend.xp, masks=arrays[-1])
        synchronize(backend)
        resident.append(time.perf_counter() - start)
    out["device_resident"] = {"seconds": resident, "pairs_per_s": count / min(resident)}
    del arrays
    if backend.xp is not np:
        backend.xp.get_default_memory_pool().free_all_blocks()

    difference = np.abs(got - expected)
    out["max_abs_difference"] = float(difference.max(initial=0.0))
    out["exactly_equal_share"] = float((got == expected).mean()) if count else 1.0
    assert out["max_abs_difference"] <= 1e-6, out["max_abs_difference"]
    out["checked_equal_within"] = 1e-6
    out["speedup_host_to_host_vs_numba"] = min(cpu_times) / min(times)
    out["speedup_device_resident_vs_numba"] = min(cpu_times) / min(resident)
    return out


def _sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--backend", default="cupy", choices=["cupy", "numpy", "auto"],
                        help="Backend under test (numpy: a dry run on the CPU).")
    parser.add_argument("--kernel-rows", default="10000000,100000000,1000000000",
                        help="Comma-separated sizes for the kernel stage ('' to skip).")
    parser.add_argument("--screen-rows", default="10000000,100000000",
                        help="Comma-separated ledger sizes for the whole job ('' to skip).")
    parser.add_argument("--pairs", default=None,
                        help="Comma-separated pair counts for the pairwise-scoring stage ('' to skip; default "
                             "10000000 on a GPU, 20000 with --backend numpy).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screen-repeats", type=int, default=1)
    parser.add_argument("--policy", default="ai-diffusion-2025")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-duckdb", action="store_true", help="Skip the DuckDB peer.")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    parser.add_argument("--commit", default=None,
                        help="Commit to record (default: git rev-parse HEAD, where git works).")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results",
                        help="Folder for the result JSON (on the device machine: $OUT).")
    args = parser.parse_args(argv)

    backend = select_backend(args.backend)
    stamp = dt.datetime.now(dt.timezone.utc)
    peak = peak_bandwidth(backend.device)
    copy_gbs = copy_bandwidth(backend)
    result = {"benchmark": f"screen-gpu-{backend.name}", "date": stamp.isoformat(timespec="seconds"),
              "commit": args.commit or commit(), "machine": machine(), "backend": backend.name,
              "device": backend.device,
              "peak_bandwidth_gbs": peak, "measured_copy_gbs": copy_gbs,
              "device_rows_per_chunk": backend.rows_per_chunk(), "kernel_stage": [], "whole_job": [],
              "pairwise": [],
              "note": "Kernel stage on synthetic keys; device_resident counts only the fewest bytes the kernels "
                      f"must move ({KERNEL_BYTES_PER_ROW} per row) against the datasheet peak and a measured "
                      "device copy. Whole job: the CLI in a fresh process per run, Parquet in, Parquet out."}
    if backend.xp is not np:
        import cupy

        result["cupy"] = cupy.__version__
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"screen-gpu-{backend.name}-{stamp:%Y%m%d-%H%M}.json"

    def save() -> None:
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")

    print(f"backend {backend.name} ({backend.device}); peak {peak} GB/s, copy {copy_gbs:.0f} GB/s", flush=True)
    save()
    for rows in _sizes(args.kernel_rows):
        result["kernel_stage"].append(kernel_stage(backend, rows, args.repeats, args.seed, peak, copy_gbs))
        save()
    args.work.mkdir(parents=True, exist_ok=True)
    for rows in _sizes(args.screen_rows):
        print(f"whole job, {rows:,} rows", flush=True)
        ledger = ledger_file(args.work, rows, args.seed)
        job = whole_job(backend, ledger, args.policy, args.work, args.screen_repeats, not args.no_duckdb)
        result["whole_job"].append(job)
        save()
    pairs = args.pairs if args.pairs is not None else ("20000" if backend.xp is np else "10000000")
    for count in _sizes(pairs):
        result["pairwise"].append(pairwise_stage(backend, count, args.repeats, args.seed))
        save()

    print(f"\n{'stage':<34}{'rows':>14}{'rows/s':>14}{'GB/s':>9}{'x numpy':>9}{'x duckdb':>9}")
    for k in result["kernel_stage"]:
        resident = k["device_resident"]
        if isinstance(resident, dict):
            print(f"{'kernels, on device':<34}{k['rows']:>14,}{resident['rows_per_s']:>14,.0f}"
                  f"{resident['achieved_gbs']:>9.1f}{k['speedup_device_resident_vs_numpy']:>9.1f}")
        print(f"{'kernels, host to host':<34}{k['rows']:>14,}{k['host_to_host']['rows_per_s']:>14,.0f}{'':>9}"
              f"{k['speedup_host_to_host_vs_numpy']:>9.1f}")
    for j in result["whole_job"]:
        duck = f"{j['speedup_vs_duckdb']:>9.1f}" if "speedup_vs_duckdb" in j else f"{'-':>9}"
        print(f"{'screen (CLI, fresh process)':<34}{j['rows']:>14,}{j[backend.name]['rows_per_s']:>14,.0f}{'':>9}"
              f"{j['speedup_vs_numpy']:>9.1f}{duck}")
    for p in result["pairwise"]:
        print(f"{'pair scores, on device':<34}{p['pairs']:>14,}{p['device_resident']['pairs_per_s']:>14,.0f}{'':>9}"
              f"{p['speedup_device_resident_vs_numba']:>9.1f}")
        print(f"{'pair scores, host to host':<34}{p['pairs']:>14,}{p['host_to_host']['pairs_per_s']:>14,.0f}{'':>9}"
              f"{p['speedup_host_to_host_vs_numba']:>9.1f}")
        print(f"{'pair scores, numba (CPU)':<34}{p['pairs']:>14,}{p['numba_cpu']['pairs_per_s']:>14,.0f}")
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
