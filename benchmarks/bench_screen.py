"""Benchmark of the CPU path on one machine, peers measured in the same run.

1. Kernel stage: the two running totals of a screening run (LPP per consignee-year, allocation
   per destination-window) against pandas ``groupby(...).cumsum()`` on the same keys.
2. Whole job: the ``chipscreen screen`` command (a fresh process: start-up, Parquet read,
   validation, party screening, decisions, Parquet write) against DuckDB SQL computing the same
   running totals and decisions from the same Parquet file to a Parquet file.

Writes a JSON result with machine, commit and date under ``benchmarks/results/``.

Usage::

    python benchmarks/bench_screen.py --rows 10000000
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the DuckDB peer is the test oracle

from kernels.running_totals import running_totals  # noqa: E402
from pipeline.decide import decide  # noqa: E402
from pipeline.enrich import build_features  # noqa: E402
from pipeline.ingest import read_ledgers  # noqa: E402
from pipeline.parties import PartyScreen  # noqa: E402
from pipeline.policy import load_policy  # noqa: E402
from pipeline.reference import load_catalog  # noqa: E402
from pipeline.screen import consignees  # noqa: E402


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": model,
            "cores": os.cpu_count(), "memory_gib": round(memory, 1)}


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def timed(function, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return times, result


def peer_parties(rows, policy) -> pd.DataFrame:
    """The engine's party results for the DuckDB peer (given to it untimed), one row per consignee
    as the engine sees them: a name, or a name and destination when the rule set moves fuzzy
    scores by country (then with a ``destination`` column)."""
    _, names, countries = consignees(rows, policy)
    parties = PartyScreen.from_path().screen_policy(names, policy, countries=countries)
    return parties if countries is None else parties.assign(destination=countries)


def kernel_stage(ledger_path: Path, policy, repeats: int) -> dict:
    """Time the two running-total passes against pandas on the same candidate keys."""
    ledger = read_ledgers([ledger_path])
    name_codes = consignees(ledger.rows, policy)[0]
    parties = peer_parties(ledger.rows, policy)
    features = build_features(ledger.rows, policy, parties, name_codes)
    result = decide(features, policy)
    tpp = features.tpp
    stages = {"lpp": (result.lpp_keys, len(result.lpp_totals)),
              "allocation": (result.allocation_keys, len(result.allocation_totals))}

    running_totals(stages["lpp"][0][:10], tpp[:10], stages["lpp"][1])  # compile outside the timing
    rows = len(tpp)
    variants = {}
    for variant in ("all_rows", "candidates_only"):
        arrays = []
        for keys, n_keys in stages.values():
            chosen = keys >= 0 if variant == "candidates_only" else slice(None)
            arrays.append((np.ascontiguousarray(keys[chosen]), np.ascontiguousarray(tpp[chosen]), n_keys))
        frames = [pd.DataFrame({"key": keys, "tpp": amounts}) for keys, amounts, _ in arrays]

        def ours():
            return [running_totals(keys, amounts, n_keys)[0] for keys, amounts, n_keys in arrays]

        def theirs():
            return [frame.groupby("key", sort=False)["tpp"].cumsum().to_numpy() for frame in frames]

        our_times, our_out = timed(ours, repeats)
        pandas_times, pandas_out = timed(theirs, repeats)
        for (keys, _, _), mine, other in zip(arrays, our_out, pandas_out):
            candidate = keys >= 0  # pandas also sums the -1 group: compare candidates only
            assert np.array_equal(mine[candidate], other[candidate]), "running totals differ from pandas"
        scanned = sum(len(keys) for keys, _, _ in arrays)
        variants[variant] = {
            "rows_scanned": scanned, "chipscreen_s": our_times, "pandas_groupby_cumsum_s": pandas_times,
            "chipscreen_rows_per_s": scanned / min(our_times), "pandas_rows_per_s": scanned / min(pandas_times),
            "speedup_vs_pandas": min(pandas_times) / min(our_times),
        }
    return {
        "rows": rows,
        "candidates": {name: int((keys >= 0).sum()) for name, (keys, _) in stages.items()},
        "keys": {name: n for name, (_, n) in stages.items()},
        **variants,
        "note": "Both passes of a screening run (LPP keys, then allocation keys) on the same int64 arrays. "
                "all_rows: every row, non-candidates keyed -1 (pandas sums that group too); candidates_only: "
                "both get the pre-filtered candidate rows. Results checked equal; best of the repeats.",
    }, parties


def whole_job(ledger_path: Path, policy, parties: pd.DataFrame, work: Path, repeats: int) -> dict:
    """``chipscreen screen`` as a command against DuckDB SQL, Parquet to Parquet."""
    from oracle_sql import screen_sql_parquet

    chipscreen = Path(sys.executable).with_name("chipscreen")
    command = [str(chipscreen), "screen", str(ledger_path), "--policy", policy.id, "--out", str(work / "out"), "--quiet"]
    ours = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        ours.append(time.perf_counter() - start)
    summary = json.loads((work / "out" / "summary.json").read_text())
    duck = [screen_sql_parquet(ledger_path, work / "duckdb.parquet", policy.params, load_catalog(), parties)
            for _ in range(repeats)]
    # Same answers: compare the decision counts of both outputs.
    import duckdb

    counts = dict(duckdb.sql(f"select decision, count(*) from read_parquet('{work / 'duckdb.parquet'}') "
                             "group by decision").fetchall())
    assert counts == summary["decisions"], (counts, summary["decisions"])
    rows = summary["rows"]["rows_read"]
    return {
        "rows": rows, "policy": policy.id,
        "chipscreen_screen_s": ours, "duckdb_sql_s": duck,
        "chipscreen_rows_per_s": rows / min(ours), "duckdb_rows_per_s": rows / min(duck),
        "speedup_vs_duckdb": min(duck) / min(ours),
        "chipscreen_stage_s": summary["timings_s"],
        "note": "chipscreen: the whole CLI command in a fresh process (start-up, read, validation, "
                "party screening, decisions, write). DuckDB: the SQL oracle with party results given "
                "(untimed), Parquet in, Parquet out. Decision counts checked equal.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policy", default="ai-diffusion-2025")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    parser.add_argument("--shuffled", action="store_true", help="Shuffle the ledger rows (no ordered-input fast path).")
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    ledger_path = args.work / f"ledger-{args.rows}-{args.seed}{'-shuffled' if args.shuffled else ''}.parquet"
    if not ledger_path.exists():
        from pipeline.generate import listed_party_names
        from pipeline.generate import generate_ledger

        print(f"generating {args.rows:,} rows → {ledger_path}", flush=True)
        generate_ledger(ledger_path, args.rows, seed=args.seed, listed_names=listed_party_names())
        if args.shuffled:
            import pyarrow.parquet as pq

            table = pq.read_table(ledger_path)
            order = np.random.default_rng(args.seed).permutation(table.num_rows)
            pq.write_table(table.take(order), ledger_path)
    policy = load_policy(args.policy)
    print("kernel stage ...", flush=True)
    kernel, parties = kernel_stage(ledger_path, policy, args.repeats)
    for variant in ("all_rows", "candidates_only"):
        print(variant, json.dumps({k: v for k, v in kernel[variant].items() if k.endswith("per_s") or k.startswith("speedup")}))
    print("whole job ...", flush=True)
    job = whole_job(ledger_path, policy, parties, args.work, args.repeats)
    print(json.dumps({k: v for k, v in job.items() if k.endswith("per_s") or k.startswith("speedup")}, indent=1))
    stamp = dt.datetime.now(dt.timezone.utc)
    result = {"benchmark": "screen-cpu", "date": stamp.isoformat(timespec="seconds"), "commit": commit(),
              "machine": machine(), "ledger": {"rows": args.rows, "seed": args.seed, "shuffled": args.shuffled,
                                               "bytes": ledger_path.stat().st_size},
              "kernel_stage": kernel, "whole_job": job}
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = f"screen-cpu-{args.rows}{'-shuffled' if args.shuffled else ''}-{stamp:%Y%m%d}.json"
    (results / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {results / name}")


if __name__ == "__main__":
    main()
