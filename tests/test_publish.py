"""Outputs appear all at once; a failed run leaves the previous results intact."""
import os

import pytest

from pipeline.publish import run_folder, runs_folder


def test_a_run_replaces_the_previous_one_whole(tmp_path):
    out = tmp_path / "results"
    with run_folder(out) as run:
        (run / "summary.json").write_text("first")
        assert not out.exists()  # nothing visible before the run succeeds
    assert (out / "summary.json").read_text() == "first"
    with run_folder(out) as run:
        (run / "summary.json").write_text("second")
        (run / "decisions.parquet").write_text("rows")
        assert (out / "summary.json").read_text() == "first"
    assert sorted(os.listdir(out)) == ["decisions.parquet", "summary.json"]
    assert len(list(runs_folder(out).iterdir())) == 1  # the first run's folder is gone


def test_a_failed_run_leaves_the_previous_results(tmp_path):
    out = tmp_path / "results"
    with run_folder(out) as run:
        (run / "summary.json").write_text("good")
    with pytest.raises(RuntimeError):
        with run_folder(out) as run:
            (run / "summary.json").write_text("half")
            raise RuntimeError("screening failed")
    assert (out / "summary.json").read_text() == "good"
    assert len(list(runs_folder(out).iterdir())) == 1


def test_a_plain_folder_from_before_is_replaced_and_a_died_run_cleaned(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "old.txt").write_text("old")
    runs_folder(out).mkdir()
    (runs_folder(out) / "20260101T000000Z-died").mkdir()  # a run killed before it published
    with run_folder(out) as run:
        (run / "new.txt").write_text("new")
    assert os.listdir(out) == ["new.txt"]
    assert [p.name for p in runs_folder(out).iterdir()] == [os.readlink(out).split("/")[-1]]
