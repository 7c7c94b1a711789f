"""The do-not-call list through the admin API: numbers added one by one or many at once,
read as dialled in the account's default region, audited; a listed number is denied
``do_not_call`` on a dial, an explain and a text; a bad number refuses a whole import; one
account's list is its own."""

from __future__ import annotations

from .support import World

DIAL = {"user": "ann", "to": "(212) 555-0187"}


async def dial(world: World, body: dict[str, str], path: str = "/v1/dial") -> dict[str, object]:
    reply = await world.api("service").call("POST", path, body, prefix="")
    assert reply.status == 200, reply.body
    return reply.body  # type: ignore[no-any-return]


async def test_a_listed_number_is_denied_and_unlisting_it_allows_it(world: World) -> None:
    owner = world.api("olivia")
    assert (await dial(world, DIAL))["allowed"]
    added = await owner.put("/dnc/2125550187", None)
    assert added.status == 200, added.body
    assert added.body == {"number": "+12125550187", "listed": True, "changed": True}
    denied = await dial(world, DIAL)
    assert (denied["allowed"], denied["reason"], denied["to"]) == (
        False, "do_not_call", "+12125550187")
    removed = await owner.delete("/dnc/%2B12125550187")
    assert removed.body == {"number": "+12125550187", "listed": False, "changed": True}
    assert (await dial(world, DIAL))["allowed"]


async def test_explain_names_the_do_not_call_step(world: World) -> None:
    await world.api("olivia").put("/dnc/%2B12125550187", None)
    answer = await dial(world, DIAL, "/v1/explain")
    assert answer["reason"] == "do_not_call"
    steps = [(s["step"], s["result"]) for s in answer["trace"]]  # type: ignore[attr-defined]
    assert steps[-1] == ("do_not_call", "denied") and steps[0][0] == "normalise"


async def test_a_listed_contact_gets_no_text_sender(world: World) -> None:
    await world.api("olivia").put("/dnc/%2B12125550187", None)
    answer = await dial(world, {"user": "ann", "to": "+12125550187"}, "/v1/sms/sender")
    assert (answer["allowed"], answer["reason"]) == (False, "do_not_call")


async def test_emergency_numbers_are_never_blocked(world: World) -> None:
    owner = world.api("olivia")
    refused = await owner.put("/dnc/911", None)
    assert refused.status == 422 and "emergency" in refused.body["detail"]
    assert (await dial(world, {"user": "ann", "to": "911"}))["allowed"]


async def test_an_import_adds_many_and_a_bad_number_refuses_it_all(world: World) -> None:
    owner = world.api("olivia")
    bad = await owner.post("/dnc", {"numbers": ["+12125550187", "212 555 0188", "12"]})
    assert bad.status == 422, bad.body
    assert "numbers[2]" in bad.body["detail"] and "'12'" in bad.body["detail"]
    assert (await owner.get("/dnc")).body == {"count": 0}
    good = await owner.post("/dnc", {"numbers": ["+12125550187", "212 555 0188",
                                                 "+12125550187"]})
    assert good.status == 200, good.body
    assert good.body == {"numbers": 3, "added": 2, "count": 2}
    looked = await owner.get("/dnc/(212)%20555-0188")
    assert looked.body == {"number": "+12125550188", "listed": True, "changed": False}
    entries = await world.audit(target="dnc")
    assert [(e.action, e.actor, e.after) for e in entries] == [
        ("dnc.import", "user:olivia", {"numbers": 3})]


async def test_each_write_is_audited_and_a_repeat_logs_nothing(world: World) -> None:
    owner = world.api("olivia")
    for _ in range(2):
        await owner.put("/dnc/%2B12125550187", None)
        await owner.delete("/dnc/%2B12125550187")
    entries = await world.audit(target="dnc:+12125550187")
    assert [e.action for e in entries] == ["dnc.remove", "dnc.add", "dnc.remove", "dnc.add"]
    again = await owner.delete("/dnc/%2B12125550187")
    assert again.body["changed"] is False
    assert len(await world.audit(target="dnc:+12125550187")) == 4


async def test_the_list_needs_contacts_manage(world: World) -> None:
    for call in (world.api("ann").get("/dnc"), world.api("ann").put("/dnc/%2B12125550187", None)):
        assert (await call).status == 403
    assert (await world.api("alice").put("/dnc/%2B12125550187", None)).status == 200


async def test_one_accounts_list_never_blocks_another(world: World) -> None:
    await world.api("zed").put("/dnc/%2B12125550187", None)
    assert (await world.api("olivia").get("/dnc")).body == {"count": 0}
    assert (await dial(world, DIAL))["allowed"]
