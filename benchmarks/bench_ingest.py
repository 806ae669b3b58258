"""Ingest into a fresh lake: wall time and peak memory, whole months against months in day ranges.

Each run is a fresh process (``pipeline.lake.ingest`` of one ledger file into a new lake) with
``PARTITION_CHUNK_ROWS`` set as given, so the peak RSS shows what the month partitions cost:
with a range smaller than a month, peak memory is set by the range (and by the input batch and
the id-hash bucket), not by the month. The lakes must hold the same rows: their row counts,
first and last dates per partition are compared.

Writes ``benchmarks/results/ingest-cpu-<rows>-<date>.json``.

Usage::

    python benchmarks/bench_ingest.py --rows 100000000 --ranges 4000000,1000000
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_screen import _peak_rss_run, commit, machine  # noqa: E402
from pipeline.generate import generate_ledger  # noqa: E402
from pipeline.lake import Lake  # noqa: E402

WORK = ROOT / "benchmarks" / "work"
RUN = ("import sys; import pipeline.lake.partitions as p; p.PARTITION_CHUNK_ROWS = int(sys.argv[3]); "
       "from pipeline.lake import ingest; r = ingest([sys.argv[1]], sys.argv[2]); print(r.counts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--ranges", default="4000000,1000000", help="PARTITION_CHUNK_ROWS values, comma-separated")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    ledger = WORK / f"ledger-{args.rows}-1.parquet"
    if not ledger.exists():
        generate_ledger(ledger, args.rows, seed=1)
    runs, shapes = [], []
    for rows_per_range in [int(v) for v in args.ranges.split(",")]:
        lake = WORK / f"lake-ingest-{rows_per_range}"
        shutil.rmtree(lake, ignore_errors=True)
        seconds, peak = _peak_rss_run([sys.executable, "-c", RUN, str(ledger), str(lake), str(rows_per_range)])
        opened = Lake.open(lake)
        shapes.append([(p.key, p.rows, str(p.first_date), str(p.last_date)) for p in opened.partitions])
        largest = max(p.rows for p in opened.partitions)
        runs.append({"partition_chunk_rows": rows_per_range, "wall_s": round(seconds, 1),
                     "peak_rss_gib": round(peak / 2**30, 2), "partitions": len(opened.partitions),
                     "largest_month_rows": largest, "rows": opened.counts["rows"]})
        print(json.dumps(runs[-1]), flush=True)
        shutil.rmtree(lake, ignore_errors=True)
    result = {"benchmark": "ingest-cpu", "date": dt.date.today().isoformat(), "commit": commit()[:7],
              "machine": machine(), "rows": args.rows, "ledger": str(ledger.relative_to(ROOT)),
              "command": " ".join(["python", "benchmarks/bench_ingest.py", *sys.argv[1:]]),
              "runs": runs, "same_partitions": all(s == shapes[0] for s in shapes)}
    out = ROOT / "benchmarks" / "results" / f"ingest-cpu-{args.rows}-{dt.date.today():%Y%m%d}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
