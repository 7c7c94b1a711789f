"""What a change is, and how a change finds and replaces one part of an account.

A ``Change`` reads the account it is given and nothing else, and returns the changed account
(a new snapshot: the one given is frozen and stays as it was). The lookups here raise the
``NotFound`` a change makes for an id the account does not hold, naming the kind of thing as
the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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


def user_of(config: AccountConfig, user_id: str) -> User:
    for user in config.users:
        if user.id == user_id:
            return user
    raise NotFound(f"no user {user_id!r} in account {config.id!r}", field="user")


def department_of(config: AccountConfig, department_id: str) -> Department:
    for department in config.departments:
        if department.id == department_id:
            return department
    raise NotFound(f"no department {department_id!r} in account {config.id!r}", field="department")


def number_of(config: AccountConfig, number: str) -> PhoneNumber:
    for found in config.numbers:
        if found.number == number:
            return found
    raise NotFound(f"no number {number} in account {config.id!r}", field="number")


def group_of(config: AccountConfig, group_id: str) -> Group:
    for group in config.groups:
        if group.id == group_id:
            return group
    raise NotFound(f"no group {group_id!r} in account {config.id!r}", field="group")


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
