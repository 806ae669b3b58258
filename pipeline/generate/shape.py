"""Shape of generated ledgers: columns, block size, row shares, bad-row kinds, random streams (data)."""
from __future__ import annotations


COLUMNS = (
    "shipment_id", "ship_date", "status", "exporter", "export_country", "consignee_id", "consignee_name",
    "consignee_address", "destination_country", "consignee_hq_country", "ultimate_parent_hq_country", "sku",
    "quantity", "license_id", "veu_id", "recorded_authorization",
)
"""Ledger columns, in file order (DESIGN §3)."""

BLOCK_ROWS = 1 << 16
"""Valid rows per internal generation block; each block has its own random stream."""

BAD_KINDS = (
    "missing_field", "bad_date", "unknown_country", "bad_quantity", "unknown_sku",
    "conflicting_duplicate", "exact_duplicate",
)
"""Kinds of malformed rows, used in turn: bad row ``j`` is of kind ``BAD_KINDS[j % 7]``."""

FORMATS = ("parquet", "csv", "jsonl")
PENDING_SHARE = 0.02
LICENSE_SHARE = 0.15
VEU_SHARE = 0.03
EXPORT_ABROAD_SHARE = 0.02
"""Share of rows exported from outside the United States (an ``export_country``; the rest null: US)."""
PARENT_SHARE = 0.03
"""Share of regular consignees with an ``ultimate_parent_hq_country`` other than their HQ (the rest null)."""
LISTED_ROW_SHARE = 0.0015
"""Share of rows routed to consignees that carry a restricted-party name (when names are given)."""
MAX_QUANTITY = 4096
NEXT_SHIPPED_SHARE = 0.1
"""Share of ``shipped`` rows in a ledger that continues another (:func:`generate_next`); the rest are pending."""
ID_NUMBER = r"^SHP-\d{12}"
"""The number of a generated ``shipment_id`` (valid ``SHP-<12 digits>``, bad ``SHP-<12 digits>-B<j>``)."""
SKU_PERIODS = 12

# Random streams: default_rng([seed, stream, ...]).
_POOL, _DAYS, _BAD, _BLOCK = 0, 1, 2, 3


DICTIONARY_PAGE_BYTES = 16 << 20
"""Parquet dictionary page limit of generated ledgers."""

RECORDED = (None, "NLR", "AIA", "LPP", "VEU", "LICENSE")
"""recorded_authorization values by code (0: none, for pending rows)."""
RECORDED_NLR_SHARE = 0.02
