"""License depletion cost: the same ledger screened with and without a license register.

Generates a ledger (``--rows``) and a matching register (every branch: covered, exhausted,
expired, out of scope, unknown; :func:`pipeline.generate.generate_register`), then times
``chipscreen screen LEDGER -p in-force`` with and without ``--licenses``, each a fresh process,
alternating, ``--repeats`` times each. The figure of merit is the ratio of the best times, with
over without (target: at most 1.15). The decisions of the two runs are compared: only licensed
lines may differ.

Writes ``benchmarks/results/licenses-cpu-<rows>-<date>.json``.

Usage::

    python benchmarks/bench_licenses.py --rows 10000000 --repeats 2
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_screen import commit, machine  # noqa: E402
from pipeline.generate import generate_ledger, generate_register  # noqa: E402

CLI = str(Path(sys.executable).with_name("chipscreen"))


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", default="in-force")
    parser.add_argument("--work", type=Path, default=None, help="Scratch folder (a temporary one by default).")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-licenses-"))
    work.mkdir(parents=True, exist_ok=True)
    ledger, register = work / "ledger.parquet", work / "licenses.csv"
    start = time.perf_counter()
    generate_ledger(ledger, args.rows, seed=args.seed)
    made = generate_register(ledger, register, seed=args.seed)
    prepared = time.perf_counter() - start
    runs: dict[str, list[float]] = {"without": [], "with": []}
    outs = {"without": work / "out-without", "with": work / "out-with"}
    for _ in range(args.repeats):
        for name in ("without", "with"):
            command = [CLI, "screen", str(ledger), "-p", args.policy, "-o", str(outs[name]), "-q", "--backend", "numpy"]
            if name == "with":
                command += ["--licenses", str(register)]
            runs[name].append(timed(command))
    a = pq.read_table(outs["without"] / "decisions.parquet", columns=["decision", "reasons"])
    b = pq.read_table(outs["with"] / "decisions.parquet", columns=["decision", "reasons", "license_cum_units"])
    changed = pc.sum(pc.not_equal(a.column("decision"), b.column("decision"))).as_py() or 0
    summary = json.loads((outs["with"] / "summary.json").read_text())["licenses"]
    stamp = dt.datetime.now(dt.timezone.utc)
    result = {
        "benchmark": "license-depletion", "date": stamp.isoformat(timespec="seconds"), "commit": commit(),
        "machine": machine(), "rows": args.rows, "policy": args.policy, "prepare_s": round(prepared, 1),
        "register": {k: made[k] for k in ("licenses", "license_ids", "lines", "branches", "lines_by_branch")},
        "seconds": runs, "best_without_s": min(runs["without"]), "best_with_s": min(runs["with"]),
        "ratio_with_over_without": min(runs["with"]) / min(runs["without"]), "target_ratio": 1.15,
        "lines_drawing": pc.sum(pc.is_valid(b.column("license_cum_units"))).as_py(),
        "decisions_changed_by_the_register": changed,
        "lines_over": summary["lines_over"], "lines_not_covered": summary["lines_not_covered"],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"licenses-cpu-{args.rows}-{stamp:%Y%m%d}.json"
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "register")}, indent=1, default=str))
    print(f"→ {path}")
    return result


if __name__ == "__main__":
    main()
