"""Configuration changes as pure functions: an account in, the changed account out.

Each function carries the rule of its own transition (moving a legacy user into a department
keeps what the department lacks as extras; deleting a department moves its users to the
default; the default department cannot be deleted). What must hold of any account, however it
was reached, is ``invariants.check``; the domain service runs it after every change.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from callerid import (
    ALL_PERMISSIONS,
    AccountConfig,
    Department,
    DepartmentsMode,
    GeoConfig,
    NumberStatus,
    PhoneNumber,
    User,
    effective_permissions,
)
from callerid.permissions import migrate_into_department

from .errors import Conflict, NotFound

__all__ = [
    "Change",
    "add_number",
    "add_user",
    "assign_number",
    "copy_geo",
    "create_account",
    "create_department",
    "delete_department",
    "delete_user",
    "make_default_department",
    "move_user",
    "release_number",
    "update_user",
]

Change = Callable[[AccountConfig], AccountConfig]
_replace = msgspec.structs.replace


def _user(config: AccountConfig, user_id: str) -> User:
    for user in config.users:
        if user.id == user_id:
            return user
    raise NotFound(f"no user {user_id!r} in account {config.id!r}", field="user")


def _department(config: AccountConfig, department_id: str) -> Department:
    for department in config.departments:
        if department.id == department_id:
            return department
    raise NotFound(f"no department {department_id!r} in account {config.id!r}", field="department")


def _with_user(config: AccountConfig, user: User) -> AccountConfig:
    return _replace(config, users=tuple(user if u.id == user.id else u for u in config.users))


def create_account(
    *,
    account_id: str,
    name: str,
    owner: User,
    default_region: str = "US",
    departments_mode: DepartmentsMode = DepartmentsMode.ENFORCED,
) -> AccountConfig:
    """A new account: its owner, and a default department that starts with every permission."""
    return AccountConfig(
        id=account_id,
        name=name,
        owner=owner.id,
        default_department="default",
        default_region=default_region,
        departments_mode=departments_mode,
        users=(_replace(owner, department=None),),
        departments=(
            Department(id="default", name="Default", permissions=tuple(sorted(ALL_PERMISSIONS))),
        ),
    )


def add_user(user: User) -> Change:
    """Add a user; in ``enforced`` mode one given no department lands in the default one."""

    def change(config: AccountConfig) -> AccountConfig:
        if any(u.id == user.id for u in config.users):
            raise Conflict(f"user {user.id!r} already exists", field="id")
        new = user
        if new.department is None and config.departments_mode == DepartmentsMode.ENFORCED:
            new = _replace(new, department=config.default_department)
        return _replace(config, users=(*config.users, new))

    return change


def update_user(user: User) -> Change:
    """Replace a user's settings. Moving between departments goes through ``move_user``."""

    def change(config: AccountConfig) -> AccountConfig:
        updated = user
        if user.department != _user(config, user.id).department:
            config = move_user(user.id, user.department)(config)
            moved = _user(config, user.id)
            updated = _replace(
                user,
                permissions=moved.permissions,
                extra_permissions=moved.extra_permissions,
                extra_permissions_enabled=moved.extra_permissions_enabled,
            )
        return _with_user(config, updated)

    return change


def delete_user(user_id: str) -> Change:
    def change(config: AccountConfig) -> AccountConfig:
        _user(config, user_id)
        if user_id == config.owner:
            raise Conflict("the account owner cannot be deleted", field="user")
        groups = tuple(
            _replace(g, members=tuple(m for m in g.members if m != user_id))
            for g in config.groups
        )
        return _replace(
            config, users=tuple(u for u in config.users if u.id != user_id), groups=groups
        )

    return change


def move_user(user_id: str, department_id: str | None) -> Change:
    """Put a user into a department (or, in legacy mode, out of every department).

    A legacy user outside any department who is put into one keeps, as extra permissions,
    what they held that the department lacks (and their extras toggle is turned on if that
    leaves anything)."""

    def change(config: AccountConfig) -> AccountConfig:
        user = _user(config, user_id)
        if user_id == config.owner:
            raise Conflict("the account owner cannot be put in a department", field="department")
        if department_id is None:
            if config.departments_mode == DepartmentsMode.ENFORCED:
                raise Conflict(
                    "in enforced mode every user is in a department", field="department"
                )
            return _with_user(config, _replace(user, department=None))
        target = _department(config, department_id)
        if user.department is None:
            held = effective_permissions(
                is_owner=False,
                department_permissions=None,
                extra_enabled=False,
                extra=(),
                own=user.permissions,
            )
            kept = migrate_into_department(held, target.permissions)
            # Extras set aside while the toggle was off must not come into force with it.
            extras = set(kept) | (set(user.extra_permissions) if user.extra_permissions_enabled else set())
            user = _replace(
                user,
                extra_permissions=tuple(sorted(extras)),
                extra_permissions_enabled=user.extra_permissions_enabled or bool(kept),
                permissions=(),
            )
        return _with_user(config, _replace(user, department=department_id))

    return change


def create_department(department: Department, *, template: str | None = None) -> Change:
    """Add a department; ``template`` names one whose permissions it starts with."""

    def change(config: AccountConfig) -> AccountConfig:
        if any(d.id == department.id for d in config.departments):
            raise Conflict(f"department {department.id!r} already exists", field="id")
        new = department
        if template is not None:
            new = _replace(new, permissions=_department(config, template).permissions)
        return _replace(config, departments=(*config.departments, new))

    return change


def make_default_department(department_id: str) -> Change:
    def change(config: AccountConfig) -> AccountConfig:
        _department(config, department_id)
        return _replace(config, default_department=department_id)

    return change


def delete_department(department_id: str) -> Change:
    """Delete a department: its users move to the default department, its numbers leave the
    pool. The default department cannot be deleted until another one is made default."""

    def change(config: AccountConfig) -> AccountConfig:
        _department(config, department_id)
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


def add_number(number: PhoneNumber) -> Change:
    def change(config: AccountConfig) -> AccountConfig:
        if any(n.number == number.number for n in config.numbers):
            raise Conflict(f"number {number.number} already exists", field="number")
        return _replace(config, numbers=(*config.numbers, number))

    return change


def _with_number(
    config: AccountConfig, number: str, edit: Callable[[PhoneNumber], PhoneNumber]
) -> AccountConfig:
    if not any(n.number == number for n in config.numbers):
        raise NotFound(f"no number {number} in account {config.id!r}", field="number")
    return _replace(
        config, numbers=tuple(edit(n) if n.number == number else n for n in config.numbers)
    )


def release_number(number: str) -> Change:
    """Release a number: it stays on record but is never presented again."""

    def change(config: AccountConfig) -> AccountConfig:
        return _with_number(
            config, number, lambda n: _replace(n, status=NumberStatus.RELEASED, department=None)
        )

    return change


def assign_number(number: str, department_id: str | None) -> Change:
    """Put a number in a department's pool (taking it out of any other), or in none."""

    def change(config: AccountConfig) -> AccountConfig:
        if department_id is not None:
            _department(config, department_id)
        return _with_number(config, number, lambda n: _replace(n, department=department_id))

    return change


def copy_geo(source_user: str, target_user: str) -> Change:
    """Replace the target's whole geo configuration with a copy of the source's."""

    def change(config: AccountConfig) -> AccountConfig:
        geo: GeoConfig = _user(config, source_user).geo
        return _with_user(config, _replace(_user(config, target_user), geo=geo))

    return change

