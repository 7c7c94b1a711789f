"""Changes to departments: create (optionally from another's permissions), change settings,
set permissions, make default, delete.

Exactly one department is the default: users given no department land in it, and the users
of a deleted department move to it. So the default department cannot be deleted until
another one is made default.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from callerid import AccountConfig, Department, Permission

from ..errors import Conflict, NotFound
from .parts import Change, Fields, department_of, with_department

__all__ = [
    "create_department",
    "delete_department",
    "make_default_department",
    "set_department_permissions",
    "update_department",
]

_replace = msgspec.structs.replace


def create_department(department: Department, *, template: str | None = None) -> Change:
    """Add a department holding its permissions once each, in order; ``template`` names one
    whose permissions it starts with instead (``NotFound``, field ``template``, if there is
    none of that id)."""

    def change(config: AccountConfig) -> AccountConfig:
        new = _replace(department, permissions=tuple(sorted(set(department.permissions))))
        if template is not None:
            source = next((d for d in config.departments if d.id == template), None)
            if source is None:
                raise NotFound(f"no department {template!r} to copy", field="template")
            new = _replace(new, permissions=source.permissions)
        if any(d.id == department.id for d in config.departments):
            raise Conflict(f"department {department.id!r} already exists", field="id")
        return _replace(config, departments=(*config.departments, new))

    return change


def update_department(department_id: str, fields: Fields) -> Change:
    """Replace the ``fields`` of a department (its name, description, default caller ID)."""

    def change(config: AccountConfig) -> AccountConfig:
        before = department_of(config, department_id)
        return with_department(config, _replace(before, **fields))

    return change


def set_department_permissions(department_id: str, permissions: Iterable[Permission]) -> Change:
    """Set what a department grants: every member holds it from then on."""
    chosen = tuple(sorted(set(permissions)))

    def change(config: AccountConfig) -> AccountConfig:
        before = department_of(config, department_id)
        return with_department(config, _replace(before, permissions=chosen))

    return change


def make_default_department(department_id: str) -> Change:
    """Make a department the default (where users with no department of their own land)."""

    def change(config: AccountConfig) -> AccountConfig:
        department_of(config, department_id)
        return _replace(config, default_department=department_id)

    return change


def delete_department(department_id: str) -> Change:
    """Delete a department: its users move to the default department, its numbers leave the
    pool. The default department cannot be deleted until another one is made default."""

    def change(config: AccountConfig) -> AccountConfig:
        department_of(config, department_id)
        if department_id == config.default_department:
            raise Conflict(
                f"{department_id!r} is the default department: make another department the "
                "default before deleting it",
                field="department",
            )
        default = config.default_department
        users = tuple(
            _replace(u, department=default) if u.department == department_id else u
            for u in config.users
        )
        numbers = tuple(
            _replace(n, department=None) if n.department == department_id else n
            for n in config.numbers
        )
        departments = tuple(d for d in config.departments if d.id != department_id)
        return _replace(config, users=users, numbers=numbers, departments=departments)

    return change
