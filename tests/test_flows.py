"""The Prefect flows, embedded (no server). Kept few: Prefect's start-up costs seconds."""
import os
import random

import pyarrow.parquet as pq
import pytest

from conftest import write_ledger
from test_differential import random_rows


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    pytest.importorskip("prefect")
    settings = {"PREFECT_HOME": str(tmp_path_factory.mktemp("prefect")), "DO_NOT_TRACK": "1",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
                "PREFECT_LOGGING_LEVEL": "WARNING"}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_nightly_then_audit_flows(prefect_home, tmp_path):
    from flows.audit import audit
    from flows.nightly import nightly_screen

    rows = sorted(random_rows(random.Random(3), 300), key=lambda r: (r["ship_date"], r["shipment_id"]))
    history = write_ledger(rows[:250], tmp_path / "history.parquet")
    tonight = write_ledger(rows[250:], tmp_path / "tonight.parquet")
    lake, out = str(tmp_path / "lake"), str(tmp_path / "out")

    first = nightly_screen([str(history)], lake, out, scheduler="none")
    assert first["lake"]["run"] == "full" and first["rows"]["screened_this_run"] == 250
    second = nightly_screen([str(tonight), str(history)], lake, out, scheduler="none")  # history again: no-op
    assert second["ingest"]["counts"]["duplicates"] == 250
    assert second["lake"]["run"] == "incremental" and second["rows"]["screened_this_run"] == 50
    assert pq.read_table(os.path.join(out, "decisions.parquet")).num_rows == 50

    # A failing run (an unknown rule set) leaves the published results as they were.
    with pytest.raises(Exception):
        nightly_screen([], lake, out, policy="no-such-rules", scheduler="none")
    assert pq.read_table(os.path.join(out, "decisions.parquet")).num_rows == 50

    summary = audit(lake, str(tmp_path / "audit"), policy="ai-diffusion-2025", as_of="2027-01-01")
    assert summary["rows"]["accepted"] < 300 and "discrepancies" in summary
    assert (tmp_path / "audit" / "report.html").read_text().count("<svg") >= 1
