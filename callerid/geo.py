"""Geo caller ID: pick a number by where the callee is.

A user's geo configuration compiles to a ``GeoTable`` of plain dicts: area-code prefixes per
country calling code, ISO regions, calling codes and a default. ``match`` walks them in the
published order: the longest area-code prefix of the callee's national number, then the
callee's ISO region, then its calling code (so a rule for CA beats a rule for +1 for a Toronto
number, while a US number falls to the +1 rule), then the default geo ID.
"""

from __future__ import annotations

import enum

import msgspec

from .model import GeoConfig, Rule

__all__ = ["Destination", "GeoMatch", "GeoTable", "NumberKind", "compile_geo", "match"]


class NumberKind(enum.StrEnum):
    """What kind of number a destination is, as phonenumbers classes it."""

    FIXED_LINE = "fixed_line"
    MOBILE = "mobile"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    EMERGENCY = "emergency"
    UNKNOWN = "unknown"


class Destination(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A normalised callee, as the engine hands it to policy and caller-ID resolution."""

    e164: str
    country_code: int
    national_number: str
    region: str | None
    """ISO region of the number; ``001`` for non-geographic services; None when unknown."""
    emergency: bool = False
    kind: NumberKind = NumberKind.UNKNOWN
    area: str | None = None
    """The callee's area as the start of an E.164 number ('+1212' for a New York number): the
    NANP area code, or elsewhere the geographic area code phonenumbers knows; None for
    numbers with none (most mobiles outside NANP, non-geographic numbers)."""
    subdivision: str | None = None
    """The state or province (ISO 3166-2, 'US-NY') of a NANP number, from ``callerid.nanp``."""


class GeoTable(msgspec.Struct, frozen=True, kw_only=True):
    area_codes: dict[int, dict[str, str]]
    longest_prefix: dict[int, int]
    regions: dict[str, str]
    calling_codes: dict[int, str]
    default: str | None


class GeoMatch(msgspec.Struct, frozen=True):
    rule: Rule
    number: str
    detail: str


def compile_geo(config: GeoConfig) -> GeoTable:
    area_codes: dict[int, dict[str, str]] = {}
    for rule in config.area_codes:
        table = area_codes.setdefault(rule.country_code, {})
        for prefix in rule.area_codes:
            table[prefix] = rule.number
    regions = {r.region: r.number for r in config.countries if r.region is not None}
    calling_codes = {
        r.calling_code: r.number for r in config.countries if r.calling_code is not None
    }
    return GeoTable(
        area_codes=area_codes,
        longest_prefix={cc: max(map(len, t)) for cc, t in area_codes.items()},
        regions=regions,
        calling_codes=calling_codes,
        default=config.default,
    )


def match(table: GeoTable, dest: Destination) -> list[GeoMatch]:
    """Every geo candidate for ``dest``, best first: at most one per kind of rule."""
    found: list[GeoMatch] = []
    prefixes = table.area_codes.get(dest.country_code)
    if prefixes is not None:
        national = dest.national_number
        for length in range(min(table.longest_prefix[dest.country_code], len(national)), 0, -1):
            number = prefixes.get(national[:length])
            if number is not None:
                detail = f"area code +{dest.country_code} {national[:length]}"
                found.append(GeoMatch(Rule.GEO_AREA_CODE, number, detail))
                break
    if dest.region is not None and dest.region in table.regions:
        found.append(
            GeoMatch(Rule.GEO_COUNTRY, table.regions[dest.region], f"region {dest.region}")
        )
    if dest.country_code in table.calling_codes:
        number = table.calling_codes[dest.country_code]
        found.append(GeoMatch(Rule.GEO_COUNTRY, number, f"calling code +{dest.country_code}"))
    if table.default is not None:
        found.append(GeoMatch(Rule.GEO_DEFAULT, table.default, "default geo ID"))
    return found
