"""Groups (teams): users that share inbound routing; a supervisor's view of live calls can be
limited to chosen groups (a user's ``supervised_groups``). Since membership decides what a
supervisor sees, changing it follows ``rules.check_edit_group``; deleting a group narrows its
supervisors' view, never widens it (one left with no group sees no one)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, Group, Permission
from engine import changes
from engine.store import AuditEntry

from .context import Call, Operation, Reply, find, matching, page, tagged, versioned
from .rules import Actor, check_edit_group, require
from .schemas import GroupCreate, GroupMembers, GroupOut, GroupParams, GroupPatch, Page
from .users import changed_users

__all__ = ["OPERATIONS"]

P = Permission


def group_out(group: Group) -> GroupOut:
    return versioned(GroupOut(**msgspec.structs.asdict(group), etag=""))


def _group(config: AccountConfig, group_id: str) -> Group:
    return find(config.groups, lambda g: g.id, group_id, "group")


def _as_group(config: AccountConfig, group_id: str) -> Reply:
    return tagged(group_out(_group(config, group_id)))


def _changed(
    call: Call, actor: Actor, config: AccountConfig, new: AccountConfig, group_id: str,
    action: str,
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    before, after = _group(config, group_id), _group(new, group_id)
    return new, [call.audit(actor, action, f"group:{group_id}", before, after)]


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
        group = Group(id=body.id, name=body.name, members=body.members)
        new = changes.create_group(group)(config)
        created = _group(new, body.id)
        check_edit_group(actor, config, created.id, created.members, field="members")
        return new, [call.audit(actor, "group.create", f"group:{created.id}", None, created)]

    config = await call.write(edit)
    return tagged(group_out(_group(config, body.id)), 201)


async def get_group(call: Call) -> Reply:
    config, _ = await call.read(P.USERS_MANAGE)
    return _as_group(config, call.param("group_id"))


async def update_group(call: Call) -> Reply:
    body = await call.body(GroupPatch)
    group_id = call.param("group_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        call.check_match(group_out(_group(config, group_id)).etag)
        if body.name is UNSET:
            return config, []
        new = changes.rename_group(group_id, body.name)(config)
        return _changed(call, actor, config, new, group_id, "group.update")

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
        new = changes.set_group_members(group_id, body.members)(config)
        changed = set(before.members) ^ set(_group(new, group_id).members)
        check_edit_group(actor, config, group_id, changed, field="members")
        return _changed(call, actor, config, new, group_id, "group.members")

    return _as_group(await call.write(edit), group_id)


async def delete_group(call: Call) -> Reply:
    group_id = call.param("group_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        before = _group(config, group_id)
        new = changes.delete_group(group_id)(config)
        after = {u.id: u for u in new.users}
        supervisors = {u.id for u in config.users if after[u.id] != u}
        # Its members leave it, its supervisors see less: changes to each of them.
        check_edit_group(actor, config, group_id, {*before.members, *supervisors},
                         field="group_id")
        call.check_match(group_out(before).etag)
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
