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
6. Numbers are valid E.164 numbers; regions are regions phonenumbers knows; the time zone
   is one the IANA database names; an area code is mapped to one number only.
7. SIP usernames are unique in the account (ignoring case), and SIP credentials exist only
   in an account with a SIP domain (their digests are computed over it).
8. A released number is in no department's pool (releasing a number takes it out, and the
   admin API never puts it back).
9. Every geo rule can match a call: its calling code exists, and each area code is the start
   of some valid number of that country, as phonenumbers' numbering plan has it (not the
   calling code or the trunk prefix followed by the area code: ``+1 1212`` never matches).

A broken invariant 0 or 9 is an ``InvalidField`` (422 through the admin API): a value no
account can use. Any other is a ``Conflict`` (409).

Each broken invariant is a ``Violation``, built where it is found: the entry of the account
it is in (``users[3] (ann)``), the path to the value inside it, and what is wrong. The error
``check`` raises says them all in its detail and names the first one's place as its field;
the violations themselves ride on it as its cause (``violations_of``), so a front end that
names places in its own terms (the admin API names the field of its request) reads them as
they were found, without taking the message apart.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence

import msgspec

from callerid import AccountConfig, DepartmentsMode, NumberStatus, User

from .errors import CallgateError, Conflict, InvalidField
from .numbers import SUPPORTED_REGIONS, area_code_problem, is_calling_code, is_valid_e164
from .validation import Step, locate, path_text

__all__ = ["Entry", "Violation", "Violations", "check", "violations", "violations_of"]

_LISTS = frozenset({"users", "departments", "numbers", "groups"})
"""The account's lists whose entries a violation is placed in."""


class Entry(msgspec.Struct, frozen=True):
    """One entry of one of the account's lists: ``users[3] (ann)``."""

    collection: str
    index: int
    label: str | None = None
    """What the entry is known by (a user's id, a number), when the finder knows it."""

    def __str__(self) -> str:
        at = f"{self.collection}[{self.index}]"
        return at if self.label is None else f"{at} ({self.label})"


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One broken invariant, named where it was found."""

    entry: Entry | None = None
    """The entry the broken value is in; None for a value of the account itself, or for a
    list as a whole (``users``: an id that appears twice)."""
    path: tuple[Step, ...] = ()
    """From the entry (or the account) to the value: ``("geo", "area_codes", 0)``; empty for
    the entry as a whole."""
    message: str
    """What is wrong, and what to write instead when there is one thing to write."""

    @property
    def place(self) -> str:
        """Where, as text: ``users[3] (ann).geo.area_codes[0]``, ``owner``."""
        inside = path_text(self.path)
        if self.entry is None:
            return inside
        if not inside or inside.startswith("["):
            return f"{self.entry}{inside}"
        return f"{self.entry}.{inside}"

    def __str__(self) -> str:
        return f"{self.place}: {self.message}"


class Violations(Exception):
    """Every violation ``check`` found: the cause of the ``InvalidField`` or ``Conflict`` it
    raises, never raised alone."""

    def __init__(self, found: Sequence[Violation]) -> None:
        super().__init__(_said(found))
        self.found = tuple(found)


def violations_of(error: CallgateError) -> tuple[Violation, ...]:
    """The violations ``error`` reports, first to last, when ``check`` raised it; else
    none."""
    cause = error.__cause__
    return cause.found if isinstance(cause, Violations) else ()


def check(config: AccountConfig) -> None:
    """Raise ``InvalidField`` for a value outside its type's limits (invariant 0), then for
    geo rules that can never match (invariant 9, every one named), else ``Conflict`` naming
    every broken invariant of ``config``. The detail says every violation found, the field
    names the first one's place, and the cause is the ``Violations`` (``violations_of``)."""
    try:
        msgspec.convert(msgspec.to_builtins(config), AccountConfig)
    except msgspec.ValidationError as exc:
        path = locate(exc).path
        outside = _placed(path or (), str(exc))
        field = None if path is None else outside.place
        raise InvalidField(str(exc), field=field) from Violations([outside])
    unmatchable = _unmatchable(config)
    if unmatchable:
        first = unmatchable[0].place
        raise InvalidField(_said(unmatchable), field=first) from Violations(unmatchable)
    found = violations(config)
    if found:
        raise Conflict(_said(found), field=found[0].place) from Violations(found)


def _placed(path: tuple[Step, ...], message: str) -> Violation:
    """A violation at ``path``, a path from the top of the account."""
    if len(path) >= 2 and path[0] in _LISTS and isinstance(path[1], int):
        return Violation(entry=Entry(str(path[0]), path[1]), path=path[2:], message=message)
    return Violation(path=path, message=message)


def _said(found: Sequence[Violation]) -> str:
    return "; ".join(map(str, found))


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for value in values:
        if value in seen and value not in dup:
            dup.append(value)
        seen.add(value)
    return dup


def _user_entry(index: int, user: User) -> Entry:
    return Entry("users", index, user.id)


_TIME_ZONES = frozenset(zoneinfo.available_timezones())


def violations(config: AccountConfig) -> list[Violation]:
    """Every broken invariant of ``config`` but 0 and 9 (the ones ``check`` reports as a
    ``Conflict``), in the order the module's docstring lists them."""
    out: list[Violation] = []

    def broken(message: str, *path: Step, entry: Entry | None = None) -> None:
        out.append(Violation(entry=entry, path=path, message=message))

    for what, values in (
        ("users", [u.id for u in config.users]),
        ("user emails", [u.email.lower() for u in config.users]),
        ("departments", [d.id for d in config.departments]),
        ("numbers", [n.number for n in config.numbers]),
        ("groups", [g.id for g in config.groups]),
        ("SIP usernames", [u.sip.username.lower() for u in config.users if u.sip]),
    ):
        for value in _duplicates(values):
            broken(f"{value!r} appears more than once", what)

    numbers = {n.number for n in config.numbers}
    departments = {d.id for d in config.departments}
    users = {u.id for u in config.users}

    def number_ref(number: str | None, *path: Step, entry: Entry | None = None) -> None:
        if number is not None and number not in numbers:
            broken(f"{number} is not a number of this account", *path, entry=entry)

    if config.default_region not in SUPPORTED_REGIONS:
        broken(f"{config.default_region!r} is not a known region", "default_region")
    if config.time_zone not in _TIME_ZONES:
        broken(f"{config.time_zone!r} is not a known time zone (an IANA name such as "
               "'America/New_York')", "time_zone")
    for i, region in enumerate(config.plan_countries):
        if region not in SUPPORTED_REGIONS:
            broken(f"{region!r} is not a known region", "plan_countries", i)
    number_ref(config.default_caller_id, "default_caller_id")
    if config.default_department not in departments:
        broken(f"{config.default_department!r} is not a department of this account",
               "default_department")
    if config.owner not in users:
        broken(f"{config.owner!r} is not a user of this account", "owner")

    for i, n in enumerate(config.numbers):
        entry = Entry("numbers", i, n.number)
        if not is_valid_e164(n.number):
            broken("not a valid E.164 phone number", entry=entry)
        if n.department is not None and n.department not in departments:
            broken(f"department {n.department!r} does not exist", entry=entry)
        if n.status is NumberStatus.RELEASED and n.department is not None:
            broken(
                f"{n.number} is released, and a released number is in no department's pool: "
                f"leave out department {n.department!r}",
                "department", entry=entry,
            )

    for i, d in enumerate(config.departments):
        number_ref(d.default_caller_id, "default_caller_id", entry=Entry("departments", i, d.id))

    for i, u in enumerate(config.users):
        entry = _user_entry(i, u)
        if u.id == config.owner:
            if u.department is not None:
                broken("the account owner cannot be in a department", entry=entry)
        elif u.department is None:
            if config.departments_mode == DepartmentsMode.ENFORCED:
                broken("every user must be in a department in enforced mode", entry=entry)
        elif u.department not in departments:
            broken(f"{u.department!r} does not exist", "department", entry=entry)
        if u.department is not None and u.permissions:
            broken(
                "a user in a department holds the department's permissions plus "
                "extra_permissions; own permissions apply only outside departments",
                "permissions", entry=entry,
            )
        number_ref(u.default_caller_id, "default_caller_id", entry=entry)
        for j, number in enumerate(u.custom_caller_ids):
            number_ref(number, "custom_caller_ids", j, entry=entry)
        number_ref(u.geo.default, "geo", "default", entry=entry)
        mapped: dict[tuple[int, str], str] = {}
        for j, rule in enumerate(u.geo.area_codes):
            number_ref(rule.number, "geo", "area_codes", j, entry=entry)
            for code in rule.area_codes:
                other = mapped.setdefault((rule.country_code, code), rule.number)
                if other != rule.number:
                    broken(f"area code +{rule.country_code} {code} is already mapped to {other}",
                           "geo", "area_codes", j, entry=entry)
        seen_countries: set[str | int] = set()
        for j, country in enumerate(u.geo.countries):
            number_ref(country.number, "geo", "countries", j, entry=entry)
            which: str | int = country.region or country.calling_code or 0
            if country.region is not None and country.region not in SUPPORTED_REGIONS:
                broken(f"{country.region!r} is not a known region",
                       "geo", "countries", j, entry=entry)
            if which in seen_countries:
                broken(f"{which} has more than one rule", "geo", "countries", j, entry=entry)
            seen_countries.add(which)

    if config.sip_domain is None:
        for i, u in enumerate(config.users):
            if u.sip is not None:
                broken("SIP credentials need the account's sip_domain (their realm)",
                       "sip", entry=_user_entry(i, u))

    groups = {g.id for g in config.groups}
    for i, u in enumerate(config.users):
        for group in u.supervision or ():
            if group not in groups:
                broken(f"{group!r} does not exist", "supervised_groups",
                       entry=_user_entry(i, u))
    for i, g in enumerate(config.groups):
        for member in g.members:
            if member not in users:
                broken(f"member {member!r} is not a user", entry=Entry("groups", i, g.id))
    return out


# -- invariant 9: geo rules against the numbering plan -------------------------------------------


def _unmatchable(config: AccountConfig) -> list[Violation]:
    """Each geo rule of ``config`` that no call can match, named, with what to write."""
    out: list[Violation] = []
    for i, u in enumerate(config.users):
        entry = _user_entry(i, u)
        for j, rule in enumerate(u.geo.area_codes):
            where: tuple[Step, ...] = ("geo", "area_codes", j)
            if not is_calling_code(rule.country_code):
                out.append(Violation(
                    entry=entry, path=(*where, "country_code"),
                    message=f"+{rule.country_code} is not a country calling code"))
                continue
            for k, code in enumerate(rule.area_codes):
                problem = area_code_problem(rule.country_code, code)
                if problem is not None:
                    out.append(Violation(entry=entry, path=(*where, "area_codes", k),
                                         message=problem))
        for j, country in enumerate(u.geo.countries):
            calling = country.calling_code
            if calling is not None and not is_calling_code(calling):
                out.append(Violation(
                    entry=entry, path=("geo", "countries", j, "calling_code"),
                    message=f"+{calling} is not a country calling code"))
    return out
