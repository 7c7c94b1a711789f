"""Reads: pages and filters, live channels (limited to a supervisor's groups), and the
strictness of request bodies (no field can be set through a side door)."""

from __future__ import annotations

import pytest

from .support import World, refused


async def test_lists_page_by_cursor_and_filter(world: World) -> None:
    owner = world.api("olivia")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        reply = await owner.get("/users", params=params)
        assert reply.status == 200 and len(reply.body["items"]) <= 2
        seen += [u["id"] for u in reply.body["items"]]
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["alice", "ann", "bob", "mark", "olivia"]
    staff = await owner.get("/users", params={"department": "staff"})
    assert [u["id"] for u in staff.body["items"]] == ["ann", "bob"]
    found = await owner.get("/users", params={"q": "MAR"})
    assert [u["id"] for u in found.body["items"]] == ["mark"]
    pool = await owner.get("/numbers", params={"department": "staff"})
    assert [n["number"] for n in pool.body["items"]] == ["+12125550111"]
    too_many = await owner.get("/users", params={"limit": "501"})
    assert too_many.status == 422 and too_many.body["field"] == "limit"


async def test_live_channels_show_who_holds_a_channel_within_a_supervisors_groups(
    world: World,
) -> None:
    dialer = world.api("service")
    calls = {}
    for user in ("ann", "bob"):
        reply = await dialer.call("POST", "/v1/dial", {"user": user, "to": "+12125550199"},
                                  prefix="")
        assert reply.body["allowed"], reply.body
        calls[user] = reply.body["call_id"]
    everyone = (await world.api("olivia").get("/live-channels")).body["items"]
    assert sorted((c["user"], c["call_id"]) for c in everyone) == sorted(
        (u, c) for u, c in calls.items())
    assert all(c["to"] == "+12125550199" and c["caller_id"] for c in everyone)
    # mark supervises the group "east" (ann only).
    east = (await world.api("mark").get("/live-channels")).body["items"]
    assert [c["user"] for c in east] == ["ann"]
    assert (await world.api("ann").get("/live-channels")).status == 403
    await dialer.call("POST", f"/v1/calls/{calls['ann']}/end", {"outcome": "answered"},
                      prefix="")
    left = (await world.api("olivia").get("/live-channels")).body["items"]
    assert [c["user"] for c in left] == ["bob"]


async def test_live_channels_say_which_calls_are_incoming(world: World) -> None:
    dialer = world.api("service")
    out = await dialer.call("POST", "/v1/dial", {"user": "ann", "to": "+12125550199"}, prefix="")
    inbound = await dialer.call("POST", "/v1/inbound", {"user": "ann", "from": "+13125550100"},
                                prefix="")
    assert inbound.body["allowed"], inbound.body
    live = {c["call_id"]: c for c in (await world.api("olivia").get("/live-channels")).body[
        "items"]}
    outgoing, incoming = live[out.body["call_id"]], live[inbound.body["call_id"]]
    assert (outgoing["direction"], outgoing["to"], outgoing["from"]) == (
        "outbound", "+12125550199", None)
    assert (incoming["direction"], incoming["to"], incoming["from"], incoming["caller_id"]) == (
        "inbound", None, "+13125550100", None)


async def test_no_field_can_be_set_through_a_side_door(world: World) -> None:
    owner = world.api("olivia")
    _, version = await world.config()
    for method, path, body, field in [
        ("PATCH", "/users/ann", {"permissions": ["billing.topup"]}, "permissions"),
        ("PATCH", "/users/ann", {"extra_permissions": ["billing.topup"]}, "extra_permissions"),
        ("PATCH", "/users/ann", {"id": "annie"}, "id"),
        ("PATCH", "/users/ann", {"department": "admins"}, "department"),
        ("PATCH", "/account", {"owner": "ann"}, "owner"),
        ("PATCH", "/account", {"id": "other"}, "id"),
        ("PATCH", "/account", {"users": []}, "users"),
        ("POST", "/users",
         {"id": "x", "email": "x@acme.example", "extra_permissions": ["usage.view"]},
         "extra_permissions"),
        ("POST", "/users", {"id": "x", "email": "x@acme.example", "account": "other"}, "account"),
        ("PATCH", "/departments/staff", {"permissions": []}, "permissions"),
        ("PATCH", "/numbers/%2B12125550100", {"status": "active"}, "status"),
    ]:
        reply = await owner.call(method, path, body)
        assert reply.status == 422, (path, body, reply.body)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert reply.body["field"] == field, reply.body
    _, after = await world.config()
    assert after == version


async def test_bad_values_name_their_field_and_change_nothing(world: World) -> None:
    owner = world.api("olivia")
    version = await world.version()
    for path, body, status, field in [
        ("/users/ann", {"max_channels": -1}, 422, "max_channels"),
        ("/users/ann", {"email": "not an email"}, 422, "email"),
        ("/users/ann", {"default_caller_id": "+19995550100"}, 409, "default_caller_id"),
        ("/account", {"default_region": "usa"}, 422, "default_region"),
    ]:
        reply = await owner.patch(path, body)
        await refused(world, reply, status, field, version)
    not_json = await owner.call("PATCH", "/users/ann", raw=b'{"max_channels": 3,')
    await refused(world, not_json, 400, None, version)
    assert "not valid JSON" in not_json.body["detail"]


async def test_an_invariant_conflict_names_the_field_the_client_sent(world: World) -> None:
    owner = world.api("olivia")
    version = await world.version()
    unknown = "+19995550100"
    for method, path, body, field in [
        ("PATCH", "/users/ann", {"custom_caller_ids": [unknown]}, "custom_caller_ids[0]"),
        ("PUT", "/users/ann/geo", {"default": unknown}, "default"),
        ("PATCH", "/users/ann", {"supervised_groups": ["nowhere"]}, "supervised_groups"),
        ("PATCH", "/departments/staff", {"default_caller_id": unknown}, "default_caller_id"),
        ("POST", "/users", {"id": "nia", "email": "nia@acme.example", "department": "nowhere"},
         "department"),
        ("POST", "/numbers", {"number": "+12125550177", "department": "nowhere"}, "department"),
        ("PUT", "/groups/east/members", {"members": ["ann", "nobody"]}, "members"),
    ]:
        await refused(world, await owner.call(method, path, body), 409, field, version)


async def test_a_department_given_permissions_and_a_template_names_the_template(
    world: World,
) -> None:
    version = await world.version()
    reply = await world.api("olivia").post("/departments", {
        "id": "night", "name": "Night", "permissions": ["usage.view"], "template": "staff"})
    await refused(world, reply, 422, "template", version)


async def test_an_unknown_template_or_geo_source_names_its_field(world: World) -> None:
    owner = world.api("olivia")
    version = await world.version()
    template = await owner.post("/departments", {"id": "night", "name": "Night",
                                                 "template": "nowhere"})
    await refused(world, template, 404, "template", version)
    source = await owner.post("/users/ann/geo/copy", {"from_user": "nobody"})
    await refused(world, source, 404, "from_user", version)


@pytest.mark.parametrize("cursor", [
    "99999999999999999999999", "99999999999999999999999-0", "0-99999999999999999999999",
    "18446744073709551616-0", "\u0661\u0662", "\u0661-\u0662",
], ids=["huge", "huge-ms", "huge-seq", "ms-over-64-bits", "arabic-digits", "arabic-stream-id"])
async def test_an_audit_cursor_out_of_range_is_refused_naming_it(
    world: World, cursor: str
) -> None:
    await world.api("olivia").patch("/users/ann", {"max_channels": 3})
    reply = await world.api("olivia").get("/audit", params={"cursor": cursor})
    assert reply.status == 422, reply.body
    assert reply.body["field"] == "cursor"


async def test_a_missing_docs_asset_answers_a_problem(world: World) -> None:
    reply = await world.api(None).get("/docs/assets/nothing.js")
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert reply.body["status"] == 404 and "nothing.js" in reply.body["detail"]
