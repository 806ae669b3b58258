"""The Prefect flows, embedded (no server). Kept few: Prefect's start-up costs seconds."""
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import write_ledger
from test_differential import random_rows


REPO = Path(__file__).resolve().parents[1]
needs_prefect = pytest.mark.skipif(importlib.util.find_spec("prefect") is None, reason="prefect is not installed")


def prefect_settings(home) -> dict:
    """Offline Prefect settings with its files under ``home``."""
    return {"PREFECT_HOME": str(home), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    """Prefect settings, then a temporary server for the module's flows, stopped before pytest's capture is.

    Settings go into the environment before Prefect is imported (it reads them on import).
    Prefect's own temporary server would otherwise be stopped at interpreter exit, logging that
    through a handler whose stream (pytest's capture) is closed by then: a "Logging error".
    """
    if importlib.util.find_spec("prefect") is None:
        pytest.skip("prefect is not installed")
    settings = {**prefect_settings(tmp_path_factory.mktemp("prefect")), "PREFECT_LOGGING_LEVEL": "WARNING"}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_nightly_then_audit_flows(prefect_home, tmp_path):
    from flows.audit import audit
    from flows.nightly import nightly_screen
    from pipeline.lake_screen import screened_in_run

    rows = sorted(random_rows(random.Random(3), 300), key=lambda r: (r["ship_date"], r["shipment_id"]))
    history = write_ledger(rows[:250], tmp_path / "history.parquet")
    tonight = write_ledger(rows[250:], tmp_path / "tonight.parquet")
    lake, out = str(tmp_path / "lake"), str(tmp_path / "out")

    first = nightly_screen([str(history)], lake, out, scheduler="none")
    assert first["lake"]["run"] == "full" and first["rows"]["screened_this_run"] == 250
    second = nightly_screen([str(tonight), str(history)], lake, out, scheduler="none")  # history again: no-op
    assert second["ingest"]["counts"]["duplicates"] == 250
    assert second["lake"]["run"] == "incremental" and second["rows"]["screened_this_run"] == 50
    assert pq.read_table(os.path.join(out, "decisions.parquet")).num_rows == 300  # the history carried
    assert screened_in_run(out).num_rows == 50

    # A failing run (an unknown rule set) leaves the published results as they were.
    with pytest.raises(Exception):
        nightly_screen([], lake, out, policy="no-such-rules", scheduler="none")
    assert pq.read_table(os.path.join(out, "decisions.parquet")).num_rows == 300
    assert screened_in_run(out).num_rows == 50

    summary = audit(lake, str(tmp_path / "audit"), policy="ai-diffusion-2025", as_of="2027-01-01")
    assert summary["rows"]["accepted"] < 300 and "discrepancies" in summary
    assert (tmp_path / "audit" / "report.html").read_text().count("<svg") >= 1


def test_nightly_flow_on_a_lake_in_s3(prefect_home, s3, tmp_path):
    from flows.nightly import nightly_screen
    from pipeline.lake import Lake
    from pipeline.lake.store import STATE_ENV, LakeStore
    from pipeline.lake_screen import screened_in_run
    from pipeline.reference import CSL_PATH

    rows = sorted(random_rows(random.Random(5), 200), key=lambda r: (r["ship_date"], r["shipment_id"]))
    history = write_ledger(rows[:150], tmp_path / "history.parquet")
    tonight = write_ledger(rows[150:], tmp_path / "tonight.parquet")
    s3.create_dir("nightly-lakes")
    lake, out = "s3://nightly-lakes/lake", str(tmp_path / "out")
    first = nightly_screen([str(history)], lake, out, scheduler="none", csl_source=str(CSL_PATH))
    second = nightly_screen([str(tonight)], lake, out, scheduler="none", csl_source=str(CSL_PATH))
    assert first["lake"]["run"] == "full" and second["lake"]["run"] == "incremental"
    assert second["rows"]["screened_this_run"] == 50 and Lake.open(lake).generation == 2
    assert pq.read_table(os.path.join(out, "decisions.parquet")).num_rows == 200
    assert screened_in_run(out).num_rows == 50
    beside = LakeStore.at(lake).beside
    assert beside.parent == Path(os.environ[STATE_ENV]).absolute()
    assert list((beside / "reference").iterdir()) and list((beside / "checkpoints").iterdir())


NIGHTLY_SCRIPT = """
import json, sys
from typer.testing import CliRunner
from flows.cli import app

lake, out, first, second = sys.argv[1:]
runner = CliRunner()
results = [runner.invoke(app, ["nightly", first, "--lake", lake, "-o", out, "--scheduler", "none", "-v"]),
           runner.invoke(app, ["nightly", second, "--lake", lake, "-o", out, "--workers", "1"])]
print(json.dumps([[r.exit_code, r.output] for r in results]))
"""


@needs_prefect
def test_nightly_command_keeps_library_logs_quiet_and_exits_cleanly(tmp_path):
    """Default ``nightly``: no Prefect or Dask INFO lines; ``-v`` shows them; no "Logging error" at exit.

    In a fresh interpreter, through ``CliRunner``: Prefect binds its console handler to the
    runner's stream, closed when the command returns, before the interpreter exits.
    """
    from pipeline.generate import generate_ledger, generate_next
    from pipeline.lake import ingest

    generate_ledger(tmp_path / "history.parquet", 3_000, seed=5)
    ingest([tmp_path / "history.parquet"], tmp_path / "lake")
    generate_next(tmp_path / "night1.csv", tmp_path / "history.parquet", 200, seed=1)
    generate_next(tmp_path / "night2.csv", tmp_path / "night1.csv", 200, seed=2)
    env = {**os.environ, **prefect_settings(tmp_path / "prefect")}
    for key in ("PREFECT_LOGGING_LEVEL", "PREFECT_API_URL"):
        env.pop(key, None)
    run = subprocess.run([sys.executable, "-c", NIGHTLY_SCRIPT, str(tmp_path / "lake"), str(tmp_path / "out"),
                          str(tmp_path / "night1.csv"), str(tmp_path / "night2.csv")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    (verbose_code, verbose), (quiet_code, quiet) = json.loads(run.stdout.strip().splitlines()[-1])
    assert verbose_code == 0 and "| INFO    | Flow run" in verbose and "nightly: " in verbose
    assert quiet_code == 0 and "200 rows" in " ".join(quiet.split())
    assert "INFO" not in quiet and "distributed." not in quiet, quiet
    assert "Logging error" not in run.stderr and "Traceback" not in run.stderr, run.stderr[-3000:]
