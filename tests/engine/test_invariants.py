"""Each account invariant refuses a configuration that breaks it, naming the entry."""

from __future__ import annotations

from typing import Any, Callable

import msgspec
import pytest

from callerid import (
    AccountConfig,
    AreaCodeRule,
    DepartmentsMode,
    GeoConfig,
    Group,
    PhoneNumber,
    SipCredential,
)
from engine.errors import Conflict, InvalidField
from engine.invariants import check

R = msgspec.structs.replace


def _user(config: AccountConfig, user_id: str, **changes: Any) -> AccountConfig:
    return R(config, users=tuple(R(u, **changes) if u.id == user_id else u for u in config.users))


BREAKS: list[tuple[str, Callable[[AccountConfig], AccountConfig], str]] = [
    ("duplicate user id", lambda c: R(c, users=(*c.users, c.users[1])), "users: 'ana' appears more than once"),
    ("duplicate email", lambda c: _user(c, "sam", email="ANA@demo.example"), "user emails"),
    ("duplicate number", lambda c: R(c, numbers=(*c.numbers, c.numbers[0])), "numbers: '+12125550100'"),
    ("duplicate department", lambda c: R(c, departments=(*c.departments, c.departments[0])), "departments: 'sales'"),
    ("owner unknown", lambda c: R(c, owner="ghost"), "owner: 'ghost' is not a user"),
    ("owner in a department", lambda c: _user(c, "olivia", department="sales"), "owner cannot be in a department"),
    ("default department unknown", lambda c: R(c, default_department="nope"), "default_department"),
    ("user without department in enforced mode", lambda c: _user(c, "ana", department=None), "every user must be in a department"),
    ("own permissions inside a department", lambda c: _user(c, "ana", permissions=("users.manage",)), "own permissions apply only outside departments"),
    ("user in unknown department", lambda c: _user(c, "ana", department="nope"), "users[1] (ana).department"),
    ("unknown default caller id", lambda c: _user(c, "ana", default_caller_id="+12125559999"), "users[1] (ana).default_caller_id"),
    ("unknown custom caller id", lambda c: _user(c, "chris", custom_caller_ids=("+12125559999",)), "custom_caller_ids[0]"),
    ("unknown geo number", lambda c: _user(c, "gina", geo=GeoConfig(default="+12125559999")), "geo.default"),
    ("area code mapped twice", lambda c: _user(c, "gina", geo=GeoConfig(area_codes=(
        AreaCodeRule(number="+13105550110", area_codes=("212",)),
        AreaCodeRule(number="+13125550120", area_codes=("212",))))), "already mapped"),
    ("number in unknown department pool", lambda c: R(c, numbers=(*c.numbers, PhoneNumber(number="+12125550155", department="nope"))), "department 'nope' does not exist"),
    ("invalid number", lambda c: R(c, numbers=(*c.numbers, PhoneNumber(number="+19995550100"))), "not a valid E.164"),
    ("unknown account default", lambda c: R(c, default_caller_id="+12125559999"), "default_caller_id"),
    ("unknown plan region", lambda c: R(c, plan_countries=("US", "XX")), "plan_countries[1]"),
    ("unknown group member", lambda c: R(c, groups=(Group(id="g", name="G", members=("ghost",)),)), "member 'ghost'"),
    ("SIP username used twice, ignoring case", lambda c: _user(_user(R(c, sip_domain="demo.sip.example"), "ana", sip=_login("Desk")), "sam", sip=_login("desk")), "SIP usernames: 'desk' appears more than once"),
    ("SIP credentials without a SIP domain", lambda c: _user(R(c, sip_domain=None), "ana", sip=_login("ana")), r"users[1] (ana).sip: SIP credentials need the account's sip_domain"),
]


def _login(username: str) -> SipCredential:
    return SipCredential(username=username, ha1_md5="0" * 32, ha1_sha256="0" * 64)


@pytest.mark.parametrize(("make", "message"), [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS])
def test_invariant_refuses_and_names_entry(demo: AccountConfig, make: Callable[[AccountConfig], AccountConfig], message: str) -> None:
    with pytest.raises(Conflict, match=".*" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
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


def test_legacy_mode_allows_users_without_department(demo: AccountConfig) -> None:
    config = _user(R(demo, departments_mode=DepartmentsMode.LEGACY), "ana", department=None)
    check(config)
