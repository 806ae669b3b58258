"""The optional ledger columns ``export_country`` and ``ultimate_parent_hq_country`` (issue 17).

Validated like ``consignee_hq_country``; absent (a file, or a lake written before they existed)
or empty reads as null (``export_country`` null: the United States); the lake compares them
when ids repeat; the generator fills them in small shares.
"""
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import shipment, write_ledger
from pipeline.generate import generate_ledger, generate_next
from pipeline.ingest import (LEDGER_COLUMNS, REASON_CONFLICT, REASON_COUNTRY, REASON_EXACT_DUPLICATE,
                             SCREENING_COLUMNS, read_ledgers)
from pipeline.ingest.formats import file_digest
from pipeline.lake import (ADDED_COLUMNS, MANIFEST, REASON_LAKE_CONFLICT, ROW_HASH_COLUMNS, STORED_COLUMNS,
                           STORED_SCHEMA, Lake, ingest, verify)
from pipeline.lake.hashing import _MIX, _column_hashes, _row_hashes
from pipeline.lake.manifest import _file_facts, _write_parquet

NEW = ("export_country", "ultimate_parent_hq_country")
FORMATS = ["ledger.csv", "ledger.parquet", "ledger.jsonl"]
DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def without_new_columns(rows, path):
    """Write rows as a ledger that has no ``export_country`` / ``ultimate_parent_hq_country`` column."""
    path = write_ledger(rows, path)
    if path.suffix == ".parquet":
        pq.write_table(pq.read_table(path).drop_columns(list(NEW)), path)
    elif path.suffix == ".csv":
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in LEDGER_COLUMNS}, strings_can_be_null=True))
        pacsv.write_csv(table.drop_columns(list(NEW)), path)
    return path  # JSON Lines: write_ledger leaves null keys out


# --------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("name", FORMATS)
def test_unknown_codes_are_quarantined_with_the_column_named(tmp_path, name):
    rows = [shipment("G1"), shipment("E1", export_country="XY"), shipment("P1", ultimate_parent_hq_country="QQ"),
            shipment("E2", export_country="USA"), shipment("P2", ultimate_parent_hq_country="China")]
    ledger = read_ledgers([write_ledger(rows, tmp_path / name)])
    reasons = dict(zip(ledger.quarantine.column("shipment_id").to_pylist(),
                       ledger.quarantine.column("reason").to_pylist()))
    assert reasons == {"E1": REASON_COUNTRY.format("export_country"), "E2": REASON_COUNTRY.format("export_country"),
                       "P1": REASON_COUNTRY.format("ultimate_parent_hq_country"),
                       "P2": REASON_COUNTRY.format("ultimate_parent_hq_country")}
    assert ledger.rows.column("shipment_id").to_pylist() == ["G1"]
    # The quarantine keeps the value as read.
    row = ledger.quarantine.filter(pc.equal(ledger.quarantine.column("shipment_id"), "E2")).to_pylist()[0]
    assert row["export_country"] == "USA"


@pytest.mark.parametrize("name", FORMATS)
def test_lowercase_padded_and_empty_codes_are_accepted(tmp_path, name):
    rows = [shipment("A1", export_country=" sg ", ultimate_parent_hq_country="cn"),
            shipment("A2", export_country="Us", ultimate_parent_hq_country="  hk"),
            shipment("A3", export_country="", ultimate_parent_hq_country="   "),
            shipment("A4")]
    ledger = read_ledgers([write_ledger(rows, tmp_path / name)])
    assert ledger.counts["quarantined"] == 0
    got = {r["shipment_id"]: (r["export_country"], r["ultimate_parent_hq_country"]) for r in ledger.rows.to_pylist()}
    # An explicit US export country is stored as null, like an empty or absent one.
    assert got == {"A1": ("SG", "CN"), "A2": (None, "HK"), "A3": (None, None), "A4": (None, None)}
    for column in NEW:
        assert ledger.rows.schema.field(column).type == DICTIONARY


@pytest.mark.parametrize("name", FORMATS)
def test_absent_columns_read_as_null_with_the_type_of_other_optional_columns(tmp_path, name):
    rows = [shipment("A1"), shipment("A2", "2025-04-01", consignee_hq_country="JP")]
    path = without_new_columns(rows, tmp_path / name)
    if name.endswith(".parquet"):
        assert not set(NEW) & set(pq.read_schema(path).names)
    else:
        assert "export_country" not in path.read_text()
    ledger = read_ledgers([path])
    assert ledger.counts["accepted"] == 2
    assert tuple(ledger.rows.column_names) == SCREENING_COLUMNS
    for column in NEW:
        assert ledger.rows.schema.field(column).type == ledger.rows.schema.field("consignee_id").type == DICTIONARY
        assert ledger.rows.column(column).null_count == 2
    # Rows from files with and without the columns are one ledger, the same content.
    full = write_ledger(rows, tmp_path / ("full" + path.suffix))
    assert read_ledgers([full]).rows.equals(ledger.rows)
    mixed = read_ledgers([path, write_ledger([shipment("B1", export_country="de")], tmp_path / "b.csv")])
    assert mixed.rows.column("export_country").to_pylist() == [None, "DE", None]


def test_a_changed_export_country_is_a_conflicting_duplicate_a_case_change_is_not(tmp_path):
    first = write_ledger([shipment("D1", export_country="SG"), shipment("D2", export_country="sg ")],
                         tmp_path / "a.parquet")
    second = write_ledger([shipment("D1", export_country="MY"), shipment("D2", export_country="SG")],
                          tmp_path / "b.jsonl")
    ledger = read_ledgers([first, second])
    reasons = sorted(zip(ledger.quarantine.column("shipment_id").to_pylist(),
                         ledger.quarantine.column("reason").to_pylist()))
    assert reasons == [("D1", REASON_CONFLICT), ("D1", REASON_CONFLICT), ("D2", REASON_EXACT_DUPLICATE)]
    parent = write_ledger([shipment("D3"), shipment("D3", ultimate_parent_hq_country="CN")], tmp_path / "c.csv")
    assert read_ledgers([parent]).counts["by_reason"] == {REASON_CONFLICT: 2}


# ----------------------------------------------------------------------------------------- lake
def strip_added_columns(lake_dir):
    """Make a lake look written before the added columns existed: drop them from its files.

    Partition and quarantine files are rewritten without the columns and the manifest's file
    facts updated; id indexes are kept (their row hashes must still hold).
    """
    manifest = json.loads((lake_dir / MANIFEST).read_text())
    for entry in manifest["partitions"] + manifest["quarantine"]:
        path = lake_dir / entry["path"]
        table = pq.read_table(path)
        _write_parquet(table.drop_columns([c for c in ADDED_COLUMNS if c in table.column_names]), path)
        entry.update(sha256=file_digest(path), **_file_facts(path))
    (lake_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def legacy_row_hashes(table: pa.Table) -> np.ndarray:
    """The row hash of lakes written before the added columns: every column of ROW_HASH_COLUMNS, in order."""
    out = np.zeros(table.num_rows, dtype=np.uint64)
    for name in ROW_HASH_COLUMNS:
        out = (out * _MIX) ^ _column_hashes(table.column(name))
        out ^= out >> np.uint64(29)
    return out


def test_row_hash_without_the_added_columns_is_the_earlier_one(tmp_path):
    rows = [shipment("H1"), shipment("H2", export_country="SG"), shipment("H3", ultimate_parent_hq_country="CN")]
    ingest([write_ledger(rows, tmp_path / "l.csv")], tmp_path / "lake")
    lake = Lake.open(tmp_path / "lake")
    stored = lake.read(lake.partitions[0], columns=STORED_COLUMNS)
    hashes = _row_hashes(stored)
    legacy = legacy_row_hashes(stored)
    assert hashes[0] == legacy[0] and hashes[1] != legacy[1] and hashes[2] != legacy[2]
    assert (lake.read_index(lake.partitions[0]).column("row_hash").to_numpy() == hashes).all()
    assert set(ROW_HASH_COLUMNS) | set(ADDED_COLUMNS) == set(STORED_COLUMNS)


@pytest.mark.parametrize("name", FORMATS)
def test_a_lake_written_before_the_columns_reads_and_ingests(tmp_path, name):
    rows = [shipment(f"S{i}", f"2025-03-{i + 1:02d}", quantity=8 + i) for i in range(6)]
    bad = [shipment("Q1", destination_country="ZZ")]
    old = without_new_columns(rows + bad, tmp_path / name)
    lake_dir = tmp_path / "lake"
    ingest([old], lake_dir)
    strip_added_columns(lake_dir)
    lake = Lake.open(lake_dir)
    assert not set(NEW) & set(pq.read_schema(lake_dir / lake.partitions[0].path).names)
    assert verify(lake_dir).ok

    # Reads give the columns as null, with the types of a fresh read.
    stored = lake.read(lake.partitions[0], columns=STORED_COLUMNS)
    assert stored.schema == STORED_SCHEMA and stored.column("export_country").null_count == 6
    ledger = lake.ledger()
    assert ledger.rows.schema == read_ledgers([old]).rows.schema and ledger.rows.num_rows == 6
    assert ledger.quarantine.column("export_country").to_pylist() == [None]
    assert ledger.quarantine.column("reason").to_pylist() == [REASON_COUNTRY.format("destination_country")]

    # The same file again changes nothing: the stored row hashes still match.
    again = ingest([old], lake_dir)
    assert not again.committed and again.counts["duplicates"] == 6 and again.counts["accepted"] == 0

    # A changed export_country conflicts with the lake; a new row rewrites the old partition.
    changed = [dict(rows[0], export_country="SG"), dict(rows[1], export_country=" "),
               shipment("S9", "2025-03-20", ultimate_parent_hq_country="cn")]
    report = ingest([write_ledger(changed, tmp_path / "changed.csv")], lake_dir)
    assert report.counts["by_reason"] == {REASON_LAKE_CONFLICT: 1}
    assert report.counts["duplicates"] == 1 and report.counts["accepted"] == 1
    lake = Lake.open(lake_dir)
    assert verify(lake_dir).ok
    table = lake.read(lake.partitions[0])
    assert table.column("shipment_id").to_pylist() == [f"S{i}" for i in range(6)] + ["S9"]
    assert table.column("ultimate_parent_hq_country").to_pylist() == [None] * 6 + ["CN"]
    assert set(NEW) <= set(pq.read_schema(lake_dir / lake.partitions[0].path).names)
    assert ingest([old], lake_dir).counts["duplicates"] == 6  # still a no-op after the rewrite
    quarantine = lake.quarantine()
    assert quarantine.column("shipment_id").to_pylist() == ["Q1", "S0"]
    assert quarantine.column("export_country").to_pylist() == [None, "SG"]


def test_lake_dedupe_compares_the_new_columns(tmp_path):
    lake_dir = tmp_path / "lake"
    ingest([write_ledger([shipment("A", export_country="SG"), shipment("B", ultimate_parent_hq_country="CN"),
                          shipment("C")], tmp_path / "one.parquet")], lake_dir)
    same = ingest([write_ledger([shipment("A", export_country=" sg"), shipment("B", ultimate_parent_hq_country="cn"),
                                 shipment("C", export_country="us")], tmp_path / "same.jsonl")], lake_dir)
    assert same.counts["duplicates"] == 3 and same.counts["accepted"] == same.counts["quarantined"] == 0
    changed = ingest([write_ledger([shipment("A", export_country="MY"), shipment("B"),
                                    shipment("C", export_country="JP")], tmp_path / "two.csv")], lake_dir)
    assert changed.counts["by_reason"] == {REASON_LAKE_CONFLICT: 3}
    # Within one call too: the same id with another export_country is quarantined entirely.
    inner = ingest([write_ledger([shipment("D", export_country="DE"), shipment("D", export_country="NL")],
                                 tmp_path / "three.csv")], lake_dir)
    assert inner.counts["by_reason"] == {REASON_CONFLICT: 2}


# ------------------------------------------------------------------------------------ generator
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "l.parquet"
    generate_ledger(path, 60_000, seed=7)
    return path, pq.read_table(path).to_pandas()


def test_generated_export_country_share_and_values(generated):
    _, frame = generated
    export = frame["export_country"]
    assert 0.01 < export.notna().mean() < 0.03
    assert set(export.dropna()) == {"SG", "MY", "TW", "NL", "DE", "JP"}
    assert not (export == frame["destination_country"]).any()
    # Each exporter ships from two hubs at most.
    assert (frame.dropna(subset=["export_country"]).groupby("exporter")["export_country"].nunique() <= 2).all()


def test_generated_parents_differ_from_the_consignee_headquarters(generated):
    _, frame = generated
    consignees = frame.drop_duplicates("consignee_name")
    parent = consignees["ultimate_parent_hq_country"]
    assert 0.015 < parent.notna().mean() < 0.05
    assert parent.notna().sum() >= 5
    with_parent = consignees[parent.notna()]
    own = with_parent["consignee_hq_country"].fillna(with_parent["destination_country"])
    assert (with_parent["ultimate_parent_hq_country"] != own).all()
    assert with_parent["ultimate_parent_hq_country"].value_counts().index[0] == "CN"
    # A consignee has one parent (or none) across its rows.
    assert (frame.groupby("consignee_name")["ultimate_parent_hq_country"].nunique(dropna=False) == 1).all()


def test_generated_china_lines_hold_h20_and_h200_in_2025_and_2026(generated):
    _, frame = generated
    china = frame[frame["destination_country"].isin(["CN", "HK"])]
    years = pd.to_datetime(china["ship_date"]).dt.year
    for year in (2025, 2026):
        skus = set(china.loc[years == year, "sku"])
        assert {"NVIDIA-H20", "NVIDIA-H200"} <= skus, year


@pytest.mark.parametrize("name", FORMATS)
def test_generated_columns_in_every_format_are_accepted(tmp_path, name):
    stats = generate_ledger(tmp_path / name, 8_000, seed=3, bad_rows=14)
    ledger = read_ledgers([tmp_path / name])
    assert ledger.counts["quarantined"] == stats["expected_quarantined"]
    assert not any("export_country" in r or "ultimate_parent" in r for r in ledger.counts["by_reason"])
    assert ledger.rows.column("export_country").null_count < ledger.rows.num_rows
    assert ledger.rows.column("ultimate_parent_hq_country").null_count < ledger.rows.num_rows


def test_generated_output_is_deterministic_and_the_next_night_keeps_parents(tmp_path, generated):
    path, frame = generated
    generate_ledger(tmp_path / "again.parquet", 60_000, seed=7)
    assert (tmp_path / "again.parquet").read_bytes() == path.read_bytes()
    generate_next(tmp_path / "night.csv", path, 3_000, seed=1)
    night = read_ledgers([tmp_path / "night.csv"]).rows.to_pandas()
    parents = frame.groupby("consignee_name")["ultimate_parent_hq_country"].first()
    expected = parents.reindex(night["consignee_name"].astype(str)).to_numpy()
    seen = night["ultimate_parent_hq_country"].astype(object).to_numpy()
    assert all((pd.isna(a) and pd.isna(b)) or a == b for a, b in zip(seen, expected))
    assert night["ultimate_parent_hq_country"].notna().any()
    assert 0 < night["export_country"].notna().mean() < 0.05
