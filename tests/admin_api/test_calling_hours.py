"""Calling hours through the admin API: the account's and a department's are read and changed
like their other settings, a bad window is a 422 naming it and changes nothing, and the next
dial keeps them."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .support import World

CALLEE = "+12125550187"  # New York


def closed_now() -> str:
    """Windows whose only hour is twelve hours from now in New York: a dial now is out."""
    hour = (datetime.now(ZoneInfo("America/New_York")) + timedelta(hours=12)).hour
    return f"mon-sun {hour:02d}:00-{hour:02d}:59"


async def test_the_account_shows_and_changes_its_calling_hours(world: World) -> None:
    owner = world.api("olivia")
    assert (await owner.get("/account")).body["calling_hours"] is None
    hours = {"windows": "mon-fri 09:00-20:00, sat 10:00-17:00",
             "regions": {"US-FL": "mon-fri 09:00-19:00"}, "holidays": ["2026-12-25"]}
    reply = await owner.patch("/account", {"calling_hours": hours})
    assert reply.status == 200, reply.body
    assert reply.body["calling_hours"] == {**hours, "state_rules": True}
    config, _ = await world.config()
    assert config.calling_hours is not None and config.calling_hours.windows == hours["windows"]
    entry = (await world.audit(target="account:acme"))[0]
    assert entry.after["calling_hours"]["regions"] == {"US-FL": "mon-fri 09:00-19:00"}
    off = await owner.patch("/account", {"calling_hours": None})
    assert off.status == 200 and off.body["calling_hours"] is None


async def test_a_bad_window_is_refused_naming_it_and_changes_nothing(world: World) -> None:
    owner = world.api("olivia")
    for bad, words in (({"windows": "weekdays 9-5"}, "is not a day or days"),
                       ({"windows": "mon 18:00-09:00"}, "cannot cross midnight"),
                       ({"regions": {"Florida": "mon 09:00-17:00"}}, "regions"),
                       ({"holidays": ["christmas"]}, "holidays")):
        reply = await owner.patch("/account", {"calling_hours": bad})
        assert reply.status == 422, reply.body
        assert "calling_hours" in reply.body["field"] and words in (
            reply.body["detail"] + reply.body["field"]), reply.body
    assert (await world.config())[0].calling_hours is None


async def test_the_next_dial_keeps_the_hours_and_a_department_may_have_its_own(
    world: World,
) -> None:
    owner, dialer = world.api("olivia"), world.api("service")
    await owner.patch("/account", {"calling_hours": {"windows": closed_now(),
                                                     "state_rules": False}})
    reply = await dialer.call("POST", "/v1/dial", {"user": "ann", "to": CALLEE}, prefix="")
    decision = reply.body
    assert (decision["allowed"], decision["reason"]) == (False, "outside_calling_hours")
    assert decision["next_allowed_at"].endswith("Z") and decision["callee_time"]
    staff = await owner.patch("/departments/staff",
                              {"calling_hours": {"windows": "mon-sun 00:00-24:00"}})
    assert staff.status == 200, staff.body
    assert staff.body["calling_hours"]["windows"] == "mon-sun 00:00-24:00"
    reply = await dialer.call("POST", "/v1/dial", {"user": "ann", "to": CALLEE}, prefix="")
    assert reply.body["allowed"], reply.body  # ann is in Staff
