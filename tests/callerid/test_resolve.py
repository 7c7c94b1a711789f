"""Every caller-ID step and every way it falls through, as one table over a small account."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from callerid import (
    AccountConfig,
    AreaCodeRule,
    Attestation,
    CallSettings,
    CountryRule,
    Department,
    Destination,
    GeoConfig,
    NumberStatus,
    Permission,
    PhoneNumber,
    Reason,
    Rule,
    User,
    attest,
    compile_account,
    resolve,
    resolve_emergency,
    sticky_numbers,
)

NYC, LA, CHI, AUSTIN, TORONTO, LONDON, SUPPORT, RELEASED, ACCOUNT, DEPT = (
    "+12125550101",
    "+13105550110",
    "+13125550120",
    "+15125550130",
    "+14165550150",
    "+442079460170",
    "+18005550190",
    "+13055550140",
    "+12125550100",
    "+16175550199",
)

NYC_CALLEE = Destination(e164="+12125550187", country_code=1, national_number="2125550187",
                         region="US")
LA_CALLEE = Destination(e164="+13105550123", country_code=1, national_number="3105550123",
                        region="US")
CA_CALLEE = Destination(e164="+16045550123", country_code=1, national_number="6045550123",
                        region="CA")
TX_CALLEE = Destination(e164="+19725550123", country_code=1, national_number="9725550123",
                        region="US")

GEO = GeoConfig(
    default=AUSTIN,
    area_codes=(
        AreaCodeRule(number=LA, area_codes=("310", "213")),
        AreaCodeRule(number=RELEASED, area_codes=("212",)),
    ),
    countries=(CountryRule(number=TORONTO, region="CA"),),
)
STICKY_GEO = CallSettings(sticky_caller_id=True, geo_caller_id=True)


def account(
    *,
    pro: bool = True,
    account_default: str | None = ACCOUNT,
    released: str = RELEASED,
    **user: Any,
) -> AccountConfig:
    """One account with a Sales department (pool: NYC, LA, CHI; default DEPT) and user ``u``;
    ``released`` is released as well as RELEASED."""
    fields: dict[str, Any] = {
        "id": "u",
        "email": "u@x.example",
        "department": "sales",
        "call_settings": STICKY_GEO,
        "geo": GEO,
    }
    fields.update(user)
    numbers = [
        PhoneNumber(
            number=n,
            department="sales" if n in (NYC, LA, CHI, DEPT) else None,
            status=NumberStatus.RELEASED if n == released else NumberStatus.ACTIVE,
        )
        for n in (NYC, LA, CHI, AUSTIN, TORONTO, LONDON, SUPPORT, ACCOUNT, DEPT)
    ]
    numbers.append(PhoneNumber(number=RELEASED, status=NumberStatus.RELEASED))
    return AccountConfig(
        id="acct",
        name="Acct",
        owner="boss",
        default_department="sales",
        pro=pro,
        default_caller_id=account_default,
        users=(User(id="boss", email="boss@x.example"), User(**fields)),
        departments=(
            Department(id="sales", name="Sales", default_caller_id=DEPT),
            Department(id="bare", name="Bare"),
        ),
        numbers=tuple(numbers),
    )


CHOOSE = (Permission.CALLERID_CHOOSE,)
CUSTOM_NO_DEFAULTS = {"available_caller_ids": "custom", "custom_caller_ids": (LA, CHI),
                      "department": "bare"}

# (id, account kwargs, destination, requested, sticky, expected rule or reason, expected number)
CASES: list[tuple[str, dict[str, Any], Destination, str | None, str | None, str, str | None]] = [
    ("requested_with_permission", {"extra_permissions_enabled": True, "extra_permissions": CHOOSE},
     NYC_CALLEE, CHI, None, Rule.REQUESTED, CHI),
    ("requested_without_permission_denied", {}, NYC_CALLEE, CHI, None,
     Reason.CALLER_ID_NOT_ALLOWED, None),
    ("requested_outside_available_set_denied",
     {"extra_permissions_enabled": True, "extra_permissions": CHOOSE,
      "available_caller_ids": "department"},
     NYC_CALLEE, LONDON, None, Reason.CALLER_ID_NOT_ALLOWED, None),
    ("requested_released_number_denied",
     {"extra_permissions_enabled": True, "extra_permissions": CHOOSE},
     NYC_CALLEE, RELEASED, None, Reason.CALLER_ID_NOT_ALLOWED, None),
    ("requested_beats_sticky",
     {"extra_permissions_enabled": True, "extra_permissions": CHOOSE},
     NYC_CALLEE, CHI, LA, Rule.REQUESTED, CHI),
    ("sticky_chosen", {}, NYC_CALLEE, None, CHI, Rule.STICKY, CHI),
    ("sticky_beats_geo", {}, LA_CALLEE, None, CHI, Rule.STICKY, CHI),
    ("sticky_off_falls_to_geo", {"call_settings": CallSettings(geo_caller_id=True)},
     LA_CALLEE, None, CHI, Rule.GEO_AREA_CODE, LA),
    ("sticky_not_in_available_set_skipped", {"available_caller_ids": "department"},
     LA_CALLEE, None, LONDON, Rule.GEO_AREA_CODE, LA),
    ("sticky_released_number_skipped", {}, LA_CALLEE, None, RELEASED, Rule.GEO_AREA_CODE, LA),
    ("geo_area_code", {}, LA_CALLEE, None, None, Rule.GEO_AREA_CODE, LA),
    ("geo_area_code_released_falls_to_default_geo", {}, NYC_CALLEE, None, None,
     Rule.GEO_DEFAULT, AUSTIN),
    ("geo_country", {}, CA_CALLEE, None, None, Rule.GEO_COUNTRY, TORONTO),
    ("geo_country_not_available_falls_to_default_geo", {"available_caller_ids": "custom",
     "custom_caller_ids": (AUSTIN,)}, CA_CALLEE, None, None, Rule.GEO_DEFAULT, AUSTIN),
    ("geo_default_when_nothing_matches", {}, TX_CALLEE, None, None, Rule.GEO_DEFAULT, AUSTIN),
    ("geo_number_not_available_falls_to_user_default",
     {"available_caller_ids": "department", "default_caller_id": NYC},
     TX_CALLEE, None, None, Rule.USER_DEFAULT, NYC),
    ("geo_off_falls_to_user_default",
     {"call_settings": CallSettings(), "default_caller_id": NYC},
     LA_CALLEE, None, None, Rule.USER_DEFAULT, NYC),
    ("geo_ignored_when_account_not_pro", {"pro": False, "default_caller_id": NYC},
     LA_CALLEE, None, None, Rule.USER_DEFAULT, NYC),
    ("user_default", {"call_settings": CallSettings(), "default_caller_id": CHI},
     NYC_CALLEE, None, None, Rule.USER_DEFAULT, CHI),
    ("user_default_not_available_falls_to_department",
     {"call_settings": CallSettings(), "default_caller_id": LONDON,
      "available_caller_ids": "department"},
     NYC_CALLEE, None, None, Rule.DEPARTMENT_DEFAULT, DEPT),
    ("user_default_released_falls_to_department",
     {"call_settings": CallSettings(), "default_caller_id": RELEASED},
     NYC_CALLEE, None, None, Rule.DEPARTMENT_DEFAULT, DEPT),
    ("department_default", {"call_settings": CallSettings()}, NYC_CALLEE, None, None,
     Rule.DEPARTMENT_DEFAULT, DEPT),
    ("department_default_not_available_falls_to_account",
     {"call_settings": CallSettings(), "available_caller_ids": "custom",
      "custom_caller_ids": (ACCOUNT,)},
     NYC_CALLEE, None, None, Rule.ACCOUNT_DEFAULT, ACCOUNT),
    ("department_default_released_falls_to_account",
     {"call_settings": CallSettings(), "released": DEPT},
     NYC_CALLEE, None, None, Rule.ACCOUNT_DEFAULT, ACCOUNT),
    ("account_default_released_gives_no_caller_id",
     {"call_settings": CallSettings(), "department": "bare", "released": ACCOUNT},
     NYC_CALLEE, None, None, Reason.NO_CALLER_ID, None),
    ("account_default", {"call_settings": CallSettings(), "department": "bare"},
     NYC_CALLEE, None, None, Rule.ACCOUNT_DEFAULT, ACCOUNT),
    ("account_default_not_available_gives_no_caller_id",
     {"call_settings": CallSettings(), **CUSTOM_NO_DEFAULTS},
     NYC_CALLEE, None, None, Reason.NO_CALLER_ID, None),
    ("nothing_set_gives_no_caller_id",
     {"call_settings": CallSettings(), "department": "bare", "account_default": None},
     NYC_CALLEE, None, None, Reason.NO_CALLER_ID, None),
]


@pytest.mark.parametrize(
    ("kwargs", "dest", "requested", "sticky", "expected", "number"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_caller_id_step(
    kwargs: dict[str, Any],
    dest: Destination,
    requested: str | None,
    sticky: str | None,
    expected: str,
    number: str | None,
) -> None:
    kwargs = dict(kwargs)
    pro = kwargs.pop("pro", True)
    acct_default = kwargs.pop("account_default", ACCOUNT)
    released = kwargs.pop("released", RELEASED)
    snap = compile_account(
        account(pro=pro, account_default=acct_default, released=released, **kwargs), 1
    )
    result = resolve(snap, snap.users["u"], dest, requested=requested, sticky=sticky)
    if isinstance(expected, Rule):
        assert (result.rule, result.caller_id, result.reason) == (expected, number, None)
    else:
        assert (result.reason, result.caller_id) == (expected, None)


def test_no_caller_id_lists_choices_when_user_may_choose() -> None:
    snap = compile_account(
        account(call_settings=CallSettings(), extra_permissions_enabled=True,
                extra_permissions=CHOOSE, **CUSTOM_NO_DEFAULTS),
        1,
    )
    result = resolve(snap, snap.users["u"], NYC_CALLEE)
    assert result.reason is Reason.NO_CALLER_ID
    assert result.choices == (LA, CHI) or set(result.choices) == {LA, CHI}


def test_no_caller_id_has_no_choices_without_permission() -> None:
    snap = compile_account(account(call_settings=CallSettings(), **CUSTOM_NO_DEFAULTS), 1)
    result = resolve(snap, snap.users["u"], NYC_CALLEE)
    assert result.reason is Reason.NO_CALLER_ID and result.choices == ()


def test_owner_sees_every_active_number_and_no_released_one() -> None:
    snap = compile_account(account(), 1)
    owner = snap.users["boss"]
    assert LONDON in owner.available and SUPPORT in owner.available
    assert RELEASED not in owner.available


def test_extra_permissions_ignored_when_toggle_off() -> None:
    snap = compile_account(account(extra_permissions_enabled=False, extra_permissions=CHOOSE), 1)
    result = resolve(snap, snap.users["u"], NYC_CALLEE, requested=CHI)
    assert result.reason is Reason.CALLER_ID_NOT_ALLOWED


def test_trace_names_every_step_until_the_choice() -> None:
    snap = compile_account(account(call_settings=CallSettings(), department="bare"), 1)
    trace: list[Any] = []
    result = resolve(snap, snap.users["u"], NYC_CALLEE, trace=trace)
    assert result.rule is Rule.ACCOUNT_DEFAULT
    assert [(t.step, t.result) for t in trace] == [
        ("requested", "skipped"),
        ("sticky", "skipped"),
        ("geo", "skipped"),
        ("local_presence", "skipped"),
        ("user_default", "skipped"),
        ("department_default", "skipped"),
        ("account_default", "chosen"),
    ]
    assert trace[1].detail == "sticky caller ID is off"
    assert trace[2].detail == "geo caller ID is off"
    assert trace[3].detail == "local presence is off"


def test_trace_says_why_geo_was_skipped_on_a_non_pro_account() -> None:
    snap = compile_account(account(pro=False), 1)
    trace: list[Any] = []
    resolve(snap, snap.users["u"], LA_CALLEE, trace=trace)
    assert any(t.step == "geo" and t.detail == "account is not Pro" for t in trace)


EMERGENCY_CALLEE = Destination(e164="+1911", country_code=1, national_number="911", region="US",
                               emergency=True)


@pytest.mark.parametrize(
    ("settings", "dest", "requested", "usable"),
    [
        (STICKY_GEO, NYC_CALLEE, None, True),
        (CallSettings(sticky_caller_id=False, geo_caller_id=True), NYC_CALLEE, None, False),
        (STICKY_GEO, NYC_CALLEE, CHI, False),  # a requested caller ID comes first
        (STICKY_GEO, EMERGENCY_CALLEE, None, False),
    ],
    ids=["on", "off", "requested", "emergency"],
)
def test_sticky_numbers_say_when_sticky_may_answer_and_from_what(
    settings: CallSettings, dest: Destination, requested: str | None, usable: bool
) -> None:
    snap = compile_account(account(call_settings=settings), 1)
    user = snap.users["u"]
    numbers = sticky_numbers(user, dest, requested)
    assert numbers == (user.available if usable else None)
    # resolve applies the same rule: a sticky caller ID from the set wins only when usable.
    result = resolve(snap, user, dest, requested=None if dest.emergency else requested,
                     sticky=CHI)
    if usable:
        assert (result.rule, result.caller_id) == (Rule.STICKY, CHI)
    else:
        assert result.rule is not Rule.STICKY


def test_emergency_uses_user_default_even_when_other_rules_would_apply() -> None:
    snap = compile_account(account(default_caller_id=CHI), 1)
    result = resolve_emergency(snap, snap.users["u"])
    assert (result.rule, result.caller_id) == (Rule.EMERGENCY, CHI)


def test_emergency_without_any_default_still_allowed() -> None:
    snap = compile_account(
        account(call_settings=CallSettings(), department="bare", account_default=None,
                available_caller_ids="custom", custom_caller_ids=()),
        1,
    )
    result = resolve_emergency(snap, snap.users["u"])
    assert result.allowed and result.rule is Rule.EMERGENCY and result.caller_id is None


def test_pro_only_settings_masked_on_non_pro_account() -> None:
    settings = CallSettings(geo_caller_id=True, pro_dialing=True, ai_tools=True,
                            sticky_caller_id=True)
    snap = compile_account(account(pro=False, call_settings=settings), 1)
    effective = snap.users["u"].settings
    assert msgspec.structs.asdict(effective) == {
        "geo_caller_id": False,
        "pro_dialing": False,
        "sticky_caller_id": True,
        "show_call_statuses": True,
        "ai_tools": False,
        "local_presence": False,
    }


def test_user_without_custom_settings_gets_account_defaults() -> None:
    config = account(call_settings=None)
    config = msgspec.structs.replace(config, call_settings=CallSettings(sticky_caller_id=True))
    snap = compile_account(config, 1)
    assert snap.users["u"].settings.sticky_caller_id is True


@pytest.mark.parametrize(
    ("user", "number", "expected"),
    [
        ("u", CHI, Attestation.FULL),        # in Sales' pool, u's available set
        ("u", LONDON, Attestation.PARTIAL),  # the account's, not in u's set
        ("boss", LONDON, Attestation.FULL),  # the owner is assigned every active number
        ("u", RELEASED, None),               # not the account's any more
        ("u", "+19995550100", None),         # never the account's
    ],
)
def test_attestation_says_how_far_the_account_vouches_for_the_number(
    user: str, number: str, expected: Attestation | None
) -> None:
    snap = compile_account(account(available_caller_ids="department"), 1)
    assert attest(snap, snap.users[user], number) == expected
