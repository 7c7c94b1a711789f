"""Destination policy: outside the plan needs dial.out_of_plan, premium-rate and shared-cost
need dial.special_numbers, and each denial names the permission."""

from __future__ import annotations

import msgspec
import pytest

from callerid import AccountConfig, AccountSnapshot, Permission, compile_account
from engine.numbers import normalise
from engine.policy import check_destination


def snapshot(demo: AccountConfig, permissions: tuple[Permission, ...]) -> AccountSnapshot:
    sales = next(d for d in demo.departments if d.id == "sales")
    departments = tuple(
        msgspec.structs.replace(sales, permissions=permissions) if d.id == "sales" else d
        for d in demo.departments
    )
    return compile_account(msgspec.structs.replace(demo, departments=departments), 1)


@pytest.mark.parametrize(
    ("dialled", "permission"),
    [
        ("+33 1 42 68 53 00", Permission.DIAL_OUT_OF_PLAN),
        ("+44 20 7946 0999", Permission.DIAL_OUT_OF_PLAN),
        ("+1 900 555 0123", Permission.DIAL_SPECIAL_NUMBERS),
    ],
    ids=["france-out-of-plan", "uk-out-of-plan", "us-premium-rate"],
)
def test_denial_names_missing_permission(
    demo: AccountConfig, dialled: str, permission: Permission
) -> None:
    snap = snapshot(demo, ())
    dest = normalise(dialled, "US")
    assert dest is not None
    denial = check_destination(snap, snap.users["ana"], dest)
    assert denial is not None and denial.permission is permission
    assert str(permission) in denial.detail


def test_shared_cost_needs_special_numbers(demo: AccountConfig) -> None:
    config = msgspec.structs.replace(demo, plan_countries=("US", "FR"))
    snap = compile_account(config, 1)
    dest = normalise("+33 810 12 34 56", "US")
    assert dest is not None
    # ana's department grants dial.out_of_plan but not dial.special_numbers
    denial = check_destination(snap, snap.users["ana"], dest)
    assert denial is not None and denial.permission is Permission.DIAL_SPECIAL_NUMBERS


@pytest.mark.parametrize(
    "dialled", ["+33 1 42 68 53 00", "+1 900 555 0123", "(212) 555-0187", "+1 416 555 0123"]
)
def test_holder_of_both_permissions_may_call(demo: AccountConfig, dialled: str) -> None:
    snap = snapshot(demo, (Permission.DIAL_OUT_OF_PLAN, Permission.DIAL_SPECIAL_NUMBERS))
    dest = normalise(dialled, "US")
    assert dest is not None
    assert check_destination(snap, snap.users["ana"], dest) is None


def test_in_plan_ordinary_number_needs_nothing(demo: AccountConfig) -> None:
    snap = snapshot(demo, ())
    dest = normalise("+1 416 555 0123", "US")
    assert dest is not None
    assert check_destination(snap, snap.users["ana"], dest) is None
