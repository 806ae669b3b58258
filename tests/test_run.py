"""One run (DESIGN §9): each output written once, the backend and party cache owned by the run,
result types apart from the jobs, and an import graph without cycles."""
import ast
import os
import shutil
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import pipeline.report
from conftest import write_ledger
from kernels.backend import Backend
from pipeline.audit import audit_ledgers, diff_ledgers
from pipeline.lake import ingest
from pipeline.lake_screen import screen_lake
from pipeline.policy import load_policy
from pipeline.publish import MARKER
from pipeline.run.cache import PartyResultCache
from pipeline.run.sink import OutputWrittenTwiceError, Sink
from pipeline.screen import screen_ledgers
from test_differential import random_rows

REPO = Path(__file__).resolve().parents[1]
TEMPORARY = (".partial", ".tmp")


class Landings:
    """Every file that lands in a run folder: renamed into place, written there under its own name, or
    linked (copied) there from a checkpoint."""

    def __init__(self, patch):
        self.paths = Counter()
        for owner, name, target in ((os, "replace", 1), (pq, "write_table", 1), (pd.DataFrame, "to_parquet", 1),
                                    (Path, "write_text", 0), (os, "link", 1), (shutil, "copyfile", 1)):
            patch.setattr(owner, name, self._wrap(getattr(owner, name), target))

    def _wrap(self, original, target):
        def writer(*args, **kwargs):
            result = original(*args, **kwargs)
            path = args[target] if len(args) > target else None
            if isinstance(path, (str, os.PathLike)) and not str(path).endswith(TEMPORARY):
                self.paths[os.path.abspath(path)] += 1
            return result
        return writer

    def under(self, folder: Path) -> Counter:
        """Landings inside ``folder``, by path relative to it."""
        folder = os.path.realpath(folder)
        return Counter({os.path.relpath(p, folder): n for p, n in self.paths.items()
                        if os.path.realpath(p).startswith(folder + os.sep)})


def published_files(out: Path) -> set:
    real = Path(os.path.realpath(out))
    return {str(p.relative_to(real)) for p in real.rglob("*") if p.is_file()}


def ledger_rows(seed, n):
    return sorted(random_rows(random.Random(seed), n), key=lambda r: (r["ship_date"], r["shipment_id"]))


@pytest.mark.parametrize("command", ["screen", "screen in pieces", "screen --lake", "screen --lake (incremental)",
                                     "screen --lake --as-of", "audit", "audit a lake", "diff"])
def test_every_output_file_of_every_command_is_written_exactly_once(tmp_path, monkeypatch, command):
    import datetime as dt

    policy, other = load_policy("ai-diffusion-2025"), load_policy("post-rescission-2025")
    rows = ledger_rows(7, 120)
    ledger = write_ledger(rows, tmp_path / "ledger.parquet")
    lake = tmp_path / "lake"
    if "lake" in command:
        ingest([write_ledger(rows[:80], tmp_path / "history.parquet")], lake)
        if "incremental" in command:
            screen_lake(lake, policy, tmp_path / "out", scheduler="none")
            ingest([write_ledger(rows[80:], tmp_path / "tonight.parquet")], lake)
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        landings = Landings(patch)
        if command == "screen":
            screen_ledgers([ledger], policy, out)
        elif command == "screen in pieces":
            screen_ledgers([ledger], policy, out, piece_rows=25)
        elif command.startswith("screen --lake"):
            run = screen_lake(lake, policy, out, scheduler="none",
                              as_of=dt.date(2026, 6, 30) if "as-of" in command else None)
            assert run.plan.mode == ("incremental" if "incremental" in command else "full")
        elif command == "audit":
            audit_ledgers([ledger], policy, out)
        elif command == "audit a lake":
            audit_ledgers([lake], policy, out)
        else:
            diff_ledgers([ledger], policy, other, out)
    relative = landings.under(Path(os.path.realpath(out)))
    assert relative and all(n == 1 for n in relative.values()), relative
    assert set(relative) == published_files(out), "every published file is one of the writes counted"
    assert landings.paths[os.path.abspath(out)] == 1  # and the run published once
    screening = {"decisions.parquet", "quarantine.parquet", "parties.parquet", "summary.json", "report.html"}
    expected = {"screen": screening, "audit": screening | {"discrepancies.parquet", "discrepancies.csv"},
                "diff": {"a", "b", "changes.parquet", "changes.csv", "summary.json", "report.html"}}
    expected["audit a lake"] = expected["audit"]
    assert relative[MARKER] == 1  # the record of what the run wrote, written as it is published
    expected["screen in pieces"] = screening
    assert {Path(p).parts[0] for p in relative} - {MARKER} == expected.get(command, screening - {"parties.parquet"})


def _plain(table):
    """A table with dictionary columns decoded (row groups and dictionaries differ between writes)."""
    import pyarrow as pa

    return pa.table({name: (column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column)
                     for name, column in zip(table.column_names, table.columns)})


@pytest.mark.parametrize("policy_id", ["ai-diffusion-2025", "in-force"])
@pytest.mark.parametrize("piece_rows", [1, 17, 119])
def test_a_ledger_screened_in_pieces_writes_what_one_piece_writes(tmp_path, policy_id, piece_rows):
    import json

    policy = load_policy(policy_id)
    rows = random_rows(random.Random(11), 120)  # unordered, with repeated consignees
    ledger = write_ledger(rows + [dict(rows[3], quantity="-1", shipment_id="BAD-1")], tmp_path / "ledger.csv")
    whole = screen_ledgers([ledger], policy, tmp_path / "whole")
    pieces = screen_ledgers([ledger], policy, tmp_path / "pieces", piece_rows=piece_rows)
    assert whole.decisions is not None and pieces.decisions is None  # written as they came, not kept
    assert pieces.summary["rows"]["quarantined"] == 1
    assert pq.ParquetFile(tmp_path / "pieces" / "decisions.parquet").metadata.num_row_groups == -(-120 // piece_rows)
    for name in ("decisions.parquet", "parties.parquet", "quarantine.parquet"):
        a, b = (pq.read_table(tmp_path / folder / name) for folder in ("whole", "pieces"))
        assert _plain(a).equals(_plain(b)), name
    a, b = (json.loads((tmp_path / folder / "summary.json").read_text()) for folder in ("whole", "pieces"))
    for key in ("created", "timings_s"):
        a.pop(key), b.pop(key)
    assert a == b


def test_a_failed_piece_leaves_the_published_results_whole(tmp_path, monkeypatch):
    import pipeline.run.scan as scan_module

    policy = load_policy("ai-diffusion-2025")
    ledger = write_ledger(ledger_rows(3, 60), tmp_path / "ledger.parquet")
    out = tmp_path / "out"
    screen_ledgers([ledger], policy, out, piece_rows=20)
    before = pq.read_table(out / "decisions.parquet")
    real, calls = scan_module.screen_rows, []

    def failing(rows, *args, **kwargs):
        calls.append(rows.num_rows)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(scan_module, "screen_rows", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        screen_ledgers([ledger], policy, out, piece_rows=20)
    assert pq.read_table(out / "decisions.parquet").equals(before)
    runs = [p for p in Path(os.path.realpath(out)).parent.iterdir() if p.is_dir()]
    assert not any((run / "decisions.parquet").exists() or (run / "decisions.parquet.partial").exists()
                   for run in runs if run != Path(os.path.realpath(out))), "a failed run leaves no decisions"


def test_a_sink_refuses_to_write_an_output_twice(tmp_path):
    sink = Sink(tmp_path / "run")
    sink.json("summary.json", {"a": 1})
    with pytest.raises(OutputWrittenTwiceError):
        sink.json("summary.json", {"a": 2})
    sink.parts()
    with pytest.raises(OutputWrittenTwiceError):
        sink.table("decisions.parquet", pq.read_table(_a_table(tmp_path)))
    assert (tmp_path / "run" / "summary.json").read_text().strip().endswith("}")


def _a_table(tmp_path):
    import pyarrow as pa

    pq.write_table(pa.table({"x": [1]}), tmp_path / "t.parquet")
    return tmp_path / "t.parquet"


def test_audit_and_diff_run_on_the_backend_they_are_given(tmp_path):
    """The backend is resolved once at the entry and reaches the accumulators of audit and diff."""
    policy, other = load_policy("ai-diffusion-2025"), load_policy("post-rescission-2025")
    ledger = write_ledger(ledger_rows(11, 200), tmp_path / "l.parquet")
    chunked = Backend("numpy", np, chunk_rows=7, method="sorted")
    plain, chunks = audit_ledgers([ledger], policy), audit_ledgers([ledger], policy, backend=chunked)
    assert plain.discrepancies.equals(chunks.discrepancies)
    assert plain.screening.decisions.equals(chunks.screening.decisions)
    first, second = diff_ledgers([ledger], policy, other), diff_ledgers([ledger], policy, other, backend=chunked)
    assert first.changes.equals(second.changes) and first.summary["transitions"] == second.summary["transitions"]
    with pytest.raises(ValueError, match="backend"):
        audit_ledgers([ledger], policy, backend="gpu")


def test_the_party_cache_belongs_to_the_run_and_merges_what_copies_added(tmp_path):
    import pipeline.screen

    assert not hasattr(pipeline.screen, "_NAME_RESULTS")  # nothing of a run lives in module globals
    from pipeline.parties import PartyScreen

    policy = load_policy("ai-diffusion-2025")
    screen = PartyScreen.from_path()
    cache = PartyResultCache(pipeline.screen.CSL_PATH)
    first = cache.screened(screen, ["Acme Compute", "Huawei Technologies Co., Ltd."], policy)
    worker = cache.copy()
    marks = worker.marks()
    worker.screened(screen, ["Acme Compute", "Brand New Labs"], policy)
    added = worker.added_since(marks)
    assert [frame["name"].tolist() for frame in added.values()] == [["Brand New Labs"]]
    assert len(cache.known(policy)) == 2  # the copy grew on its own
    cache.merge(added)
    assert cache.known(policy)["name"].tolist() == ["Acme Compute", "Huawei Technologies Co., Ltd.", "Brand New Labs"]
    again = cache.screened(screen, ["Huawei Technologies Co., Ltd.", "Acme Compute"], policy)
    assert again["outcome"].tolist() == first["outcome"].tolist()[::-1]


def _imports(path: Path, module: str) -> set:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _modules() -> dict:
    out = {}
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def test_the_pipeline_import_graph_has_no_cycle_and_reports_import_no_job():
    modules = _modules()
    graph = {name: {m for m in _imports(path, name) if m in modules and m != name} for name, path in modules.items()}
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                parent = lambda a, b: a.startswith(b + ".") or b.startswith(a + ".")  # noqa: E731
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                if not all(parent(a, b) for a, b in zip(cycle, cycle[1:])):  # a package and its own modules
                    raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    jobs = {"pipeline.screen", "pipeline.scale", "pipeline.lake_screen", "pipeline.audit"}
    code = ("import sys, pipeline.report_content, pipeline.report, pipeline.results; "
            f"print(sorted(m for m in sys.modules if m in {sorted(jobs)!r} or m.startswith('pipeline.run')))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
