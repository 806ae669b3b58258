"""Markdown summaries of runs, published as Prefect artifacts."""
from __future__ import annotations

from pathlib import Path

DECISION_COLUMNS = ("DENIED", "REVIEW", "CAP_EXCEEDED", "LICENSE_REQUIRED", "AUTHORIZED", "NLR")


def _cell(value) -> str:
    """Text safe inside a Markdown table cell (input strings are untrusted)."""
    text = str(value)
    for char in "\\|`*_[]<>#":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def decisions_markdown(summary: dict, top: int = 15) -> str:
    """Decisions by destination as a Markdown table, the busiest destinations first."""
    lines = ["| destination | " + " | ".join(DECISION_COLUMNS) + " |", "|---" * (len(DECISION_COLUMNS) + 1) + "|"]
    for destination, counts in list(summary["by_destination"].items())[:top]:
        lines.append(f"| {_cell(destination)} | " + " | ".join(f"{counts.get(d, 0):,}" for d in DECISION_COLUMNS) + " |")
    totals = summary["decisions"]
    lines.append("| **all** | " + " | ".join(f"**{totals.get(d, 0):,}**" for d in DECISION_COLUMNS) + " |")
    return "\n".join(lines)


def headroom_markdown(summary: dict, top: int = 10) -> str:
    """Cap headroom, least remaining first, as a Markdown table."""
    headroom = summary.get("allocation_headroom") or []
    if not headroom:
        return "_No allocation candidates._"
    lines = ["| allocation | cap TPP | allocated TPP | remaining TPP | rows over |", "|---|---|---|---|---|"]
    for item in headroom[:top]:
        lines.append(f"| {_cell(item['allocation'])} | {item['cap_tpp']:,} | {item['allocated_tpp']:,} | "
                     f"{item['remaining_tpp']:,} | {item['exceeded_rows']:,} |")
    return "\n".join(lines)


def run_markdown(title: str, summary: dict, out: Path, extra: str = "") -> str:
    """The artifact of a screening or audit run: headline, tables, links to the outputs."""
    rows = summary["rows"]
    files = sorted(p.name for p in Path(out).iterdir())
    links = "\n".join(f"- [{_cell(name)}]({(Path(out) / name).absolute().as_uri()})" for name in files)
    return "\n\n".join(part for part in [
        f"# {_cell(title)}",
        f"Rule set **{_cell(summary['policy']['id'])}**; {rows['accepted']:,} rows in the history, "
        f"{rows['quarantined']:,} quarantined.",
        extra,
        "## Decisions by destination",
        decisions_markdown(summary),
        "## Cap headroom",
        headroom_markdown(summary),
        "## Outputs",
        links,
    ] if part)
