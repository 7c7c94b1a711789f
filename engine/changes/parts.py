"""What a change is, and how a change finds and replaces one part of an account.

A ``Change`` reads the account it is given and nothing else, and returns the changed account
(a new snapshot: the one given is frozen and stays as it was). The lookups here raise the
``NotFound`` a change makes for an id the account does not hold, naming the kind of thing as
the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import msgspec

from callerid import AccountConfig, Department, Group, PhoneNumber, User

from ..errors import NotFound

__all__ = [
    "Change",
    "Fields",
    "department_of",
    "group_of",
    "number_of",
    "user_of",
    "with_department",
    "with_group",
    "with_number",
    "with_user",
]

Change = Callable[[AccountConfig], AccountConfig]
Fields = Mapping[str, Any]
"""Settings of one resource by field name, each already of the model's type (what a request
sent, decoded): a change replaces those fields and leaves the others as they are."""

_replace = msgspec.structs.replace
_Part = TypeVar("_Part")


def user_of(config: AccountConfig, user_id: str) -> User:
    return _one_of(config, config.users, lambda u: u.id, user_id, f"user {user_id!r}", "user")


def department_of(config: AccountConfig, department_id: str) -> Department:
    return _one_of(config, config.departments, lambda d: d.id, department_id,
                   f"department {department_id!r}", "department")


def number_of(config: AccountConfig, number: str) -> PhoneNumber:
    return _one_of(config, config.numbers, lambda n: n.number, number, f"number {number}",
                   "number")


def group_of(config: AccountConfig, group_id: str) -> Group:
    return _one_of(config, config.groups, lambda g: g.id, group_id, f"group {group_id!r}",
                   "group")


def _one_of(
    config: AccountConfig, items: Iterable[_Part], key: Callable[[_Part], str], wanted: str,
    what: str, field: str,
) -> _Part:
    """The item of ``items`` whose ``key`` is ``wanted``: one lookup for every kind of part,
    so that a missing one of any kind is the same ``NotFound``, ``what`` naming it and
    ``field`` the kind."""
    for item in items:
        if key(item) == wanted:
            return item
    raise NotFound(f"no {what} in account {config.id!r}", field=field)


def with_user(config: AccountConfig, user: User) -> AccountConfig:
    """``config`` with ``user`` in place of the user of the same id."""
    return _replace(config, users=tuple(user if u.id == user.id else u for u in config.users))


def with_department(config: AccountConfig, department: Department) -> AccountConfig:
    """``config`` with ``department`` in place of the department of the same id."""
    departments = tuple(department if d.id == department.id else d for d in config.departments)
    return _replace(config, departments=departments)


def with_number(config: AccountConfig, number: PhoneNumber) -> AccountConfig:
    """``config`` with ``number`` in place of the number it is."""
    numbers = tuple(number if n.number == number.number else n for n in config.numbers)
    return _replace(config, numbers=numbers)


def with_group(config: AccountConfig, group: Group) -> AccountConfig:
    """``config`` with ``group`` in place of the group of the same id."""
    return _replace(config, groups=tuple(group if g.id == group.id else g for g in config.groups))
