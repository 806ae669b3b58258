"""Listing dates (issue 17): each entry's ``start_date`` and ``license_requirement``, through the
party results, the run's party cache and ``parties.parquet``."""
from __future__ import annotations

import csv
import gzip

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.parties import (
    MATCH_COLUMNS,
    RESULT_COLUMNS,
    PartyScreen,
    load_screening_list,
    write_party_matches,
)
from pipeline.parties.lists import listing_dates
from pipeline.reference import CSL_PATH, DATA_DIR

EL = "Entity List (EL) - Bureau of Industry and Security"
SDN = "Specially Designated Nationals (SDN) - Treasury Department"
FULL = ["_id", "source", "name", "alt_names", "addresses", "start_date", "license_requirement", "remarks"]
RULE = "For all items subject to the EAR.  (See §744.11 of the EAR)   "
LISTED = [  # _id, source, name, alt_names, start_date, license_requirement
    ("a1", EL, "Acme Widgets Co., Ltd.", "Acme HK; Acme Trading", "2020-05-22", RULE),
    ("b2", EL, "Bolt Compute Ltd", "", "", "For all items subject to the EAR."),
    ("c3", EL, "Cobalt Systems", "", "0097-06-30", ""),
    ("d4", EL, "Delta Foundry", "", "2021-02-30", ""),
    ("e5", SDN, "Echo Holdings", "", " 2019-11-01 ", ""),
]


def write_list(path, columns=FULL, rows=LISTED, gzipped=False):
    """A CSL-like CSV with ``columns`` (those of ``FULL`` it names)."""
    records = [dict(zip(["_id", "source", "name", "alt_names", "start_date", "license_requirement"], row),
                    addresses="1 Road, Kowloon, HK", remarks="") for row in rows]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([[record[column] for column in columns] for record in records])
    if gzipped:
        path.write_bytes(gzip.compress(path.read_bytes()))
    return path


def by_id(entries: pd.DataFrame, column: str) -> dict:
    values = entries.drop_duplicates("entry_id").set_index("entry_id")[column]
    return {key: (None if pd.isna(value) else value) for key, value in values.items()}


# --- the list ------------------------------------------------------------------------------------

@pytest.mark.parametrize("gzipped", [False, True])
def test_entries_carry_valid_dates_and_the_license_requirement(tmp_path, gzipped):
    entries = load_screening_list(write_list(tmp_path / "list.csv", gzipped=gzipped))
    assert by_id(entries, "listed_on") == {"a1": "2020-05-22", "b2": None, "c3": None, "d4": None,
                                           "e5": "2019-11-01"}
    assert by_id(entries, "license_requirement") == {
        "a1": "For all items subject to the EAR. (See §744.11 of the EAR)",
        "b2": "For all items subject to the EAR.", "c3": None, "d4": None, "e5": None}
    aliases = entries[entries["entry_id"] == "a1"]
    assert len(aliases) == 3 and (aliases["listed_on"] == "2020-05-22").all()  # every alias of the record
    assert entries["listed_on"].dtype == "str" and entries["license_requirement"].dtype == "str"
    assert entries.attrs["blank_start_dates"] == 1
    assert entries.attrs["bad_start_dates"] == 2  # year 97, 30 February


@pytest.mark.parametrize("absent", [["start_date"], ["license_requirement"], ["start_date", "license_requirement"]])
def test_a_list_without_the_columns_reads_them_as_missing(tmp_path, absent):
    columns = [column for column in FULL if column not in absent]
    entries = load_screening_list(write_list(tmp_path / "list.csv", columns=columns))
    assert entries["entry_id"].nunique() == len(LISTED)
    for column in absent:
        name = "listed_on" if column == "start_date" else column
        assert entries[name].isna().all() and entries[name].dtype == "str"
    if "start_date" in absent:
        assert entries.attrs["bad_start_dates"] == 0
        assert entries.attrs["blank_start_dates"] == len(LISTED)
    else:
        assert by_id(entries, "listed_on")["a1"] == "2020-05-22"


def test_a_header_only_list_has_the_columns(tmp_path):
    entries = load_screening_list(write_list(tmp_path / "list.csv", rows=[]))
    assert len(entries) == 0 and entries["listed_on"].dtype == "str"
    assert entries.attrs["bad_start_dates"] == entries.attrs["blank_start_dates"] == 0


def test_listing_dates_keep_only_iso_dates_in_range():
    texts = ["1900-01-01", "2199-12-31", "1899-12-31", "2200-01-01", "0017-05-26", "2020-5-22",
             "05/22/2020", "2020-05-22T00:00:00", "٢٠٢٠-٠٥-٢٢", "", "  "]
    dates, blank, bad = listing_dates(texts)
    assert dates.tolist()[:2] == ["1900-01-01", "2199-12-31"]
    assert dates.iloc[2:].isna().all()
    assert (blank, bad) == (2, 7)


@pytest.mark.parametrize("path, bad, blank, el_blank", [
    (CSL_PATH, 3, 11_637, 174),  # SOURCES.md: 174 blank EL dates, 3 malformed (0097-06-30 x2, 0017-05-26)
    (DATA_DIR / "csl" / "csl.csv", 0, 2_688, 173),
])
def test_packaged_lists_count_their_unusable_dates(path, bad, blank, el_blank):
    entries = load_screening_list(path)
    assert entries.attrs["bad_start_dates"] == bad
    assert entries.attrs["blank_start_dates"] == blank
    records = entries.drop_duplicates("entry_id")
    el = records[records["list_code"] == "EL"]
    assert el["listed_on"].isna().sum() == el_blank + bad  # all malformed dates are EL ones
    dated = records["listed_on"].dropna()
    assert dated.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert "1981-01-01" < dated.min() and dated.max() <= "2023-11-16"
    assert records["license_requirement"].notna().sum() > 900
    assert not records["license_requirement"].dropna().str.contains(r"^\s|\s$|\s\s", regex=True).any()


# --- screen results and parties.parquet -----------------------------------------------------------

@pytest.fixture
def small_screen(tmp_path) -> PartyScreen:
    return PartyScreen(load_screening_list(write_list(tmp_path / "list.csv")))


def test_a_screen_result_carries_the_reported_entrys_date_and_requirement(small_screen):
    result = small_screen.screen(["ACME TRADING", "Bolt Compute Limited", "Cobalt Systems", "Nobody At All"],
                                 ["EL", "SDN"], [])
    assert list(result.columns) == RESULT_COLUMNS
    assert result["party_entry_id"].tolist()[:3] == ["a1", "b2", "c3"]
    assert result["party_listed_on"].iloc[0] == "2020-05-22"
    assert result["party_license_requirement"].iloc[0] == "For all items subject to the EAR. (See §744.11 of the EAR)"
    assert result["party_license_requirement"].iloc[1] == "For all items subject to the EAR."
    assert result["party_listed_on"].iloc[1:].isna().all()  # blank, malformed, no hit
    assert result["party_license_requirement"].iloc[2:].isna().all()
    assert result["party_listed_on"].dtype == "str" and result["party_license_requirement"].dtype == "str"


def test_the_real_list_reports_the_listing_date_of_an_entity_list_hit():
    screen = PartyScreen.from_path(CSL_PATH)
    result = screen.screen(["Huawei Marine Networks Co., Ltd"], ["EL"], [])
    entry = screen.entries[screen.entries["entry_id"] == result["party_entry_id"].iloc[0]].iloc[0]
    assert result["party_listed_on"].iloc[0] == entry["listed_on"] and entry["listed_on"] >= "2019-01-01"
    assert "EAR" in result["party_license_requirement"].iloc[0]


@pytest.mark.parametrize("names", [[], ["Nobody At All"]], ids=["no names", "no hit"])
def test_results_without_hits_or_entries_have_the_columns(small_screen, names):
    for screen in (small_screen, PartyScreen(small_screen.entries.iloc[:0])):
        result = screen.screen(names, ["EL"], [])
        assert list(result.columns) == RESULT_COLUMNS and len(result) == len(names)
        assert result["party_listed_on"].dtype == "str" and result["party_listed_on"].isna().all()


def test_entries_built_in_memory_without_the_columns_still_screen():
    entries = pd.DataFrame({"entry_id": ["1"], "list_code": ["EL"], "listed_name": ["Acme Ltd."],
                            "alias": ["Acme Ltd."], "normalized": ["acme"], "countries": ["CN"]})
    result = PartyScreen(entries).screen(["ACME LIMITED"], ["EL"], [])
    assert result["outcome"].iloc[0] == "block" and pd.isna(result["party_listed_on"].iloc[0])
    assert result.attrs["matches"].frame["listed_on"].isna().all()


def test_parties_parquet_carries_the_date_and_requirement_of_each_match(small_screen, tmp_path):
    result = small_screen.screen(["Acme Trading", "Bolt Compute Limited", "Nobody At All"], ["EL"], [])
    write_party_matches(result, tmp_path / "parties.parquet")
    table = pd.read_parquet(tmp_path / "parties.parquet")
    assert list(table.columns[:len(MATCH_COLUMNS)]) == MATCH_COLUMNS
    acme = table[table["entry_id"] == "a1"].iloc[0]
    assert (acme["listed_on"], acme["license_requirement"]) == (
        "2020-05-22", "For all items subject to the EAR. (See §744.11 of the EAR)")
    bolt = table[table["entry_id"] == "b2"].iloc[0]
    assert pd.isna(bolt["listed_on"]) and bolt["license_requirement"] == "For all items subject to the EAR."
    write_party_matches(None, tmp_path / "empty.parquet")
    assert pq.read_schema(tmp_path / "empty.parquet").types == pq.read_schema(tmp_path / "parties.parquet").types


# --- the run's party cache -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def policy():
    from pipeline.policy import load_policy

    return load_policy("post-rescission-2025")


NAMES = ["Huawei Marine Networks Co., Ltd", "Acme Compute", "Cobalt Systems Nowhere"]


class Counting:
    """A screen that counts the names it screens."""

    def __init__(self, screen: PartyScreen):
        self.screen, self.names = screen, []

    def screen_policy(self, names, policy, **options):
        self.names += list(names)
        return self.screen.screen_policy(names, policy, **options)


def test_the_cache_keeps_the_columns_through_a_checkpoint_round_trip(policy, tmp_path):
    from pipeline.run.cache import PartyResultCache

    screen = PartyScreen.from_path(CSL_PATH)
    cache = PartyResultCache(CSL_PATH)
    first = cache.screened(screen, NAMES, policy)
    assert first["party_listed_on"].notna().iloc[0] and first["party_listed_on"].iloc[1:].isna().all()
    cache.known(policy).to_parquet(tmp_path / "names.parquet", index=False)  # as a checkpoint stores it
    later = PartyResultCache(CSL_PATH)
    later.add(policy, pd.read_parquet(tmp_path / "names.parquet"))
    counting = Counting(screen)
    again = later.screened(counting, NAMES[::-1], policy)
    assert counting.names == []  # nothing screened again
    pd.testing.assert_frame_equal(again.iloc[::-1].reset_index(drop=True), first)
    assert again["party_listed_on"].dtype == "str" and again["party_license_requirement"].dtype == "str"


def test_cached_results_of_an_older_version_are_screened_again(policy, tmp_path):
    from pipeline.run.cache import PartyResultCache

    screen = PartyScreen.from_path(CSL_PATH)
    old = PartyResultCache(CSL_PATH).screened(screen, NAMES, policy)
    old = old.drop(columns=["party_listed_on", "party_license_requirement"])
    old.to_parquet(tmp_path / "names.parquet", index=False)
    cache = PartyResultCache(CSL_PATH)
    cache.add(policy, pd.read_parquet(tmp_path / "names.parquet"))
    assert cache.known(policy) is None  # not kept: "missing" would read as "listed always"
    counting = Counting(screen)
    result = cache.screened(counting, NAMES, policy)
    assert counting.names == NAMES
    assert result["party_listed_on"].iloc[0] == screen.screen_policy(NAMES[:1], policy)["party_listed_on"].iloc[0]


def test_all_missing_columns_read_back_untyped_are_retyped(policy):
    from pipeline.run.cache import PartyResultCache

    screen = PartyScreen.from_path(CSL_PATH)
    found = PartyResultCache(CSL_PATH).screened(screen, ["Acme Compute"], policy)
    untyped = found.assign(party_listed_on=pd.Series([None], dtype=object),
                           party_license_requirement=pd.Series([float("nan")]))
    cache = PartyResultCache(CSL_PATH)
    cache.add(policy, untyped)
    assert cache.known(policy)["party_listed_on"].dtype == "str"
    assert cache.known(policy)["party_license_requirement"].dtype == "str"
    assert cache.known(policy)[["party_listed_on", "party_license_requirement"]].isna().all(axis=None)


# --- the date a name's outcome holds from: the earliest of every entry that gives it ---------------

SAME_NAME = [("a1", EL, "Same Name Trading", "", "2024-01-01", RULE),
             ("s1", SDN, "Same Name Trading", "", "2023-01-01", ""),
             ("a2", EL, "Only Dated Co", "", "2022-05-05", RULE)]


def test_a_name_on_two_lists_counts_from_the_earliest_listing(tmp_path):
    screen = PartyScreen(load_screening_list(write_list(tmp_path / "list.csv", rows=SAME_NAME)))
    result = screen.screen(["Same Name Trading", "Only Dated Co"], ["EL", "SDN"], [])
    assert result["outcome"].tolist() == ["block", "block"]
    assert result["party_listed_on"].tolist() == ["2023-01-01", "2022-05-05"]
    assert result["party_list"].iloc[0] == "EL"  # the reported entry stays
    assert result["party_license_requirement"].iloc[0] == RULE.split("  ")[0] + " (See §744.11 of the EAR)"
    # only entries that give the reported outcome count: an SDN review hit does not date a block
    blocked = screen.screen(["Same Name Trading"], ["EL"], ["SDN"])
    assert (blocked["outcome"].iloc[0], blocked["party_listed_on"].iloc[0]) == ("block", "2024-01-01")
    reviewed = screen.screen(["Same Name Trading"], [], ["EL", "SDN"])
    assert (reviewed["outcome"].iloc[0], reviewed["party_listed_on"].iloc[0]) == ("review", "2023-01-01")
    assert result["party_listed_on"].dtype == "str"
    # parties.parquet keeps each match's own date
    write_party_matches(result, tmp_path / "parties.parquet")
    table = pd.read_parquet(tmp_path / "parties.parquet")
    assert dict(zip(table["entry_id"], table["listed_on"])) == {"a1": "2024-01-01", "s1": "2023-01-01",
                                                                "a2": "2022-05-05"}


def test_an_undated_entry_giving_the_same_outcome_counts_always(tmp_path):
    rows = SAME_NAME[:1] + [("s1", SDN, "Same Name Trading", "", "", "")]
    screen = PartyScreen(load_screening_list(write_list(tmp_path / "list.csv", rows=rows)))
    assert pd.isna(screen.screen(["Same Name Trading"], ["EL", "SDN"], [])["party_listed_on"].iloc[0])
    assert screen.screen(["Same Name Trading"], ["EL"], ["SDN"])["party_listed_on"].iloc[0] == "2024-01-01"


TIED = {"27th NTS": "RU", "Agat Electromechanical Plant OJSC": "BY", "Abdul Majid Saidi": "AF"}
"""Names on a dated list (EL/DPL) and, as well, on an undated deny list (SDN/DTC)."""


def test_names_also_on_an_undated_deny_list_count_always():
    from pipeline.policy import load_policy

    result = PartyScreen.from_path().screen_policy(list(TIED), load_policy("in-force"))
    assert result["outcome"].tolist() == ["block"] * 3
    assert result["party_list"].tolist() == ["EL", "EL", "DPL"]  # reported entries unchanged
    assert result["party_listed_on"].isna().all()


def test_rows_shipped_before_one_of_the_listings_are_denied(tmp_path):
    from conftest import shipment, write_ledger
    from pipeline.ingest import read_ledgers
    from pipeline.policy import load_policy
    from pipeline.screen import screen_ledger

    rows = [shipment(f"r{i}{date}", date, consignee_name=name, destination_country=country)
            for i, (name, country) in enumerate(TIED.items())
            for date in ("2019-06-01", "2024-06-01")]
    run = screen_ledger(read_ledgers([write_ledger(rows, tmp_path / "l.csv")]), load_policy("in-force"))
    decisions = run.decisions.column("decision").cast("string").to_pylist()
    reasons = run.decisions.column("reasons").cast("string").to_pylist()
    assert decisions == ["DENIED"] * len(rows)
    assert not any("PARTY_BEFORE_LISTING" in (reason or "") for reason in reasons)
