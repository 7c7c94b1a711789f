"""Groups (teams): users that share inbound routing; a supervisor's view of live calls can be
limited to chosen groups (a user's ``supervised_groups``). Since membership decides what a
supervisor sees, changing it follows ``rules.check_edit_group``; deleting a group narrows its
supervisors' view, never widens it (one left with no group sees no one)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, Group, Permission, User
from callerid.model import NOBODY
from engine.errors import Conflict
from engine.store import AuditEntry

from .context import Call, Operation, Reply, find, matching, page, tagged, versioned
from .rules import Actor, check_edit_group, require
from .schemas import GroupCreate, GroupMembers, GroupOut, GroupParams, GroupPatch, Page
from .users import changed_users

__all__ = ["OPERATIONS"]

P = Permission
_replace = msgspec.structs.replace


def group_out(group: Group) -> GroupOut:
    return versioned(GroupOut(**msgspec.structs.asdict(group), etag=""))


def _group(config: AccountConfig, group_id: str) -> Group:
    return find(config.groups, lambda g: g.id, group_id, "group")


def _as_group(config: AccountConfig, group_id: str) -> Reply:
    return tagged(group_out(_group(config, group_id)))


def _members(config: AccountConfig, members: Sequence[str]) -> tuple[str, ...]:
    """``members`` as a group holds them; each must be a user (the invariants would say so
    too, but naming ``groups[i]`` rather than the request's field)."""
    users = {u.id for u in config.users}
    unknown = sorted(set(members) - users)
    if unknown:
        raise Conflict(f"member {unknown[0]!r} is not a user of this account", field="members")
    return tuple(sorted(set(members)))


def _replaced(
    call: Call, config: AccountConfig, actor: Actor, before: Group, after: Group, action: str
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    new = _replace(config, groups=tuple(after if g.id == before.id else g for g in config.groups))
    return new, [call.audit(actor, action, f"group:{before.id}", before, after)]


def _unsupervised(user: User, group_id: str) -> User:
    """``user`` no longer supervising ``group_id``: a view limited to it alone becomes a view
    of no one (an empty list would mean everyone)."""
    scope = user.supervision
    if scope is None or group_id not in scope:
        return user
    return _replace(user, supervised_groups=tuple(g for g in scope if g != group_id) or NOBODY)


async def list_groups(call: Call) -> Reply:
    params = call.query(GroupParams)
    config, _ = await call.read(P.USERS_MANAGE)
    groups = matching(config.groups, params.q, lambda g: g.id, lambda g: g.name)
    if params.member is not None:
        groups = tuple(g for g in groups if params.member in g.members)
    chosen = page(groups, lambda g: g.id, params.cursor, params.limit)
    return Reply(Page(items=[group_out(g) for g in chosen.items], next_cursor=chosen.next_cursor))


async def create_group(call: Call) -> Reply:
    body = await call.body(GroupCreate)

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        if any(g.id == body.id for g in config.groups):
            raise Conflict(f"group {body.id!r} already exists", field="id")
        group = Group(id=body.id, name=body.name, members=_members(config, body.members))
        check_edit_group(actor, config, group.id, group.members, field="members")
        new = _replace(config, groups=(*config.groups, group))
        return new, [call.audit(actor, "group.create", f"group:{group.id}", None, group)]

    config = await call.write(edit)
    return tagged(group_out(_group(config, body.id)), 201)


async def get_group(call: Call) -> Reply:
    config, _ = await call.read(P.USERS_MANAGE)
    return _as_group(config, call.param("group_id"))


async def update_group(call: Call) -> Reply:
    body = await call.body(GroupPatch)
    group_id = call.param("group_id")
    fields = {f: v for f in body.__struct_fields__ if (v := getattr(body, f)) is not UNSET}

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        before = _group(config, group_id)
        call.check_match(group_out(before).etag)
        return _replaced(call, config, actor, before, _replace(before, **fields), "group.update")

    return _as_group(await call.write(edit), group_id)


async def set_group_members(call: Call) -> Reply:
    body = await call.body(GroupMembers)
    group_id = call.param("group_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        before = _group(config, group_id)
        # Not a group the actor supervises (no members changed yet: that rule alone).
        check_edit_group(actor, config, group_id, (), field="members")
        call.check_match(group_out(before).etag)
        after = _replace(before, members=_members(config, body.members))
        changed = set(before.members) ^ set(after.members)
        check_edit_group(actor, config, group_id, changed, field="members")
        return _replaced(call, config, actor, before, after, "group.members")

    return _as_group(await call.write(edit), group_id)


async def delete_group(call: Call) -> Reply:
    group_id = call.param("group_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        before = _group(config, group_id)
        users = tuple(_unsupervised(u, group_id) for u in config.users)
        supervisors = {u.id for u, now in zip(config.users, users) if now is not u}
        # Its members leave it, its supervisors see less: changes to each of them.
        check_edit_group(actor, config, group_id, {*before.members, *supervisors},
                         field="group_id")
        call.check_match(group_out(before).etag)
        new = _replace(config, groups=tuple(g for g in config.groups if g.id != group_id),
                       users=users)
        action = "group.delete"
        return new, [*changed_users(call, actor, action, config, new),
                     call.audit(actor, action, f"group:{group_id}", before, None)]

    await call.write(edit)
    return Reply(status=204)


_MANAGE = "`users.manage`"
_NOT_YOURS = "`users.manage`, on a group you do not supervise"

OPERATIONS = [
    Operation("GET", "/groups", list_groups, "List groups", _MANAGE, "groups",
              query=GroupParams, response=Page[GroupOut]),
    Operation("POST", "/groups", create_group, "Create a group",
              "`users.manage`; its members must be below you", "groups",
              body=GroupCreate, response=GroupOut, status=201),
    Operation("GET", "/groups/{group_id}", get_group, "Read a group", _MANAGE, "groups",
              response=GroupOut),
    Operation("PATCH", "/groups/{group_id}", update_group, "Rename a group", _MANAGE, "groups",
              body=GroupPatch, response=GroupOut, conditional=True),
    Operation("PUT", "/groups/{group_id}/members", set_group_members, "Set a group's members",
              f"{_NOT_YOURS}; members you add or remove must be below you", "groups",
              body=GroupMembers, response=GroupOut, conditional=True),
    Operation("DELETE", "/groups/{group_id}", delete_group, "Delete a group",
              f"{_NOT_YOURS}; its members and supervisors must be below you", "groups",
              status=204, conditional=True),
]
