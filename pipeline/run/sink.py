"""Where a run's outputs go: one atomic writer per output, each file written once (DESIGN §9).

Every output is written to ``<name>.partial`` and renamed into place, inside the run folder
that :mod:`pipeline.publish` publishes at the end. A :class:`Sink` refuses to write a name twice.
Decisions go either to one file (a ledger screened in one piece) or, piece by piece, to
``decisions.parquet/part-NNNNN.parquet`` (:class:`PartWriter`, which Dask workers use too).
"""
from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.publish import link_or_copy

DECISIONS = "decisions.parquet"
STATISTICS_COLUMNS = ["ship_date", "status", "destination_country", "decision", "authorization", "party_list"]
"""Columns whose Parquet min/max statistics are written (row-group pruning for auditors' queries);
statistics on the high-cardinality columns cost more to write than they save."""
CSV_ROWS = 1_000_000
"""Rows in a CSV export: spreadsheets stop at 1,048,576. The Parquet output always has every row."""
class OutputWrittenTwiceError(RuntimeError):
    """A run tried to write one of its outputs a second time."""


def _atomic(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def write_output(table: pa.Table, path: Path) -> None:
    """Write a table as Parquet under ``path`` in one step (a ``.partial`` file renamed into place)."""
    partial = _atomic(path)
    pq.write_table(table, partial, **_parquet_options(table.schema))
    os.replace(partial, path)


def _parquet_options(schema: pa.Schema) -> dict:
    """How outputs are written: dictionary encoding only for what already is a dictionary (trying it
    on ids and totals is wasted work), statistics on :data:`STATISTICS_COLUMNS`."""
    return {"use_dictionary": [f.name for f in schema if pa.types.is_dictionary(f.type)],
            "write_statistics": [c for c in STATISTICS_COLUMNS if c in schema.names]}


def part_name(number: int) -> str:
    """The ``number``-th decisions file of a run folder, relative to it (files sort in screening order)."""
    return f"{DECISIONS}/part-{number:05d}.parquet"


@dataclass(frozen=True)
class PartWriter:
    """Writes the decisions of piece ``index`` to ``decisions.parquet/part-NNNNN.parquet`` (picklable).

    Attributes
    ----------
    folder : str
    first : int
        The number of piece 0's file: the files before it are carried from earlier runs.
    """

    folder: str
    first: int = 0

    def write(self, table: pa.Table, index: int) -> str:
        """Write one piece's decisions; returns the file's path relative to the run folder."""
        relative = part_name(self.first + index)
        path = Path(self.folder) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_output(table, path)
        return relative


class DecisionStream:
    """The decisions of consecutive pieces appended to one ``decisions.parquet`` as they finish.

    A writer thread appends each piece as row groups while the next piece is screened; at most
    one piece waits to be written, so memory holds two pieces at most. :meth:`close` renames the
    file into place (``.partial`` until then). Same interface as :class:`PartWriter`.
    """

    def __init__(self, path: Path):
        self.path = path
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._helper = ThreadPoolExecutor(max_workers=1)
        self._pending: Future | None = None

    def write(self, table: pa.Table, index: int) -> str:
        """Queue piece ``index``'s decisions (pieces come in screening order); returns the file name."""
        self._wait()
        self._pending = self._helper.submit(self._append, table)
        return DECISIONS

    def _append(self, table: pa.Table) -> None:
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(_atomic(self.path), table.schema, **_parquet_options(table.schema))
        self._writer.write_table(table if table.schema.equals(self._schema) else table.cast(self._schema))

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def _finish(self) -> None:
        """Write what is queued, then stop the thread and close the file (also when writing failed)."""
        try:
            self._wait()
        finally:
            self._helper.shutdown()
            if self._writer is not None:
                self._writer.close()

    def abandon(self) -> None:
        """Stop after a failed run: nothing more is written and no ``decisions.parquet`` is put in place."""
        try:
            self._finish()
        except Exception:  # noqa: BLE001 - the run's own error is the one reported
            pass
        _atomic(self.path).unlink(missing_ok=True)

    def close(self) -> None:
        """Write what is queued and put the file in place."""
        self._finish()
        if self._writer is None:
            raise RuntimeError("no decisions were written")  # a scan always writes a piece, empty or not
        os.replace(_atomic(self.path), self.path)


class Sink:
    """The outputs of one run folder (or of one subfolder of it), each written once.

    Parameters
    ----------
    folder : Path
        An unpublished run folder (created when missing).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.written: list[str] = []

    def _claim(self, name: str) -> Path:
        if name in self.written:
            raise OutputWrittenTwiceError(f"{self.folder / name} written twice in one run")
        self.written.append(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / name

    def sub(self, name: str) -> "Sink":
        """The sink of a subfolder (a diff's ``a/`` and ``b/``)."""
        return Sink(self._claim(name))

    def table(self, name: str, table: pa.Table) -> None:
        """Write an Arrow table as ``name`` (``decisions.parquet``, ``quarantine.parquet``)."""
        write_output(table, self._claim(name))

    def stream(self) -> DecisionStream:
        """The writer of consecutive pieces' decisions into one ``decisions.parquet``."""
        return DecisionStream(self._claim(DECISIONS))

    def parts(self, carried: Sequence[Path] = ()) -> PartWriter:
        """The writer of per-piece decisions (``decisions.parquet/``), after the ``carried`` files.

        ``carried`` are decisions files of rows screened by earlier runs (kept by a lake's
        checkpoint): linked (or copied) in as the first parts, in the order given.
        """
        folder = self._claim(DECISIONS)
        if carried:
            folder.mkdir()
        for number, source in enumerate(carried):
            link_or_copy(Path(source), self.folder / part_name(number))
        return PartWriter(str(self.folder), len(carried))

    def json(self, name: str, data: dict) -> None:
        """Write ``data`` as indented JSON (``summary.json``)."""
        path = self._claim(name)
        _atomic(path).write_text(json.dumps(data, indent=2, default=str) + "\n")
        os.replace(_atomic(path), path)

    def report(self, content: dict) -> None:
        """Render and write ``report.html`` (:func:`pipeline.report.write_report`, itself atomic)."""
        from pipeline.report import write_report

        write_report(content, self._claim("report.html"))

    def parties(self, parties: pd.DataFrame | None) -> None:
        """Write ``parties.parquet`` (:func:`pipeline.parties.write_party_matches`); no consignee: no rows."""
        from pipeline.parties import write_party_matches

        path = self._claim("parties.parquet")
        write_party_matches(parties if parties is not None and len(parties) else None, _atomic(path))
        os.replace(_atomic(path), path)

    def export(self, frame: pd.DataFrame, name: str) -> dict:
        """Write ``name``.parquet (all rows) and ``name``.csv (spreadsheet-safe, capped); say what was written."""
        from pipeline.report import write_csv

        path = self._claim(f"{name}.parquet")
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), _atomic(path))
        os.replace(_atomic(path), path)
        write_csv(frame.head(CSV_ROWS), self._claim(f"{name}.csv"))
        return {"parquet_rows": len(frame), "csv_rows": min(len(frame), CSV_ROWS),
                "csv_truncated": len(frame) > CSV_ROWS}
