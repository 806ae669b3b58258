"""Differential tests: the engine against the independent DuckDB SQL oracle, on random ledgers.

Also: the output does not depend on the order of the input rows.

Other suites import :func:`random_rows` from here, on machines without DuckDB too (the GPU
image has none): the oracle is imported only by the tests that use it, which skip without it.
"""
import datetime as dt
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shipment, write_ledger
from pipeline.parties import PartyScreen
from pipeline.policy import load_policy
from pipeline.reference import load_catalog
from pipeline.screen import screen_ledgers

COMPARED = ["shipment_id", "decision", "authorization", "reasons", "tier", "tpp", "lpp_cum_tpp", "country_cum_tpp",
            "cn_volume_cum", "us_volume_cum"]
DESTINATIONS = ["US", "JP", "TW", "IN", "IN", "IN", "SG", "AE", "AE", "SA", "IL", "VN", "MY", "CN", "HK", "MO",
                "KH", "RU", "MX", "BR", "NA"]
HQS = [None, None, None, "US", "CN", "HK", "IN", "RU", "KH", "JP"]
# Small caps so random ledgers cross them; LPP at 500 H100-equivalents.
OVERRIDES = {
    "ai-diffusion-2025": ["lpp.limit_tpp=7916000", "allocation.default_cap_tpp=60000000",
                          "allocation.caps.SG=30000000"],
    "post-rescission-2025": ["agreements.0.cap_tpp=40000000", "agreements.1.cap_tpp=20000000"],
    "in-force": ["agreements.0.cap_tpp=40000000", "agreements.1.cap_tpp=20000000"],
}


def consignee_pool():
    entries = PartyScreen.from_path().entries
    listed = [entries.loc[entries["list_code"] == code, "listed_name"].iloc[0] for code in ("EL", "UVL", "SSI")]
    return [
        ("C-1", "Nimbus Compute Pvt"), (None, "Nimbus Compute Pvt"), (None, "NIMBUS COMPUTE PVT."),
        ("C-2", "Orbital AI Labs"), (None, "Orbital AI Labs"), (None, "Kestrel Data Centers"),
        ("C-3", listed[0]), (None, listed[1]), (None, listed[2]), (None, "Huawei Technologies Co., Ltd."),
    ]


def random_rows(rng: random.Random, n: int) -> list[dict]:
    skus = load_catalog()["sku"].tolist()
    pool = consignee_pool()
    start = dt.date(2024, 12, 20)
    extra = random.Random(n * 7919 + 1)  # its own stream: the other columns stay as they were drawn before
    rows = []
    for i in range(n):
        consignee_id, name = rng.choice(pool)
        rows.append(shipment(
            f"S{rng.randrange(10**6):06d}-{i}",
            (start + dt.timedelta(days=rng.choice([0, 5, 30, 200, 400, 700, 900, 1000, 1120, 1200]) + rng.randrange(3))).isoformat(),
            status=rng.choice(["shipped", "shipped", "pending"]),
            consignee_id=consignee_id, consignee_name=name,
            destination_country=rng.choice(DESTINATIONS), consignee_hq_country=rng.choice(HQS),
            sku=rng.choice(skus), quantity=rng.choice([1, 8, 64, 256, 512, 1000, 2000]),
            license_id=rng.choice([None, None, None, "LIC-1"]), veu_id=rng.choice([None] * 9 + ["VEU-1"]),
            exporter=extra.choice(["Exporter A", "Exporter A", "Exporter B", None]),
            export_country=extra.choice([None] * 8 + ["US", "SG"]),
            ultimate_parent_hq_country=extra.choice([None] * 8 + ["CN", "SG"]),
        ))
    return rows


@pytest.fixture
def oracle():
    """The SQL oracle as ``oracle(ledger_path, policy)``; skips where DuckDB is not installed."""
    pytest.importorskip("duckdb", reason="the SQL oracle needs duckdb")
    return sql_oracle


def sql_oracle(ledger_path, policy):
    """The oracle's decisions for a ledger file (needs duckdb)."""
    from oracle_sql import screen_sql

    rows = pq.read_table(ledger_path)
    ledger = pa.table({
        **{c: rows.column(c) for c in rows.column_names if c not in ("ship_date", "quantity")},
        "ship_date": pa.compute.cast(pa.compute.strptime(rows.column("ship_date"), "%Y-%m-%d", "s"), pa.date32()),
        "quantity": pa.compute.cast(rows.column("quantity"), pa.int64()),
    })
    names = sorted(set(ledger.column("consignee_name").to_pylist()))
    parties = PartyScreen.from_path().screen(names, policy.get("parties.deny_lists"), policy.get("parties.review_lists"))
    return screen_sql(ledger, policy.params, load_catalog(), parties)


def engine(ledger_path, policy):
    return screen_ledgers([ledger_path], policy).decisions


def as_rows(table):
    table = table.select(COMPARED)
    return [tuple(row.values()) for row in table.cast(pa.schema(
        [(c, pa.string() if c in ("shipment_id", "decision", "authorization", "reasons") else
          (pa.int8() if c == "tier" else pa.int64())) for c in COMPARED])).to_pylist()]


@pytest.mark.parametrize("policy_id", sorted(OVERRIDES))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120))
def test_engine_equals_sql_oracle(tmp_path, oracle, policy_id, seed, n):
    policy = load_policy(policy_id, OVERRIDES[policy_id])
    path = write_ledger(random_rows(random.Random(seed), n), tmp_path / f"{seed}-{n}.parquet")
    assert as_rows(engine(path, policy)) == as_rows(oracle(path, policy))


@pytest.mark.parametrize("policy_id", sorted(OVERRIDES))
def test_engine_equals_sql_oracle_on_a_larger_ledger(tmp_path, oracle, policy_id):
    policy = load_policy(policy_id, OVERRIDES[policy_id])
    path = write_ledger(random_rows(random.Random(7), 5000), tmp_path / "large.parquet")
    ours, theirs = as_rows(engine(path, policy)), as_rows(oracle(path, policy))
    assert ours == theirs
    decisions = {row[1] for row in ours}
    assert {"DENIED", "REVIEW", "CAP_EXCEEDED", "LICENSE_REQUIRED", "AUTHORIZED", "NLR"} <= decisions
    if policy_id == "in-force":  # the China volume condition is met and crossed
        volume = [(row[1], row[3]) for row in ours if row[8] is not None]
        assert any("CN_US_RATIO" in reasons for _, reasons in volume)
        assert any(decision == "AUTHORIZED" for decision, _ in volume)


@pytest.mark.parametrize("policy_id", sorted(OVERRIDES))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_output_does_not_depend_on_input_order(tmp_path, policy_id, seed):
    policy = load_policy(policy_id, OVERRIDES[policy_id])
    rng = random.Random(seed)
    rows = random_rows(rng, 150)
    shuffled = rows[:]
    rng.shuffle(shuffled)
    first = engine(write_ledger(rows, tmp_path / f"a{seed}.parquet"), policy)
    # Split the shuffled rows over two files of different formats.
    second = screen_ledgers([write_ledger(shuffled[:70], tmp_path / f"b{seed}.csv"),
                             write_ledger(shuffled[70:], tmp_path / f"c{seed}.jsonl")], policy).decisions
    assert first.to_pylist() == second.to_pylist()


def random_register(rng: random.Random, rows: list[dict]) -> list[dict]:
    """License ids on the rows from a pool, and a register for most of them with random windows,
    scopes and small maxima, so every branch of license determination and depletion occurs."""
    ids = [f"L{i}" for i in range(8)]
    for row in rows:
        if row["license_id"] is not None:
            row["license_id"] = rng.choice(ids)
    register = []
    for license_id in ids[:7]:  # L7 is unknown
        start = dt.date(2024, 12, 20) + dt.timedelta(days=rng.choice([0, 100, 400]))
        register.append({
            "license_id": license_id, "valid_from": start.isoformat(),
            "valid_until": (start + dt.timedelta(days=rng.choice([200, 700, 1500]))).isoformat(),
            "destination_country": rng.choice(["IN", "AE", "AE", "VN"]),
            "consignee_id": rng.choice(["", "", "", "C-1"]),
            "consignee_name": rng.choice(["", "", "", "Nimbus Compute Pvt"]),
            "exporter": rng.choice(["", "", "exporter a"]),
            "skus": rng.choice(["", "", "", "NVIDIA-H100-SXM;NVIDIA-H200"]),
            "max_units": rng.choice(["", "100", "2000"]), "max_tpp": rng.choice(["", "3000000", "30000000"]),
        })
    return register


@pytest.mark.parametrize("policy_id", sorted(OVERRIDES))
def test_engine_equals_sql_oracle_with_a_license_register(tmp_path, oracle, policy_id):
    import csv

    import pandas as pd

    from oracle_sql import screen_sql
    from pipeline.parties import normalize_name

    rng = random.Random(23)
    rows = random_rows(rng, 3000)
    register = random_register(rng, rows)
    columns = ["license_id", "valid_from", "valid_until", "destination_country", "consignee_id", "consignee_name",
               "exporter", "skus", "max_units", "max_tpp", "conditions", "source"]
    with open(tmp_path / "register.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: r.get(c, "") for c in columns} for r in register)
    policy = load_policy(policy_id, OVERRIDES[policy_id] + [f"licenses.register=\"{tmp_path / 'register.csv'}\""])
    path = write_ledger(rows, tmp_path / "ledger.parquet")
    ours = as_rows(engine(path, policy))
    frame = pd.DataFrame(register).reindex(columns=columns).fillna("")
    frame["consignee_normalized"] = [normalize_name(n) if n else None for n in frame["consignee_name"]]
    table = pq.read_table(path)
    ledger = pa.table({
        **{c: table.column(c) for c in table.column_names if c not in ("ship_date", "quantity")},
        "ship_date": pa.compute.cast(pa.compute.strptime(table.column("ship_date"), "%Y-%m-%d", "s"), pa.date32()),
        "quantity": pa.compute.cast(table.column("quantity"), pa.int64()),
    })
    names = sorted(set(ledger.column("consignee_name").to_pylist()))
    parties = PartyScreen.from_path().screen(names, policy.get("parties.deny_lists"), policy.get("parties.review_lists"))
    theirs = screen_sql(ledger, policy.params, load_catalog(), parties, licenses=frame)
    engine_cum = engine(path, policy).select(["license_cum_units", "license_cum_tpp"]).to_pylist()
    assert ours == as_rows(theirs)
    assert engine_cum == theirs.select(["license_cum_units", "license_cum_tpp"]).to_pylist()
    reasons = " ".join(row[3] for row in ours)
    for code in ("LICENSE_EXHAUSTED", "LICENSE_UNKNOWN", "LICENSE_EXPIRED", "LICENSE_OUT_OF_SCOPE"):
        assert code in reasons, code
