"""Incremental nightly runs: the same pending rows on top of a history and of a 10x larger one.

For each history size: generate ``history + pending`` rows, keep the last ``pending`` rows in
screening order as tonight's file (status ``pending``), ingest the history into a lake and
screen it once (which writes the checkpoint). Then, several times from a copy of that lake,
run tonight's job as a user would, each step a fresh process: ``chipscreen ingest`` of tonight's
file and ``chipscreen screen --lake`` (which reads only the new rows plus the checkpoint).

Writes ``benchmarks/results/nightly-cpu-<date>.json``; the figure of merit is the ratio of the
nightly times, larger history over smaller (target: at most 1.3).

Usage::

    python benchmarks/bench_nightly.py --history 500000 --pending 100000 --factor 10
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_screen import commit, machine  # noqa: E402
from pipeline.generate import generate_ledger  # noqa: E402
from pipeline.lake import ingest  # noqa: E402
from pipeline.lake_screen import screen_lake  # noqa: E402
from pipeline.policy import load_policy  # noqa: E402

CLI = str(Path(sys.executable).with_name("chipscreen"))


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stderr + done.stdout


def prepare(work: Path, history: int, pending: int, seed: int) -> tuple[Path, Path]:
    """Tonight's file and the history file: the last ``pending`` rows in screening order are tonight's."""
    whole = work / "whole.parquet"
    generate_ledger(whole, history + pending, seed=seed)
    table = pq.read_table(whole)
    order = pc.sort_indices(table, [("ship_date", "ascending"), ("shipment_id", "ascending")])
    table = table.take(order)
    history_rows = table.slice(0, history)
    tonight = table.slice(history)
    tonight = tonight.set_column(tonight.schema.get_field_index("status"), "status",
                                 pa.array(["pending"] * tonight.num_rows, tonight.schema.field("status").type))
    pq.write_table(history_rows, work / "history.parquet")
    pq.write_table(tonight, work / "tonight.parquet")
    whole.unlink()
    return work / "history.parquet", work / "tonight.parquet"


def measure(work: Path, history: int, pending: int, repeats: int, policy_id: str, seed: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    history_file, tonight_file = prepare(work, history, pending, seed)
    pristine, lake = work / "lake-pristine", work / "lake"
    shutil.rmtree(pristine, ignore_errors=True)
    start = time.perf_counter()
    ingest([history_file], pristine)
    ingest_history = time.perf_counter() - start
    start = time.perf_counter()
    full = screen_lake(pristine, load_policy(policy_id), work / "out-full", scheduler="none")
    full_screen = time.perf_counter() - start
    ingest_s, screen_s = [], []
    for _ in range(repeats):
        shutil.rmtree(lake, ignore_errors=True)
        shutil.copytree(pristine, lake)
        seconds, _ = timed([CLI, "ingest", str(tonight_file), "--lake", str(lake), "-q"])
        ingest_s.append(seconds)
        seconds, text = timed([CLI, "screen", "--lake", str(lake), "-p", policy_id, "-o", str(work / "out"),
                               "--scheduler", "none", "-q"])
        screen_s.append(seconds)
        summary = json.loads((work / "out" / "summary.json").read_text())
        assert summary["lake"]["run"] == "incremental", summary["lake"]
        assert summary["rows"]["screened_this_run"] == pending, summary["rows"]
    return {
        "history_rows": history, "pending_rows": pending, "partitions": full.summary["lake"]["partitions"],
        "ingest_history_s": round(ingest_history, 2), "full_screen_s": round(full_screen, 2),
        "nightly_ingest_s": [round(s, 2) for s in ingest_s], "nightly_screen_s": [round(s, 2) for s in screen_s],
        "nightly_total_median_s": round(statistics.median(a + b for a, b in zip(ingest_s, screen_s)), 2),
        "nightly_screen_median_s": round(statistics.median(screen_s), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=500_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy", default="ai-diffusion-2025")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "nightly")
    args = parser.parse_args()
    runs = [measure(args.work / f"h{size}", size, args.pending, args.repeats, args.policy, seed=11)
            for size in (args.history, args.history * args.factor)]
    small, large = runs
    result = {
        "benchmark": "nightly-incremental-cpu", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(), "machine": machine(), "policy": args.policy, "runs": runs,
        "ratio_screen": round(large["nightly_screen_median_s"] / small["nightly_screen_median_s"], 3),
        "ratio_ingest_and_screen": round(large["nightly_total_median_s"] / small["nightly_total_median_s"], 3),
        "target_ratio": 1.3,
        "note": "Each nightly step is a fresh `chipscreen` process (start-up included), run from a copy of the "
                "lake and checkpoint left by the history's full screen; median of the repeats. Same pending "
                "rows count; the histories come from the same generator (the larger one is denser in time).",
    }
    out = ROOT / "benchmarks" / "results" / f"nightly-cpu-{dt.date.today():%Y%m%d}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
