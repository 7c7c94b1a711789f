"""Texts through the admin API: a number made SMS-capable is one a text may go out from at
once, and the account's ``sms_sticky_shared`` is read and changed like its other settings."""

from __future__ import annotations

from typing import Any

from .support import World

MAIN = "+12125550100"
"""acme's default caller ID: ann (no default of her own, nor has her department) uses it."""


async def text(world: World, user: str) -> dict[str, Any]:
    reply = await world.api("service").call(
        "POST", "/v1/sms/sender", {"user": user, "to": "+12125550187"}, prefix="")
    assert reply.status == 200, reply.body
    answer: dict[str, Any] = reply.body
    return answer


async def test_a_number_made_sms_capable_sends_the_next_text(world: World) -> None:
    owner = world.api("olivia")
    await owner.patch("/numbers/" + MAIN.replace("+", "%2B"), {"sms": False})
    assert (await text(world, "ann"))["reason"] == "no_caller_id"
    reply = await owner.patch("/numbers/" + MAIN.replace("+", "%2B"), {"sms": True})
    assert reply.status == 200 and reply.body["sms"] is True, reply.body
    answer = await text(world, "ann")
    assert (answer["allowed"], answer["sender"], answer["rule"]) == (
        True, MAIN, "account_default")
    await owner.patch("/account", {"daily_cap": 1})
    assert (await text(world, "ann"))["reason"] == "caller_id_capped"
    usage = (await owner.get("/number-usage")).body
    main = next(n for n in usage["numbers"] if n["number"] == MAIN)
    assert (main["calls"], main["texts"], main["texts_remaining"], main["remaining"]) == (
        0, 1, 0, 1)


async def test_the_account_shows_and_changes_whether_texts_share_sticky_numbers(
    world: World,
) -> None:
    owner = world.api("olivia")
    assert (await owner.get("/account")).body["sms_sticky_shared"] is False
    reply = await owner.patch("/account", {"sms_sticky_shared": True})
    assert reply.status == 200 and reply.body["sms_sticky_shared"] is True, reply.body
    assert (await world.config())[0].sms_sticky_shared is True
    entry = (await world.audit(target="account:acme"))[0]
    assert entry.after["sms_sticky_shared"] is True
    refused = await owner.patch("/account", {"sms_sticky_shared": "yes"})
    assert (refused.status, refused.body["field"]) == (422, "sms_sticky_shared")
    assert (await world.config())[0].sms_sticky_shared is True
