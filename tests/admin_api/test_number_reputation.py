"""A number's reputation through the admin API: put to rest until a time, retired, back in
use; the next decision follows at once, and a rest without an end changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.wire import DialRequest

from .support import World, refused

MAIN = "/numbers/%2B12125550100"
"""+12125550100, acme's default caller ID: ann (no default of her own) dials from it."""
CALLEE = "+12125550187"


async def dial(world: World, user: str, caller_id: str | None = None) -> tuple[bool, str | None]:
    decision = await world.engine.explain("acme", DialRequest(user=user, to=CALLEE,
                                                              caller_id=caller_id))
    return decision.allowed, decision.caller_id if decision.allowed else decision.reason


async def test_a_resting_number_is_passed_over_until_it_is_back(world: World) -> None:
    owner = world.api("olivia")
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    rested = await owner.patch(MAIN, {"reputation": "resting", "resting_until": until})
    assert rested.status == 200, rested.body
    assert (rested.body["reputation"], rested.body["resting_until"][:16]) == (
        "resting", until[:16])
    assert await dial(world, "ann") == (False, "no_caller_id")
    explained = await world.engine.explain("acme", DialRequest(user="ann", to=CALLEE))
    assert any("+12125550100 is resting" in (t.detail or "") for t in explained.trace or ())
    # alice may choose the caller ID: she can still ask for it.
    assert await dial(world, "alice", "+12125550100") == (True, "+12125550100")

    back = await owner.patch(MAIN, {"reputation": "active"})
    assert back.status == 200 and "resting_until" not in back.body, back.body
    assert await dial(world, "ann") == (True, "+12125550100")


async def test_a_rest_that_has_ended_is_no_rest(world: World) -> None:
    ended = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    reply = await world.api("olivia").patch(MAIN, {"reputation": "resting",
                                                   "resting_until": ended})
    assert reply.status == 200, reply.body
    assert await dial(world, "ann") == (True, "+12125550100")


async def test_a_retired_number_is_never_presented(world: World) -> None:
    assert (await world.api("olivia").patch(MAIN, {"reputation": "retired"})).status == 200
    assert await dial(world, "ann") == (False, "no_caller_id")
    assert await dial(world, "alice", "+12125550100") == (False, "caller_id_not_allowed")


async def test_a_rest_without_an_end_changes_nothing(world: World) -> None:
    version = await world.version()
    reply = await world.api("olivia").patch(MAIN, {"reputation": "resting"})
    await refused(world, reply, 422, "resting_until", version)
    assert "resting number has a `resting_until`" in reply.body["detail"]
