"""Columns and Parquet schemas of the lake's files: partitions, id indexes, quarantine."""
from __future__ import annotations

import pyarrow as pa

from pipeline.ingest.schema import CATEGORICAL_COLUMNS, LEDGER_COLUMNS, SCREENING_COLUMNS


STORED_COLUMNS = SCREENING_COLUMNS + tuple(c for c in LEDGER_COLUMNS if c not in SCREENING_COLUMNS)
"""Columns of a partition file: the screening columns (the ``Ledger.rows`` schema) first, then
the ledger columns screening does not read (``consignee_address``)."""
ADDED_COLUMNS = ("export_country", "ultimate_parent_hq_country")
"""Ledger columns added after the first lakes were written: partition and quarantine files
written before lack them, and reads give them as all null (see :data:`ROW_HASH_COLUMNS`)."""
ROW_HASH_COLUMNS = (
    "shipment_id", "ship_date", "status", "consignee_name", "destination_country", "sku", "quantity",
    "consignee_id", "consignee_hq_country", "license_id", "veu_id", "recorded_authorization", "exporter",
    "consignee_address",
)
"""Columns every row hash mixes, in the order of the first lakes; :data:`ADDED_COLUMNS` follow,
mixed only where not null, so a row's hash in an older id index still holds."""
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
STORED_SCHEMA = pa.schema([(c, pa.date32() if c == "ship_date" else pa.int64() if c == "quantity"
                            else _DICTIONARY if c in CATEGORICAL_COLUMNS else pa.string())
                           for c in STORED_COLUMNS])
INDEX_SCHEMA = pa.schema([("shipment_id", pa.string()), ("id_hash", pa.uint64()), ("row_hash", pa.uint64()),
                          ("shipped", pa.bool_())])
QUARANTINE_SCHEMA = pa.schema([(c, pa.string()) for c in LEDGER_COLUMNS] + [
    ("raw_line", pa.string()), ("reason", pa.string()), ("source_file", pa.string()),
    ("source_row", pa.int64()), ("source_sha256", pa.string())])

if set(ROW_HASH_COLUMNS) | set(ADDED_COLUMNS) != set(STORED_COLUMNS) or set(ROW_HASH_COLUMNS) & set(ADDED_COLUMNS):
    raise AssertionError("every stored column is hashed once: ROW_HASH_COLUMNS + ADDED_COLUMNS")
