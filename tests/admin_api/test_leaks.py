"""What a refusal tells (issue 16): a caller without the permission an operation needs is
answered alike whether the resource its path names exists or not, with no ETag; a stale
``If-Match`` from such a caller is refused the same way, never with a 412 naming the
resource's version; and where answers for an existing and a missing id do differ, the caller
could read the existing one anyway (``admin_api/context.py``, "Order of checks")."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from admin_api import OPERATIONS
from admin_api.context import Operation
from callerid import Permission

from .support import VALID_BODIES, Reply, World

DOMAIN = "acme.sip.example"

BODIES: dict[str, Any] = {**VALID_BODIES, "GeoCopy": {"from_user": "bob"}}
"""A valid body for each operation that takes one (so no 422 answers before the check)."""

MISSING = {"user_id": "nobody", "department_id": "nowhere", "group_id": "nogroup",
           "number": "+12125550199", "token_id": "0123456789abcdef"}

WITH_IDS = [op for op in OPERATIONS if "{" in op.path]


def _name(op: Operation) -> str:
    return f"{op.method} {op.path}"


def test_the_table_covers_every_operation_with_an_id() -> None:
    assert {_name(op) for op in WITH_IDS} >= {
        "PATCH /users/{user_id}", "DELETE /departments/{department_id}",
        "POST /numbers/{number}/release", "PUT /groups/{group_id}/members",
        "DELETE /tokens/{token_id}", "GET /users/{user_id}/sip",
    }
    assert all(op.body is None or op.body.__name__ in BODIES for op in WITH_IDS)


async def _existing(world: World) -> dict[str, str]:
    """Ids of acme's that low-privilege callers cannot touch: bob (a user with a SIP login),
    the admins department, the east group, the staff line, and bob's token."""
    owner = world.api("olivia")
    assert (await owner.patch("/account", {"sip_domain": DOMAIN})).status == 200
    assert (await owner.put("/users/bob/sip", {"username": "bob"})).status == 200
    token = next(r.id for r in await world.store.list_tokens("acme") if r.user_id == "bob")
    return {"user_id": "bob", "department_id": "admins", "group_id": "east",
            "number": "+12125550111", "token_id": token}


def _path(op: Operation, ids: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)].replace("+", "%2B"), op.path)


async def _ask(world: World, who: str, op: Operation, ids: dict[str, str],
               headers: dict[str, str] | None = None) -> Reply:
    body = BODIES[op.body.__name__] if op.body is not None else None
    return await world.api(who).call(op.method, _path(op, ids), body, headers=headers)


def _seen(reply: Reply, ids: dict[str, str]) -> tuple[Any, ...]:
    """All a client learns from ``reply``, with the ids it sent written as ``{id}``: status,
    header names, content type and body."""
    text = msgspec.json.encode(reply.body).decode()
    for value in ids.values():
        text = text.replace(value, "{id}")
    return (reply.status, sorted(reply.headers.keys()), reply.headers.get("Content-Type"),
            text)


async def _state(world: World) -> tuple[Any, ...]:
    """acme's configuration, tokens (not when each was last used) and audit log."""
    tokens = {r.hash for r in await world.store.list_tokens("acme")}
    return await world.config(), tokens, len(await world.audit())


async def _indistinguishable(world: World, who: str, ops: list[Operation], existing:
                             dict[str, str], headers: dict[str, str] | None = None) -> None:
    before = await _state(world)
    for op in ops:
        there = await _ask(world, who, op, existing, headers)
        absent = await _ask(world, who, op, MISSING, headers)
        # 403 for lack of the permission; a token the caller cannot list is missing to them
        refused = 404 if op.path.startswith("/tokens") else 403
        assert there.status == refused, (_name(op), there.status, there.body)
        assert "ETag" not in there.headers and "ETag" not in absent.headers, _name(op)
        assert _seen(there, existing) == _seen(absent, MISSING), (_name(op), there.body,
                                                                  absent.body)
    assert await _state(world) == before, "a refused request must change nothing"


async def test_a_caller_without_the_permission_cannot_tell_existing_from_missing(
    world: World,
) -> None:
    """ann holds no admin permission: every operation on another's resource is refused alike
    (403; a token she cannot list answers 404 like one that does not exist)."""
    await _indistinguishable(world, "ann", WITH_IDS, await _existing(world))


SETTINGS_ONLY = [op for op in WITH_IDS if _name(op) in {
    "PATCH /users/{user_id}", "PUT /users/{user_id}/permissions", "POST /users/{user_id}/preset",
    "POST /users/{user_id}/move", "PUT /users/{user_id}/geo", "POST /users/{user_id}/geo/copy",
    "PUT /users/{user_id}/sip", "POST /users/{user_id}/sip/rotate", "PATCH /users/{user_id}/sip",
    "DELETE /users/{user_id}/sip", "PUT /departments/{department_id}/permissions",
    "POST /departments/{department_id}/preset",
}]


async def test_a_lacking_permission_is_refused_before_the_lookup_even_for_a_reader(
    world: World,
) -> None:
    """keeper holds `users.manage` (she reads users and departments) but not `users.settings`:
    the operations that need it refuse her before looking the id up."""
    existing = await _existing(world)
    await world.add_user("keeper", "keepers", Permission.USERS_MANAGE)
    assert len(SETTINGS_ONLY) == 12
    await _indistinguishable(world, "keeper", SETTINGS_ONLY, existing)
    reply = await _ask(world, "keeper", SETTINGS_ONLY[0], MISSING)
    assert reply.status == 403 and "users.settings" in reply.body["detail"], reply.body


async def _tags(world: World, existing: dict[str, str]) -> list[str]:
    """The current ETags of the resources ``existing`` names (read by the owner)."""
    owner = world.api("olivia")
    paths = ["/users/bob", "/users/bob/sip", f"/departments/{existing['department_id']}",
             f"/groups/{existing['group_id']}", "/account",
             "/numbers/" + existing["number"].replace("+", "%2B")]
    tags = [(await owner.get(path)).etag.strip('"') for path in paths]
    assert all(tags)
    return tags


@pytest.mark.parametrize("sent", ["stale", "current"])
async def test_if_match_from_a_caller_without_the_permission_gets_403_and_no_tag(
    world: World, sent: str
) -> None:
    """A stale (or even the current) ETag sent by ann: 403, never a 412 naming the version,
    and the same answer as for a resource that does not exist."""
    existing = await _existing(world)
    tags = await _tags(world, existing)
    conditional = [op for op in WITH_IDS if op.conditional]
    if_match = ", ".join(f'"{t}"' for t in tags) if sent == "current" else '"stale"'
    before = await _state(world)
    for op in conditional:
        for ids in (existing, MISSING):
            reply = await _ask(world, "ann", op, ids, {"If-Match": if_match})
            assert reply.status == 403 and "ETag" not in reply.headers, (_name(op), reply.body)
            shown = msgspec.json.encode(reply.body).decode()
            assert not any(t in shown for t in tags), (_name(op), reply.body)
    await _indistinguishable(world, "ann", conditional, existing, {"If-Match": if_match})
    assert await _state(world) == before


async def test_if_match_on_the_account_is_refused_without_the_permission(world: World) -> None:
    version = await world.version()
    reply = await world.api("ann").patch("/account", {"name": "Mine"},
                                         headers={"If-Match": '"stale"'})
    assert reply.status == 403 and "account.settings" in reply.body["detail"], reply.body
    assert "ETag" not in reply.headers
    assert await world.version() == version


async def _readable(world: World, who: str, op: Operation, ids: dict[str, str]) -> bool:
    """Whether ``who`` may read the resource ``op`` acts on (a token: list it)."""
    api = world.api(who)
    if op.path.startswith("/tokens"):
        listed = await api.get("/tokens", params={"limit": "500"})
        return any(t["id"] == ids["token_id"] for t in listed.body["items"])
    kind, name = _path(op, ids).split("/")[1:3]
    return (await api.get(f"/{kind}/{name}")).status == 200


async def test_a_scoped_refusal_only_tells_what_the_caller_could_read(world: World) -> None:
    """mark (a manager) is kept from resources outside his scope: alice (an admin, not below
    him), the admins department (it grants what he lacks), east (a group he supervises),
    alice's token. Where his answers for those and for missing ids differ (403 or 412 against
    404), he could read the resource anyway. A stale If-Match keeps every write from landing."""
    existing = await _existing(world)
    alice_token = next(r.id for r in await world.store.list_tokens("acme")
                       if r.user_id == "alice")
    scoped = dict(existing, user_id="alice", token_id=alice_token)
    before = await _state(world)
    differed = []
    for op in WITH_IDS:
        there = await _ask(world, "mark", op, scoped, {"If-Match": '"stale"'})
        absent = await _ask(world, "mark", op, MISSING, {"If-Match": '"stale"'})
        assert there.status < 500 and absent.status < 500, (_name(op), there.body)
        if _seen(there, scoped) != _seen(absent, MISSING):
            differed.append(_name(op))
            assert await _readable(world, "mark", op, scoped), (_name(op), there.body)
    assert "PATCH /users/{user_id}" in differed  # 403 (alice is not below him) against 404
    assert "DELETE /tokens/{token_id}" not in differed  # one he cannot list: 404 as missing
    assert await _state(world) == before
