"""A license register matching a generated ledger (:func:`generate_register`), with every branch of the checks.

The register is built from the ledger's licensed lines, grouped by ``license_id`` (Arrow
group-by; no Python per ledger row). Each license id gets one designed branch:

* ``covered``: the window holds every line (sometimes exactly: first or last valid day), the
  scope holds them (destination; consignee by id and name, by id only where every line has an
  id, or by name only, sometimes upper-cased; sometimes the lines' exporter, when they share
  one; sometimes the lines' SKUs), and limits, where set, leave room (sometimes exactly the
  lines' total: the last unit that fits);
* ``exhausted_units`` / ``exhausted_tpp`` (about 10 %): ``max_units`` or ``max_tpp`` at least
  the first line's amount (screening order) but below the lines' total, so the license runs out
  part-way;
* ``expired`` / ``not_yet_valid`` (about 5 %): the window ends before the last line, or starts
  after the first one;
* ``out_of_scope_destination``, ``_sku``, ``_consignee``, ``_exporter`` (about 5 %): another
  destination, a SKU list without the lines' SKUs, another consignee (id and name), or an
  exporter none of the lines has;
* ``unknown`` (about 3 % of the ids): left out of the register.

Small ledgers still get every branch (at least one of each exhausted, window and out-of-scope
kind and one unknown id, while half of the ids stay covered). Multi-line licenses are chosen
first for the exhausted and window branches. Branches are designed over all lines of a license;
screening checks only the lines on the license path of its rules (not ``DENIED``, a license
required), so fewer lines may reach a branch there, and an exhausted license whose lines mostly
need no license may never run out.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.ingest import read_ledgers
from pipeline.licenses import DATE_MAX, DATE_MIN, REGISTER_COLUMNS
from pipeline.parties.normalize import normalize_name
from pipeline.reference import load_catalog


BRANCHES = (
    "covered", "exhausted_units", "exhausted_tpp", "expired", "not_yet_valid", "out_of_scope_destination",
    "out_of_scope_sku", "out_of_scope_consignee", "out_of_scope_exporter", "unknown",
)
"""Designed branches of :func:`generate_register`, in the order of its counts."""
SHARES = {"exhausted": 0.10, "window": 0.05, "out_of_scope": 0.05, "unknown": 0.03}
"""Target share of the ledger's license ids per branch kind; the rest are ``covered``."""
_MINIMUM = {"exhausted": 2, "window": 2, "out_of_scope": 4, "unknown": 1}
"""Least licenses per kind (one per sub-branch), while half of the ids stay covered."""
_KINDS = {"exhausted": ("exhausted_units", "exhausted_tpp"), "window": ("expired", "not_yet_valid"),
          "out_of_scope": ("out_of_scope_destination", "out_of_scope_sku", "out_of_scope_consignee",
                           "out_of_scope_exporter"),
          "unknown": ("unknown",)}
_STREAM = 16
"""Random stream of the register: ``default_rng([seed, 16])`` (the ledger uses 0..3)."""
_OTHER_DESTINATIONS = ("AE", "SA", "IN", "BR")
_OTHER_EXPORTER = "Unlisted Export Partners LLC"
_EPOCH = np.datetime64("1970-01-01", "D")
_DAY_MIN = int((np.datetime64(DATE_MIN.isoformat(), "D") - _EPOCH).astype(np.int64))
_DAY_MAX = int((np.datetime64(DATE_MAX.isoformat(), "D") - _EPOCH).astype(np.int64))


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A (dictionary) text column as plain text."""
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _licensed_lines(path: Path) -> tuple[pa.Table, int]:
    """The licensed lines screening accepts from the ledger (:func:`pipeline.ingest.read_ledgers`), in
    screening order, with their day, units and TPP; and the rows read."""
    ledger = read_ledgers([path])
    rows = ledger.rows
    rows = rows.filter(pc.is_valid(rows.column("license_id")))
    catalog = load_catalog()
    sku = _text(rows.column("sku"))
    unit_tpp = catalog["unit_tpp"].to_numpy(np.int64)[pd.Index(catalog["sku"]).get_indexer(
        np.asarray(sku.to_numpy(), dtype=object))]  # every accepted SKU is in the catalog
    lines = pa.table({
        "license_id": _text(rows.column("license_id")),
        "day": pc.cast(rows.column("ship_date"), pa.int32()),
        **{name: _text(rows.column(name)) for name in ("destination_country", "consignee_id", "consignee_name",
                                                       "exporter")},
        "sku": sku,
        "quantity": rows.column("quantity"),
        "tpp": pc.multiply_checked(rows.column("quantity"), pa.array(unit_tpp, pa.int64())),
    })
    return lines, int(ledger.counts["rows_read"])


def _licenses(lines: pa.Table) -> pd.DataFrame:
    """One row per license id (sorted), from its lines in screening order."""
    grouped = lines.group_by("license_id", use_threads=False).aggregate([
        ("license_id", "count"), ("day", "min"), ("day", "max"), ("quantity", "sum"), ("tpp", "sum"),
        ("quantity", "first"), ("tpp", "first"), ("destination_country", "first"), ("consignee_id", "first"),
        ("consignee_id", "count"), ("consignee_name", "first"), ("exporter", "first"), ("exporter", "count"),
        ("exporter", "distinct"), ("sku", "distinct"),
    ]).sort_by("license_id")
    frame = pd.DataFrame({name: grouped.column(name).to_numpy(zero_copy_only=False)
                          for name in grouped.column_names})
    frame = frame.rename(columns={"license_id_count": "lines"})
    return frame.reset_index(drop=True)


def _branch_counts(n: int) -> dict[str, int]:
    """Licenses per branch kind: the target shares with their minimums, within half of ``n`` (round-robin)."""
    want = {kind: max(_MINIMUM[kind], round(SHARES[kind] * n)) for kind in SHARES}
    budget = n // 2
    if sum(want.values()) <= budget:
        return want
    got = dict.fromkeys(SHARES, 0)
    while budget and any(got[kind] < want[kind] for kind in SHARES):
        for kind in SHARES:
            if budget and got[kind] < want[kind]:
                got[kind] += 1
                budget -= 1
    return got


def _assign(licenses: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """The designed branch of each license (index into :data:`BRANCHES`)."""
    n = len(licenses)
    counts = _branch_counts(n)
    key = rng.random(n)
    taken = np.zeros(n, bool)
    branch = np.zeros(n, np.int64)  # covered
    several = licenses["lines"].to_numpy() >= 2
    spread = (licenses["day_max"] > licenses["day_min"]).to_numpy()
    for kind, preferred in (("exhausted", several), ("window", spread), ("out_of_scope", np.ones(n, bool)),
                            ("unknown", np.ones(n, bool))):
        order = np.lexsort((key, ~preferred))
        chosen = order[~taken[order]][:counts[kind]]
        taken[chosen] = True
        subs = _KINDS[kind]
        branch[chosen] = [BRANCHES.index(subs[rank % len(subs)]) for rank in range(len(chosen))]
    return branch


def _other_sku(skus: np.ndarray, catalog: list[str], pick: int) -> str:
    """A catalog SKU none of the lines has (``pick`` chooses among them)."""
    free = [sku for sku in catalog if sku not in set(skus)]
    return free[pick % len(free)] if free else catalog[0]


def _build(licenses: pd.DataFrame, branch: np.ndarray, rng: np.random.Generator, seed: int) -> pd.DataFrame:
    """Register rows for every license but the unknown ones."""
    n = len(licenses)
    day_min = licenses["day_min"].to_numpy(np.int64)
    day_max = licenses["day_max"].to_numpy(np.int64)
    span = day_max - day_min
    total_q = licenses["quantity_sum"].to_numpy(np.int64)
    total_tpp = licenses["tpp_sum"].to_numpy(np.int64)
    first_q = licenses["quantity_first"].to_numpy(np.int64)
    first_tpp = licenses["tpp_first"].to_numpy(np.int64)
    lines = licenses["lines"].to_numpy(np.int64)
    name = licenses["consignee_name_first"].to_numpy(dtype=object)
    cid = licenses["consignee_id_first"].to_numpy(dtype=object)
    every_id = (licenses["consignee_id_count"].to_numpy(np.int64) == lines)
    exporter = licenses["exporter_first"].to_numpy(dtype=object)
    one_exporter = ((licenses["exporter_count"].to_numpy(np.int64) == lines)
                    & (np.array([len(e) for e in licenses["exporter_distinct"]], np.int64) == 1))
    is_ = {name_: branch == BRANCHES.index(name_) for name_ in BRANCHES}

    # Every draw is made for every license, so that each column keeps its stream whatever the branches.
    pad_from = np.where(rng.random(n) < 0.2, 0, rng.integers(1, 366, n))
    pad_until = np.where(rng.random(n) < 0.2, 0, rng.integers(1, 731, n))
    limit_mode = rng.random(n)
    room_q = np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.05, 2.0, n))
    room_tpp = np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.05, 2.0, n))
    cut = rng.uniform(0.2, 0.8, n)
    consignee_mode = rng.random(n)
    upper_name = rng.random(n) < 0.5
    sku_mode = rng.random(n) < 0.5
    exporter_mode = rng.random(n) < 0.5
    late = rng.integers(0, 31, n)
    pick = rng.integers(0, 1 << 30, n)

    valid_from = day_min - pad_from
    valid_until = day_max + pad_until
    expired, not_yet = is_["expired"], is_["not_yet_valid"]
    valid_until = np.where(expired, np.where(span > 0, day_min + np.floor(span * cut).astype(np.int64),
                                             day_min - 1 - late), valid_until)
    valid_from = np.where(not_yet, np.where(span > 0, day_min + 1 + np.floor((span - 1) * cut).astype(np.int64),
                                            day_min + 1 + late), valid_from)
    valid_until = np.where(not_yet & (span == 0), valid_from + 365, valid_until)
    valid_from = np.clip(valid_from, _DAY_MIN, _DAY_MAX)
    valid_until = np.clip(np.maximum(valid_until, valid_from), _DAY_MIN, _DAY_MAX)

    covered_like = is_["covered"]
    # Limits of covered licenses: units only 25 %, both 20 %, TPP only 20 %, none 35 %.
    with_units = covered_like & (limit_mode < 0.45)
    with_tpp = covered_like & (limit_mode >= 0.25) & (limit_mode < 0.65)
    max_units = np.where(with_units, total_q + np.floor(total_q * room_q).astype(np.int64), -1)
    max_tpp = np.where(with_tpp, total_tpp + np.floor(total_tpp * room_tpp).astype(np.int64), -1)
    short_q = np.where(lines >= 2, first_q + np.floor((total_q - first_q) * cut).astype(np.int64), total_q - 1)
    short_tpp = np.where(lines >= 2, first_tpp + np.floor((total_tpp - first_tpp) * cut).astype(np.int64),
                         total_tpp - 1)
    max_units = np.where(is_["exhausted_units"], short_q, max_units)
    max_tpp = np.where(is_["exhausted_tpp"], short_tpp, max_tpp)

    # Consignee: id and name, id only (where every line has one), or name only (sometimes upper-cased).
    has_id = every_id & np.array([value is not None for value in cid], bool)
    by_id_only = has_id & (consignee_mode < 0.25)
    by_name_only = ~has_id | (consignee_mode >= 0.75)
    out_id = np.where(by_name_only, None, cid).astype(object)
    out_name = np.where(by_id_only, None, name).astype(object)
    shout = by_name_only & upper_name
    out_name[shout] = [value.upper() for value in out_name[shout]]

    destination = licenses["destination_country_first"].to_numpy(dtype=object).copy()
    out_exporter = np.where(one_exporter & exporter_mode & ~is_["out_of_scope_exporter"], exporter, None).astype(object)
    catalog = load_catalog()["sku"].tolist()
    skus = np.full(n, None, dtype=object)
    listed = sku_mode & ~is_["out_of_scope_sku"]
    skus[listed] = [";".join(sorted(values)) for values in licenses["sku_distinct"][listed]]

    for i in np.flatnonzero(is_["out_of_scope_destination"]).tolist():
        others = [code for code in _OTHER_DESTINATIONS if code != destination[i]]
        destination[i] = others[pick[i] % len(others)]
    for i in np.flatnonzero(is_["out_of_scope_sku"]).tolist():
        skus[i] = _other_sku(licenses["sku_distinct"][i], catalog, int(pick[i]))
    ledger_exporters = sorted({e for values in licenses["exporter_distinct"] for e in values if e is not None})
    for i in np.flatnonzero(is_["out_of_scope_exporter"]).tolist():
        used = set(licenses["exporter_distinct"][i])
        free = [e for e in ledger_exporters if e not in used] or [_OTHER_EXPORTER]
        out_exporter[i] = free[pick[i] % len(free)]
    for i in np.flatnonzero(is_["out_of_scope_consignee"]).tolist():
        j = (i + 1 + pick[i] % max(1, n - 1)) % n
        if j == i or normalize_name(name[j]) == normalize_name(name[i]) or (cid[j] is not None and cid[j] == cid[i]):
            out_id[i], out_name[i] = f"{cid[i] or 'C'}-OTHER", f"Unrelated Buyer {licenses['license_id'][i]}"
        else:
            out_id[i], out_name[i] = (cid[j] if cid[j] is not None else f"{cid[i] or 'C'}-OTHER"), name[j]

    notes = {
        "covered": "covers its lines", "exhausted_units": "max_units below its lines' units: runs out part-way",
        "exhausted_tpp": "max_tpp below its lines' TPP: runs out part-way",
        "expired": "valid_until before its last line", "not_yet_valid": "valid_from after its first line",
        "out_of_scope_destination": "another destination", "out_of_scope_sku": "skus without its lines' SKUs",
        "out_of_scope_consignee": "another consignee", "out_of_scope_exporter": "an exporter none of its lines has",
    }
    text = np.array([f"generated ({BRANCHES[b]}): {notes.get(BRANCHES[b], '')}" for b in range(len(BRANCHES))],
                    dtype=object)
    keep = ~is_["unknown"]
    frame = pd.DataFrame({
        "license_id": licenses["license_id"].to_numpy(dtype=object),
        "valid_from": (_EPOCH + valid_from).astype(str),
        "valid_until": (_EPOCH + valid_until).astype(str),
        "destination_country": destination,
        "consignee_id": out_id,
        "consignee_name": out_name,
        "exporter": out_exporter,
        "skus": skus,
        "max_units": pd.array(np.where(max_units >= 0, max_units, 0), dtype="Int64"),
        "max_tpp": pd.array(np.where(max_tpp >= 0, max_tpp, 0), dtype="Int64"),
        "conditions": text[branch],
        "source": f"pipeline.generate.generate_register, seed {seed}",
    }, columns=list(REGISTER_COLUMNS))
    frame.loc[max_units < 0, "max_units"] = pd.NA
    frame.loc[max_tpp < 0, "max_tpp"] = pd.NA
    return frame[keep].reset_index(drop=True)


def _write(frame: pd.DataFrame, path: Path, kind: str) -> None:
    """Write the register to a temporary name, then rename it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if kind == "csv":
            frame.to_csv(temporary, index=False, lineterminator="\n")
        else:
            table = pa.table({
                **{name: pa.array(frame[name], pa.string(), from_pandas=True) for name in REGISTER_COLUMNS
                   if name not in ("valid_from", "valid_until", "max_units", "max_tpp")},
                "valid_from": pc.cast(pc.strptime(pa.array(frame["valid_from"].tolist(), pa.string()),
                                                  format="%Y-%m-%d", unit="s"), pa.date32()),
                "valid_until": pc.cast(pc.strptime(pa.array(frame["valid_until"].tolist(), pa.string()),
                                                   format="%Y-%m-%d", unit="s"), pa.date32()),
                "max_units": pa.array(frame["max_units"], pa.int64(), from_pandas=True),
                "max_tpp": pa.array(frame["max_tpp"], pa.int64(), from_pandas=True),
            }).select(list(REGISTER_COLUMNS))
            pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def generate_register(ledger_path, register_path, *, seed: int = 0) -> dict:
    """Write a license register for a generated ledger's license ids, with every branch of the checks.

    Parameters
    ----------
    ledger_path : str or path-like
        The ledger (``.parquet``, ``.csv`` or ``.jsonl``), read as screening reads it
        (:func:`pipeline.ingest.read_ledgers`): quarantined lines are left out, the others are
        taken in screening order.
    register_path : str or path-like
        The register to write: CSV, or Parquet for a ``.parquet``/``.pq`` name (dates as
        date32, limits as int64); replaced if it exists (written to a temporary name, then
        renamed).
    seed : int, default 0
        Non-negative seed; the same ledger and seed give the same register.

    Returns
    -------
    dict
        ``path``, ``format``, ``ledger``, ``rows_read`` (ledger rows), ``lines`` (licensed lines
        used), ``license_ids`` (distinct ids among them), ``licenses`` (rows written),
        ``branches`` (branch of :data:`BRANCHES` -> license ids), ``lines_by_branch`` (branch ->
        lines), ``seconds``.

    Raises
    ------
    ValueError
        A negative seed or an unknown register extension.
    pipeline.ingest.LedgerReadError
        The ledger cannot be read.

    Notes
    -----
    Branches and their shares: see the module docstring. Every random draw comes from
    ``numpy.random.default_rng([seed, 16])`` over the licenses sorted by id, so the register
    does not depend on the ledger's row order or chunking.
    """
    started = time.perf_counter()
    if seed < 0:
        raise ValueError("seed must be non-negative")
    ledger_path, register_path = Path(ledger_path), Path(register_path)
    name = register_path.name.lower()
    kind = "csv" if name.endswith(".csv") else "parquet" if name.endswith((".parquet", ".pq")) else None
    if kind is None:
        raise ValueError(f"{register_path}: unknown register format (use .csv or .parquet)")
    lines, rows = _licensed_lines(ledger_path)
    licenses = _licenses(lines)
    rng = np.random.default_rng([seed, _STREAM])
    branch = _assign(licenses, rng)
    frame = _build(licenses, branch, rng, seed)
    _write(frame, register_path, kind)
    per_branch = np.bincount(branch, minlength=len(BRANCHES))
    line_counts = np.bincount(branch, weights=licenses["lines"].to_numpy(np.float64), minlength=len(BRANCHES))
    return {
        "path": str(register_path), "format": kind, "ledger": str(ledger_path), "rows_read": rows,
        "lines": int(lines.num_rows), "license_ids": len(licenses), "licenses": len(frame),
        "branches": {b: int(c) for b, c in zip(BRANCHES, per_branch)},
        "lines_by_branch": {b: int(c) for b, c in zip(BRANCHES, line_counts)},
        "seconds": round(time.perf_counter() - started, 3),
    }


def licensed_lines(register, path, *, lines_per_license: int = 12) -> dict:
    """Write sample ledger lines (CSV) that draw on each license of a register, for demos.

    Each license gets ``lines_per_license`` monthly shipments from its first valid day, of its
    first listed SKU (else the GB300), to its destination and consignee, sized so that together
    they ask for about 110% of its tighter maximum: the last lines are over it.

    Parameters
    ----------
    register : pipeline.licenses.LicenseRegister
    path : str or path-like
        The CSV to write.

    Returns
    -------
    dict
        ``path`` and ``lines``.
    """
    import datetime as dt

    from pipeline.ingest.schema import LEDGER_COLUMNS
    from pipeline.reference import load_catalog

    unit_tpp = load_catalog().set_index("sku")["unit_tpp"]
    rows = []
    for item in register.table.itertuples(index=False):
        sku = item.skus[0] if item.skus else "NVIDIA-GB300"
        wanted = [int(item.max_units) * 11 // 10 if not pd.isna(item.max_units) else None,
                  -(-int(item.max_tpp) * 11 // 10 // int(unit_tpp[sku])) if not pd.isna(item.max_tpp) else None]
        total = min([w for w in wanted if w is not None], default=lines_per_license * 8)
        quantity = max(1, -(-total // lines_per_license))
        start = item.valid_from_date
        for k in range(lines_per_license):
            day = min(start + dt.timedelta(days=30 * k), item.valid_until_date)
            rows.append({"shipment_id": f"{item.license_id}-{k + 1:02d}", "ship_date": day.isoformat(),
                         "status": "shipped", "exporter": item.exporter or "Exporter A",
                         "consignee_id": item.consignee_id, "consignee_name": item.consignee_name or "Licensed consignee",
                         "destination_country": item.destination_country, "sku": sku, "quantity": str(quantity),
                         "license_id": item.license_id, "recorded_authorization": "LICENSE"})
    frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    frame.to_csv(path, index=False)
    return {"path": str(path), "lines": len(frame)}
