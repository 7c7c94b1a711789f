"""Rotation and daily caps: which of several equal numbers a dial goes out from.

A rule may offer more than one number (local presence offers every number of the callee's
area code): the one used least today wins, ties going to the lowest number. Each dial counts
against the number it went out from, so over a day the numbers take turns, a round robin
that a restart or a second process does not reset (the counts live in the store).

A number may have a daily cap: once it has placed that many calls today (the account's
day), every rule but a requested caller ID passes it over, and a requested one is denied
``caller_id_capped`` unless the account lets users go over.

Pure: the counts come from the store, which picks in the same atomic step that takes the
channel (``engine.store.protocol.Plan``), so two dials never both take a number's last call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

__all__ = ["NO_CAPS", "Caps", "least_used"]


class Caps(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An account's daily caps: ``default`` for every number (None: no cap) unless the
    number is in ``overrides``."""

    default: int | None = None
    overrides: dict[str, int] = {}

    def __bool__(self) -> bool:
        return self.default is not None or bool(self.overrides)

    def of(self, number: str) -> int | None:
        cap = self.overrides.get(number)
        return cap if cap is not None else self.default

    def over(self, number: str, counts: Mapping[str, int]) -> bool:
        """Whether ``number`` has used up today's calls."""
        cap = self.of(number)
        return cap is not None and counts.get(number, 0) >= cap


NO_CAPS = Caps()


def least_used(
    numbers: Iterable[str], available: frozenset[str] | None, counts: Mapping[str, int] | None,
    caps: Caps = NO_CAPS,
) -> str | None:
    """The number of ``numbers`` (in order, lowest first) in ``available`` (None: all) and
    under its cap that was used least today, the earliest on a tie; None when there is none.
    Without ``counts`` (nothing counted yet), the first in ``available``."""
    if counts is None and not caps:
        for number in numbers:
            if available is None or number in available:
                return number
        return None
    if counts is None:
        counts = {}
    best, fewest = None, 0
    for number in numbers:
        if available is None or number in available:
            used = counts.get(number, 0)
            if (best is None or used < fewest) and not caps.over(number, counts):
                best, fewest = number, used
    return best


ALL_CAPPED = "every number the rules offer has placed all of today's calls (its daily cap)"
"""Why a dial whose every candidate is capped is denied ``caller_id_capped``."""


def capped(number: str, cap: int | None) -> str:
    """Why ``number`` is passed over (or, requested, refused): its cap is used up."""
    return f"{number} has placed all {cap} of its calls for today (its daily cap)"
