"""Benchmark of the GPU path against the NumPy path and DuckDB, on one machine, in one run.

1. Kernel stage: the two accumulators of a screening run (LPP per consignee-year, allocation per
   destination-window with the cap check) on synthetic keys shaped like a ledger's, at each of
   ``--kernel-rows``. Timed three ways: on data already on the device (the kernels alone, set
   against the memory-bandwidth bound of the bytes they must move), host to host through
   :meth:`kernels.backend.Backend.accumulate` (transfers and chunks included; what ``decide``
   calls), and the NumPy path (the compiled CPU loop). Results are checked equal.
2. Whole job: ``chipscreen screen`` in a fresh process on a generated Parquet ledger, at each of
   ``--screen-rows``, with ``--backend`` and with ``--backend numpy``; DuckDB SQL computing the
   same decisions from the same file (when the ``duckdb`` module is importable). The outputs
   (``decisions.parquet``, ``parties.parquet``) are compared column by column, floats bit for bit.
3. Pairwise name scoring: ``--pairs`` blocked (consignee, listed name) pairs of synthetic consignee
   names against the real screening list, scored by the vectorised form
   (:func:`kernels.similarity.pair_similarity`) on the backend, on data already there and host to
   host, and by the Numba loop on the CPU (all cores). Scores are checked equal bit for bit.

The result JSON (device, commit, date, every timing) is rewritten after each measurement, so a
run cut short keeps what it measured. ``--backend numpy`` runs everything on the CPU: a dry run
that tests this script where no GPU exists.

On a lent device, one call each (a device call has about 9 minutes): ``benchmarks/gpu_check.sh``
runs the checks and the 10M/100M measurements of this script, time-boxed; 1B rows run alone in
``benchmarks/bench_gpu_1b.py``. This script's stages, by hand::

    python benchmarks/bench_gpu.py --kernel-rows 10000000,100000000 --screen-rows '' --pairs '' --results "$OUT"
    python benchmarks/bench_gpu.py --backend numpy --kernel-rows 100000 --screen-rows 100000   # dry run
    python benchmarks/bench_gpu.py --kernel-rows '' --screen-rows '' --pairs 2000000 --results "$OUT"
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
from kernels.backend import DEVICE_BYTES_PER_ROW, NUMPY, Backend, select_backend  # noqa: E402

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


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_LOG_ALLOCATIONS = float(np.log(201.0))
GENERATE_STEP = 1 << 26
"""Rows hashed per step when generating synthetic keys (bounds the temporaries)."""


def mix64(counter, xp=np):
    """SplitMix64 of each ``counter`` (uint64): a cheap counter-based random stream that gives the
    same bits on NumPy and CuPy, so keys can be made on the device and checked on the host."""
    z = counter * _MIX[0] + _MIX[0]
    z = (z ^ (z >> np.uint64(30))) * _MIX[1]
    z = (z ^ (z >> np.uint64(27))) * _MIX[2]
    return z ^ (z >> np.uint64(31))


def synthetic_keys(rows: int, seed: int, xp=np) -> dict:
    """Keys and amounts shaped like a screening run's, made by a counter hash in whole-array steps
    (about a second per 100M rows on one core, or on the device with ``xp=cupy``; ``rng.zipf``
    took 30 s per 100M on the host): ~30 % LPP candidates over many consignee-years, ~20 %
    allocation candidates over 200 destination windows, log-uniform (a few windows take most rows).

    Returns
    -------
    dict
        ``amounts`` (int64), ``lpp`` (keys, n_keys), ``allocation`` (keys, 200), ``caps`` (host),
        arrays in ``xp``. The same ``rows`` and ``seed`` give the same values on every namespace.
    """
    n_lpp = max(min(rows // 50, 2_000_000), 1)
    amounts = xp.empty(rows, dtype=xp.int64)
    lpp = xp.empty(rows, dtype=xp.int64)
    allocation = xp.empty(rows, dtype=xp.int64)
    base = np.uint64((seed * 0x632BE59BD9B4E019) % 2**64)
    for start in range(0, rows, GENERATE_STEP):
        stop = min(start + GENERATE_STEP, rows)
        counter = xp.arange(start, stop, dtype=xp.uint64) * np.uint64(2) + base
        first = mix64(counter, xp)
        amounts[start:stop] = ((first % np.uint64(511)) + np.uint64(1)).astype(xp.int64) * 15_832
        lpp[start:stop] = xp.where((first >> np.uint64(54)) < np.uint64(307),  # 307 / 1024
                                   ((first >> np.uint64(9)) % np.uint64(n_lpp)).astype(xp.int64), -1)
        second = mix64(counter + np.uint64(1), xp)
        uniform = (second >> np.uint64(11)).astype(xp.float64) * (1.0 / 2**53)
        window = (xp.exp(uniform * _LOG_ALLOCATIONS) - 1.0).astype(xp.int64) % 200
        allocation[start:stop] = xp.where((second & np.uint64(1023)) < np.uint64(205), window, -1)  # 205 / 1024
        del counter, first, second, uniform, window
    caps = np.random.default_rng(seed).integers(10**10, 10**12, 200, dtype=np.int64)
    return {"amounts": amounts, "lpp": (lpp, n_lpp), "allocation": (allocation, 200), "caps": caps}


class DevicePeak:
    """Peak bytes held by CuPy's default memory pool inside a ``with`` block (``None`` on NumPy).

    The pool is emptied on entry; on exit ``peak`` is the most it held at once (its high-water
    mark: a block freed inside is reused, not returned), the device memory the work needed.
    """

    def __init__(self, backend: Backend):
        self.xp = backend.xp
        self.peak: int | None = None

    def __enter__(self):
        if self.xp is not np:
            synchronize_xp(self.xp)
            self.xp.get_default_memory_pool().free_all_blocks()
            self._hook = _PoolHighWater(self.xp)
            self._hook.__enter__()
        return self

    def __exit__(self, *exc):
        if self.xp is not np:
            synchronize_xp(self.xp)
            self._hook.__exit__(*exc)
            self.peak = max(self._hook.peak, int(self.xp.get_default_memory_pool().total_bytes()))
            self.xp.get_default_memory_pool().free_all_blocks()
        return False


def _PoolHighWater(xp):  # noqa: N802 - a class made on demand (CuPy is imported only on a device)
    class PoolHighWater(xp.cuda.MemoryHook):
        """Bytes handed out by the pool and not yet given back, at their peak."""

        name = "PoolHighWater"

        def __init__(self):
            self.now = self.peak = 0

        def malloc_postprocess(self, **kwargs):
            self.now += kwargs["mem_size"]
            self.peak = max(self.peak, self.now)

        def free_postprocess(self, **kwargs):
            self.now -= kwargs["mem_size"]

    return PoolHighWater()


def synchronize_xp(xp) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def compare_tables(got, expected) -> dict:
    """Column-by-column comparison of two Arrow tables: per column, equal or the number of rows
    that differ and the first of them (floats compared bit for bit, nulls equal to nulls)."""
    import pyarrow as pa

    out: dict = {"rows": [got.num_rows, expected.num_rows], "columns": {}}
    if got.column_names != expected.column_names:
        out["column_names_differ"] = [got.column_names, expected.column_names]
    for name in expected.column_names:
        if name not in got.column_names:
            out["columns"][name] = "missing"
            continue
        a, b = got.column(name).combine_chunks(), expected.column(name).combine_chunks()
        if a.equals(b):
            out["columns"][name] = "equal"
            continue
        if len(a) != len(b) or a.type != b.type:
            out["columns"][name] = f"differs: {a.type}[{len(a)}] vs {b.type}[{len(b)}]"
            continue
        if pa.types.is_dictionary(a.type):
            a, b = a.cast(a.type.value_type), b.cast(b.type.value_type)
        if pa.types.is_floating(a.type):
            left = np.asarray(a.fill_null(0.0).to_numpy(zero_copy_only=False)).view(np.int64)
            right = np.asarray(b.fill_null(0.0).to_numpy(zero_copy_only=False)).view(np.int64)
            unequal = (left != right) | (np.asarray(a.is_null()) != np.asarray(b.is_null()))
        else:
            import pyarrow.compute as pc

            unequal = np.asarray(pc.fill_null(pc.not_equal(a, b), True)) & ~(
                np.asarray(a.is_null()) & np.asarray(b.is_null()))
        rows = np.flatnonzero(unequal)
        first = int(rows[0]) if len(rows) else None
        out["columns"][name] = {"rows_differing": int(len(rows)), "first_row": first,
                                "first_values": None if first is None else [str(a[first]), str(b[first])]}
    out["equal"] = all(v == "equal" for v in out["columns"].values()) and "column_names_differ" not in out
    return out


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
    with DevicePeak(backend) as peak_memory:
        both_accumulators(backend, data, backend.resident(data["amounts"]))
    times, result = timed(lambda: both_accumulators(backend, data, backend.resident(data["amounts"])), repeats)
    out["host_to_host"] = {"seconds": times, "rows_per_s": rows / min(times),
                           "rows_per_chunk": backend.rows_per_chunk(),
                           "transfer_bytes_per_row": 8 + 8 + 8 + 8 + 8 + 1,
                           "device_peak_bytes": peak_memory.peak,
                           "device_bytes_per_row": None if peak_memory.peak is None else peak_memory.peak / rows,
                           "planned_device_bytes_per_row": DEVICE_BYTES_PER_ROW}
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
    """``chipscreen screen`` as a fresh process; where typer is missing, the same run through
    :func:`pipeline.screen.screen_ledgers` (the CLI's own call)."""
    import importlib.util

    if importlib.util.find_spec("typer") is not None:
        runner = "import sys; from flows.cli import app; sys.argv[0] = 'chipscreen'; app()"
        return [sys.executable, "-c", runner, "screen", str(ledger), "--policy", policy_id, "--out", str(out),
                "--quiet", "--backend", backend]
    runner = ("import sys; from pipeline.policy import load_policy; from pipeline.screen import screen_ledgers; "
              "screen_ledgers([sys.argv[1]], load_policy(sys.argv[2]), sys.argv[3], backend=sys.argv[4])")
    return [sys.executable, "-c", runner, str(ledger), policy_id, str(out), backend]


OUTPUTS_COMPARED = ("decisions.parquet", "parties.parquet")
"""Output files of ``screen`` compared column by column between backends."""


def compare_outputs(got: Path, expected: Path) -> dict:
    """:func:`compare_tables` of each of :data:`OUTPUTS_COMPARED` in two ``screen`` output folders."""
    import pyarrow.parquet as pq

    out = {}
    for name in OUTPUTS_COMPARED:
        if (expected / name).exists() or (got / name).exists():
            out[name] = (compare_tables(pq.read_table(got / name), pq.read_table(expected / name))
                         if (expected / name).exists() and (got / name).exists() else "missing on one side")
    out["equal"] = all(isinstance(v, dict) and v["equal"] for v in out.values())
    return out


def whole_job(backend: Backend, ledger: Path, policy_id: str, work: Path, repeats: int, duckdb_wanted: bool) -> dict:
    """``chipscreen screen`` per backend in fresh processes, and DuckDB SQL, on one Parquet ledger.

    The backends' outputs are compared column by column (``comparison``; decisions, reasons,
    running totals, party scores bit for bit); DuckDB's on the columns it computes.
    """
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
    out["rows"] = summaries["numpy"]["rows"]["rows_read"]
    out["speedup_vs_numpy"] = min(out["numpy"]["seconds"]) / min(out[backend.name]["seconds"])
    out["decide_speedup_vs_numpy"] = (out["numpy"]["stage_s"]["decide"] / out[backend.name]["stage_s"]["decide"])
    out["comparison"] = compare_outputs(work / f"out-{backend.name}", work / "out-numpy")
    out["decisions_equal"] = summaries[backend.name]["decisions"] == summaries["numpy"]["decisions"]
    assert out["comparison"]["equal"], json.dumps(out["comparison"], indent=1)
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
    theirs = pq.read_table(work / "duckdb.parquet")
    ours = pq.read_table(work / "out-numpy" / "decisions.parquet", columns=theirs.column_names)
    ours = ours.cast(theirs.schema) if ours.schema != theirs.schema else ours
    out["duckdb_comparison"] = compare_tables(ours, theirs)
    assert out["duckdb_comparison"]["equal"], json.dumps(out["duckdb_comparison"], indent=1)
    out["duckdb"] = {"seconds": duck, "rows_per_s": out["rows"] / min(duck), "version": duckdb.__version__}
    out["speedup_vs_duckdb"] = min(duck) / min(out[backend.name]["seconds"])
    print(f"  duckdb: {min(duck):.2f} s", flush=True)
    return out


def ledger_file(work: Path, rows: int, seed: int) -> Path:
    path = work / f"ledger-{rows}-{seed}.parquet"
    if not path.exists():
        from pipeline.generate import listed_party_names
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
    from pipeline.parties import TokenArrays, candidate_pairs
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
    from pipeline.parties import ALPHA, MIN_TOKEN_SIMILARITY, SWAP_PENALTY, score_pairs
    from pipeline.parties.score import _score_pairs_on

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
    unequal = np.flatnonzero(got.view(np.int64) != expected.view(np.int64))
    out["pairs_differing"] = int(len(unequal))
    out["first_difference"] = (None if not len(unequal) else
                               {"pair": int(unequal[0]), "got": float(got[unequal[0]]),
                                "expected": float(expected[unequal[0]])})
    assert not len(unequal), out["first_difference"]
    out["checked_equal"] = "bit for bit"
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
    parser.add_argument("--kernel-rows", default="10000000,100000000",
                        help="Comma-separated sizes for the kernel stage ('' to skip).")
    parser.add_argument("--screen-rows", default="10000000",
                        help="Comma-separated ledger sizes for the whole job ('' to skip).")
    parser.add_argument("--pairs", default=None,
                        help="Comma-separated pair counts for the pairwise-scoring stage ('' to skip; default "
                             "2000000 on a GPU, 20000 with --backend numpy).")
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
              "commit": args.commit or os.environ.get("CHIPSCREEN_COMMIT") or commit(), "machine": machine(),
              "backend": backend.name,
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
    pairs = args.pairs if args.pairs is not None else ("20000" if backend.xp is np else "2000000")
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
