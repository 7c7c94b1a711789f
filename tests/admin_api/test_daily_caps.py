"""Daily caps and rotation through the admin API: the account's time zone, cap and
``requested_over_cap``, a number's own cap, and ``GET /number-usage``, which shows what real
dials (through the decision API) counted against each number today. A bad value changes
nothing; one account's token reads its own account's usage only."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from admin_api import openapi_document
from callerid import Permission
from engine.days import local_day

from .support import World, refused

P = Permission
MAIN = "+12125550100"
"""acme's default caller ID: ann (no default of her own, nor has her department) dials from it."""
STAFF = "+12125550111"
WEST = "+13105550122"
CALLEE = "+12125550187"
"""A New York callee: MAIN and STAFF share its area code, WEST is elsewhere in the US."""


def _path(number: str) -> str:
    return "/numbers/" + number.replace("+", "%2B")


async def dial(world: World, user: str, caller_id: str | None = None) -> tuple[Any, ...]:
    """One dial through the decision API, as acme's dialer; an allowed call is ended at once
    (unanswered: it records no sticky caller ID, and its count stays). ``(True, caller ID,
    rule)`` or ``(False, reason)``."""
    dialer = world.api("service")
    body = {"user": user, "to": CALLEE} | ({"caller_id": caller_id} if caller_id else {})
    reply = await dialer.call("POST", "/v1/dial", body, prefix="")
    assert reply.status == 200, reply.body
    decision = reply.body
    if not decision["allowed"]:
        return False, decision["reason"]
    ended = await dialer.call("POST", f"/v1/calls/{decision['call_id']}/end",
                              {"outcome": "no_answer"}, prefix="")
    assert ended.status == 200, ended.body
    return True, decision["caller_id"], decision["rule"]


async def usage(world: World, who: str = "olivia", **params: str) -> dict[str, Any]:
    reply = await world.api(who).get("/number-usage", params=params)
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def counts(answer: dict[str, Any]) -> dict[str, tuple[int, int | None, int | None]]:
    """Each number's ``(calls, daily_cap, remaining)``."""
    return {n["number"]: (n["calls"], n["daily_cap"], n["remaining"]) for n in answer["numbers"]}


def _today(time_zone: str) -> set[str]:
    """Today in ``time_zone``, as read just now (two days when midnight was just passed)."""
    now_ms = time.time_ns() // 1_000_000
    return {local_day(time_zone, now_ms - 5_000), local_day(time_zone, now_ms)}


# -- the account's settings ------------------------------------------------------------------


async def test_the_account_shows_and_changes_its_time_zone_cap_and_requested_over_cap(
    world: World,
) -> None:
    owner = world.api("olivia")
    before = (await owner.get("/account")).body
    assert (before["time_zone"], before["daily_cap"], before["requested_over_cap"]) == (
        "UTC", None, False)

    reply = await owner.patch("/account", {"time_zone": "America/New_York", "daily_cap": 100,
                                           "requested_over_cap": True})

    assert reply.status == 200, reply.body
    assert (reply.body["time_zone"], reply.body["daily_cap"],
            reply.body["requested_over_cap"]) == ("America/New_York", 100, True)
    assert reply.etag.strip('"') != before["etag"]
    config, _ = await world.config()
    assert (config.time_zone, config.daily_cap, config.requested_over_cap) == (
        "America/New_York", 100, True)
    entry = (await world.audit(target="account:acme"))[0]
    assert entry.action == "account.update" and entry.after["daily_cap"] == 100

    uncapped = await owner.patch("/account", {"daily_cap": None})
    assert uncapped.status == 200 and uncapped.body["daily_cap"] is None, uncapped.body
    assert (await world.config())[0].daily_cap is None


@pytest.mark.parametrize(("zone", "status"), [
    ("Mars/Olympus_Mons", 409),
    ("America/Gotham", 409),
    ("not a zone", 422),
    ("", 422),
], ids=["unknown", "unknown-city", "malformed", "empty"])
async def test_an_unknown_time_zone_is_refused_naming_it(
    world: World, zone: str, status: int,
) -> None:
    version = await world.version()

    reply = await world.api("olivia").patch("/account", {"time_zone": zone, "daily_cap": 5})

    await refused(world, reply, status, "time_zone", version)
    if status == 409:
        assert f"{zone!r} is not a known time zone" in reply.body["detail"], reply.body


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PATCH", "/account", {"daily_cap": -1}),
    ("PATCH", "/account", {"daily_cap": 2.5}),
    ("PATCH", _path(WEST), {"daily_cap": -1}),
    ("PATCH", _path(WEST), {"daily_cap": "ten"}),
    ("POST", "/numbers", {"number": "+12125550177", "daily_cap": -5}),
], ids=["account-negative", "account-fraction", "number-negative", "number-text",
        "new-number-negative"])
async def test_a_cap_that_is_no_whole_number_of_calls_is_refused(
    world: World, method: str, path: str, body: dict[str, Any],
) -> None:
    version = await world.version()

    reply = await world.api("olivia").call(method, path, body)

    await refused(world, reply, 422, "daily_cap", version)


# -- a number's own cap ----------------------------------------------------------------------


async def test_a_numbers_own_cap_is_set_shown_and_removed(world: World) -> None:
    owner = world.api("olivia")

    capped = await owner.patch(_path(WEST), {"daily_cap": 0})

    assert capped.status == 200 and capped.body["daily_cap"] == 0, capped.body
    assert (await owner.get(_path(WEST))).body["daily_cap"] == 0
    listed = (await owner.get("/numbers")).body["items"]
    assert {n["number"]: n.get("daily_cap") for n in listed}[WEST] == 0
    entry = (await world.audit(target=f"number:{WEST}"))[0]
    assert (entry.action, entry.before.get("daily_cap"), entry.after["daily_cap"]) == (
        "number.update", None, 0)

    removed = await owner.patch(_path(WEST), {"daily_cap": None})

    assert removed.status == 200 and "daily_cap" not in removed.body, removed.body
    config, _ = await world.config()
    assert next(n for n in config.numbers if n.number == WEST).daily_cap is None


async def test_a_new_number_may_come_with_its_cap(world: World) -> None:
    reply = await world.api("olivia").post("/numbers", {"number": "+12125550177",
                                                        "daily_cap": 50})

    assert reply.status == 201 and reply.body["daily_cap"] == 50, reply.body
    assert counts(await usage(world))["+12125550177"] == (0, 50, 50)


# -- what dials count, and what a cap does to them -------------------------------------------


async def test_a_capped_number_is_passed_over_and_usage_shows_why(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.patch("/users/ann", {"default_caller_id": WEST})).status == 200
    assert (await owner.patch(_path(WEST), {"daily_cap": 1})).status == 200

    assert await dial(world, "ann") == (True, WEST, "user_default")
    # WEST has placed its one call today: the next rule answers.
    assert await dial(world, "ann") == (True, MAIN, "account_default")

    assert counts(await usage(world)) == {MAIN: (1, None, None), STAFF: (0, None, None),
                                          WEST: (1, 1, 0)}
    explained = await world.api("service").call("POST", "/v1/explain",
                                                {"user": "ann", "to": CALLEE}, prefix="")
    assert explained.body["caller_id"] == MAIN
    assert any(f"{WEST} has placed all 1" in (step.get("detail") or "")
               for step in explained.body["trace"]), explained.body["trace"]
    # The account's cap is every number's but WEST's, which has its own.
    assert (await owner.patch("/account", {"daily_cap": 3})).status == 200
    assert counts(await usage(world)) == {MAIN: (1, 3, 2), STAFF: (0, 3, 3), WEST: (1, 1, 0)}


async def test_a_dial_whose_every_candidate_is_capped_is_denied_caller_id_capped(
    world: World,
) -> None:
    assert (await world.api("olivia").patch("/account", {"daily_cap": 1})).status == 200

    assert await dial(world, "ann") == (True, MAIN, "account_default")
    assert await dial(world, "ann") == (False, "caller_id_capped")

    assert counts(await usage(world))[MAIN] == (1, 1, 0)


async def test_local_presence_takes_turns_among_the_least_used_until_all_are_capped(
    world: World,
) -> None:
    await world.add_user("lp", "callers", P.CALLERID_LOCAL_PRESENCE)
    owner = world.api("olivia")
    on = await owner.patch("/users/lp", {"call_settings": {"local_presence": True}})
    assert on.status == 200, on.body
    assert (await owner.patch("/account", {"daily_cap": 2})).status == 200

    chosen = [await dial(world, "lp") for _ in range(7)]

    # The callee's area code has two numbers: they take turns, the least used first (the
    # lowest on a tie); once both are capped, the country's third number has its turns.
    assert chosen == [(True, MAIN, "local_presence"), (True, STAFF, "local_presence"),
                      (True, MAIN, "local_presence"), (True, STAFF, "local_presence"),
                      (True, WEST, "local_presence"), (True, WEST, "local_presence"),
                      (False, "caller_id_capped")]
    assert counts(await usage(world)) == {MAIN: (2, 2, 0), STAFF: (2, 2, 0), WEST: (2, 2, 0)}


async def test_a_requested_number_over_its_cap_is_denied_unless_the_account_allows_it(
    world: World,
) -> None:
    owner = world.api("olivia")
    assert (await owner.patch(_path(WEST), {"daily_cap": 0})).status == 200

    # alice may choose the caller ID; a cap of 0 keeps WEST out of every automatic rule.
    assert await dial(world, "alice", WEST) == (False, "caller_id_capped")
    assert (await owner.patch("/account", {"requested_over_cap": True})).status == 200
    assert await dial(world, "alice", WEST) == (True, WEST, "requested")

    assert counts(await usage(world))[WEST] == (1, 0, 0)


# -- the usage endpoint ----------------------------------------------------------------------


async def test_usage_is_of_today_in_the_accounts_time_zone_unless_a_day_is_given(
    world: World,
) -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: its day is rarely UTC's
    assert (await world.api("olivia").patch("/account", {"time_zone": zone})).status == 200
    assert await dial(world, "ann") == (True, MAIN, "account_default")

    today = await usage(world)

    assert today["day"] in _today(zone) and today["time_zone"] == zone
    assert [n["number"] for n in today["numbers"]] == [MAIN, STAFF, WEST]
    assert counts(today)[MAIN] == (1, None, None)
    assert await usage(world, day=today["day"]) == today
    long_ago = await usage(world, day="2000-01-01")
    assert long_ago["day"] == "2000-01-01"
    assert {c for c, _, _ in counts(long_ago).values()} == {0}


async def test_a_released_number_is_not_listed(world: World) -> None:
    assert (await world.api("olivia").post(_path(WEST) + "/release")).status == 200

    assert [n["number"] for n in (await usage(world))["numbers"]] == [MAIN, STAFF]


@pytest.mark.parametrize("day", ["2026-02-30", "yesterday", "2026-1-4", "20261204", ""],
                         ids=["no-such-date", "word", "short", "basic", "empty"])
async def test_a_day_that_is_no_date_is_refused_naming_it(world: World, day: str) -> None:
    version = await world.version()

    reply = await world.api("olivia").get("/number-usage", params={"day": day})

    await refused(world, reply, 422, "day", version)
    assert "YYYY-MM-DD" in reply.body["detail"], reply.body


async def test_an_unknown_usage_parameter_is_refused_naming_it(world: World) -> None:
    reply = await world.api("olivia").get("/number-usage", params={"date": "2026-12-04"})

    assert (reply.status, reply.body["field"]) == (422, "date"), reply.body


async def test_usage_needs_numbers_manage_or_usage_view(world: World) -> None:
    await world.add_user("sue", "supervisors", P.USAGE_VIEW)

    assert (await world.api("ann").get("/number-usage")).status == 403
    assert (await world.api("mark").get("/number-usage")).status == 200  # numbers.manage
    assert (await world.api("sue").get("/number-usage")).status == 200
    service = await world.api("service").get("/number-usage")
    assert service.status == 403, service.body


async def test_an_account_reads_its_own_numbers_usage_only(world: World) -> None:
    assert await dial(world, "ann") == (True, MAIN, "account_default")

    theirs = await usage(world, "zed")
    ours = await usage(world)

    assert counts(theirs) == {"+14155550133": (0, None, None)}
    assert "+14155550133" not in counts(ours) and counts(ours)[MAIN][0] == 1
    assert await world.store.usage("other", ours["day"]) == {}


# -- the OpenAPI document --------------------------------------------------------------------


def test_the_document_has_the_usage_endpoint_and_the_cap_fields() -> None:
    document = json.loads(openapi_document())
    schemas = document["components"]["schemas"]

    operation = document["paths"]["/admin/v1/number-usage"]["get"]

    (day,) = operation["parameters"]
    assert (day["name"], day["in"], day["required"]) == ("day", "query", False)
    assert "YYYY-MM-DD" in day["description"]
    assert {"type": "string", "format": "date"} in day["schema"]["anyOf"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UsageOfDay"}
    assert set(schemas["NumberUsage"]["required"]) == {
        "number", "name", "calls", "daily_cap", "remaining", "texts", "texts_remaining"}
    for name in ("NumberCreate", "NumberPatch", "NumberOut", "AccountPatch", "AccountOut"):
        cap = json.dumps(schemas[name]["properties"]["daily_cap"])
        assert '"minimum": 0' in cap, (name, cap)
    for name in ("AccountPatch", "AccountOut"):
        assert {"time_zone", "requested_over_cap"} <= set(schemas[name]["properties"])
