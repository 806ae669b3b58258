"""Hostile reference inputs: damaged screening lists, bad overrides and rule-set ids, reviews files.

Each refused input ends the command with ``error: ...`` and exit code 1, never a traceback.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tomllib

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import flows.cli.base as cli
from conftest import shipment, write_ledger
from flows.cli import app
from pipeline.parties import PartyScreen, ScreeningListError, load_screening_list, refresh_screening_list
from pipeline.policy import PolicyError, load_policy
from pipeline.reference import CSL_CHECK_PATH, CSL_PATH, POLICY_DIR
from pipeline.review import REVIEW_COLUMNS, Review, ReviewBook, ReviewFileError, read_reviews

runner = CliRunner()
HUAWEI_TO_AE = shipment("HW1", consignee_name="Huawei Technologies Co., Ltd.", destination_country="AE",
                        quantity=8)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Error messages on one line, whatever the terminal: substrings stay whole."""
    monkeypatch.setattr(cli.console, "width", 10_000)


def packaged_records() -> tuple[list[str], list[list[str]]]:
    with gzip.open(CSL_PATH, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


def write_list(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def short_list(tmp_path_factory):
    """The packaged list without its Huawei records, cut to 12,021 records: a truncated download."""
    header, rows = packaged_records()
    name = header.index("name")
    kept = [row for row in rows if "huawei" not in row[name].lower()][:12_021]
    return write_list(tmp_path_factory.mktemp("csl") / "short.csv", header, kept)


@pytest.fixture(scope="module")
def header_only(tmp_path_factory):
    header, _ = packaged_records()
    return write_list(tmp_path_factory.mktemp("csl") / "header-only.csv", header, [])


@pytest.fixture
def ledger(tmp_path):
    return write_ledger([HUAWEI_TO_AE], tmp_path / "ledger.csv")


def assert_clean_error(result, *fragments):
    """Exit 1 with an ``error:`` line naming each fragment, and no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "error:" in result.output and "Traceback" not in result.output, result.output
    assert "Aborted" not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


def screen_args(ledger, out, *extra):
    return ["screen", str(ledger), "--policy", "ai-diffusion-2025", "--out", str(out), "--quiet", *extra]


# --- W4: empty or short screening lists -------------------------------------------------------------
def test_list_check_data_matches_the_packaged_list():
    with open(CSL_CHECK_PATH, "rb") as handle:
        check = tomllib.load(handle)
    assert check["reference_records"] == load_screening_list(CSL_PATH).attrs["records"]
    assert 0 < check["max_shrink"] < 1


def test_truncated_list_is_refused_and_huawei_to_ae_is_not_authorized(tmp_path, ledger, short_list):
    full = runner.invoke(app, screen_args(ledger, tmp_path / "full"))
    assert full.exit_code == 0, full.output
    assert pq.read_table(tmp_path / "full" / "decisions.parquet").column("decision").to_pylist() == ["DENIED"]

    refused = runner.invoke(app, screen_args(ledger, tmp_path / "short", "--csl", str(short_list)))
    assert_clean_error(refused, "short.csv", "12,021 records", "--allow-short-list")
    assert not (tmp_path / "short" / "decisions.parquet").exists()

    allowed = runner.invoke(app, screen_args(ledger, tmp_path / "allowed", "--csl", str(short_list),
                                             "--allow-short-list"))
    assert allowed.exit_code == 0, allowed.output
    summary = json.loads((tmp_path / "allowed" / "summary.json").read_text())
    assert "parties.allow_short_list=true" in summary["policy"]["overrides"]
    listed = summary["reference"]["screening_list"]
    assert listed["sha256"] == hashlib.sha256(short_list.read_bytes()).hexdigest()
    assert listed["entries"] == len(load_screening_list(short_list)) > 0


@pytest.mark.parametrize("command", ["screen", "audit", "diff", "nightly"])
def test_header_only_list_is_refused_by_every_command(tmp_path, ledger, header_only, command):
    out = str(tmp_path / "out")
    args = {
        "screen": ["screen", str(ledger), "-p", "ai-diffusion-2025", "-o", out, "--csl", str(header_only)],
        "audit": ["audit", str(ledger), "-p", "ai-diffusion-2025", "-o", out, "--csl", str(header_only)],
        "diff": ["diff", str(ledger), "-p", "ai-diffusion-2025", "-p", "post-rescission-2025", "-o", out,
                 "--csl", str(header_only)],
        "nightly": ["nightly", str(ledger), "--lake", str(tmp_path / "lake"), "-o", out,
                    "--csl-source", str(header_only)],
    }[command]
    assert_clean_error(runner.invoke(app, args), "header-only.csv", "no records", "--allow-short-list")
    assert not (tmp_path / "out").exists() and not (tmp_path / "lake").exists()


def test_diff_allows_a_short_list_for_both_rule_sets(tmp_path, ledger, header_only):
    result = runner.invoke(app, ["diff", str(ledger), "-p", "ai-diffusion-2025", "-p", "post-rescission-2025",
                                 "-o", str(tmp_path / "out"), "--csl", str(header_only), "--allow-short-list",
                                 "--quiet"])
    assert result.exit_code == 0, result.output


def test_screening_with_a_policy_checks_the_list_too(header_only):
    """The library path (flows, Dask workers) refuses the list unless the rule set allows it."""
    screen = PartyScreen.from_path(header_only)
    with pytest.raises(ScreeningListError, match="no records"):
        screen.screen_policy(["Huawei Technologies"], load_policy("ai-diffusion-2025"))
    allowed = load_policy("ai-diffusion-2025", ["parties.allow_short_list=true"])
    assert screen.screen_policy(["Huawei Technologies"], allowed)["outcome"].isna().all()


# --- C7: screening-list files that cannot be read ---------------------------------------------------
def damaged_lists(folder):
    header, rows = packaged_records()
    data = CSL_PATH.read_bytes()
    source = header.index("source")
    unknown = [list(rows[0])]
    unknown[0][source] = "Brand New List (BNL) - Somewhere"
    cases = {
        "empty.csv": (b"", "is empty"),
        "columns.csv": (b"id,list,title\n1,EL,Acme\n", "missing CSL columns"),
        "binary.csv": (bytes(range(256)) * 64, "not UTF-8"),
        "cut.csv.gz": (data[: len(data) // 2], "truncated gzip"),
    }
    paths = {}
    for name, (content, message) in cases.items():
        (folder / name).write_bytes(content)
        paths[name] = message
    write_list(folder / "unknown-source.csv", header, unknown)
    paths["unknown-source.csv"] = "unknown screening-list source"
    paths["missing.csv"] = "cannot read screening list"
    return paths


@pytest.mark.parametrize("name", ["empty.csv", "columns.csv", "binary.csv", "cut.csv.gz", "unknown-source.csv",
                                  "missing.csv"])
def test_unreadable_lists_are_clear_errors(tmp_path, ledger, name):
    message = damaged_lists(tmp_path)[name]
    result = runner.invoke(app, screen_args(ledger, tmp_path / "out", "--csl", str(tmp_path / name)))
    assert_clean_error(result, name, message)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("query,candidate\nacme,acme\n")
    matched = runner.invoke(app, ["match-names", "--pairs", str(pairs), "--out", str(tmp_path / "o.csv"),
                                  "--csl", str(tmp_path / name)])
    assert_clean_error(matched, name, message)


def test_refresh_names_a_missing_source(tmp_path):
    with pytest.raises(ScreeningListError, match="cannot read screening list .*nowhere.csv"):
        refresh_screening_list(tmp_path / "nowhere.csv", tmp_path / "reference")


def test_a_list_saved_with_a_byte_order_mark_reads(tmp_path):
    header, rows = packaged_records()
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + write_list(tmp_path / "plain.csv", header, rows[:3]).read_bytes())
    assert load_screening_list(path).attrs["records"] == 3


# --- W6, C6: overrides checked like the policy file -------------------------------------------------
@pytest.mark.parametrize("override, named", [
    ("allocation.caps.in=1000", "'in'"),
    ("allocation.caps.ZZ=1000", "'ZZ'"),
    ("allocation.default_cap_tpp=-1", "allocation.default_cap_tpp"),
    ('tiers.tier1=["us"]', "'us'"),
    ('country_groups.D:5=["ZZ"]', "country_groups.D:5"),
    ('destinations.aliases.IN="ZZ"', "destinations.aliases.IN"),
    ("allocation.caps.AE=9223372036854775808", "allocation.caps.AE"),
    ("lpp.limit_tpp=99999999999999999999", "lpp.limit_tpp"),
    ('parties.deny_lists=["EL", "XX"]', "'XX'"),
    ("lpp.period=fiscal-year", "lpp.period"),
    ("allocation.window_start=2025-01-13T00:00:00", "allocation.window_start"),
])
def test_bad_overrides_are_clear_errors(tmp_path, ledger, override, named):
    result = runner.invoke(app, screen_args(ledger, tmp_path / "out", "--set", override))
    assert_clean_error(result, "override", named)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_bad_agreement_overrides_are_policy_errors():
    for override in ("agreements.0.cap_tpp=9223372036854775808", "agreements.1.destination=XX",
                     "agreements.0.window_end=2020-01-01"):
        with pytest.raises(PolicyError, match="agreements"):
            load_policy("post-rescission-2025", [override])


def test_a_cap_applies_to_its_upper_case_code_only(tmp_path):
    ledger = write_ledger([shipment("L1", license_id="LIC-1", quantity=1)], tmp_path / "l.csv")
    lower = runner.invoke(app, screen_args(ledger, tmp_path / "lower", "--set", "allocation.caps.in=1"))
    assert_clean_error(lower, "'in'", "'IN'")
    upper = runner.invoke(app, screen_args(ledger, tmp_path / "upper", "--set", "allocation.caps.IN=1"))
    assert upper.exit_code == 0, upper.output
    assert pq.read_table(tmp_path / "upper" / "decisions.parquet").column("decision").to_pylist() == ["CAP_EXCEEDED"]


@pytest.mark.parametrize("reviews", ["missing.csv", "latin1.csv"])
def test_reviews_file_override_must_read(tmp_path, ledger, reviews):
    (tmp_path / "latin1.csv").write_bytes((",".join(REVIEW_COLUMNS) + "\nSoci\xe9t\xe9,1,clear,ana,2026-01-02,x,f\n")
                                          .encode("latin-1"))
    path = tmp_path / reviews
    result = runner.invoke(app, screen_args(ledger, tmp_path / "out", "--set",
                                            f"parties.reviews_file={json.dumps(str(path))}"))
    assert_clean_error(result, "parties.reviews_file", reviews)


# --- D4: rule-set ids are slugs -----------------------------------------------------------------------
@pytest.mark.parametrize("bad_id", ['""', '"../../etc"', '"a..b"', '"Upper"', '"has space"', '"' + "x" * 65 + '"'])
def test_rule_set_ids_must_be_slugs(tmp_path, ledger, bad_id):
    text = (POLICY_DIR / "ai-diffusion-2025.toml").read_text().replace('id = "ai-diffusion-2025"', f"id = {bad_id}")
    policy = tmp_path / "rules.toml"
    policy.write_text(text)
    from_file = runner.invoke(app, ["screen", str(ledger), "-p", str(policy), "-o", str(tmp_path / "a"), "-q"])
    assert_clean_error(from_file, "rules.toml", "id")
    override = runner.invoke(app, screen_args(ledger, tmp_path / "b", "--set", f"id={bad_id}"))
    assert_clean_error(override, "override", "id")


def test_id_override_is_checked_as_a_slug():
    with pytest.raises(PolicyError, match="override 'id=../what-if'"):
        load_policy("ai-diffusion-2025", ["id=../what-if"])
    assert load_policy("ai-diffusion-2025", ["id=what-if.lpp_500"]).id == "what-if.lpp_500"


# --- W5: the latest review is the latest instant --------------------------------------------------------
def review(decision, when):
    return Review("Acme Tech Co", "E1", decision, "ana", when, "checked", "f" * 16)


@pytest.mark.parametrize("order", [1, -1])
def test_latest_review_is_compared_as_instants(order):
    clear = review("clear", "2026-03-01T12:00:00+00:00")
    confirm = review("confirm", "2026-03-01T09:00:00-05:00")  # 14:00 UTC: two hours after the clear
    book = ReviewBook([clear, confirm][::order], lambda name: name.lower())
    assert book.lookup("acme tech co", "E1").decision == "confirm"


def test_review_without_offset_is_utc():
    earlier = review("confirm", "2026-03-01T13:30:00")  # 13:30 UTC
    later = review("clear", "2026-03-01T09:00:00-05:00")  # 14:00 UTC
    assert ReviewBook([later, earlier], str.lower).lookup("acme tech co", "E1").decision == "clear"
    assert ReviewBook([review("clear", "2026-03-02"), review("confirm", "2026-03-01T23:00:00-02:00")],
                      str.lower).lookup("acme tech co", "E1").decision == "confirm"  # 03-02 01:00 UTC


def test_unparsable_review_time_is_a_review_file_error():
    with pytest.raises(ReviewFileError, match="yesterday"):
        ReviewBook([review("clear", "2026-03-01"), review("confirm", "yesterday")], str.lower)


def test_non_utf8_reviews_file_is_a_clear_error(tmp_path, ledger):
    reviews = tmp_path / "reviews.csv"
    reviews.write_bytes((",".join(REVIEW_COLUMNS) + "\nSoci\xe9t\xe9,1,clear,ana,2026-01-02,x,f\n").encode("cp1252"))
    result = runner.invoke(app, screen_args(ledger, tmp_path / "out", "--reviews", str(reviews)))
    assert_clean_error(result, "reviews.csv", "UTF-8")


def test_reviews_file_with_byte_order_mark_reads(tmp_path):
    reviews = tmp_path / "reviews.csv"
    reviews.write_bytes(b"\xef\xbb\xbf" + (",".join(REVIEW_COLUMNS) + "\nAcme,1,clear,ana,2026-01-02,x,f\n").encode())
    assert [r.party for r in read_reviews(reviews)] == ["Acme"]


# --- match-names output is safe to open in a spreadsheet -----------------------------------------------
def test_match_names_neutralises_formulas(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text('note,query,candidate\n@SUM(A1),"=HYPERLINK(""http://x"")",Acme\nplain,+Acme,-Acme\n')
    out = tmp_path / "scored.csv"
    result = runner.invoke(app, ["match-names", "--pairs", str(pairs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    cells = [row[column] for row in rows for column in ("note", "query", "candidate")]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells), cells
    assert rows[0]["query"] == '\'=HYPERLINK("http://x")' and rows[1]["candidate"] == "'-Acme"


# --- second round: overrides and rule-set files that are surely mistakes --------------------------------
@pytest.mark.parametrize("override, named", [
    ('controls.controlled_classes=["3A090.z"]', "'3A090.z'"),
    ('destinations.aliases.CN="HK"', "cycle"),
    ('destinations.aliases.HK="HK"', "itself"),
    ('destinations.aliases.MO="HK"', "'HK' is itself an alias"),
    ("controls.gp10_deny=false", "did you mean 'gp10_denied'"),
])
def test_mistaken_overrides_are_refused(tmp_path, ledger, override, named):
    with pytest.raises(PolicyError, match="override"):
        load_policy("ai-diffusion-2025", [override])
    result = runner.invoke(app, screen_args(ledger, tmp_path / "out", "--set", override))
    assert_clean_error(result, "override", named)


def test_sensible_class_and_alias_overrides_still_apply():
    policy = load_policy("ai-diffusion-2025", ['controls.controlled_classes=["3A090.a", "3A090.b"]',
                                               'destinations.aliases.MO="CN"'])
    assert policy.get("destinations.aliases") == {"HK": "CN", "MO": "CN"}


@pytest.mark.parametrize("policy_id, before, after, named", [
    ("ai-diffusion-2025", "gp10_denied = true\n", "gp10_denied = true\nbogus = 1\n", "'controls.bogus'"),
    ("ai-diffusion-2025", "gp10_denied = true\n", "gp10_denied = true\ngp10_denide = 1\n", "'gp10_denied'"),
    ("ai-diffusion-2025", 'version = "2025-01-15"\n', 'version = "2025-01-15"\nframwork = "x"\n', "'framework'"),
    ("ai-diffusion-2025", "gp10_denied = true\n", 'gp10_denied = true\ndenied_groups = ["D:5"]\n', "framework"),
    ("post-rescission-2025", "cap_tpp = 2_100_000_000\n", "cap_tpp = 2_100_000_000\ncap = 1\n", "agreements.1.cap"),
    ("post-rescission-2025", "until = 2026-02-02", "untl = 2026-02-02\nuntil = 2026-02-02", "untl"),
])
def test_unknown_keys_in_a_rule_set_file_are_refused(tmp_path, policy_id, before, after, named):
    text = (POLICY_DIR / f"{policy_id}.toml").read_text()
    assert before in text
    path = tmp_path / "rules.toml"
    path.write_text(text[::-1].replace(before[::-1], after[::-1], 1)[::-1])  # the last occurrence
    with pytest.raises(PolicyError, match="rules.toml") as error:
        load_policy(path)
    assert named in str(error.value)


def test_packaged_rule_sets_pass_the_key_checks():
    for policy_id in ("ai-diffusion-2025", "post-rescission-2025"):
        assert load_policy(policy_id).id == policy_id
