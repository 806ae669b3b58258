"""Synthetic ownership graphs (issue 19, item 6): determinism, structures, expected affiliates, bad rows, CLI.

The expected statuses the generator reports by design are checked against a plain Python
fixpoint written from the issue's text (an entity is an affiliate when listed parties and
affiliates hold at least 50 % in it directly; affiliates' holdings then count, until nothing
changes), and, where the ownership modules exist, against the holdings reader and the kernel.
"""
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.generate import generate_ledger, generate_ownership, listed_party_names
from pipeline.generate.ownership import (BAD_OWNERSHIP_KINDS, CHECK_DATES, DATED, OWNER_LISTS, OWNERSHIP_COLUMNS,
                                         STRUCTURES, listed_owner_pool)
from pipeline.parties.normalize import normalize_name

PERCENT = re.compile(r"^(?:100|[1-9]?[0-9])(?:\.[0-9]?[1-9])?$")  # "50", "12.34", "0.5"; never "12.30"
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def read_text(path) -> pd.DataFrame:
    """An ownership file as text, empty values as ""."""
    if str(path).endswith(".parquet"):
        return pq.read_table(path).to_pandas().fillna("")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def key(ident: str, name: str, country: str) -> str:
    """Entity key of issue 19: the id where given, else the normalized name and country."""
    return f"id:{ident}" if ident else f"name:{normalize_name(name)}@{country}"


class Graph:
    """A generated file's holdings by entity key, and its listed entities (real listed names)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.owner = [key(*t) for t in zip(frame.owner_id, frame.owner_name, frame.owner_country)]
        self.owned = [key(*t) for t in zip(frame.owned_id, frame.owned_name, frame.owned_country)]
        self.bp = [round(float(p) * 100) for p in frame.percent]
        names: dict = {}
        for k, n in list(zip(self.owner, frame.owner_name)) + list(zip(self.owned, frame.owned_name)):
            if n:
                names.setdefault(k, n)
        listed_names = set(listed_owner_pool()["name"])
        self.names = names
        self.listed = {k for k, n in names.items() if n in listed_names}
        self.entities = sorted(set(self.owner) | set(self.owned))

    def active(self, day: str) -> list:
        return [(a, b, p) for a, b, p, start, end in zip(self.owner, self.owned, self.bp, self.frame.valid_from,
                                                         self.frame.valid_until)
                if (not start or start <= day) and (not end or day <= end)]

    def fixpoint(self, day: str) -> tuple[set, set]:
        """Affiliates on ``day`` (the cascade, from the issue's text) and the entities listed parties
        hold 25 % to 49.99 % in, affiliates left out."""
        holdings = self.active(day)
        qualified = set(self.listed)
        while True:
            held: dict = {}
            for owner, owned, bp in holdings:
                if owner in qualified:
                    held[owned] = held.get(owned, 0) + bp
            new = {entity for entity, bp in held.items() if bp >= 5000} - qualified
            if not new:
                break
            qualified |= new
        affiliates = qualified - self.listed
        by_listed: dict = {}
        for owner, owned, bp in holdings:
            if owner in self.listed:
                by_listed[owned] = by_listed.get(owned, 0) + bp
        minority = {entity for entity, bp in by_listed.items() if 2500 <= bp < 5000} - affiliates
        return affiliates, minority


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "o.csv"
    stats = generate_ownership(path, holdings=2500, seed=4)
    return stats, read_text(path)


@pytest.fixture(scope="module")
def with_ledger(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own_ledger")
    ledger = folder / "l.parquet"
    generate_ledger(ledger, 30_000, seed=6, listed_names=listed_party_names(40))
    path = folder / "o.parquet"
    stats = generate_ownership(path, ledger=ledger, holdings=3000, seed=6)
    return stats, read_text(path), pq.read_table(ledger).to_pandas(), path


# ----------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", ["o.csv", "o.parquet"])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, name):
    a = generate_ownership(tmp_path / f"a_{name}", holdings=1200, seed=3, bad_rows=9)
    b = generate_ownership(tmp_path / f"b_{name}", holdings=1200, seed=3, bad_rows=9)
    generate_ownership(tmp_path / f"c_{name}", holdings=1200, seed=4, bad_rows=9)
    first = (tmp_path / f"a_{name}").read_bytes()
    assert first == (tmp_path / f"b_{name}").read_bytes()
    assert first != (tmp_path / f"c_{name}").read_bytes()
    a.pop("seconds"), b.pop("seconds")
    assert a == {**b, "path": a["path"]}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_csv_and_parquet_hold_the_same_rows_whatever_the_row_groups(tmp_path, monkeypatch):
    import pipeline.generate.ownership as ownership

    generate_ownership(tmp_path / "o.csv", holdings=3000, seed=2)
    monkeypatch.setattr(ownership, "CHUNK_ROWS", 700)
    generate_ownership(tmp_path / "o.parquet", holdings=3000, seed=2)
    assert pq.ParquetFile(tmp_path / "o.parquet").metadata.num_row_groups == 5  # 3000 rows by 700
    pd.testing.assert_frame_equal(read_text(tmp_path / "o.csv"), read_text(tmp_path / "o.parquet"))


# ----------------------------------------------------------------------------------- shape
def test_columns_values_and_counts(default):
    stats, frame = default
    assert tuple(frame.columns) == OWNERSHIP_COLUMNS
    assert len(frame) == stats["rows"] == stats["holdings"] == 2500 and stats["bad_rows"] == 0
    assert frame.percent.map(PERCENT.fullmatch).all()
    assert {"50", "100", "49.99", "40", "25"} <= set(frame.percent)
    assert any("." in p for p in frame.percent)
    for column in ("valid_from", "valid_until"):
        dates = frame[column][frame[column] != ""]
        assert len(dates) and dates.map(DATE.fullmatch).all()
    assert ((frame.owner_id != "") | (frame.owner_name != "")).all()
    assert ((frame.owned_id != "") | (frame.owned_name != "")).all()
    graph = Graph(frame)
    assert len(graph.entities) == stats["entities"]
    assert len(graph.listed) == stats["listed_owners"] > 50
    assert stats["entities_by_id"] + stats["entities_by_name"] == stats["entities"]
    assert stats["entities_by_id"] > 0 and stats["entities_by_name"] > 0
    id_only = (frame.owner_id != "") & (frame.owner_name == "")
    assert id_only.sum() == stats["rows_by_id_only"] > 0
    # By name: with the country; no two entities share a normalized name and country.
    by_name = frame[(frame.owned_id == "")]
    assert (by_name.owned_country != "").all()


def test_listed_owners_are_real_names_on_the_rule_lists(default):
    from pipeline.parties import PartyScreen
    from pipeline.reference import CSL_PATH

    _, frame = default
    entries = PartyScreen.from_path(CSL_PATH).entries
    on_lists = set(entries.loc[entries["list_code"].isin(OWNER_LISTS), "listed_name"].str.strip())
    graph = Graph(frame)
    listed = {graph.names[k] for k in graph.listed}
    assert listed <= on_lists
    # Listed parties only own: nobody holds them.
    assert not graph.listed & set(graph.owned)
    # Synthetic names carry a region word and look like companies.
    synthetic = frame.owned_name[frame.source.str.startswith("synthetic/") & (frame.owned_name != "")]
    assert synthetic.str.contains(r"\b(?:Ltd|Limited|Inc|LLC|GmbH|Co|Pte|Sdn|FZE|JSC|OOO|AG|LLP|B\.V|A\.S)\b").mean() \
        > 0.8


def test_every_structure_is_present(default):
    stats, frame = default
    assert set(stats["structures"]) == set(STRUCTURES)
    assert all(stats["structures"][name] >= 3 for name in STRUCTURES[:-1])
    assert stats["rows_by_structure"]["background"] == stats["structures"]["background"] > 0
    assert set(frame.source) == {f"synthetic/{name}" for name in STRUCTURES}
    for name in STRUCTURES:
        assert (frame.source == f"synthetic/{name}").sum() == stats["rows_by_structure"][name]
    assert stats["longest_chain"] == 100
    # Chains: links of 50 to 100 %, 2 and 100 levels; fan-outs of 10 and 50 subsidiaries at 60 %.
    chain = frame[frame.source == "synthetic/chain"]
    assert chain.percent.astype(float).between(50, 100).all()
    graph = Graph(chain)
    starts = [o for o in graph.owner if o in graph.listed]
    child = dict(zip(graph.owner, graph.owned))
    lengths = []
    for start in starts:
        length, at = 0, start
        while at in child:
            at, length = child[at], length + 1
        lengths.append(length)
    assert min(lengths) == 2 and max(lengths) == 100 and len(lengths) == stats["structures"]["chain"]
    fan = Graph(frame[frame.source == "synthetic/fan_out"])
    widths = pd.Series([o for o in fan.owner if o in fan.listed]).value_counts()
    assert widths.min() >= 10 and widths.max() == 50
    # Aggregation: 30 + 20 and 20 + 20 + 10 among the listed stakes.
    aggregation = Graph(frame[frame.source == "synthetic/aggregation"])
    stakes: dict = {}
    for owner, owned, bp in zip(aggregation.owner, aggregation.owned, aggregation.bp):
        if owner in aggregation.listed:
            stakes.setdefault(owned, []).append(bp)
    shapes = {tuple(sorted(v)) for v in stakes.values()}
    assert (2000, 3000) in shapes and (1000, 2000, 2000) in shapes
    assert all(max(v) < 5000 <= sum(v) and len(v) in (2, 3) for v in stakes.values())
    # Dated stakes: exactly the two windows.
    dated = frame[frame.valid_from != ""]
    assert set(zip(dated.valid_from, dated.valid_until)) == {("2025-01-01", "2025-12-31"), ("2026-06-01", "")}


def test_expected_affiliates_and_minority_match_a_plain_fixpoint(default):
    stats, frame = default
    graph = Graph(frame)
    found = {day: graph.fixpoint(day) for day in CHECK_DATES}
    for day in CHECK_DATES:
        affiliates, minority = found[day]
        assert len(affiliates) == stats["affiliates"][day] > 300
        assert len(minority) == stats["minority"] > 50
    # The dated stakes make affiliates on one side only; 2026-03-01 has neither.
    in_2025, in_2026 = found[CHECK_DATES[0]][0], found[CHECK_DATES[1]][0]
    between, _ = graph.fixpoint("2026-03-01")
    assert between < in_2025 and between < in_2026 and in_2025 != in_2026
    per_copy = 2  # the stake's target and its 100 % child
    assert len(in_2025 - between) == per_copy * stats["structures"]["dated_2025"]
    assert len(in_2026 - between) == per_copy * stats["structures"]["dated_2026"]
    # Decoys and unlisted cycles make no affiliate.
    for source in ("cycle_unlisted", "cycle_decoy", "decoy_40", "decoy_4999", "decoy_parent", "minority",
                   "background"):
        part = frame.source == f"synthetic/{source}"
        owned = {k for k, s in zip(graph.owned, part) if s}
        assert not owned & in_2025 and not owned & in_2026, source


def test_nothing_held_above_100_percent_and_no_repeats(default):
    _, frame = default
    graph = Graph(frame)
    pairs = list(zip(graph.owner, graph.owned, frame.valid_from, frame.valid_until))
    assert len(set(pairs)) == len(pairs)
    assert all(a != b for a, b in zip(graph.owner, graph.owned))
    total = pd.Series(graph.bp).groupby(pd.Series(graph.owned)).sum()
    assert total.max() <= 10_000


# ----------------------------------------------------------------------------------- ledger
def test_ledger_consignees_are_placed_and_expected(with_ledger):
    stats, frame, ledger, _ = with_ledger
    assert stats["ledger_consignees"] >= 12
    names = set(ledger.consignee_name)
    placed = stats["ledger_placed"]
    assert set(placed) <= names and len(placed) == stats["ledger_consignees"]
    for name, where in placed.items():
        rows = ledger[ledger.consignee_name == name]
        assert set(rows.destination_country) == {where["country"]}
        assert set(rows.consignee_id.fillna("")) == {where["id"] or ""}
    assert stats["ledger_affiliates"] and stats["ledger_minority"] and stats["ledger_decoys"]
    assert set(stats["ledger_dated"]) and {w["valid_from"] for w in stats["ledger_dated"].values()} == \
        {DATED["dated_2025"][0], DATED["dated_2026"][0]}
    assert not set(stats["ledger_affiliates"]) & set(stats["ledger_decoys"])
    graph = Graph(frame)

    def entity(name):
        where = placed[name]
        return key(where["id"] or "", name, where["country"])

    found = {day: graph.fixpoint(day) for day in (*CHECK_DATES, "2026-03-01")}
    for day, (affiliates, minority) in found.items():
        assert {entity(n) for n in stats["ledger_affiliates"]} <= affiliates
        assert not {entity(n) for n in stats["ledger_decoys"]} & affiliates
        assert {entity(n) for n in stats["ledger_minority"]} <= minority
    for name, window in stats["ledger_dated"].items():
        on = CHECK_DATES[0] if window["valid_from"] == "2025-01-01" else CHECK_DATES[1]
        off = CHECK_DATES[1] if on == CHECK_DATES[0] else CHECK_DATES[0]
        assert entity(name) in found[on][0] and entity(name) not in found[off][0]
        assert entity(name) not in found["2026-03-01"][0]
    # Ledger consignees appear by their ledger id where they have one, with their name.
    by_id = {n for n, w in placed.items() if w["id"]}
    assert by_id and set(frame.owned_id[frame.owned_name.isin(by_id)]) == {placed[n]["id"] for n in by_id}


def test_ledger_listed_consignees_are_never_placed(with_ledger):
    from pipeline.parties import PartyScreen
    from pipeline.reference import CSL_PATH

    stats, _, ledger, _ = with_ledger
    listed = set(PartyScreen.from_path(CSL_PATH).entries["normalized"].dropna())
    assert not {normalize_name(n) for n in stats["ledger_placed"]} & listed
    assert set(listed_party_names(40)) & set(ledger.consignee_name)  # the ledger has some


# ----------------------------------------------------------------------------------- bad rows
def test_bad_rows_only_when_asked(tmp_path, default):
    stats, frame = default
    assert not frame.source.str.contains("bad").any() and stats["expected_quarantined"] == 0
    bad = generate_ownership(tmp_path / "b.csv", holdings=2500, seed=4, bad_rows=14)
    with_bad = read_text(tmp_path / "b.csv")
    assert bad["bad_by_kind"] == {kind: 2 for kind in BAD_OWNERSHIP_KINDS}
    assert len(with_bad) == bad["rows"] == 2500 + 14 + 2 and bad["expected_quarantined"] == 16
    marked = with_bad.source.str.startswith("synthetic/bad:")
    assert marked.sum() == 16
    assert set(with_bad.percent[marked]) >= {"0", "120", "abc", "12.345"}
    # The valid rows are the same rows as without bad rows (in another order).
    clean = with_bad[~marked].sort_values(list(OWNERSHIP_COLUMNS)).reset_index(drop=True)
    pd.testing.assert_frame_equal(clean, frame.sort_values(list(OWNERSHIP_COLUMNS)).reset_index(drop=True))


def test_the_holdings_reader_quarantines_exactly_the_bad_rows(tmp_path, default, with_ledger):
    holdings = pytest.importorskip("pipeline.ownership")
    stats, _, _, path = with_ledger
    assert holdings.read_holdings(path).counts["quarantined"] == 0
    generate_ownership(tmp_path / "o.csv", holdings=2500, seed=4)
    assert holdings.read_holdings(tmp_path / "o.csv").counts["quarantined"] == 0
    bad = generate_ownership(tmp_path / "b.parquet", holdings=2500, seed=4, bad_rows=7)
    read = holdings.read_holdings(tmp_path / "b.parquet")
    assert read.counts["accepted"] == 2500 and read.counts["quarantined"] == bad["expected_quarantined"] == 8
    assert set(read.quarantine.source) == {f"synthetic/bad:{kind}" for kind in BAD_OWNERSHIP_KINDS}
    reasons = dict(zip(read.quarantine.source, read.quarantine.reason))
    assert reasons["synthetic/bad:self_ownership"] == "self-ownership"
    assert reasons["synthetic/bad:missing_owner"] == "missing owner"
    assert reasons["synthetic/bad:percent_text"] == "unknown percent"
    assert reasons["synthetic/bad:over_100_total"].startswith("over 100% held in one entity")


def test_the_kernel_finds_exactly_the_expected_affiliates(with_ledger):
    kernel = pytest.importorskip("kernels.ownership")
    if not hasattr(kernel, "resolve_affiliates"):
        pytest.skip("kernels.ownership.resolve_affiliates is not there yet")
    stats, frame, _, _ = with_ledger
    graph = Graph(frame)
    index = {k: i for i, k in enumerate(graph.entities)}
    listed = np.array([1 if k in graph.listed else 0 for k in graph.entities], np.int64)
    placed = {key(w["id"] or "", n, w["country"]): n for n, w in stats["ledger_placed"].items()}
    for day in CHECK_DATES:
        holdings = graph.active(day)
        owner = np.array([index[a] for a, _, _ in holdings], np.int64)
        owned = np.array([index[b] for _, b, _ in holdings], np.int64)
        bp = np.array([p for _, _, p in holdings], np.int64)
        result = kernel.resolve_affiliates(owner, owned, bp, listed)
        affiliates = {graph.entities[i] for i in np.flatnonzero(result.affiliate)}
        assert affiliates == graph.fixpoint(day)[0] and len(affiliates) == stats["affiliates"][day]
        # Red flag 29 (25 % to 49.99 %): the same whether affiliates' stakes count or not.
        held = np.asarray(result.held_bp)
        minority = {graph.entities[i] for i in np.flatnonzero((held >= 2500) & (held < 5000) & (listed == 0)
                                                               & ~np.asarray(result.affiliate))}
        assert len(minority) == stats["minority"]
        expected = set(stats["ledger_affiliates"]) | {n for n, w in stats["ledger_dated"].items()
                                                      if (w["valid_from"] == "2025-01-01") == (day == CHECK_DATES[0])}
        assert {placed[k] for k in affiliates if k in placed} == expected


# ----------------------------------------------------------------------------------- arguments and CLI
def test_bad_arguments(tmp_path):
    for kwargs, message in (({"holdings": 0}, "holdings"), ({"seed": -1}, "seed"), ({"bad_rows": -1}, "bad_rows")):
        with pytest.raises(ValueError, match=message):
            generate_ownership(tmp_path / "o.csv", **kwargs)
    with pytest.raises(ValueError, match="unknown extension"):
        generate_ownership(tmp_path / "o.json")
    small = generate_ownership(tmp_path / "o.csv", holdings=10)  # at least the structures
    assert small["holdings"] > 400 and small["structures"]["background"] == 0


def test_cli(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    ledger = tmp_path / "l.csv"
    generate_ledger(ledger, 3_000, seed=2)
    result = runner.invoke(app, ["generate-ownership", str(tmp_path / "o.parquet"), "--ledger", str(ledger),
                                 "--holdings", "1500", "--seed", "5", "--bad-rows", "3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "wrote 1,500 holdings among" in text and "chains (up to 100 levels)" in text
    assert "consignees of" in text and "affiliates" in text and "3 bad rows" in text
    stats = generate_ownership(tmp_path / "again.parquet", ledger=ledger, holdings=1500, seed=5, bad_rows=3)
    assert (tmp_path / "o.parquet").read_bytes() == (tmp_path / "again.parquet").read_bytes()
    assert f"{stats['affiliates'][CHECK_DATES[0]]:,} affiliates expected" in text

    default = runner.invoke(app, ["generate-ownership", str(tmp_path / "d.csv")])
    assert default.exit_code == 0 and len(read_text(tmp_path / "d.csv")) == 2000
    (tmp_path / "folder.csv").mkdir()
    for args, message in (
            ([str(ledger), "--ledger", str(ledger)], "is the input"),
            ([str(tmp_path / "folder.csv")], "is a folder"),
            ([str(tmp_path / "o.json")], "unknown extension"),
            ([str(tmp_path / "x.csv"), "--ledger", str(tmp_path / "missing.parquet")], "no such ledger file"),
            ([str(tmp_path / "x.csv"), "--seed", "-1"], "--seed must be non-negative")):
        result = runner.invoke(app, ["generate-ownership", *args])
        output = " ".join(result.output.split())
        assert result.exit_code == 1 and "error:" in output and message in output, (args, output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "x.csv").exists()
    assert runner.invoke(app, ["generate-ownership", str(tmp_path / "x.csv"), "--holdings", "0"]).exit_code == 2
