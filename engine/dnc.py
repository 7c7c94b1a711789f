"""Do-not-call lists: reading the numbers an account lists, as an import file or a request
gives them.

A list holds E.164 numbers. Each entry is normalised as a dial's destination is (national
formats read in the account's default region), so ``(212) 555-0187`` in a US account and
``+12125550187`` are one entry, and a dial matches the entry whatever way it was written.
An entry that is not a valid number, or is an emergency number (never blocked), refuses the
whole list, naming its line: nothing of a refused import is written.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import InvalidField
from .numbers import normalise

__all__ = ["DNC_LINE_MAX", "parse_number", "parse_numbers"]

DNC_LINE_MAX = 64
"""The longest line an import reads as a number (a number as written, with spaces and
punctuation, is far shorter); a longer one is refused rather than parsed."""

_read = normalise.__wrapped__
"""Not the cached ``normalise``: a million numbers read once would push the dials' numbers
out of its cache."""


def parse_number(raw: str, default_region: str, *, where: str = "number") -> str:
    """``raw`` as the E.164 number a list keeps; ``InvalidField`` naming ``where`` if it is
    not a number that can be listed."""
    text = raw.strip()
    if len(text) > DNC_LINE_MAX:
        raise InvalidField(f"{where}: {text[:DNC_LINE_MAX]!r}... is too long to be a phone "
                           f"number (at most {DNC_LINE_MAX} characters)", field="numbers")
    dest = _read(text, default_region)
    if dest is None:
        raise InvalidField(f"{where}: {text!r} is not a valid phone number (national numbers "
                           f"are read as {default_region})", field="numbers")
    if dest.emergency:
        raise InvalidField(f"{where}: {text!r} is an emergency number, which is never blocked",
                           field="numbers")
    return dest.e164


def parse_numbers(lines: Iterable[str], default_region: str) -> list[str]:
    """Every number of ``lines`` (one per line; blank lines and lines starting with ``#`` are
    skipped) as E.164, in order, duplicates kept; ``InvalidField`` naming the first bad line
    (counted from 1)."""
    numbers = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        numbers.append(parse_number(text, default_region, where=f"line {n}"))
    return numbers
