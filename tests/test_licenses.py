"""License register: the reader (pipeline.licenses), the example file, and the generator's matching register."""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.generate import generate_ledger, generate_register
from pipeline.generate.licenses import BRANCHES
from pipeline.ingest import read_ledgers
from pipeline.licenses import (REGISTER_COLUMNS, REQUIRED_COLUMNS, TABLE_COLUMNS, LicenseRegister,
                               LicenseRegisterError, read_register)
from pipeline.parties import PartyScreen, normalize_name
from pipeline.reference import DATA_DIR, load_catalog

EXAMPLE = DATA_DIR / "licenses-example.csv"
EPOCH = dt.date(1970, 1, 1)


def lic(license_id="L-1", **fields) -> dict:
    """One register row: a one-year license to the UAE, no other scope, no limits."""
    row = {"license_id": license_id, "valid_from": "2025-01-01", "valid_until": "2025-12-31",
           "destination_country": "AE"}
    row.update(fields)
    return row


def write_csv(path: Path, rows: list[dict], columns=REGISTER_COLUMNS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return path


def write_text(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def error_of(path) -> str:
    with pytest.raises(LicenseRegisterError) as caught:
        read_register(path)
    return str(caught.value)


# --- a valid register -----------------------------------------------------------------------------

ROWS = [
    lic(" L-1 ", valid_from="2025-11-19", valid_until=" 2029-11-18", destination_country=" ae",
        consignee_name="  G42 Holding Co., Ltd. ", exporter=" Northbridge Systems Inc. ",
        skus=" NVIDIA-GB300 ; NVIDIA-B200;NVIDIA-GB300;", max_units=" 1000 ", max_tpp="007",
        conditions="up to 35,000 \"GB300\" equivalents", source="[L1]"),
    lic("L-2", consignee_id=" C-42 ", max_tpp="9223372036854775807", max_units="0"),
    lic("L-3", valid_from="2025-06-01", valid_until="2025-06-01", destination_country="SA",
        consignee_name="Société Générale S.A.", exporter="CASCADIA Server Corp."),
]


def test_a_valid_register_is_read_into_the_documented_table(tmp_path):
    register = read_register(write_csv(tmp_path / "r.csv", ROWS))
    table = register.table
    assert isinstance(register, LicenseRegister) and len(register) == 3
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert register.path == tmp_path / "r.csv" and re.fullmatch(r"[0-9a-f]{64}", register.sha256)
    assert table["license_id"].tolist() == ["L-1", "L-2", "L-3"]
    assert table["valid_from"].dtype == np.int64 and table["valid_until"].dtype == np.int64
    assert table["valid_from"].tolist() == [(dt.date(2025, 11, 19) - EPOCH).days, (dt.date(2025, 1, 1) - EPOCH).days,
                                            (dt.date(2025, 6, 1) - EPOCH).days]
    assert table["valid_until_date"].tolist() == [dt.date(2029, 11, 18), dt.date(2025, 12, 31), dt.date(2025, 6, 1)]
    assert table["destination_country"].tolist() == ["AE", "AE", "SA"]
    assert table["consignee_id"].tolist() == [None, "C-42", None]
    assert table["consignee_name"].tolist() == ["G42 Holding Co., Ltd.", None, "Société Générale S.A."]
    assert table["consignee_normalized"].tolist() == ["g42 holding", None, "societe generale"]
    assert table["exporter"].tolist() == ["Northbridge Systems Inc.", None, "CASCADIA Server Corp."]
    assert table["exporter_key"].tolist() == ["northbridge systems inc.", None, "cascadia server corp."]
    assert table["skus"].tolist() == [("NVIDIA-GB300", "NVIDIA-B200"), (), ()]
    assert str(table["max_units"].dtype) == "Int64" and str(table["max_tpp"].dtype) == "Int64"
    assert table["max_units"].tolist()[:2] == [1000, 0] and pd.isna(table["max_units"].iloc[2])
    assert table["max_tpp"].tolist()[:2] == [7, 9223372036854775807] and pd.isna(table["max_tpp"].iloc[2])
    assert table["conditions"].tolist() == ['up to 35,000 "GB300" equivalents', None, None]
    assert table["source"].tolist() == ["[L1]", None, None]


def test_position_finds_each_id_and_minus_one_for_unknown(tmp_path):
    register = read_register(write_csv(tmp_path / "r.csv", ROWS))
    got = register.position(["L-3", "nope", None, "L-1", "l-1", "L-3"])
    assert got.dtype == np.int64 and got.tolist() == [2, -1, -1, 0, -1, 2]
    assert register.position([]).tolist() == []


def test_csv_and_parquet_give_the_same_table(tmp_path):
    from_csv = read_register(write_csv(tmp_path / "r.csv", ROWS)).table
    as_text = pa.table({c: pa.array([r.get(c) for r in ROWS], pa.string()) for c in REGISTER_COLUMNS})
    pq.write_table(as_text, tmp_path / "text.parquet")
    pd.testing.assert_frame_equal(read_register(tmp_path / "text.parquet").table, from_csv)
    # typed columns: dates as date32, limits as int64, SKUs as a list, text dictionary-encoded
    typed = as_text.set_column(1, "valid_from", pa.array([dt.date(2025, 11, 19), dt.date(2025, 1, 1),
                                                          dt.date(2025, 6, 1)], pa.date32()))
    typed = typed.set_column(8, "max_units", pa.array([1000, 0, None], pa.int64()))
    typed = typed.set_column(7, "skus", pa.array([["NVIDIA-GB300", "NVIDIA-B200"], None, None], pa.list_(pa.string())))
    typed = typed.set_column(3, "destination_country", pa.array(["ae", "AE", "SA"]).dictionary_encode())
    pq.write_table(typed, tmp_path / "typed.pq")
    pd.testing.assert_frame_equal(read_register(tmp_path / "typed.pq").table, from_csv)


def test_optional_columns_may_be_absent_and_a_bom_is_accepted(tmp_path):
    path = write_text(tmp_path / "r.csv", "\ufefflicense_id,valid_from,valid_until,destination_country\n"
                                          "L-1,2025-01-01,2025-12-31,am\r\n")
    table = read_register(path).table
    assert table["destination_country"].tolist() == ["AM"]
    assert table["consignee_name"].tolist() == [None] and table["skus"].tolist() == [()]
    assert pd.isna(table["max_units"].iloc[0]) and pd.isna(table["max_tpp"].iloc[0])


def test_header_only_is_an_empty_register(tmp_path):
    for path in (write_text(tmp_path / "r.csv", ",".join(REQUIRED_COLUMNS) + "\n"),
                 write_text(tmp_path / "blank-lines.csv", ",".join(REGISTER_COLUMNS) + "\n\n\n")):
        register = read_register(path)
        assert len(register) == 0 and list(register.table.columns) == list(TABLE_COLUMNS)
        assert register.table["valid_from"].dtype == np.int64
        assert str(register.table["max_tpp"].dtype) == "Int64"
        assert register.position(["L-1"]).tolist() == [-1]
    pq.write_table(pa.table({c: pa.array([], pa.string()) for c in REQUIRED_COLUMNS}), tmp_path / "r.parquet")
    assert len(read_register(tmp_path / "r.parquet")) == 0


def test_blank_lines_and_rows_of_empty_fields_are_skipped(tmp_path):
    text = ",".join(REQUIRED_COLUMNS) + "\nL-1,2025-01-01,2025-12-31,AE\n\n,,,\n  , ,,\nL-2,2025-01-01,2025-12-31,SA\n"
    assert read_register(write_text(tmp_path / "r.csv", text)).table["license_id"].tolist() == ["L-1", "L-2"]


def test_the_normalized_name_is_the_party_screens(tmp_path):
    names = ["G42", "Humain", "Microsoft", "  HUAWEI TECHNOLOGIES CO., LTD ", "Huawei Technologies Co., Ltd.",
             "Donetsk People?s Republic", "Société Générale S.A.", "Smith & Sons GmbH & Co. KG",
             "华为技术有限公司",
             "OOO DSK", "DSK LLC", "Xi\u2019an Aero-Engine (Group) Ltd", "ＡＣＭＥ　Ｌｔｄ．"]
    rows = [lic(f"L-{i}", consignee_name=name) for i, name in enumerate(names)]
    register = read_register(write_csv(tmp_path / "r.csv", rows))
    entries = pd.DataFrame({"entry_id": ["1"], "list_code": ["EL"], "listed_name": ["Acme Ltd."],
                            "alias": ["Acme Ltd."], "normalized": ["acme"], "countries": ["CN"]})
    screened = PartyScreen(entries).screen([name.strip() for name in names], ["EL"], [])
    assert register.table["consignee_normalized"].tolist() == screened["normalized"].tolist()
    assert register.table["consignee_normalized"].tolist() == [normalize_name(name) for name in names]


def test_a_large_register_reads_fast(tmp_path):
    n = 100_000
    i = np.arange(n)
    skus = np.array(["", "NVIDIA-H100-SXM", "NVIDIA-B200;NVIDIA-GB300", "AMD-MI300X; NVIDIA-H200"], dtype=object)
    frame = pd.DataFrame({
        "license_id": [f"LIC-{k:07d}" for k in i],
        "valid_from": "2025-01-01", "valid_until": np.where(i % 2 == 0, "2026-12-31", "2029-06-30"),
        "destination_country": np.array(["AE", "SA", "in", "JP", "DE"], dtype=object)[i % 5],
        "consignee_id": np.where(i % 3 == 0, "", [f"C-{k}" for k in i]),
        "consignee_name": [f"Consignee {k % 40_000} Co., Ltd." for k in i],
        "exporter": np.array(["", "Northbridge Systems Inc.", "Cascadia Server Corp."], dtype=object)[i % 3],
        "skus": skus[i % 4], "max_units": np.where(i % 4 == 0, "", (i * 7 % 100_000).astype(str)),
        "max_tpp": np.where(i % 5 == 0, "", (i * 1_000_003).astype(str)), "conditions": "generated",
        "source": "test"}, columns=list(REGISTER_COLUMNS))
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    started = time.perf_counter()
    register = read_register(path)
    seconds = time.perf_counter() - started
    assert len(register) == n and seconds < 5.0, seconds
    assert register.table["skus"].iloc[3] == ("AMD-MI300X", "NVIDIA-H200")
    assert register.position(["LIC-0099999", "LIC-0000000"]).tolist() == [n - 1, 0]


# --- errors: file level ---------------------------------------------------------------------------

def test_missing_file_folder_and_unknown_format(tmp_path):
    assert error_of(tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: no such license register file"
    assert "is a directory" in error_of(tmp_path)
    assert "unknown license register format (use .csv or .parquet)" in error_of(
        write_text(tmp_path / "r.xlsx", "license_id\n"))


@pytest.mark.parametrize("data, expected", [
    (b"", "empty file, no header row (an empty register is the header line alone)"),
    (b"\n\n", "empty file, no header row"),
    (b"PAR1\x00\x00", "is Parquet, not CSV (rename it .parquet)"),
    (gzip.compress(b"license_id\n"), "gzip-compressed data"),
    ("license_id\n".encode("utf-16"), "UTF-16 text; save the register as UTF-8 CSV"),
    (b"license_id,valid_from\nL\x00,1\n", "line 2: NUL byte; not a UTF-8 CSV file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL byte"),
    (b"license_id,valid_from,valid_until,destination_country\nL-1,2025-01-01,2025-12-31,AE\nL-\xe9,x,y,z\n",
     "line 3: not UTF-8 text (byte 0xe9); save the register as UTF-8 CSV"),
    (b"license_id,valid_from,valid_until,destination_country\nL-1,\"2025-01-01,2025-12-31,AE\n",
     "not readable as CSV"),
])
def test_unreadable_csv(tmp_path, data, expected):
    assert expected in error_of(write_text(tmp_path / "r.csv", data))


def test_a_parquet_name_that_is_not_parquet(tmp_path):
    message = error_of(write_csv(tmp_path / "r.parquet", [lic()]))
    assert message.startswith(f"{tmp_path / 'r.parquet'}: cannot read as Parquet")


@pytest.mark.parametrize("header, expected", [
    ("license_id,valid_from,valid_until", "missing required column(s): destination_country"),
    ("license_id,valid_from", "missing required column(s): valid_until, destination_country"),
    ("license_id,valid_from,valid_until,destination_country,max_unit",
     "unknown column 'max_unit' (did you mean max_units?)"),
    ("license_id,valid_from,valid_until,destination_country,Consignee_Name",
     "unknown column 'Consignee_Name' (did you mean consignee_name?)"),
    ("license_id,valid_from,valid_until,destination_country,quantity", "unknown column 'quantity'; register "
     "columns are license_id, valid_from"),
    ("license_id;valid_from;valid_until;destination_country", "(is the file ';'-separated?"),
    ("license_id,valid_from,valid_until,destination_country,skus,skus", "column(s) given twice: skus"),
    ("license_id,valid_from,valid_until,destination_country,", "column 5 of the header has no name"),
])
def test_bad_header(tmp_path, header, expected):
    assert expected in error_of(write_text(tmp_path / "r.csv", header + "\n"))


def test_a_column_name_with_blanks_around_it_is_trimmed(tmp_path):
    path = write_text(tmp_path / "r.csv", " license_id , valid_from,valid_until,destination_country, max_units \n"
                                          "L-1,2025-01-01,2025-12-31,AE,12\n")
    assert read_register(path).table["max_units"].tolist() == [12]


def test_a_row_with_the_wrong_number_of_fields(tmp_path):
    path = write_text(tmp_path / "r.csv", "license_id,valid_from,valid_until,destination_country\n"
                                          "L-1,2025-01-01,2025-12-31,AE\n\nL-2,2025-01-01,2025-12-31\n")
    assert error_of(path) == f"{path}: row 2 (line 4): 3 field(s), the header has 4"


# --- errors: rows ---------------------------------------------------------------------------------

BAD_ROWS = [
    ({"license_id": " "}, "row 2 (line 3), column license_id: empty; a value is required"),
    ({"valid_from": ""}, "row 2 (line 3), column valid_from: empty; a value is required"),
    ({"valid_until": None}, "column valid_until: empty; a value is required"),
    ({"destination_country": ""}, "column destination_country: empty; a value is required"),
    ({"valid_from": "2025/01/01"}, "row 2 (line 3), column valid_from: '2025/01/01' is not a date written YYYY-MM-DD"),
    ({"valid_from": "01-01-2025"}, "'01-01-2025' is not a date written YYYY-MM-DD"),
    ({"valid_from": "2025-1-1"}, "'2025-1-1' is not a date written YYYY-MM-DD"),
    ({"valid_from": "2025-01-01T00:00"}, "'2025-01-01T00:00' is not a date written YYYY-MM-DD"),
    ({"valid_until": "２０２５-01-01"}, "is not a date written YYYY-MM-DD"),
    ({"valid_from": "2025-02-30"}, "row 2 (line 3), column valid_from: '2025-02-30' is not a real date"),
    ({"valid_from": "2023-02-29"}, "'2023-02-29' is not a real date"),
    ({"valid_until": "2025-13-01"}, "column valid_until: '2025-13-01' is not a real date"),
    ({"valid_from": "1899-12-31"}, "column valid_from: 1899-12-31 is outside 1900-01-01..2199-12-31"),
    ({"valid_until": "2200-01-01"}, "column valid_until: 2200-01-01 is outside 1900-01-01..2199-12-31"),
    ({"valid_from": "2025-06-02", "valid_until": "2025-06-01"},
     "row 2 (line 3), column valid_until: 2025-06-01 is before valid_from 2025-06-02"),
    ({"destination_country": "XX"}, "column destination_country: unknown country code 'XX'; use an ISO 3166-1"),
    ({"destination_country": "Armenia"}, "unknown country code 'Armenia' (did you mean AM?)"),
    ({"destination_country": "UAE"}, "unknown country code 'UAE'"),
    ({"skus": "NVIDIA-H1OO-SXM"}, "row 2 (line 3), column skus: unknown SKU 'NVIDIA-H1OO-SXM' (did you mean "
                                  "NVIDIA-H100-SXM?)"),
    ({"skus": "NVIDIA-B200;nvidia-gb300"}, "unknown SKU 'nvidia-gb300' (did you mean NVIDIA-GB300?)"),
    ({"skus": "GB300"}, "unknown SKU 'GB300'"),
    ({"skus": " ; ;"}, "column skus: '; ;' names no SKU (leave it empty for any item)"),
    ({"max_units": "1.5"},
     "row 2 (line 3), column max_units: '1.5' is not a whole number ≥ 0 written in plain digits"),
    ({"max_units": "-1"}, "column max_units: '-1' is not a whole number"),
    ({"max_units": "+5"}, "column max_units: '+5' is not a whole number"),
    ({"max_units": "1e3"}, "column max_units: '1e3' is not a whole number"),
    ({"max_units": "1,000"}, "column max_units: '1,000' is not a whole number"),
    ({"max_units": "1_000"}, "column max_units: '1_000' is not a whole number"),
    ({"max_units": "1 000"}, "column max_units: '1 000' is not a whole number"),
    ({"max_units": "１２"}, "column max_units: '１２' is not a whole number"),
    ({"max_tpp": "2.1e9"}, "column max_tpp: '2.1e9' is not a whole number"),
    ({"max_tpp": "9223372036854775808"}, "column max_tpp: 9223372036854775808 is above the int64 maximum "
                                         "9223372036854775807"),
    ({"max_tpp": "99999999999999999999999"}, "is above the int64 maximum"),
    ({"consignee_name": "--- ."}, "column consignee_name: '--- .' has no letters or digits to match on"),
]


@pytest.mark.parametrize("fields, expected", BAD_ROWS)
def test_a_bad_row_names_the_file_row_and_column(tmp_path, fields, expected):
    path = write_csv(tmp_path / "r.csv", [lic("L-1"), lic(**{"license_id": "L-2", **fields}), lic("L-3")])
    message = error_of(path)
    assert message.startswith(f"{path}: row 2 (line 3), column "), message
    assert expected in message


def test_a_duplicate_license_id_names_both_rows(tmp_path):
    path = write_csv(tmp_path / "r.csv", [lic("L-1"), lic("L-2"), lic(" L-1 ")])
    assert error_of(path) == (f"{path}: row 3 (line 4), column license_id: 'L-1' is also in row 1 (line 2); "
                              "each license_id must be unique")
    assert len(read_register(write_csv(tmp_path / "case.csv", [lic("L-1"), lic("l-1")]))) == 2


def test_the_count_of_other_bad_rows_is_given(tmp_path):
    path = write_csv(tmp_path / "r.csv", [lic("L-1"), lic("L-2", max_units="x"), lic("L-3", max_units="-2"),
                                           lic("L-4", max_units="3"), lic("L-5", max_units="1.0")])
    assert error_of(path).endswith("column max_units: 'x' is not a whole number ≥ 0 written in plain digits (no "
                                   "sign, fraction, exponent or separator) (2 more rows like it)")


def test_lines_follow_quoted_line_breaks_and_blank_lines(tmp_path):
    text = ("license_id,valid_from,valid_until,destination_country,conditions\n"
            "L-1,2025-01-01,2025-12-31,AE,\"two\nlines\"\n"
            "\n"
            "L-2,2025-01-01,2025-12-31,AE,x\n"
            "L-3,2025-01-01,2025-12-31,ZZ,y\n")
    path = write_text(tmp_path / "r.csv", text)
    assert error_of(path).startswith(f"{path}: row 3 (line 6), column destination_country: unknown country code 'ZZ'")


def test_parquet_errors_name_the_row_and_its_index(tmp_path):
    table = pa.table({"license_id": ["L-1", "L-2", "L-1"], "valid_from": ["2025-01-01"] * 3,
                      "valid_until": ["2025-12-31"] * 3, "destination_country": ["AE"] * 3})
    pq.write_table(table, tmp_path / "r.parquet")
    assert error_of(tmp_path / "r.parquet") == (f"{tmp_path / 'r.parquet'}: row 3 (index 2), column license_id: "
                                                "'L-1' is also in row 1 (index 0); each license_id must be unique")
    pq.write_table(table.set_column(0, "license_id", pa.array(["L-1", "L-2", "L-3"]))
                   .append_column("max_units", pa.array([1.0, 2.5, None])), tmp_path / "float.parquet")
    assert "column max_units has type double; expected text, an integer or a date" in error_of(
        tmp_path / "float.parquet")
    pq.write_table(table.set_column(0, "license_id", pa.array(["L-1", "L-2", "L-3"]))
                   .append_column("max_units", pa.array([1, -4, None], pa.int64())), tmp_path / "negative.parquet")
    assert error_of(tmp_path / "negative.parquet").endswith("row 2 (index 1), column max_units: '-4' is not a whole "
                                                            "number ≥ 0 written in plain digits (no sign, fraction, "
                                                            "exponent or separator)")
    pq.write_table(pa.table({"license_id": ["L-1"], "valid_from": ["2025-01-01"], "valid_until": ["2025-12-31"]}),
                   tmp_path / "short.parquet")
    assert "missing required column(s): destination_country" in error_of(tmp_path / "short.parquet")


# --- the example register -------------------------------------------------------------------------

def test_the_example_register_loads_with_its_counting_rules():
    register = read_register(EXAMPLE)
    table = register.table.set_index("license_id")
    tpp = load_catalog().set_index("sku")["unit_tpp"]
    assert len(register) == 4
    assert table.loc["EX-G42-AE-20251119", "max_tpp"] == 35_000 * tpp["NVIDIA-GB300"] == 2_100_000_000
    assert table.loc["EX-HUMAIN-SA-20251119", "max_tpp"] == 35_000 * tpp["NVIDIA-GB300"]
    assert table.loc["EX-MSFT-AE-202509", "max_tpp"] == 60_400 * tpp["NVIDIA-A100"] == 301_516_800
    assert table.loc["EX-FIREBIRD-AM-20251120", "max_units"] == 6_144
    assert pd.isna(table.loc["EX-G42-AE-20251119", "max_units"])
    assert table["destination_country"].tolist() == ["AE", "SA", "AE", "AM"]
    assert table["consignee_normalized"].tolist() == ["g42", "humain", "microsoft", "firebird"]
    assert table.loc["EX-G42-AE-20251119", "valid_from_date"] == dt.date(2025, 11, 19)
    assert all(sku.startswith(("NVIDIA-B", "NVIDIA-GB")) for sku in table.loc["EX-FIREBIRD-AM-20251120", "skus"])
    sources = (DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    for text in table["source"].tolist() + table["conditions"].tolist():
        for tag in re.findall(r"\[(L\d+)\]", text):
            assert f"**[{tag}]**" in sources
    assert all(re.search(r"\[L\d+\]", text) for text in table["source"])
    assert all("equivalent" not in text.lower() or "counts" in text for text in table["conditions"])


# --- the generator's register ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("licenses")
    ledger = folder / "ledger.parquet"
    generate_ledger(ledger, 6_000, seed=11, bad_rows=14)
    stats = generate_register(ledger, folder / "register.csv", seed=4)
    return folder, ledger, stats


def _lines(ledger: Path) -> pd.DataFrame:
    """The ledger's accepted licensed lines, in screening order, with day and TPP."""
    rows = read_ledgers([ledger]).rows
    rows = rows.filter(pc.is_valid(rows.column("license_id")))
    frame = pd.DataFrame({name: np.asarray(pc.cast(rows.column(name), pa.string()).to_pylist(), dtype=object)
                          for name in ("license_id", "shipment_id", "destination_country", "consignee_id",
                                       "consignee_name", "exporter", "sku")})
    frame["day"] = pc.cast(rows.column("ship_date"), pa.int32()).to_numpy().astype(np.int64)
    frame["quantity"] = rows.column("quantity").to_numpy()
    frame["tpp"] = frame["quantity"] * frame["sku"].map(load_catalog().set_index("sku")["unit_tpp"]).astype(np.int64)
    return frame


def test_the_generated_register_has_every_branch(generated):
    folder, ledger, stats = generated
    assert set(stats["branches"]) == set(BRANCHES)
    assert all(count >= 1 for count in stats["branches"].values()), stats["branches"]
    assert stats["branches"]["covered"] >= stats["license_ids"] // 2
    assert stats["licenses"] == stats["license_ids"] - stats["branches"]["unknown"]
    assert sum(stats["branches"].values()) == stats["license_ids"]
    assert sum(stats["lines_by_branch"].values()) == stats["lines"]
    register = read_register(folder / "register.csv")
    assert len(register) == stats["licenses"]
    lines = _lines(ledger)
    assert set(lines["license_id"]) >= set(register.table["license_id"])
    assert lines["license_id"].nunique() == stats["license_ids"]


def test_each_generated_branch_does_what_it_says(generated):
    folder, ledger, stats = generated
    table = read_register(folder / "register.csv").table
    branch = table["conditions"].str.extract(r"^generated \((\w+)\)")[0]
    assert branch.value_counts().to_dict() == {b: n for b, n in stats["branches"].items() if n and b != "unknown"}
    lines = _lines(ledger)
    unknown = set(lines["license_id"]) - set(table["license_id"])
    assert len(unknown) == stats["branches"]["unknown"]
    for row, kind in zip(table.itertuples(index=False), branch):
        mine = lines[lines["license_id"] == row.license_id]
        days = mine["day"].to_numpy()
        in_window = (row.valid_from <= days) & (days <= row.valid_until)
        same_destination = (mine["destination_country"] == row.destination_country).to_numpy()
        if row.consignee_id is not None and mine["consignee_id"].notna().all():
            same_consignee = (mine["consignee_id"] == row.consignee_id).to_numpy()
        elif row.consignee_normalized is not None:
            same_consignee = (mine["consignee_name"].map(normalize_name) == row.consignee_normalized).to_numpy()
        else:
            same_consignee = np.zeros(len(mine), bool)
        key = row.exporter_key
        same_exporter = (np.ones(len(mine), bool) if key is None else
                         np.array([e is not None and e.casefold() == key for e in mine["exporter"]], bool))
        listed = np.ones(len(mine), bool) if not row.skus else mine["sku"].isin(row.skus).to_numpy()
        in_scope = same_destination & same_consignee & same_exporter & listed
        units, tpp = int(mine["quantity"].sum()), int(mine["tpp"].sum())
        if kind in ("covered", "exhausted_units", "exhausted_tpp"):
            assert in_window.all() and in_scope.all(), (kind, row.license_id)
        if kind == "covered":
            assert pd.isna(row.max_units) or row.max_units >= units
            assert pd.isna(row.max_tpp) or row.max_tpp >= tpp
        elif kind == "exhausted_units":
            assert row.max_units < units and pd.isna(row.max_tpp)
        elif kind == "exhausted_tpp":
            assert row.max_tpp < tpp and pd.isna(row.max_units)
        elif kind == "expired":
            assert days.max() > row.valid_until and in_scope.all()
        elif kind == "not_yet_valid":
            assert days.min() < row.valid_from and in_scope.all()
        elif kind == "out_of_scope_destination":
            assert not same_destination.any()
        elif kind == "out_of_scope_sku":
            assert not listed.any()
        elif kind == "out_of_scope_consignee":
            assert not same_consignee.any()
        elif kind == "out_of_scope_exporter":
            assert not same_exporter.any()
        if kind.startswith("out_of_scope"):
            assert in_window.all()


def test_exhausted_licenses_run_out_part_way(generated):
    folder, ledger, _ = generated
    table = read_register(folder / "register.csv").table
    lines = _lines(ledger)
    part_way = 0
    for row in table[table["conditions"].str.startswith("generated (exhausted")].itertuples(index=False):
        mine = lines[lines["license_id"] == row.license_id]
        cum = (mine["quantity"].astype(np.int64) if not pd.isna(row.max_units) else mine["tpp"]).cumsum().to_numpy()
        limit = row.max_units if not pd.isna(row.max_units) else row.max_tpp
        over = cum > limit
        assert over.any()
        part_way += bool(not over[0])
    assert part_way >= 1


def test_the_generated_register_is_deterministic_and_format_independent(generated, tmp_path):
    folder, ledger, stats = generated
    again = generate_register(ledger, tmp_path / "again.csv", seed=4)
    assert (tmp_path / "again.csv").read_bytes() == (folder / "register.csv").read_bytes()
    assert again["branches"] == stats["branches"]
    other = generate_register(ledger, tmp_path / "other.csv", seed=5)
    assert (tmp_path / "other.csv").read_bytes() != (folder / "register.csv").read_bytes()
    assert sum(other["branches"].values()) == stats["license_ids"]
    generate_register(ledger, tmp_path / "again.parquet", seed=4)
    pd.testing.assert_frame_equal(read_register(tmp_path / "again.parquet").table,
                                  read_register(folder / "register.csv").table)
    # the same ledger as CSV gives the same register
    pacsv.write_csv(pq.read_table(ledger), tmp_path / "ledger.csv")
    generate_register(tmp_path / "ledger.csv", tmp_path / "from-csv.csv", seed=4)
    assert (tmp_path / "from-csv.csv").read_bytes() == (folder / "register.csv").read_bytes()


def test_a_tiny_ledger_still_gets_a_register(tmp_path):
    generate_ledger(tmp_path / "tiny.parquet", 40, seed=1)
    stats = generate_register(tmp_path / "tiny.parquet", tmp_path / "tiny.csv")
    assert stats["branches"]["covered"] >= (stats["license_ids"] + 1) // 2
    assert len(read_register(tmp_path / "tiny.csv")) == stats["licenses"]


def test_a_ledger_without_licenses_gives_an_empty_register(tmp_path):
    from conftest import shipment, write_ledger

    ledger = write_ledger([shipment("S1"), shipment("S2", license_id=None)], tmp_path / "ledger.csv")
    for name in ("r.csv", "r.parquet"):
        stats = generate_register(ledger, tmp_path / name)
        assert stats["license_ids"] == stats["licenses"] == 0 and stats["lines"] == 0
        assert len(read_register(tmp_path / name)) == 0
    ledger = write_ledger([shipment("S1", license_id=" LIC-1 ")], tmp_path / "one.csv")
    assert generate_register(ledger, tmp_path / "one-r.csv")["branches"]["covered"] == 1
    assert read_register(tmp_path / "one-r.csv").table["license_id"].tolist() == ["LIC-1"]


def test_generate_register_refuses_bad_arguments(generated, tmp_path):
    _, ledger, _ = generated
    with pytest.raises(ValueError, match="unknown register format"):
        generate_register(ledger, tmp_path / "r.txt")
    with pytest.raises(ValueError, match="seed must be non-negative"):
        generate_register(ledger, tmp_path / "r.csv", seed=-1)


def test_cli_generate_writes_the_matching_register(tmp_path):
    runner = CliRunner()
    ledger, register = tmp_path / "l.parquet", tmp_path / "licenses.csv"
    result = runner.invoke(app, ["generate", str(ledger), "--rows", "3000", "--seed", "3",
                                 "--licenses-out", str(register)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "licenses to" in output and "ids left out" in output
    assert len(read_register(register)) > 0
    result = runner.invoke(app, ["generate", str(ledger), "--rows", "300", "--licenses-out", str(ledger)])
    assert result.exit_code == 1 and "error:" in result.output and "is the input" in " ".join(result.output.split())
    result = runner.invoke(app, ["generate", str(ledger), "--rows", "300", "--licenses-out", str(tmp_path / "r.txt")])
    assert result.exit_code == 1 and "unknown extension" in " ".join(result.output.split())
