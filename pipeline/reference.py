"""Reference data: chip catalog, country codes and rule-set files under ``data/``.

Every value lives in a reviewed data file with its source; this module only reads them.
"""
from __future__ import annotations

import tomllib
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
"""Folder of the reference data files shipped with the project."""

POLICY_DIR = DATA_DIR / "policies"
CATALOG_PATH = DATA_DIR / "chips.csv"
COUNTRIES_PATH = DATA_DIR / "countries.csv"
CSL_PATH = DATA_DIR / "csl" / "consolidated.csv.gz"
"""Default Consolidated Screening List: the full spring-2022 snapshot."""
CSL_CHECK_PATH = DATA_DIR / "csl" / "list_check.toml"
"""Size check of a screening list: the packaged list's record count and the shrink allowed."""

# 3A090 thresholds (DOMAIN 2): TPP and performance density (TPP per mm2 of applicable die area).
TPP_A = 4800
TPP_DENSITY_FLOOR = 1600
PD_A = Fraction(592, 100)
TPP_B_LOW = 2400
PD_B_LOW = Fraction(16, 10)
PD_B_MID = Fraction(32, 10)


def classify_3a090(unit_tpp: int, die_area_mm2: float | None) -> str:
    """Derive the 3A090 class of an IC from its TPP and die area.

    Parameters
    ----------
    unit_tpp : int
        Total processing performance of one unit.
    die_area_mm2 : float or None
        Applicable die area; ``None`` when unknown.

    Returns
    -------
    str
        ``"3A090.a"``, ``"3A090.b"``, ``"none"`` (below both), or ``"undetermined"`` when the
        density prong decides and the die area is unknown.

    Notes
    -----
    Density is compared as an exact fraction, so thresholds are never crossed by rounding.

    Examples
    --------
    >>> classify_3a090(15832, 814)
    '3A090.a'
    >>> classify_3a090(1940, 294.5)
    '3A090.a'
    >>> classify_3a090(2368, 814)
    'none'
    """
    if unit_tpp >= TPP_A:
        return "3A090.a"
    if unit_tpp < TPP_DENSITY_FLOOR:
        return "none"
    if die_area_mm2 is None or pd.isna(die_area_mm2):
        return "undetermined"
    density = Fraction(int(unit_tpp)) / Fraction(str(die_area_mm2))
    if density >= PD_A:
        return "3A090.a"
    if (TPP_B_LOW <= unit_tpp and density >= PD_B_LOW) or density >= PD_B_MID:
        return "3A090.b"
    return "none"


BANDWIDTH_COLUMNS = ("memory_bandwidth_gbs", "io_bandwidth_gbs")
"""Catalog columns in GB/s per unit: total DRAM bandwidth, and chip-to-chip I/O bandwidth (both directions)."""


def _bandwidth_column(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """One bandwidth column as int64; every SKU needs a positive whole number of GB/s."""
    if column not in frame.columns:
        raise ValueError(f"{path}: column {column} is missing")
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | ~(values > 0) | (values % 1 != 0)
    if bad.any():
        skus = ", ".join(frame.loc[bad, "sku"].astype(str))
        raise ValueError(f"{path}: {column} must be a positive whole number of GB/s for every SKU; "
                         f"missing or invalid for {skus}")
    return values.astype("int64")


@lru_cache(maxsize=None)
def load_catalog(path: Path = CATALOG_PATH) -> pd.DataFrame:
    """Read the chip catalog.

    Returns
    -------
    pandas.DataFrame
        One row per SKU: ``sku``, ``vendor``, ``model``, ``unit_tpp`` (int64), ``die_area_mm2``
        (float, NaN where unknown), ``eccn``, ``gp10`` (bool), ``datacenter`` (bool),
        ``memory_bandwidth_gbs`` and ``io_bandwidth_gbs`` (int64, GB/s per unit), ``source`` and
        ``bandwidth_source``.

    Raises
    ------
    ValueError
        A flag that is not true or false, a duplicate SKU, or a bandwidth column that is absent or
        has a missing, non-positive or fractional value (the message names the SKUs).
    """
    frame = pd.read_csv(path, comment="#", dtype={"sku": str, "eccn": str})
    frame["unit_tpp"] = frame["unit_tpp"].astype("int64")
    for column in ("gp10", "datacenter"):
        frame[column] = frame[column].astype(str).str.lower().map({"true": True, "false": False})
        if frame[column].isna().any():
            raise ValueError(f"{path}: column {column} must be true or false")
    for column in BANDWIDTH_COLUMNS:
        frame[column] = _bandwidth_column(frame, column, path)
    if frame["sku"].duplicated().any():
        raise ValueError(f"{path}: duplicate sku")
    return frame


@lru_cache(maxsize=None)
def load_countries(path: Path = COUNTRIES_PATH) -> pd.DataFrame:
    """Read the ISO 3166-1 alpha-2 country list (``alpha2``, ``name``)."""
    return pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)



@lru_cache(maxsize=None)
def load_list_check(path: Path = CSL_CHECK_PATH) -> dict:
    """Read the screening-list size check (``data/csl/list_check.toml``).

    Returns
    -------
    dict
        ``reference_records`` (int, records of the packaged list) and ``max_shrink`` (float in
        [0, 1), the fraction of records a list may lack against it).

    Raises
    ------
    ValueError
        A missing value or one out of range.
    """
    with open(path, "rb") as handle:
        check = tomllib.load(handle)
    records, shrink = check.get("reference_records"), check.get("max_shrink")
    if not isinstance(records, int) or isinstance(records, bool) or records < 1:
        raise ValueError(f"{path}: reference_records must be a positive integer")
    if not isinstance(shrink, (int, float)) or isinstance(shrink, bool) or not 0 <= shrink < 1:
        raise ValueError(f"{path}: max_shrink must be a number in [0, 1)")
    return {"reference_records": records, "max_shrink": float(shrink)}
