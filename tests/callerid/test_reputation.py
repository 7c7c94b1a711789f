"""Number reputation: a resting number is passed over by every automatic rule until its rest
ends and can still be asked for by a user who may choose; a retired one is never presented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from callerid import (
    AccountConfig,
    AreaCodeRule,
    CallSettings,
    Department,
    Destination,
    GeoConfig,
    Permission,
    PhoneNumber,
    Reason,
    Reputation,
    Rule,
    User,
    compile_account,
    resolve,
    resting_at,
    sticky_numbers,
)

NYC, LA, CHI, ACCOUNT_DEFAULT = "+12125550101", "+13105550110", "+13125550120", "+12125550100"
CALLEE = Destination(e164="+12125550187", country_code=1, national_number="2125550187",
                     region="US", area="+1212", subdivision="US-NY")
REST_ENDS = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)
REST_ENDS_MS = int(REST_ENDS.timestamp() * 1000)


def account(reputations: dict[str, Reputation], **user: Any) -> AccountConfig:
    fields: dict[str, Any] = {"id": "u", "email": "u@x.example", "department": "floor",
                              "default_caller_id": NYC}
    fields.update(user)
    numbers = tuple(
        PhoneNumber(number=n, reputation=reputations.get(n, Reputation.ACTIVE),
                    resting_until=REST_ENDS if reputations.get(n) is Reputation.RESTING
                    else None)
        for n in (NYC, LA, CHI, ACCOUNT_DEFAULT))
    return AccountConfig(
        id="acct", name="Acct", owner="boss", default_department="floor", pro=True,
        default_caller_id=ACCOUNT_DEFAULT,
        users=(User(id="boss", email="boss@x.example"), User(**fields)),
        departments=(Department(id="floor", name="Floor", permissions=(
            Permission.CALLERID_CHOOSE, Permission.CALLERID_LOCAL_PRESENCE)),),
        numbers=numbers,
    )


def test_a_rest_lasts_until_its_end() -> None:
    snap = compile_account(account({NYC: Reputation.RESTING}), 1)
    assert resting_at(snap, REST_ENDS_MS - 1) == {NYC}
    assert resting_at(snap, REST_ENDS_MS) == frozenset()
    assert resting_at(compile_account(account({}), 1), 0) == frozenset()


@pytest.mark.parametrize(("user", "rested", "rule"), [
    ({}, NYC, Rule.ACCOUNT_DEFAULT),  # the user's default rests: the next default
    ({"call_settings": CallSettings(geo_caller_id=True), "default_caller_id": LA,
      "geo": GeoConfig(area_codes=(AreaCodeRule(number=NYC, area_codes=("212",)),))},
     NYC, Rule.USER_DEFAULT),  # the geo rule's number rests: the geo rules give nothing
    ({"call_settings": CallSettings(local_presence=True), "default_caller_id": None},
     ACCOUNT_DEFAULT, Rule.LOCAL_PRESENCE),  # the lowest in 212 rests: the next one there
], ids=["defaults", "geo", "local-presence"])
def test_every_automatic_rule_passes_a_resting_number_over(
    user: dict[str, Any], rested: str, rule: Rule
) -> None:
    snap = compile_account(account({rested: Reputation.RESTING}, **user), 1)
    got = resolve(snap, snap.users["u"], CALLEE, resting=resting_at(snap, REST_ENDS_MS - 1))
    assert got.rule is rule and got.caller_id != rested
    back = resolve(snap, snap.users["u"], CALLEE, resting=resting_at(snap, REST_ENDS_MS))
    assert back.caller_id == rested, "once its rest ends it is back in use"


def test_a_resting_number_is_no_sticky_caller_id_but_can_be_asked_for() -> None:
    snap = compile_account(account({NYC: Reputation.RESTING},
                                   call_settings=CallSettings(sticky_caller_id=True)), 1)
    user, resting = snap.users["u"], frozenset({NYC})
    assert NYC not in (sticky_numbers(user, CALLEE, None, resting) or ())
    got = resolve(snap, user, CALLEE, sticky=NYC, resting=resting)
    assert got.rule is Rule.ACCOUNT_DEFAULT
    asked = resolve(snap, user, CALLEE, requested=NYC, resting=resting)
    assert (asked.rule, asked.caller_id) == (Rule.REQUESTED, NYC)


def test_a_retired_number_is_never_presented_even_when_asked_for() -> None:
    snap = compile_account(account({NYC: Reputation.RETIRED}), 1)
    user = snap.users["u"]
    assert NYC not in user.available and NYC not in snap.active_numbers
    assert resolve(snap, user, CALLEE).rule is Rule.ACCOUNT_DEFAULT
    asked = resolve(snap, user, CALLEE, requested=NYC)
    assert asked.reason is Reason.CALLER_ID_NOT_ALLOWED


@pytest.mark.parametrize("number", [
    {"number": NYC, "reputation": "resting"},
    {"number": NYC, "reputation": "active", "resting_until": "2026-12-24T09:00:00Z"},
    {"number": NYC, "reputation": "resting", "resting_until": "2026-12-24T09:00:00"},
], ids=["resting-without-end", "end-without-rest", "end-without-time-zone"])
def test_a_rest_is_a_reputation_and_an_end_with_a_time_zone(number: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(number, PhoneNumber)


def test_the_rest_comes_back_from_a_file_as_it_went() -> None:
    number = PhoneNumber(number=NYC, reputation=Reputation.RESTING,
                         resting_until=REST_ENDS + timedelta(minutes=30))
    again = msgspec.json.decode(msgspec.json.encode(number), type=PhoneNumber)
    assert again == number
