"""Quality and speed of restricted-party matching (issue 4).

Commands::

    python benchmarks/bench_parties.py build-eval          # writes benchmarks/eval/csl-pairs.csv
    python benchmarks/bench_parties.py build-qualifiers    # writes benchmarks/eval/qualifier-pairs.csv
    python benchmarks/bench_parties.py quality             # eval set + peer pairs → results JSON
    python benchmarks/bench_parties.py speed --names 1000000 --naive-sample 200

Results go to ``benchmarks/results/parties-<what>-<date>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.parties import GENERIC_WORDS, KIND_WORD, NameMatcher, naive_top_match, token_kind  # noqa: E402
from pipeline.parties import PartyScreen, normalize_name, strip_qualifiers  # noqa: E402
from pipeline.policy import load_policy  # noqa: E402

EVAL = ROOT / "benchmarks" / "eval"
RESULTS = ROOT / "benchmarks" / "results"
PAIRS = EVAL / "csl-pairs.csv"
QUALIFIER_PAIRS = EVAL / "qualifier-pairs.csv"
ENTITY_LISTS = ("EL", "MEU", "UVL", "CMIC")
LEGAL_SUFFIXES = ["Co., Ltd.", "Company Limited", "Limited", "LLC", "Ltd", "Corp.", "GmbH", "JSC", "Inc.",
                  "Co. Ltd", "S.A.", "FZE", "LLP", "Pvt. Ltd."]
EXTRA_WORDS = ["Branch", "Beijing Branch", "Shenzhen", "Moscow", "Dubai", "(HK)", "Group", "Hong Kong"]
REPLACEMENT_WORDS = """Nimbus Aurora Helix Quanta Vertex Zenith Stratus Orion Meridian Lumen Pinnacle Tessera
Kestrel Solace Arbor Cirrus Polaris Sable Tidal Vantage Argent Boreal Cascade Delphi Ember Fathom Granite
Indigo Juniper Keystone Lattice Northwind Onyx Paragon Quill Radiant Summit Trident Umbra Willow Yarrow
Zephyr Altair Beacon Crescent Dynamo Equinox Gemini Halcyon Lyra Mistral Obsidian Prism Rigel Sorrel
Brightway Goldleaf Clearwater Bluestone Evergreen Silverline Redwood Greenfield Sunrise Starlight""".split()
TO_CYRILLIC = [("shch", "щ"), ("kh", "х"), ("zh", "ж"), ("ts", "ц"), ("ch", "ч"), ("sh", "ш"), ("yu", "ю"),
               ("ya", "я"), ("a", "а"), ("b", "б"), ("v", "в"), ("g", "г"), ("d", "д"), ("e", "е"),
               ("z", "з"), ("i", "и"), ("y", "ы"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"),
               ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф")]
RUSSIAN_MARKERS = ("ooo", "ao", "oao", "zao", "pao", "zavod", "obshchestvo", "nauchno", "kontsern")
DENY = ["EL", "DPL", "SDN", "MEU", "DTC", "ISN", "FSE"]
REVIEW = ["UVL", "SSI", "CMIC", "NS-MBS", "CAP", "PLC"]


# --- building the evaluation set ------------------------------------------------------------------

def _distinctive(tokens: list[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if token_kind(normalize_name(t)) == KIND_WORD
            and normalize_name(t) not in GENERIC_WORDS and len(normalize_name(t)) >= 4]


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["sub", "swap", "drop", "double"])
    if kind == "sub":
        return word[:i] + rng.choice("aeioustrnl") + word[i + 1:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def _to_cyrillic(text: str) -> str:
    out, low, i = [], text.lower(), 0
    while i < len(low):
        for latin, cyr in TO_CYRILLIC:
            if low.startswith(latin, i):
                out.append(cyr)
                i += len(latin)
                break
        else:
            out.append(low[i])
            i += 1
    return "".join(out).upper()


def _variant(kind: str, name: str, words: list[str], distinctive: list[int], aliases: list[str],
             rng: random.Random) -> str | None:
    """One true variant of a listed name, or None when the kind does not apply."""
    if kind == "case":
        return name.upper() if rng.random() < 0.5 else name.lower()
    if kind == "punctuation":
        stripped = "".join(c for c in name if c.isalnum() or c == " ")
        return stripped if stripped != name else name.replace(" ", "-", 1)
    if kind == "legal_form":
        return normalize_name(name).title() + " " + rng.choice(LEGAL_SUFFIXES)
    if kind == "typo":
        i = max(distinctive, key=lambda k: len(words[k]))
        if len(words[i]) < 6:
            return None
        words[i] = _typo(words[i], rng)
        return " ".join(words)
    if kind == "word_order":
        return " ".join(words[1:] + words[:1]) if len(words) >= 2 else None
    if kind == "extra_words":
        return name + " " + rng.choice(EXTRA_WORDS)
    if kind == "alias":
        options = [a for a in aliases if normalize_name(a) != normalize_name(name)]
        return rng.choice(options) if options else None
    raise ValueError(kind)


def build_eval(seed: int = 4) -> pd.DataFrame:
    """Labelled pairs from the real list (see benchmarks/eval/SOURCES.md)."""
    rng = random.Random(seed)
    entries = PartyScreen.from_path().entries
    listed_texts = set(entries["normalized"])
    primary = entries[entries["alias"] == entries["listed_name"]]
    primary = primary[primary["list_code"].isin(ENTITY_LISTS)].drop_duplicates("entry_id")
    primary = primary[primary["listed_name"].str.split().str.len().between(2, 8)]
    records = primary.sample(frac=1.0, random_state=seed).to_dict("records")
    aliases = entries[entries["alias"] != entries["listed_name"]]
    alias_by_entry = aliases.groupby("entry_id")["alias"].apply(list).to_dict()
    rows = []

    def add(kind, label, query, candidate, entry_id):
        rows.append({"kind": kind, "label": label, "query": query, "candidate": candidate, "entry_id": entry_id})

    kinds = ["case", "punctuation", "legal_form", "typo", "typo", "word_order", "extra_words", "alias"]
    per_kind = {kind: 0 for kind in kinds + ["transliteration"]}
    used = set()
    for record in records:
        name, entry_id = record["listed_name"], record["entry_id"]
        words = name.replace(",", " ").split()
        distinctive = _distinctive(words)
        if not distinctive or entry_id in used:
            continue
        if all(per_kind[k] >= 35 * kinds.count(k) for k in kinds):
            break
        for kind in sorted(set(kinds), key=lambda k: per_kind[k] / kinds.count(k)):
            if per_kind[kind] >= 35 * kinds.count(kind):
                continue
            query = _variant(kind, name, list(words), distinctive, alias_by_entry.get(entry_id, []), rng)
            if query and query != name:
                add(kind, 1, query, name, entry_id)
                per_kind[kind] += 1
                used.add(entry_id)
                break
    # Transliteration: Russian names written in Cyrillic.
    russian = [r for r in records if r["entry_id"] not in used
               and any(t in RUSSIAN_MARKERS for t in normalize_name(r["listed_name"]).split())]
    for record in russian[:30]:
        add("transliteration", 1, _to_cyrillic(record["listed_name"]), record["listed_name"], record["entry_id"])
        used.add(record["entry_id"])
    # Hard negatives 1: a listed name with its distinctive words replaced (not on the list).
    for record in records:
        if sum(r["label"] == 0 for r in rows) >= 130:
            break
        name = record["listed_name"]
        words = name.split()
        distinctive = _distinctive(words)
        generic = [w for w in words if normalize_name(w) in GENERIC_WORDS]
        if not distinctive or not generic:
            continue
        for i in distinctive:
            words[i] = rng.choice(REPLACEMENT_WORDS)
        query = " ".join(words)
        if normalize_name(query) in listed_texts:
            continue
        add("replaced_words", 0, query, name, record["entry_id"])
    # Hard negatives 2: two different listed parties sharing generic words only.
    by_generic: dict[str, list[dict]] = {}
    for record in records:
        tokens = normalize_name(record["listed_name"]).split()
        for token in tokens:
            if token in GENERIC_WORDS:
                by_generic.setdefault(token, []).append(record)
    negatives = 0
    for token, group in sorted(by_generic.items()):
        rng.shuffle(group)
        for a, b in zip(group[::2], group[1::2]):
            ta = {t for t in normalize_name(a["listed_name"]).split() if token_kind(t) == KIND_WORD}
            tb = {t for t in normalize_name(b["listed_name"]).split() if token_kind(t) == KIND_WORD}
            if ta & tb or negatives >= 100:
                continue
            add("different_party", 0, a["listed_name"], b["listed_name"], b["entry_id"])
            negatives += 1
    frame = pd.DataFrame(rows)
    frame.insert(0, "pair_id", [f"C{i:04d}" for i in range(1, len(frame) + 1)])
    return frame


# --- qualifier variants (issue W8) ---------------------------------------------------------------------

HUAWEI = "Huawei Technologies Co., Ltd."
HAND_CASES = [  # (kind, label, query, listed name as on the list, destination)
    ("issue_w8", 1, "Huawei Technologies Co Ltd Dubai", HUAWEI, "AE"),
    ("issue_w8", 1, "Huawei Technologies (UAE)", HUAWEI, "AE"),
    ("issue_w8", 1, "Huawei Technologies Co., Ltd. (Dubai Branch)", HUAWEI, "AE"),
    ("issue_w8", 1, "Huawei Technologies Middle East FZ-LLC", HUAWEI, "AE"),
    ("issue_w8", 1, "Huawei Technologies Co., Ltd. c/o Acme Freight", HUAWEI, "AE"),
    ("hand", 1, "Sugon (Dubai Branch)", "Sugon", "AE"),
    ("hand", 1, "Megvii Technology Co Ltd Dubai", "Megvii Technology", "AE"),
    ("hand", 1, "SJ Semiconductor (Hong Kong) Limited", "SJ Semiconductor", "AE"),
    ("hand", 1, "IFLYTEK Co., Ltd. c/o Gulf Logistics LLC", "IFLYTEK", "AE"),
    ("hand", 1, "Rosoboronexport Middle East FZE", "Rosoboronexport", "AE"),
    ("hand", 1, "Iran Air Representative Office Dubai", "Iran Air", "AE"),
    ("hand", 0, "Dubai Semiconductor Trading LLC", "SJ Semiconductor", "AE"),
    ("hand", 0, "Gulf Technologies Co., Ltd. (Dubai Branch)", HUAWEI, "AE"),
    ("hand", 0, "Middle East Technology FZE", "Megvii Technology", "AE"),
]
QUALIFIER_TEMPLATES = ["{name} {city}", "{name} ({country})", "{name} ({city} Branch)", "{name} {region} FZE",
                       "{name} c/o {word} Logistics LLC", "{name} Representative Office {city}",
                       "{name} - {city} Office", "{name} [{city}]", "{name} {zone}", "{name} Co., Ltd. {city} Branch"]
Q_CITIES = ["Dubai", "Abu Dhabi", "Sharjah", "Hong Kong", "Singapore", "Istanbul", "Moscow", "Kuala Lumpur",
            "Tashkent", "Almaty", "Yerevan", "Tbilisi", "Shenzhen", "Karachi", "Bangkok"]
Q_COUNTRIES = ["UAE", "HK", "Turkey", "Malaysia", "Russia", "Kazakhstan", "Armenia", "Singapore", "U.A.E."]
Q_REGIONS = ["Middle East", "Asia Pacific", "Gulf", "Central Asia", "MENA"]
Q_ZONES = ["JAFZA", "DMCC", "Jebel Ali Free Zone", "SAIF Zone", "(Jebel Ali Free Zone)"]
Q_LEGAL = ["LLC", "FZE", "FZCO", "Co., Ltd.", "Trading LLC", "L.L.C."]


def _qualified(name: str, rng: random.Random, template: str | None = None) -> str:
    template = template or rng.choice(QUALIFIER_TEMPLATES)
    return template.format(name=name, city=rng.choice(Q_CITIES), country=rng.choice(Q_COUNTRIES),
                           region=rng.choice(Q_REGIONS), zone=rng.choice(Q_ZONES), word=rng.choice(REPLACEMENT_WORDS))


def build_qualifier_eval(seed: int = 8, positives: int = 150, negatives: int = 150) -> pd.DataFrame:
    """Listed names followed by places, branch words, c/o and bracketed qualifiers, and negatives that
    differ from a listed name in qualifiers only (see benchmarks/eval/SOURCES.md)."""
    rng = random.Random(seed)
    entries = PartyScreen.from_path().entries
    listed_texts = set(entries["normalized"])
    primary = entries[(entries["alias"] == entries["listed_name"]) & entries["list_code"].isin(ENTITY_LISTS)]
    first_id = entries.drop_duplicates("normalized").set_index("normalized")["entry_id"].to_dict()
    rows = []

    def add(kind, label, query, candidate, destination="AE"):
        rows.append({"kind": kind, "label": label, "query": query, "candidate": candidate,
                     "entry_id": first_id.get(normalize_name(candidate), ""), "destination": destination})

    for kind, label, query, candidate, destination in HAND_CASES:
        add(kind, label, query, candidate, destination)
    primary = primary.drop_duplicates("entry_id")
    primary = primary[primary["listed_name"].str.split().str.len().between(2, 6)]
    records = primary.sample(frac=1.0, random_state=seed).to_dict("records")
    used = set()
    for i, record in enumerate(records):
        if sum(r["kind"] == "qualified" for r in rows) >= positives:
            break
        name = record["listed_name"]
        words = name.replace(",", " ").split()
        if not _distinctive(words) or strip_qualifiers(name) or record["normalized"] in used:
            continue  # names that already end in a qualifier are left out: their variants are ambiguous
        used.add(record["normalized"])
        add("qualified", 1, _qualified(name, rng, QUALIFIER_TEMPLATES[i % len(QUALIFIER_TEMPLATES)]), name)
    # Qualifiers and a typo in the longest distinctive word.
    for record in records:
        if sum(r["kind"] == "qualified_typo" for r in rows) >= positives // 4:
            break
        name = record["listed_name"]
        words = name.split()
        distinctive = _distinctive(words)
        if not distinctive or strip_qualifiers(name) or record["normalized"] in used:
            continue
        i = max(distinctive, key=lambda k: len(words[k]))
        if len(words[i]) < 6:
            continue
        used.add(record["normalized"])
        words[i] = _typo(words[i], rng)
        add("qualified_typo", 1, _qualified(" ".join(words), rng), name)
    # Negatives 1: a listed name with its distinctive words replaced, plus qualifiers.
    for record in records:
        if sum(r["kind"] == "replaced_qualified" for r in rows) >= negatives // 2:
            break
        name = record["listed_name"]
        words = name.split()
        distinctive = _distinctive(words)
        if not distinctive or not any(normalize_name(w) in GENERIC_WORDS for w in words):
            continue
        for i in distinctive:
            words[i] = rng.choice(REPLACEMENT_WORDS)
        query = _qualified(" ".join(words), rng)
        if normalize_name(query) in listed_texts or strip_qualifiers(query) in listed_texts:
            continue
        add("replaced_qualified", 0, query, name)
    # Negatives 2: a place, the generic words of a listed name and a legal form ("Dubai Trading LLC"
    # against a listed "X Trading (Dubai)"): the same words as the listed name but its distinctive ones.
    for record in records:
        if sum(r["kind"] == "place_generic" for r in rows) >= negatives - negatives // 2:
            break
        name = record["listed_name"]
        generic = [w for w in name.replace(",", " ").split() if normalize_name(w) in GENERIC_WORDS]
        if not generic or not _distinctive(name.split()):
            continue
        query = f"{rng.choice(Q_CITIES)} {' '.join(generic)} {rng.choice(Q_LEGAL)}"
        if normalize_name(query) in listed_texts:
            continue
        add("place_generic", 0, query, name)
    frame = pd.DataFrame(rows)
    frame.insert(0, "pair_id", [f"Q{i:04d}" for i in range(1, len(frame) + 1)])
    return frame


def qualifier_quality(policy_id: str = "post-rescission-2025") -> dict:
    """Screen the qualifier variants through ``screen_policy`` with each row's destination."""
    pairs = pd.read_csv(QUALIFIER_PAIRS, dtype=str, keep_default_na=False)
    pairs["label"] = pairs["label"].astype(int)
    policy = load_policy(policy_id)
    screen = PartyScreen.from_path()
    result = screen.screen_policy(pairs["query"].tolist(), policy, countries=pairs["destination"].tolist())
    texts = screen.entries.groupby("entry_id")["normalized"].agg(set).to_dict()  # every name of an entry
    same = [bool(f) and normalize_name(c) in texts.get(f, ())
            for f, c in zip(result["party_entry_id"].fillna(""), pairs["candidate"])]
    listed = screen.screen_policy(pairs["candidate"].tolist(), policy, countries=pairs["destination"].tolist())
    pairs["expected"] = listed["outcome"].fillna("").to_numpy()  # what the listed name itself gets
    pairs["flag"] = result["outcome"].isin(["block", "review"]).to_numpy()
    pairs["blocked"] = (result["outcome"] == "block").to_numpy()
    pairs["found"] = pairs["flag"] & np.array(same)
    pairs["as_listed"] = pairs["found"] & (result["outcome"].fillna("").to_numpy() == pairs["expected"])
    pairs["found_blocked"] = pairs["blocked"] & np.array(same)
    pairs["pair_score"] = screen.pair_scores(pairs["query"].tolist(), pairs["candidate"].tolist())
    true, negative = pairs[pairs["label"] == 1], pairs[pairs["label"] == 0]
    deny = true[true["expected"] == "block"]
    block, review = _thresholds(policy_id)
    return {
        "policy": policy_id, "pairs": len(pairs), "true_variants": len(true), "negatives": len(negative),
        "note": "screen_policy against the whole list with the row's destination (AE); a variant counts when "
                "the chosen hit has its listed name; 'as listed': and the outcome the listed name itself gets",
        "recall_as_listed": round(float(true["as_listed"].mean()), 4),
        "recall_as_listed_by_kind": true.groupby("kind")["as_listed"].mean().round(4).to_dict(),
        "recall_block_or_review": round(float(true["found"].mean()), 4),
        "recall_block_or_review_by_kind": true.groupby("kind")["found"].mean().round(4).to_dict(),
        "deny_list_variants": len(deny),
        "recall_block": round(float(deny["found_blocked"].mean()), 4),
        "false_flag_rate": round(float(negative["flag"].mean()), 4),
        "false_block_rate": round(float(negative["blocked"].mean()), 4),
        "false_flag_by_kind": negative.groupby("kind")["flag"].mean().round(4).to_dict(),
        "pairwise_recall_block": round(float((true["pair_score"] >= block).mean()), 4),
        "pairwise_false_flag_rate": round(float((negative["pair_score"] >= review).mean()), 4),
        "misses": true.loc[~true["as_listed"], ["kind", "query", "candidate"]].head(20).to_dict("records"),
        "false_flags": negative.loc[negative["flag"], ["kind", "query", "candidate"]].head(20).to_dict("records"),
    }


# --- quality ----------------------------------------------------------------------------------------

def _thresholds(policy_id: str) -> tuple[float, float]:
    policy = load_policy(policy_id)
    return float(policy.get("parties.block_score")), float(policy.get("parties.review_score"))


def quality(policy_id: str) -> dict:
    pairs = pd.read_csv(PAIRS, dtype=str, keep_default_na=False)
    pairs["label"] = pairs["label"].astype(int)
    block, review = _thresholds(policy_id)
    screen = PartyScreen.from_path()
    # Pairwise: the score of each (query, candidate) pair, as `chipscreen match-names` computes it.
    pairs["score"] = screen.pair_scores(pairs["query"].tolist(), pairs["candidate"].tolist())
    pairs["flag"] = pairs["score"] >= review
    pairs["blocked"] = pairs["score"] >= block
    # Against the full list: does screening the query find the right party (or, for negatives, block)?
    result = screen.screen(pairs["query"].tolist(), DENY, REVIEW, block_score=block, review_score=review)
    expected_text = dict(zip(screen.entries["entry_id"], screen.entries["listed_name"].map(normalize_name)))
    found = result["party_entry_id"].fillna("").tolist()
    same_party = [bool(f == e or (f and expected_text.get(f) == expected_text.get(e)))
                  for f, e in zip(found, pairs["entry_id"])]
    pairs["list_flag"] = result["outcome"].isin(["block", "review"]).to_numpy() & np.array(same_party)
    pairs["list_blocked"] = (result["outcome"] == "block").to_numpy()
    pairs["list_any_flag"] = result["outcome"].isin(["block", "review"]).to_numpy()
    true, negative = pairs[pairs["label"] == 1], pairs[pairs["label"] == 0]
    pairwise_true = true[true["kind"] != "alias"]
    report = {
        "policy": policy_id, "block_score": block, "review_score": review,
        "pairs": len(pairs), "true_variants": len(true), "hard_negatives": len(negative),
        "list_screening": {
            "recall_block_or_review": round(float(true["list_flag"].mean()), 4),
            "false_block_rate": round(float(negative.loc[negative["kind"] == "replaced_words", "list_blocked"].mean()), 4),
            "false_flag_rate": round(float(negative["list_any_flag"].mean()), 4),
            "false_flag_by_kind": negative.groupby("kind")["list_any_flag"].mean().round(4).to_dict(),
            "note": "queries screened against the whole list; a true variant counts when the chosen hit is its party",
            "recall_by_kind": true.groupby("kind")["list_flag"].mean().round(4).to_dict(),
        },
        "pairwise": {
            "recall_block_or_review": round(float(pairwise_true["flag"].mean()), 4),
            "false_block_rate": round(float(negative["blocked"].mean()), 4),
            "false_review_rate": round(float((negative["flag"] & ~negative["blocked"]).mean()), 4),
            "note": "match-names scores of (query, candidate); alias pairs left out (different strings by nature)",
            "recall_by_kind": pairwise_true.groupby("kind")["flag"].mean().round(4).to_dict(),
            "false_block_by_kind": negative.groupby("kind")["blocked"].mean().round(4).to_dict(),
        },
        "misses": true.loc[~true["list_flag"], ["kind", "query", "candidate"]].head(20).to_dict("records"),
        "false_blocks": negative.loc[negative["blocked"], ["kind", "query", "candidate"]].head(20).to_dict("records"),
    }
    report["peers"] = peer_quality(block, review)
    report["qualifiers"] = qualifier_quality()
    return report


def peer_quality(block: float, review: float) -> dict:
    peers = pd.read_csv(EVAL / "peer-match-cases.csv", dtype=str, keep_default_na=False)
    peers = peers[peers["expected_outcome"].isin(["match", "no_match"])].reset_index(drop=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "chipscreen-peer-pairs"
    work.mkdir(parents=True, exist_ok=True)
    peers[["query", "candidate"]].to_csv(work / "pairs.csv", index=False)
    command = [sys.executable, "-m", "flows.cli", "match-names", "--pairs", str(work / "pairs.csv"),
               "--out", str(work / "scored.csv")]
    subprocess.run(command, check=True, cwd=ROOT)
    scored = pd.read_csv(work / "scored.csv", dtype={"outcome": str}, keep_default_na=False)
    peers["flag"] = scored["outcome"].isin(["block", "review"]).to_numpy()
    peers["truth"] = peers["expected_outcome"] == "match"

    def balanced(frame: pd.DataFrame) -> dict:
        tpr = float(frame.loc[frame["truth"], "flag"].mean())
        tnr = float(1 - frame.loc[~frame["truth"], "flag"].mean())
        return {"pairs": len(frame), "true_positive_rate": round(tpr, 4), "true_negative_rate": round(tnr, 4),
                "balanced_accuracy": round((tpr + tnr) / 2, 4)}

    companies = peers["candidate_schema"].isin(["Company", "Organization", "LegalEntity"])
    return {"command": "chipscreen match-names --pairs PAIRS.csv --out SCORED.csv (the peer query,candidate pairs)",
            "overall": balanced(peers),
            "companies": balanced(peers[companies]), "persons": balanced(peers[peers["candidate_schema"] == "Person"]),
            "reference_logic_v2_overall": 0.767}


# --- speed --------------------------------------------------------------------------------------------

SYLLABLES = "ka ri to na shi mo lu ven tar zel qui bra dor fen gal hul jin kor lem nix pol rus sem tav wen xin yor zan".split()
PLACES = ["Shenzhen", "Shanghai", "Beijing", "Dubai", "Moscow", "Singapore", "Hong Kong", "Tianjin", "Mumbai",
          "Istanbul", "Almaty", "Minsk", "Tehran", "Karachi", "Berlin", "Tokyo", "Seoul", "Taipei"]
GENERIC = ["Technology", "Technologies", "Trading", "International", "Electronics", "Industrial", "Group",
           "Holdings", "Systems", "Solutions", "Import Export", "Engineering", "Logistics", "Supply"]


def synthetic_names(count: int, seed: int = 7) -> list[str]:
    """Distinct synthetic consignee names: invented words, places, generic words, legal forms; 1% are
    variants of listed names."""
    rng = np.random.default_rng(seed)
    names: dict[str, None] = {}
    listed = PartyScreen.from_path().entries["listed_name"].unique()
    while len(names) < count:
        n = count - len(names)
        syl = np.array(SYLLABLES)
        word = lambda k: ["".join(s).capitalize() for s in syl[rng.integers(0, len(syl), size=(n, k))]]  # noqa: E731
        w1, w2 = word(2), word(3)
        place = np.array(PLACES)[rng.integers(0, len(PLACES), n)]
        generic = np.array(GENERIC)[rng.integers(0, len(GENERIC), n)]
        legal = np.array(LEGAL_SUFFIXES)[rng.integers(0, len(LEGAL_SUFFIXES), n)]
        shape = rng.integers(0, 4, n)
        variant = rng.random(n) < 0.01
        picks = listed[rng.integers(0, len(listed), n)]
        for i in range(n):
            if variant[i]:
                name = f"{picks[i]} {place[i]}"
            elif shape[i] == 0:
                name = f"{place[i]} {w1[i]} {generic[i]} {legal[i]}"
            elif shape[i] == 1:
                name = f"{w1[i]} {w2[i]} {generic[i]} {legal[i]}"
            elif shape[i] == 2:
                name = f"{w2[i]} {place[i]} {legal[i]}"
            else:
                name = f"{w1[i]} {w2[i]}"
            names[name] = None
    return list(names)[:count]


def speed(count: int, naive_sample: int, policy_id: str) -> dict:
    block, review = _thresholds(policy_id)
    screen = PartyScreen.from_path()
    started = time.perf_counter()
    names = synthetic_names(count)
    generate_s = time.perf_counter() - started
    screen.screen(names[:1000], DENY, REVIEW)  # compile and build the matcher outside the timing
    started = time.perf_counter()
    result = screen.screen(names, DENY, REVIEW, block_score=block, review_score=review)
    screen_s = time.perf_counter() - started
    matcher: NameMatcher = screen.matcher
    sample = [normalize_name(n) for n in names[:naive_sample]]
    started = time.perf_counter()
    naive_top_match(matcher, sample)
    naive_s = time.perf_counter() - started
    naive_total = naive_s / naive_sample * count
    return {
        "names": count, "listed_texts": len(matcher.listed), "listed_entries": len(screen.entries),
        "generate_s": round(generate_s, 2), "screen_s": round(screen_s, 2),
        "names_per_s": round(count / screen_s), "outcomes": result["outcome"].value_counts().to_dict(),
        "naive_all_pairs": {"sample": naive_sample, "sample_s": round(naive_s, 3),
                            "extrapolated_s": round(naive_total, 1),
                            "pairs_per_s": round(naive_sample * len(matcher.listed) / naive_s)},
        "speedup_vs_naive": round(naive_total / screen_s, 1),
        "threads": int(__import__("numba").get_num_threads()),
    }


def _write(kind: str, report: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": f"parties-{kind}", "date": dt.date.today().isoformat(), "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}, **report}
    path = RESULTS / f"parties-{kind}-{dt.date.today():%Y%m%d}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build-eval")
    sub.add_parser("build-qualifiers")
    q = sub.add_parser("quality")
    q.add_argument("--policy", default="ai-diffusion-2025")
    s = sub.add_parser("speed")
    s.add_argument("--names", type=int, default=1_000_000)
    s.add_argument("--naive-sample", type=int, default=200)
    s.add_argument("--policy", default="ai-diffusion-2025")
    args = parser.parse_args()
    if args.command == "build-eval":
        frame = build_eval()
        frame.to_csv(PAIRS, index=False)
        print(f"wrote {len(frame)} pairs to {PAIRS}: {frame.groupby(['label', 'kind']).size().to_dict()}")
    elif args.command == "build-qualifiers":
        frame = build_qualifier_eval()
        frame.to_csv(QUALIFIER_PAIRS, index=False)
        print(f"wrote {len(frame)} pairs to {QUALIFIER_PAIRS}: {frame.groupby(['label', 'kind']).size().to_dict()}")
    elif args.command == "quality":
        report = quality(args.policy)
        print(json.dumps({k: v for k, v in report.items() if k not in ("misses", "false_blocks")}, indent=2))
        print(_write("quality", report))
    else:
        report = speed(args.names, args.naive_sample, args.policy)
        print(json.dumps(report, indent=2))
        print(_write("speed", report))


if __name__ == "__main__":
    main()
