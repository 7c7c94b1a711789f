"""The invariants every stored account satisfies. ``check`` is the single gate: the domain
service runs it on the result of every change, whole imports included, before anything is
written.

0. Every value has its declared type and limits (the model's ``msgspec.Meta`` constraints),
   as if the account had been read from a file: a change built in code cannot slip past
   what decoding would refuse.
1. Ids are unique: users (and their emails, case-insensitively), departments, numbers, groups.
2. The owner is a user of the account and is in no department.
3. Exactly one department is the default, and it exists.
4. In ``enforced`` mode every user but the owner is in a department. A user's own
   ``permissions`` exist only outside departments (legacy mode): inside one, what they hold
   beyond the department is ``extra_permissions`` (moving a user in converts them).
5. Every reference resolves: a user's department, default and custom caller IDs and geo rule
   numbers; a department's default caller ID; a number's department pool; the account's
   default caller ID; group members; the groups a user supervises.
6. Numbers are valid E.164 numbers; regions are regions phonenumbers knows; an area code is
   mapped to one number only.
7. SIP usernames are unique in the account (ignoring case), and SIP credentials exist only
   in an account with a SIP domain (their digests are computed over it).
8. A released number is in no department's pool (releasing a number takes it out, and the
   admin API never puts it back).
9. Every geo rule can match a call: its calling code exists, and each area code is the start
   of some valid number of that country, as phonenumbers' numbering plan has it (not the
   calling code or the trunk prefix followed by the area code: ``+1 1212`` never matches).

A broken invariant 0 or 9 is an ``InvalidField`` (422 through the admin API): a value no
account can use. Any other is a ``Conflict`` (409).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

from callerid import AccountConfig, DepartmentsMode, NumberStatus, User

from .errors import Conflict, InvalidField
from .numbers import SUPPORTED_REGIONS, area_code_problem, is_calling_code, is_valid_e164

__all__ = ["check", "problems"]


_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


def check(config: AccountConfig) -> None:
    """Raise ``InvalidField`` for a value outside its type's limits (invariant 0), then for
    geo rules that can never match (invariant 9, every one named), else ``Conflict`` naming
    every broken invariant of ``config``."""
    try:
        msgspec.convert(msgspec.to_builtins(config), AccountConfig)
    except msgspec.ValidationError as exc:
        at = _PATH.search(str(exc))
        raise InvalidField(str(exc), field=at.group(1) if at else None) from None
    unmatchable = _unmatchable(config)
    if unmatchable:
        raise InvalidField("; ".join(unmatchable), field=unmatchable[0].split(":", 1)[0])
    found = problems(config)
    if found:
        raise Conflict("; ".join(found), field=found[0].split(":", 1)[0])


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for value in values:
        if value in seen and value not in dup:
            dup.append(value)
        seen.add(value)
    return dup


def _user_ref(index: int, user: User) -> str:
    return f"users[{index}] ({user.id})"


def problems(config: AccountConfig) -> list[str]:
    out: list[str] = []
    for what, values in (
        ("users", [u.id for u in config.users]),
        ("user emails", [u.email.lower() for u in config.users]),
        ("departments", [d.id for d in config.departments]),
        ("numbers", [n.number for n in config.numbers]),
        ("groups", [g.id for g in config.groups]),
        ("SIP usernames", [u.sip.username.lower() for u in config.users if u.sip]),
    ):
        for value in _duplicates(values):
            out.append(f"{what}: {value!r} appears more than once")

    numbers = {n.number for n in config.numbers}
    departments = {d.id for d in config.departments}
    users = {u.id for u in config.users}

    def number_ref(where: str, number: str | None) -> None:
        if number is not None and number not in numbers:
            out.append(f"{where}: {number} is not a number of this account")

    if config.default_region not in SUPPORTED_REGIONS:
        out.append(f"default_region: {config.default_region!r} is not a known region")
    for i, region in enumerate(config.plan_countries):
        if region not in SUPPORTED_REGIONS:
            out.append(f"plan_countries[{i}]: {region!r} is not a known region")
    number_ref("default_caller_id", config.default_caller_id)
    if config.default_department not in departments:
        out.append(
            f"default_department: {config.default_department!r} is not a department "
            "of this account"
        )
    if config.owner not in users:
        out.append(f"owner: {config.owner!r} is not a user of this account")

    for i, n in enumerate(config.numbers):
        if not is_valid_e164(n.number):
            out.append(f"numbers[{i}] ({n.number}): not a valid E.164 phone number")
        if n.department is not None and n.department not in departments:
            out.append(f"numbers[{i}] ({n.number}): department {n.department!r} does not exist")
        if n.status is NumberStatus.RELEASED and n.department is not None:
            out.append(
                f"numbers[{i}] ({n.number}).department: {n.number} is released, and a released "
                f"number is in no department's pool: leave out department {n.department!r}"
            )

    for i, d in enumerate(config.departments):
        number_ref(f"departments[{i}] ({d.id}).default_caller_id", d.default_caller_id)

    for i, u in enumerate(config.users):
        ref = _user_ref(i, u)
        if u.id == config.owner:
            if u.department is not None:
                out.append(f"{ref}: the account owner cannot be in a department")
        elif u.department is None:
            if config.departments_mode == DepartmentsMode.ENFORCED:
                out.append(f"{ref}: every user must be in a department in enforced mode")
        elif u.department not in departments:
            out.append(f"{ref}.department: {u.department!r} does not exist")
        if u.department is not None and u.permissions:
            out.append(
                f"{ref}.permissions: a user in a department holds the department's permissions "
                "plus extra_permissions; own permissions apply only outside departments"
            )
        number_ref(f"{ref}.default_caller_id", u.default_caller_id)
        for j, number in enumerate(u.custom_caller_ids):
            number_ref(f"{ref}.custom_caller_ids[{j}]", number)
        number_ref(f"{ref}.geo.default", u.geo.default)
        mapped: dict[tuple[int, str], str] = {}
        for j, rule in enumerate(u.geo.area_codes):
            number_ref(f"{ref}.geo.area_codes[{j}]", rule.number)
            for code in rule.area_codes:
                other = mapped.setdefault((rule.country_code, code), rule.number)
                if other != rule.number:
                    out.append(
                        f"{ref}.geo.area_codes[{j}]: area code +{rule.country_code} {code} "
                        f"is already mapped to {other}"
                    )
        seen_countries: set[str | int] = set()
        for j, country in enumerate(u.geo.countries):
            number_ref(f"{ref}.geo.countries[{j}]", country.number)
            which: str | int = country.region or country.calling_code or 0
            if country.region is not None and country.region not in SUPPORTED_REGIONS:
                out.append(f"{ref}.geo.countries[{j}]: {country.region!r} is not a known region")
            if which in seen_countries:
                out.append(f"{ref}.geo.countries[{j}]: {which} has more than one rule")
            seen_countries.add(which)

    if config.sip_domain is None:
        for i, u in enumerate(config.users):
            if u.sip is not None:
                out.append(f"{_user_ref(i, u)}.sip: SIP credentials need the account's "
                           "sip_domain (their realm)")

    groups = {g.id for g in config.groups}
    for i, u in enumerate(config.users):
        for group in u.supervision or ():
            if group not in groups:
                out.append(f"{_user_ref(i, u)}.supervised_groups: {group!r} does not exist")
    for i, g in enumerate(config.groups):
        for member in g.members:
            if member not in users:
                out.append(f"groups[{i}] ({g.id}): member {member!r} is not a user")
    return out


# -- invariant 9: geo rules against the numbering plan -------------------------------------------


def _unmatchable(config: AccountConfig) -> list[str]:
    """Each geo rule of ``config`` that no call can match, named, with what to write."""
    out: list[str] = []
    for i, u in enumerate(config.users):
        ref = _user_ref(i, u)
        for j, rule in enumerate(u.geo.area_codes):
            where = f"{ref}.geo.area_codes[{j}]"
            if not is_calling_code(rule.country_code):
                out.append(f"{where}.country_code: +{rule.country_code} is not a country "
                           "calling code")
                continue
            for k, code in enumerate(rule.area_codes):
                problem = area_code_problem(rule.country_code, code)
                if problem is not None:
                    out.append(f"{where}.area_codes[{k}]: {problem}")
        for j, country in enumerate(u.geo.countries):
            calling = country.calling_code
            if calling is not None and not is_calling_code(calling):
                out.append(f"{ref}.geo.countries[{j}].calling_code: +{calling} is not a "
                           "country calling code")
    return out
