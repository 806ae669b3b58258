"""Deterministic synthetic shipment ledgers (DESIGN §3 columns) for demos, tests and benchmarks.

The generator is vectorised: rows are produced in fixed-size internal blocks of
:data:`BLOCK_ROWS` rows, each from its own random stream derived from ``(seed, block index)``,
and strings are built by indexing precomputed pools or by composing fixed-width digits. The file
content therefore depends only on the arguments that shape the data, never on ``chunk_rows``
(which only sets the Parquet row-group size and the progress granularity).

Shape of the data
-----------------
* Rows are in ``(ship_date, shipment_id)`` order. Valid rows have ids ``SHP-`` + 12 digits, the
  global row number; dates run from ``start`` to ``end`` (``status="shipped"``), then a tail of
  ``pending_days`` days of ``status="pending"`` rows (about 2 % of rows).
* Destinations follow Zipf-like weights over 60 ISO codes (heavy: US, JP, GB, ...; light: BR, MX,
  ...; rare: CN, HK, RU, MO, IR, KH, BY). Each row picks a destination, then a consignee of that
  destination with a skewed (large buyers) weight.
* SKUs come from the chip catalog with a mix that drifts from Hopper to Blackwell over time; rare
  Huawei Ascend (GP10), H20 and L4 rows; China, Hong Kong and Macau rows are mostly H20, some H200.
* Quantities are mostly multiples of 8 (servers), heavy-tailed, within 1..4096.
* About 15 % of rows carry a ``license_id``, 3 % a ``veu_id``; shipped rows record an authorization
  (their license, VEU, AIA for Tier-1 consignees, else LPP; 2 % claim NLR), pending rows none.
* About 2 % of rows are exported from outside the United States (``export_country`` SG, MY, TW,
  NL, DE or JP, two hubs per exporter); the rest leave ``export_country`` empty (the US).
* About 3 % of consignees record an ``ultimate_parent_hq_country`` other than their HQ (more
  often in Singapore, Malaysia and nearby, with mostly Chinese parents); the rest leave it empty.

Malformed rows (``bad_rows``) are inserted right after randomly chosen valid rows and cycle
through :data:`BAD_KINDS`; valid rows are identical with or without them.

:func:`generate_next` writes the next night of an existing ledger: dates after its last row,
ids continuing its numbering, its consignees; mostly ``pending`` rows.

Modules: :mod:`~pipeline.generate.shape` and :mod:`~pipeline.generate.pools` (data),
:mod:`~pipeline.generate.strings` (string building), :mod:`~pipeline.generate.consignees` and
:mod:`~pipeline.generate.plan` (one run's plan), :mod:`~pipeline.generate.blocks` (valid rows),
:mod:`~pipeline.generate.bad_rows` (malformed rows), :mod:`~pipeline.generate.ledger`
(:func:`generate_ledger`), :mod:`~pipeline.generate.continuation` (:func:`generate_next`),
:mod:`~pipeline.generate.listed` (real list names for consignee pools), :mod:`~pipeline.generate.licenses`
(:func:`generate_register`: a license register matching a ledger, every branch of the checks).
"""
from pipeline.generate.continuation import generate_next
from pipeline.generate.ledger import generate_ledger
from pipeline.generate.licenses import generate_register, licensed_lines
from pipeline.generate.listed import listed_party_names
from pipeline.generate.ownership import generate_ownership
from pipeline.generate.shape import (BAD_KINDS, BLOCK_ROWS, COLUMNS, DICTIONARY_PAGE_BYTES, EXPORT_ABROAD_SHARE,
                                     FORMATS, ID_NUMBER, LICENSE_SHARE, LISTED_ROW_SHARE, MAX_QUANTITY,
                                     NEXT_SHIPPED_SHARE, PARENT_SHARE, PENDING_SHARE, RECORDED, RECORDED_NLR_SHARE,
                                     SKU_PERIODS, VEU_SHARE)

__all__ = [
    "BAD_KINDS", "BLOCK_ROWS", "COLUMNS", "DICTIONARY_PAGE_BYTES", "EXPORT_ABROAD_SHARE", "FORMATS", "ID_NUMBER",
    "LICENSE_SHARE", "LISTED_ROW_SHARE", "MAX_QUANTITY", "NEXT_SHIPPED_SHARE", "PARENT_SHARE", "PENDING_SHARE",
    "RECORDED", "RECORDED_NLR_SHARE", "SKU_PERIODS", "VEU_SHARE", "generate_ledger", "generate_next",
    "generate_ownership", "generate_register", "licensed_lines", "listed_party_names",
]
