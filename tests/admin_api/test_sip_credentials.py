"""SIP credentials through the admin API: create with a generated password (shown once) or a
chosen one (refused when weak), rotate, switch VoIP off, remove; never a password or a digest
in an answer or the audit log; and the SIP domain they depend on."""

from __future__ import annotations

from typing import Any

import msgspec

from sip.credentials import ha1

from .support import World, refused

DOMAIN = "acme.sip.example"
CHOSEN = "Orchid-lantern-2026"


async def _with_domain(world: World) -> None:
    reply = await world.api("olivia").patch("/account", {"sip_domain": DOMAIN})
    assert reply.status == 200, reply.body


def _no_secrets(body: Any) -> None:
    text = msgspec.json.encode(body).decode()
    assert "ha1" not in text and CHOSEN not in text


async def test_a_generated_password_is_shown_once_and_only_its_digests_kept(world: World) -> None:
    await _with_domain(world)
    owner = world.api("olivia")
    made = await owner.put("/users/bob/sip", {"username": "bob.desk"})
    assert made.status == 200, made.body
    password = made.body["password"]
    assert len(password) >= 20 and made.body["username"] == "bob.desk"
    assert made.body["domain"] == DOMAIN and made.body["enabled"] is True
    config, _ = await world.config()
    stored = next(u for u in config.users if u.id == "bob").sip
    assert stored is not None
    assert stored.ha1_md5 == ha1("MD5", "bob.desk", DOMAIN, password)
    assert stored.ha1_sha256 == ha1("SHA-256", "bob.desk", DOMAIN, password)
    shown = await owner.get("/users/bob/sip")
    assert shown.status == 200 and "password" not in shown.body
    assert password not in msgspec.json.encode(shown.body).decode()
    assert password not in msgspec.json.encode((await owner.get("/users/bob")).body).decode()


async def test_a_chosen_password_is_checked_and_never_shown(world: World) -> None:
    await _with_domain(world)
    owner = world.api("olivia")
    made = await owner.put("/users/bob/sip", {"username": "bob", "password": CHOSEN})
    assert made.status == 200 and made.body["password"] is None
    for reply in (made, await owner.get("/users/bob"), await owner.get("/users"),
                  await owner.get("/audit")):
        _no_secrets(reply.body)


async def test_a_weak_password_is_refused_and_nothing_changes(world: World) -> None:
    await _with_domain(world)
    _, version = await world.config()
    for weak in ("short1A!", "bob-bob-bob-bob-1", "aaaaaaaaaaaaaaaaaaaaaaaa", "lowercaseonly"):
        reply = await world.api("olivia").put("/users/bob/sip",
                                              {"username": "bob", "password": weak})
        assert reply.status == 422 and reply.body["field"] == "password", (weak, reply.body)
        assert "weak" in reply.body["detail"] or "characters" in reply.body["detail"]
    assert (await world.config())[1] == version


async def test_credentials_need_the_account_sip_domain(world: World) -> None:
    reply = await world.api("olivia").put("/users/bob/sip", {"username": "bob"})
    assert reply.status == 409 and reply.body["field"] == "sip_domain"


async def test_sip_usernames_are_unique_ignoring_case(world: World) -> None:
    await _with_domain(world)
    owner = world.api("olivia")
    assert (await owner.put("/users/bob/sip", {"username": "Desk"})).status == 200
    reply = await owner.put("/users/ann/sip", {"username": "desk"})
    assert reply.status == 409 and "more than once" in reply.body["detail"]


async def test_rotating_changes_the_digests_and_the_old_password_stops(world: World) -> None:
    await _with_domain(world)
    owner = world.api("olivia")
    first = (await owner.put("/users/bob/sip", {"username": "bob"})).body["password"]
    rotated = await owner.post("/users/bob/sip/rotate", {})
    assert rotated.status == 200 and rotated.body["password"] not in (None, first)
    config, _ = await world.config()
    stored = next(u for u in config.users if u.id == "bob").sip
    assert stored is not None and stored.ha1_md5 != ha1("MD5", "bob", DOMAIN, first)
    assert stored.ha1_md5 == ha1("MD5", "bob", DOMAIN, rotated.body["password"])


async def test_a_user_may_rotate_their_own_password_but_not_another(world: World) -> None:
    await _with_domain(world)
    owner = world.api("olivia")
    assert (await owner.put("/users/bob/sip", {"username": "bob"})).status == 200
    assert (await owner.put("/users/ann/sip", {"username": "ann"})).status == 200
    own = await world.api("bob").post("/users/bob/sip/rotate", {"password": CHOSEN})
    assert own.status == 200, own.body
    other = await world.api("bob").post("/users/ann/sip/rotate", {})
    assert other.status == 403
    assert (await world.api("bob").put("/users/bob/sip", {"username": "x"})).status == 403


async def test_voip_switched_off_keeps_the_credentials(world: World) -> None:
    await _with_domain(world)
    owner = world.api("olivia")
    made = await owner.put("/users/bob/sip", {"username": "bob"})
    off = await owner.patch("/users/bob/sip", {"enabled": False},
                            headers={"If-Match": made.headers["ETag"]})
    assert off.status == 200 and off.body["enabled"] is False
    stale = await owner.patch("/users/bob/sip", {"enabled": True},
                              headers={"If-Match": made.headers["ETag"]})
    assert stale.status == 412
    snapshot = world.engine.account("acme")
    assert snapshot is not None and snapshot.users["bob"].sip is not None
    assert snapshot.users["bob"].sip.enabled is False  # the next SIP request is refused


async def test_removing_credentials_and_the_audit_trail(world: World) -> None:
    await _with_domain(world)
    owner = world.api("olivia")
    await owner.put("/users/bob/sip", {"username": "bob", "password": CHOSEN})
    await owner.post("/users/bob/sip/rotate", {})
    await owner.patch("/users/bob/sip", {"enabled": False})
    assert (await owner.delete("/users/bob/sip")).status == 204
    assert (await owner.get("/users/bob/sip")).status == 404
    log = (await owner.get("/audit", params={"target": "user:bob"})).body["items"]
    assert [e["action"] for e in log] == ["user.sip.delete", "user.sip.update",
                                          "user.sip.rotate", "user.sip.create"]
    assert log[-1]["before"] is None and log[-1]["after"]["username"] == "bob"
    assert log[0]["after"] is None
    _no_secrets(log)


async def test_an_admin_cannot_touch_the_sip_login_of_a_user_above_them(world: World) -> None:
    await _with_domain(world)
    assert (await world.api("olivia").put("/users/alice/sip", {"username": "alice"})).status == 200
    _, version = await world.config()
    mark = world.api("mark")  # a manager: alice (an admin) is above him
    for method, path, body in [("PUT", "/users/alice/sip", {"username": "x"}),
                               ("POST", "/users/alice/sip/rotate", {}),
                               ("PATCH", "/users/alice/sip", {"enabled": False}),
                               ("DELETE", "/users/alice/sip", None),
                               ("PUT", "/users/olivia/sip", {"username": "boss"})]:
        reply = await mark.call(method, path, body)
        assert reply.status == 403, (method, path, reply.body)
    assert (await world.config())[1] == version


async def test_the_sip_domain_cannot_change_under_existing_credentials(world: World) -> None:
    await _with_domain(world)
    owner = world.api("olivia")
    assert (await owner.put("/users/bob/sip", {"username": "bob"})).status == 200
    refused = await owner.patch("/account", {"sip_domain": "other.sip.example"})
    assert refused.status == 409 and refused.body["field"] == "sip_domain"
    bad = await owner.patch("/account", {"sip_domain": "Not A Domain!"})
    assert bad.status == 422 and bad.body["field"] == "sip_domain"


async def test_a_sip_domain_belongs_to_one_account(world: World) -> None:
    await _with_domain(world)
    zed = world.api("zed")
    refused = await zed.patch("/account", {"sip_domain": DOMAIN})
    assert refused.status == 409 and refused.body["field"] == "sip_domain"


async def test_nobody_but_the_owner_administers_their_own_sip_login(world: World) -> None:
    """alice holds ``users.settings``: an admin who switches her VoIP off must not see her
    switch it back on. She may read her login and rotate its password."""
    await _with_domain(world)
    owner = world.api("olivia")
    made = await owner.put("/users/alice/sip", {"username": "alice"})
    assert made.status == 200
    off = await owner.patch("/users/alice/sip", {"enabled": False},
                            headers={"If-Match": made.headers["ETag"]})
    assert off.status == 200
    version = await world.version()
    alice = world.api("alice")
    for method, path, body in [("PATCH", "/users/alice/sip", {"enabled": True}),
                               ("PUT", "/users/alice/sip", {"username": "alice2"}),
                               ("DELETE", "/users/alice/sip", None)]:
        await refused(world, await alice.call(method, path, body), 403, "user_id", version)
    assert (await alice.get("/users/alice/sip")).body["enabled"] is False
    assert (await alice.post("/users/alice/sip/rotate", {"password": CHOSEN})).status == 200
    assert (await owner.put("/users/olivia/sip", {"username": "olivia"})).status == 200


async def test_if_match_on_credentials_that_do_not_exist_fails(world: World) -> None:
    await _with_domain(world)
    version = await world.version()
    for tag in ('"0123456789abcdef"', "*"):
        reply = await world.api("olivia").put("/users/bob/sip", {"username": "bob"},
                                              headers={"If-Match": tag})
        await refused(world, reply, 412, "If-Match", version)
    assert (await world.api("olivia").get("/users/bob/sip")).status == 404


async def test_a_refused_writer_is_not_shown_the_current_tag(world: World) -> None:
    """mark may not touch alice's login: a stale If-Match gets him 403, not a 412 that would
    show him the login's current ETag."""
    await _with_domain(world)
    assert (await world.api("olivia").put("/users/alice/sip", {"username": "alice"})).status == 200
    reply = await world.api("mark").patch("/users/alice/sip", {"enabled": False},
                                          headers={"If-Match": '"stale"'})
    assert reply.status == 403 and "ETag" not in reply.headers, reply.body
    assert '"' not in reply.body["detail"].replace("'", ""), reply.body
