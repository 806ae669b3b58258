"""Benchmark of the CPU path on one machine, peers measured in the same run.

1. Kernel stage: the two running totals of a screening run (LPP per consignee-year, allocation
   per destination-window) against pandas ``groupby(...).cumsum()`` on the same keys.
2. Whole job: the ``chipscreen screen`` command (a fresh process: start-up, Parquet read,
   validation, party screening, decisions, Parquet write) against what a data engineer would
   write in DuckDB (:mod:`duckdb_script`), on the same Parquet ledger: as generated (sorted by
   date), with its rows shuffled on disk, and with 1M distinct consignee names; rows/s per stage
   and the command's peak RSS. With ``--oracle`` also against the test oracle's SQL.

Writes a JSON result with machine, commit and date under ``benchmarks/results/``.

Usage::

    python benchmarks/bench_screen.py --rows 10000000 [--variants sorted,shuffled,names]
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
sys.path.insert(0, str(ROOT / "tests"))  # the SQL oracle
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the DuckDB script

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


def _peak_rss_run(command: list[str]) -> tuple[float, int]:
    """Run ``command`` in a fresh process; its wall seconds and peak RSS in bytes."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True)
    seconds, kib = out.stdout.split()
    return float(seconds), int(kib) * 1024


STAGES = {"read": "ingest.read", "validate": "ingest.validate", "order": "ingest.order",
          "parties_wait": "parties_wait", "parties_and_enrich": "parties_and_enrich", "decide": "decide",
          "assemble": "assemble", "write": "write"}
"""Stages reported as rows/s: name in the result → name in ``summary.json``'s ``timings_s``."""


def whole_job(ledger_path: Path, policy, work: Path, repeats: int, oracle_parties: pd.DataFrame | None) -> dict:
    """``chipscreen screen`` as a command against the DuckDB script (and the SQL oracle), Parquet to Parquet."""
    import duckdb
    from duckdb_script import run_script

    chipscreen = Path(sys.executable).with_name("chipscreen")
    command = [str(chipscreen), "screen", str(ledger_path), "--policy", policy.id, "--out", str(work / "out"), "--quiet"]
    ours, peaks, stage_runs = [], [], []
    for _ in range(repeats):
        seconds, peak = _peak_rss_run(command)
        ours.append(seconds)
        peaks.append(peak)
        stage_runs.append(json.loads((work / "out" / "summary.json").read_text())["timings_s"])
    summary = json.loads((work / "out" / "summary.json").read_text())
    script = [run_script(ledger_path, work / "duckdb-script.parquet", policy) for _ in range(repeats)]
    rows = summary["rows"]["rows_read"]
    best = stage_runs[int(np.argmin(ours))]
    result = {
        "rows": rows, "policy": policy.id,
        "distinct_consignee_names": duckdb.sql(f"select count(distinct consignee_name) from "
                                               f"read_parquet('{ledger_path}')").fetchall()[0][0],
        "chipscreen_screen_s": ours, "chipscreen_peak_rss_bytes": peaks,
        "duckdb_script_s": script,
        "chipscreen_rows_per_s": rows / min(ours), "duckdb_script_rows_per_s": rows / min(script),
        "speedup_vs_duckdb_script": min(script) / min(ours),
        "peak_rss_gb_per_10m_rows": max(peaks) / 2**30 / (rows / 1e7),
        "chipscreen_stage_s": best,
        "chipscreen_stage_rows_per_s": {name: rows / best[key] for name, key in STAGES.items() if best.get(key)},
    }
    if oracle_parties is not None:
        from oracle_sql import screen_sql_parquet

        oracle = [screen_sql_parquet(ledger_path, work / "duckdb.parquet", policy.params, load_catalog(),
                                     oracle_parties)]
        counts = dict(duckdb.sql(f"select decision, count(*) from read_parquet('{work / 'duckdb.parquet'}') "
                                 "group by decision").fetchall())
        assert counts == summary["decisions"], (counts, summary["decisions"])
        result.update({"duckdb_oracle_s": oracle, "speedup_vs_duckdb_oracle": min(oracle) / min(ours)})
    result["note"] = ("chipscreen: the whole CLI command in a fresh process (start-up, read, validation, party "
                      "screening, decisions, write; no party results kept from earlier runs), peak RSS of that "
                      "process. duckdb_script: benchmarks/duckdb_script.py, what a data engineer would write "
                      "(exact joins of normalized names against the deny lists, both running totals with window "
                      "SQL, decisions, Parquet in screening order), all cores. duckdb_oracle (with --oracle): the "
                      "test oracle's SQL given the engine's party results (untimed); its decision counts are "
                      "checked equal to chipscreen's. Stage rows/s from summary.json of the fastest run.")
    return result


def large_file(ledger_path: Path, policy, work: Path) -> dict:
    """One ``chipscreen screen`` of a large single file (no lake): wall time, peak RSS, stage timings."""
    chipscreen = Path(sys.executable).with_name("chipscreen")
    command = [str(chipscreen), "screen", str(ledger_path), "--policy", policy.id, "--out", str(work / "out-large"),
               "--quiet"]
    seconds, peak = _peak_rss_run(command)
    summary = json.loads((work / "out-large" / "summary.json").read_text())
    rows = summary["rows"]["rows_read"]
    return {"rows": rows, "command": "chipscreen screen LEDGER --policy " + policy.id + " --out OUT --quiet",
            "seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_bytes": peak,
            "peak_rss_gb_per_10m_rows": peak / 2**30 / (rows / 1e7), "stage_s": summary["timings_s"],
            "decisions": summary["decisions"]}


def make_ledger(work: Path, rows: int, seed: int, variant: str) -> Path:
    """The benchmark ledger of a variant: ``sorted`` (as generated), ``shuffled`` (rows permuted on
    disk) or ``names`` (1M distinct consignees)."""
    path = work / f"ledger-{rows}-{seed}{'' if variant == 'sorted' else '-' + variant}.parquet"
    if path.exists():
        return path
    from pipeline.generate import generate_ledger, listed_party_names

    print(f"generating {rows:,} rows ({variant}) → {path}", flush=True)
    generate_ledger(path, rows, seed=seed, listed_names=listed_party_names(),
                    consignees=1_000_000 if variant == "names" else None)
    if variant == "shuffled":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        order = np.random.default_rng(seed).permutation(table.num_rows)
        pq.write_table(table.take(order), path, row_group_size=1_000_000)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policy", default="ai-diffusion-2025")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    parser.add_argument("--variants", default="sorted,shuffled,names",
                        help="Comma-separated: sorted, shuffled (rows permuted on disk), names (1M consignees).")
    parser.add_argument("--kernel-stage", action="store_true", help="Also time the running totals against pandas.")
    parser.add_argument("--oracle", action="store_true", help="Also time the SQL oracle (checks decision counts).")
    parser.add_argument("--large", type=int, default=0, metavar="ROWS",
                        help="Only screen one generated single file of ROWS rows (e.g. 100000000): time and peak RSS.")
    args = parser.parse_args()
    if args.large:
        args.work.mkdir(parents=True, exist_ok=True)
        policy = load_policy(args.policy)
        stamp = dt.datetime.now(dt.timezone.utc)
        result = {"benchmark": "screen-large-file-cpu", "date": stamp.isoformat(timespec="seconds"),
                  "commit": commit(), "machine": machine(),
                  "large_file": large_file(make_ledger(args.work, args.large, args.seed, "sorted"), policy, args.work)}
        print(json.dumps(result["large_file"], indent=1))
        name = f"screen-large-file-cpu-{args.large}-{stamp:%Y%m%d}.json"
        (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {ROOT / 'benchmarks' / 'results' / name}")
        return

    args.work.mkdir(parents=True, exist_ok=True)
    policy = load_policy(args.policy)
    stamp = dt.datetime.now(dt.timezone.utc)
    result = {"benchmark": "screen-cpu", "date": stamp.isoformat(timespec="seconds"), "commit": commit(),
              "machine": machine(), "rows": args.rows, "seed": args.seed, "variants": {}}
    for variant in args.variants.split(","):
        ledger_path = make_ledger(args.work, args.rows, args.seed, variant)
        parties = None
        if args.kernel_stage or args.oracle:
            print(f"[{variant}] kernel stage ...", flush=True)
            kernel, parties = kernel_stage(ledger_path, policy, args.repeats)
            if args.kernel_stage:
                result["variants"].setdefault(variant, {})["kernel_stage"] = kernel
        print(f"[{variant}] whole job ...", flush=True)
        job = whole_job(ledger_path, policy, args.work, args.repeats, parties)
        entry = result["variants"].setdefault(variant, {})
        entry.update({"ledger": {"path": ledger_path.name, "bytes": ledger_path.stat().st_size}, "whole_job": job})
        print(json.dumps({k: v for k, v in job.items() if k.endswith(("per_s", "_s")) or k.startswith(("speedup", "peak"))},
                         indent=1), flush=True)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = f"screen-cpu-{args.rows}-{'-'.join(args.variants.split(','))}-{stamp:%Y%m%d}.json"
    (results / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {results / name}")


if __name__ == "__main__":
    main()
