"""Group changes: members are users, each once; deleting a group narrows the view of those
who supervise it and never widens it."""

from __future__ import annotations

import msgspec
import pytest

from callerid import AccountConfig, Group, User
from callerid.model import NOBODY
from engine import changes
from engine.errors import Conflict, NotFound

R = msgspec.structs.replace


def group(config: AccountConfig, group_id: str) -> Group:
    return next(g for g in config.groups if g.id == group_id)


def user(config: AccountConfig, user_id: str) -> User:
    return next(u for u in config.users if u.id == user_id)


def supervising(config: AccountConfig, user_id: str, *groups: str) -> AccountConfig:
    """``config`` with user ``user_id`` seeing the live calls of ``groups`` alone."""
    users = tuple(R(u, supervised_groups=groups) if u.id == user_id else u
                  for u in config.users)
    return R(config, users=users)


def with_west(config: AccountConfig) -> AccountConfig:
    return changes.create_group(Group(id="west", name="West", members=("gina",)))(config)


def test_created_group_holds_each_member_once_in_order(demo: AccountConfig) -> None:
    new = changes.create_group(Group(id="west", name="West", members=("sam", "gina", "sam")))(
        demo)
    assert group(new, "west").members == ("gina", "sam")


def test_group_id_taken_is_refused(demo: AccountConfig) -> None:
    with pytest.raises(Conflict, match="group 'east' already exists") as refused:
        changes.create_group(Group(id="east", name="Again"))(demo)
    assert refused.value.field == "id"


@pytest.mark.parametrize("change", [
    changes.create_group(Group(id="west", name="West", members=("gina", "zed", "amy"))),
    changes.set_group_members("east", ("ana", "zed", "amy")),
], ids=["create", "set members"])
def test_member_who_is_not_a_user_is_refused_naming_members(
    demo: AccountConfig, change: changes.Change
) -> None:
    with pytest.raises(Conflict, match="member 'amy' is not a user of this account") as refused:
        change(demo)
    assert refused.value.field == "members"


def test_renamed_group_keeps_its_members(demo: AccountConfig) -> None:
    new = changes.rename_group("east", "East")(demo)
    assert group(new, "east") == Group(id="east", name="East", members=("ana", "sam"))


def test_set_members_replaces_them_all(demo: AccountConfig) -> None:
    new = changes.set_group_members("east", ["lee", "ana", "lee"])(demo)
    assert group(new, "east").members == ("ana", "lee")


@pytest.mark.parametrize("change", [
    changes.rename_group("nope", "N"),
    changes.set_group_members("nope", ()),
    changes.delete_group("nope"),
], ids=["rename", "set members", "delete"])
def test_unknown_group_is_not_found(demo: AccountConfig, change: changes.Change) -> None:
    with pytest.raises(NotFound, match="no group 'nope' in account 'demo'") as refused:
        change(demo)
    assert refused.value.field == "group"


def test_deleted_group_is_gone_and_its_members_stay_users(demo: AccountConfig) -> None:
    new = changes.delete_group("east")(demo)
    assert new.groups == ()
    assert new.users == demo.users


def test_supervisor_of_the_deleted_group_alone_sees_no_one(demo: AccountConfig) -> None:
    new = changes.delete_group("east")(supervising(demo, "sam", "east"))
    assert user(new, "sam").supervised_groups == NOBODY


def test_supervisor_of_several_groups_keeps_the_others(demo: AccountConfig) -> None:
    config = supervising(with_west(demo), "lee", "east", "west")
    new = changes.delete_group("east")(config)
    assert user(new, "lee").supervised_groups == ("west",)


def test_view_of_everyone_or_of_other_groups_is_untouched(demo: AccountConfig) -> None:
    config = supervising(with_west(demo), "lee", "west")
    new = changes.delete_group("east")(config)
    assert user(new, "lee") == user(config, "lee")
    assert user(new, "ana").supervised_groups == ()
