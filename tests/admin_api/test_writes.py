"""Every write is in the audit log (actor, target, before, after); versions stop lost updates;
tokens are stored as hashes only and a revoked one is refused at once; a change made through
the API is the next decision's."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import msgspec
import redis.asyncio as aioredis

from callerid import DepartmentsMode, User
from engine.store import AuditQuery, EmbeddedStore
from engine.store.redis_store import RedisStore

from .support import World, refused

WRITES: list[tuple[str, str, Any, str, str]] = [
    # method, path, body, action, target
    ("PATCH", "/account", {"name": "Acme Inc"}, "account.update", "account:acme"),
    ("POST", "/users", {"id": "nia", "email": "nia@acme.example"}, "user.create", "user:nia"),
    ("PATCH", "/users/nia", {"max_channels": 3}, "user.update", "user:nia"),
    ("PUT", "/users/nia/permissions", {"extra_permissions_enabled": True,
                                       "extra_permissions": ["reporting.view"]},
     "user.permissions", "user:nia"),
    ("POST", "/users/nia/preset", {"preset": "accountant"}, "user.preset", "user:nia"),
    ("POST", "/users/nia/move", {"department": "managers"}, "user.move", "user:nia"),
    ("PUT", "/users/nia/geo", {"default": "+12125550100"}, "user.geo", "user:nia"),
    ("POST", "/users/nia/geo/copy", {"from_user": "ann"}, "user.geo", "user:nia"),
    ("POST", "/departments", {"id": "night", "name": "Night"}, "department.create",
     "department:night"),
    ("PATCH", "/departments/night", {"description": "After hours"}, "department.update",
     "department:night"),
    ("PUT", "/departments/night/permissions", {"permissions": ["usage.view"]},
     "department.permissions", "department:night"),
    ("POST", "/departments/night/preset", {"preset": "technical"}, "department.preset",
     "department:night"),
    ("POST", "/departments/night/default", None, "department.default", "department:night"),
    ("POST", "/departments/staff/default", None, "department.default", "department:staff"),
    ("DELETE", "/departments/night", None, "department.delete", "department:night"),
    ("POST", "/numbers", {"number": "+12125550177", "name": "New"}, "number.create",
     "number:+12125550177"),
    ("PATCH", "/numbers/%2B12125550177", {"department": "staff"}, "number.update",
     "number:+12125550177"),
    ("POST", "/numbers/%2B12125550177/release", None, "number.release",
     "number:+12125550177"),
    ("POST", "/groups", {"id": "north", "name": "North"}, "group.create", "group:north"),
    ("PATCH", "/groups/north", {"name": "Northern"}, "group.update", "group:north"),
    ("PUT", "/groups/north/members", {"members": ["ann", "nia"]}, "group.members",
     "group:north"),
    ("DELETE", "/groups/north", None, "group.delete", "group:north"),
    ("DELETE", "/users/nia", None, "user.delete", "user:nia"),
]


async def test_every_write_is_in_the_audit_log(world: World) -> None:
    owner = world.api("olivia")
    for method, path, body, action, target in WRITES:
        reply = await owner.call(method, path, body)
        assert reply.status in (200, 201, 204), (method, path, reply.body)
        log = (await owner.get("/audit", params={"limit": "1"})).body["items"]
        assert len(log) == 1
        entry = log[0]
        assert (entry["actor"], entry["action"], entry["target"]) == ("user:olivia", action,
                                                                     target), (method, path)
        if method == "POST" and path in ("/users", "/departments", "/numbers", "/groups"):
            assert entry["before"] is None and entry["after"] is not None
        elif method == "DELETE":
            assert entry["before"] is not None and entry["after"] is None
        else:
            assert entry["before"] != entry["after"], (method, path)
    created = await owner.post("/tokens", {"name": "ci", "kind": "service"})
    assert (await owner.get("/audit", params={"limit": "1"})).body["items"][0]["action"] == \
        "token.create"
    assert (await owner.delete(f"/tokens/{created.body['id']}")).status == 204
    revoked = (await owner.get("/audit", params={"limit": "1"})).body["items"][0]
    assert (revoked["action"], revoked["target"]) == ("token.revoke", f"token:{created.body['id']}")
    everything = await world.store.audit_log("acme", AuditQuery(limit=500))
    assert len(everything[0]) == len(WRITES) + 2


async def test_the_audit_log_filters_by_actor_target_and_time(world: World) -> None:
    await world.api("olivia").patch("/users/ann", {"max_channels": 3})
    await world.api("mark").patch("/users/bob", {"max_channels": 2})
    owner = world.api("olivia")
    by_mark = (await owner.get("/audit", params={"actor": "user:mark"})).body["items"]
    assert [e["target"] for e in by_mark] == ["user:bob"]
    on_ann = (await owner.get("/audit", params={"target": "user:ann"})).body["items"]
    assert [e["actor"] for e in on_ann] == ["user:olivia"]
    later = (await owner.get("/audit", params={"since": "2999-01-01T00:00:00Z"})).body
    assert later["items"] == []
    bad = await owner.get("/audit", params={"since": "yesterday"})
    assert bad.status == 422 and bad.body["field"] == "since"
    assert (await world.api("mark").get("/audit")).status == 403


async def test_a_stale_version_is_refused_and_changes_nothing(world: World) -> None:
    owner = world.api("olivia")
    read = await owner.get("/departments/staff")
    first = await owner.patch("/departments/staff", {"name": "Staff A"},
                              headers={"If-Match": read.etag})
    assert first.status == 200 and first.etag != read.etag
    stale = await owner.patch("/departments/staff", {"name": "Staff B"},
                              headers={"If-Match": read.etag})
    assert stale.status == 412 and stale.body["field"] == "If-Match"
    assert (await owner.get("/departments/staff")).body["name"] == "Staff A"


async def test_two_concurrent_edits_of_one_version_one_wins(world: World) -> None:
    owner = world.api("olivia")
    for round_ in range(5):
        read = await owner.get("/departments/managers")
        replies = await asyncio.gather(*(
            owner.patch("/departments/managers", {"description": f"round {round_} by {n}"},
                        headers={"If-Match": read.etag})
            for n in range(2)
        ))
        assert sorted(r.status for r in replies) == [200, 412], [r.body for r in replies]
        winner = next(r for r in replies if r.status == 200)
        now = await owner.get("/departments/managers")
        assert now.body["description"] == winner.body["description"]


async def test_tokens_are_stored_as_hashes_only(world: World) -> None:
    created = await world.api("ann").post("/tokens", {"name": "softphone"})
    assert created.status == 201 and created.body["kind"] == "user"
    token = created.body["token"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    store = world.store
    if isinstance(store, EmbeddedStore):
        # Every byte the embedded store wrote: the database and its write-ahead log.
        files = sorted(store.data_dir.iterdir())
        dump = b"".join([await asyncio.to_thread(f.read_bytes) for f in files if f.is_file()])
        assert digest.encode() in dump, "the hash is there, so the search looked in the right place"
    else:
        assert isinstance(store, RedisStore)
        client = aioredis.Redis.from_url(store.settings.url)  # the same Redis, read directly
        dump = b""
        for key in await client.keys("*"):
            kind = await client.type(key)
            if kind == b"hash":
                dump += b"".join(k + v for k, v in (await client.hgetall(key)).items())
            elif kind == b"string":
                dump += key + (await client.get(key) or b"")
            elif kind == b"stream":
                dump += b"".join(b"".join(f.values()) for _, f in await client.xrange(key))
            elif kind == b"set":
                dump += key + b"".join(await client.smembers(key))
            elif kind == b"zset":
                dump += key + b"".join(await client.zrange(key, 0, -1))
            elif kind == b"list":
                dump += key + b"".join(await client.lrange(key, 0, -1))
            else:
                raise AssertionError(f"a key of a kind this dump does not read: {key!r} {kind!r}")
        await client.aclose()
        assert digest.encode() in dump
    assert token.encode() not in dump
    listed = (await world.api("ann").get("/tokens")).body["items"]
    assert all("token" not in t for t in listed)
    assert any(t["id"] == digest[:16] for t in listed)


async def test_a_revoked_token_is_refused_at_once(world: World) -> None:
    created = await world.api("ann").post("/tokens", {"name": "tablet"})
    mine = world.api("ann")
    mine.token = created.body["token"]
    assert (await mine.get("/users/ann")).status == 200  # the token is known (and cached)
    assert (await world.api("ann").delete(f"/tokens/{created.body['id']}")).status == 204
    assert (await mine.get("/users/ann")).status == 401
    dial = await mine.call("POST", "/v1/dial", {"user": "ann", "to": "+12125550199"}, prefix="")
    assert dial.status == 401


async def test_a_user_token_dials_as_its_user_only(world: World) -> None:
    created = await world.api("ann").post("/tokens", {"name": "softphone"})
    phone = world.api("ann")
    phone.token = created.body["token"]
    own = await phone.call("POST", "/v1/dial", {"user": "ann", "to": "+12125550199"}, prefix="")
    assert own.status == 200 and own.body["allowed"], own.body
    other = await phone.call("POST", "/v1/dial", {"user": "bob", "to": "+12125550199"}, prefix="")
    assert other.status == 403 and other.body["field"] == "user"
    # Nor end or extend another user's call: it answers as if it did not exist.
    bobs = await world.api("service").call("POST", "/v1/dial",
                                           {"user": "bob", "to": "+12125550199"}, prefix="")
    for action, body in (("heartbeat", {}), ("end", {"outcome": "busy"})):
        reply = await phone.call("POST", f"/v1/calls/{bobs.body['call_id']}/{action}", body,
                                 prefix="")
        assert reply.status == 404, (action, reply.body)
    ended = await phone.call("POST", f"/v1/calls/{own.body['call_id']}/end",
                             {"outcome": "busy"}, prefix="")
    assert ended.status == 200
    # A user cannot mint a service token without account.settings.
    assert (await world.api("ann").post("/tokens", {"name": "x", "kind": "service"})).status == 403


async def test_a_change_through_the_api_is_the_next_decision(world: World) -> None:
    dialer = world.api("service")
    dial = {"user": "bob", "to": "+12125550199"}
    first = await dialer.call("POST", "/v1/dial", dial, prefix="")
    assert first.body["allowed"] and first.body["caller_id"] == "+12125550100"
    changed = await world.api("olivia").patch("/users/bob", {"default_caller_id": "+13105550122"})
    assert changed.status == 200
    await dialer.call("POST", f"/v1/calls/{first.body['call_id']}/end", {"outcome": "busy"},
                      prefix="")
    second = await dialer.call("POST", "/v1/dial", dial, prefix="")
    assert second.body["caller_id"] == "+13105550122", second.body


async def test_a_users_version_changes_when_their_department_permissions_do(
    world: World,
) -> None:
    owner = world.api("olivia")
    read = await owner.get("/users/ann")
    assert (await owner.put("/departments/staff/permissions",
                            {"permissions": ["dial.out_of_plan", "usage.view"]})).status == 200
    now = await owner.get("/users/ann")
    assert now.etag != read.etag and "usage.view" in now.body["effective_permissions"]
    assert now.body["etag"] == now.etag.strip('"')
    version = await world.version()
    stale = await owner.patch("/users/ann", {"max_channels": 5},
                              headers={"If-Match": read.etag})
    await refused(world, stale, 412, "If-Match", version)


async def test_a_weak_etag_never_matches(world: World) -> None:
    owner = world.api("olivia")
    read = await owner.get("/users/ann")
    version = await world.version()
    weak = await owner.patch("/users/ann", {"max_channels": 5},
                             headers={"If-Match": f"W/{read.etag}"})
    await refused(world, weak, 412, "If-Match", version)
    strong = await owner.patch("/users/ann", {"max_channels": 5},
                               headers={"If-Match": f'"other", {read.etag}'})
    assert strong.status == 200


async def test_a_patch_that_changes_nothing_writes_nothing(world: World) -> None:
    owner = world.api("olivia")
    read = await owner.get("/users/ann")
    version = await world.version()
    for path, body in [("/users/ann", {"max_channels": 2, "name": "Ann"}),
                       ("/account", {"name": "Acme"}),
                       ("/departments/staff", {"name": "Staff"}),
                       ("/numbers/%2B12125550100", {"name": "Main"}),
                       ("/groups/east", {"name": "East"})]:
        reply = await owner.patch(path, body)
        assert reply.status == 200, (path, reply.body)
        assert reply.body["etag"] == reply.etag.strip('"')
    assert (await owner.patch("/users/ann", {"max_channels": 2})).etag == read.etag
    assert await world.version() == version
    assert await world.audit() == []


async def test_switching_to_enforced_logs_each_user_it_moves(world: World) -> None:
    config, version = await world.config()
    legacy = msgspec.structs.replace(
        config, departments_mode=DepartmentsMode.LEGACY,
        users=(*config.users, User(id="old", email="old@acme.example",
                                   permissions=("dial.out_of_plan",))))
    await world.store.save_account(legacy, version)
    assert (await world.api("olivia").patch("/account",
                                            {"departments_mode": "enforced"})).status == 200
    entries = await world.audit()
    assert [(e.action, e.target) for e in entries] == [("account.update", "account:acme"),
                                                       ("account.update", "user:old")]
    moved = entries[1]
    assert "department" not in moved.before and moved.after["department"] == "staff"
    assert moved.before["permissions"] == ["dial.out_of_plan"]
    assert moved.after["effective_permissions"] == ["dial.out_of_plan"]
