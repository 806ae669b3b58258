"""Party results of real list-derived names, pinned before the restructuring into stages (issue 2).

``tests/data/party-results-expected.csv`` was computed by the single-method screen (before
``pipeline.parties`` became a package): 446 names, every other query of
``benchmarks/eval/csl-pairs.csv`` and of ``benchmarks/eval/qualifier-pairs.csv`` (with its
destination), screened by rule set ``post-rescission-2025``; ``party_score`` as ``float.hex``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.parties import MATCH_COLUMNS, PartyScreen, write_party_matches
from pipeline.policy import load_policy

EXPECTED = Path(__file__).resolve().parent / "data" / "party-results-expected.csv"
TEXT = ["normalized", "party_match", "party_list", "party_entry_id", "outcome", "party_tokens", "review_status"]


@pytest.fixture(scope="module")
def screen() -> PartyScreen:
    return PartyScreen.from_path()


def test_party_results_equal_the_pinned_ones_row_for_row(screen):
    expected = pd.read_csv(EXPECTED, dtype=str, keep_default_na=False)
    result = screen.screen_policy(expected["name"].tolist(), load_policy("post-rescission-2025"),
                                  countries=expected["country"].tolist())
    for column in TEXT:
        assert result[column].fillna("").tolist() == expected[column].tolist(), column
    scores = [value.hex() if value == value else "" for value in result["party_score"].tolist()]
    assert scores == expected["party_score"].tolist()  # bit for bit


@pytest.mark.parametrize("names", [[], ["Zzqxv Wroblk Qupt"]], ids=["no names", "no matches"])
def test_empty_party_matches_have_the_types_of_a_normal_run(screen, tmp_path, names):
    normal = screen.screen(["Huawei Technologies Co Ltd"], ["EL"], ["UVL"])
    write_party_matches(normal, tmp_path / "normal.parquet")
    empty = screen.screen(names, ["EL"], ["UVL"])
    write_party_matches(empty, tmp_path / "empty.parquet")
    assert pq.read_schema(tmp_path / "normal.parquet").names[:len(MATCH_COLUMNS)] == MATCH_COLUMNS
    assert pq.read_schema(tmp_path / "empty.parquet").types == pq.read_schema(tmp_path / "normal.parquet").types
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0
    no_attrs = empty.copy()
    no_attrs.attrs = {}
    write_party_matches(no_attrs, tmp_path / "bare.parquet")
    assert pq.read_schema(tmp_path / "bare.parquet").types == pq.read_schema(tmp_path / "normal.parquet").types
