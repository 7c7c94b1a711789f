"""Changes to users: add, change settings, move between departments, set what they hold of
their own, replace or copy geo rules, delete.

A user's own permissions depend on where they are: outside every department (legacy mode)
they hold ``permissions``; inside one they hold the department's plus ``extra_permissions``
while ``extra_permissions_enabled`` is on. Moving a legacy user into a department keeps what
the department lacks as extras.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from callerid import (
    AccountConfig,
    DepartmentsMode,
    GeoConfig,
    Permission,
    User,
    effective_permissions,
)
from callerid.permissions import migrate_into_department

from ..errors import Conflict, Forbidden, NotFound
from .parts import Change, Fields, department_of, user_of, with_user

__all__ = [
    "add_user",
    "copy_geo",
    "delete_user",
    "edit_own_permissions",
    "move_user",
    "set_geo",
    "set_user_permissions",
    "update_user",
    "update_user_settings",
]

_replace = msgspec.structs.replace


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
        if user.department != user_of(config, user.id).department:
            config = move_user(user.id, user.department)(config)
            moved = user_of(config, user.id)
            updated = _replace(
                user,
                permissions=moved.permissions,
                extra_permissions=moved.extra_permissions,
                extra_permissions_enabled=moved.extra_permissions_enabled,
            )
        return with_user(config, updated)

    return change


def update_user_settings(user_id: str, fields: Fields) -> Change:
    """Replace the ``fields`` of user ``user_id`` (as ``update_user`` replaces them all)."""

    def change(config: AccountConfig) -> AccountConfig:
        return update_user(_replace(user_of(config, user_id), **fields))(config)

    return change


def delete_user(user_id: str) -> Change:
    """Delete a user (never the owner); the groups they were in lose them."""

    def change(config: AccountConfig) -> AccountConfig:
        user_of(config, user_id)
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
        user = user_of(config, user_id)
        if user_id == config.owner:
            raise Conflict("the account owner cannot be put in a department", field="department")
        if department_id is None:
            if config.departments_mode == DepartmentsMode.ENFORCED:
                raise Conflict(
                    "in enforced mode every user is in a department", field="department"
                )
            return with_user(config, _replace(user, department=None))
        target = department_of(config, department_id)
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
            earlier = set(user.extra_permissions) if user.extra_permissions_enabled else set()
            user = _replace(
                user,
                extra_permissions=tuple(sorted(set(kept) | earlier)),
                extra_permissions_enabled=user.extra_permissions_enabled or bool(kept),
                permissions=(),
            )
        return with_user(config, _replace(user, department=department_id))

    return change


def set_user_permissions(
    user_id: str,
    *,
    permissions: Iterable[Permission],
    extra_permissions: Iterable[Permission],
    extra_permissions_enabled: bool,
) -> Change:
    """Set what a user holds of their own: ``permissions`` outside every department,
    ``extra_permissions`` (in force while ``extra_permissions_enabled``) inside one.

    A user in a department holds no ``permissions`` of their own: asking for some is
    ``Forbidden`` (field ``permissions``), as the request cannot be carried out as sent."""
    own = tuple(sorted(set(permissions)))
    extras = tuple(sorted(set(extra_permissions)))

    def change(config: AccountConfig) -> AccountConfig:
        user = user_of(config, user_id)
        if user.department is not None and own:
            raise Forbidden("a user in a department holds the department's permissions plus "
                            "extra_permissions; `permissions` is for legacy users outside "
                            "every department", field="permissions")
        return with_user(config, _replace(
            user,
            extra_permissions_enabled=extra_permissions_enabled,
            extra_permissions=extras,
            permissions=own,
        ))

    return change


def edit_own_permissions(
    user_id: str, edit: Callable[[frozenset[Permission]], frozenset[Permission]]
) -> Change:
    """Replace what a user holds of their own with ``edit`` of it (applying a preset).

    Outside every department in legacy mode that is the user's ``permissions``; anywhere
    else it is the extras in force (none while the toggle is off), and the toggle ends up on
    exactly when ``edit`` leaves some."""

    def change(config: AccountConfig) -> AccountConfig:
        user = user_of(config, user_id)
        if user.department is None and config.departments_mode is DepartmentsMode.LEGACY:
            held = edit(frozenset(user.permissions))
            return with_user(config, _replace(user, permissions=tuple(sorted(held))))
        extras = frozenset(user.extra_permissions if user.extra_permissions_enabled else ())
        chosen = edit(extras)
        return with_user(config, _replace(
            user, extra_permissions=tuple(sorted(chosen)), extra_permissions_enabled=bool(chosen)
        ))

    return change


def set_geo(user_id: str, geo: GeoConfig) -> Change:
    """Replace a user's whole geo configuration with ``geo``."""

    def change(config: AccountConfig) -> AccountConfig:
        return with_user(config, _replace(user_of(config, user_id), geo=geo))

    return change


def copy_geo(source_user: str, target_user: str) -> Change:
    """Replace the target's whole geo configuration with a copy of the source's. An unknown
    source is ``NotFound`` naming ``from_user`` (the user copied from)."""

    def change(config: AccountConfig) -> AccountConfig:
        target = user_of(config, target_user)
        source = next((u for u in config.users if u.id == source_user), None)
        if source is None:
            raise NotFound(f"no user {source_user!r} to copy from", field="from_user")
        return with_user(config, _replace(target, geo=source.geo))

    return change
