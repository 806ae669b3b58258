"""Restricted-party stage: CSL loading, name normalization and exact screening."""
from __future__ import annotations

import gzip
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.parties import (
    LIST_CODES,
    RESULT_COLUMNS,
    PartyScreen,
    ScreeningListError,
    address_countries,
    list_code,
    load_screening_list,
    normalize_name,
)
from pipeline.reference import CSL_PATH, DATA_DIR

CSL_2023 = DATA_DIR / "csl" / "csl.csv"
DENY = ["EL", "DPL", "SDN", "MEU", "DTC", "ISN", "FSE"]
REVIEW = ["UVL", "SSI", "CMIC", "NS-MBS", "CAP", "PLC"]
HEADER = ("_id,source,entity_number,type,programs,name,title,addresses,federal_register_notice,"
          "start_date,end_date,standard_order,license_requirement,license_policy,call_sign,"
          "vessel_type,gross_tonnage,gross_registered_tonnage,vessel_flag,vessel_owner,remarks,"
          "source_list_url,alt_names,citizenships,dates_of_birth,nationalities,places_of_birth,"
          "source_information_url,ids")
EL_SOURCE = "Entity List (EL) - Bureau of Industry and Security"


@pytest.fixture(scope="module")
def screen() -> PartyScreen:
    return PartyScreen.from_path(CSL_PATH)


@pytest.fixture(scope="module")
def entries(screen) -> pd.DataFrame:
    return screen.entries


def csl_row(_id: str, name: str, alt_names: str = "", addresses: str = "", source: str = EL_SOURCE) -> str:
    fields = dict.fromkeys(HEADER.split(","), "")
    fields.update(_id=_id, source=source, name=name, alt_names=alt_names, addresses=addresses)
    return ",".join('"' + value.replace('"', '""') + '"' for value in fields.values())


# --- list codes ----------------------------------------------------------------------------------

def test_list_codes_cover_the_thirteen_lists():
    assert sorted(LIST_CODES.values()) == sorted(
        ["EL", "SDN", "DPL", "UVL", "MEU", "DTC", "ISN", "SSI", "PLC", "CMIC", "CAP", "NS-MBS", "FSE"])
    for source, code in LIST_CODES.items():
        assert list_code(source) == code


def test_list_code_from_parentheses_and_unknown_source():
    assert list_code("Entity List (EL) - Bureau of Industry and Security, renamed") == "EL"
    with pytest.raises(ScreeningListError, match="unknown screening-list source"):
        list_code("Some New List (SNL) - Department of Nothing")


# --- loading the real files ----------------------------------------------------------------------

def test_2022_file_record_counts(entries):
    assert entries.attrs["records"] == 14_160
    assert entries.attrs["skipped"] == 0
    assert entries.attrs["duplicate_headers"] == 0
    assert list(entries.columns) == ["entry_id", "list_code", "listed_name", "alias", "normalized",
                                     "countries", "listed_on", "license_requirement"]
    per_list = entries.groupby("list_code")["entry_id"].nunique()
    assert per_list.to_dict() == {
        "SDN": 10_026, "EL": 2_001, "DTC": 727, "DPL": 462, "SSI": 290, "UVL": 201, "ISN": 163,
        "PLC": 78, "MEU": 71, "CMIC": 68, "CAP": 53, "NS-MBS": 17, "FSE": 3}
    assert entries["entry_id"].nunique() == 14_160
    assert (entries["normalized"] != "").all()
    # Each record maps to one list.
    assert (entries.groupby("entry_id")["list_code"].nunique() == 1).all()


def test_repeated_ids_are_made_unique(entries):
    ids = entries["entry_id"].drop_duplicates()
    repeats = ids[ids.str.contains("#", regex=False)]
    assert len(repeats) == 112  # SOURCES.md: 71 repeated _id values give 112 extra rows
    assert repeats.str.extract(r"#(\d+)$")[0].astype(int).min() == 2
    base = repeats.str.replace(r"#\d+$", "", regex=True)
    assert base.isin(ids).all()
    assert set(entries.loc[entries["entry_id"].isin(repeats), "list_code"]) <= {
        "SDN", "SSI", "CAP", "NS-MBS", "FSE"}


def test_2023_file_skips_duplicate_header_and_counts_truncated_record():
    frame = load_screening_list(CSL_2023)
    assert frame.attrs["records"] == 4_226
    assert frame.attrs["skipped"] == 1
    assert frame.attrs["duplicate_headers"] == 1
    assert "_id" not in set(frame["entry_id"])
    assert frame["entry_id"].nunique() == 4_226
    assert frame.loc[frame["list_code"] == "EL", "entry_id"].nunique() == 919


def test_aliases_are_split_and_leading_and_dropped(entries):
    record = entries[entries["alias"] == "140 Repair Plant JSC"]["entry_id"].iloc[0]
    aliases = set(entries.loc[entries["entry_id"] == record, "alias"])
    assert {"Open Joint Stock Company 140 Repair Plant", "JSC 140 Repair Plant"} <= aliases
    assert not any(alias.lower().startswith("and ") for alias in entries["alias"])
    # Only primary names are left whole (two carry an "(a.k.a. x; y)" list).
    split_alias = entries["alias"].str.contains("; ", regex=False)
    assert (entries.loc[split_alias, "alias"] == entries.loc[split_alias, "listed_name"]).all()
    assert split_alias.sum() == 2
    el = entries[entries["list_code"] == "EL"]
    with_alias = el.groupby("entry_id")["alias"].size()
    assert (with_alias > 1).sum() >= 900  # 926 EL records have alt names


def test_affiliated_entity_names_are_split(entries):
    marine = entries[entries["alias"] == "Huawei Marine Networks Co., Ltd"]
    assert len(marine) == 1
    record = entries[entries["entry_id"] == marine["entry_id"].iloc[0]]
    assert set(record["listed_name"]) == {"Huawei Technologies Co., Ltd. (Huawei)"}
    assert {"Huawei Technologies Co., Ltd. (Huawei)", "Huawei Marine Networks Co., Ltd",
            "Huawei Marine", "HMN Technologies"} <= set(record["alias"])
    assert not entries["alias"].str.contains("Affiliated Entity", regex=False).any()
    assert not entries["listed_name"].str.contains("Affiliated Entity", regex=False).any()
    # A real name that merely starts with "Affiliated" is untouched.
    assert "Affiliated Supply and Consultancy Services" in set(entries["listed_name"])


def test_multiline_names_are_collapsed(entries):
    assert "Gaobeidian Kaituo Precise Instrument Co. Ltd" in set(entries["listed_name"])
    assert not entries["alias"].str.contains("\n", regex=False).any()


def test_countries_from_addresses(entries):
    el = entries[entries["list_code"] == "EL"].drop_duplicates("entry_id")
    assert el["countries"].str.fullmatch(r"([A-Z]{2}(;[A-Z]{2})*)?").all()
    assert (el["countries"].str.split(";").str[0] == "CN").sum() > 434  # 434 "CN" + 34 "China"
    assert address_countries("Minsk, BY; Borisov, 222512, BY; Shenzhen, China; Tehran") == "BY;CN"
    assert address_countries("") == ""


# --- loading synthetic files ---------------------------------------------------------------------

def test_gzip_multiline_truncated_and_unknown_source(tmp_path):
    lines = [HEADER, HEADER,
             csl_row("a1", "Acme\nWidgets Co., Ltd.", "Acme HK; and Acme Trading", "1 Road, Kowloon, HK"),
             csl_row("7", "Foo Bar", source="Specially Designated Nationals (SDN) - Treasury Department"),
             csl_row("7", "FOO BAR LLC", source="Sectoral Sanctions Identifications List (SSI) - Treasury Department"),
             csl_row("a2", "???"),
             '"b1","Entity List (EL) - Bureau of Industry and Security","","","","Cut Off Ltd","","2 St']
    text = "\n".join(lines)
    path = tmp_path / "list.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    frame = load_screening_list(path)
    assert frame.attrs == {"records": 4, "skipped": 1, "duplicate_headers": 1, "blank_start_dates": 4,
                           "bad_start_dates": 0, "path": str(path)}
    assert frame["entry_id"].tolist() == ["a1", "a1", "a1", "7", "7#2"]
    assert frame["alias"].tolist() == ["Acme Widgets Co., Ltd", "Acme HK", "Acme Trading", "Foo Bar",
                                       "FOO BAR LLC"]
    assert frame["listed_name"].iloc[0] == "Acme Widgets Co., Ltd."
    assert frame["countries"].tolist() == ["HK", "HK", "HK", "", ""]
    assert frame["list_code"].tolist() == ["EL", "EL", "EL", "SDN", "SSI"]

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\n" + csl_row("x", "Name", source="New List (NEW) - Somewhere") + "\n")
    with pytest.raises(ScreeningListError, match="unknown screening-list source"):
        load_screening_list(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("_id,name\n1,x\n")
    with pytest.raises(ScreeningListError, match="missing CSL columns"):
        load_screening_list(missing)


# --- normalization -------------------------------------------------------------------------------

@pytest.mark.parametrize("left, right", [
    ("Huawei Technologies Co., Ltd.", "HUAWEI TECHNOLOGIES CO LTD"),
    ("Huawei Technologies Co., Ltd.", "Huawei Technologies"),
    ("huawei   technologies\tcompany limited", "Huawei Technologies"),
    ("Donetsk People?s Republic", "Donetsk People's Republic"),
    ("Donetsk People?s Republic", "Donetsk People’s Republic"),
    ("DONETSK PEOPLE?S REPUBLIC", "Donetsk Peoples Republic"),
    ("Xi?an Research Institute", "Xi'an Research Institute"),
    ("Xi\x92an Research Institute", "Xian Research Institute"),
    ("AO ?Institute Giprostroymost?Saint-Petersburg?", "AO «Institute Giprostroymost – Saint Petersburg»"),
    ("Société Générale S.A.", "SOCIETE GENERALE SA"),
    ("Müller GmbH", "MULLER"),
    ("Straße AG", "STRASSE"),
    ("Ｆｕｌｌｗｉｄｔｈ Ｃｏ．", "fullwidth"),
    ("Smith & Sons", "smith and sons"),
    ("Smith & Co.", "Smith"),
    ("Acme S.A. de C.V.", "ACME SA DE CV"),
    ("Acme Pvt. Ltd.", "Acme Private Limited"),
    ("Transneft-Ural, AO", "TRANSNEFT URAL"),
    ("华为技术有限公司", "华为技术 有限公司"),
    ("华为技术股份有限公司", "华为技术"),
    ("Soft\u00adhyphen Inc", "softhyphen"),
])
def test_normalization_equal(left, right):
    assert normalize_name(left) == normalize_name(right)


@pytest.mark.parametrize("name, expected", [
    ("Huawei Technologies Co., Ltd.", "huawei technologies"),
    ("  Dahua   Technology  ", "dahua technology"),
    ("Limited", "limited"),  # never stripped to nothing
    ("Co Ltd", "co"),
    ("OOO DSK", "ooo dsk"),  # legal forms are dropped at the end only
    ("Hotel Asia", "hotel asia"),
    ("", ""),
    (None, ""),
    ("?!.,", ""),
])
def test_normalization_values(name, expected):
    assert normalize_name(name) == expected


def test_normalization_keeps_distinct_names_apart():
    assert normalize_name("Huawei Technologies") != normalize_name("Huawei Technology")
    assert normalize_name("OOO DSK") != normalize_name("DSK LLC")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_normalization_is_idempotent_and_clean(name):
    once = normalize_name(name)
    assert normalize_name(once) == once
    assert once == once.strip() and "  " not in once


# --- screening -----------------------------------------------------------------------------------

def test_from_path_is_cached(screen):
    assert PartyScreen.from_path(CSL_PATH) is screen
    assert PartyScreen.from_path(str(CSL_PATH)) is screen


def test_screen_block_review_none_and_order(screen):
    names = ["Totally Made Up Widgets Pty", "huawei technologies co., ltd", "HUAWEI MARINE NETWORKS",
             "Able Supply Chain Ltd.", "Dahua Technology Co., Ltd.", "Donetsk People's Republic"]
    result = screen.screen(names, DENY, REVIEW)
    assert list(result.columns) == RESULT_COLUMNS
    assert result["name"].tolist() == names
    assert result["outcome"].tolist()[1:] == ["block", "block", "review", "block", "block"]
    assert pd.isna(result["outcome"].iloc[0]) and pd.isna(result["party_match"].iloc[0])
    assert math.isnan(result["party_score"].iloc[0])
    assert result["party_score"].iloc[1:].tolist() == [1.0] * 5
    assert result["party_list"].tolist()[1:] == ["EL", "EL", "UVL", "EL", "EL"]
    assert result["party_match"].iloc[1] == "Huawei Technologies Co., Ltd. (Huawei)"
    assert result["party_alias"].iloc[2] == "Huawei Marine Networks Co., Ltd"
    assert result["party_match"].iloc[5] == "Donetsk People?s Republic"
    assert result["normalized"].iloc[4] == "dahua technology"
    reversed_result = screen.screen(names[::-1], DENY, REVIEW)
    assert reversed_result["party_entry_id"].tolist()[::-1] == result["party_entry_id"].tolist()


def test_screen_prefers_deny_then_review_then_list_code(screen):
    # SMIC is on the Entity List and on the CMIC list.
    name = ["Semiconductor Manufacturing International Corp."]
    both = screen.screen(name, ["EL"], ["CMIC"])
    assert (both["party_list"].iloc[0], both["outcome"].iloc[0]) == ("EL", "block")
    review_only = screen.screen(name, [], ["CMIC"])
    assert (review_only["party_list"].iloc[0], review_only["outcome"].iloc[0]) == ("CMIC", "review")
    neither = screen.screen(name, [], [])
    assert neither["party_list"].iloc[0] == "CMIC"  # first by list code; outcome stays empty
    assert pd.isna(neither["outcome"].iloc[0])
    assert neither["party_score"].iloc[0] == 1.0
    # AECC South Industry is on MEU (deny) and UVL (review): deny wins.
    aecc = screen.screen(["AECC South Industry Co., Ltd."], DENY, REVIEW)
    assert (aecc["party_list"].iloc[0], aecc["outcome"].iloc[0]) == ("MEU", "block")


def test_screen_ties_break_deterministically(screen):
    # "Huawei Technologies Co., Ltd." is the parent name of many EL records.
    result = screen.screen(["Huawei Technologies"], DENY, REVIEW)
    hits = screen.entries[screen.entries["normalized"] == "huawei technologies"]
    assert hits["entry_id"].nunique() > 10
    assert result["party_entry_id"].iloc[0] == hits.loc[hits["list_code"] == "EL", "entry_id"].min()


def test_screen_empty_and_unknown_codes(screen):
    empty = screen.screen([], DENY, REVIEW)
    assert list(empty.columns) == RESULT_COLUMNS and len(empty) == 0
    blank = screen.screen(["", "---"], DENY, REVIEW)
    assert blank["party_match"].isna().all()
    with pytest.raises(ScreeningListError, match="unknown list codes"):
        screen.screen(["x"], ["EL", "NOPE"], [])


def test_the_destination_moves_a_fuzzy_score_in_screening(tmp_path):
    """The same name shipped to the listed party's country scores higher than shipped elsewhere."""
    from conftest import shipment, write_ledger
    from pipeline.policy import load_policy
    from pipeline.screen import screen_ledgers

    name = "Huawie Technologies"  # a fuzzy hit on Huawei entries listed in CN
    path = write_ledger([shipment("S1", consignee_name=name, destination_country="CN"),
                         shipment("S2", consignee_name=name, destination_country="DE")], tmp_path / "l.parquet")
    policy = load_policy("post-rescission-2025")
    rows = screen_ledgers([path], policy).decisions.to_pylist()
    bonus, penalty = policy.get("parties.country_bonus"), policy.get("parties.country_penalty")
    assert rows[0]["party_score"] - rows[1]["party_score"] == pytest.approx(bonus + penalty)
    flat = screen_ledgers([path], load_policy("post-rescission-2025", ["parties.country_bonus=0",
                                                                     "parties.country_penalty=0"])).decisions
    assert len(set(flat.column("party_score").to_pylist())) == 1


# --- W4 (hostile test): lists as long as the packaged one whose names are blank or repeated ----------
def _packaged_rows():
    import csv

    with gzip.open(CSL_PATH, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


def _write_rows(path, header, rows):
    import csv

    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_list_check_names_match_the_packaged_list():
    import tomllib

    from pipeline.parties.lists import distinct_names
    from pipeline.reference import CSL_CHECK_PATH

    with open(CSL_CHECK_PATH, "rb") as handle:
        check = tomllib.load(handle)
    assert check["reference_names"] == distinct_names(load_screening_list(CSL_PATH))


@pytest.mark.parametrize("damage", ["blank_names", "one_record_repeated"])
def test_a_full_length_list_without_usable_names_is_refused(tmp_path, damage):
    from pipeline.parties import check_list_size

    header, rows = _packaged_rows()
    name, alt = header.index("name"), header.index("alt_names")
    if damage == "blank_names":
        rows = [row[:name] + [""] + row[name + 1:alt] + [""] + row[alt + 1:] for row in rows]
    else:
        rows = [next(row for row in rows if "huawei" not in row[name].lower())] * len(rows)
    entries = load_screening_list(_write_rows(tmp_path / f"{damage}.csv", header, rows))
    assert entries.attrs["records"] == 14_160  # passes the record count
    with pytest.raises(ScreeningListError, match="distinct usable names.*--allow-short-list"):
        check_list_size(entries)
    check_list_size(entries, allow_short=True)
    check_list_size(load_screening_list(CSL_PATH))  # the packaged list passes


def test_a_list_of_blank_names_does_not_authorize_huawei_to_ae(tmp_path):
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from conftest import shipment, write_ledger
    from flows.cli import app

    header, rows = _packaged_rows()
    name, alt = header.index("name"), header.index("alt_names")
    blank = _write_rows(tmp_path / "blanknames.csv", header,
                        [row[:name] + [""] + row[name + 1:alt] + [""] + row[alt + 1:] for row in rows])
    ledger = write_ledger([shipment("HW1", consignee_name="Huawei Technologies Co Ltd", destination_country="AE",
                                    quantity=8)], tmp_path / "hu.csv")
    result = CliRunner().invoke(app, ["screen", str(ledger), "-p", "ai-diffusion-2025", "-o", str(tmp_path / "w4"),
                                      "--quiet", "--csl", str(blank)])
    assert result.exit_code == 1 and "distinct usable names" in " ".join(result.output.split()), result.output
    assert not (tmp_path / "w4" / "decisions.parquet").exists()
    allowed = CliRunner().invoke(app, ["screen", str(ledger), "-p", "ai-diffusion-2025", "-o",
                                       str(tmp_path / "w4b"), "--quiet", "--csl", str(blank), "--allow-short-list"])
    assert allowed.exit_code == 0, allowed.output
    assert pq.read_table(tmp_path / "w4b" / "decisions.parquet").column("decision").to_pylist() == ["AUTHORIZED"]


def test_encode_many_equals_encode_in_turn():
    """TokenTable.encode_many gives the ids (and adds new tokens in the order) of encode one by one."""
    from pipeline.parties.tokens import MAX_TOKENS, TokenTable

    texts = ["huawei technologies", "", "acme ltd", "zeta " * (MAX_TOKENS + 3) + "end", "novel words here",
             "acme novel", "a  b", " lead", "tab\tword"]
    one, many = TokenTable(["huawei technologies", "acme"]), TokenTable(["huawei technologies", "acme"])
    expected = [one.encode(text) for text in texts]
    tokens, offsets = many.encode_many(texts)
    assert [tokens[offsets[i]:offsets[i + 1]].tolist() for i in range(len(texts))] == expected
    assert many._tokens == one._tokens
    many.arrays()  # then only the tokens added after are looked at
    clean = texts[:6] + ["more novel tokens", "huawei zeta"]
    tokens, offsets = many.encode_many(clean)
    assert [tokens[offsets[i]:offsets[i + 1]].tolist() for i in range(len(clean))] == [one.encode(t) for t in clean]
    assert [a.tolist() for a in many.arrays()] == [a.tolist() for a in one.arrays()]


def test_normalize_stage_prefilter_keeps_every_form():
    """The Arrow prefilter of normalize_stage skips only names that have no form less qualifiers."""
    from pipeline.parties.normalize import normalize_name
    from pipeline.parties.qualifiers import leading_place_bases, qualifier_bases
    from pipeline.parties.screen import normalize_stage

    names = ["Huawei Technologies Co., Ltd. (Dubai Branch)", "Dubai Huawei Technologies", "Acme Widgets",
             "Acme c/o Freight", "Acme Warehouse No. 7", "Huawei Technologies L L C", None, "",
             "华为技术有限公司 (Dubai)", "Abu Dhabi Iran Air", "Huawei Technologies Morocco Dubai", "Acme [UAE]"]
    stage = normalize_stage(names)
    expected = []
    for name in names:
        text = normalize_name(name)
        bases = qualifier_bases(name, text)
        expected.extend(bases + (leading_place_bases([text, *bases]) if text else []))
    assert stage.base_texts == expected
