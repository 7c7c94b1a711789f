"""Groups scope a supervisor's view of the live channels (``supervised_groups``), so changing
them never widens that view by accident: deleting a supervisor's last group leaves them seeing
no one (an empty list would mean everyone), a supervisor cannot change the members of a group
they supervise, and members added or removed must be users the editor may change."""

from __future__ import annotations

from callerid import AccountConfig
from engine import configfile

from .support import World, refused

NOBODY = "nobody"
"""How a view of no one's calls is spelt, in answers and in files."""


async def _dial(world: World, *users: str) -> None:
    for user in users:
        reply = await world.api("service").call(
            "POST", "/v1/dial", {"user": user, "to": "+12125550199"}, prefix="")
        assert reply.body["allowed"], reply.body


async def _seen_by(world: World, who: str) -> list[str]:
    reply = await world.api(who).get("/live-channels")
    assert reply.status == 200, reply.body
    return sorted(c["user"] for c in reply.body["items"])


async def test_a_supervisor_whose_groups_are_all_deleted_sees_no_one(world: World) -> None:
    await _dial(world, "ann", "bob")
    assert await _seen_by(world, "mark") == ["ann"]  # mark supervises east (ann)
    assert (await world.api("olivia").delete("/groups/east")).status == 204
    assert await _seen_by(world, "mark") == []
    mark = (await world.api("olivia").get("/users/mark")).body
    assert mark["supervised_groups"] == NOBODY


async def test_deleting_one_of_several_supervised_groups_keeps_the_others(
    world: World,
) -> None:
    owner = world.api("olivia")
    assert (await owner.patch("/users/mark", {"supervised_groups": ["east", "west"]})).status == 200
    await _dial(world, "ann", "bob")
    assert (await owner.delete("/groups/east")).status == 204
    assert await _seen_by(world, "mark") == ["bob"]
    assert (await owner.get("/users/mark")).body["supervised_groups"] == ["west"]


async def test_a_view_limited_to_no_one_stays_so_in_an_exported_file(world: World) -> None:
    assert (await world.api("olivia").delete("/groups/east")).status == 204
    config, _ = await world.config()
    exported = configfile.encode(config, "toml")
    assert b'supervised_groups = "nobody"' in exported
    again = configfile.decode(exported, "toml")
    assert next(u for u in again.users if u.id == "mark").supervision == ()


def test_a_file_with_an_empty_or_no_supervised_groups_list_is_unscoped() -> None:
    for entry in ("supervised_groups = []\n", ""):
        text = ('id = "a"\nname = "A"\nowner = "o"\ndefault_department = "d"\n'
                '[[departments]]\nid = "d"\nname = "D"\n'
                '[[users]]\nid = "o"\nemail = "o@a.example"\n'
                f'[[users]]\nid = "s"\nemail = "s@a.example"\ndepartment = "d"\n{entry}')
        config: AccountConfig = configfile.decode(text.encode(), "toml")
        assert config.users[1].supervision is None, entry


async def test_a_supervisor_cannot_change_the_members_of_a_group_he_supervises(
    world: World,
) -> None:
    version = await world.version()
    reply = await world.api("mark").put("/groups/east/members", {"members": ["ann", "bob"]})
    await refused(world, reply, 403, "members", version)
    assert "supervise" in reply.body["detail"]


async def test_a_member_added_must_be_below_the_editor(world: World) -> None:
    version = await world.version()
    reply = await world.api("mark").put("/groups/west/members", {"members": ["alice", "bob"]})
    await refused(world, reply, 403, "members", version)
    assert "alice" in reply.body["detail"]
    ok = await world.api("mark").put("/groups/west/members", {"members": ["ann", "bob"]})
    assert ok.status == 200 and ok.body["members"] == ["ann", "bob"]


async def test_a_member_removed_must_be_below_the_editor(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.put("/groups/west/members", {"members": ["alice", "bob"]})).status == 200
    version = await world.version()
    reply = await world.api("mark").put("/groups/west/members", {"members": ["bob"]})
    await refused(world, reply, 403, "members", version)


async def test_a_new_groups_members_must_be_below_its_creator(world: World) -> None:
    version = await world.version()
    reply = await world.api("mark").post("/groups", {"id": "north", "name": "North",
                                                     "members": ["alice"]})
    await refused(world, reply, 403, "members", version)


async def test_a_supervisor_cannot_delete_a_group_he_supervises(world: World) -> None:
    version = await world.version()
    reply = await world.api("mark").delete("/groups/east")
    await refused(world, reply, 403, "group_id", version)


async def test_deleting_a_group_logs_each_supervisor_it_changes(world: World) -> None:
    assert (await world.api("olivia").delete("/groups/east")).status == 204
    entries = [e for e in await world.audit() if e.action == "group.delete"]
    assert [e.target for e in entries] == ["group:east", "user:mark"]
    assert (entries[1].before["supervised_groups"], entries[1].after["supervised_groups"]) == (
        ["east"], NOBODY)


async def test_deleting_a_user_logs_each_group_they_leave(world: World) -> None:
    assert (await world.api("olivia").delete("/users/bob")).status == 204
    entries = [e for e in await world.audit() if e.action == "user.delete"]
    assert [e.target for e in entries] == ["user:bob", "group:west"]
    assert (entries[1].before["members"], entries[1].after.get("members", [])) == (["bob"], [])


async def test_groups_filter_by_name_and_member(world: World) -> None:
    owner = world.api("olivia")
    by_name = await owner.get("/groups", params={"q": "EA"})
    assert [g["id"] for g in by_name.body["items"]] == ["east"]
    by_member = await owner.get("/groups", params={"member": "bob"})
    assert [g["id"] for g in by_member.body["items"]] == ["west"]


async def test_live_channels_filter_by_user_and_group(world: World) -> None:
    await _dial(world, "ann", "bob")
    owner = world.api("olivia")
    bob = await owner.get("/live-channels", params={"user": "bob"})
    assert [c["user"] for c in bob.body["items"]] == ["bob"]
    east = await owner.get("/live-channels", params={"group": "east"})
    assert [c["user"] for c in east.body["items"]] == ["ann"]
    # A filter narrows a supervisor's view, never widens it.
    west = await world.api("mark").get("/live-channels", params={"group": "west"})
    assert west.body["items"] == []
