"""Calling hours: a dial outside the callee's windows, in the callee's local time, is denied
``outside_calling_hours`` with the callee's time and the next allowed one; state law
narrows the windows; holidays; daylight saving both ways; a number ringing in several zones
is judged by the most restrictive; emergency calls and ``dial.any_hour`` are never held.
Fixed clocks throughout (``decide(..., now_ms=...)``), and a property test over random
policies and times."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callerid import AccountConfig, Outcome, Permission, compile_account
from callerid.hours import HoursError, parse_hours, spell
from callerid.model import CallingHours
from engine import configfile
from engine.decide import Engine, decide
from engine.errors import ConfigurationError
from engine.hours import judge, zones_of
from engine.numbers import normalise
from engine.service import AccountService
from engine.wire import DialRequest, SenderRequest

NY = "(212) 555-0187"
MIAMI = "(305) 555-0187"          # Florida: 08:00-20:00 by state law
HOUSTON = "(713) 555-0187"        # Texas: 09:00 on weekdays, noon on Sundays
AU_MOBILE = "+61 491 570 156"     # every Australian zone, Perth to Lord Howe
TOLL_FREE = "800-555-0100"        # anywhere +1 rings, Guam to Hawaii


def at(when: str) -> int:
    return int(datetime.fromisoformat(when).timestamp() * 1000)


FEDERAL = CallingHours()
"""The default policy: 08:00-21:00 every day, with the shipped state rules."""


def ruled(demo: AccountConfig, hours: CallingHours | None = FEDERAL,
          **account: object) -> AccountConfig:
    return msgspec.structs.replace(demo, calling_hours=hours, **account)


def verdict(config: AccountConfig, to: str, when: str, user: str = "ana") -> dict[str, object]:
    snap = compile_account(config, 1)
    decision = decide(snap, snap.users[user], to, normalise(to, "US"), None, "c", None,
                      now_ms=at(when))
    return msgspec.to_builtins(decision)  # type: ignore[no-any-return]


# -- the text of a policy -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "spelled"), [
    ("mon-sun 08:00-21:00", "mon-sun 08:00-21:00"),
    ("mon-fri 09:00-18:00, sat 10:00-17:00", "mon-fri 09:00-18:00, sat 10:00-17:00"),
    ("MON-FRI 09:00-12:00, mon-fri 13:00-17:00", "mon-fri 09:00-12:00, mon-fri 13:00-17:00"),
    ("sat-mon 10:00-24:00", "mon 10:00-24:00, tue-fri no calling".replace(
        ", tue-fri no calling", ", sat-sun 10:00-24:00")),
    ("mon 08:00-12:00, mon 11:00-14:00", "mon 08:00-14:00"),   # overlapping windows merge
    ("", "no calling"),
])
def test_windows_are_read_and_written_back(text: str, spelled: str) -> None:
    assert spell(parse_hours(text)) == spelled


@pytest.mark.parametrize(("text", "words"), [
    ("mon-fri 9:00-18:00", "is not a day or days and a time window"),
    ("weekdays 09:00-18:00", "is not a day or days and a time window"),
    ("mon-fry 09:00-18:00", "'fry' is not a day"),
    ("mon 18:00-09:00", "cannot cross midnight"),
    ("mon 09:00-24:30", "at most 24:00"),
    ("mon 09:60-10:00", "a later one"),
])
def test_a_bad_window_is_refused_saying_how_to_write_it(text: str, words: str) -> None:
    with pytest.raises(HoursError, match=words):
        parse_hours(text)
    blob = f'id = "x"\n[calling_hours]\nwindows = "{text}"\n'.encode()
    with pytest.raises(ConfigurationError, match="calling_hours"):
        configfile.decode(blob, "toml")


# -- fixed clocks ----------------------------------------------------------------------------

@pytest.mark.parametrize(("to", "when", "allowed", "callee_time", "next_local"), [
    (NY, "2026-12-04T08:00:00-05:00", True, None, None),
    (NY, "2026-12-04T20:59:00-05:00", True, None, None),
    (NY, "2026-12-04T21:00:00-05:00", False, "2026-12-04T21:00:00-05:00",
     "2026-12-05T08:00:00-05:00"),
    (NY, "2026-12-05T07:59:30-05:00", False, "2026-12-05T07:59:30-05:00",
     "2026-12-05T08:00:00-05:00"),
    # Florida law: until 20:00 (its panhandle is Central, but 305 is Eastern)
    (MIAMI, "2026-12-04T19:59:00-05:00", True, None, None),
    (MIAMI, "2026-12-04T20:00:00-05:00", False, "2026-12-04T20:00:00-05:00",
     "2026-12-05T08:00:00-05:00"),
    # Texas law: 09:00 on a Saturday, noon on a Sunday (Houston is Central)
    (HOUSTON, "2026-12-05T08:30:00-06:00", False, "2026-12-05T08:30:00-06:00",
     "2026-12-05T09:00:00-06:00"),
    (HOUSTON, "2026-12-06T11:00:00-06:00", False, "2026-12-06T11:00:00-06:00",
     "2026-12-06T12:00:00-06:00"),
    (HOUSTON, "2026-12-06T12:00:00-06:00", True, None, None),
    # daylight saving: the next morning is an hour nearer or further in UTC
    (NY, "2026-03-07T22:00:00-05:00", False, "2026-03-07T22:00:00-05:00",
     "2026-03-08T08:00:00-04:00"),
    (NY, "2026-10-31T22:00:00-04:00", False, "2026-10-31T22:00:00-04:00",
     "2026-11-01T08:00:00-05:00"),
])
def test_a_dial_is_judged_in_the_callees_local_time(
    demo: AccountConfig, to: str, when: str, allowed: bool, callee_time: str | None,
    next_local: str | None,
) -> None:
    answer = verdict(ruled(demo), to, when)
    assert answer["allowed"] is allowed, answer
    if allowed:
        return
    assert answer["reason"] == "outside_calling_hours"
    assert (answer["callee_time"], answer["next_allowed_local"]) == (callee_time, next_local)
    assert next_local is not None
    utc = datetime.fromisoformat(next_local).astimezone(UTC)
    assert answer["next_allowed_at"] == utc.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert "the next allowed time is" in str(answer["detail"])


def test_state_rules_can_be_left_out_or_replaced(demo: AccountConfig) -> None:
    late = "2026-12-04T20:30:00-05:00"
    assert not verdict(ruled(demo), MIAMI, late)["allowed"]
    assert verdict(ruled(demo, CallingHours(state_rules=False)), MIAMI, late)["allowed"]
    own = CallingHours(regions={"US-FL": "mon-sun 08:00-21:00"})
    assert verdict(ruled(demo, own), MIAMI, late)["allowed"]
    narrow = CallingHours(regions={"US": "mon-fri 09:00-17:00"})
    answer = verdict(ruled(demo, narrow), NY, "2026-12-04T17:30:00-05:00")
    assert answer["next_allowed_local"] == "2026-12-07T09:00:00-05:00"  # Monday
    assert "for US" in str(answer["detail"])
    # a state's law narrows the account's windows for its country, not the default ones
    answer = verdict(ruled(demo, narrow), MIAMI, "2026-12-05T12:00:00-05:00")  # a Saturday
    assert answer["next_allowed_local"] == "2026-12-07T09:00:00-05:00"


def test_a_holiday_has_no_calling(demo: AccountConfig) -> None:
    hours = CallingHours(holidays=(date(2026, 12, 25), date(2026, 12, 26)))
    answer = verdict(ruled(demo, hours), NY, "2026-12-25T12:00:00-05:00")
    assert answer["reason"] == "outside_calling_hours"
    assert "2026-12-25 is a holiday" in str(answer["detail"])
    assert answer["next_allowed_local"] == "2026-12-27T08:00:00-05:00"
    assert verdict(ruled(demo, hours), NY, "2026-12-24T12:00:00-05:00")["allowed"]


def test_a_number_in_several_zones_is_judged_by_the_most_restrictive(
    demo: AccountConfig,
) -> None:
    """An Australian mobile may ring anywhere from the Cocos Islands (UTC+6:30) to Lord Howe
    (+11): 10:00 in Sydney is 06:30 there, not yet; the next allowed time is 08:00 in the
    Cocos Islands, within the windows in every zone (and 12:30 in Sydney)."""
    dest = normalise(AU_MOBILE, "US")
    assert dest is not None
    assert {"Australia/Perth", "Australia/Sydney", "Indian/Cocos"} <= set(zones_of(dest))
    config = ruled(demo, plan_countries=["US", "CA", "AU"])
    answer = verdict(config, AU_MOBILE, "2026-12-07T10:00:00+11:00")
    assert answer["reason"] == "outside_calling_hours", answer
    assert "one of its 8 zones" in str(answer["detail"])
    assert answer["next_allowed_at"] == "2026-12-07T01:30:00.000Z"
    assert not verdict(config, AU_MOBILE, "2026-12-07T07:59:00+06:30")["allowed"]
    assert verdict(config, AU_MOBILE, "2026-12-07T08:00:00+06:30")["allowed"]
    assert not verdict(config, AU_MOBILE, "2026-12-07T21:00:00+11:00")["allowed"]  # Lord Howe


def test_a_toll_free_number_may_be_called_when_every_zone_of_plus_1_allows(
    demo: AccountConfig,
) -> None:
    assert not verdict(ruled(demo), TOLL_FREE, "2026-12-04T12:00:00-05:00")["allowed"]
    assert verdict(ruled(demo), TOLL_FREE, "2026-12-04T17:30:00-05:00")["allowed"]  # 22:30Z


def test_zones_far_apart_with_no_common_window_are_judged_in_the_accounts_zone(
    demo: AccountConfig,
) -> None:
    hours = CallingHours(windows="mon-sun 09:00-12:00", state_rules=False)
    config = ruled(demo, hours, time_zone="America/Chicago")
    assert verdict(config, TOLL_FREE, "2026-12-04T10:00:00-06:00")["allowed"]
    answer = verdict(config, TOLL_FREE, "2026-12-04T13:00:00-06:00")
    assert answer["next_allowed_local"] == "2026-12-05T09:00:00-06:00"


def test_emergency_calls_and_dial_any_hour_are_never_held_back(demo: AccountConfig) -> None:
    config = ruled(demo)
    assert verdict(config, "911", "2026-12-04T23:30:00-05:00")["allowed"]
    assert verdict(config, NY, "2026-12-04T23:30:00-05:00", user="olivia")["allowed"]
    sales = [msgspec.structs.replace(d, permissions=(*d.permissions, Permission.DIAL_ANY_HOUR))
             if d.id == "sales" else d for d in demo.departments]
    b2b = msgspec.structs.replace(config, departments=tuple(sales))
    assert verdict(b2b, NY, "2026-12-04T23:30:00-05:00")["allowed"]  # ana is in Sales


def test_a_departments_hours_replace_the_accounts_for_its_users(demo: AccountConfig) -> None:
    narrow = CallingHours(windows="mon-fri 10:00-16:00")
    support = [msgspec.structs.replace(d, calling_hours=narrow) if d.id == "support" else d
               for d in demo.departments]
    config = msgspec.structs.replace(ruled(demo), departments=tuple(support))
    evening = "2026-12-04T18:00:00-05:00"
    assert verdict(config, NY, evening)["allowed"]                        # ana: Sales
    assert verdict(config, NY, evening, user="dev")["reason"] == "outside_calling_hours"
    assert verdict(msgspec.structs.replace(config, calling_hours=None), NY, evening,
                   user="dev")["reason"] == "outside_calling_hours"        # on its own too


def test_without_calling_hours_any_hour_goes(demo: AccountConfig) -> None:
    assert verdict(ruled(demo, None), NY, "2026-12-04T03:00:00-05:00")["allowed"]


# -- a property ------------------------------------------------------------------------------

CALLEES = [normalise(n, "US") for n in (NY, MIAMI, HOUSTON, AU_MOBILE, TOLL_FREE,
                                        "+44 20 7946 0187", "(808) 555-0187")]
WINDOW = st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 95),
                   st.integers(1, 96)).map(
    lambda w: f"{('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')[w[0]]}-"
              f"{('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')[w[1]]} "
              f"{w[2] // 4:02d}:{w[2] % 4 * 15:02d}-"
              f"{min(w[2] + w[3], 96) // 4:02d}:{min(w[2] + w[3], 96) % 4 * 15:02d}")


@settings(max_examples=int(os.environ.get("HOURS_EXAMPLES", "300")), deadline=None)
@given(windows=st.lists(WINDOW, min_size=0, max_size=3),
       holidays=st.lists(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=3),
       moment=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),
       callee=st.sampled_from(CALLEES))
def test_no_allowed_dial_falls_outside_its_window_and_the_next_time_is_the_first(
    windows: list[str], holidays: list[date], moment: datetime, callee: object,
) -> None:
    spec = ", ".join(w for w in windows if parse_ok(w))
    policy = compile_account(msgspec.structs.replace(
        _DEMO, calling_hours=CallingHours(windows=spec, holidays=tuple(holidays),
                                          state_rules=False)), 1).users["ana"].hours
    assert policy is not None and callee is not None
    now_ms = int(moment.replace(tzinfo=UTC).timestamp() * 1000)
    outside = judge(policy, callee, now_ms, "America/New_York")  # type: ignore[arg-type]
    hours = parse_hours(spec)
    zones = zones_of(callee) or ("America/New_York",)  # type: ignore[arg-type]
    if outside is None:
        # allowed in every zone, or (no window common to them) in the account's
        inside = [within(hours, holidays, z, now_ms) for z in zones]
        assert all(inside) or within(hours, holidays, "America/New_York", now_ms)
        return
    assert outside.next_allowed_ms is None or outside.next_allowed_ms > now_ms
    if outside.next_allowed_ms is not None:
        following = outside.next_allowed_ms
        assert judge(policy, callee, following, "America/New_York") is None  # type: ignore[arg-type]
        if following - 60_000 >= now_ms:
            assert judge(policy, callee, following - 60_000,  # type: ignore[arg-type]
                         "America/New_York") is not None


def parse_ok(text: str) -> bool:
    try:
        parse_hours(text)
    except HoursError:
        return False
    return True


def within(hours: tuple[tuple[tuple[int, int], ...], ...], holidays: list[date], zone: str,
           now_ms: int) -> bool:
    local = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    return local.date() not in holidays and any(
        s <= minute < e for s, e in hours[local.weekday()])


_DEMO = msgspec.structs.replace(
    configfile.decode((__import__("tests.conftest", fromlist=["DEMO"]).DEMO).read_bytes(),
                      "toml"), plan_countries=["US", "CA", "AU", "GB"])


# -- through the engine ----------------------------------------------------------------------

def _closed_now(zone: str = "America/New_York") -> CallingHours:
    """A policy whose only window is twelve hours from now, in ``zone``: a dial now is out."""
    now = datetime.now(ZoneInfo(zone)) + timedelta(hours=12)
    start = now.hour * 60
    return CallingHours(windows=f"mon-sun {start // 60:02d}:00-{start // 60:02d}:59",
                        state_rules=False)


async def test_dial_explain_and_texts_keep_the_hours(
    engine: Engine, service: AccountService, demo: AccountConfig,
) -> None:
    await service.put(ruled(demo, _closed_now()))
    decision = await engine.dial("demo", DialRequest(user="ana", to=NY))
    assert (decision.allowed, decision.reason) == (False, "outside_calling_hours")
    assert decision.next_allowed_at is not None and decision.callee_time is not None
    explained = await engine.explain("demo", DialRequest(user="ana", to=NY))
    step = next(t for t in explained.trace or () if t.step == "calling_hours")
    assert step.result == "denied" and "the next allowed time is" in step.detail
    text = await engine.text_sender("demo", SenderRequest(user="ana", to=NY))
    assert (text.allowed, text.reason) == (False, "outside_calling_hours")
    assert text.next_allowed_at == decision.next_allowed_at
    await service.put(ruled(demo, None))
    assert (await engine.dial("demo", DialRequest(user="ana", to=NY))).allowed
    explained = await engine.explain("demo", DialRequest(user="ana", to=NY))
    step = next(t for t in explained.trace or () if t.step == "calling_hours")
    assert step.result == "skipped"


def test_the_configuration_file_carries_calling_hours(demo: AccountConfig) -> None:
    hours = CallingHours(windows="mon-fri 09:00-20:00, sat 10:00-17:00",
                         regions={"US-FL": "mon-fri 09:00-19:00", "GB": "mon-fri 09:00-17:00"},
                         holidays=(date(2026, 12, 25),))
    support = [msgspec.structs.replace(d, calling_hours=CallingHours(state_rules=False))
               if d.id == "support" else d for d in demo.departments]
    config = msgspec.structs.replace(ruled(demo, hours), departments=tuple(support))
    for fmt in ("toml", "json"):
        assert configfile.decode(configfile.encode(config, fmt), fmt) == config
    assert '[calling_hours]\nwindows = "mon-fri 09:00-20:00, sat 10:00-17:00"' in (
        configfile.encode(config, "toml").decode())
    schema = configfile.json_schema()["$defs"]
    assert "calling_hours" in schema["AccountConfig"]["properties"]
    assert "calling_hours" in schema["Department"]["properties"]
    assert schema["CallingHours"]["properties"]["windows"]["default"] == "mon-sun 08:00-21:00"


async def test_a_sticky_caller_id_never_opens_calling_hours(
    engine: Engine, service: AccountService, demo: AccountConfig,
) -> None:
    """sam has sticky caller ID on and a sticky number for the contact: outside the hours, the
    dial and the text are still denied (the hours come before the caller ID)."""
    await service.put(ruled(demo, None))
    first = await engine.dial("demo", DialRequest(user="sam", to=NY))
    await engine.end("demo", first.call_id, Outcome.ANSWERED)
    assert (await engine.dial("demo", DialRequest(user="sam", to=NY))).rule == "sticky"
    await service.put(ruled(demo, _closed_now()))
    decision = await engine.dial("demo", DialRequest(user="sam", to=NY))
    assert (decision.allowed, decision.reason) == (False, "outside_calling_hours")
    text = await engine.text_sender("demo", SenderRequest(user="sam", to=NY))
    assert (text.allowed, text.reason) == (False, "outside_calling_hours")
