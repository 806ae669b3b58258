"""Reviewed party decisions: file checks, honouring clears and confirms, re-opening on list changes."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.parties import PartyScreen, normalize_name
from pipeline.policy import load_policy
from pipeline.reference import CSL_PATH
from pipeline.review import (
    REVIEW_COLUMNS,
    Review,
    ReviewBook,
    ReviewFileError,
    append_review,
    entry_fingerprint,
    read_reviews,
)

DENY = load_policy("ai-diffusion-2025").get("parties.deny_lists")  # the lists the rule sets name
REVIEW = load_policy("ai-diffusion-2025").get("parties.review_lists")
NAME = "Huawie Technologies"  # a fuzzy hit on the Huawei EL records


@pytest.fixture(scope="module")
def screen() -> PartyScreen:
    return PartyScreen.from_path(CSL_PATH)


def decision(screen, entry_id, kind="clear", party=NAME, fingerprint=None, when="2026-01-02T10:00:00"):
    return Review(party, entry_id, kind, "ana", when, "different company, checked registry",
                  fingerprint or screen.fingerprints()[entry_id])


def test_clear_removes_the_entry_and_says_so(screen):
    before = screen.screen([NAME], DENY, REVIEW).iloc[0]
    assert before["outcome"] in ("block", "review")
    hits = screen.entries[screen.entries["normalized"] == normalize_name(before["party_alias"])]["entry_id"].unique()
    book = ReviewBook([decision(screen, entry_id) for entry_id in hits], normalize_name)
    after = screen.screen([NAME], DENY, REVIEW, reviews=book).iloc[0]
    assert after["party_entry_id"] not in set(hits) or after["outcome"] == "cleared"
    assert after["outcome"] != before["outcome"] or after["party_entry_id"] != before["party_entry_id"]
    # Clearing every candidate leaves the name "cleared", with the audit note.
    everything = screen.screen([NAME], DENY, REVIEW).attrs["matches"].frame["entry_id"]
    candidates = set(everything) | set(hits)
    top, _ = screen.matcher.top_matches([normalize_name(NAME)], k=50, floor=0.5)
    for text in top[0][top[0] >= 0]:
        candidates |= set(screen.entries.loc[screen.entries["normalized"] == screen.matcher.listed[text], "entry_id"])
    book = ReviewBook([decision(screen, entry_id) for entry_id in candidates], normalize_name)
    cleared = screen.screen([NAME, "Huawei Technologies"], DENY, REVIEW, reviews=book)
    assert cleared["outcome"].iloc[0] == "cleared"
    assert cleared["review_status"].iloc[0].startswith("cleared by ana on 2026-01-02")
    assert cleared["outcome"].iloc[1] == "block"  # the decision is about one party name only


def test_confirm_scores_one_and_changed_entry_reopens(screen):
    hit = screen.screen([NAME], DENY, REVIEW).iloc[0]
    confirmed = screen.screen([NAME], DENY, REVIEW, reviews=ReviewBook(
        [decision(screen, hit["party_entry_id"], "confirm")], normalize_name)).iloc[0]
    assert confirmed["party_score"] == 1.0 and confirmed["outcome"] == "block"
    assert confirmed["review_status"].startswith("confirmed by ana")
    stale = ReviewBook([decision(screen, hit["party_entry_id"], fingerprint="0" * 16)], normalize_name)
    reopened = screen.screen([NAME], DENY, REVIEW, reviews=stale).iloc[0]
    assert reopened["outcome"] == hit["outcome"]
    assert reopened["review_status"].startswith("reopened: entry " + hit["party_entry_id"])


def test_fingerprint_changes_with_the_entry(screen):
    entries = screen.entries[screen.entries["entry_id"].isin(screen.entries["entry_id"].iloc[:3])].copy()
    before = entry_fingerprint(entries)
    entries.loc[entries.index[0], "alias"] = "A New Alias"
    after = entry_fingerprint(entries)
    first = entries["entry_id"].iloc[0]
    assert before[first] != after[first]
    assert all(before[k] == after[k] for k in before if k != first)


def test_latest_decision_wins(screen):
    entry_id = screen.entries["entry_id"].iloc[0]
    book = ReviewBook([decision(screen, entry_id, "clear", when="2026-02-01"),
                       decision(screen, entry_id, "confirm", when="2026-01-01")], normalize_name)
    assert book.lookup(normalize_name(NAME), entry_id).decision == "clear"
    assert len(book) == 1 and book.parties() == {normalize_name(NAME)}


def test_review_file_round_trip_and_errors(tmp_path, screen):
    path = tmp_path / "reviews.csv"
    review = decision(screen, screen.entries["entry_id"].iloc[0])
    append_review(path, review)
    append_review(path, review)
    assert path.read_text().splitlines()[0] == ",".join(REVIEW_COLUMNS)
    assert read_reviews(path) == [review, review]
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(REVIEW_COLUMNS) + "\nX,1,maybe,ana,2026-01-01,why,abc\n")
    with pytest.raises(ReviewFileError, match="decision must be one of"):
        read_reviews(bad)
    bad.write_text(",".join(REVIEW_COLUMNS) + "\nX,1,clear,ana,yesterday,why,abc\n")
    with pytest.raises(ReviewFileError, match="not an ISO date"):
        read_reviews(bad)
    bad.write_text(",".join(REVIEW_COLUMNS) + "\nX,1,clear,,2026-01-01,why,abc\n")
    with pytest.raises(ReviewFileError, match="empty analyst"):
        read_reviews(bad)
    bad.write_text("party,entry_id\n")
    with pytest.raises(ReviewFileError, match="missing columns"):
        read_reviews(bad)
    with pytest.raises(ReviewFileError, match="cannot read"):
        read_reviews(tmp_path / "absent.csv")


def test_review_party_command_and_policy_wiring(tmp_path, screen):

    path = tmp_path / "reviews.csv"
    entry_id = screen.screen([NAME], DENY, REVIEW)["party_entry_id"].iloc[0]
    result = CliRunner().invoke(app, ["review-party", "--reviews", str(path), "--party", NAME, "--entry", entry_id,
                                      "--decision", "clear", "--analyst", "ana", "--reason", "not them"])
    assert result.exit_code == 0, result.output
    reviews = read_reviews(path)
    assert reviews[0].entry_id == entry_id and all(r.decision == "clear" for r in reviews)
    assert all(r.fingerprint == screen.fingerprints()[r.entry_id] for r in reviews)
    single = tmp_path / "single.csv"
    result = CliRunner().invoke(app, ["review-party", "--reviews", str(single), "--party", NAME, "--entry", entry_id,
                                      "--decision", "clear", "--analyst", "ana", "--reason", "not them",
                                      "--only-this-entry"])
    assert result.exit_code == 0 and len(read_reviews(single)) == 1
    policy = load_policy("ai-diffusion-2025", [f"parties.reviews_file={path}"])
    result = screen.screen_policy([NAME], policy)
    assert result["party_entry_id"].iloc[0] != entry_id or result["outcome"].iloc[0] == "cleared"
    unknown = CliRunner().invoke(app, ["review-party", "--reviews", str(path), "--party", NAME, "--entry", "nope",
                                       "--decision", "clear", "--analyst", "ana", "--reason", "x"])
    assert unknown.exit_code == 1 and "no entry" in unknown.output


def test_review_party_refuses_a_folder_empty_fields_and_a_file_screen_would_refuse(tmp_path, screen):
    entry_id = screen.screen([NAME], DENY, REVIEW)["party_entry_id"].iloc[0]
    (tmp_path / "rdir").mkdir()
    latin = tmp_path / "latin.csv"
    latin.write_bytes(",".join(REVIEW_COLUMNS).encode() + b"\r\nM\xfcller,e,clear,ana,2026-01-01,r,f\r\n")
    broken = tmp_path / "broken.csv"
    broken.write_text("party,entry_id\nx,y\n")
    before = {p.name: p.read_bytes() for p in (latin, broken)}
    base = {"--reviews": str(tmp_path / "new.csv"), "--party": NAME, "--entry": entry_id, "--decision": "clear",
            "--analyst": "ana", "--reason": "not them"}
    for change, why in (({"--reviews": str(tmp_path / "rdir")}, "folder"), ({"--party": ""}, "--party"),
                        ({"--analyst": " "}, "--analyst"), ({"--reason": ""}, "--reason"),
                        ({"--reviews": str(latin)}, "UTF-8"), ({"--reviews": str(broken)}, "missing columns")):
        options = {**base, **change}
        result = CliRunner().invoke(app, ["review-party", *[x for item in options.items() for x in item]])
        assert result.exit_code == 1 and "error:" in result.output and why in result.output, (change, result.output)
        assert "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in (latin, broken)} == before
    assert not (tmp_path / "new.csv").exists() and list((tmp_path / "rdir").iterdir()) == []
    with pytest.raises(ReviewFileError, match="empty analyst"):
        append_review(tmp_path / "new.csv", Review(NAME, entry_id, "clear", "", "2026-01-01", "r", "f"))
    ok = tmp_path / "ok.csv"  # a last line without its end: the new row still starts a line of its own
    append_review(ok, Review(NAME, entry_id, "clear", "ana", "2026-01-01", "r", "f"))
    ok.write_bytes(ok.read_bytes().rstrip(b"\r\n"))
    append_review(ok, Review(NAME, entry_id, "confirm", "bo", "2026-01-02", "r", "f"))
    assert [r.decision for r in read_reviews(ok)] == ["clear", "confirm"]


def test_a_cleared_party_ships_and_the_decisions_say_why(screen, tmp_path):
    """End to end: the analyst's clear, recorded with the CLI, turns DENIED into a decision naming the review."""
    from conftest import shipment, write_ledger
    import pyarrow.parquet as pq

    ledger = write_ledger([shipment("S1", consignee_name=NAME, destination_country="IN"),
                           shipment("S2", consignee_name="Nimbus Compute Pvt", destination_country="IN")],
                          tmp_path / "ledger.parquet")
    runner = CliRunner()
    first = runner.invoke(app, ["screen", str(ledger), "-p", "post-rescission-2025", "-o", str(tmp_path / "before"), "-q"])
    assert first.exit_code == 0, first.output
    before = pq.read_table(tmp_path / "before" / "decisions.parquet").to_pylist()
    assert before[0]["decision"] in ("DENIED", "REVIEW") and before[0]["reasons"].startswith("PARTY")
    reviews = tmp_path / "reviews.csv"
    out = tmp_path / "before"
    for _ in range(8):  # the analyst clears the name each run holds, until none is left
        matches = pq.read_table(out / "parties.parquet").to_pandas()
        if pq.read_table(out / "decisions.parquet").to_pylist()[0]["decision"] not in ("DENIED", "REVIEW"):
            break
        chosen = matches[(matches["name"] == NAME) & matches["chosen"]]["entry_id"].tolist()
        assert len(chosen) == 1  # parties.parquet names the entry that hit
        recorded = runner.invoke(app, ["review-party", "--reviews", str(reviews), "--party", NAME, "--entry", chosen[0],
                                       "--decision", "clear", "--analyst", "ana", "--reason", "other company"])
        assert recorded.exit_code == 0, recorded.output
        out = tmp_path / f"after-{len(read_reviews(reviews))}"
        second = runner.invoke(app, ["screen", str(ledger), "-p", "post-rescission-2025", "-o", str(out), "-q",
                                     "--reviews", str(reviews)])
        assert second.exit_code == 0, second.output
    assert len({r.entry_id for r in read_reviews(reviews)}) > 5  # names listed as many entries are covered at once
    after = pq.read_table(out / "decisions.parquet").to_pylist()
    assert after[0]["decision"] not in ("DENIED", "REVIEW")
    assert "PARTY_CLEARED" in after[0]["reasons"]
    assert after[1]["reasons"] == before[1]["reasons"]


def test_an_empty_reviews_file_holds_no_reviews_for_screen_and_review_party_alike(tmp_path):
    empty = tmp_path / "reviews.csv"
    empty.write_bytes(b"")
    assert read_reviews(empty) == []
    with pytest.raises(ReviewFileError, match="missing columns"):
        (tmp_path / "header-less.csv").write_text("a,b\n")
        read_reviews(tmp_path / "header-less.csv")
