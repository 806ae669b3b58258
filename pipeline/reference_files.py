"""What the readers of user-given reference tables share (license registers, ownership files):
refusing a header they cannot trust, and CSV bytes that are not UTF-8 text."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Sequence


def did_you_mean(value: str, choices: Sequence[str]) -> str:
    """``" (did you mean X?)"`` for the closest choice (case-insensitive first), else ``""``.

    Examples
    --------
    >>> did_you_mean("max_unit", ["max_units", "max_tpp"]), did_you_mean("SKUS", ["skus"])
    (' (did you mean max_units?)', ' (did you mean skus?)')
    """
    folded = {choice.casefold(): choice for choice in choices}
    if value.casefold() in folded:
        return f" (did you mean {folded[value.casefold()]}?)"
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_header(path: Path, names: Sequence[str], known: Sequence[str], noun: str,
                 error: type[Exception], label: str | None = None) -> None:
    """Refuse an unnamed, repeated or unknown column (``noun`` names the file's kind in messages,
    e.g. ``"register"``, ``label`` its columns, ``noun`` by default); the caller checks what is
    required."""
    for number, name in enumerate(names, 1):
        if not name:
            raise error(f"{path}: column {number} of the header has no name")
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise error(f"{path}: column(s) given twice: {', '.join(repeated)}")
    unknown = [name for name in names if name not in known]
    if unknown:
        name = unknown[0]
        hint = did_you_mean(name, known)
        if not hint and len(names) == 1 and ";" in name:
            hint = f" (is the file ';'-separated? {'an' if noun[0] in 'aeiou' else 'a'} {noun} is ','-separated)"
        raise error(f"{path}: unknown column {name!r}{hint}; {label or noun} columns are {', '.join(known)}")


def refuse_non_text(path: Path, head: bytes, what: str, error: type[Exception]) -> None:
    """Refuse the start of a ``.csv`` file that is Parquet, gzip-compressed, UTF-16 or UTF-32
    (``what`` names the file in the advice, e.g. ``"the register"``)."""
    if head[:4] == b"PAR1":
        raise error(f"{path}: is Parquet, not CSV (rename it .parquet)")
    if head[:2] == b"\x1f\x8b":
        raise error(f"{path}: gzip-compressed data; decompress it to a .csv file")
    if head[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        raise error(f"{path}: UTF-32 text; save {what} as UTF-8 CSV")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise error(f"{path}: UTF-16 text; save {what} as UTF-8 CSV")
