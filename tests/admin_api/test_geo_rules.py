"""Geo rules through the admin API: an area code no number of its country starts with is a
422 naming the field and showing what to write, and nothing changes; what the numbering plan
allows is stored."""

from __future__ import annotations

from typing import Any

from .support import World, refused

WEST = "+13105550122"


def _rule(*codes: str, country_code: int = 1) -> dict[str, Any]:
    return {"number": WEST, "area_codes": list(codes), "country_code": country_code}


async def test_an_area_code_written_with_its_calling_code_is_refused_with_the_fix(
    world: World,
) -> None:
    version = await world.version()
    reply = await world.api("olivia").put("/users/ann/geo", {"area_codes": [_rule("1212")]})
    await refused(world, reply, 422, "area_codes[0].area_codes[0]", version)
    assert "no number of +1 starts with '1212'" in reply.body["detail"]
    assert "write '212'" in reply.body["detail"]


async def test_an_area_code_written_with_the_trunk_prefix_is_refused_with_the_fix(
    world: World,
) -> None:
    version = await world.version()
    reply = await world.api("olivia").put(
        "/users/ann/geo", {"area_codes": [_rule("212"), _rule("20", "020", country_code=44)]})
    await refused(world, reply, 422, "area_codes[1].area_codes[1]", version)
    assert "leaves out the trunk prefix 0; write '20'" in reply.body["detail"]


async def test_a_new_user_with_an_unmatchable_area_code_is_not_created(world: World) -> None:
    version = await world.version()
    reply = await world.api("olivia").post("/users", {
        "id": "nia", "email": "nia@acme.example", "geo": {"area_codes": [_rule("1")]}})
    await refused(world, reply, 422, "geo.area_codes[0].area_codes[0]", version)
    assert (await world.api("olivia").get("/users/nia")).status == 404


async def test_an_unknown_calling_code_in_a_country_rule_is_refused(world: World) -> None:
    version = await world.version()
    reply = await world.api("olivia").put(
        "/users/ann/geo", {"countries": [{"number": WEST, "calling_code": 999}]})
    await refused(world, reply, 422, "countries[0].calling_code", version)
    assert "+999 is not a country calling code" in reply.body["detail"]


async def test_area_codes_the_numbering_plan_allows_are_stored(world: World) -> None:
    geo = {"area_codes": [_rule("212", "2", "21"), _rule("20", country_code=44),
                          _rule("30", country_code=49), _rule("1", country_code=33)]}
    reply = await world.api("olivia").put("/users/ann/geo", geo)
    assert reply.status == 200, reply.body
    config, _ = await world.config()
    ann = next(u for u in config.users if u.id == "ann")
    assert [(rule.country_code, rule.area_codes) for rule in ann.geo.area_codes] == [
        (1, ("212", "2", "21")), (44, ("20",)), (49, ("30",)), (33, ("1",))]
