"""Changes to groups (teams): create, rename, set members, delete.

A group's members are users of the account, each once, in order. A supervisor's view of live
calls can be limited to groups (``User.supervised_groups``); deleting a group narrows the
view of those who supervise it, never widens it: one whose view was that group alone sees no
one (``NOBODY``), since an empty list would mean everyone.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from callerid import AccountConfig, Group, User
from callerid.model import NOBODY

from ..errors import Conflict
from .parts import Change, group_of, with_group

__all__ = ["create_group", "delete_group", "rename_group", "set_group_members"]

_replace = msgspec.structs.replace


def _members(config: AccountConfig, members: Iterable[str]) -> tuple[str, ...]:
    """``members`` as a group holds them; each must be a user (the invariants would say so
    too, but naming ``groups[i]`` rather than the field that listed them)."""
    wanted = set(members)
    unknown = sorted(wanted - {u.id for u in config.users})
    if unknown:
        raise Conflict(f"member {unknown[0]!r} is not a user of this account", field="members")
    return tuple(sorted(wanted))


def create_group(group: Group) -> Change:
    """Add a group (``Conflict`` naming ``id`` if one has its id, ``members`` if a member is
    not a user)."""

    def change(config: AccountConfig) -> AccountConfig:
        if any(g.id == group.id for g in config.groups):
            raise Conflict(f"group {group.id!r} already exists", field="id")
        new = _replace(group, members=_members(config, group.members))
        return _replace(config, groups=(*config.groups, new))

    return change


def rename_group(group_id: str, name: str) -> Change:
    def change(config: AccountConfig) -> AccountConfig:
        return with_group(config, _replace(group_of(config, group_id), name=name))

    return change


def set_group_members(group_id: str, members: Iterable[str]) -> Change:
    """Make ``members`` the group's members (``Conflict`` naming ``members`` if one is not a
    user)."""
    wanted = tuple(members)

    def change(config: AccountConfig) -> AccountConfig:
        before = group_of(config, group_id)
        return with_group(config, _replace(before, members=_members(config, wanted)))

    return change


def _unsupervised(user: User, group_id: str) -> User:
    """``user`` no longer supervising ``group_id``: a view limited to it alone becomes a view
    of no one."""
    scope = user.supervision
    if scope is None or group_id not in scope:
        return user
    return _replace(user, supervised_groups=tuple(g for g in scope if g != group_id) or NOBODY)


def delete_group(group_id: str) -> Change:
    """Delete a group; those who supervise it see less (no one, if it was all they saw)."""

    def change(config: AccountConfig) -> AccountConfig:
        group_of(config, group_id)
        return _replace(
            config,
            groups=tuple(g for g in config.groups if g.id != group_id),
            users=tuple(_unsupervised(u, group_id) for u in config.users),
        )

    return change
