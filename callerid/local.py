"""Local presence: present a number near the callee.

Among the numbers a user may present, the first tier that has any wins: one with the callee's
area code (the NANP area code, or the geographic area code elsewhere), then one in the
callee's state or province (NANP numbers, by ``callerid.nanp``), then one in the callee's
country (for NANP numbers the ISO country, since +1 spans the US, Canada and the Caribbean;
elsewhere the calling code). Within a tier the number used least today wins, the lowest on
a tie (``callerid.rotation``).

``compile_local`` indexes an account's active numbers once per configuration version: by the
start of the E.164 number ('+1212', '+4420', ...) and by NANP region ('US-NY', 'US'), so a
dial looks up its tier's numbers instead of scanning the pool.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec

from .geo import Destination
from .nanp import country_of, nanp_region

__all__ = [
    "LocalIndex", "Tier", "compile_local", "local_pick", "local_tiers",
]

_SHORTEST, _LONGEST = 2, 9
"""The prefixes indexed: '+7' (a whole calling code) up to '+1212555' (a NANP exchange)."""


class Tier(enum.StrEnum):
    AREA_CODE = "area code"
    REGION = "state or province"
    COUNTRY = "country"


class LocalIndex(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    by_prefix: dict[str, tuple[str, ...]]
    """Numbers by every start of their E.164 form ('+1', '+12', ... '+1212555'), sorted."""
    by_region: dict[str, tuple[str, ...]]
    """NANP numbers by their state or province ('US-NY') and their country ('US'), sorted."""


def compile_local(numbers: Iterable[str]) -> LocalIndex:
    by_prefix: dict[str, list[str]] = {}
    by_region: dict[str, list[str]] = {}
    for number in sorted(numbers):
        for length in range(_SHORTEST, min(len(number), _LONGEST) + 1):
            by_prefix.setdefault(number[:length], []).append(number)
        if number.startswith("+1"):
            region = nanp_region(number[2:])
            if region is not None:
                by_region.setdefault(region, []).append(number)
                if country_of(region) != region:
                    by_region.setdefault(country_of(region), []).append(number)
    return LocalIndex(by_prefix={k: tuple(v) for k, v in by_prefix.items()},
                      by_region={k: tuple(v) for k, v in by_region.items()})


def local_tiers(index: LocalIndex, dest: Destination) -> list[tuple[Tier, str, tuple[str, ...]]]:
    """The callee's tiers in order, each with what names it and the account's numbers in it."""
    tiers: list[tuple[Tier, str, tuple[str, ...]]] = []
    if dest.area is not None:
        tiers.append((Tier.AREA_CODE, dest.area, index.by_prefix.get(dest.area, ())))
    if dest.subdivision is not None:
        tiers.append((Tier.REGION, dest.subdivision, index.by_region.get(dest.subdivision, ())))
    if dest.country_code == 1:
        if dest.region is not None:
            tiers.append((Tier.COUNTRY, dest.region, index.by_region.get(dest.region, ())))
    else:
        code = f"+{dest.country_code}"
        tiers.append((Tier.COUNTRY, code, index.by_prefix.get(code, ())))
    return tiers


def local_pick(
    index: LocalIndex, dest: Destination, available: frozenset[str]
) -> tuple[Tier, str, str] | None:
    """The first tier with a number of ``available``: (tier, what names it, the number)."""
    for tier, key, numbers in local_tiers(index, dest):
        for number in numbers:
            if number in available:
                return tier, key, number
    return None
