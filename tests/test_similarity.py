"""The vectorised pairwise similarity (kernels/similarity.py) against the Numba one it replaces on a GPU.

Cases parametrised over ``numpy`` and ``cupy`` run :func:`kernels.similarity.pair_similarity` on
that namespace and compare with :func:`pipeline.parties.score_pairs` on the CPU; the CuPy ones
are skipped where no CUDA device works. The scores must be equal bit for bit on every namespace:
each float step of the array form is one IEEE operation, on CuPy too (one kernel each, nothing
contracted into a multiply-add). The NumPy-backed CuPy stand-in (``tests/fake_cupy.py``) runs
``match-names --backend cupy`` and the party screen end to end.
"""
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import cupy_or_skip
from kernels import similarity
from kernels.backend import Backend, select_backend
from flows.cli import app
from pipeline.parties import (ALPHA, MAX_TOKENS, MIN_TOKEN_SIMILARITY, SWAP_PENALTY, NameMatcher, candidate_pairs,
                               score_pairs)
from pipeline.parties import PartyScreen


@pytest.fixture(scope="module", params=["numpy", "cupy"])
def device(request):
    """The backend to run the vectorised form on; CuPy cases skip where no device works."""
    return Backend("numpy", np) if request.param == "numpy" else cupy_or_skip()


@pytest.fixture(scope="module")
def screen() -> PartyScreen:
    return PartyScreen.from_path()


def vectorised(matcher: NameMatcher, queries, listed, pair_query, pair_listed, device, **options):
    """The vectorised scores, with the character-mask shortcut (as screening runs it) and without:
    checked equal."""
    chars, offsets, weights, kinds, _, _ = matcher.table.arrays()
    runs = [device.to_host(similarity.pair_similarity(
        queries.tokens, queries.offsets, listed.tokens, listed.offsets, pair_query, pair_listed, chars, offsets,
        weights, kinds, alpha=ALPHA, min_token_similarity=MIN_TOKEN_SIMILARITY, swap_penalty=SWAP_PENALTY,
        xp=device.xp, masks=masks, **options)) for masks in (matcher.table.masks(), None)]
    assert np.array_equal(runs[0], runs[1])
    return runs[0]


def assert_same(expected, got, device=None):
    """Bit-for-bit equal scores (same operations in the same order), with the first difference named."""
    assert got.dtype == np.float64 and got.shape == expected.shape
    differ = np.flatnonzero(got.view(np.int64) != expected.view(np.int64))
    assert not len(differ), (f"{len(differ)} of {len(got)} scores differ; first at {differ[0]}: "
                             f"{got[differ[0]]!r} != {expected[differ[0]]!r}")


def compare(matcher: NameMatcher, left, right, device, **options):
    """Numba and vectorised scores of the aligned pairs ``(left[k], right[k])``; checked equal."""
    queries, listed = matcher.encode(left), matcher.encode(right)
    index = np.arange(len(left), dtype=np.int64)
    expected = score_pairs(queries, listed, index, index, matcher.table)
    got = vectorised(matcher, queries, listed, index, index, device, **options)
    assert_same(expected, got, device)
    return expected


# ------------------------------------------------------------------------------ random names
WORDS = ["co", "ltd", "technology", "the", "of", "a", "x", "12", "140", "2b", "s"]
letters = st.text("abcde", min_size=1, max_size=9)
tokens = st.one_of(letters, letters, st.sampled_from(WORDS))
names = st.lists(tokens, max_size=8)


@st.composite
def pair_of_names(draw):
    """A listed name and a query made from it (typos, glued or split words, swaps) or drawn afresh."""
    listed = draw(st.one_of(names, st.lists(tokens, min_size=MAX_TOKENS - 2, max_size=MAX_TOKENS + 4)))
    query = list(listed)
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from(["glue", "split", "typo", "swap", "drop", "add", "repeat", "fresh"]))
        if edit == "glue" and len(query) > 1:
            k = draw(st.integers(0, len(query) - 2))
            query[k:k + 2] = [query[k] + query[k + 1]]
        elif edit == "split" and query and len(query[0]) > 1:
            cut = draw(st.integers(1, len(query[0]) - 1))
            query[:1] = [query[0][:cut], query[0][cut:]]
        elif edit == "typo" and query:
            k = draw(st.integers(0, len(query) - 1))
            word, at = query[k], draw(st.integers(0, len(query[k])))
            query[k] = word[:at] + draw(st.sampled_from("abcdef")) + word[at + 1:] or word
        elif edit == "swap" and len(query) > 1:
            query[0], query[1] = query[1], query[0]
        elif edit == "drop" and query:
            query.pop(draw(st.integers(0, len(query) - 1)))
        elif edit == "add":
            query.insert(draw(st.integers(0, len(query))), draw(tokens))
        elif edit == "repeat" and query:
            query.append(query[0])  # equal similarities: ties broken by position
        elif edit == "fresh":
            query = draw(names)
    return " ".join(query), " ".join(listed)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(pair_of_names(), min_size=1, max_size=12), extra=st.lists(names.map(" ".join), max_size=6))
def test_random_pairs_score_the_same(device, pairs, extra):
    left = [q for q, _ in pairs]
    right = [t for _, t in pairs]
    matcher = NameMatcher(list(dict.fromkeys(right + extra)))  # the weights depend on the listed names
    compare(matcher, left, right, device)
    compare(matcher, right, left, device)


def test_edge_cases_score_the_same(device):
    matcher = NameMatcher(["rami makhlouf", "huawei technologies", "a b c", "ooo 140", "x"])
    left = ["", "rami makhlouf", "", "ramimakhlouf", "rami makh louf", "huawie technologies", "technologies huawei",
            "x", "a", "140", "ooo 141", "abcdefghijklmnopqrstuvwxyz" * 3, "huawei huawei technologies",
            " ".join(["word"] * 30), "a b c d e f g h i j k l m n o p q r s t u v w x y z"]
    right = ["rami makhlouf", "", "", "rami makhlouf", "ramimakhlouf", "huawei technologies", "huawei technologies",
             "x", "a b c", "ooo 140", "ooo 140", "abcdefghijklmnopqrstuvwxyz" * 3, "huawei technologies",
             " ".join(["word"] * 25), "a b c"]
    scores = compare(matcher, left, right, device)
    assert scores[0] == scores[1] == scores[2] == 0.0 and scores[3] == scores[7] == 1.0
    assert scores[4] == 1.0 and 0.9 <= compare(matcher, ["ramimakhlouf"], ["rami makhluof"], device)[0] < 1.0


# ------------------------------------------------------------------------------ the real list
@pytest.fixture(scope="module")
def real_pairs(screen):
    """Blocked candidate pairs of variants of listed names, plus random and long pairs."""
    matcher = screen.matcher
    texts = screen.entries["normalized"].drop_duplicates().sample(100, random_state=4).tolist()
    rng = np.random.default_rng(4)
    queries = []
    for text in texts:
        words = text.split()
        if len(words) > 1 and rng.random() < 0.4:
            k = int(rng.integers(0, len(words) - 1))
            words[k:k + 2] = [words[k] + words[k + 1]]
        k = int(rng.integers(0, len(words)))
        if len(words[k]) > 3 and rng.random() < 0.6:
            j = int(rng.integers(1, len(words[k]) - 1))
            words[k] = words[k][:j - 1] + words[k][j] + words[k][j - 1] + words[k][j + 1:]
        queries.append(" ".join(words))
    longest = sorted(matcher.listed, key=len)[-10:]
    queries += longest + [t.replace(" ", "", 2) for t in longest] + ["", "technology", "co ltd"]
    encoded = matcher.encode(queries)
    pair_query, pair_listed = candidate_pairs(encoded, matcher.table)
    n_listed = len(matcher.listed)
    pair_query = np.concatenate([pair_query, rng.integers(0, len(queries), 3000),
                                 np.arange(len(queries) - 3, len(queries)).repeat(50)])
    pair_listed = np.concatenate([pair_listed, rng.integers(0, n_listed, 3000), rng.integers(0, n_listed, 150)])
    return encoded, pair_query, pair_listed


def test_real_list_pairs_score_the_same(device, screen, real_pairs):
    matcher = screen.matcher
    queries, pair_query, pair_listed = real_pairs
    expected = score_pairs(queries, matcher.listed_arrays, pair_query, pair_listed, matcher.table)
    assert len(expected) > 10_000 and (expected >= 0.9).sum() > 100 and (expected == 0).sum() > 100
    got = vectorised(matcher, queries, matcher.listed_arrays, pair_query, pair_listed, device)
    assert_same(expected, got, device)


def test_small_steps_give_the_same_scores(device, screen, real_pairs):
    """Batches of pairs and OSA chunks cut small (memory bounds) change nothing."""
    matcher = screen.matcher
    queries, pair_query, pair_listed = real_pairs
    pick = np.random.default_rng(5).choice(len(pair_query), 800, replace=False)
    expected = score_pairs(queries, matcher.listed_arrays, pair_query[pick], pair_listed[pick], matcher.table)
    got = vectorised(matcher, queries, matcher.listed_arrays, pair_query[pick], pair_listed[pick], device,
                     max_cells=700)
    assert_same(expected, got, device)


def test_no_pairs(device, screen):
    matcher = screen.matcher
    queries = matcher.encode(["huawei"])
    empty = np.zeros(0, np.int64)
    got = vectorised(matcher, queries, matcher.listed_arrays, empty, empty, device)
    assert got.shape == (0,) and got.dtype == np.float64


def reference_osa(a: str, b: str) -> int:
    rows = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            if i == 0 or j == 0:
                rows[i][j] = i + j
                continue
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[-1][-1]


@settings(max_examples=60, deadline=None)
@given(strings=st.lists(st.tuples(st.text("abc", max_size=20), st.text("abc", max_size=20)), min_size=1, max_size=30))
def test_osa_distances_by_anti_diagonals(device, strings):
    xp = device.xp
    la = np.array([len(a) for a, _ in strings], np.int64)
    lb = np.array([len(b) for _, b in strings], np.int64)

    def matrix(texts, rows, width, fill):
        out = np.full((len(rows), width), fill, np.int32)
        for k, row in enumerate(rows.tolist()):
            out[k, :len(texts[row])] = [ord(c) for c in texts[row]]
        return xp.asarray(out)

    def build(rows, width):
        rows = device.to_host(rows)
        return matrix([a for a, _ in strings], rows, width, -1), matrix([b for _, b in strings], rows, width, -2)

    got = device.to_host(similarity.osa_distances(xp, xp.asarray(la), xp.asarray(lb), build, max_cells=40))
    assert got.tolist() == [reference_osa(a, b) for a, b in strings]


# ------------------------------------------------------------------------------ behind the backend switch
def test_score_pairs_takes_a_backend(device, screen):
    matcher = screen.matcher
    left = ["huawie technologies", "ramimakhlouf", "acme"]
    right = ["huawei technologies", "rami makhlouf", "zenith"]
    assert_same(matcher.score(left, right), matcher.score(left, right, backend=device))
    names = ["huawei technologes", "rami makhlouf trading", "acme widgets"]
    best, scores = matcher.top_matches(names, k=3, backend=device)
    cpu_best, cpu_scores = matcher.top_matches(names, k=3)
    assert_same(cpu_scores.ravel(), scores.ravel())
    assert np.array_equal(best, cpu_best)


def test_assert_same_catches_a_last_bit_difference():
    """The comparison is exact: one ulp off (what a contracted multiply-add gives) fails."""
    expected = np.array([0.1 * 3, 0.7, 0.0])
    assert_same(expected, expected.copy())
    with pytest.raises(AssertionError, match="1 of 3 scores differ; first at 0"):
        assert_same(expected, np.array([np.nextafter(expected[0], 1.0), 0.7, 0.0]))


def test_auto_keeps_pair_scoring_on_the_cpu(fake_gpu, monkeypatch):
    """``auto`` on a working device scores pairs with the Numba loop; ``cupy`` asked for by name
    uses the array form there."""
    calls = []
    original = similarity.pair_similarity

    def spy(*args, **kwargs):
        calls.append(kwargs["xp"])
        return original(*args, **kwargs)

    monkeypatch.setattr(similarity, "pair_similarity", spy)
    matcher = NameMatcher(["huawei technologies", "rami makhlouf"])
    left, right = ["huawie technologies", "ramimakhlouf"], ["huawei technologies", "rami makhlouf"]
    auto = select_backend("auto")
    assert auto.name == "cupy" and not auto.scores_pairs_on_device
    assert_same(matcher.score(left, right), matcher.score(left, right, backend=auto))
    assert_same(matcher.score(left, right), matcher.score(left, right, backend="auto"))
    assert calls == []
    explicit = select_backend("cupy")
    assert explicit.scores_pairs_on_device
    assert_same(matcher.score(left, right), matcher.score(left, right, backend=explicit))
    assert calls == [sys.modules["cupy"]]


def test_match_names_on_the_fake_device(fake_gpu, tmp_path, monkeypatch):
    calls = []
    original = similarity.pair_similarity

    def spy(*args, **kwargs):
        calls.append(kwargs["xp"])
        return original(*args, **kwargs)

    monkeypatch.setattr(similarity, "pair_similarity", spy)
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"id": range(7),
                  "query": ["Huawei Technologies Co Ltd", "Huawie Technologies", "Acme Widgets", "", "Rami Makhlouf",
                            "Ramimakhlouf", "Semiconductor Manufacturing Intl"],
                  "candidate": ["HUAWEI TECHNOLOGIES", "Huawei Technologies", "Zenith Holdings", "Acme",
                                "Makhlouf, Rami", "Rami Makhlouf", "Semiconductor Manufacturing International"]}
                 ).to_csv(pairs, index=False)
    outputs = {}
    for backend in ("cupy", "numpy"):
        out = tmp_path / f"{backend}.csv"
        result = CliRunner().invoke(app, ["match-names", "--pairs", str(pairs), "--out", str(out),
                                          "--backend", backend])
        assert result.exit_code == 0, result.output
        outputs[backend] = pd.read_csv(out)
    assert len(calls) == 1 and calls[0] is sys.modules["cupy"]  # the cupy run took the vectorised form
    pd.testing.assert_frame_equal(outputs["cupy"], outputs["numpy"])
    assert outputs["cupy"]["outcome"].tolist()[0] == "block" and outputs["cupy"]["outcome"].tolist()[2] == "clear"


def test_match_names_backend_errors(fake_gpu, tmp_path):
    fake_gpu(devices=0)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("query,candidate\nacme,acme\n")
    failed = CliRunner().invoke(app, ["match-names", "--pairs", str(pairs), "--out", str(tmp_path / "o.csv"),
                                      "--backend", "cupy"])
    assert failed.exit_code == 1 and "cannot run here" in failed.output
    auto = CliRunner().invoke(app, ["match-names", "--pairs", str(pairs), "--out", str(tmp_path / "o.csv"),
                                    "--backend", "auto"])
    assert auto.exit_code == 0, auto.output
    wrong = CliRunner().invoke(app, ["match-names", "--pairs", str(pairs), "--out", str(tmp_path / "o.csv"),
                                     "--backend", "tpu"])
    assert wrong.exit_code == 1 and "must be one of" in wrong.output


def test_party_screen_on_the_fake_device(fake_gpu, screen):
    names = ["Huawei Technologes Co", "Rami Makhluf", "Acme Widgets GmbH", "", "Semiconductor Manufacturing Intl"]
    deny, review = ["EL", "SDN"], ["UVL"]
    on_gpu = screen.screen(names, deny, review, backend=select_backend("cupy"))
    on_cpu = screen.screen(names, deny, review)
    pd.testing.assert_frame_equal(on_gpu, on_cpu)
    pd.testing.assert_frame_equal(on_gpu.attrs["matches"].frame, on_cpu.attrs["matches"].frame)


# ------------------------------------------------------------------------------ the CPU scorer's shortcuts
@settings(max_examples=300, deadline=None)
@given(a=st.text("abcdé1 ", max_size=14), b=st.text("abcdé1 ", max_size=14), cap=st.integers(0, 6))
def test_cpu_shortcuts_bound_the_osa_distance(a, b, cap):
    """The character-mask bound never exceeds the distance, and the capped distance is exact up
    to the cap and above it otherwise: so skipping on them changes no score."""
    from kernels.pair_scores import fewest_edits as _fewest_edits, osa as _osa

    chars = np.array([ord(c) for c in a + b], np.int32)
    offsets = np.array([0, len(a), len(a) + len(b)], np.int64)
    masks = similarity.char_masks(chars, offsets)
    true = reference_osa(a, b)
    bound = _fewest_edits(masks[0], masks[1])
    assert bound <= true
    assert similarity.fewest_edits(np, masks[:1], masks[1:]).tolist() == [bound]
    rows = [np.empty(len(b) + 1, np.int64) for _ in range(3)]
    got = _osa(chars, 0, len(a), len(a), len(a) + len(b), *rows, cap)
    assert got == true if true <= cap else got > cap
