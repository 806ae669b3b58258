"""Ingest: every quarantine reason, reconciliation, the three formats, unreadable files."""
import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import shipment, write_ledger
from pipeline.ingest import (
    REASON_CONFLICT, REASON_COUNTRY, REASON_DATE, REASON_EXACT_DUPLICATE, REASON_MALFORMED, REASON_MISSING,
    REASON_QUANTITY, REASON_SKU, REASON_STATUS, LedgerReadError, read_ledgers,
)

BAD_ROWS = [
    (shipment("B1", consignee_name=None), REASON_MISSING.format("consignee_name")),
    (shipment(None), REASON_MISSING.format("shipment_id")),
    (shipment("B3", sku="  "), REASON_MISSING.format("sku")),
    (shipment("B4", ship_date="2025-02-30"), REASON_DATE),
    (shipment("B5", ship_date="March 1st"), REASON_DATE),
    (shipment("B6", destination_country="ZZ"), REASON_COUNTRY.format("destination_country")),
    (shipment("B7", consignee_hq_country="XX"), REASON_COUNTRY.format("consignee_hq_country")),
    (shipment("B8", quantity=0), REASON_QUANTITY),
    (shipment("B9", quantity=-3), REASON_QUANTITY),
    (shipment("B10", quantity="2.5"), REASON_QUANTITY),
    (shipment("B11", quantity="abc"), REASON_QUANTITY),
    (shipment("B12", quantity="99999999999999999999"), REASON_QUANTITY),
    (shipment("B13", sku="NVIDIA-H999"), REASON_SKU),
    (shipment("B14", status="lost"), REASON_STATUS),
    (shipment("B15", export_country="XY"), REASON_COUNTRY.format("export_country")),
    (shipment("B16", ultimate_parent_hq_country="PRC"), REASON_COUNTRY.format("ultimate_parent_hq_country")),
]
GOOD_ROWS = [
    shipment("G1"),
    shipment("G2", destination_country=" na ", ship_date="2025-01-05",  # Namibia, not a null
             export_country=" sg", ultimate_parent_hq_country="cn "),
    shipment("G3", status="PENDING", quantity="+16"),
]


@pytest.mark.parametrize("name", ["ledger.csv", "ledger.parquet", "ledger.jsonl"])
def test_every_reason_in_every_format(tmp_path, name):
    rows = GOOD_ROWS + [row for row, _ in BAD_ROWS]
    ledger = read_ledgers([write_ledger(rows, tmp_path / name)])
    assert ledger.counts["rows_read"] == len(rows)
    assert ledger.counts["accepted"] == 3
    assert ledger.counts["quarantined"] == len(BAD_ROWS)
    by_id = dict(zip(ledger.quarantine.column("shipment_id").to_pylist(), ledger.quarantine.column("reason").to_pylist()))
    for row, reason in BAD_ROWS:
        assert by_id[row["shipment_id"]] == reason, row
    # Accepted rows come normalized and in (ship_date, shipment_id) order.
    accepted = ledger.rows.to_pylist()
    assert [r["shipment_id"] for r in accepted] == ["G2", "G1", "G3"]
    assert accepted[0]["destination_country"] == "NA"
    assert (accepted[0]["export_country"], accepted[0]["ultimate_parent_hq_country"]) == ("SG", "CN")
    assert accepted[1]["export_country"] is None and accepted[1]["ultimate_parent_hq_country"] is None
    assert accepted[2]["status"] == "pending" and accepted[2]["quantity"] == 16
    assert accepted[0]["ship_date"] == dt.date(2025, 1, 5)


def test_quarantine_keeps_rows_as_read_with_origin(ledger_file):
    path = ledger_file([shipment("G1"), shipment("B1", destination_country=" zz ", quantity="7")], "l.csv")
    ledger = read_ledgers([path])
    row = ledger.quarantine.to_pylist()[0]
    assert row["destination_country"] == " zz "          # unchanged, not normalized
    assert row["source_row"] == 2 and row["source_file"] == str(path)
    assert row["quantity"] == "7"


def test_duplicates_exact_count_once_conflicting_are_quarantined(tmp_path):
    first = write_ledger([shipment("D1"), shipment("D2", quantity=8), shipment("U1")], tmp_path / "a.parquet")
    second = write_ledger([shipment("D1"), shipment("D2", quantity=9)], tmp_path / "b.csv")
    ledger = read_ledgers([first, second])
    assert ledger.counts["rows_read"] == 5
    assert sorted(ledger.rows.column("shipment_id").to_pylist()) == ["D1", "U1"]
    reasons = sorted(zip(ledger.quarantine.column("shipment_id").to_pylist(), ledger.quarantine.column("reason").to_pylist()))
    assert reasons == [("D1", REASON_EXACT_DUPLICATE), ("D2", REASON_CONFLICT), ("D2", REASON_CONFLICT)]
    kept = ledger.quarantine.filter(pa.compute.equal(ledger.quarantine.column("shipment_id"), "D1"))
    assert kept.column("source_file").to_pylist() == [str(second)]   # the first copy is the one kept


def test_duplicate_ids_on_different_dates_are_found(ledger_file):
    rows = [shipment("X1", "2025-01-01"), shipment("A0", "2025-02-01"), shipment("X1", "2025-03-01")]
    ledger = read_ledgers([ledger_file(rows)])
    assert ledger.rows.column("shipment_id").to_pylist() == ["A0"]
    assert ledger.counts["by_reason"] == {REASON_CONFLICT: 2}


def test_unsorted_input_is_sorted_by_date_then_id(ledger_file):
    rows = [shipment("C", "2025-02-01"), shipment("B", "2025-01-01"), shipment("A", "2025-02-01"),
            shipment("Z", "2024-12-31")]
    ledger = read_ledgers([ledger_file(rows)])
    assert ledger.rows.column("shipment_id").to_pylist() == ["Z", "B", "A", "C"]


def test_as_of_excludes_later_rows_and_still_reconciles(ledger_file):
    rows = [shipment("A", "2025-01-01"), shipment("B", "2025-06-01"), shipment("C", "2025-06-02", sku="BAD")]
    ledger = read_ledgers([ledger_file(rows)], as_of=dt.date(2025, 5, 31))
    assert ledger.counts == {"rows_read": 3, "accepted": 1, "quarantined": 1, "excluded_after_as_of": 1,
                             "by_reason": {REASON_SKU: 1}}


def test_malformed_csv_line_is_quarantined_with_its_text(tmp_path):
    path = write_ledger([shipment("A")], tmp_path / "l.csv")
    with open(path, "a") as handle:
        handle.write('"B","2025-01-01","shipped","too","few"\n')
    ledger = read_ledgers([path])
    assert ledger.counts["rows_read"] == 2 and ledger.counts["quarantined"] == 1
    row = ledger.quarantine.to_pylist()[0]
    assert row["reason"] == REASON_MALFORMED and '"B"' in row["raw_line"]


def test_typed_parquet_columns_are_accepted(tmp_path):
    table = pa.table({"shipment_id": ["A", "B"], "ship_date": pa.array([dt.date(2025, 1, 1)] * 2),
                      "status": ["shipped"] * 2, "consignee_name": ["X"] * 2, "destination_country": ["US"] * 2,
                      "sku": ["NVIDIA-A100"] * 2, "quantity": pa.array([4, 0], pa.int32())})
    pq.write_table(table, tmp_path / "typed.parquet")
    ledger = read_ledgers([tmp_path / "typed.parquet"])
    assert ledger.counts["accepted"] == 1 and ledger.counts["by_reason"] == {REASON_QUANTITY: 1}


@pytest.mark.parametrize("content, name, message", [
    (None, "missing.parquet", "no such ledger file"),
    (b"not parquet at all", "broken.parquet", "cannot read as parquet"),
    (b"shipment_id,ship_date\nA,2025-01-01\n", "short.csv", "missing required column"),
    (b"{not json\n", "broken.jsonl", "broken.jsonl"),
    (b"x", "ledger.xlsx", "unknown ledger format"),
])
def test_unreadable_files_are_clear_errors_naming_the_file(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LedgerReadError, match=message) as error:
        read_ledgers([path])
    assert name in str(error.value)
