"""Groups (teams): users that share inbound routing; a supervisor's view of live calls can be
limited to chosen groups (a user's ``supervised_groups``)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, Group, Permission
from engine.errors import Conflict
from engine.store import AuditEntry

from .context import Call, Operation, Reply, etag, find, page, tagged
from .rules import Actor, require
from .schemas import GroupCreate, GroupMembers, GroupOut, GroupPatch, ListParams, Page

__all__ = ["OPERATIONS"]

P = Permission
_replace = msgspec.structs.replace


def group_out(group: Group) -> GroupOut:
    return GroupOut(**msgspec.structs.asdict(group), etag=etag(group))


def _group(config: AccountConfig, group_id: str) -> Group:
    return find(config.groups, lambda g: g.id, group_id, "group")


def _as_group(config: AccountConfig, group_id: str) -> Reply:
    group = _group(config, group_id)
    return tagged(group_out(group), resource=group)


def _members(members: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(members)))


def _replaced(
    call: Call, config: AccountConfig, actor: Actor, before: Group, after: Group, action: str
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    new = _replace(config, groups=tuple(after if g.id == before.id else g for g in config.groups))
    return new, [call.audit(actor, action, f"group:{before.id}", before, after)]


async def list_groups(call: Call) -> Reply:
    params = call.query(ListParams)
    config, _ = await call.read(P.USERS_MANAGE)
    chosen = page(config.groups, lambda g: g.id, params.cursor, params.limit)
    return Reply(Page(items=[group_out(g) for g in chosen.items], next_cursor=chosen.next_cursor))


async def create_group(call: Call) -> Reply:
    body = await call.body(GroupCreate)

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.USERS_MANAGE)
        if any(g.id == body.id for g in config.groups):
            raise Conflict(f"group {body.id!r} already exists", field="id")
        group = Group(id=body.id, name=body.name, members=_members(body.members))
        new = _replace(config, groups=(*config.groups, group))
        return new, [call.audit(actor, "group.create", f"group:{group.id}", None, group)]

    config = await call.write(edit)
    group = _group(config, body.id)
    return tagged(group_out(group), 201, resource=group)


async def get_group(call: Call) -> Reply:
    config, _ = await call.read(P.USERS_MANAGE)
    return _as_group(config, call.param("group_id"))


async def update_group(call: Call) -> Reply:
    body = await call.body(GroupPatch)
    group_id = call.param("group_id")
    fields = {f: v for f in body.__struct_fields__ if (v := getattr(body, f)) is not UNSET}

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _group(config, group_id)
        call.check_match(before)
        require(actor, P.USERS_MANAGE)
        return _replaced(call, config, actor, before, _replace(before, **fields), "group.update")

    return _as_group(await call.write(edit), group_id)


async def set_group_members(call: Call) -> Reply:
    body = await call.body(GroupMembers)
    group_id = call.param("group_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _group(config, group_id)
        call.check_match(before)
        require(actor, P.USERS_MANAGE)
        after = _replace(before, members=_members(body.members))
        return _replaced(call, config, actor, before, after, "group.members")

    return _as_group(await call.write(edit), group_id)


async def delete_group(call: Call) -> Reply:
    group_id = call.param("group_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        before = _group(config, group_id)
        call.check_match(before)
        require(actor, P.USERS_MANAGE)
        users = tuple(
            _replace(u, supervised_groups=tuple(g for g in u.supervised_groups if g != group_id))
            if group_id in u.supervised_groups else u
            for u in config.users
        )
        new = _replace(config, groups=tuple(g for g in config.groups if g.id != group_id),
                       users=users)
        return new, [call.audit(actor, "group.delete", f"group:{group_id}", before, None)]

    await call.write(edit)
    return Reply(status=204)


_MANAGE = "`users.manage`"

OPERATIONS = [
    Operation("GET", "/groups", list_groups, "List groups", _MANAGE, "groups",
              query=ListParams, response=Page[GroupOut]),
    Operation("POST", "/groups", create_group, "Create a group", _MANAGE, "groups",
              body=GroupCreate, response=GroupOut, status=201),
    Operation("GET", "/groups/{group_id}", get_group, "Read a group", _MANAGE, "groups",
              response=GroupOut),
    Operation("PATCH", "/groups/{group_id}", update_group, "Rename a group", _MANAGE, "groups",
              body=GroupPatch, response=GroupOut, conditional=True),
    Operation("PUT", "/groups/{group_id}/members", set_group_members, "Set a group's members",
              _MANAGE, "groups", body=GroupMembers, response=GroupOut, conditional=True),
    Operation("DELETE", "/groups/{group_id}", delete_group, "Delete a group", _MANAGE,
              "groups", status=204, conditional=True),
]
