"""A ledger screened within a run: one piece through the scan, its outputs through the sink.

What ``screen``, ``audit`` and ``diff`` share: the rows are read once (:class:`LedgerSource`),
screened whole by :func:`pipeline.run.scan.scan` (the GPU kernels chunk them with carry-in), and
each screening's outputs are written once (:func:`write_screening`).
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from pipeline.ingest import Ledger
from pipeline.policy import Policy
from pipeline.report_content import screen_report
from pipeline.results import ScreenResult
from pipeline.run.run import Run
from pipeline.run.scan import scan
from pipeline.run.sink import DECISIONS, Sink
from pipeline.run.rows import consignees
from pipeline.run.source import LedgerSource, split_rows
from pipeline.run.summary import build_summary


def screen_whole(run: Run, ledger: Ledger, policy: Policy, as_of: dt.date | None = None) -> ScreenResult:
    """Screen a ledger's rows in one piece under ``policy``.

    Parameters
    ----------
    run : Run
    ledger : Ledger
        Validated rows (:class:`pipeline.run.source.LedgerSource`).
    policy : Policy
    as_of : date, optional
        Recorded in the summary.

    Returns
    -------
    ScreenResult
        With the ledger, the per-row outcome, the tally and the party results.
    """
    scanned = scan(run, LedgerSource.pieces(ledger), policy, keep=True, remember=False, timer=run)
    [piece] = scanned.pieces
    screened = piece.screened
    with run.stage("assemble"):
        table = screened.decisions_table(policy)
    summary = build_summary(policy, piece.tally, screened.result.carry, ledger.counts, ledger.files, run.timings,
                            run.csl_path, len(run.screening_list.entries), as_of, backend=run.backend.name)
    if screened.affiliates is not None:
        from pipeline.ownership.affiliates import evidence_table, ownership_summary
        from pipeline.policy import load_holdings

        summary["ownership"] = ownership_summary(
            screened.affiliates, load_holdings(policy.get("affiliates.ownership")).counts,
            evidence_table(screened.affiliates, screened.features))
    return ScreenResult(decisions=table, quarantine=ledger.quarantine, summary=summary, ledger=ledger,
                        outcome=screened.result, tally=piece.tally, parties=screened.features.parties, policy=policy,
                        affiliates=screened.affiliates, features=screened.features)


def streams(policy: Policy, ledger: Ledger, piece_rows: int | None) -> bool:
    """Should ``screen`` take the ledger in pieces (:func:`screen_streamed`)? Only when it has more
    rows than one piece, and without an ownership file (its evidence table needs every row)."""
    ownership = (policy.params.get("affiliates") or {}).get("ownership")
    return piece_rows is not None and ledger.rows.num_rows > piece_rows and not ownership


def screen_streamed(run: Run, ledger: Ledger, policy: Policy, piece_rows: int,
                    as_of: dt.date | None = None) -> ScreenResult:
    """Screen a ledger's rows in pieces, writing each piece's decisions as it finishes.

    The consignees are screened once for the whole ledger (their results, with candidate lists,
    go to ``parties.parquet``); the pieces then run one after another from the totals the last
    one ended with (:func:`pipeline.run.scan.scan`), and a writer thread appends each piece's
    decisions to ``decisions.parquet`` while the next is screened. Memory grows with the piece,
    not with the ledger (beyond its validated rows); the outputs equal those of
    :func:`screen_whole` and :func:`write_screening`.

    Parameters
    ----------
    run : Run
        With a sink (the outputs are written here, not returned).
    ledger : Ledger
    policy : Policy
    piece_rows : int
        Rows per piece.
    as_of : date, optional
        Recorded in the summary.

    Returns
    -------
    ScreenResult
        Without ``decisions``, ``outcome`` and ``features`` (written, not kept).
    """
    with run.stage("parties_and_enrich"):
        _, names, countries = consignees(ledger.rows, policy)
        parties = run.screening_list.screen_policy(names, policy, backend=run.backend, countries=countries)
        run.parties.keep(policy, parties, countries)
    stream = run.sink.stream()
    try:
        scanned = scan(run, split_rows(ledger.rows, piece_rows), policy, parts=stream, timer=run,
                       contributions=False)
    except BaseException:
        stream.abandon()
        raise
    with run.stage("write"):
        stream.close()
    summary = build_summary(policy, scanned.tally, scanned.carry, ledger.counts, ledger.files, run.timings,
                            run.csl_path, len(run.screening_list.entries), as_of, backend=run.backend.name)
    result = ScreenResult(decisions=None, quarantine=ledger.quarantine, summary=summary, ledger=ledger,
                          outcome=None, tally=scanned.tally, parties=parties, policy=policy)
    with run.stage("write"):
        run.sink.table("quarantine.parquet", result.quarantine)
        run.sink.parties(parties)
        run.sink.report(screen_report(result))
    summary["timings_s"] = dict(run.timings)
    run.sink.json("summary.json", summary)
    return result


def write_screening(sink: Sink, result: ScreenResult, run: Run, *, report: bool = True) -> None:
    """Write a screening's outputs, each once: decisions, quarantine, parties; with ``report``, also
    ``report.html`` and ``summary.json`` (an audit writes its own)."""
    with run.stage("write"), ThreadPoolExecutor(max_workers=1) as helper:
        # The decisions (the big file; Arrow writes without the GIL) beside the other outputs.
        decisions = helper.submit(sink.table, DECISIONS, result.decisions)
        sink.table("quarantine.parquet", result.quarantine)
        sink.parties(result.parties)
        if result.affiliates is not None:
            from pipeline.ownership.affiliates import evidence_table

            sink.table("affiliates.parquet", pa.Table.from_pandas(
                evidence_table(result.affiliates, result.features), preserve_index=False))
            holdings = result.affiliates_quarantine
            if holdings is not None:
                sink.table("ownership_quarantine.parquet", pa.Table.from_pandas(holdings, preserve_index=False))
        if report:
            sink.report(screen_report(result))
        decisions.result()
    if report:
        result.summary["timings_s"] = dict(run.timings)
        sink.json("summary.json", result.summary)
