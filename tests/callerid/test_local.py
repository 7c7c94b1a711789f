"""Local presence: a number with the callee's area code, else in its state or province, else
in its country; the lowest number within a tier; the trace says which tier and candidates."""

from __future__ import annotations

from typing import Any

import pytest

from callerid import (
    AccountConfig,
    CallSettings,
    Department,
    Destination,
    Permission,
    PhoneNumber,
    Rule,
    User,
    compile_account,
    resolve,
)
from callerid.local import Tier, compile_local, local_pick, local_tiers
from callerid.resolve import Step, StepResult, TraceStep

MANHATTAN_1, MANHATTAN_2 = "+12125550102", "+12125550101"
BUFFALO = "+17165550100"          # New York State, another area code
DALLAS = "+12145550100"           # Texas
TORONTO = "+14165550100"          # Ontario, Canada
LONDON, MANCHESTER = "+442079460100", "+441614960100"
ACCOUNT_DEFAULT = "+13055550100"  # Florida
NUMBERS = (MANHATTAN_1, MANHATTAN_2, BUFFALO, DALLAS, TORONTO, LONDON, MANCHESTER,
           ACCOUNT_DEFAULT)
LOCAL = CallSettings(local_presence=True)


def dest(e164: str, national: str, cc: int, region: str, area: str | None,
         subdivision: str | None = None) -> Destination:
    return Destination(e164=e164, country_code=cc, national_number=national, region=region,
                       area=area, subdivision=subdivision)


NYC_CALLEE = dest("+12125550187", "2125550187", 1, "US", "+1212", "US-NY")
QUEENS_CALLEE = dest("+17185550187", "7185550187", 1, "US", "+1718", "US-NY")
HOUSTON_CALLEE = dest("+17135550187", "7135550187", 1, "US", "+1713", "US-TX")
OHIO_CALLEE = dest("+12165550187", "2165550187", 1, "US", "+1216", "US-OH")
VANCOUVER_CALLEE = dest("+16045550187", "6045550187", 1, "CA", "+1604", "CA-BC")
LONDON_CALLEE = dest("+442079460187", "2079460187", 44, "GB", "+4420")
LEEDS_CALLEE = dest("+441134960187", "1134960187", 44, "GB", "+44113")
UK_MOBILE_CALLEE = dest("+447700900187", "7700900187", 44, "GB", None)
PARIS_CALLEE = dest("+33142685300", "142685300", 33, "FR", "+331")


def account(*, permissions: tuple[Permission, ...] = (Permission.CALLERID_LOCAL_PRESENCE,),
            **user: Any) -> AccountConfig:
    fields: dict[str, Any] = {"id": "u", "email": "u@x.example", "department": "floor",
                              "call_settings": LOCAL}
    fields.update(user)
    return AccountConfig(
        id="acct", name="Acct", owner="boss", default_department="floor",
        default_caller_id=ACCOUNT_DEFAULT,
        users=(User(id="boss", email="boss@x.example"), User(**fields)),
        departments=(Department(id="floor", name="Floor", permissions=permissions),),
        numbers=tuple(PhoneNumber(number=n) for n in NUMBERS),
    )


# (id, callee, numbers the user has (None: all), expected tier, expected number)
CASES = [
    ("area_code", NYC_CALLEE, None, Tier.AREA_CODE, MANHATTAN_2),
    ("area_code_lowest_of_two", NYC_CALLEE, (MANHATTAN_1, MANHATTAN_2, BUFFALO),
     Tier.AREA_CODE, MANHATTAN_2),
    ("state_when_no_area_code", QUEENS_CALLEE, None, Tier.REGION, MANHATTAN_2),
    ("state_of_the_users_own_numbers", NYC_CALLEE, (BUFFALO, DALLAS), Tier.REGION, BUFFALO),
    ("country_when_no_state", OHIO_CALLEE, (DALLAS, TORONTO), Tier.COUNTRY, DALLAS),
    ("nanp_country_is_iso_not_plus_1", VANCOUVER_CALLEE, (DALLAS, TORONTO),
     Tier.COUNTRY, TORONTO),
    ("uk_area_code", LONDON_CALLEE, None, Tier.AREA_CODE, LONDON),
    ("uk_country", LEEDS_CALLEE, None, Tier.COUNTRY, MANCHESTER),
    ("uk_mobile_has_no_area", UK_MOBILE_CALLEE, None, Tier.COUNTRY, MANCHESTER),
    ("nothing_near", PARIS_CALLEE, None, None, None),
    ("texas_from_elsewhere_in_texas", HOUSTON_CALLEE, None, Tier.REGION, DALLAS),
]


@pytest.mark.parametrize(("callee", "mine", "tier", "number"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_nearest_tier_with_a_number_wins(
    callee: Destination, mine: tuple[str, ...] | None, tier: Tier | None, number: str | None
) -> None:
    kwargs: dict[str, Any] = {}
    if mine is not None:
        kwargs = {"available_caller_ids": "custom", "custom_caller_ids": mine,
                  "default_caller_id": mine[-1]}
    snap = compile_account(account(**kwargs), 1)
    user = snap.users["u"]
    picked = local_pick(snap.local, callee, user.available)
    assert (picked[0], picked[2]) == (tier, number) if picked else (tier, number) == (None, None)
    result = resolve(snap, user, callee)
    if number is None:
        assert result.rule is not Rule.LOCAL_PRESENCE
    else:
        assert (result.rule, result.caller_id) == (Rule.LOCAL_PRESENCE, number)


def test_it_comes_after_the_geo_rules_and_before_the_defaults() -> None:
    snap = compile_account(account(default_caller_id=DALLAS), 1)
    assert resolve(snap, snap.users["u"], NYC_CALLEE).caller_id == MANHATTAN_2
    assert resolve(snap, snap.users["u"], NYC_CALLEE, requested=None,
                   sticky=None).rule is Rule.LOCAL_PRESENCE
    assert resolve(snap, snap.users["u"], PARIS_CALLEE).rule is Rule.USER_DEFAULT


@pytest.mark.parametrize(("settings", "permissions", "why"), [
    (CallSettings(), (Permission.CALLERID_LOCAL_PRESENCE,), "local presence is off"),
    (LOCAL, (), "needs the callerid.local_presence permission"),
])
def test_it_needs_both_the_setting_and_the_permission(
    settings: CallSettings, permissions: tuple[Permission, ...], why: str
) -> None:
    snap = compile_account(account(call_settings=settings, permissions=permissions), 1)
    trace: list[TraceStep] = []
    result = resolve(snap, snap.users["u"], NYC_CALLEE, trace=trace)
    assert result.rule is Rule.ACCOUNT_DEFAULT
    step = next(t for t in trace if t.step == Step.LOCAL_PRESENCE)
    assert step.result is StepResult.SKIPPED and why in step.detail


def test_the_trace_names_each_tier_tried_and_the_candidates() -> None:
    snap = compile_account(account(), 1)
    trace: list[TraceStep] = []
    resolve(snap, snap.users["u"], QUEENS_CALLEE, trace=trace)
    steps = [t for t in trace if t.step == Step.LOCAL_PRESENCE]
    assert [(t.result, t.caller_id) for t in steps] == [
        (StepResult.SKIPPED, None), (StepResult.CHOSEN, MANHATTAN_2)]
    assert "area code +1718" in steps[0].detail
    assert "state or province US-NY" in steps[1].detail
    assert all(n in steps[1].detail for n in (MANHATTAN_2, MANHATTAN_1, BUFFALO))


def test_the_index_holds_only_active_numbers_by_prefix_and_region() -> None:
    index = compile_local([MANHATTAN_1, TORONTO, LONDON])
    assert index.by_prefix["+1212"] == (MANHATTAN_1,)
    assert index.by_prefix["+44"] == (LONDON,)
    assert index.by_region["US-NY"] == (MANHATTAN_1,) and index.by_region["CA"] == (TORONTO,)
    tiers = [(t, k, tuple(n for n in numbers if n == TORONTO))
             for t, k, numbers in local_tiers(index, NYC_CALLEE)]
    assert [(t, n) for t, _, n in tiers] == [
        (Tier.AREA_CODE, ()), (Tier.REGION, ()), (Tier.COUNTRY, ())]
