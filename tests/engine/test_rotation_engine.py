"""Rotation and daily caps through the engine, on the demo account: the number a dial goes out
from depends on the calls each placed today in the account's time zone, ``explain`` says
what ``dial`` would do, and a day is midnight to midnight there (23 or 25 hours across a
daylight saving change)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from callerid import AccountConfig, Outcome, Reason, Rule
from engine import configfile
from engine.days import day_bounds, local_day
from engine.decide import Engine
from engine.service import AccountService
from engine.store import EmbeddedStore
from engine.wire import DialRequest

NY_1, NY_2 = "+12125550101", "+12125550102"   # Sales' two New York numbers (lola's)
CHICAGO = "+13125550120"


def configured(demo: AccountConfig, **account: object) -> AccountConfig:
    """The demo with ``account``'s settings (every dial here ends its call at once, so no
    channel limit is reached)."""
    return msgspec.structs.replace(demo, **account)


async def dial_and_end(engine: Engine, user: str, to: str, **request: str) -> tuple[str, ...]:
    decision = await engine.dial("demo", DialRequest(user=user, to=to, **request))
    if decision.allowed:
        await engine.end("demo", decision.call_id, Outcome.NO_ANSWER)
        return (str(decision.rule), str(decision.caller_id))
    return ("denied", str(decision.reason))


async def test_local_presence_takes_turns_and_explain_names_the_next(
    engine: Engine, service: AccountService, demo: AccountConfig, store: EmbeddedStore,
) -> None:
    await service.put(configured(demo))
    picks = [await dial_and_end(engine, "lola", "(212) 555-0187") for _ in range(4)]
    assert picks == [("local_presence", NY_1), ("local_presence", NY_2)] * 2
    explained = await engine.explain("demo", DialRequest(user="lola", to="(212) 555-0187"))
    assert explained.caller_id == NY_1
    chosen = next(t for t in explained.trace or () if t.caller_id == NY_1)
    assert "least used today of 2 candidates" in chosen.detail
    today = local_day("UTC", time.time_ns() // 1_000_000)
    assert await store.usage("demo", today) == {NY_1: 2, NY_2: 2}


async def test_a_capped_account_never_lets_a_number_pass_its_cap(
    engine: Engine, service: AccountService, demo: AccountConfig,
) -> None:
    """Cap 2 a number: lola's two New York numbers take turns, then her other US ones (the
    country tier; she has only Sales numbers, the account default not among them), each
    twice; then a clear denial, which ``explain`` gives too."""
    await service.put(configured(demo, daily_cap=2))
    picks = []
    for _ in range(30):
        picks.append(await dial_and_end(engine, "lola", "(212) 555-0187"))
        if picks[-1][0] == "denied":
            break
    assert picks[-1] == ("denied", Reason.CALLER_ID_CAPPED.value)
    used = Counter(number for rule, number in picks[:-1])
    assert set(used.values()) == {2} and len(used) >= 4, used
    assert picks[:4] == [("local_presence", NY_1), ("local_presence", NY_2)] * 2
    explained = await engine.explain("demo", DialRequest(user="lola", to="(212) 555-0187"))
    assert (explained.allowed, explained.reason) == (False, Reason.CALLER_ID_CAPPED)


async def test_a_numbers_own_cap_and_a_requested_number_over_it(
    engine: Engine, service: AccountService, demo: AccountConfig,
) -> None:
    numbers = tuple(msgspec.structs.replace(n, daily_cap=1) if n.number == CHICAGO else n
                    for n in demo.numbers)
    await service.put(configured(demo, numbers=numbers))
    chris = {"caller_id": CHICAGO}
    assert await dial_and_end(engine, "chris", "(212) 555-0187", **chris) == (
        "requested", CHICAGO)
    denied = await engine.dial("demo", DialRequest(user="chris", to="(212) 555-0188",
                                                   caller_id=CHICAGO))
    assert (denied.allowed, denied.reason) == (False, Reason.CALLER_ID_CAPPED)
    assert CHICAGO in (denied.detail or "") and "daily cap" in (denied.detail or "")
    explained = await engine.explain("demo", DialRequest(user="chris", to="(212) 555-0188",
                                                         caller_id=CHICAGO))
    assert explained.reason is Reason.CALLER_ID_CAPPED
    await service.put(configured(demo, numbers=numbers, requested_over_cap=True))
    assert await dial_and_end(engine, "chris", "(212) 555-0189", **chris) == (
        "requested", CHICAGO)


async def test_calls_count_on_the_accounts_own_day(
    engine: Engine, service: AccountService, demo: AccountConfig, store: EmbeddedStore,
) -> None:
    """Kiritimati is 14 hours ahead of UTC: for 14 hours of every UTC day its date is the
    next one; the count lands on its date, whichever it is."""
    await service.put(configured(demo, time_zone="Pacific/Kiritimati"))
    before = time.time_ns() // 1_000_000
    decision = await engine.dial("demo", DialRequest(user="ana", to="(212) 555-0187"))
    assert decision.allowed and decision.rule is Rule.USER_DEFAULT
    days = {local_day("Pacific/Kiritimati", before),
            local_day("Pacific/Kiritimati", time.time_ns() // 1_000_000)}
    counted = [await store.usage("demo", day) for day in days]
    assert sum(c.get(str(decision.caller_id), 0) for c in counted) == 1


@pytest.mark.parametrize(("zone", "when", "day", "hours"), [
    ("America/New_York", "2026-03-08T12:00:00-04:00", "2026-03-08", 23),  # clocks go forward
    ("America/New_York", "2026-11-01T12:00:00-05:00", "2026-11-01", 25),  # and back
    ("America/New_York", "2026-12-04T23:30:00-05:00", "2026-12-04", 24),  # UTC's 5th already
    ("Asia/Kolkata", "2026-12-04T00:10:00+05:30", "2026-12-04", 24),      # UTC's 3rd still
    ("UTC", "2026-12-31T23:59:59+00:00", "2026-12-31", 24),
])
def test_a_day_runs_midnight_to_midnight_in_its_zone(
    zone: str, when: str, day: str, hours: int
) -> None:
    now_ms = int(datetime.fromisoformat(when).timestamp() * 1000)
    named, starts, ends = day_bounds(zone, now_ms)
    assert named == day and starts <= now_ms < ends
    assert ends - starts == hours * 3_600_000
    assert datetime.fromtimestamp(starts / 1000, ZoneInfo(zone)).strftime("%H:%M") == "00:00"
    assert local_day(zone, now_ms) == day
    assert local_day(zone, ends) != day and local_day(zone, starts - 1) != day


def test_the_configuration_file_carries_caps_time_zone_and_texts(demo: AccountConfig) -> None:
    """``callgate import``/``export`` read and write every setting of this feature, in TOML
    and JSON, and ``callgate schema`` describes them."""
    numbers = tuple(msgspec.structs.replace(n, daily_cap=250, sms=True) if n.number == NY_1
                    else n for n in demo.numbers)
    config = configured(demo, numbers=numbers, time_zone="America/New_York", daily_cap=100,
                        requested_over_cap=True, sms_sticky_shared=True)
    for fmt in ("toml", "json"):
        assert configfile.decode(configfile.encode(config, fmt), fmt) == config
    toml = configfile.encode(config, "toml").decode()
    for line in ('time_zone = "America/New_York"', "daily_cap = 100", "daily_cap = 250",
                 "requested_over_cap = true", "sms_sticky_shared = true"):
        assert line in toml, line
    schema = configfile.json_schema()
    account = schema["$defs"]["AccountConfig"]["properties"]
    assert {"time_zone", "daily_cap", "requested_over_cap", "sms_sticky_shared"} <= set(account)
    assert schema["$defs"]["PhoneNumber"]["properties"]["daily_cap"]["anyOf"][0]["minimum"] == 0
