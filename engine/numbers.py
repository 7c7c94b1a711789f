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
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberType
from phonenumbers import phonenumberutil as _util
from phonenumbers.shortnumberinfo import is_emergency_number

from callerid import Destination
from callerid.geo import NumberKind
from callerid.nanp import nanp_region

__all__ = [
    "SUPPORTED_REGIONS", "area_code_problem", "example_numbers", "is_calling_code", "is_valid_e164",
    "load_metadata", "load_numbering_plans", "normalise",
]

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


def load_numbering_plans() -> None:
    """Read every country's numbering plan into the automata ``area_code_problem`` searches
    (about 0.1 s): otherwise the first check of a country's area codes does it, on the loop
    (up to 20 ms for GB)."""
    for country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        _plan(country_code)


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
    number_kind = _KINDS.get(kind, NumberKind.UNKNOWN)
    area, subdivision = _place(country_code, national, number_kind)
    return Destination(
        e164=f"+{country_code}{national}",
        country_code=country_code,
        national_number=national,
        region=region,
        kind=number_kind,
        area=area,
        subdivision=subdivision,
    )


_GEOGRAPHIC = frozenset({NumberKind.FIXED_LINE, NumberKind.MOBILE,
                         NumberKind.FIXED_LINE_OR_MOBILE})


def _place(country_code: int, national: str, kind: NumberKind) -> tuple[str | None, str | None]:
    """Where a valid number is, for local presence: its area (the start of its E.164 form
    that is its area code) and, for NANP, its state or province. Only geographic kinds have
    an area; phonenumbers says how long an area code is outside NANP (a mobile number
    usually has none)."""
    if kind not in _GEOGRAPHIC:
        return None, None
    if country_code == 1:
        region = nanp_region(national)
        return f"+1{national[:3]}", region if region is not None and "-" in region else None
    try:
        length = phonenumbers.length_of_geographical_area_code(
            phonenumbers.parse(f"+{country_code}{national}"))
    except NumberParseException:
        return None, None
    return (f"+{country_code}{national[:length]}" if length else None), None


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


# -- area codes: the leading digits a country's numbers can start with -------------------------
#
# An area code is plausible when some valid number of its country starts with it, valid as
# phonenumbers' ``is_valid_number`` has it: for one region of the calling code, a national
# number of one of the region's possible lengths that matches the region's general pattern
# and the pattern (and lengths) of one number type. Python's ``re`` answers whether a whole
# string matches, not whether a string can still be completed into a match, and completions
# cannot all be tried (10**8 of them for a two-digit US prefix). phonenumbers writes its
# national-number patterns in a small part of the regular-expression language (digits,
# ``[...]`` ranges, ``\d``, ``(?:...)``, ``|``, ``?``, ``{n}``, ``{n,m}``; nothing repeats
# without bound), so each is read here into a small automaton over digits. The automata of
# the general pattern and of every type then read the area code, and a search over the digits
# that may follow (which stops where no automaton can go on) finds a valid number starting
# with it, or proves there is none. Answers are cached per (calling code, area code). The
# tests hold the search to phonenumbers itself: every number it finds is one
# ``is_valid_number`` accepts, and every leading part of every example number is plausible.

_DIGITS = "0123456789"
_MAX_NATIONAL_DIGITS = 17
"""The longest national number phonenumbers parses."""
_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
          "voicemail", "fixed_line", "mobile")
"""The number types ``is_valid_number`` tries after the general pattern."""


def area_code_problem(country_code: int, code: str) -> str | None:
    """Why no number of ``+country_code`` starts with ``code``, and what to write instead;
    None when one does."""
    if _number_starting(country_code, code) is not None:
        return None
    plan = _plan(country_code)
    for written, meant in plan.misreadings:
        rest = code[len(written):]
        if code.startswith(written) and rest and _number_starting(country_code, rest) is not None:
            return (f"no number of +{country_code} starts with {code!r}: an area code leaves "
                    f"out {meant}; write {rest!r}")
    if len(code) > plan.longest:
        return (f"{code!r} is longer than any number of +{country_code} (at most "
                f"{plan.longest} digits): an area code is the leading digits of a national "
                "number")
    such_as = f" such as {plan.example}" if plan.example else ""
    return (f"no number of +{country_code} starts with {code!r}: an area code is the leading "
            f"digits of a national number{such_as}, without the calling code or a trunk prefix")


class _Automaton:
    """A nondeterministic automaton over digits, without cycles: ``moves[s]`` are the
    (digits, target) edges out of state ``s``, ``free[s]`` the states ``s`` reaches without
    reading a digit."""

    def __init__(self) -> None:
        self.moves: list[list[tuple[str, int]]] = []
        self.free: list[list[int]] = []

    def state(self) -> int:
        self.moves.append([])
        self.free.append([])
        return len(self.moves) - 1

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        seen = set(states)
        todo = list(seen)
        while todo:
            for target in self.free[todo.pop()]:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return frozenset(seen)

    def step(self, states: frozenset[int], digit: str) -> frozenset[int]:
        return self.closure(t for s in states for digits, t in self.moves[s] if digit in digits)


_Part = Callable[[_Automaton, int], int]
"""A piece of a pattern, read: given the state it starts in, it adds its states and edges to
an automaton and returns the state it ends in. A repeated piece is added once per copy."""


class _PatternReader:
    """Reads a phonenumbers national-number pattern, of this grammar::

        alternation = sequence *( "|" sequence )
        sequence    = *( atom [ "?" / "{" n [ "," m ] "}" ] )
        atom        = DIGIT / "\\d" / "[" 1*( DIGIT [ "-" DIGIT ] ) "]" / "(?:" alternation ")"

    and raises ``ValueError`` on anything else (the tests read every pattern phonenumbers
    has)."""

    def __init__(self, pattern: str) -> None:
        self._text = pattern
        self._at = 0

    def read(self) -> _Part:
        part = self._alternation()
        if self._at != len(self._text):
            raise self._unexpected()
        return part

    def _peek(self) -> str:
        return self._text[self._at:self._at + 1]

    def _take(self, expected: str) -> None:
        if not self._text.startswith(expected, self._at):
            raise self._unexpected()
        self._at += len(expected)

    def _unexpected(self) -> ValueError:
        return ValueError(f"pattern {self._text!r}: cannot read it at position {self._at}")

    def _digit(self) -> str:
        char = self._peek()
        if not char or char not in _DIGITS:
            raise self._unexpected()
        self._at += 1
        return char

    def _count(self) -> int:
        digits = self._digit()
        while self._peek() and self._peek() in _DIGITS:
            digits += self._digit()
        return int(digits)

    def _alternation(self) -> _Part:
        options = [self._sequence()]
        while self._peek() == "|":
            self._at += 1
            options.append(self._sequence())
        if len(options) == 1:
            return options[0]

        def part(automaton: _Automaton, start: int) -> int:
            # The options share their start: no edge leads back into it, so one option's
            # states never reach another's.
            end = automaton.state()
            for option in options:
                automaton.free[option(automaton, start)].append(end)
            return end

        return part

    def _sequence(self) -> _Part:
        items: list[_Part] = []
        while self._peek() not in ("", "|", ")"):
            items.append(self._quantified(self._atom()))

        def part(automaton: _Automaton, start: int) -> int:
            for item in items:
                start = item(automaton, start)
            return start

        return part

    def _atom(self) -> _Part:
        char = self._peek()
        if char == "(":
            self._take("(?:")
            inner = self._alternation()
            self._take(")")
            return inner
        if char == "\\":
            self._take("\\d")
            return _edge(_DIGITS)
        if char == "[":
            self._at += 1
            chosen: set[str] = set()
            while self._peek() != "]":
                low = high = self._digit()
                if self._peek() == "-":
                    self._at += 1
                    high = self._digit()
                chosen.update(_DIGITS[int(low):int(high) + 1])
            self._at += 1
            return _edge("".join(sorted(chosen)))
        return _edge(self._digit())

    def _quantified(self, atom: _Part) -> _Part:
        if self._peek() == "?":
            self._at += 1
            low, high = 0, 1
        elif self._peek() == "{":
            self._at += 1
            low = high = self._count()
            if self._peek() == ",":
                self._at += 1
                high = self._count()
            self._take("}")
        else:
            return atom

        def part(automaton: _Automaton, start: int) -> int:
            for _ in range(low):
                start = atom(automaton, start)
            ends = [start]
            for _ in range(high - low):
                start = atom(automaton, start)
                ends.append(start)
            end = automaton.state()
            for state in ends:
                automaton.free[state].append(end)
            return end

        return part


def _edge(digits: str) -> _Part:
    def part(automaton: _Automaton, start: int) -> int:
        end = automaton.state()
        automaton.moves[start].append((digits, end))
        return end

    return part


class _Pattern(NamedTuple):
    """A national-number pattern as an automaton, with the lengths its numbers may have."""

    automaton: _Automaton
    start: frozenset[int]
    accept: int
    lengths: frozenset[int] | None
    """None: any (the general pattern's lengths apply)."""

    def accepts(self, states: frozenset[int], length: int) -> bool:
        return self.accept in states and (self.lengths is None or length in self.lengths)


@functools.cache  # one entry per pattern phonenumbers has, ~1,200
def _automaton(pattern: str) -> tuple[_Automaton, frozenset[int], int]:
    automaton = _Automaton()
    start = automaton.state()
    accept = _PatternReader(pattern).read()(automaton, start)
    return automaton, automaton.closure((start,)), accept


def _plan_pattern(desc: Any) -> _Pattern | None:
    """The pattern of a phonenumbers ``PhoneNumberDesc``; None when no number has it."""
    if desc is None or not desc.national_number_pattern:
        return None
    automaton, start, accept = _automaton(desc.national_number_pattern)
    return _Pattern(automaton, start, accept, frozenset(desc.possible_length) or None)


class _Region(NamedTuple):
    """What ``is_valid_number`` asks of a national number in one region: the general pattern,
    and one of the types'."""

    general: _Pattern
    types: tuple[_Pattern, ...]
    longest: int


class _Plan(NamedTuple):
    """A calling code's numbering plan, as far as area codes go."""

    regions: tuple[_Region, ...]
    longest: int
    misreadings: tuple[tuple[str, str], ...]
    """(digits written before an area code by mistake, what they are), in the order tried."""
    example: str | None
    """A national number of the country, for the message."""


@functools.cache  # one entry per calling code, ~215
def _plan(country_code: int) -> _Plan:
    regions: list[_Region] = []
    trunks: list[str] = []
    example = None
    for code in phonenumbers.region_codes_for_country_code(country_code):
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, code)
        if metadata is None:
            continue
        general = _plan_pattern(metadata.general_desc)
        types = [p for p in (_plan_pattern(getattr(metadata, t)) for t in _TYPES) if p is not None]
        if general is None or not types:
            continue
        regions.append(_Region(general, tuple(types),
                               max(general.lengths or {_MAX_NATIONAL_DIGITS})))
        if metadata.national_prefix and metadata.national_prefix not in trunks:
            trunks.append(metadata.national_prefix)
        for kind in ("fixed_line", "mobile"):
            desc = getattr(metadata, kind)
            if example is None and desc is not None and desc.example_number:
                example = desc.example_number
    calling = str(country_code)
    misreadings = [(calling, f"the calling code {calling}")]
    for trunk in trunks:
        misreadings.append((trunk, f"the trunk prefix {trunk}"))
        misreadings.append((calling + trunk,
                            f"the calling code {calling} and the trunk prefix {trunk}"))
    return _Plan(tuple(regions), max((r.longest for r in regions), default=0),
                 tuple(misreadings), example)


@functools.lru_cache(maxsize=65536)
def _number_starting(country_code: int, prefix: str) -> str | None:
    """A valid national number of ``+country_code`` that starts with ``prefix`` (the first
    in digit order of the first region that has one); None when there is none."""
    for region in _plan(country_code).regions:
        found = _completion(region, prefix)
        if found is not None:
            return found
    return None


def _completion(region: _Region, prefix: str) -> str | None:
    patterns = (region.general, *region.types)
    seen: set[tuple[int, tuple[frozenset[int], ...]]] = set()

    def search(digits: str, states: tuple[frozenset[int], ...]) -> str | None:
        # states[0] is the general pattern's, the rest the types'; a dead end is remembered,
        # since different digits often leave the automata in the same states.
        if not states[0] or not any(states[1:]) or (len(digits), states) in seen:
            return None
        seen.add((len(digits), states))
        if region.general.accepts(states[0], len(digits)) and any(
            p.accepts(s, len(digits)) for p, s in zip(region.types, states[1:], strict=True)
        ):
            return digits
        if len(digits) >= region.longest:
            return None
        for digit in _DIGITS:
            found = search(digits + digit, _step(patterns, states, digit))
            if found is not None:
                return found
        return None

    states = tuple(p.start for p in patterns)
    for digit in prefix:
        states = _step(patterns, states, digit)
    return search(prefix, states)


def _step(
    patterns: tuple[_Pattern, ...], states: tuple[frozenset[int], ...], digit: str
) -> tuple[frozenset[int], ...]:
    return tuple(p.automaton.step(s, digit) for p, s in zip(patterns, states, strict=True))


def is_calling_code(country_code: int) -> bool:
    """Whether ``country_code`` is the calling code of some country."""
    return bool(phonenumbers.region_codes_for_country_code(country_code))
