"""Outputs under hostile conditions: refused destinations, faults at every write, empty ledgers."""
import json
import os
import shutil
from itertools import count
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import pipeline.report
import pipeline.run.run
from conftest import shipment, write_ledger
from pipeline import lake_screen
from pipeline.audit import audit_ledgers, diff_ledgers
from flows.cli import app
from pipeline.lake import ingest
from pipeline.lake_screen import screen_lake, screened_in_run
from pipeline.policy import load_policy
from pipeline.publish import PublishError, PublishWarning, runs_folder
from pipeline.screen import screen_ledgers

runner = CliRunner()
HEADER = ("shipment_id,ship_date,status,consignee_name,destination_country,sku,quantity,"
          "recorded_authorization\n")


def snapshot(out: Path) -> dict:
    """Every file published at ``out``: relative path → bytes."""
    real = Path(os.path.realpath(out))
    return {str(p.relative_to(real)): p.read_bytes() for p in sorted(real.rglob("*")) if p.is_file()}


WRITERS = [(pq, "write_table"), (pd.DataFrame, "to_parquet"), (Path, "write_text"), (os, "replace"),
           (os, "symlink"), (os, "rename"), (os, "link"), (pipeline.report, "write_report"),
           (pipeline.report, "write_csv")]


class Faults:
    """Make the k-th call of any writer in :data:`WRITERS` raise ``OSError``."""

    def __init__(self, patch, k):
        self.k, self.calls = k, 0
        for owner, name in WRITERS:
            original = getattr(owner, name)
            patch.setattr(owner, name, self._wrap(original))

    def _wrap(self, original):
        def writer(*args, **kwargs):
            self.calls += 1
            if self.calls == self.k:
                raise OSError(f"injected fault at write {self.k}")
            return original(*args, **kwargs)
        return writer

    @property
    def fired(self):
        return self.calls >= self.k


def rows(prefix, n, month="2025-03"):
    return [shipment(f"{prefix}{i:03d}", f"{month}-{1 + i % 27:02d}", quantity=1 + i,
                     consignee_name=f"Compute {prefix} {i % 5}", recorded_authorization="LPP")
            for i in range(n)]


# ------------------------------------------------------------------------------------ D1, D4
def test_lake_screen_and_nightly_refuse_an_out_they_did_not_publish(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    ingest([write_ledger(rows("H", 20), tmp_path / "h.parquet")], lake)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    for out in (".", "lake", "lake/sub", "mine"):
        for command in (["screen", "--lake", "lake", "-p", "ai-diffusion-2025", "--scheduler", "none", "-q"],
                        ["nightly", "--lake", "lake", "--scheduler", "none"]):
            result = runner.invoke(app, command + ["-o", out])
            assert result.exit_code == 1, (out, result.output)
            assert "error:" in result.output and "--out" in result.output and "Traceback" not in result.output
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing deleted, nothing added
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_plain_screen_refuses_a_folder_with_files_and_an_out_holding_its_input(tmp_path, monkeypatch):
    ledger = write_ledger(rows("A", 3), tmp_path / "l.csv")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "decisions.parquet").write_text("not ours")
    for out in (tmp_path / "old", tmp_path):
        result = runner.invoke(app, ["screen", str(ledger), "-p", "ai-diffusion-2025", "-o", str(out), "-q"])
        assert result.exit_code == 1 and "--out" in result.output, result.output
    assert (tmp_path / "old" / "decisions.parquet").read_text() == "not ours" and ledger.is_file()


def test_an_unwritable_out_fails_before_the_ledger_is_read(tmp_path, monkeypatch):
    import pipeline.screen

    ledger = write_ledger(rows("A", 3), tmp_path / "l.csv")
    monkeypatch.setattr(pipeline.screen, "read_ledgers", lambda *a, **k: pytest.fail("screened before the check"))
    for out in (ledger, ledger / "out", Path("/proc/chipscreen-out")):
        result = runner.invoke(app, ["screen", str(ledger), "-p", "ai-diffusion-2025", "-o", str(out), "-q"])
        assert result.exit_code == 1 and "error:" in result.output and "--out" in result.output, result.output


def test_diff_never_uses_a_rule_set_id_as_a_path(tmp_path):
    ledger = write_ledger(rows("A", 5), tmp_path / "l.csv")
    out = tmp_path / "work" / "diff"
    for hostile in ("../../x", "", "."):
        result = runner.invoke(app, ["diff", str(ledger), "-p", "ai-diffusion-2025", "-p", "ai-diffusion-2025",
                                     "--set", f"id={hostile}", "-o", str(out), "-q"])
        assert result.exit_code in (0, 1) and "Traceback" not in result.output, result.output
        assert {p.name for p in tmp_path.iterdir()} <= {"l.csv", "work"}
        assert not (tmp_path / "x").exists() and not (tmp_path / "work" / "x").exists()
        if result.exit_code == 0:
            assert sorted(os.listdir(out)) == ["a", "b", "changes.csv", "changes.parquet", "report.html",
                                               "summary.json"]
    first, second = load_policy("ai-diffusion-2025"), load_policy("ai-diffusion-2025", ["lpp.limit_tpp=1"])
    result = diff_ledgers([ledger], first, second, tmp_path / "same-id")
    assert result.summary["folders"] == {"ai-diffusion-2025-a": "a", "ai-diffusion-2025-b": "b"}
    for folder, rules in (("a", []), ("b", ["lpp.limit_tpp=1"])):
        summary = json.loads((tmp_path / "same-id" / folder / "summary.json").read_text())
        assert summary["policy"]["overrides"] == rules


# ------------------------------------------------------------------------------------ D2
@pytest.mark.parametrize("command", ["screen", "audit", "diff"])
def test_a_fault_at_any_write_leaves_the_previous_outputs_whole(tmp_path, monkeypatch, command):
    policy, other = load_policy("ai-diffusion-2025"), load_policy("post-rescission-2025")
    first = write_ledger(rows("A", 6), tmp_path / "first.csv")
    second = write_ledger(rows("B", 9), tmp_path / "second.csv")
    out = tmp_path / "out"

    def run(ledger):
        if command == "screen":
            screen_ledgers([ledger], policy, out)
        elif command == "audit":
            audit_ledgers([ledger], policy, out)
        else:
            diff_ledgers([ledger], policy, other, out)

    run(first)
    published = snapshot(out)
    for k in count(1):
        with monkeypatch.context() as patch:
            faults = Faults(patch, k)
            try:
                run(second)
            except OSError as error:
                assert "injected" in str(error)
            else:
                assert not faults.fired, f"write {k} failed silently"
        if not faults.fired:
            break
        assert snapshot(out) == published, f"fault at write {k} changed the published outputs"
        assert [p.name for p in runs_folder(out).iterdir()] == [os.readlink(out).split("/")[-1]], k
    assert k > 5
    now = snapshot(out)
    assert now.keys() == published.keys() and now != published  # the new run, complete


# ------------------------------------------------------------------------------------ D3
def lake_state(tmp_path):
    """A lake screened once into ``out``, then given new rows: the state before tonight's run."""
    base = tmp_path / "pristine"
    base.mkdir()
    policy = load_policy("ai-diffusion-2025")
    ingest([write_ledger(rows("H", 12, "2025-03"), tmp_path / "h.parquet")], base / "lake")
    screen_lake(base / "lake", policy, base / "out", scheduler="none")
    ingest([write_ledger(rows("T", 7, "2025-04"), tmp_path / "t.parquet")], base / "lake")
    return base, policy


def published_ids(out):
    return sorted(pq.read_table(Path(out) / "decisions.parquet").column("shipment_id").to_pylist())


def screened_ids(out):
    return sorted(screened_in_run(out).column("shipment_id").to_pylist())


EVERY_ROW = [f"H{i:03d}" for i in range(12)] + [f"T{i:03d}" for i in range(7)]
"""The rows of :func:`lake_state`'s lake: every published output holds them all."""


def test_a_fault_at_any_write_of_a_lake_run_never_loses_tonights_rows(tmp_path, monkeypatch):
    base, policy = lake_state(tmp_path)
    tonight = [f"T{i:03d}" for i in range(7)]
    previous = snapshot(base / "out")
    for k in count(1):
        work = tmp_path / f"k{k}"
        shutil.copytree(base, work, symlinks=True)
        with monkeypatch.context() as patch:
            faults = Faults(patch, k)
            try:
                screen_lake(work / "lake", policy, work / "out", scheduler="none")
                failed = False
            except OSError as error:
                assert "injected" in str(error)
                failed = True
        if not faults.fired:
            break
        now = snapshot(work / "out")
        # Either untouched, or the complete new run (a fault after the switch: checkpoint not moved).
        assert now == previous or (published_ids(work / "out") == EVERY_ROW and screened_ids(work / "out") == tonight
                                   and "summary.json" in now and "report.html" in now), k
        if failed:
            again = screen_lake(work / "lake", policy, work / "out", scheduler="none")
            assert again.plan.mode != "unchanged" and screened_ids(work / "out") == tonight, k
            assert published_ids(work / "out") == EVERY_ROW, k
        shutil.rmtree(work)
    assert k > 10


def test_the_checkpoint_moves_only_after_the_publish(tmp_path, monkeypatch):
    base, policy = lake_state(tmp_path)
    monkeypatch.setattr(pipeline.run.run, "publish_run", lambda *a, **k: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        screen_lake(base / "lake", policy, base / "out", scheduler="none")
    monkeypatch.undo()
    run = screen_lake(base / "lake", policy, base / "out", scheduler="none")
    assert run.plan.mode == "incremental" and run.scan.rows == 7
    assert published_ids(base / "out") == EVERY_ROW and screened_ids(base / "out") == [f"T{i:03d}" for i in range(7)]


def test_unchanged_only_when_out_still_holds_the_last_run(tmp_path):
    base, policy = lake_state(tmp_path)
    lake = base / "lake"
    assert screen_lake(lake, policy, base / "out", scheduler="none").plan.mode == "incremental"
    published = snapshot(base / "out")
    for _ in range(2):  # nothing new, and the out holds the last run: unchanged, night after night
        again = screen_lake(lake, policy, base / "out", scheduler="none")
        assert again.plan.mode == "unchanged" and "are current" in again.summary["lake"]["why"]
        assert snapshot(base / "out") == published and published_ids(base / "out") == EVERY_ROW
        assert len(list(runs_folder(base / "out").iterdir())) == 1  # the fresh run folder is discarded
    # Into a folder that does not hold it: every row again, carried from the checkpoint, none screened.
    other = screen_lake(lake, policy, tmp_path / "elsewhere", scheduler="none")
    assert other.plan.mode == "unchanged" and other.scan.rows == 0 and "are current" not in other.summary["lake"]["why"]
    assert published_ids(tmp_path / "elsewhere") == EVERY_ROW and screened_ids(tmp_path / "elsewhere") == []
    assert other.summary["lake"]["decisions"] == {"carried_files": 2, "screened_files": []}
    # A checkpoint that does not say where its run went (an earlier version, maybe a crash): the
    # published folder is not taken as current; the complete set is published again.
    [folder] = [p for p in (lake / "checkpoints").iterdir() if not p.name.startswith(".")]
    meta = json.loads((folder / "checkpoint.json").read_text())
    del meta["published"]
    (folder / "checkpoint.json").write_text(json.dumps(meta))
    again = screen_lake(lake, policy, tmp_path / "elsewhere", scheduler="none")
    assert again.plan.mode == "unchanged" and again.scan.rows == 0 and published_ids(tmp_path / "elsewhere") == EVERY_ROW
    # A checkpoint that lost a decisions file cannot complete a set: everything is screened again.
    [folder] = [p for p in (lake / "checkpoints").iterdir() if not p.name.startswith(".")]
    next((folder / "parts").glob("*.decisions-0.parquet")).unlink()
    again = screen_lake(lake, policy, tmp_path / "elsewhere", scheduler="none")
    assert again.plan.mode == "full" and again.scan.rows == 19 and published_ids(tmp_path / "elsewhere") == EVERY_ROW


# ------------------------------------------------------------------------------------ C1
@pytest.mark.parametrize("case", ["header only", "all rows bad", "as-of before every row"])
def test_no_accepted_row_gives_valid_empty_outputs(tmp_path, case):
    ledger = tmp_path / "l.csv"
    body = {"header only": "", "all rows bad": "X1,not-a-date,shipped,A,IN,NVIDIA-H100-SXM,1,\n",
            "as-of before every row": "X1,2025-03-01,shipped,A,IN,NVIDIA-H100-SXM,1,LPP\n"}[case]
    ledger.write_text(HEADER + body)
    extra = ["--as-of", "2020-01-01"] if case.startswith("as-of") else []
    commands = {"screen": ["screen", str(ledger), "-p", "ai-diffusion-2025"],
                "audit": ["audit", str(ledger), "-p", "ai-diffusion-2025"],
                "diff": ["diff", str(ledger), "-p", "ai-diffusion-2025", "-p", "post-rescission-2025"]}
    for name, command in commands.items():
        out = tmp_path / name
        result = runner.invoke(app, command + ["-o", str(out), "-q"] + extra)
        assert result.exit_code == 0, (name, result.output)
        for path in out.rglob("*.parquet"):
            table = pq.read_table(path)
            assert table.num_rows == (1 if case == "all rows bad" and path.name == "quarantine.parquet" else 0)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["rows"]["accepted"] == 0 and (out / "report.html").is_file()
    normal = tmp_path / "normal.csv"
    normal.write_text(HEADER + "N1,2025-03-01,shipped,Huawei Technologies Co Ltd,AE,NVIDIA-H100-SXM,1,LPP\n")
    assert runner.invoke(app, ["screen", str(normal), "-p", "ai-diffusion-2025", "-o", str(tmp_path / "n"),
                               "-q"]).exit_code == 0
    assert pq.read_schema(tmp_path / "screen" / "parties.parquet").remove_metadata().equals(
        pq.read_schema(tmp_path / "n" / "parties.parquet").remove_metadata())  # empty, typed as a normal run


def test_an_empty_lake_and_a_replay_before_every_row_give_empty_outputs(tmp_path):
    (tmp_path / "empty.csv").write_text(HEADER)
    ingest([tmp_path / "empty.csv"], tmp_path / "empty-lake")
    ingest([write_ledger(rows("H", 5), tmp_path / "h.parquet")], tmp_path / "lake")
    for lake, extra in (("empty-lake", []), ("lake", ["--as-of", "2020-01-01"])):
        out = tmp_path / f"out-{lake}"
        result = runner.invoke(app, ["screen", "--lake", str(tmp_path / lake), "-p", "ai-diffusion-2025",
                                     "--scheduler", "none", "-o", str(out), "-q"] + extra)
        assert result.exit_code == 0, result.output
        assert pq.read_table(out / "decisions.parquet").num_rows == 0
        assert json.loads((out / "summary.json").read_text())["rows"]["screened_this_run"] == 0


# ------------------------------------------------------------------------------------ C11, messages
def test_scheduler_addresses_and_lake_errors_are_clear(tmp_path, monkeypatch):
    ingest([write_ledger(rows("H", 5), tmp_path / "h.parquet")], tmp_path / "lake")
    base = ["screen", "--lake", str(tmp_path / "lake"), "-p", "ai-diffusion-2025", "-o", str(tmp_path / "o"), "-q"]
    result = runner.invoke(app, base + ["--scheduler", "not an address"])
    assert result.exit_code == 1 and "--scheduler" in result.output and "Traceback" not in result.output
    monkeypatch.setattr(lake_screen, "CONNECT_TIMEOUT_S", 1)
    result = runner.invoke(app, base + ["--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1 and "cannot reach the Dask scheduler" in result.output, result.output
    assert not (tmp_path / "o").exists() and not runs_folder(tmp_path / "o").exists()
    result = runner.invoke(app, ["screen", "--lake", str(tmp_path / "nothing"), "-p", "ai-diffusion-2025",
                                 "-o", str(tmp_path / "o2"), "-q"])
    assert result.exit_code == 1 and "not a ledger lake" in result.output
    assert "error: 1" not in result.output and result.output.count("error:") == 1


def test_publish_error_is_a_runtime_error():
    assert issubclass(PublishError, RuntimeError)  # every command reports it as `error: ...`


# ------------------------------------------------------------------------------------ re-runs, user files
def test_a_rerun_with_nothing_new_keeps_the_published_decisions(tmp_path, monkeypatch):
    from pipeline.lake_screen import screen_lake_in
    from pipeline.run.run import Run

    monkeypatch.chdir(tmp_path)
    ingest([write_ledger(rows("H", 12), tmp_path / "h.csv")], tmp_path / "lake")
    command = ["screen", "--lake", "lake", "-p", "post-rescission-2025", "-o", "out", "--scheduler", "none", "-q"]
    first = runner.invoke(app, command)
    assert first.exit_code == 0, first.output
    published = snapshot(tmp_path / "out")
    second = runner.invoke(app, command)
    assert second.exit_code == 0 and "unchanged" in second.output and "are current" in second.output, second.output
    assert snapshot(tmp_path / "out") == published and len(published_ids(tmp_path / "out")) == 12
    policy = load_policy("post-rescission-2025")
    with Run.open(tmp_path / "out", keep=[tmp_path / "lake"]) as run:  # as the nightly flow runs it
        assert screen_lake_in(run, tmp_path / "lake", policy, scheduler="none").plan.mode == "unchanged"
    assert snapshot(tmp_path / "out") == published
    assert [p.name for p in runs_folder(tmp_path / "out").iterdir()] == [os.readlink(tmp_path / "out").split("/")[-1]]


def test_files_a_user_adds_to_out_or_its_runs_folder_are_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_ledger(rows("A", 5), tmp_path / "hu.csv")
    command = ["screen", "hu.csv", "-p", "ai-diffusion-2025", "-o", "ox", "-q"]
    assert runner.invoke(app, command).exit_code == 0
    (tmp_path / "ox" / "notes.txt").write_text("notes")
    lookalike = tmp_path / ".ox.runs" / "20200101T000001Z-bbbbbbbb"
    lookalike.mkdir()
    (lookalike / "user.txt").write_text("mine")
    first = os.readlink(tmp_path / "ox")
    with pytest.warns(PublishWarning) as caught:
        result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    kept = " ".join(str(w.message) for w in caught)
    assert lookalike.name in kept and first.split("/")[-1] in kept
    from flows.cli.base import _print_warning  # how the command shows them

    capsys.readouterr()
    _print_warning(caught[0].message, PublishWarning, "x.py", 1)
    assert capsys.readouterr().err.startswith("warning: kept ")
    assert (tmp_path / first / "notes.txt").read_text() == "notes" and (lookalike / "user.txt").read_text() == "mine"
    with pytest.warns(PublishWarning):  # the two kept folders, named again
        third = runner.invoke(app, command)  # the run it replaces held only its own files: removed
    assert third.exit_code == 0 and len(list((tmp_path / ".ox.runs").iterdir())) == 3


@pytest.mark.parametrize("out", ["", " "])
def test_an_empty_out_is_refused(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    write_ledger(rows("A", 3), tmp_path / "l.csv")
    before = sorted(os.listdir(tmp_path))
    for command in (["screen", "l.csv", "-p", "ai-diffusion-2025", "-q"],
                    ["audit", "l.csv", "-p", "ai-diffusion-2025", "-q"]):
        result = runner.invoke(app, command + ["-o", out])
        assert result.exit_code == 1 and "error:" in result.output and "--out" in result.output, result.output
    assert sorted(os.listdir(tmp_path)) == before and os.path.isdir(tmp_path)


def test_generate_and_match_names_never_overwrite_an_input_a_lake_or_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["generate", "g.csv", "--rows", "20", "-q"]).exit_code == 0
    ingest([tmp_path / "g.csv"], tmp_path / "lk")
    (tmp_path / "mf.csv").write_text("query,candidate\nacme,acme co\n")
    (tmp_path / "dir").mkdir()
    before = snapshot(tmp_path)
    for command in (["generate", "g.csv", "--after", "g.csv", "--rows", "10"],
                    ["generate", "lk/manifest.json", "--rows", "5"], ["generate", "lk/new.csv", "--rows", "5"],
                    ["generate", "x.txt", "--rows", "5"], ["generate", "dir", "--rows", "5"],
                    ["generate", "", "--rows", "5"],
                    ["match-names", "--pairs", "mf.csv", "--out", "mf.csv"],
                    ["match-names", "--pairs", "mf.csv", "--out", "lk/manifest.json"],
                    ["match-names", "--pairs", "mf.csv", "--out", "dir"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1 and "error:" in result.output, (command, result.output)
        assert "Traceback" not in result.output
    assert snapshot(tmp_path) == before
    quiet = runner.invoke(app, ["generate", "next.csv", "--after", "g.csv", "--rows", "5", "-q"])
    assert quiet.exit_code == 0 and quiet.output == "" and (tmp_path / "next.csv").is_file()


def test_generate_and_match_names_never_write_into_a_published_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["generate", "g.csv", "--rows", "20", "-q"]).exit_code == 0
    assert runner.invoke(app, ["screen", "g.csv", "-p", "ai-diffusion-2025", "-o", "s1", "-q"]).exit_code == 0
    (tmp_path / "mf.csv").write_text("query,candidate\nacme,acme co\n")
    before = snapshot(tmp_path)
    for command in (["generate", "s1/decisions.parquet", "--rows", "5"],
                    ["generate", "s1/new.csv", "--rows", "5"],
                    ["match-names", "--pairs", "mf.csv", "--out", "s1/scored.csv"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1 and "published run" in result.output, (command, result.output)
    assert snapshot(tmp_path) == before


def test_unchanged_needs_the_published_files_intact(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ingest([write_ledger(rows("H", 12), tmp_path / "h.csv")], tmp_path / "lake")
    command = ["screen", "--lake", "lake", "-p", "post-rescission-2025", "-o", "out", "--scheduler", "none", "-q"]
    assert runner.invoke(app, command).exit_code == 0
    part = next((tmp_path / "out" / "decisions.parquet").glob("*.parquet"))
    part.unlink()  # a published file lost after the run
    again = runner.invoke(app, command)
    assert again.exit_code == 0 and "are current" not in again.output, again.output
    assert len(published_ids(tmp_path / "out")) == 12  # screened and published again, complete


def test_full_says_why_it_screens_everything(tmp_path):
    base, policy = lake_state(tmp_path)
    run = screen_lake(base / "lake", policy, base / "out", scheduler="none", incremental=False)
    assert run.plan.mode == "full" and run.plan.why.startswith("--full")
