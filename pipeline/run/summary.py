"""The content of ``summary.json``: rule set, reference data, inputs, counts, cap use, timings."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline import __version__
from pipeline.carry import Carry
from pipeline.ingest import file_digest
from pipeline.policy import Policy
from pipeline.reference import CATALOG_PATH
from pipeline.tally import Tally


def build_summary(policy: Policy, tally: Tally, carry: Carry, counts: dict, inputs: list[dict], timings: dict,
                  csl_path: Path, party_entries: int, as_of: dt.date | None, backend: str = "numpy") -> dict:
    """The content of ``summary.json``.

    Parameters
    ----------
    policy : Policy
    tally : Tally
        Counts of the screened rows (merged over pieces).
    carry : Carry
        Per-key totals after the last screened row.
    counts : dict
        Rows read, accepted and quarantined (:attr:`pipeline.ingest.Ledger.counts`).
    inputs : list of dict
        Input files with their hashes.
    timings : dict
        Seconds per stage; a dotted name is a part of the stage before the dot (``ingest.read``,
        ``ingest.validate``, ``ingest.order``; ``parties_and_enrich.parties``, the party
        screening that runs beside the features); ``parties_wait``: the screening of a Parquet
        ledger's names that ran beside the ingest and took longer than it.
    csl_path : path
    party_entries : int
        Searchable entries of the screening list.
    as_of : date or None
    backend : str
        Where the accumulators ran (``numpy`` or ``cupy``).
    """
    return {
        "policy": {"id": policy.id, "title": policy.params.get("title"), "version": policy.params.get("version"),
                   "framework": policy.framework, "file": policy.path.name, "sha256": file_digest(policy.path),
                   "overrides": list(policy.overrides), "timeline": policy.timeline(),
                   "unconfirmed": policy.unconfirmed()},
        "reference": {"catalog": {"file": CATALOG_PATH.name, "sha256": file_digest(CATALOG_PATH)},
                      "screening_list": {"file": Path(csl_path).name, "sha256": file_digest(Path(csl_path)),
                                         "entries": party_entries}},
        "inputs": inputs,
        "as_of": as_of.isoformat() if as_of else None,
        "rows": counts,
        "decisions": tally.decision_counts(),
        "decisions_by_status": tally.by_status(),
        "by_destination": tally.by_destination(),
        "allocation_headroom": tally.headroom(carry),
        "lpp": tally.lpp(carry),
        "china_volume": tally.china_volume(),
        "flagged_rows": tally.flagged(),
        "licenses": tally.licenses(carry, policy.license_register()),
        "tpp_total": tally.tpp_total,
        "backend": backend,
        "code_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "timings_s": timings,
    }
