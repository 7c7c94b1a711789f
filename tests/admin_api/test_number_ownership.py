"""A tenant cannot take another tenant's phone number (and so cannot present it as its caller
ID): the admin API refuses it without naming the other account, and changes nothing; once
the other tenant releases it, it can be taken."""

from __future__ import annotations

from .support import World, refused

THEIRS = "+14155550133"
"""The ``other`` account's number."""


async def test_a_number_of_another_account_cannot_be_added(world: World) -> None:
    owner = world.api("olivia")
    version = await world.version()
    reply = await owner.post("/numbers", {"number": THEIRS, "name": "Not ours"})
    await refused(world, reply, 409, "numbers", version)
    assert THEIRS in reply.body["detail"] and "other" not in reply.body["detail"].replace(
        "another", "")
    assert all(n.number != THEIRS for n in (await world.config())[0].numbers)
    dial = await owner.call("POST", "/v1/dial", {"user": "olivia", "to": "+12125550187",
                                                 "caller_id": THEIRS}, prefix="")
    assert dial.status == 200 and dial.body["allowed"] is False, dial.body
    assert dial.body.get("caller_id") != THEIRS


async def test_a_released_number_can_be_taken_by_another_account(world: World) -> None:
    released = await world.api("zed").post(f"/numbers/{THEIRS}/release")
    assert released.status == 200, released.body
    taken = await world.api("olivia").post("/numbers", {"number": THEIRS, "name": "Ours now"})
    assert taken.status == 201, taken.body
