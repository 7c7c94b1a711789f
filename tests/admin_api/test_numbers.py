"""Phone numbers through the admin API: releasing a number takes it out of its department's
pool, and a released number never joins one again (the rule ``callgate import`` applies
too)."""

from __future__ import annotations

from .support import World, refused

STAFF_LINE = "/numbers/%2B12125550111"
"""+12125550111, in the staff department's pool."""


async def test_releasing_a_pooled_number_takes_it_out_of_the_pool(world: World) -> None:
    reply = await world.api("olivia").post(f"{STAFF_LINE}/release")
    assert reply.status == 200, reply.body
    assert (reply.body["status"], reply.body.get("department")) == ("released", None)
    staff = await world.api("olivia").get("/departments/staff")
    assert "+12125550111" not in staff.body["numbers"]


async def test_a_released_number_cannot_join_a_pool(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.post(f"{STAFF_LINE}/release")).status == 200
    version = await world.version()
    reply = await owner.patch(STAFF_LINE, {"department": "staff"})
    await refused(world, reply, 409, "department", version)
    assert "is released, and a released number is in no department's pool" in reply.body["detail"]


async def test_a_released_number_can_still_be_renamed(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.post(f"{STAFF_LINE}/release")).status == 200
    reply = await owner.patch(STAFF_LINE, {"name": "Old staff line"})
    assert reply.status == 200, reply.body
    assert (reply.body["name"], reply.body["status"]) == ("Old staff line", "released")
