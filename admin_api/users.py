"""Users: create, read, change settings, permissions, department and geo rules, delete.

Who may change a user (``rules``): settings of another user need ``users.settings`` and a
user whose permissions are a strict subset of the actor's; a user may change only their own
name; nobody changes their own permissions; the owner is changed by the owner alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, GeoConfig, Permission, User
from engine import changes
from engine.errors import Forbidden
from engine.store import AuditEntry
from engine.wire import rfc3339

from .context import Call, Operation, Reply, find, matching, page, tagged, versioned
from .presets import with_preset
from .rules import Actor, check_edit_user, check_grant, check_permission_change, effective, require
from .schemas import (
    GeoCopy,
    MoveUser,
    Page,
    PresetApply,
    SipLoginOut,
    UserCreate,
    UserOut,
    UserParams,
    UserPatch,
    UserPermissions,
)
from .tokens import revoke_tokens_of

__all__ = ["OPERATIONS", "changed_users", "check_below", "user_out"]

P = Permission
_Edit = Callable[[AccountConfig, Actor], tuple[AccountConfig, Sequence[AuditEntry]]]


def sip_login_out(config: AccountConfig, user: User) -> SipLoginOut | None:
    if user.sip is None or config.sip_domain is None:
        return None
    return versioned(SipLoginOut(
        domain=config.sip_domain, username=user.sip.username, enabled=user.sip.enabled,
        password_set_at=rfc3339(user.sip.password_set_ms), etag=""))


def user_out(config: AccountConfig, user: User) -> UserOut:
    fields = msgspec.structs.asdict(user)
    fields["sip"] = sip_login_out(config, user)
    return versioned(UserOut(
        **fields,
        effective_permissions=tuple(sorted(effective(config, user))),
        is_owner=user.id == config.owner,
        etag="",
    ))


def changed_users(
    call: Call, actor: Actor, action: str, config: AccountConfig, new: AccountConfig
) -> list[AuditEntry]:
    """An ``action`` entry for each user whom the change from ``config`` to ``new`` changed
    as the API shows them, for writes whose own target is another resource: a department's
    permissions change its members' effective permissions, deleting it moves them, deleting
    a group changes its supervisors."""
    after = {u.id: u for u in new.users}
    entries = []
    for user in config.users:
        if user.id not in after:
            continue
        was, now = user_out(config, user), user_out(new, after[user.id])
        if was != now:
            entries.append(call.audit(actor, action, f"user:{user.id}", was, now))
    return entries


def find_user(config: AccountConfig, user_id: str) -> User:
    """The user ``user_id`` of ``config``; ``NotFound`` naming the field otherwise."""
    return find(config.users, lambda u: u.id, user_id, "user")


def _version(config: AccountConfig, user: User) -> str:
    return user_out(config, user).etag


def _as_user(config: AccountConfig, user_id: str) -> Reply:
    return tagged(user_out(config, find_user(config, user_id)))


def may_see(actor: Actor, user_id: str) -> None:
    """Anyone may read themselves; another user takes ``users.manage`` or ``users.settings``."""
    if user_id != actor.user_id:
        require(actor, P.USERS_MANAGE, P.USERS_SETTINGS)


def _may_edit_settings(actor: Actor, user_id: str, fields: set[str]) -> None:
    """What changing ``fields`` of user ``user_id`` takes, as far as the id tells (checked
    before the user is looked up, ``context``'s step 1): one's own name (the owner: anything
    of their own), or ``users.settings`` for another user."""
    if user_id != actor.user_id:
        require(actor, P.USERS_SETTINGS)
    elif not actor.is_owner and fields - {"name"}:
        raise Forbidden(
            "you may change your own name only; an administrator changes the rest",
            field=sorted(fields - {"name"})[0],
        )


def _not_yourself(actor: Actor, user_id: str) -> None:
    """Rule 1, from the id alone: nobody changes their own permissions."""
    if user_id == actor.user_id:
        raise Forbidden("nobody changes their own permissions", field="user")


def check_below(actor: Actor, config: AccountConfig, target: User) -> None:
    """Rules 2 and 3 on a user found (``context``'s step 3): another user only when below the
    actor (one's own settings are the step before's)."""
    if target.id != actor.user_id:
        check_edit_user(actor, config, target)


def _changed(
    call: Call, actor: Actor, config: AccountConfig, change: changes.Change, user_id: str,
    action: str,
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    """``change`` applied, with an ``action`` entry for user ``user_id``."""
    new = change(config)
    before, after = find_user(config, user_id), find_user(new, user_id)
    return new, [call.audit(actor, action, f"user:{user_id}", before, after)]


def _with_permissions(
    call: Call, actor: Actor, config: AccountConfig, change: changes.Change, user_id: str,
    action: str,
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    """``_changed``, for a change to what user ``user_id`` holds: one the actor may make
    (``check_permission_change`` on the permissions it leaves them)."""
    new = change(config)
    before, after = find_user(config, user_id), find_user(new, user_id)
    check_permission_change(actor, config, before, effective(new, after))
    return new, [call.audit(actor, action, f"user:{user_id}", before, after)]


def _settings_edit(
    call: Call, user_id: str, fields: set[str], change: changes.Change, action: str
) -> _Edit:
    """The edit that makes ``change`` to settings ``fields`` of user ``user_id``: every
    settings route takes the same checks (``context``'s steps, in order) before it."""

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        _may_edit_settings(actor, user_id, fields)
        before = find_user(config, user_id)
        check_below(actor, config, before)
        call.check_match(_version(config, before))
        return _changed(call, actor, config, change, user_id, action)

    return edit


def _permissions_edit(call: Call, user_id: str, change: changes.Change, action: str) -> _Edit:
    """The edit that makes ``change`` to what user ``user_id`` holds of their own: setting
    them and applying a preset take the same checks (rules 1-3) before it."""

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_SETTINGS)
        _not_yourself(actor, user_id)
        before = find_user(config, user_id)
        check_edit_user(actor, config, before)
        call.check_match(_version(config, before))
        return _with_permissions(call, actor, config, change, user_id, action)

    return edit


async def list_users(call: Call) -> Reply:
    params = call.query(UserParams)
    config, _ = await call.read(P.USERS_MANAGE, P.USERS_SETTINGS)
    users: Iterable[User] = config.users
    if params.department is not None:
        users = [u for u in users if u.department == params.department]
    users = matching(users, params.q, lambda u: u.id, lambda u: u.name, lambda u: u.email)
    chosen = page(users, lambda u: u.id, params.cursor, params.limit)
    return Reply(Page(items=[user_out(config, u) for u in chosen.items],
                      next_cursor=chosen.next_cursor))


async def create_user(call: Call) -> Reply:
    body = await call.body(UserCreate)
    config, actor = await call.read()
    if (actor.is_owner or P.USERS_MANAGE in actor.permissions) and all(
        u.id != body.id for u in config.users
    ):
        # Tokens left by an earlier user of this id (one removed by `callgate import`, or
        # whose revocation failed) must not act as the new one.
        await revoke_tokens_of(call, actor, body.id)

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        user = User(**msgspec.structs.asdict(body))
        new = changes.add_user(user)(config)
        created = find_user(new, user.id)
        held = effective(new, created)
        check_grant(actor, held, field="department")
        if not actor.is_owner and not held < actor.permissions:
            raise Forbidden("only the account owner can create a user with every permission "
                            "you hold", field="department")
        return new, [call.audit(actor, "user.create", f"user:{user.id}", None, created)]

    config = await call.write(edit)
    return tagged(user_out(config, find_user(config, body.id)), 201)


async def get_user(call: Call) -> Reply:
    config, actor = await call.read()
    user_id = call.param("user_id")
    may_see(actor, user_id)
    return _as_user(config, user_id)


async def update_user(call: Call) -> Reply:
    body = await call.body(UserPatch)
    user_id = call.param("user_id")
    fields = {f: v for f in body.__struct_fields__ if (v := getattr(body, f)) is not UNSET}
    change = changes.update_user_settings(user_id, fields)
    edit = _settings_edit(call, user_id, set(fields), change, "user.update")
    return _as_user(await call.write(edit), user_id)


async def delete_user(call: Call) -> Reply:
    user_id = call.param("user_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        if user_id == actor.user_id:
            raise Forbidden("you cannot delete yourself", field="user")
        before = find_user(config, user_id)
        check_edit_user(actor, config, before)
        call.check_match(_version(config, before))
        new = changes.delete_user(user_id)(config)
        return new, [*_groups_left(call, actor, config, new),
                     call.audit(actor, "user.delete", f"user:{user_id}", before, None)]

    config = await call.write(edit)
    # After the user is gone, so a failure here leaves tokens that answer 401 (their user no
    # longer exists) and that creating a user of this id again revokes.
    await revoke_tokens_of(call, call.actor(config), user_id)
    return Reply(status=204)


def _groups_left(
    call: Call, actor: Actor, config: AccountConfig, new: AccountConfig
) -> list[AuditEntry]:
    """A ``user.delete`` entry for each group the deleted user was a member of."""
    after = {g.id: g for g in new.groups}
    return [call.audit(actor, "user.delete", f"group:{g.id}", g, after[g.id])
            for g in config.groups if g.id in after and after[g.id] != g]


async def set_user_permissions(call: Call) -> Reply:
    body = await call.body(UserPermissions)
    user_id = call.param("user_id")
    change = changes.set_user_permissions(
        user_id,
        permissions=body.permissions,
        extra_permissions=body.extra_permissions,
        extra_permissions_enabled=body.extra_permissions_enabled,
    )
    edit = _permissions_edit(call, user_id, change, "user.permissions")
    return _as_user(await call.write(edit), user_id)


async def apply_user_preset(call: Call) -> Reply:
    body = await call.body(PresetApply)
    user_id = call.param("user_id")
    change = changes.edit_own_permissions(user_id, lambda held: with_preset(held, body.preset))
    edit = _permissions_edit(call, user_id, change, "user.preset")
    return _as_user(await call.write(edit), user_id)


async def move_user(call: Call) -> Reply:
    body = await call.body(MoveUser)
    user_id = call.param("user_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        require(actor, P.USERS_SETTINGS)  # a move changes what the user may do
        before = find_user(config, user_id)
        check_edit_user(actor, config, before)  # before the owner's refusal to move: rule 2
        call.check_match(_version(config, before))
        new = changes.move_user(user_id, body.department)(config)
        after = find_user(new, user_id)
        check_permission_change(actor, config, before, effective(new, after))
        return new, [call.audit(actor, "user.move", f"user:{user_id}", before, after)]

    return _as_user(await call.write(edit), user_id)


async def set_user_geo(call: Call) -> Reply:
    body = await call.body(GeoConfig)
    user_id = call.param("user_id")
    edit = _settings_edit(call, user_id, {"geo"}, changes.set_geo(user_id, body), "user.geo")
    return _as_user(await call.write(edit), user_id)


async def copy_user_geo(call: Call) -> Reply:
    body = await call.body(GeoCopy)
    user_id = call.param("user_id")
    edit = _settings_edit(call, user_id, {"geo"}, changes.copy_geo(body.from_user, user_id),
                          "user.geo")
    return _as_user(await call.write(edit), user_id)


_SEE = "`users.manage` or `users.settings` (anyone for themselves)"
_SETTINGS = "`users.settings`, on a user below you (anyone may change their own name)"
_PERMS = "`users.settings`, on a user below you, never yourself, granting only what you hold"

OPERATIONS = [
    Operation("GET", "/users", list_users, "List users", "`users.manage` or `users.settings`",
              "users", query=UserParams, response=Page[UserOut]),
    Operation("POST", "/users", create_user, "Create (invite) a user", "`users.manage`; the "
              "department's permissions must be yours to grant", "users", body=UserCreate,
              response=UserOut, status=201),
    Operation("GET", "/users/{user_id}", get_user, "Read a user", _SEE, "users",
              response=UserOut),
    Operation("PATCH", "/users/{user_id}", update_user, "Change a user's settings", _SETTINGS,
              "users", body=UserPatch, response=UserOut, conditional=True),
    Operation("DELETE", "/users/{user_id}", delete_user, "Delete a user",
              "`users.manage`, on a user below you; never the owner or yourself", "users",
              status=204, conditional=True),
    Operation("PUT", "/users/{user_id}/permissions", set_user_permissions,
              "Set a user's extra (or, in legacy mode, own) permissions", _PERMS, "users",
              body=UserPermissions, response=UserOut, conditional=True),
    Operation("POST", "/users/{user_id}/preset", apply_user_preset,
              "Apply a permission preset to a user", _PERMS, "users", body=PresetApply,
              response=UserOut, conditional=True),
    Operation("POST", "/users/{user_id}/move", move_user, "Move a user to a department",
              "`users.manage` and `users.settings`, on a user below you, into a department "
              "whose permissions you hold", "users", body=MoveUser, response=UserOut,
              conditional=True),
    Operation("PUT", "/users/{user_id}/geo", set_user_geo, "Replace a user's geo configuration",
              "`users.settings`, on a user below you", "users", response=UserOut,
              body=GeoConfig, conditional=True),
    Operation("POST", "/users/{user_id}/geo/copy", copy_user_geo,
              "Copy another user's geo configuration over this user's",
              "`users.settings`, on a user below you", "users", body=GeoCopy,
              response=UserOut, conditional=True),
]
