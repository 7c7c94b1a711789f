"""Normalising what a user dialled into a ``Destination``; phonenumbers stays in this module.

``normalise`` answers None for input that is not a possible, valid number. Two shortcuts
through phonenumbers, both checked against its public API over every region by the tests:

* input in international form (``+`` and digits, with the separators the wire allows) skips the
  general parser, whose work is mostly for letters, extensions and RFC 3966 URIs, and goes
  straight to its country-code and national-prefix steps;
* the region and the number type come from one pass, where ``region_code_for_number`` followed
  by ``number_type`` would type the number twice; the typing itself (``_number_type``) asks
  phonenumbers' questions in phonenumbers' order, but from patterns compiled once per region
  and number length rather than looked up and length-checked for every number.

Results are cached per (input, default region), so a destination dialled again
costs a dict lookup. Call ``load_metadata`` at start-up so no metadata file is read on the loop.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberType
from phonenumbers import phonenumberutil as _util
from phonenumbers.shortnumberinfo import is_emergency_number

from callerid import Destination
from callerid.geo import NumberKind

__all__ = ["SUPPORTED_REGIONS", "example_numbers", "is_valid_e164", "load_metadata", "normalise"]

SUPPORTED_REGIONS: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS)

# Emergency services are short codes (112, 911, 999, 000, 15, 17, 18, 110, 119, ...); no region
# has one longer than six digits, so longer input skips the short-number lookup.
_EMERGENCY_MAX_DIGITS = 6

_KINDS = {
    value: NumberKind(name.lower())
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int) and name.lower() in NumberKind.__members__.values()
}

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


Match = Callable[[str], "re.Match[str] | None"]


class _Checks(NamedTuple):
    """What typing a national number of one length against one region's metadata asks: each
    pattern that could match a number of that length (None: none could), in phonenumbers'
    order (``_number_type_helper``)."""

    general: Match | None
    special: tuple[tuple[Match, int], ...]
    """Premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail."""
    fixed_line: Match | None
    mobile: Match | None
    same_mobile_and_fixed_line: bool


_SPECIAL_TYPES = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
_checks: dict[tuple[int, int], _Checks] = {}
"""By (id of the region's metadata, number length); the metadata objects live as long as the
process, so their ids stay theirs."""


def _pattern(desc: Any, length: int) -> Match | None:
    """The whole-number matcher of ``desc`` for numbers of ``length`` digits; None when no
    such number can match it (phonenumbers' ``_is_number_matching_desc``)."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and length not in desc.possible_length:
        return None
    return re.compile(desc.national_number_pattern).fullmatch


def _compile_checks(metadata: PhoneMetadata, length: int) -> _Checks:
    special = []
    for name, kind in _SPECIAL_TYPES:
        match = _pattern(getattr(metadata, name), length)
        if match is not None:
            special.append((match, int(kind)))
    return _Checks(
        general=_pattern(metadata.general_desc, length),
        special=tuple(special),
        fixed_line=_pattern(metadata.fixed_line, length),
        mobile=_pattern(metadata.mobile, length),
        same_mobile_and_fixed_line=bool(metadata.same_mobile_and_fixed_line_pattern),
    )


def _number_type(national: str, metadata: PhoneMetadata) -> int:
    """phonenumbers' ``_number_type_helper(national, metadata)``, from compiled checks."""
    key = (id(metadata), len(national))
    checks = _checks.get(key)
    if checks is None:
        checks = _checks[key] = _compile_checks(metadata, len(national))
    if checks.general is None or checks.general(national) is None:
        return PhoneNumberType.UNKNOWN
    for match, kind in checks.special:
        if match(national) is not None:
            return kind
    mobile = checks.mobile
    if checks.fixed_line is not None and checks.fixed_line(national) is not None:
        if checks.same_mobile_and_fixed_line or (mobile is not None and mobile(national)):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not checks.same_mobile_and_fixed_line and mobile is not None and mobile(national):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


_leading_digits: dict[str, Match] = {}


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
        return region, _number_type(national, metadata)
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is None:
            continue
        leading = metadata.leading_digits
        if leading is not None:
            starts = _leading_digits.get(leading)
            if starts is None:
                starts = _leading_digits[leading] = re.compile(leading).match
            if starts(national):
                return region, _number_type(national, metadata)
        else:
            kind = _number_type(national, metadata)
            if kind != PhoneNumberType.UNKNOWN:
                return region, kind
    return None, PhoneNumberType.UNKNOWN


def _parse_international(digits: str) -> tuple[int, str] | None:
    """phonenumbers' ``parse`` for ``+`` followed by ``digits``, from the step where it takes
    the country code off, as (country code, national significant number); None where parse
    would fail or go the general way."""
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
    # parse would keep int(national) and count its leading zeros (Italian numbers), from which
    # national_significant_number rebuilds exactly this string.
    return country_code, national


def _parse(text: str, default_region: str) -> tuple[int, str] | None:
    """(country code, national significant number) of ``text``; None if it does not parse."""
    if text.startswith("+"):
        digits = text[1:].translate(_SEPARATORS)
        if digits.isdigit() and digits.isascii():
            parsed = _parse_international(digits)
            if parsed is not None:
                return parsed
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException:
        return None
    if number.country_code is None:
        return None
    return number.country_code, _util.national_significant_number(number)


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
    parsed = _parse(stripped, default_region)
    if parsed is None:
        return None
    country_code, national = parsed
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


def example_numbers(region: str) -> list[str]:
    """phonenumbers' example fixed-line and mobile numbers of ``region`` (an ISO region code),
    in that order and in E.164; a type it has no example of is left out, so an unknown region
    gives ``[]``."""
    out: list[str] = []
    for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None and example.country_code is not None:
            out.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return out
