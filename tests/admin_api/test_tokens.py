"""API tokens: deleting a user revokes their tokens (so a user created again with the same id
never inherits them), a token whose user is gone answers 401, and revoking another user's
token is a change to that user, under rules 2 and 3."""

from __future__ import annotations

import asyncio

import msgspec

from callerid import Permission
from engine.service import AccountService
from engine.tokens import issue_token

from .support import Api, World, refused

P = Permission


async def _nia(world: World) -> Api:
    """nia, created through the API, with a token of her own."""
    created = await world.api("olivia").post("/users", {"id": "nia", "email": "nia@acme.example"})
    assert created.status == 201, created.body
    world.tokens["nia"] = await issue_token(world.store, "acme", "nia-phone", "nia")
    nia = world.api("nia")
    assert (await nia.get("/users/nia")).status == 200  # known, and cached by the server
    return nia


async def _token_id(world: World, name: str) -> str:
    return next(r.id for r in await world.store.list_tokens("acme") if r.name == name)


async def test_deleting_a_user_revokes_their_tokens_at_once(world: World) -> None:
    nia = await _nia(world)
    assert (await world.api("olivia").delete("/users/nia")).status == 204
    assert (await nia.get("/users/nia")).status == 401
    assert [r for r in await world.store.list_tokens("acme") if r.user_id == "nia"] == []


async def test_a_user_created_again_does_not_inherit_the_old_ones_tokens(world: World) -> None:
    nia = await _nia(world)
    owner = world.api("olivia")
    assert (await owner.delete("/users/nia")).status == 204
    assert (await owner.post("/users", {"id": "nia", "email": "nia@acme.example"})).status == 201
    assert (await nia.get("/users/nia")).status == 401
    dial = await nia.call("POST", "/v1/dial", {"user": "nia", "to": "+12125550199"}, prefix="")
    assert dial.status == 401


async def test_the_revocations_of_a_deleted_users_tokens_are_logged(world: World) -> None:
    await _nia(world)
    token_id = await _token_id(world, "nia-phone")
    assert (await world.api("olivia").delete("/users/nia")).status == 204
    entries = await world.audit(actor="user:olivia")
    assert [(e.action, e.target) for e in entries[:2]] == [
        ("token.revoke", f"token:{token_id}"), ("user.delete", "user:nia")]
    assert entries[0].before["user"] == "nia" and entries[0].after is None


async def test_a_token_whose_user_is_gone_answers_401(world: World) -> None:
    nia = await _nia(world)
    # Removed behind the admin API's back (as `callgate import` of a file without her would).
    await AccountService(world.store).apply("acme", lambda c: msgspec.structs.replace(
        c, users=tuple(u for u in c.users if u.id != "nia")))
    reply = await nia.get("/account")
    assert reply.status == 401 and "no longer exists" in reply.body["detail"]


async def test_creating_a_user_revokes_tokens_left_by_an_earlier_one(world: World) -> None:
    nia = await _nia(world)
    await AccountService(world.store).apply("acme", lambda c: msgspec.structs.replace(
        c, users=tuple(u for u in c.users if u.id != "nia")))
    assert (await world.api("olivia").post(
        "/users", {"id": "nia", "email": "nia@acme.example"})).status == 201
    assert (await nia.get("/users/nia")).status == 401


async def test_only_the_owner_revokes_the_owners_tokens(world: World) -> None:
    token_id = await _token_id(world, "olivia-token")
    version = await world.version()
    reply = await world.api("alice").delete(f"/tokens/{token_id}")
    await refused(world, reply, 403, "token_id", version)
    assert "owner" in reply.body["detail"]
    assert await world.store.find_token(next(
        r.hash for r in await world.store.list_tokens("acme") if r.id == token_id))
    assert (await world.api("olivia").get("/account")).status == 200


async def test_revoking_another_users_token_needs_a_user_below_you(world: World) -> None:
    sam = await world.add_user("sam", "settings", P.ACCOUNT_SETTINGS, P.DIAL_OUT_OF_PLAN)
    version = await world.version()
    refused_reply = await sam.delete(f"/tokens/{await _token_id(world, 'mark-token')}")
    await refused(world, refused_reply, 403, "token_id", version)
    assert (await world.api("mark").get("/account")).status == 200
    # ann (dial.out_of_plan only) is below sam.
    assert (await sam.delete(f"/tokens/{await _token_id(world, 'ann-token')}")).status == 204
    assert (await world.api("ann").get("/account")).status == 401


async def test_a_token_you_cannot_list_answers_as_missing(world: World) -> None:
    for name in ("dialer", "bob-token"):
        reply = await world.api("mark").delete(f"/tokens/{await _token_id(world, name)}")
        assert reply.status == 404 and reply.body["field"] == "token_id", (name, reply.body)


async def test_anyone_revokes_their_own_token(world: World) -> None:
    reply = await world.api("ann").delete(f"/tokens/{await _token_id(world, 'ann-token')}")
    assert reply.status == 204


async def test_tokens_filter_by_kind_and_user(world: World) -> None:
    owner = world.api("olivia")
    service = await owner.get("/tokens", params={"kind": "service"})
    assert [(t["name"], t["kind"]) for t in service.body["items"]] == [("dialer", "service")]
    anns = await owner.get("/tokens", params={"user": "ann"})
    assert [t["name"] for t in anns.body["items"]] == ["ann-token"]
    users = await owner.get("/tokens", params={"kind": "user"})
    assert {t["user"] for t in users.body["items"]} == {"olivia", "alice", "mark", "ann", "bob"}
    # Without account.settings a user sees their own tokens only, whatever the filter.
    assert (await world.api("ann").get("/tokens", params={"user": "bob"})).body["items"] == []


async def test_a_token_left_by_a_user_an_import_removed_cannot_dial(world: World) -> None:
    """An import replaces the account whole and knows nothing of tokens: the user's token is
    then refused by the decision API too, as a revoked one is."""
    import msgspec

    from engine.service import AccountService

    config, _ = await world.config()
    without_bob = msgspec.structs.replace(config, users=tuple(u for u in config.users
                                                              if u.id != "bob"),
                                          groups=tuple(msgspec.structs.replace(
                                              g, members=tuple(m for m in g.members
                                                               if m != "bob"))
                                              for g in config.groups))
    await AccountService(world.store, on_saved=world.engine.install).put(without_bob)
    reply = await world.api("bob").call("POST", "/v1/dial", {"user": "bob", "to": "+12125550199"},
                                        prefix="")
    assert reply.status == 401, reply.body


async def test_a_token_has_no_versions_so_only_if_match_star_holds(world: World) -> None:
    token_id = await _token_id(world, "ann-token")
    stale = await world.api("ann").delete(f"/tokens/{token_id}", headers={"If-Match": '"abc"'})
    assert stale.status == 412 and stale.body["field"] == "If-Match", stale.body
    assert (await world.api("ann").get("/users/ann")).status == 200, "the token still works"
    reply = await world.api("ann").delete(f"/tokens/{token_id}", headers={"If-Match": "*"})
    assert reply.status == 204


async def test_a_token_with_an_expiry_is_created_and_listed_with_it(world: World) -> None:
    owner = world.api("olivia")
    version = await world.version()
    past = await owner.post("/tokens", {"name": "late", "expires_at": "2020-01-01T00:00:00Z"})
    await refused(world, past, 422, "expires_at", version)
    naive = await owner.post("/tokens", {"name": "naive", "expires_at": "2099-01-01T00:00:00"})
    await refused(world, naive, 422, "expires_at", version)
    assert not [r for r in await world.store.list_tokens("acme") if r.name in ("late", "naive")]

    created = await owner.post("/tokens", {"name": "campaign",
                                           "expires_at": "2099-01-01T01:00:00+01:00"})
    assert created.status == 201, created.body
    assert created.body["expires_at"] == "2099-01-01T00:00:00.000Z"
    assert created.body["last_used_at"] is None
    listed = (await owner.get("/tokens")).body["items"]
    mine = next(t for t in listed if t["name"] == "campaign")
    assert mine["expires_at"] == "2099-01-01T00:00:00.000Z" and mine["last_used_at"] is None
    forever = next(t for t in listed if t["name"] == "olivia-token")
    assert forever["expires_at"] is None


async def test_a_tokens_last_use_is_listed(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.get("/account")).status == 200  # olivia's token, used just now
    for _ in range(100):  # written in the background, off the request
        listed = (await owner.get("/tokens")).body["items"]
        used = next(t for t in listed if t["name"] == "olivia-token")["last_used_at"]
        if used is not None:
            break
        await asyncio.sleep(0.01)
    assert used is not None and used.startswith("20")
    never = next(t for t in listed if t["name"] == "dialer")  # the service token, unused
    assert never["last_used_at"] is None
