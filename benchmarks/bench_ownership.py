"""Affiliates by ownership: :func:`kernels.ownership.resolve_affiliates` on a synthetic graph.

The graph (:func:`synthetic_graph`) has ``--holdings`` holdings over ``--entities`` entities, about
1% of them listed (list bits EL, MEU, SDN and combinations): a random DAG (each entity's owners
have lower indices; the stakes in one entity sum to at most 100%), plus 100-level chains from
listed parties, ownership cycles (some fed by a listed owner, some not) and entities owned
30% + 20% by two listed parties. The figure of merit is the best wall time on NumPy (target:
under 30 s for 10M holdings over 5M entities on a 2-core machine).

Writes ``benchmarks/results/ownership-cpu-<date>.json`` (not with ``--dry-run``, a small graph
that checks the script).

Usage::

    python benchmarks/bench_ownership.py                # 10M holdings, 5M entities
    python benchmarks/bench_ownership.py --dry-run
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
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from bench_screen import commit, machine  # noqa: E402
from kernels.ownership import resolve_affiliates  # noqa: E402

LIST_MASKS = np.array([1, 2, 4, 1 | 4, 1 | 2], np.int64)
"""List bitmasks drawn for listed entities (bit 0 EL, 1 MEU, 2 SDN)."""


def synthetic_graph(n_entities: int, n_holdings: int, *, listed_share: float = 0.01, chains: int = 200,
                    chain_length: int = 100, cycles: int = 1000, seed: int = 7) -> dict:
    """A holdings graph with chains, cycles, aggregation and a random DAG.

    Parameters
    ----------
    n_entities, n_holdings : int
        Entities and holdings (the structures first, the random DAG fills the rest).
    listed_share : float
        Share of entities listed.
    chains, chain_length : int
        Chains of holdings of 50-100% each, each from a listed party.
    cycles : int
        Cycles of 2-6 entities holding 60% of the next; every other one fed 50% by a listed party.
    seed : int

    Returns
    -------
    dict
        ``owner``, ``owned``, ``bp`` (int64 arrays, one entry per holding), ``listed`` (int64
        bitmask per entity).
    """
    rng = np.random.default_rng(seed)
    listed = np.zeros(n_entities, np.int64)
    chosen = rng.choice(n_entities, max(1, int(n_entities * listed_share)), replace=False)
    listed[chosen] = LIST_MASKS[rng.integers(0, len(LIST_MASKS), len(chosen))]
    owners, owneds, bps = [], [], []

    # Chains from listed parties: listed -> e1 -> e2 ... (each stake 50-100%).
    length = min(chain_length, max(1, n_entities // max(1, 4 * chains)))
    nodes = rng.choice(n_entities, chains * length, replace=False).reshape(chains, length)
    heads = rng.choice(chosen, chains)
    owners.append(np.concatenate([heads[:, None], nodes[:, :-1]], axis=1).ravel())
    owneds.append(nodes.ravel())
    bps.append(rng.integers(5000, 10001, chains * length))

    # Cycles of 2-6 entities holding 60% of the next; every other one fed 50% by a listed party.
    sizes = rng.integers(2, 7, cycles)
    members = rng.choice(n_entities, int(sizes.sum()), replace=False)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    following = np.arange(len(members)) + 1
    ends = starts + sizes
    following[ends - 1] = starts
    owners.append(members)
    owneds.append(members[following])
    bps.append(np.full(len(members), 6000))
    fed = starts[::2]
    owners.append(rng.choice(chosen, len(fed)))
    owneds.append(members[fed])
    bps.append(np.full(len(fed), 5000))

    # Aggregation: 30% + 20% by two listed parties.
    aggregated = max(1, n_holdings // 1000)
    targets = rng.choice(n_entities, aggregated, replace=False)
    owners.append(rng.choice(chosen, 2 * aggregated))
    owneds.append(np.repeat(targets, 2))
    bps.append(np.tile([3000, 2000], aggregated))

    # The random DAG: owners below the owned entity, stakes in one entity summing to <= 100%.
    rest = n_holdings - sum(len(part) for part in owners)
    owned = np.sort(rng.integers(1, n_entities, rest))
    owner = (rng.random(rest) * owned).astype(np.int64)
    weight = rng.exponential(1.0, rest)
    begins = np.concatenate([[0], np.flatnonzero(np.diff(owned)) + 1])
    counts = np.diff(np.append(begins, rest))
    group = np.repeat(np.arange(len(begins)), counts)
    total_weight = np.add.reduceat(weight, begins)[group]
    ceiling = rng.integers(3000, 10001, len(begins))[group] - np.repeat(counts, counts)
    bp = np.maximum(1, np.floor(weight / total_weight * np.maximum(ceiling, 1))).astype(np.int64)
    owners.append(owner)
    owneds.append(owned)
    bps.append(bp)
    return {"owner": np.concatenate(owners).astype(np.int64), "owned": np.concatenate(owneds).astype(np.int64),
            "bp": np.minimum(np.concatenate(bps), 10_000).astype(np.int64), "listed": listed}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdings", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dry-run", action="store_true", help="A small graph; checks the script, writes nothing.")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.holdings, args.entities, args.repeats = 20_000, 10_000, 1
    start = time.perf_counter()
    graph = synthetic_graph(args.entities, args.holdings, seed=args.seed)
    prepared = time.perf_counter() - start
    times, result = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = resolve_affiliates(graph["owner"], graph["owned"], graph["bp"], graph["listed"], xp=np)
        times.append(time.perf_counter() - start)
    affiliates = int(result.affiliate.sum())
    record = {
        "benchmark": "ownership-affiliates",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "backend": "numpy",
        "holdings": int(len(graph["owner"])),
        "entities": int(args.entities),
        "listed": int((graph["listed"] != 0).sum()),
        "prepare_s": round(prepared, 2),
        "times_s": [round(t, 2) for t in times],
        "best_s": round(min(times), 2),
        "target_s": 30,
        "steps": int(result.steps),
        "affiliates": affiliates,
        "max_level": int(result.level.max()),
        "minority_held": int(((result.held_bp > 0) & ~result.affiliate & (graph["listed"] == 0)).sum()),
    }
    print(json.dumps(record, indent=1))
    if not args.dry_run:
        args.results.mkdir(parents=True, exist_ok=True)
        out = args.results / f"ownership-cpu-{dt.date.today():%Y%m%d}.json"
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out.name}")
    return record


if __name__ == "__main__":
    main()
