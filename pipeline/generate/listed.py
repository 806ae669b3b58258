"""Real screening-list names to mix into synthetic consignee pools."""
from __future__ import annotations

from pipeline.reference import CSL_PATH


def listed_party_names(count: int = 60, lists: tuple[str, ...] = ("EL", "UVL", "MEU", "SSI")) -> list[str]:
    """A deterministic sample of real screening-list names (deny and review lists alike), for
    synthetic consignee pools."""
    from pipeline.parties import PartyScreen  # the list loader, only when a pool needs it

    entries = PartyScreen.from_path(CSL_PATH).entries
    per_list = max(1, count // len(lists))
    sample = []
    for code in lists:
        names = sorted(set(entries.loc[entries["list_code"] == code, "listed_name"]))
        step = max(1, len(names) // per_list)
        sample += names[::step][:per_list]
    return sample
