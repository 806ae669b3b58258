"""Columns and Parquet schemas of the lake's files: partitions, id indexes, quarantine."""
from __future__ import annotations

import pyarrow as pa

from pipeline.ingest.schema import CATEGORICAL_COLUMNS, LEDGER_COLUMNS, SCREENING_COLUMNS


STORED_COLUMNS = SCREENING_COLUMNS + tuple(c for c in LEDGER_COLUMNS if c not in SCREENING_COLUMNS)
"""Columns of a partition file: the screening columns (the ``Ledger.rows`` schema) first, then
the ledger columns screening does not read (``exporter``, ``consignee_address``)."""
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
STORED_SCHEMA = pa.schema([(c, pa.date32() if c == "ship_date" else pa.int64() if c == "quantity"
                            else _DICTIONARY if c in CATEGORICAL_COLUMNS else pa.string())
                           for c in STORED_COLUMNS])
INDEX_SCHEMA = pa.schema([("shipment_id", pa.string()), ("id_hash", pa.uint64()), ("row_hash", pa.uint64()),
                          ("shipped", pa.bool_())])
QUARANTINE_SCHEMA = pa.schema([(c, pa.string()) for c in LEDGER_COLUMNS] + [
    ("raw_line", pa.string()), ("reason", pa.string()), ("source_file", pa.string()),
    ("source_row", pa.int64()), ("source_sha256", pa.string())])
