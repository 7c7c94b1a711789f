"""Each account invariant refuses a configuration that breaks it, naming the entry."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import phonenumbers
import pytest
from phonenumbers import PhoneMetadata
from phonenumbers import PhoneNumber as ParsedNumber

from callerid import (
    AccountConfig,
    AreaCodeRule,
    CountryRule,
    DepartmentsMode,
    GeoConfig,
    Group,
    NumberStatus,
    PhoneNumber,
    Reputation,
    SipCredential,
)
from engine import configfile, numbers
from engine.errors import Conflict, InvalidField, NotFound
from engine.invariants import Entry, Violation, check, violations, violations_of

R = msgspec.structs.replace


def _user(config: AccountConfig, user_id: str, **changes: Any) -> AccountConfig:
    return R(config, users=tuple(R(u, **changes) if u.id == user_id else u for u in config.users))


BREAKS: list[tuple[str, Callable[[AccountConfig], AccountConfig], str]] = [
    ("duplicate user id", lambda c: R(c, users=(*c.users, c.users[1])),
     "users: 'ana' appears more than once"),
    ("duplicate email", lambda c: _user(c, "sam", email="ANA@demo.example"), "user emails"),
    ("duplicate number", lambda c: R(c, numbers=(*c.numbers, c.numbers[0])),
     "numbers: '+12125550100'"),
    ("duplicate department", lambda c: R(c, departments=(*c.departments, c.departments[0])),
     "departments: 'sales'"),
    ("owner unknown", lambda c: R(c, owner="ghost"), "owner: 'ghost' is not a user"),
    ("owner in a department", lambda c: _user(c, "olivia", department="sales"),
     "owner cannot be in a department"),
    ("default department unknown", lambda c: R(c, default_department="nope"), "default_department"),
    ("user without department in enforced mode", lambda c: _user(c, "ana", department=None),
     "every user must be in a department"),
    ("own permissions inside a department",
     lambda c: _user(c, "ana", permissions=("users.manage",)),
     "own permissions apply only outside departments"),
    ("user in unknown department", lambda c: _user(c, "ana", department="nope"),
     "users[1] (ana).department"),
    ("unknown default caller id", lambda c: _user(c, "ana", default_caller_id="+12125559999"),
     "users[1] (ana).default_caller_id"),
    ("unknown custom caller id",
     lambda c: _user(c, "chris", custom_caller_ids=("+12125559999",)), "custom_caller_ids[0]"),
    ("unknown geo number", lambda c: _user(c, "gina", geo=GeoConfig(default="+12125559999")),
     "geo.default"),
    ("area code mapped twice", lambda c: _user(c, "gina", geo=GeoConfig(area_codes=(
        AreaCodeRule(number="+13105550110", area_codes=("212",)),
        AreaCodeRule(number="+13125550120", area_codes=("212",))))), "already mapped"),
    ("number in unknown department pool",
     lambda c: R(c, numbers=(*c.numbers, PhoneNumber(number="+12125550155", department="nope"))),
     "department 'nope' does not exist"),
    ("released number in a pool",
     lambda c: R(c, numbers=(*c.numbers, PhoneNumber(
         number="+12125550155", status=NumberStatus.RELEASED, department="sales"))),
     "numbers[13] (+12125550155).department: +12125550155 is released, and a released number "
     "is in no department's pool: leave out department 'sales'"),
    ("invalid number", lambda c: R(c, numbers=(*c.numbers, PhoneNumber(number="+19995550100"))),
     "not a valid E.164"),
    ("unknown account default", lambda c: R(c, default_caller_id="+12125559999"),
     "default_caller_id"),
    ("unknown plan region", lambda c: R(c, plan_countries=("US", "XX")), "plan_countries[1]"),
    ("unknown group member",
     lambda c: R(c, groups=(Group(id="g", name="G", members=("ghost",)),)), "member 'ghost'"),
    ("SIP username used twice, ignoring case",
     lambda c: _user(_user(R(c, sip_domain="demo.sip.example"), "ana", sip=_login("Desk")),
                     "sam", sip=_login("desk")),
     "SIP usernames: 'desk' appears more than once"),
    ("SIP credentials without a SIP domain",
     lambda c: _user(R(c, sip_domain=None), "ana", sip=_login("ana")),
     r"users[1] (ana).sip: SIP credentials need the account's sip_domain"),
]


def _login(username: str) -> SipCredential:
    return SipCredential(username=username, ha1_md5="0" * 32, ha1_sha256="0" * 64)


@pytest.mark.parametrize(("make", "message"), [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS])
def test_invariant_refuses_and_names_entry(
    demo: AccountConfig, make: Callable[[AccountConfig], AccountConfig], message: str
) -> None:
    pattern = ".*" + (message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                      .replace("]", r"\]").replace("+", r"\+"))
    with pytest.raises(Conflict, match=pattern):
        check(make(demo))


def test_demo_account_satisfies_every_invariant(demo: AccountConfig) -> None:
    check(demo)


@pytest.mark.parametrize(("change", "field"), [
    ({"sip_domain": "Not A Domain!"}, "sip_domain"),
    ({"name": "x" * 201}, "name"),
    ({"lease_ttl_s": 0}, "lease_ttl_s"),
], ids=["sip domain", "name too long", "lease ttl"])
def test_a_value_outside_its_limits_is_refused_naming_the_field(
    demo: AccountConfig, change: dict[str, Any], field: str
) -> None:
    """Struct constructors do not check msgspec constraints; the gate does, so a change built
    in code (an admin PATCH) cannot store what decoding the account would refuse."""
    with pytest.raises(InvalidField) as refused:
        check(R(demo, **change))
    assert refused.value.field == field


def test_each_violation_carries_its_entry_and_path_as_found(demo: AccountConfig) -> None:
    config = _user(_user(demo, "ana", default_caller_id="+12125559999"), "chris",
                   custom_caller_ids=("+12125559999",))
    config = R(config, plan_countries=("US", "XX"))
    with pytest.raises(Conflict) as refused:
        check(config)
    assert violations_of(refused.value) == (
        Violation(path=("plan_countries", 1), message="'XX' is not a known region"),
        Violation(entry=Entry("users", 1, "ana"), path=("default_caller_id",),
                  message="+12125559999 is not a number of this account"),
        Violation(entry=Entry("users", 6, "chris"), path=("custom_caller_ids", 0),
                  message="+12125559999 is not a number of this account"),
    )
    assert refused.value.field == "plan_countries[1]"
    assert str(refused.value) == "; ".join(map(str, violations(config)))


def test_a_violation_is_written_as_its_place_and_message() -> None:
    at = Violation(entry=Entry("users", 3, "gina"), path=("geo", "area_codes", 0),
                   message="area code +1 212 is already mapped to +13105550110")
    assert at.place == "users[3] (gina).geo.area_codes[0]"
    assert str(at) == (
        "users[3] (gina).geo.area_codes[0]: area code +1 212 is already mapped to +13105550110")
    assert Violation(entry=Entry("numbers", 0, "+1"), message="m").place == "numbers[0] (+1)"
    assert Violation(path=("user emails",), message="m").place == "user emails"


def test_a_value_outside_its_limits_in_an_entry_is_placed_in_that_entry(
    demo: AccountConfig,
) -> None:
    with pytest.raises(InvalidField) as refused:
        check(_user(demo, "ana", name="x" * 201))
    (found,) = violations_of(refused.value)
    assert (found.entry, found.path) == (Entry("users", 1), ("name",))
    assert refused.value.field == "users[1].name"
    assert found.message == str(refused.value)


def test_an_unmatchable_geo_rule_is_placed_in_its_user(demo: AccountConfig) -> None:
    with pytest.raises(InvalidField) as refused:
        check(_area_codes(demo, "1212"))
    (found,) = violations_of(refused.value)
    assert found.entry == Entry("users", 3, "gina")
    assert found.path == ("geo", "area_codes", 0, "area_codes", 0)


def test_an_error_check_did_not_raise_reports_no_violations() -> None:
    assert violations_of(Conflict("users: 'ana' appears more than once", field="users")) == ()
    assert violations_of(NotFound("no account 'x'")) == ()


def test_legacy_mode_allows_users_without_department(demo: AccountConfig) -> None:
    config = _user(R(demo, departments_mode=DepartmentsMode.LEGACY), "ana", department=None)
    check(config)


# -- invariant 9: geo rules that can never match ---------------------------------------------------

GINA = "users[3] (gina)"
_DIGITS = "0123456789"


def _area_codes(demo: AccountConfig, *codes: str, country_code: int = 1) -> AccountConfig:
    rule = AreaCodeRule(number="+13105550110", area_codes=codes, country_code=country_code)
    return _user(demo, "gina", geo=GeoConfig(area_codes=(rule,)))


UNMATCHABLE = [
    ("calling code written first", 1, "1212",
     "no number of +1 starts with '1212': an area code leaves out the calling code 1; write '212'"),
    ("trunk prefix written first", 44, "020",
     "no number of +44 starts with '020': an area code leaves out the trunk prefix 0; write '20'"),
    ("calling code and trunk prefix", 44, "44020",
     "leaves out the calling code 44 and the trunk prefix 0; write '20'"),
    ("trunk prefix 8", 7, "8495", "leaves out the trunk prefix 8; write '495'"),
    ("longer than any number", 298, "1234567",
     "'1234567' is longer than any number of +298 (at most 6 digits)"),
    ("no number starts so", 1, "011",
     "no number of +1 starts with '011': an area code is the leading digits of a national number "
     "such as 2015550123"),
    ("NANP numbers never start with 1", 1, "1", "no number of +1 starts with '1'"),
]


@pytest.mark.parametrize(("country_code", "code", "message"), [u[1:] for u in UNMATCHABLE],
                         ids=[u[0] for u in UNMATCHABLE])
def test_an_area_code_no_number_starts_with_is_refused_with_the_fix(
    demo: AccountConfig, country_code: int, code: str, message: str
) -> None:
    with pytest.raises(InvalidField, match=re.escape(message)) as refused:
        check(_area_codes(demo, code, country_code=country_code))
    assert refused.value.field == f"{GINA}.geo.area_codes[0].area_codes[0]"
    assert str(refused.value).startswith(f"{GINA}.geo.area_codes[0].area_codes[0]: ")


PLAUSIBLE = [
    ("US 212", 1, "212"), ("NANP 2", 1, "2"), ("NANP 21", 1, "21"), ("US exchange", 1, "212555"),
    ("US toll free", 1, "800"), ("Canada 416", 1, "416"), ("GB 20", 44, "20"), ("GB 7", 44, "7"),
    ("DE 30", 49, "30"), ("FR 1", 33, "1"), ("Italy keeps its 0", 39, "06"), ("RU 495", 7, "495"),
    ("AU 2", 61, "2"), ("international freephone", 800, "1234"), ("a whole number", 1, "21255501"),
]


@pytest.mark.parametrize(("country_code", "code"), [p[1:] for p in PLAUSIBLE],
                         ids=[p[0] for p in PLAUSIBLE])
def test_an_area_code_some_number_starts_with_is_accepted(
    demo: AccountConfig, country_code: int, code: str
) -> None:
    check(_area_codes(demo, code, country_code=country_code))


def test_every_unmatchable_area_code_is_named(demo: AccountConfig) -> None:
    with pytest.raises(InvalidField) as refused:
        check(_area_codes(demo, "1212", "310", "1310"))
    assert refused.value.field == f"{GINA}.geo.area_codes[0].area_codes[0]"
    assert "write '212'" in str(refused.value) and "write '310'" in str(refused.value)
    assert "area_codes[1]" not in str(refused.value)


def test_an_unknown_calling_code_is_refused_in_area_code_and_country_rules(
    demo: AccountConfig,
) -> None:
    area_code = f"{GINA}.geo.area_codes[0].country_code: +999 is not a country calling code"
    with pytest.raises(InvalidField, match=re.escape(area_code)):
        check(_area_codes(demo, "212", country_code=999))
    rule = CountryRule(number="+13105550110", calling_code=999)
    country = _user(demo, "gina", geo=GeoConfig(countries=(rule,)))
    calling_code = f"{GINA}.geo.countries[0].calling_code: +999 is not a country calling code"
    with pytest.raises(InvalidField, match=re.escape(calling_code)) as refused:
        check(country)
    assert refused.value.field == f"{GINA}.geo.countries[0].calling_code"


def _national(country_code: int, digits: str) -> ParsedNumber:
    """``digits`` as the national significant number of a phonenumbers number (leading
    zeros kept as phonenumbers keeps them, e.g. Italy's)."""
    zeros = min(len(digits) - len(digits.lstrip("0")), len(digits) - 1)
    return ParsedNumber(country_code=country_code, national_number=int(digits),
                        italian_leading_zero=True if zeros else None,
                        number_of_leading_zeros=zeros if zeros > 1 else None)


def test_each_number_found_for_a_prefix_is_one_phonenumbers_calls_valid() -> None:
    """Over every calling code and every prefix of one or two digits: where the search finds
    a number, phonenumbers agrees it is valid and it starts with the prefix."""
    found = 0
    for country_code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for prefix in [*_DIGITS, *("".join(p) for p in itertools.product(_DIGITS, repeat=2))]:
            number = numbers._number_starting(country_code, prefix)
            if number is None:
                continue
            found += 1
            parsed = _national(country_code, number)
            assert number.startswith(prefix)
            assert phonenumbers.national_significant_number(parsed) == number
            assert phonenumbers.is_valid_number(parsed), (country_code, prefix, number)
    assert found > 5000


def test_every_leading_part_of_every_example_number_is_plausible() -> None:
    """phonenumbers' example number of every type in every region: each of its leading parts
    is an area code some number starts with."""
    checked = 0
    for country_code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            if region == "001":
                examples = [phonenumbers.example_number_for_non_geo_entity(country_code)]
            else:
                examples = [phonenumbers.example_number_for_type(region, kind)
                            for kind in range(phonenumbers.PhoneNumberType.VOICEMAIL + 1)]
            for example in filter(None, examples):
                digits = phonenumbers.national_significant_number(example)
                for end in range(1, len(digits) + 1):
                    checked += 1
                    assert numbers._number_starting(country_code, digits[:end]) is not None, (
                        region, digits, digits[:end])
    assert checked > 10000


@pytest.mark.parametrize("pattern", [
    r"2(?:0[1-35-9]|1[02-9])\d{2}", r"[2-9]\d{2}|3\d?", r"(?:1|2[34]?)?5{1,3}",
    r"0\d{0,2}|7(?:8|9)", r"1|2(?:|3)",
])
def test_a_pattern_read_into_an_automaton_matches_what_re_matches(pattern: str) -> None:
    automaton, start, accept = numbers._automaton(pattern)
    for length in range(6):
        for digits in map("".join, itertools.product(_DIGITS, repeat=length)):
            states = start
            for digit in digits:
                states = automaton.step(states, digit)
            assert (accept in states) == bool(re.fullmatch(pattern, digits)), digits


def test_every_pattern_of_the_numbering_plan_is_read() -> None:
    for country_code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
            for desc in (metadata.general_desc, *(getattr(metadata, t) for t in numbers._TYPES)):
                if desc is not None and desc.national_number_pattern:
                    numbers._automaton(desc.national_number_pattern)


@pytest.mark.parametrize("pattern", [r"\d+", r"[^0]", r"(1)", r"1{2,}", r"1)", r"[12"], ids=repr)
def test_a_pattern_outside_what_the_reader_knows_is_an_error(pattern: str) -> None:
    with pytest.raises(ValueError, match="cannot read it"):
        numbers._PatternReader(pattern).read()


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_a_numbers_reputation_goes_through_a_file_and_back(
    demo: AccountConfig, fmt: configfile.Format
) -> None:
    rested = msgspec.structs.replace(
        demo.numbers[1], reputation=Reputation.RESTING,
        resting_until=datetime(2026, 12, 10, 9, tzinfo=UTC))
    retired = msgspec.structs.replace(demo.numbers[2], reputation=Reputation.RETIRED)
    config = msgspec.structs.replace(demo, numbers=(demo.numbers[0], rested, retired,
                                                    *demo.numbers[3:]))
    assert configfile.decode(configfile.encode(config, fmt), fmt, source="f") == config
