"""Normalising what a user dialled into a ``Destination``; phonenumbers stays in this module.

``normalise`` answers None for input that is not a possible, valid number. It costs about one
phonenumbers parse plus one region lookup: validity and number type are computed from the
region found once, where ``is_valid_number`` followed by ``number_type`` would look the region up
again each time. Results are cached per (input, default region), so a destination dialled again
costs a dict lookup. Call ``load_metadata`` at start-up so no metadata file is read on the loop.
"""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberType
from phonenumbers import phonenumberutil as _util
from phonenumbers.shortnumberinfo import is_emergency_number

from callerid import Destination
from callerid.geo import NumberKind

__all__ = ["SUPPORTED_REGIONS", "is_valid_e164", "load_metadata", "normalise"]

SUPPORTED_REGIONS: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS)

# Emergency services are short codes (112, 911, 999, 000, 15, 17, 18, 110, 119, ...); no region
# has one longer than six digits, so longer input skips the short-number lookup.
_EMERGENCY_MAX_DIGITS = 6

_KINDS = {
    value: NumberKind(name.lower())
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int) and name.lower() in NumberKind.__members__.values()
}

# phonenumbers' own helper that types a national number against one region's metadata.
# It is private; where a release lacks it, fall back to the public (slower) number_type.
_type_for_region = getattr(_util, "_number_type_helper", None)


def load_metadata() -> None:
    """Load every region's metadata now, the short-number (emergency) data included:
    phonenumbers otherwise imports each region's module from disk on first use."""
    PhoneMetadata.load_all()
    for region in phonenumbers.SUPPORTED_SHORT_REGIONS:
        PhoneMetadata.short_metadata_for_region(region)


def _number_type(number: phonenumbers.PhoneNumber, country_code: int, region: str) -> int:
    if _type_for_region is None:
        return int(phonenumbers.number_type(number))
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return PhoneNumberType.UNKNOWN
    nsn = _util.national_significant_number(number)
    return int(_type_for_region(nsn, metadata))


@functools.lru_cache(maxsize=65536)
def normalise(raw: str, default_region: str) -> Destination | None:
    """The destination ``raw`` names, read in ``default_region`` when it has no ``+``; None when
    it is not a valid number. Emergency short codes of that region come back with
    ``emergency=True`` and their digits as ``e164``."""
    stripped = raw.strip()
    if not stripped.startswith("+"):
        digits = "".join(c for c in stripped if c.isdigit())
        if len(digits) <= _EMERGENCY_MAX_DIGITS and is_emergency_number(digits, default_region):
            return Destination(
                e164=digits,
                country_code=0,
                national_number=digits,
                region=default_region,
                emergency=True,
                kind=NumberKind.EMERGENCY,
            )
    try:
        number = phonenumbers.parse(stripped, default_region)
    except NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    country_code = number.country_code
    if region is None or country_code is None:
        return None
    kind = _number_type(number, country_code, region)
    if kind == PhoneNumberType.UNKNOWN:
        return None
    national = _util.national_significant_number(number)
    return Destination(
        e164=f"+{country_code}{national}",
        country_code=country_code,
        national_number=national,
        region=region,
        kind=_KINDS.get(kind, NumberKind.UNKNOWN),
    )


def is_valid_e164(number: str) -> bool:
    """Whether ``number`` (already in ``+digits`` form) is a valid, assignable number."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.E164
    ) == number
