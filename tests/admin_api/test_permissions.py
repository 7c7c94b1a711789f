"""DESIGN.md's permission rules and department rules, each through the admin API: a refused
change answers 403 (or 409 for a rule of the domain) and changes nothing."""

from __future__ import annotations

import asyncio

import msgspec

from callerid import DepartmentsMode, Permission, User

from .support import World, refused


async def _unchanged(world: World, before_version: int) -> None:
    _, version = await world.config()
    assert version == before_version, "a refused change must write nothing"


async def test_nobody_changes_their_own_permissions(world: World) -> None:
    _, version = await world.config()
    reply = await world.api("alice").put("/users/alice/permissions", {
        "extra_permissions_enabled": True, "extra_permissions": ["dial.special_numbers"]})
    assert reply.status == 403 and "own permissions" in reply.body["detail"]
    await _unchanged(world, version)


async def test_only_the_owner_changes_the_owner(world: World) -> None:
    owner_token = next(r.id for r in await world.store.list_tokens("acme")
                       if r.user_id == "olivia")
    _, version = await world.config()
    admin = world.api("alice")
    for method, path, body in [
        ("PATCH", "/users/olivia", {"name": "Not Olivia"}),
        ("PUT", "/users/olivia/permissions", {"extra_permissions_enabled": False}),
        ("POST", "/users/olivia/preset", {"preset": "none"}),
        ("POST", "/users/olivia/move", {"department": "staff"}),
        ("DELETE", "/users/olivia", None),
        ("PUT", "/users/olivia/geo", {}),
        ("POST", "/users/olivia/geo/copy", {"from_user": "ann"}),
        ("DELETE", f"/tokens/{owner_token}", None),
        ("PUT", "/groups/west/members", {"members": ["bob", "olivia"]}),
        ("POST", "/groups", {"id": "north", "name": "North", "members": ["olivia"]}),
    ]:
        reply = await admin.call(method, path, body)
        assert reply.status == 403, (method, path, reply.body)
        assert "owner" in reply.body["detail"], (method, path, reply.body)
    await _unchanged(world, version)
    assert any(r.id == owner_token for r in await world.store.list_tokens("acme"))
    owner = world.api("olivia")
    assert (await owner.patch("/users/olivia", {"name": "Olivia O."})).status == 200


async def test_a_group_holding_the_owner_is_the_owners_to_change(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.put("/groups/west/members", {"members": ["bob", "olivia"]})).status == 200
    version = await world.version()
    for method, path, body in [("PUT", "/groups/west/members", {"members": ["bob"]}),
                               ("DELETE", "/groups/west", None)]:
        reply = await world.api("alice").call(method, path, body)
        assert reply.status == 403 and "owner" in reply.body["detail"], (path, reply.body)
    assert await world.version() == version


async def test_no_grant_of_a_permission_the_granter_lacks(world: World) -> None:
    _, version = await world.config()
    reply = await world.api("mark").put("/users/ann/permissions", {
        "extra_permissions_enabled": True, "extra_permissions": ["billing.topup"]})
    assert reply.status == 403 and "billing.topup" in reply.body["detail"]
    await _unchanged(world, version)
    ok = await world.api("mark").put("/users/ann/permissions", {
        "extra_permissions_enabled": True, "extra_permissions": ["monitoring.use"]})
    assert ok.status == 200, ok.body
    assert "monitoring.use" in ok.body["effective_permissions"]


async def test_no_edit_of_a_user_not_strictly_below_the_editor(world: World) -> None:
    _, version = await world.config()
    # mark (a manager) cannot touch alice (an admin), nor raise ann to his own level.
    assert (await world.api("mark").patch("/users/alice", {"max_channels": 9})).status == 403
    same = await world.api("mark").post("/users/ann/move", {"department": "managers"})
    assert same.status == 403 and "every permission you hold" in same.body["detail"]
    await _unchanged(world, version)
    # An admin cannot edit another admin: only the owner makes and edits admins.
    moved = await world.api("olivia").post("/users/bob/move", {"department": "admins"})
    assert moved.status == 200
    _, version = await world.config()
    assert (await world.api("alice").patch("/users/bob", {"max_channels": 5})).status == 403
    await _unchanged(world, version)


async def test_a_user_changes_their_own_name_only(world: World) -> None:
    ann = world.api("ann")
    assert (await ann.patch("/users/ann", {"name": "Ann B."})).status == 200
    refused = await ann.patch("/users/ann", {"max_channels": 50})
    assert refused.status == 403 and refused.body["field"] == "max_channels"
    assert (await ann.get("/users/bob")).status == 403
    assert (await ann.get("/users/ann")).body["name"] == "Ann B."


async def test_the_owner_is_never_put_in_a_department(world: World) -> None:
    _, version = await world.config()
    reply = await world.api("olivia").post("/users/olivia/move", {"department": "staff"})
    assert reply.status == 409 and "owner cannot be put in a department" in reply.body["detail"]
    await _unchanged(world, version)


async def test_the_default_department_cannot_be_deleted_until_another_is(world: World) -> None:
    owner = world.api("olivia")
    _, version = await world.config()
    refused = await owner.delete("/departments/staff")
    assert refused.status == 409 and "default" in refused.body["detail"]
    await _unchanged(world, version)
    assert (await owner.post("/departments/managers/default")).status == 200
    assert (await owner.delete("/departments/staff")).status == 204


async def test_deleting_a_department_moves_its_members_to_the_default(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.post("/departments", {"id": "night", "name": "Night"})).status == 201
    assert (await owner.post("/users/bob/move", {"department": "night"})).status == 200
    assert (await owner.delete("/departments/night")).status == 204
    bob = (await owner.get("/users/bob")).body
    assert bob["department"] == "staff"
    assert (await owner.get("/departments/night")).status == 404


async def test_a_new_department_may_copy_another_as_a_template(world: World) -> None:
    owner = world.api("olivia")
    made = await owner.post("/departments", {"id": "mgr2", "name": "Managers 2",
                                             "template": "managers"})
    assert made.status == 201
    managers = (await owner.get("/departments/managers")).body
    assert made.body["permissions"] == managers["permissions"]


async def test_a_new_user_lands_in_the_default_department(world: World) -> None:
    created = await world.api("mark").post("/users", {"id": "nia", "email": "nia@acme.example"})
    assert created.status == 201, created.body
    assert created.body["department"] == "staff"
    assert created.body["effective_permissions"] == ["dial.out_of_plan"]


async def _with_legacy_user(world: World, *permissions: str) -> None:
    """acme in legacy mode, with ``old``: a user in no department holding ``permissions``."""
    config, version = await world.config()
    legacy = msgspec.structs.replace(
        config, departments_mode=DepartmentsMode.LEGACY,
        users=(*config.users, User(id="old", email="old@acme.example",
                                   permissions=tuple(sorted(permissions)))),
    )
    await world.store.save_account(legacy, version)


async def test_legacy_users_keep_their_permissions_as_extras_when_moved(world: World) -> None:
    await _with_legacy_user(world, "billing.topup", "dial.out_of_plan")
    moved = await world.api("olivia").post("/users/old/move", {"department": "staff"})
    assert moved.status == 200, moved.body
    assert moved.body["extra_permissions"] == ["billing.topup"]
    assert moved.body["extra_permissions_enabled"] is True
    assert sorted(moved.body["effective_permissions"]) == ["billing.topup", "dial.out_of_plan"]


async def test_switching_to_enforced_moves_legacy_users_into_the_default_department(
    world: World,
) -> None:
    await _with_legacy_user(world, "billing.topup", "dial.out_of_plan")
    owner = world.api("olivia")
    switched = await owner.patch("/account", {"departments_mode": "enforced"})
    assert switched.status == 200 and switched.body["departments_mode"] == "enforced"
    old = (await owner.get("/users/old")).body
    assert old["department"] == "staff"
    assert sorted(old["effective_permissions"]) == ["billing.topup", "dial.out_of_plan"]
    assert old["extra_permissions"] == ["billing.topup"]


async def test_switching_to_enforced_survives_concurrent_account_edits(world: World) -> None:
    """A write that meets a concurrent save runs its edit again on the newer account: the
    switch must be made on that run too, not only on the first."""
    await _with_legacy_user(world, "billing.topup")
    owner = world.api("olivia")
    # Fewer writers than the service's attempts, so that every one of them lands.
    replies = await asyncio.gather(
        owner.patch("/account", {"name": "Acme 1"}),
        owner.patch("/account", {"name": "Acme 2"}),
        owner.patch("/account", {"departments_mode": "enforced"}),
        owner.patch("/account", {"name": "Acme 3"}),
    )
    assert [r.status for r in replies] == [200] * 4, [(r.status, r.body) for r in replies]
    assert replies[2].body["departments_mode"] == "enforced"
    assert (await owner.get("/account")).body["departments_mode"] == "enforced"
    assert (await owner.get("/users/old")).body["department"] == "staff"


async def test_an_account_never_goes_back_to_legacy_mode(world: World) -> None:
    version = await world.version()
    reply = await world.api("olivia").patch("/account", {"departments_mode": "legacy"})
    await refused(world, reply, 409, "departments_mode", version)


async def test_switching_to_enforced_is_refused_when_it_would_change_a_user_above_you(
    world: World,
) -> None:
    # sam holds account.settings and the calling permission; old holds more than sam.
    sam = await world.add_user("sam", "settings", Permission.ACCOUNT_SETTINGS,
                               Permission.DIAL_OUT_OF_PLAN)
    await _with_legacy_user(world, "billing.topup", "dial.out_of_plan")
    version = await world.version()
    reply = await sam.patch("/account", {"departments_mode": "enforced"})
    await refused(world, reply, 403, "departments_mode", version)
    assert "'old'" in reply.body["detail"]


async def test_a_permission_preset_applies_to_a_user_and_a_department(world: World) -> None:
    owner = world.api("olivia")
    presets = {p["name"]: p["permissions"] for p in (await owner.get("/presets")).body}
    assert set(presets) == {"admin", "supervisor", "accountant", "technical", "none"}
    ann = await owner.post("/users/ann/preset", {"preset": "accountant"})
    assert ann.status == 200
    assert set(presets["accountant"]) <= set(ann.body["effective_permissions"])
    assert "dial.out_of_plan" in ann.body["effective_permissions"]  # calling kept
    staff = await owner.post("/departments/staff/preset", {"preset": "supervisor"})
    assert set(staff.body["permissions"]) == set(presets["supervisor"]) | {"dial.out_of_plan"}
    # A manager cannot hand out the admin preset: he lacks most of it.
    assert (await world.api("mark").post("/users/bob/preset", {"preset": "admin"})).status == 403


async def test_a_service_token_may_not_use_the_admin_api(world: World) -> None:
    reply = await world.api("service").get("/account")
    assert reply.status == 403 and "decision API" in reply.body["detail"]
    assert (await world.api(None).get("/account")).status == 401
