"""Automatic rest through the admin API: the account's ``auto_rest`` is shown, set, replaced
and removed on ``/account`` (a bad value is a 422 naming it and changes nothing), and a
number whose real calls (through the decision API) stop connecting is rested, which
``GET /numbers`` and the audit log (actor ``system``) show."""

from __future__ import annotations

import json
from typing import Any

import pytest

from admin_api import openapi_document
from callerid import Reputation

from .support import World, refused

MAIN = "+12125550100"
"""acme's default caller ID: ann (no default of her own, nor has her department) dials from it."""
CALLEE = "+12125550187"
RULE = {"min_answer_rate": 0.5, "over_calls": 5, "rest_hours": 2}


def _path(number: str) -> str:
    return "/numbers/" + number.replace("+", "%2B")


async def calls(world: World, outcomes: list[str], user: str = "ann") -> list[str]:
    """One call per outcome through the decision API, as acme's dialer, each ended at once;
    the caller IDs."""
    dialer = world.api("service")
    used = []
    for outcome in outcomes:
        decision = (await dialer.call("POST", "/v1/dial", {"user": user, "to": CALLEE},
                                      prefix="")).body
        assert decision["allowed"], decision
        used.append(decision["caller_id"])
        ended = await dialer.call("POST", f"/v1/calls/{decision['call_id']}/end",
                                  {"outcome": outcome}, prefix="")
        assert ended.status == 200, ended.body
        assert ended.body == {"call_id": decision["call_id"], "outcome": outcome,
                              "sticky_recorded": outcome in ("answered", "voicemail")}
    return used


async def test_the_account_shows_sets_and_removes_auto_rest(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.get("/account")).body["auto_rest"] is None

    reply = await owner.patch("/account", {"auto_rest": RULE})

    assert reply.status == 200 and reply.body["auto_rest"] == RULE, reply.body
    assert (await owner.get("/account")).body["auto_rest"] == RULE
    entry = (await world.audit(target="account:acme"))[0]
    assert (entry.actor, entry.action, entry.after["auto_rest"]) == (
        "user:olivia", "account.update", RULE)
    assert "auto_rest" not in entry.before

    # replaced whole: what is left out takes its default
    reply = await owner.patch("/account", {"auto_rest": {"min_answer_rate": 0.1}})
    assert reply.body["auto_rest"] == {"min_answer_rate": 0.1, "over_calls": 50,
                                       "rest_hours": 24}, reply.body

    removed = await owner.patch("/account", {"auto_rest": None})
    assert removed.status == 200 and removed.body["auto_rest"] is None, removed.body
    assert (await world.config())[0].auto_rest is None


@pytest.mark.parametrize(("rule", "field"), [
    ({"min_answer_rate": 1.5}, "auto_rest.min_answer_rate"),
    ({"min_answer_rate": -0.5}, "auto_rest.min_answer_rate"),
    ({"min_answer_rate": "half"}, "auto_rest.min_answer_rate"),
    ({"min_answer_rate": 0.2, "over_calls": 4}, "auto_rest.over_calls"),
    ({"min_answer_rate": 0.2, "over_calls": 10.5}, "auto_rest.over_calls"),
    ({"min_answer_rate": 0.2, "rest_hours": 0}, "auto_rest.rest_hours"),
    ({"min_answer_rate": 0.2, "rest_hours": 721}, "auto_rest.rest_hours"),
    ({"over_calls": 50}, "min_answer_rate"),
    ({"min_answer_rate": 0.2, "rest_days": 1}, "rest_days"),
], ids=["rate-over-1", "rate-below-0", "rate-text", "too-few-calls", "fraction-of-calls",
        "no-rest", "rest-over-30-days", "no-rate", "unknown-field"])
async def test_a_bad_auto_rest_is_refused_naming_it(
    world: World, rule: dict[str, Any], field: str,
) -> None:
    """A value out of range names its path; a field missing or unknown, the field (as every
    body's problems do)."""
    version = await world.version()

    reply = await world.api("olivia").patch("/account", {"auto_rest": rule})

    await refused(world, reply, 422, field, version)
    assert "auto_rest" in reply.body["detail"], reply.body


async def test_only_account_settings_may_change_auto_rest(world: World) -> None:
    version = await world.version()

    reply = await world.api("mark").patch("/account", {"auto_rest": RULE})

    assert reply.status == 403, reply.body
    assert await world.version() == version


async def test_a_number_whose_calls_stop_connecting_is_rested_by_system(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.patch("/account", {"auto_rest": RULE})).status == 200

    assert await calls(world, ["answered", "answered", "no_answer", "busy", "no_answer"]) == (
        [MAIN] * 5)  # 2 of 5: a rate of 0.4, below 0.5
    await world.engine.settle()

    number = (await owner.get(_path(MAIN))).body
    assert number["reputation"] == Reputation.RESTING.value, number
    entries = (await owner.get("/audit", params={"actor": "system"})).body["items"]
    assert [(e["action"], e["target"], e["after"]["reputation"]) for e in entries] == [
        ("number.update", f"number:{MAIN}", "resting")]
    assert entries[0]["after"]["resting_until"] == number["resting_until"]
    # ann's next call goes out from no rule at all: MAIN was her only one
    reply = await world.api("service").call("POST", "/v1/dial", {"user": "ann", "to": CALLEE},
                                            prefix="")
    assert (reply.body["allowed"], reply.body.get("reason")) == (False, "no_caller_id")

    # an administrator puts it back: its window starts afresh
    assert (await owner.patch(_path(MAIN), {"reputation": "active"})).status == 200
    await calls(world, ["no_answer"] * 4)
    await world.engine.settle()
    assert (await owner.get(_path(MAIN))).body.get("reputation", "active") == "active"


async def test_the_openapi_document_declares_auto_rest() -> None:
    document = json.loads(openapi_document())
    schemas = document["components"]["schemas"]
    for name in ("AccountOut", "AccountPatch"):
        assert "auto_rest" in schemas[name]["properties"], name
    rule = schemas["AutoRest"]
    assert rule["required"] == ["min_answer_rate"]
    assert (rule["properties"]["min_answer_rate"]["minimum"],
            rule["properties"]["min_answer_rate"]["maximum"]) == (0, 1)
    assert rule["properties"]["over_calls"]["minimum"] == 5
    assert (rule["properties"]["rest_hours"]["minimum"],
            rule["properties"]["rest_hours"]["maximum"]) == (1, 720)
