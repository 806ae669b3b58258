"""Hostile ledger input: every bad file is a clear LedgerReadError or quarantine rows, never a traceback,
and the same row gives the same result in CSV, Parquet and JSON Lines, in read_ledgers and in the lake."""
import datetime as dt
import gzip
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shipment, write_ledger
from pipeline.ingest import (
    REASON_CONFLICT, REASON_DATE, REASON_DATE_RANGE, REASON_EXACT_DUPLICATE, REASON_JSON_LINE, REASON_MALFORMED,
    REASON_QUANTITY, REASON_TPP_OVERFLOW, LedgerReadError, normalize_id, read_ledgers,
)
from pipeline.lake import ingest

FORMATS = ["ledger.csv", "ledger.parquet", "ledger.jsonl"]


def both(paths, tmp_path):
    """``read_ledgers`` and a lake ``ingest`` of the same files: (ledger, ingest counts, lake quarantine)."""
    ledger = read_ledgers(paths)
    lake = tmp_path / "lake"
    report = ingest(paths, lake)
    quarantine = pa.concat_tables([pq.read_table(p) for p in sorted((lake / "quarantine").glob("*.parquet"))]) \
        if (lake / "quarantine").exists() else None
    return ledger, report.counts, quarantine


def lake_rows(tmp_path):
    tables = [pq.read_table(p) for p in sorted((tmp_path / "lake" / "partitions").rglob("rows-*.parquet"))]
    return pa.concat_tables(tables).to_pylist() if tables else []


# ------------------------------------------------------------------------------------------ W1
def test_blank_padded_id_is_the_same_shipment_everywhere(tmp_path):
    path = write_ledger([shipment("S-1 "), shipment("S-1"), shipment(" S-2"), shipment("S-2", quantity=9)],
                        tmp_path / "l.csv")
    ledger, counts, _ = both([path], tmp_path)
    assert ledger.rows.column("shipment_id").to_pylist() == ["S-1"]
    assert ledger.counts["by_reason"] == {REASON_EXACT_DUPLICATE: 1, REASON_CONFLICT: 2}
    assert counts["accepted"] == 1 and counts["by_reason"] == ledger.counts["by_reason"]
    assert normalize_id(" S-1\t") == "S-1"


# ------------------------------------------------------------------------------------------ W2
def test_same_row_in_csv_and_jsonl_is_an_exact_duplicate(tmp_path):
    csv = write_ledger([shipment("A", destination_country="in")], tmp_path / "a.csv")
    jsonl = write_ledger([shipment("A", destination_country="IN ")], tmp_path / "b.jsonl")
    ledger, counts, _ = both([csv, jsonl], tmp_path)
    assert ledger.counts["accepted"] == 1 and ledger.counts["by_reason"] == {REASON_EXACT_DUPLICATE: 1}
    assert counts["accepted"] == 1 and counts["by_reason"] == {REASON_EXACT_DUPLICATE: 1}


# ------------------------------------------------------------------------------------------ W3
@pytest.mark.parametrize("name", FORMATS)
def test_date_time_with_offset_is_taken_on_its_calendar_date(tmp_path, name):
    rows = [shipment("A", ship_date="2025-12-31T23:30:00-05:00"), shipment("B", ship_date="2025-12-31T23:30:00Z"),
            shipment("C", ship_date="2025-12-31 01:00"), shipment("D", ship_date="2025-12-31T25:00:00")]
    ledger, counts, _ = both([write_ledger(rows, tmp_path / name)], tmp_path)
    assert ledger.rows.column("ship_date").to_pylist() == [dt.date(2025, 12, 31)] * 3
    assert ledger.counts["by_reason"] == {REASON_DATE: 1}
    assert counts["accepted"] == 3 and {r["ship_date"] for r in lake_rows(tmp_path)} == {dt.date(2025, 12, 31)}


def test_parquet_timestamp_with_zone_is_taken_on_its_local_date(tmp_path):
    rows = [shipment("A"), shipment("B")]
    table = write_ledger(rows, tmp_path / "x.parquet")
    table = pq.read_table(table)
    stamps = pa.array([dt.datetime(2025, 12, 31, 23, 30)] * 2, pa.timestamp("s")).cast(pa.int64())
    # 2025-12-31 23:30 in New York is 2026-01-01 04:30 UTC.
    utc = pa.array([v + 5 * 3600 for v in stamps.to_pylist()], pa.int64()).cast(pa.timestamp("s", tz="America/New_York"))
    table = table.set_column(table.schema.get_field_index("ship_date"), "ship_date", utc)
    pq.write_table(table, tmp_path / "t.parquet")
    ledger, counts, _ = both([tmp_path / "t.parquet"], tmp_path)
    assert ledger.rows.column("ship_date").to_pylist() == [dt.date(2025, 12, 31)] * 2
    assert counts["accepted"] == 2


# ------------------------------------------------------------------------------------- W7 / C3
@pytest.mark.parametrize("name", FORMATS)
def test_dates_outside_the_range_are_quarantined_and_old_dates_ingest(tmp_path, name):
    rows = [shipment("A", ship_date="0000-01-01"), shipment("B", ship_date="1899-12-31"),
            shipment("C", ship_date="2200-01-01"), shipment("D", ship_date="1900-01-01"),
            shipment("E", ship_date="1969-12-31"), shipment("F", ship_date="2199-12-31")]
    ledger, counts, quarantine = both([write_ledger(rows, tmp_path / name)], tmp_path)
    assert ledger.rows.column("shipment_id").to_pylist() == ["D", "E", "F"]
    assert ledger.counts["by_reason"] == {REASON_DATE_RANGE: 3}
    assert counts["accepted"] == 3 and counts["by_reason"] == {REASON_DATE_RANGE: 3}
    assert sorted(r["shipment_id"] for r in lake_rows(tmp_path)) == ["D", "E", "F"]
    assert quarantine.column("source_row").to_pylist() == [1, 2, 3]


def test_typed_parquet_date_out_of_range_is_quarantined(tmp_path):
    table = pq.read_table(write_ledger([shipment("A"), shipment("B")], tmp_path / "x.parquet"))
    table = table.set_column(1, "ship_date", pa.array([dt.date(1, 1, 1), dt.date(2025, 1, 1)], pa.date32()))
    pq.write_table(table, tmp_path / "d.parquet")
    ledger, counts, _ = both([tmp_path / "d.parquet"], tmp_path)
    assert ledger.counts["by_reason"] == {REASON_DATE_RANGE: 1} and counts["accepted"] == 1


# ------------------------------------------------------------------------------------------ C2
@pytest.mark.parametrize("name", FORMATS)
def test_tpp_overflow_is_quarantined_at_ingest(tmp_path, name):
    rows = [shipment("A"), shipment("B", quantity=2**62), shipment("C", quantity=2**62, sku="NVIDIA-H999")]
    ledger, counts, _ = both([write_ledger(rows, tmp_path / name)], tmp_path)
    assert ledger.counts["accepted"] == 1
    by_id = dict(zip(ledger.quarantine.column("shipment_id").to_pylist(), ledger.quarantine.column("reason").to_pylist()))
    assert by_id["B"] == REASON_TPP_OVERFLOW and by_id["C"] != REASON_TPP_OVERFLOW
    assert counts["accepted"] == 1 and counts["by_reason"] == ledger.counts["by_reason"]
    # The corrected row can be ingested afterwards.
    fixed = write_ledger([shipment("B", quantity=8)], tmp_path / f"fixed{name[6:]}")
    assert ingest([fixed], tmp_path / "lake").counts["accepted"] == 1


def test_row_amount_overflow_names_the_shipment(tmp_path):
    from pipeline.enrich import build_features
    from pipeline.policy import load_policy

    ledger = read_ledgers([write_ledger([shipment("A"), shipment("BIG", quantity=2**40)], tmp_path / "l.csv")])
    rows = ledger.rows.set_column(ledger.rows.schema.get_field_index("quantity"), "quantity",
                                  pa.array([8, 2**62], pa.int64()))
    with pytest.raises(OverflowError, match="BIG"):
        build_features(rows, load_policy("ai-diffusion-2025"), lambda: None, None)


# ------------------------------------------------------------------------------------------ C4
def test_bad_json_lines_are_quarantined_like_malformed_csv_lines(tmp_path):
    path = tmp_path / "l.jsonl"
    lines = [json.dumps(shipment("A")), "[1, 2]", "42", "{not json", json.dumps(shipment("B")),
             json.dumps(shipment("C", consignee_name=["X", "Y"])), "", json.dumps(shipment("D", quantity="7"))]
    path.write_text("\n".join(lines) + "\n")
    ledger, counts, quarantine = both([path], tmp_path)
    assert sorted(ledger.rows.column("shipment_id").to_pylist()) == ["A", "B", "D"]
    assert ledger.counts["quarantined"] == 4 and ledger.counts["rows_read"] == 7
    bad = ledger.quarantine.to_pylist()
    assert [r["source_row"] for r in bad] == [2, 3, 4, 6]
    assert all(r["reason"].startswith(REASON_JSON_LINE) and r["raw_line"] and r["source_file"] == str(path)
               for r in bad)
    assert counts["accepted"] == 3 and counts["quarantined"] == 4
    assert quarantine.column("source_row").to_pylist() == [2, 3, 4, 6]


# ------------------------------------------------------------------------------------------ C5
def test_duplicated_csv_header_column_is_a_clear_error(tmp_path):
    path = write_ledger([shipment("A")], tmp_path / "l.csv")
    text = path.read_text().splitlines()
    path.write_text(text[0] + ",sku\n" + text[1] + ",NVIDIA-A100\n")
    for call in (read_ledgers, lambda p: ingest(p, tmp_path / "lake")):
        with pytest.raises(LedgerReadError, match=r"l\.csv.*duplicate.*sku"):
            call([path])


def test_utf16_file_is_a_clear_error(tmp_path):
    path = write_ledger([shipment("A")], tmp_path / "l.csv")
    path.write_bytes(path.read_text().encode("utf-16"))
    for call in (read_ledgers, lambda p: ingest(p, tmp_path / "lake")):
        with pytest.raises(LedgerReadError, match=r"l\.csv.*UTF-16"):
            call([path])


def test_parquet_uint64_quantity_above_int64_is_quarantined(tmp_path):
    table = pq.read_table(write_ledger([shipment("A"), shipment("B")], tmp_path / "x.parquet"))
    table = table.set_column(table.schema.get_field_index("quantity"), "quantity",
                             pa.array([8, 2**63 + 5], pa.uint64()))
    pq.write_table(table, tmp_path / "u.parquet")
    ledger, counts, quarantine = both([tmp_path / "u.parquet"], tmp_path)
    assert ledger.counts["by_reason"] == {REASON_QUANTITY: 1} and counts["by_reason"] == {REASON_QUANTITY: 1}
    assert quarantine.column("quantity").to_pylist() == [str(2**63 + 5)]


def test_list_typed_parquet_column_is_a_clear_error(tmp_path):
    table = pq.read_table(write_ledger([shipment("A")], tmp_path / "x.parquet"))
    table = table.set_column(table.schema.get_field_index("consignee_name"), "consignee_name",
                             pa.array([["X", "Y"]], pa.list_(pa.string())))
    pq.write_table(table, tmp_path / "n.parquet")
    for call in (read_ledgers, lambda p: ingest(p, tmp_path / "lake")):
        with pytest.raises(LedgerReadError, match=r"n\.parquet.*consignee_name"):
            call([tmp_path / "n.parquet"])


# ---------------------------------------------------------------------------------- messages
def test_malformed_csv_line_has_its_line_number(tmp_path):
    path = write_ledger([shipment("A"), shipment("B")], tmp_path / "l.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], '"X","2025-01-01"', lines[2]]) + "\n")
    ledger, counts, quarantine = both([path], tmp_path)
    assert ledger.quarantine.column("reason").to_pylist() == [REASON_MALFORMED]
    assert ledger.quarantine.column("source_row").to_pylist() == [3]
    assert quarantine.column("source_row").to_pylist() == [3]


def test_gzip_named_csv_is_a_clear_error_without_noise(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    plain = write_ledger([shipment("A")], tmp_path / "plain.csv")
    path = tmp_path / "l.csv"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    for call in (read_ledgers, lambda p: ingest(p, tmp_path / "lake")):
        with pytest.raises(LedgerReadError, match=r"l\.csv.*gzip"):
            call([path])
    assert not seen
    good = tmp_path / "l.csv.gz"
    good.write_bytes(path.read_bytes())
    assert read_ledgers([good]).counts["accepted"] == 1


def test_directory_is_reported_as_a_directory(tmp_path):
    folder = tmp_path / "ledger.csv"
    folder.mkdir()
    for call in (read_ledgers, lambda p: ingest(p, tmp_path / "lake")):
        with pytest.raises(LedgerReadError, match="is a directory"):
            call([folder])


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("others", [[], ["x"], [3], [2.5]])
def test_integral_float_quantity_is_accepted_whatever_the_other_rows(tmp_path, name, others):
    rows = [shipment("A", quantity=2.0 if name.endswith("jsonl") else "2.0")]
    rows += [shipment(f"O{i}", quantity=q) for i, q in enumerate(others)]
    ledger, counts, _ = both([write_ledger(rows, tmp_path / name)], tmp_path)
    accepted = dict(zip(ledger.rows.column("shipment_id").to_pylist(), ledger.rows.column("quantity").to_pylist()))
    assert accepted["A"] == 2
    assert ledger.counts["by_reason"] == ({REASON_QUANTITY: 1} if others in (["x"], [2.5]) else {})
    assert counts["accepted"] == ledger.counts["accepted"]


def test_large_json_integer_stays_exact_beside_a_float(tmp_path):
    rows = [shipment("A", quantity=2**53 + 1), shipment("B", quantity=2.0)]
    ledger = read_ledgers([write_ledger(rows, tmp_path / "l.jsonl")])
    assert ledger.rows.column("quantity").to_pylist() == [2]
    # An exact integer (whose TPP overflows), not a rounded float (not an integer below 2**53).
    assert ledger.quarantine.column("reason").to_pylist() == [REASON_TPP_OVERFLOW]
    assert ledger.quarantine.column("quantity").to_pylist() == [str(2**53 + 1)]


# ------------------------------------------------------------------------------ property test
def _valid_file(tmp_path, kind):
    rows = [shipment(f"P{i}", quantity=i + 1) for i in range(4)]
    return write_ledger(rows, tmp_path / f"seed.{kind}").read_bytes()


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_byte_corruption_gives_a_clean_error_or_quarantine(tmp_path, kind):
    original = _valid_file(tmp_path, kind)
    counter = iter(range(10**6))

    @settings(max_examples=60 if kind != "parquet" else 80, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, len(original) - 1), st.binary(min_size=0, max_size=3)),
                    min_size=1, max_size=4))
    def check(edits):
        data = bytearray(original)
        for at, replacement in edits:
            at = min(at, len(data))
            data[at:at + 1] = replacement
        number = next(counter)
        path = tmp_path / f"c{number}.{kind}"
        path.write_bytes(bytes(data))
        for call in (read_ledgers, lambda p: ingest(p, tmp_path / f"lake{number}")):
            try:
                result = call([path])
            except LedgerReadError as error:
                assert path.name in str(error)
                continue
            counts = result.counts
            assert counts["rows_read"] == counts["accepted"] + counts["quarantined"] + counts.get("duplicates", 0) \
                + counts.get("excluded_after_as_of", 0)

    check()


# ------------------------------------------------------------------------------------------ second round
def test_continuing_past_the_last_accepted_date_is_refused(tmp_path):
    from pipeline.generate import generate_next
    from pipeline.ingest import DATE_MAX

    history = write_ledger([shipment("SHP-000000000001", ship_date=DATE_MAX.isoformat())], tmp_path / "h.csv")
    with pytest.raises(ValueError, match="2199-12-31"):
        generate_next(tmp_path / "next.csv", history, 5)
    assert not (tmp_path / "next.csv").exists()
    history = write_ledger([shipment("SHP-000000000001", ship_date="2199-12-16")], tmp_path / "h2.csv")
    generate_next(tmp_path / "next.csv", history, 5)  # 1 + 14 days: ends on DATE_MAX
    assert read_ledgers([tmp_path / "next.csv"]).counts["quarantined"] == 0


def test_a_lone_surrogate_escape_quarantines_its_line_only(tmp_path):
    path = tmp_path / "l.jsonl"
    good = json.dumps(shipment("B"))
    path.write_text(json.dumps(shipment("A", consignee_name="F\ud800")) + "\n" + good + "\n")
    ledger = read_ledgers([path])
    assert ledger.rows.column("shipment_id").to_pylist() == ["B"]
    [row] = ledger.quarantine.to_pylist()
    assert row["reason"].startswith(REASON_JSON_LINE) and "consignee_name" in row["reason"]
    assert row["source_row"] == 1


@pytest.mark.parametrize("text", ["", "\n", "\n  \n\r\n"])
def test_an_empty_jsonl_reads_as_no_rows(tmp_path, text):
    path = tmp_path / "l.jsonl"
    path.write_text(text)
    ledger = read_ledgers([path])
    assert ledger.counts["rows_read"] == 0 and ledger.rows.num_rows == 0 and ledger.quarantine.num_rows == 0


@pytest.mark.parametrize("malformed", [False, True])
def test_jsonl_source_row_is_the_line_number(tmp_path, malformed):
    path = tmp_path / "l.jsonl"
    lines = ["", json.dumps(shipment("A", destination_country="ZZ")), "not json" if malformed else "  ",
             "", json.dumps(shipment("B", destination_country="ZZ"))]
    path.write_text("\n".join(lines) + "\n")
    rows = {r["shipment_id"]: r["source_row"] for r in read_ledgers([path]).quarantine.to_pylist()}
    assert rows == {"A": 2, "B": 5, **({None: 3} if malformed else {})}


@pytest.mark.parametrize("name", ["l.csv", "l.jsonl"])
def test_parquet_named_as_text_is_named_parquet(tmp_path, name):
    pq.write_table(pa.table({"shipment_id": ["A"]}), tmp_path / name)
    with pytest.raises(LedgerReadError, match=r"is Parquet, not .*rename it \.parquet"):
        read_ledgers([tmp_path / name])


@pytest.mark.parametrize("name", FORMATS)
def test_int64_max_quantity_overflows_tpp_beside_infinite_ones(tmp_path, name):
    rows = [shipment("A", quantity="9223372036854775807"), shipment("B", quantity="inf"),
            shipment("C", quantity="1e400"), shipment("D", quantity="2.0")]
    path = write_ledger(rows, tmp_path / name)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ledger = read_ledgers([path])
    reasons = {r["shipment_id"]: r["reason"] for r in ledger.quarantine.to_pylist()}
    assert reasons == {"A": REASON_TPP_OVERFLOW, "B": REASON_QUANTITY, "C": REASON_QUANTITY}
    assert ledger.rows.column("quantity").to_pylist() == [2]


def test_two_lake_folders_are_named_as_lakes(tmp_path):
    path = write_ledger([shipment("A")], tmp_path / "l.csv")
    ingest([path], tmp_path / "lk70")
    ingest([path], tmp_path / "lk3")
    with pytest.raises(LedgerReadError, match="a lake folder must be given alone"):
        read_ledgers([tmp_path / "lk70", tmp_path / "lk3"])
    (tmp_path / "plain").mkdir()
    with pytest.raises(LedgerReadError, match="is a directory, not a ledger file"):
        read_ledgers([tmp_path / "plain", path])


def test_json_lines_rows_are_quarantined_by_line_number_in_the_lake_too(tmp_path):
    path = tmp_path / "l.jsonl"
    lines = [json.dumps(shipment("A")), "", "{not json", json.dumps(shipment("B", destination_country="ZZ"))]
    path.write_text("\n".join(lines) + "\n")
    ledger, counts, quarantine = both([path], tmp_path)
    assert sorted(r["source_row"] for r in ledger.quarantine.to_pylist()) == [3, 4]
    assert sorted(quarantine.column("source_row").to_pylist()) == [3, 4]  # line numbers, not object counts


def test_a_json_lines_file_holding_only_a_byte_order_mark_has_no_rows(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf\n")
    ledger = read_ledgers([path])
    assert ledger.rows.num_rows == 0 and ledger.counts["rows_read"] == 0
