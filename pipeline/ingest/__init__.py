"""Ledger ingest: read CSV, Parquet and JSON Lines files, validate every row, quarantine bad ones.

Bad rows never vanish and never stop the run: each is written to the quarantine with a reason.
Counts reconcile: rows read = accepted + quarantined (+ rows after ``--as-of``, when given).
A file that cannot be read at all raises :class:`LedgerReadError` naming the file.

Accepted rows come back in screening order, ``(ship_date, shipment_id)``. The same row gives the
same result in CSV, Parquet and JSON Lines: JSON text columns are read as strings, JSON numbers as
CSV would see their text, and repeated ids are compared by validated, normalized values.

Modules: :mod:`~pipeline.ingest.schema` (columns, reasons), :mod:`~pipeline.ingest.formats`
(reading files), :mod:`~pipeline.ingest.validate` (row checks), :mod:`~pipeline.ingest.order`
(screening order, repeated ids), :mod:`~pipeline.ingest.ledger` (:func:`read_ledgers`).
"""
from pipeline.ingest.formats import (READ_ERRORS, LedgerSource, check_columns, check_parquet_schema, check_path,
                                     csv_options, file_digest, ledger_format, number_malformed, quiet_csv_errors,
                                     read_ledger_file, sniff_text)
from pipeline.ingest.ledger import Ledger, read_ledgers
from pipeline.ingest.order import other_columns
from pipeline.ingest.schema import (CATEGORICAL_COLUMNS, COUNTRY_COLUMNS, DATE_MAX, DATE_MIN, FLOAT_EXACT,
                                    INT64_MAX, LEDGER_COLUMNS, REASON_CONFLICT, REASON_COUNTRY, REASON_DATE,
                                    REASON_DATE_RANGE, REASON_EXACT_DUPLICATE, REASON_JSON_LINE, REASON_MALFORMED,
                                    REASON_MISSING, REASON_QUANTITY, REASON_RECORDED, REASON_SKU, REASON_STATUS,
                                    REASON_TPP_OVERFLOW, RECORDED_AUTHORIZATIONS, REQUIRED_COLUMNS,
                                    SCREENING_COLUMNS, STATUSES, LedgerReadError, reason_code)
from pipeline.ingest.validate import normalize_id, normalize_ids

__all__ = [
    "CATEGORICAL_COLUMNS", "COUNTRY_COLUMNS", "DATE_MAX", "DATE_MIN", "FLOAT_EXACT", "INT64_MAX", "LEDGER_COLUMNS",
    "READ_ERRORS", "REASON_CONFLICT", "REASON_COUNTRY", "REASON_DATE", "REASON_DATE_RANGE",
    "REASON_EXACT_DUPLICATE", "REASON_JSON_LINE", "REASON_MALFORMED", "REASON_MISSING", "REASON_QUANTITY",
    "REASON_RECORDED", "REASON_SKU", "REASON_STATUS", "REASON_TPP_OVERFLOW", "RECORDED_AUTHORIZATIONS",
    "REQUIRED_COLUMNS", "SCREENING_COLUMNS", "STATUSES", "Ledger", "LedgerReadError", "LedgerSource",
    "check_columns", "check_parquet_schema", "check_path", "csv_options", "file_digest", "ledger_format",
    "normalize_id", "normalize_ids", "number_malformed", "other_columns", "quiet_csv_errors", "read_ledger_file",
    "read_ledgers", "reason_code", "sniff_text",
]
