"""Outputs appear all at once; a failed run leaves the previous results intact."""
import os

import pytest

from pipeline.publish import MARKER, PublishError, PublishWarning, check_output_file, new_run, run_folder, runs_folder


def listing(out):
    """The files published at ``out``, without the tool's record of them."""
    return sorted(name for name in os.listdir(out) if name != MARKER)


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
    assert listing(out) == ["decisions.parquet", "summary.json"]
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
    assert listing(out) == ["new.txt"]
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


@pytest.mark.filterwarnings("ignore::pipeline.publish.PublishWarning")  # the kept folders, again each run
def test_files_a_user_adds_are_never_deleted(tmp_path):
    out = tmp_path / "results"
    with run_folder(out) as run:
        (run / "decisions.parquet").mkdir()
        (run / "decisions.parquet" / "part-00000.parquet").write_text("rows")
    first = os.readlink(out)
    (out / "notes.txt").write_text("mine")  # added to the published results
    lookalike = runs_folder(out) / "20200101T000001Z-bbbbbbbb"  # named like a run, not one
    lookalike.mkdir()
    (lookalike / "user.txt").write_text("mine too")
    with pytest.warns(PublishWarning) as caught:
        with run_folder(out) as run:
            (run / "summary.json").write_text("second")
    kept = " ".join(str(w.message) for w in caught)
    assert first.split("/")[-1] in kept and lookalike.name in kept
    assert (tmp_path / first / "notes.txt").read_text() == "mine"
    assert (lookalike / "user.txt").read_text() == "mine too"
    assert listing(out) == ["summary.json"]
    # A run folder holding only what the tool wrote goes; one whose file was changed stays.
    second = os.readlink(out)
    with run_folder(out) as run:
        pass
    assert not (tmp_path / second).exists()
    third = os.readlink(out)
    (out / MARKER).write_text("{}")  # a record that lists nothing: nothing is taken as the tool's
    with pytest.warns(PublishWarning, match=third.split("/")[-1]):
        with run_folder(out) as run:
            (run / "x").write_text("x")
    assert (tmp_path / third / MARKER).is_file()
    fourth = os.readlink(out)
    (out / "x").write_text("edited by hand")
    with pytest.warns(PublishWarning, match=fourth.split("/")[-1]):
        with run_folder(out):
            pass
    assert (tmp_path / fourth / "x").read_text() == "edited by hand"


@pytest.mark.parametrize("out", ["", " ", "."])
def test_an_empty_out_or_the_current_folder_is_refused(tmp_path, monkeypatch, out):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(PublishError, match="--out"):
        new_run(out)
    with pytest.raises(PublishError, match="current folder"):
        new_run(tmp_path)
    assert os.listdir(tmp_path) == ["here"]


def test_an_output_file_may_not_be_an_input_a_folder_or_in_a_lake(tmp_path):
    from pipeline.lake import ingest
    from conftest import shipment, write_ledger

    ledger = write_ledger([shipment("A1")], tmp_path / "l.csv")
    ingest([ledger], tmp_path / "lake")
    (tmp_path / "link.csv").symlink_to(ledger)
    for path, inputs, why in ((ledger, [ledger], "input"), (tmp_path / "link.csv", [ledger], "input"),
                              (tmp_path / "lake" / "manifest.json", [], "lake"),
                              (tmp_path / "lake" / "new" / "x.csv", [], "lake"), (tmp_path, [], "folder"),
                              ("", [], "empty"), (tmp_path / "x.txt", [], "extension")):
        with pytest.raises(PublishError, match=why):
            check_output_file(path, inputs, suffixes=(".csv",))
    check_output_file(tmp_path / "new.csv", [ledger], suffixes=(".csv",))
