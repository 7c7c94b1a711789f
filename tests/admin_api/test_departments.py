"""Departments through the admin API: a change to a department's permissions (set, preset,
deletion: its members move to the default) is a change to each member's, under the same
rules as changing that member alone; each member it changes gets an audit entry of their own;
a department's version covers what its answer shows (whether it is the default, its members).
"""

from __future__ import annotations

import asyncio

from admin_api.presets import ADMIN_PERMISSIONS
from callerid import Permission

from .support import Api, World, refused

P = Permission
MANAGERS = ["dial.out_of_plan", "monitoring.use", "numbers.manage", "users.manage",
            "users.settings"]
"""mark's permissions (the managers department's)."""


async def test_setting_a_departments_permissions_cannot_raise_members_to_your_level(
    world: World,
) -> None:
    version = await world.version()
    reply = await world.api("mark").put("/departments/staff/permissions",
                                        {"permissions": MANAGERS})
    await refused(world, reply, 403, "permissions", version)
    assert "every permission you hold" in reply.body["detail"]


async def test_a_department_preset_cannot_raise_members_to_your_level(world: World) -> None:
    # lee holds every admin permission and the calling permission staff has: the admin
    # preset on staff would give ann and bob all of lee's.
    lee = await world.add_user("lee", "leads", *ADMIN_PERMISSIONS, P.DIAL_OUT_OF_PLAN)
    version = await world.version()
    reply = await lee.post("/departments/staff/preset", {"preset": "admin"})
    await refused(world, reply, 403, "preset", version)
    assert "every permission you hold" in reply.body["detail"]


async def test_deleting_a_department_cannot_raise_its_members_to_your_level(
    world: World,
) -> None:
    owner = world.api("olivia")
    # The default department holds exactly mark's permissions; nia is below him in night.
    assert (await owner.put("/departments/staff/permissions",
                            {"permissions": MANAGERS})).status == 200
    assert (await owner.post("/departments", {"id": "night", "name": "Night",
                                              "permissions": ["dial.out_of_plan"]})).status == 201
    assert (await owner.post("/users", {"id": "nia", "email": "nia@acme.example",
                                        "department": "night"})).status == 201
    version = await world.version()
    reply = await world.api("mark").delete("/departments/night")
    await refused(world, reply, 403, "department", version)
    assert "nia" in reply.body["detail"]


async def night_under_a_default_mark_lacks(world: World) -> Api:
    """mark, having created an empty ``night`` department, while the default department
    grants billing.topup, which he lacks (what the night's members move into on deletion)."""
    owner = world.api("olivia")
    assert (await owner.put("/departments/staff/permissions", {
        "permissions": ["billing.topup", "dial.out_of_plan"]})).status == 200
    mark = world.api("mark")
    assert (await mark.post("/departments", {"id": "night", "name": "Night"})).status == 201
    return mark


async def test_an_empty_department_is_anyones_to_delete_with_users_manage(
    world: World,
) -> None:
    mark = await night_under_a_default_mark_lacks(world)  # nobody moves into the default
    assert (await mark.delete("/departments/night")).status == 204


async def test_deleting_a_department_is_refused_when_its_members_would_gain_what_you_lack(
    world: World,
) -> None:
    mark = await night_under_a_default_mark_lacks(world)
    assert (await mark.post("/users", {"id": "nia", "email": "nia@acme.example",
                                       "department": "night"})).status == 201
    version = await world.version()
    reply = await mark.delete("/departments/night")
    await refused(world, reply, 403, "department", version)
    assert "billing.topup" in reply.body["detail"]


async def test_choosing_a_new_departments_permissions_needs_users_settings(
    world: World,
) -> None:
    hana = await world.add_user("hana", "hr", P.USERS_MANAGE, P.NUMBERS_MANAGE,
                                P.DIAL_OUT_OF_PLAN)
    version = await world.version()
    with_permissions = await hana.post("/departments", {
        "id": "night", "name": "Night", "permissions": ["dial.out_of_plan"]})
    await refused(world, with_permissions, 403, None, version)
    assert "users.settings" in with_permissions.body["detail"]
    from_template = await hana.post("/departments", {"id": "night", "name": "Night",
                                                     "template": "staff"})
    await refused(world, from_template, 403, None, version)
    assert (await hana.post("/departments", {"id": "night", "name": "Night"})).status == 201


async def test_a_new_department_grants_only_what_its_creator_holds(world: World) -> None:
    version = await world.version()
    reply = await world.api("mark").post("/departments", {"id": "mgr2", "name": "Managers 2",
                                                          "template": "admins"})
    await refused(world, reply, 403, "template", version)


async def test_each_member_a_permissions_change_changes_is_logged(world: World) -> None:
    reply = await world.api("olivia").put("/departments/staff/permissions", {
        "permissions": ["dial.out_of_plan", "reporting.view"]})
    assert reply.status == 200
    entries = await world.audit(actor="user:olivia")
    # One write: the department's entry (newest) and one for each member it changed.
    assert [(e.action, e.target) for e in entries] == [
        ("department.permissions", "department:staff"),
        ("department.permissions", "user:bob"),
        ("department.permissions", "user:ann"),
    ]
    ann = next(e for e in entries if e.target == "user:ann")
    assert ann.before["effective_permissions"] == ["dial.out_of_plan"]
    assert ann.after["effective_permissions"] == ["dial.out_of_plan", "reporting.view"]


async def test_a_member_the_change_leaves_as_they_were_gets_no_entry(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.put("/users/bob/permissions", {
        "extra_permissions_enabled": True, "extra_permissions": ["reporting.view"]})).status == 200
    assert (await owner.put("/departments/staff/permissions", {
        "permissions": ["dial.out_of_plan", "reporting.view"]})).status == 200
    entries = await world.audit(actor="user:olivia", since_ms=0)
    latest = [e.target for e in entries if e.action == "department.permissions"]
    assert latest == ["department:staff", "user:ann"]


async def test_deleting_a_department_logs_each_member_moved_and_number_released(
    world: World,
) -> None:
    owner = world.api("olivia")
    assert (await owner.post("/departments", {"id": "night", "name": "Night"})).status == 201
    assert (await owner.post("/users/bob/move", {"department": "night"})).status == 200
    assert (await owner.patch("/numbers/%2B13105550122", {"department": "night"})).status == 200
    assert (await owner.delete("/departments/night")).status == 204
    entries = [e for e in await world.audit() if e.action == "department.delete"]
    assert [e.target for e in entries] == ["department:night", "number:+13105550122",
                                           "user:bob"]
    bob = entries[2]
    assert (bob.before["department"], bob.after["department"]) == ("night", "staff")


async def test_a_departments_version_changes_when_a_member_joins(world: World) -> None:
    owner = world.api("olivia")
    read = await owner.get("/departments/managers")
    assert (await owner.post("/users/bob/move", {"department": "managers"})).status == 200
    version = await world.version()
    stale = await owner.patch("/departments/managers", {"description": "x"},
                              headers={"If-Match": read.etag})
    await refused(world, stale, 412, "If-Match", version)


async def test_two_concurrent_make_default_of_one_version_one_wins(world: World) -> None:
    owner = world.api("olivia")
    read = await owner.get("/departments/managers")
    replies = await asyncio.gather(*(
        owner.post("/departments/managers/default", headers={"If-Match": read.etag})
        for _ in range(2)
    ))
    assert sorted(r.status for r in replies) == [200, 412], [r.body for r in replies]
    assert (await owner.get("/departments/managers")).body["is_default"] is True


async def test_departments_filter_by_part_of_their_name(world: World) -> None:
    owner = world.api("olivia")
    found = await owner.get("/departments", params={"q": "MAN"})
    assert [d["id"] for d in found.body["items"]] == ["managers"]
    assert (await owner.get("/departments", params={"q": "x" * 201})).body["field"] == "q"
