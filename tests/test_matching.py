"""Fuzzy restricted-party matching: token weights, blocking, pair scores, screening and match-names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.parties import (
    KIND_LOW,
    KIND_NUMBER,
    KIND_WORD,
    NameMatcher,
    candidate_pairs,
    country_adjusted,
    naive_top_match,
    score_pairs,
    token_keys,
    token_kind,
)
from pipeline.parties import PartyScreen, ScreeningListError, normalize_name
from pipeline.policy import load_policy
from pipeline.reference import CSL_PATH

DENY = load_policy("ai-diffusion-2025").get("parties.deny_lists")  # the lists the rule sets name
REVIEW = load_policy("ai-diffusion-2025").get("parties.review_lists")


@pytest.fixture(scope="module")
def screen() -> PartyScreen:
    return PartyScreen.from_path(CSL_PATH)


@pytest.fixture(scope="module")
def matcher(screen) -> NameMatcher:
    return screen.matcher


def test_token_kinds_and_keys():
    assert token_kind("huawei") == KIND_WORD
    assert token_kind("140") == KIND_NUMBER and token_keys("140") == ["=140"]
    assert token_kind("technology") == KIND_LOW and token_keys("technology") == []
    assert token_keys("makhlouf") == ["<mak", "ouf>"]


def test_generic_words_weigh_less_than_distinctive_ones(matcher):
    table = matcher.table
    _, _, weights, _, _, _ = table.arrays()
    ids = table.encode("huawei technology co")
    assert weights[ids[0]] > 3 * weights[ids[1]] > 0
    assert weights[ids[1]] > weights[ids[2]] > 0


@pytest.mark.parametrize("query, listed", [
    ("huawei technologies", "huawei technologies"),
    ("huawie technologies", "huawei technologies"),       # transposition
    ("technologies huawei", "huawei technologies"),       # word order
    ("ramimakhlouf", "rami makhlouf"),                    # glued words
    ("semiconductor manufacturing intl", "semiconductor manufacturing international"),  # abbreviation
])
def test_true_variants_score_high(matcher, query, listed):
    assert matcher.score([query], [listed])[0] >= 0.85


@pytest.mark.parametrize("query, listed", [
    ("shenzhen nimbus technology", "shenzhen huawei technology"),  # shared generic words only
    ("bank of armenia", "bank of america"),
    ("140 repair plant", "141 repair plant"),                     # numbers must be equal
    ("acme widgets", "zenith holdings"),
])
def test_hard_negatives_score_low(matcher, query, listed):
    assert matcher.score([query], [listed])[0] < 0.78


def test_scores_are_bounded_and_identity_is_one(matcher, screen):
    texts = screen.entries["normalized"].drop_duplicates().sample(300, random_state=1).tolist()
    others = texts[1:] + texts[:1]
    assert np.allclose(matcher.score(texts, texts), 1.0)
    scores = matcher.score(texts, others)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert np.median(scores) < 0.3


def test_score_pairs_is_a_function_of_arrays(matcher):
    queries = matcher.encode(["huawie technologies", "acme"])
    listed = matcher.encode(["huawei technologies", "acme", "dahua technology"])
    scores = score_pairs(queries, listed, np.array([0, 0, 1]), np.array([0, 2, 1]), matcher.table)
    assert scores.dtype == np.float64 and scores.shape == (3,)
    assert scores[0] > 0.8 > scores[1] and scores[2] == 1.0
    empty = score_pairs(queries, listed, np.zeros(0, np.int64), np.zeros(0, np.int64), matcher.table)
    assert empty.shape == (0,)


def test_blocking_finds_what_all_pairs_finds(matcher, screen):
    # Variants of listed names (one typo in the longest word) and unrelated names: the blocked top
    # match equals the all-pairs top match whenever the latter is a hit.
    rng = np.random.default_rng(3)
    texts = [t for t in screen.entries["normalized"].drop_duplicates().sample(60, random_state=3) if len(t) > 8]
    queries = []
    for text in texts:
        words = text.split()
        i = int(np.argmax([len(w) for w in words]))
        j = int(rng.integers(1, len(words[i]) - 1))
        words[i] = words[i][:j] + words[i][j + 1:]
        queries.append(" ".join(words))
    queries += ["nimbus compute systems", "zephyr data labs"]
    best, best_scores = matcher.top_matches(queries, k=1)
    naive, naive_scores = naive_top_match(matcher, queries)
    hits = naive_scores >= 0.78
    assert hits.sum() >= 0.8 * len(texts)
    assert np.allclose(best_scores[hits, 0], naive_scores[hits])
    pair_query, pair_listed = candidate_pairs(matcher.encode(queries), matcher.table)
    assert (np.diff(pair_query) >= 0).all()  # grouped by query
    assert len(pair_query) < 0.05 * len(queries) * len(matcher.listed)  # blocking prunes


def test_top_matches_validates_and_orders(matcher):
    with pytest.raises(ValueError, match="k must be"):
        matcher.top_matches(["x"], k=0)
    best, scores = matcher.top_matches(["huawei technologies", ""], k=3)
    assert (np.diff(scores[0]) <= 0).all() and scores[0, 0] == 1.0
    assert (best[1] == -1).all()
    with pytest.raises(ValueError, match="same length"):
        matcher.score(["a"], [])


def test_country_adjustment():
    adjusted = country_adjusted(np.array([0.9, 0.9, 0.9, 0.99]), ["CN", "DE", "", "CN"], ["CN", "CN", "CN", "CN"],
                                0.03, 0.05)
    assert adjusted.tolist() == pytest.approx([0.93, 0.85, 0.9, 1.0])


def test_screen_fuzzy_hits_explain_themselves(screen):
    names = ["Huawie Technologies Co Ltd", "Shenzhen Nimbus Technology Co., Ltd.", "HUAWEI TECHNOLOGIES CO LTD"]
    result = screen.screen(names, DENY, REVIEW)
    fuzzy, clear, exact = result.to_dict("records")
    assert fuzzy["outcome"] in ("block", "review") and fuzzy["party_list"] == "EL"
    assert 0.78 <= fuzzy["party_score"] < 1.0
    assert "huawie=huawei(0.83)" in fuzzy["party_tokens"]
    assert pd.isna(clear["outcome"]) and pd.isna(clear["party_match"])
    assert exact["party_score"] == 1.0 and exact["party_tokens"] == "exact"
    matches = result.attrs["matches"].frame
    assert set(matches["name"]) >= {names[0], names[2]}
    assert (matches.groupby("name")["rank"].min() == 1).all()


def test_screen_thresholds_and_countries(screen):
    name = ["Huawie Technologies"]
    strict = screen.screen(name, DENY, REVIEW, block_score=1.0, review_score=0.99)
    assert pd.isna(strict["outcome"].iloc[0])
    loose = screen.screen(name, DENY, REVIEW, block_score=0.8, review_score=0.7)
    assert loose["outcome"].iloc[0] == "block"
    base = screen.screen(name, DENY, REVIEW)["party_score"].iloc[0]
    near = screen.screen(name, DENY, REVIEW, countries=["CN"], country_bonus=0.03, country_penalty=0.05)
    far = screen.screen(name, DENY, REVIEW, countries=["BR"], country_bonus=0.03, country_penalty=0.05)
    assert near["party_score"].iloc[0] > base > far["party_score"].iloc[0]
    with pytest.raises(ScreeningListError, match="review_score"):
        screen.screen(name, DENY, REVIEW, block_score=0.5, review_score=0.9)
    with pytest.raises(ScreeningListError, match="one item per name"):
        screen.screen(name, DENY, REVIEW, countries=[])


def test_pair_scores_exact_and_empty(screen):
    scores = screen.pair_scores(["Huawei Technologies Co., Ltd.", "", "Acme"], ["HUAWEI TECHNOLOGIES", "x", "Zenith"])
    assert scores[0] == 1.0 and scores[1] == 0.0 and scores[2] < 0.5


def test_match_names_command(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"id": ["a", "b", "c"],
                  "query": ["Huawei Technologies Co Ltd", "Huawie Technologies", "Acme Widgets"],
                  "candidate": ["HUAWEI TECHNOLOGIES", "Huawei Technologies", "Zenith Holdings"]}).to_csv(pairs, index=False)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["match-names", "--pairs", str(pairs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert scored["id"].tolist() == ["a", "b", "c"]
    assert scored["outcome"].tolist()[0] == "block" and scored["outcome"].tolist()[2] == "clear"
    assert scored["score"].iloc[0] == 1.0 and 0 < scored["score"].iloc[1] < 1
    strict = CliRunner().invoke(app, ["match-names", "--pairs", str(pairs), "--out", str(out), "--block", "1.0",
                                      "--review", "0.99"])
    assert strict.exit_code == 0 and pd.read_csv(out)["outcome"].iloc[1] == "clear"
    bad = tmp_path / "bad.csv"
    bad.write_text("left,right\nx,y\n")
    failed = CliRunner().invoke(app, ["match-names", "--pairs", str(bad), "--out", str(out)])
    assert failed.exit_code == 1 and "missing" in failed.output and "query" in failed.output


def test_normalization_transliterates_and_folds():
    assert normalize_name("Александр Петров") == "aleksandr petrov"
    assert normalize_name("ООО \"БАЙКАЛ\"") == normalize_name("OOO Baikal")
    assert normalize_name("Κυριάκος") == "kyriakos"
    assert normalize_name("Łódź Straße") == "lodz strasse"
    assert normalize_name("BMW Aktiengesellschaft") == "bmw"
