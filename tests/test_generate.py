"""Synthetic ledger generator: determinism, chunk independence, formats, order, bad rows, skew."""
import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from pipeline.generate import BAD_KINDS, BLOCK_ROWS, COLUMNS, generate_ledger
from pipeline.ingest import (
    LEDGER_COLUMNS, REASON_CONFLICT, REASON_COUNTRY, REASON_DATE, REASON_EXACT_DUPLICATE, REASON_MISSING,
    REASON_QUANTITY, REASON_SKU, read_ledgers,
)
from pipeline.reference import load_catalog, load_countries

LISTED = ["Melkom", "Angstrem-M", "Stealth Telecom FZC", "Huawei Cloud Thailand", "Kindroid", "Qtech",
          "Shenzhen Smartcom Business Co., Ltd., Shenzhen, Guangdong", "Scientific-Production Enterprise “Svyaz”"]
ID_PATTERN = re.compile(r"^SHP-\d{12}$")


def read_any(path) -> pa.Table:
    """Read a generated ledger in any of the three formats, CSV as text."""
    path = str(path)
    if path.endswith(".parquet"):
        return pq.read_table(path)
    if path.endswith(".csv"):
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in COLUMNS}, strings_can_be_null=True))
    return pajson.read_json(path)


def text(table: pa.Table, name: str) -> list:
    column = table.column(name)
    return (column if pa.types.is_string(column.type) else pc.cast(column, pa.string())).to_pylist()


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A 30,000-row clean Parquet ledger with listed names, and its stats."""
    path = tmp_path_factory.mktemp("gen") / "clean.parquet"
    stats = generate_ledger(path, 30_000, seed=11, listed_names=LISTED, chunk_rows=7_000)
    return stats, pq.read_table(path)


# ----------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", ["l.parquet", "l.csv", "l.jsonl"])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, name):
    a = generate_ledger(tmp_path / f"a_{name}", 5_000, seed=3, bad_rows=14, listed_names=LISTED)
    b = generate_ledger(tmp_path / f"b_{name}", 5_000, seed=3, bad_rows=14, listed_names=LISTED)
    c = generate_ledger(tmp_path / f"c_{name}", 5_000, seed=4, bad_rows=14, listed_names=LISTED)
    first = (tmp_path / f"a_{name}").read_bytes()
    assert first == (tmp_path / f"b_{name}").read_bytes()
    assert first != (tmp_path / f"c_{name}").read_bytes()
    assert a["rows_written"] == b["rows_written"] == c["rows_written"] == 5_014


def test_content_does_not_depend_on_chunk_rows(tmp_path):
    rows = BLOCK_ROWS + 4_321  # crosses an internal block boundary
    kwargs = dict(seed=5, bad_rows=30, listed_names=LISTED)
    small = generate_ledger(tmp_path / "small.parquet", rows, chunk_rows=9_999, **kwargs)
    large = generate_ledger(tmp_path / "large.parquet", rows, chunk_rows=1_000_000, **kwargs)
    assert small["chunks"] == -(-(rows + 30) // 9_999) and large["chunks"] == 1
    assert pq.ParquetFile(tmp_path / "small.parquet").metadata.num_row_groups == small["chunks"]
    assert pq.read_table(tmp_path / "small.parquet").equals(pq.read_table(tmp_path / "large.parquet"))
    for suffix in ("csv", "jsonl"):
        generate_ledger(tmp_path / f"s.{suffix}", rows, chunk_rows=2_500, **kwargs)
        generate_ledger(tmp_path / f"l.{suffix}", rows, chunk_rows=10**7, **kwargs)
        assert (tmp_path / f"s.{suffix}").read_bytes() == (tmp_path / f"l.{suffix}").read_bytes()


def test_valid_rows_do_not_depend_on_bad_rows(tmp_path, clean):
    stats, table = clean
    generate_ledger(tmp_path / "bad.parquet", 30_000, seed=11, listed_names=LISTED, bad_rows=21)
    bad = pq.read_table(tmp_path / "bad.parquet")
    keep = pc.match_substring_regex(bad.column("shipment_id"), r"^SHP-\d{12}$")
    kept = bad.filter(pc.fill_null(keep, False))
    # Drop the duplicates (same id as a valid row): keep the first occurrence of each id.
    ids = kept.column("shipment_id").to_pylist()
    first = [i for i, v in enumerate(ids) if i == 0 or ids[i - 1] != v]
    kept = kept.take(pa.array(first))
    assert kept.column("shipment_id").equals(table.column("shipment_id"))
    assert text(kept, "ship_date") == text(table, "ship_date")
    assert text(kept, "quantity") == text(table, "quantity")
    assert kept.column("consignee_name").equals(table.column("consignee_name"))


# ------------------------------------------------------------------------------------- formats
@pytest.mark.parametrize("name", ["l.parquet", "l.csv", "l.jsonl"])
def test_every_format_has_the_ledger_columns(tmp_path, name):
    stats = generate_ledger(tmp_path / name, 3_000, seed=2)
    table = read_any(tmp_path / name)
    assert tuple(table.column_names) == COLUMNS == LEDGER_COLUMNS
    assert stats["columns"] == list(COLUMNS)
    assert table.num_rows == 3_000
    assert stats["format"] == name.split(".")[1]
    # Shipped rows record an authorization, pending rows none.
    recorded = table.column("recorded_authorization").to_pylist()
    statuses = table.column("status").to_pylist()
    assert all((r is None) == (s == "pending") for r, s in zip(recorded, statuses))
    assert set(recorded) <= {None, "NLR", "AIA", "LPP", "VEU", "LICENSE"} and {"AIA", "LPP", "LICENSE"} <= set(recorded)
    assert 0 < table.column("license_id").null_count < 3_000
    if name.endswith(".parquet"):
        types = {f.name: f.type for f in table.schema}
        assert types["ship_date"] == pa.date32() and types["quantity"] == pa.int64()
        assert all(t == pa.string() for c, t in types.items() if c not in ("ship_date", "quantity"))
    if name.endswith(".jsonl"):
        assert pa.types.is_integer(table.schema.field("quantity").type)


def test_parquet_with_bad_rows_stores_dates_and_quantities_as_text(tmp_path):
    generate_ledger(tmp_path / "l.parquet", 2_000, seed=2, bad_rows=8)
    schema = pq.read_schema(tmp_path / "l.parquet")
    assert all(field.type == pa.string() for field in schema)
    dates = pq.read_table(tmp_path / "l.parquet").column("ship_date").to_pylist()
    assert sum(bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d or "")) for d in dates) >= 2_000


def test_format_argument_and_errors(tmp_path):
    stats = generate_ledger(tmp_path / "ledger.data", 100, fmt="csv")
    assert stats["format"] == "csv" and (tmp_path / "ledger.data").read_text().startswith('"shipment_id"')
    assert generate_ledger(tmp_path / "noext", 100)["format"] == "parquet"
    with pytest.raises(ValueError):
        generate_ledger(tmp_path / "x.parquet", 10, fmt="xlsx")
    with pytest.raises(ValueError):
        generate_ledger(tmp_path / "x.parquet", 10, start=dt.date(2026, 1, 1), end=dt.date(2025, 1, 1))
    with pytest.raises(ValueError):
        generate_ledger(tmp_path / "x.parquet", -1)
    with pytest.raises(ValueError):
        generate_ledger(tmp_path / "x.parquet", 0, bad_rows=3)
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x.parquet.tmp").exists()


def test_empty_ledger(tmp_path):
    stats = generate_ledger(tmp_path / "e.parquet", 0)
    assert stats["rows_written"] == 0 and pq.read_table(tmp_path / "e.parquet").num_rows == 0


def test_progress_reports_rows_written_per_chunk(tmp_path):
    seen = []
    generate_ledger(tmp_path / "l.jsonl", 10_000, bad_rows=5, chunk_rows=3_000, progress=seen.append)
    assert seen == [3_000, 6_000, 9_000, 10_005]


# ------------------------------------------------------------------------------- order and dates
def test_rows_in_date_then_id_order_with_fixed_width_ids(clean):
    _, table = clean
    days = pc.cast(table.column("ship_date"), pa.int32()).to_numpy()
    ids = table.column("shipment_id").to_pylist()
    assert (np.diff(days) >= 0).all()
    assert all(ID_PATTERN.match(i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_ordered_even_with_bad_rows(tmp_path):
    generate_ledger(tmp_path / "l.csv", 8_000, seed=9, bad_rows=70)
    table = read_any(tmp_path / "l.csv")
    pairs = [(d, i) for d, i in zip(text(table, "ship_date"), text(table, "shipment_id"))
             if d and i and re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) and not d.endswith("-02-30")]
    assert len(pairs) > 8_000 - 70
    assert pairs == sorted(pairs)


def test_status_split_and_date_range(tmp_path):
    start, end = dt.date(2025, 3, 1), dt.date(2025, 12, 31)
    stats = generate_ledger(tmp_path / "l.parquet", 20_000, seed=1, start=start, end=end, pending_days=30)
    table = pq.read_table(tmp_path / "l.parquet")
    status = np.array(table.column("status").to_pylist())
    days = np.array(table.column("ship_date").to_pylist())
    shipped, pending = status == "shipped", status == "pending"
    assert (shipped | pending).all()
    assert stats["pending"] == pending.sum() == 400 and stats["shipped"] == shipped.sum()
    assert days[shipped].min() >= start and days[shipped].max() <= end
    assert days[pending].min() > end and days[pending].max() <= end + dt.timedelta(days=30)
    assert not shipped[np.argmax(pending):].any()  # pending rows form the tail of the file
    # More shipments late in the range than early (growth trend), and weekends are quieter.
    weekday = np.array([d.weekday() for d in days[shipped]])
    assert (weekday >= 5).mean() < 2 / 7 * 0.6
    assert generate_ledger(tmp_path / "n.parquet", 5_000, pending_days=0)["pending"] == 0


# ------------------------------------------------------------------------------------- bad rows
def test_bad_rows_cycle_through_kinds_and_are_present(tmp_path):
    bad = 3 * len(BAD_KINDS) + 2
    stats = generate_ledger(tmp_path / "l.parquet", 10_000, seed=4, bad_rows=bad)
    assert sum(stats["bad_by_kind"].values()) == bad == stats["bad_rows"]
    assert stats["bad_by_kind"] == {k: 4 if i < 2 else 3 for i, k in enumerate(BAD_KINDS)}
    assert stats["expected_quarantined"] == bad + stats["bad_by_kind"]["conflicting_duplicate"]
    table = pq.read_table(tmp_path / "l.parquet")
    assert table.num_rows == 10_000 + bad
    rows = table.to_pylist()
    countries = set(load_countries()["alpha2"])
    skus = set(load_catalog()["sku"])
    missing = sum(r["consignee_name"] is None or r["sku"] is None or r["shipment_id"] is None for r in rows)
    unknown_country = sum(r["destination_country"] not in countries for r in rows)
    unknown_sku = sum(r["sku"] is not None and r["sku"] not in skus for r in rows)
    bad_quantity = sum(not (r["quantity"] or "").isdigit() or int(r["quantity"]) <= 0 for r in rows)
    assert (missing, unknown_country, unknown_sku, bad_quantity) == (4, 3, 3, 3)
    ids = [r["shipment_id"] for r in rows if r["shipment_id"]]
    assert len(ids) - len(set(ids)) == 3 + 3  # conflicting + exact duplicates


@pytest.mark.parametrize("name", ["l.parquet", "l.csv", "l.jsonl"])
def test_ingest_quarantines_exactly_the_bad_rows(tmp_path, name):
    bad = 4 * len(BAD_KINDS)
    stats = generate_ledger(tmp_path / name, 6_000, seed=8, bad_rows=bad, listed_names=LISTED)
    ledger = read_ledgers([tmp_path / name])
    kinds = stats["bad_by_kind"]
    assert ledger.counts["rows_read"] == 6_000 + bad
    assert ledger.counts["quarantined"] == stats["expected_quarantined"]
    by_reason = ledger.counts["by_reason"]
    assert sum(v for k, v in by_reason.items() if k.startswith("missing required field")) == kinds["missing_field"]
    assert {REASON_MISSING.format(f) for f in ("consignee_name", "sku", "shipment_id")} <= set(by_reason)
    assert by_reason[REASON_DATE] == kinds["bad_date"]
    assert by_reason[REASON_COUNTRY.format("destination_country")] == kinds["unknown_country"]
    assert by_reason[REASON_QUANTITY] == kinds["bad_quantity"]
    assert by_reason[REASON_SKU] == kinds["unknown_sku"]
    assert by_reason[REASON_CONFLICT] == 2 * kinds["conflicting_duplicate"]
    assert by_reason[REASON_EXACT_DUPLICATE] == kinds["exact_duplicate"]


# ----------------------------------------------------------------------------- realistic content
def test_listed_names_appear_with_fitting_destinations(tmp_path, clean):
    stats, table = clean
    assert stats["listed_consignees"] == min(len(LISTED), max(5, round(0.005 * stats["consignees"])))
    names = table.column("consignee_name").to_pylist()
    dests = table.column("destination_country").to_pylist()
    seen = {(n, d) for n, d in zip(names, dests) if n in LISTED}
    assert seen
    fits = {"Stealth Telecom FZC": "AE", "Huawei Cloud Thailand": "TH",
            "Shenzhen Smartcom Business Co., Ltd., Shenzhen, Guangdong": "CN",
            "Scientific-Production Enterprise “Svyaz”": "RU"}
    for name, dest in seen:
        assert fits.get(name, dest) == dest
    # Given (name, country) pairs fix the destination; every listed name is used once.
    pairs = [(f"Listed Party {i}", "IR") for i in range(8)]
    generate_ledger(tmp_path / "p.parquet", 60_000, seed=1, listed_names=pairs)
    other = pq.read_table(tmp_path / "p.parquet").to_pandas()
    listed = other[other["consignee_name"].str.startswith("Listed Party")]
    assert len(listed) > 0 and set(listed["destination_country"]) == {"IR"}
    assert not generate_ledger(tmp_path / "q.parquet", 1_000)["listed_consignees"]


def test_destination_sku_and_quantity_skew(clean):
    stats, table = clean
    frame = table.to_pandas()
    shares = frame["destination_country"].value_counts(normalize=True)
    assert shares.index[0] == "US" and shares.iloc[0] > 8 / 60  # uniform would be 1/60
    assert set(shares.index[:5]) <= {"US", "JP", "GB", "DE", "KR", "TW"}
    assert 40 <= len(shares) <= 75
    assert shares.get("CN", 0) < 0.02 and shares.get("IR", 0) < 0.005
    assert set(frame["destination_country"]) <= set(load_countries()["alpha2"])
    skus = frame["sku"].value_counts(normalize=True)
    assert set(skus.index) <= set(load_catalog()["sku"])
    major = {"NVIDIA-H100-SXM", "NVIDIA-H200", "NVIDIA-B200", "NVIDIA-GB200", "NVIDIA-A100", "NVIDIA-L40S",
             "AMD-MI300X"}
    assert skus[skus.index.isin(sorted(major))].sum() > 0.6
    assert skus.get("HUAWEI-ASCEND-910B", 0) + skus.get("HUAWEI-ASCEND-910C", 0) < 0.005
    quantity = frame["quantity"].to_numpy()
    assert quantity.min() >= 1 and quantity.max() <= 4096
    assert (quantity % 8 == 0).mean() > 0.75 and np.median(quantity) < np.mean(quantity)
    assert 0.13 < frame["license_id"].notna().mean() < 0.17
    assert 0.02 < frame["veu_id"].notna().mean() < 0.04
    assert frame["license_id"].dropna().str.fullmatch(r"LIC-\d{2}-\d{7}").all()
    assert frame["exporter"].nunique() <= 12


def test_consignee_pool(clean):
    stats, table = clean
    frame = table.to_pandas()
    assert stats["consignees"] >= 150  # 30,000 // 200
    per_name = frame.groupby("consignee_name")
    assert (per_name["destination_country"].nunique() == 1).all()  # each consignee has one destination
    assert (per_name["consignee_id"].nunique(dropna=False) == 1).all()
    with_id = per_name["consignee_id"].first().notna().mean()
    assert 0.5 < with_id < 0.9
    assert frame["consignee_id"].dropna().str.fullmatch(r"C-\d{7}").all()
    hq = frame["consignee_hq_country"]
    assert (hq == frame["destination_country"]).mean() > 0.6 and hq.isna().any() and (hq == "CN").any()
    # Skewed buyers: the largest consignee takes far more than an even share.
    top = frame["consignee_name"].value_counts(normalize=True).iloc[0]
    assert top > 10 / stats["consignees"]


# ------------------------------------------------------------------- the next night of a ledger
@pytest.mark.parametrize("history_name,night_name", [("h.parquet", "n.csv"), ("h.csv", "n.jsonl"),
                                                     ("h.jsonl", "n.parquet")])
def test_next_night_is_accepted_whole_after_the_history(tmp_path, history_name, night_name):
    from pipeline.generate import generate_next
    from pipeline.lake import ingest

    history = tmp_path / history_name
    generate_ledger(history, 5_000, seed=4, bad_rows=14, listed_names=LISTED)  # bad ids count too
    night = tmp_path / night_name
    stats = generate_next(night, history, 800, seed=1)
    lake = tmp_path / "lake"
    ingest([history], lake)
    report = ingest([night], lake)
    assert report.counts["rows_read"] == 800
    assert report.counts["quarantined"] == 0 and report.counts["accepted"] == 800

    before = read_ledgers([history]).rows
    after = read_ledgers([night]).rows
    last = pc.max(before.column("ship_date")).as_py()
    assert stats["after_last_date"] == last.isoformat()
    assert pc.min(after.column("ship_date")).as_py() > last
    assert stats["first_date"] == pc.min(after.column("ship_date")).as_py().isoformat()
    ids = after.column("shipment_id").to_pylist()
    assert stats["first_id"] == min(ids) == "SHP-000000005000" and all(ID_PATTERN.match(i) for i in ids)
    # Mostly pending, a few shipped (the day after), all from the history's consignees.
    statuses = after.column("status").cast(pa.string()).to_pylist()
    assert statuses.count("shipped") == stats["shipped"] == 80 and statuses.count("pending") == 720
    known = set(before.column("consignee_name").cast(pa.string()).to_pylist())
    names = after.column("consignee_name").cast(pa.string()).to_pylist()
    assert set(names) <= known and len(set(names)) > 20

    # The night after that continues the numbering again.
    again = generate_next(tmp_path / "n2.parquet", night, 100, seed=2)
    assert again["first_id"] == "SHP-000000005800" and again["first_date"] > stats["last_date"]
    assert ingest([tmp_path / "n2.parquet"], lake).counts["accepted"] == 100


def test_next_night_is_deterministic_and_keeps_consignee_addresses(tmp_path):
    from pipeline.generate import generate_next

    generate_ledger(tmp_path / "h.parquet", 3_000, seed=6)
    generate_next(tmp_path / "a.csv", tmp_path / "h.parquet", 500, seed=3)
    generate_next(tmp_path / "b.csv", tmp_path / "h.parquet", 500, seed=3)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    history, night = read_any(tmp_path / "h.parquet"), read_any(tmp_path / "a.csv")
    address = dict(zip(text(history, "consignee_name"), text(history, "consignee_address")))
    assert all(address[n] == a for n, a in zip(text(night, "consignee_name"), text(night, "consignee_address")))


def test_next_night_of_a_missing_or_broken_ledger_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app
    from pipeline.generate import generate_next
    from pipeline.ingest import LedgerReadError

    with pytest.raises(LedgerReadError, match="no such ledger file"):
        generate_next(tmp_path / "n.csv", tmp_path / "missing.parquet", 10)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    runner = CliRunner()
    for after, message in (("missing.parquet", "no such ledger file"), ("broken.parquet", "cannot read as parquet")):
        result = runner.invoke(app, ["generate", str(tmp_path / "n.csv"), "--after", str(tmp_path / after),
                                     "-n", "10", "-q"])
        text = " ".join(result.output.split())  # the console wraps long paths
        assert result.exit_code == 1 and "error:" in text and message in text
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert not (tmp_path / "n.csv").exists()

    generate_ledger(tmp_path / "h.jsonl", 1_000, seed=1)
    result = runner.invoke(app, ["generate", str(tmp_path / "n.csv"), "--after", str(tmp_path / "h.jsonl"),
                                 "-n", "50"])
    assert result.exit_code == 0 and "ids from SHP-000000001000" in result.output
    quiet = runner.invoke(app, ["generate", str(tmp_path / "q.csv"), "--after", str(tmp_path / "h.jsonl"), "-n", "5",
                                "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""  # -q: nothing printed on success
    assert read_ledgers([tmp_path / "n.csv"]).counts["accepted"] == 50
