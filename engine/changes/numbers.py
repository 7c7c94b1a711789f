"""Changes to phone numbers (caller IDs): add, change settings, assign to a department's
pool, release.

A number is in one department's pool at most. A released number stays on record, in no
pool, and is never presented again; the invariants refuse one put back into a pool.
"""

from __future__ import annotations

import msgspec

from callerid import AccountConfig, NumberStatus, PhoneNumber, Reputation

from ..errors import Conflict, InvalidField
from .parts import Change, Fields, number_of, with_number

__all__ = ["add_number", "assign_number", "release_number", "update_number"]

_replace = msgspec.structs.replace


def _check_pool(config: AccountConfig, department_id: str | None) -> None:
    """The pool a number is put in is a department of the account (the invariants would say
    so too, but naming ``numbers[i]`` rather than the field that chose the pool)."""
    if department_id is not None and all(d.id != department_id for d in config.departments):
        raise Conflict(f"no department {department_id!r} in this account", field="department")


def add_number(number: PhoneNumber) -> Change:
    """Add a number, in the pool it names (``Conflict``, field ``department``, if there is
    no such department)."""

    def change(config: AccountConfig) -> AccountConfig:
        _check_pool(config, number.department)
        if any(n.number == number.number for n in config.numbers):
            raise Conflict(f"number {number.number} already exists", field="number")
        return _replace(config, numbers=(*config.numbers, number))

    return change


def update_number(number: str, fields: Fields) -> Change:
    """Replace the ``fields`` of a number (its name, whether it carries voice and SMS, its
    reputation, its own daily cap). Its pool is ``assign_number``'s: a ``department`` among
    ``fields`` is a ``ValueError``. A number put back to ``active`` or ``retired`` loses its
    ``resting_until``; one put to rest without one (or given one while not resting) is an
    ``InvalidField`` naming ``resting_until``."""
    if "department" in fields:
        raise ValueError("a number's pool changes through assign_number")

    def change(config: AccountConfig) -> AccountConfig:
        found = number_of(config, number)
        updates = dict(fields)
        if (updates.get("reputation", found.reputation) is not Reputation.RESTING
                and "resting_until" not in updates):
            updates["resting_until"] = None
        try:
            changed = _replace(found, **updates)
        except ValueError as exc:
            raise InvalidField(f"{number}: {exc}", field="resting_until") from None
        return with_number(config, changed)

    return change


def release_number(number: str) -> Change:
    """Release a number: it stays on record but is never presented again."""

    def change(config: AccountConfig) -> AccountConfig:
        released = _replace(number_of(config, number), status=NumberStatus.RELEASED,
                            department=None)
        return with_number(config, released)

    return change


def assign_number(number: str, department_id: str | None) -> Change:
    """Put a number in a department's pool (taking it out of any other), or in none. An
    unknown department is a ``Conflict`` naming ``department``."""

    def change(config: AccountConfig) -> AccountConfig:
        found = number_of(config, number)
        _check_pool(config, department_id)
        return with_number(config, _replace(found, department=department_id))

    return change
