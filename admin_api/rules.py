"""Who may do what in the admin API: DESIGN.md's permission rules, as pure functions.

An ``Actor`` is the user a token acts as, with the permissions they hold now (computed from
the account as stored, on every request: a permission taken away stops working at once).

1. A user with ``users.settings`` may change other users' permissions, never their own.
2. Nobody but the owner changes the owner.
3. A non-owner cannot grant a permission they do not hold, and cannot change a user whose
   effective permissions are not a strict subset of their own, nor leave them anything but
   a strict subset (so one admin cannot edit another; only the owner makes admins). The
   same goes for a department: changing its permissions, or deleting it (its users move to
   the default), changes its members', so each member is checked as if changed alone.
4. Every change is logged (``audit``); the service writes the entry with the change.

Groups scope a supervisor's view of live calls (``User.supervised_groups``): whoever could
add members to a group they supervise could widen what they see, so a non-owner never changes
the members of a group they supervise, and adds or removes only users they may edit.

Each check raises ``Forbidden`` naming what is missing, or returns nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from callerid import AccountConfig, Permission, User, effective_permissions
from engine.errors import Forbidden

__all__ = [
    "Actor",
    "actor_for",
    "check_edit_department",
    "check_edit_group",
    "check_edit_user",
    "check_grant",
    "check_permission_change",
    "effective",
    "require",
]


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    is_owner: bool
    permissions: frozenset[Permission]

    @property
    def ref(self) -> str:
        """How the audit log names this actor."""
        return f"user:{self.user_id}"


def effective(config: AccountConfig, user: User) -> frozenset[Permission]:
    department = None
    if user.department is not None:
        for d in config.departments:
            if d.id == user.department:
                department = d.permissions
                break
        else:
            department = ()
    return effective_permissions(
        is_owner=user.id == config.owner,
        department_permissions=department,
        extra_enabled=user.extra_permissions_enabled,
        extra=user.extra_permissions,
        own=user.permissions,
    )


def actor_for(config: AccountConfig, user_id: str) -> Actor | None:
    """The actor a user's token acts as; None if the user no longer exists."""
    for user in config.users:
        if user.id == user_id:
            return Actor(
                user_id=user_id,
                is_owner=user_id == config.owner,
                permissions=effective(config, user),
            )
    return None


def require(actor: Actor, *needed: Permission) -> None:
    """The actor holds one of ``needed`` (the owner holds every permission)."""
    if actor.is_owner or any(p in actor.permissions for p in needed):
        return
    names = " or ".join(f"`{p.value}`" for p in needed)
    raise Forbidden(f"this needs the permission {names}, which user {actor.user_id!r} lacks")


def _strict_subset(actor: Actor, held: frozenset[Permission]) -> bool:
    return held < actor.permissions


def check_edit_user(
    actor: Actor, config: AccountConfig, target: User, *, field: str = "user"
) -> None:
    """Rules 2 and 3 for any change to another user: the owner only by the owner; anyone else
    only by an actor whose permissions strictly contain theirs. ``field`` is the request's
    field that names the user."""
    if actor.is_owner:
        return
    if target.id == config.owner:
        raise Forbidden("only the account owner can change the account owner", field=field)
    if not _strict_subset(actor, effective(config, target)):
        raise Forbidden(
            f"user {target.id!r} holds permissions that are not a strict subset of yours: "
            "only the account owner can change them",
            field=field,
        )


def check_grant(actor: Actor, granted: Iterable[Permission], *, field: str) -> None:
    """Rule 3: nobody grants what they do not hold."""
    if actor.is_owner:
        return
    missing = sorted(set(granted) - actor.permissions)
    if missing:
        names = ", ".join(f"`{p.value}`" for p in missing)
        raise Forbidden(f"you cannot grant permissions you do not hold: {names}", field=field)


def check_permission_change(
    actor: Actor, config: AccountConfig, target: User, after: frozenset[Permission],
    *, field: str | None = None,
) -> None:
    """Rules 1-3 for changing ``target``'s effective permissions to ``after``: never one's own;
    only a user the actor may edit; nothing granted that the actor lacks; and the user still
    below the actor afterwards (only the owner raises someone to an admin's level).

    Refusals name ``field`` when given (the request's field that carries the change), else
    ``user`` (who may not be changed) or ``permissions`` (what may not be granted)."""
    if target.id == actor.user_id:
        raise Forbidden("nobody changes their own permissions", field=field or "user")
    check_edit_user(actor, config, target, field=field or "user")
    check_grant(actor, after - effective(config, target), field=field or "permissions")
    if not actor.is_owner and not _strict_subset(actor, after):
        raise Forbidden(
            f"user {target.id!r} would hold every permission you hold: only the account owner "
            "can raise a user to that level",
            field=field or "permissions",
        )


def check_edit_department(
    actor: Actor, config: AccountConfig, new: AccountConfig, department_id: str, *, field: str
) -> None:
    """Rule 3 for a change to a department that changes what its members hold (its
    permissions, a preset, its deletion: they move to the default department): the actor is
    not a member (that would change their own permissions: rule 1), and each member's
    permissions in ``new`` pass ``check_permission_change``. What the department itself
    grants is ``check_grant``'s (it matters even with no members)."""
    if actor.is_owner:
        return
    after = {u.id: u for u in new.users}
    for user in config.users:
        if user.department != department_id:
            continue
        if user.id == actor.user_id:
            raise Forbidden(
                f"you are in department {department_id!r}: changing it would change your own "
                "permissions",
                field=field,
            )
        check_permission_change(actor, config, user, effective(new, after[user.id]),
                                field=field)


def check_edit_group(
    actor: Actor, config: AccountConfig, group_id: str, changed: Iterable[str], *, field: str
) -> None:
    """Who may add users to a group or take them out of it (``changed``, deleting it included):
    not a supervisor of the group (they would choose whose live calls they see), and only users
    they may edit (``check_edit_user`` on each)."""
    if actor.is_owner:
        return
    me = next((u for u in config.users if u.id == actor.user_id), None)
    if me is not None and group_id in (me.supervision or ()):
        raise Forbidden(
            f"you supervise group {group_id!r}: changing its members would change whose live "
            "calls you see; someone else must",
            field=field,
        )
    users = {u.id: u for u in config.users}
    for user_id in sorted(set(changed)):
        if user_id in users:  # an unknown id: the change itself refuses it (Conflict)
            check_edit_user(actor, config, users[user_id], field=field)
