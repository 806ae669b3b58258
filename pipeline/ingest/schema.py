"""Ledger columns, accepted values and quarantine reasons: what a valid ledger row is.

Reasons are kept as small integer codes while rows are checked (:func:`reason_code`); the
texts are what the quarantine records.

Country columns (``destination_country``, ``consignee_hq_country``, ``export_country``,
``ultimate_parent_hq_country``) hold ISO 3166-1 alpha-2 codes, trimmed and upper-cased; an
unknown code quarantines the row. Every column but :data:`REQUIRED_COLUMNS` may be absent
from a file: an absent column, or an empty value, is null. A null ``export_country`` means
the United States: absent, empty and ``"US"`` are all stored as null, so that they compare
equal; a null ``ultimate_parent_hq_country`` means no parent is recorded.
"""
from __future__ import annotations

import datetime as dt

import numpy as np


LEDGER_COLUMNS = (
    "shipment_id", "ship_date", "status", "exporter", "export_country", "consignee_id", "consignee_name",
    "consignee_address", "destination_country", "consignee_hq_country", "ultimate_parent_hq_country", "sku",
    "quantity", "license_id", "veu_id", "recorded_authorization",
)
"""Ledger columns, in file order (DESIGN §3)."""
REQUIRED_COLUMNS = ("shipment_id", "ship_date", "status", "consignee_name", "destination_country", "sku", "quantity")
CATEGORICAL_COLUMNS = (
    "status", "exporter", "export_country", "consignee_id", "consignee_name", "consignee_address",
    "destination_country", "consignee_hq_country", "ultimate_parent_hq_country", "sku", "license_id", "veu_id",
    "recorded_authorization",
)
"""Columns kept dictionary-encoded: few distinct values, many rows."""
COUNTRY_COLUMNS = ("destination_country", "consignee_hq_country", "export_country", "ultimate_parent_hq_country")
"""Columns of ISO country codes: trimmed, upper-cased, checked against the country table."""
SCREENING_COLUMNS = REQUIRED_COLUMNS + ("consignee_id", "consignee_hq_country", "license_id", "veu_id",
                                       "recorded_authorization", "exporter", "export_country",
                                       "ultimate_parent_hq_country")
"""Columns the screening reads; the others are read back only for quarantined or duplicate rows."""
STATUSES = ("shipped", "pending")
RECORDED_AUTHORIZATIONS = ("NLR", "AIA", "LPP", "VEU", "LICENSE")
INT64_MAX = np.iinfo(np.int64).max
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2199, 12, 31)
"""Range of accepted ``ship_date`` values; dates outside it are quarantined."""
FLOAT_EXACT = 2.0 ** 53
"""An integral quantity written with a fraction or exponent (``2.0``, ``2e3``) is accepted below this."""


REASON_MISSING = "missing required field: {}"
REASON_DATE = "unparseable date"
REASON_DATE_RANGE = f"ship_date outside {DATE_MIN}..{DATE_MAX}"
REASON_STATUS = "invalid status (expected shipped or pending)"
REASON_COUNTRY = "unknown country code: {}"
REASON_QUANTITY = "quantity not a positive integer"
REASON_SKU = "unknown SKU"
REASON_TPP_OVERFLOW = "quantity × unit TPP exceeds int64"
REASON_RECORDED = "unknown recorded_authorization (expected NLR, AIA, LPP, VEU or LICENSE)"
REASON_CONFLICT = "duplicate shipment_id with different content"
REASON_EXACT_DUPLICATE = "exact duplicate of an earlier row (counted once)"
REASON_MALFORMED = "malformed CSV line"
REASON_JSON_LINE = "malformed JSON line"
"""Prefix of the reason of a JSON Lines line that is not a flat JSON object (the detail follows)."""


_REASON_TEXTS: list[str] = [""]
_REASON_CODES: dict[str, int] = {"": 0}


def reason_code(text: str) -> int:
    """Small integer code of a quarantine reason (0: accepted); rows carry codes, not strings."""
    if text not in _REASON_CODES:
        _REASON_CODES[text] = len(_REASON_TEXTS)
        _REASON_TEXTS.append(text)
    return _REASON_CODES[text]


class LedgerReadError(RuntimeError):
    """A ledger file cannot be read at all (missing, wrong format, missing required columns)."""
