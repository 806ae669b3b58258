"""Serve the nightly flow on a cron schedule (needs a Prefect server: ``prefect server start``).

Usage::

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve \\
        --lake /data/lake --out /data/screening --inbox /data/inbox --cron "0 2 * * *"

Each night the flow ingests the ledger files found in the inbox (files ingested before add
nothing), screens what is new and publishes the results.
"""
from __future__ import annotations

import argparse

from flows.nightly import nightly_screen


def main() -> None:  # pragma: no cover - runs until stopped
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--inbox", required=True, help="Folder the day's ledger files are dropped into.")
    parser.add_argument("--policy", default="post-rescission-2025")
    parser.add_argument("--cron", default="0 2 * * *")
    parser.add_argument("--csl-source", default=None)
    args = parser.parse_args()
    nightly_screen.serve(name="chipscreen-nightly", cron=args.cron, parameters={
        "files": [], "inbox": args.inbox, "lake": args.lake, "out": args.out, "policy": args.policy,
        "csl_source": args.csl_source})


if __name__ == "__main__":  # pragma: no cover
    main()
