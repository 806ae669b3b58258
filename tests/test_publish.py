"""Outputs appear all at once; a failed run leaves the previous results intact."""
import os

import pytest

from pipeline.publish import PublishError, new_run, run_folder, runs_folder


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


def test_an_empty_folder_is_replaced_and_only_runs_the_tool_made_are_cleaned(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    runs_folder(out).mkdir()
    (runs_folder(out) / "20260101T000000Z-died").mkdir()  # a run killed before it published
    (runs_folder(out) / "notes.txt").write_text("mine")  # not a name the tool makes
    with run_folder(out) as run:
        (run / "new.txt").write_text("new")
    assert os.listdir(out) == ["new.txt"]
    assert sorted(p.name for p in runs_folder(out).iterdir()) == sorted([os.readlink(out).split("/")[-1], "notes.txt"])


@pytest.mark.parametrize("kind", ["folder with files", "file", "foreign link"])
def test_what_the_tool_did_not_publish_is_refused_before_any_work_and_left_alone(tmp_path, kind):
    out = tmp_path / "results"
    if kind == "folder with files":
        out.mkdir()
        (out / "thesis.tex").write_text("years of work")
    elif kind == "file":
        out.write_text("a file")
    else:
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(PublishError, match="--out"):
        with run_folder(out):
            raise AssertionError("the run must not start")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert not runs_folder(out).exists()


def test_out_may_not_be_or_hold_what_the_run_keeps(tmp_path):
    lake = tmp_path / "data" / "lake"
    lake.mkdir(parents=True)
    for out in (lake, tmp_path / "data", lake / "inside"):
        with pytest.raises(PublishError, match="lake"):
            new_run(out, [lake])
    with run_folder(tmp_path / "res") as run:  # a lake put inside a published run would go with it
        pass
    with pytest.raises(PublishError):
        new_run(tmp_path / "res", [tmp_path / "res" / "lake"])
    assert os.path.isdir(tmp_path / "res") and lake.is_dir()


def test_an_unwritable_out_fails_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PublishError, match="cannot write"):
        new_run(tmp_path / "file" / "out")
    with pytest.raises(PublishError, match="cannot write"):
        new_run("/proc/chipscreen-out")
