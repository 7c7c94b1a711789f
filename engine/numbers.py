"""Normalising what a user dialled into a ``Destination``; phonenumbers stays in this module.

``normalise`` answers None for input that is not a possible, valid number. Two shortcuts
through phonenumbers, both checked against its public API over every region by the tests:

* input in international form (``+`` and digits, with the separators the wire allows) skips the
  general parser, whose work is mostly for letters, extensions and RFC 3966 URIs, and goes
  straight to its country-code and national-prefix steps;
* the region and the number type come from one pass, where ``region_code_for_number`` followed
  by ``number_type`` would type the number twice.
 Results are cached per (input, default region), so a destination dialled again
costs a dict lookup. Call ``load_metadata`` at start-up so no metadata file is read on the loop.
"""

from __future__ import annotations

import functools
import re

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

# phonenumbers' own helper that types a national number against one region's metadata. It is
# private; a release without it fails the import here, which the test suite would show.
_type_for = _util._number_type_helper
_REGIONS = _util.COUNTRY_CODE_TO_REGION_CODE
_UNUSABLE_LENGTHS = (
    _util.ValidationResult.TOO_SHORT,
    _util.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    _util.ValidationResult.INVALID_LENGTH,
)
_SEPARATORS = str.maketrans("", "", " ().-/")


def load_metadata() -> None:
    """Load every region's metadata now, the short-number (emergency) data included:
    phonenumbers otherwise imports each region's module from disk on first use."""
    PhoneMetadata.load_all()
    for region in phonenumbers.SUPPORTED_SHORT_REGIONS:
        PhoneMetadata.short_metadata_for_region(region)


def _region_and_type(country_code: int, national: str) -> tuple[str | None, int]:
    """The region a number belongs to and its type there: phonenumbers'
    ``region_code_for_number`` followed by ``number_type``, typing each candidate region once
    (its region lookup already types the number for regions that have no leading digits)."""
    regions = _REGIONS.get(country_code)
    if not regions:
        return None, PhoneNumberType.UNKNOWN
    if len(regions) == 1:
        region = regions[0]
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        if metadata is None:
            return region, PhoneNumberType.UNKNOWN
        return region, int(_type_for(national, metadata))
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, national):
                return region, int(_type_for(national, metadata))
        else:
            kind = int(_type_for(national, metadata))
            if kind != PhoneNumberType.UNKNOWN:
                return region, kind
    return None, PhoneNumberType.UNKNOWN


def _parse_international(digits: str) -> phonenumbers.PhoneNumber | None:
    """phonenumbers' ``parse`` for ``+`` followed by ``digits``, from the step where it takes
    the country code off; None where parse would fail or go the general way."""
    if len(digits) <= _util._MIN_LENGTH_FOR_NSN:
        return None
    country_code, national = _util._extract_country_code(digits)
    if country_code == 0 or len(national) < _util._MIN_LENGTH_FOR_NSN:
        return None
    region = _util.region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is not None:
        _, stripped, _ = _util._maybe_strip_national_prefix_carrier_code(national, metadata)
        if _util._test_number_length(stripped, metadata) not in _UNUSABLE_LENGTHS:
            national = stripped
    if not _util._MIN_LENGTH_FOR_NSN <= len(national) <= _util._MAX_LENGTH_FOR_NSN:
        return None
    number = phonenumbers.PhoneNumber(country_code=country_code)
    _util._set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number


def _parse(text: str, default_region: str) -> phonenumbers.PhoneNumber | None:
    if text.startswith("+"):
        digits = text[1:].translate(_SEPARATORS)
        if digits.isdigit() and digits.isascii():
            number = _parse_international(digits)
            if number is not None:
                return number
    try:
        return phonenumbers.parse(text, default_region)
    except NumberParseException:
        return None


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
    number = _parse(stripped, default_region)
    if number is None:
        return None
    country_code = number.country_code
    if country_code is None:
        return None
    national = _util.national_significant_number(number)
    region, kind = _region_and_type(country_code, national)
    if region is None or kind == PhoneNumberType.UNKNOWN:
        return None
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
