"""Ownership of entities: the holdings file (:func:`read_holdings`) behind the Affiliates rule."""
from pipeline.ownership.holdings import (OPEN_FROM, OPEN_UNTIL, OWNERSHIP_COLUMNS, REASONS, TABLE_COLUMNS, Holdings,
                                         OwnershipError, percent_bp, read_holdings)

__all__ = ["OPEN_FROM", "OPEN_UNTIL", "OWNERSHIP_COLUMNS", "REASONS", "TABLE_COLUMNS", "Holdings", "OwnershipError",
           "percent_bp", "read_holdings"]
