"""Effective permissions: the owner holds all; department plus extras when the toggle is on;
legacy users outside a department keep their own; moved in, they keep what it lacks."""

from __future__ import annotations

from callerid import ALL_PERMISSIONS, BUCKETS, Permission, effective_permissions
from callerid.permissions import migrate_into_department

P = Permission


def test_owner_holds_every_permission() -> None:
    held = effective_permissions(
        is_owner=True, department_permissions=(), extra_enabled=False, extra=(), own=()
    )
    assert held == ALL_PERMISSIONS


def test_department_permissions_plus_extras_when_toggle_on() -> None:
    held = effective_permissions(
        is_owner=False,
        department_permissions=(P.REPORTING_VIEW,),
        extra_enabled=True,
        extra=(P.CALLERID_CHOOSE,),
        own=(P.BILLING_TOPUP,),
    )
    assert held == {P.REPORTING_VIEW, P.CALLERID_CHOOSE}


def test_extras_ignored_when_toggle_off() -> None:
    held = effective_permissions(
        is_owner=False,
        department_permissions=(P.REPORTING_VIEW,),
        extra_enabled=False,
        extra=(P.CALLERID_CHOOSE,),
        own=(),
    )
    assert held == {P.REPORTING_VIEW}


def test_legacy_user_without_department_keeps_own_set() -> None:
    held = effective_permissions(
        is_owner=False,
        department_permissions=None,
        extra_enabled=True,
        extra=(P.CALLERID_CHOOSE,),
        own=(P.USERS_MANAGE, P.DIAL_OUT_OF_PLAN),
    )
    assert held == {P.USERS_MANAGE, P.DIAL_OUT_OF_PLAN}


def test_moving_into_department_keeps_what_it_lacks() -> None:
    kept = migrate_into_department(
        {P.USERS_MANAGE, P.REPORTING_VIEW}, department_permissions={P.REPORTING_VIEW}
    )
    assert kept == {P.USERS_MANAGE}


def test_buckets_cover_every_permission_once() -> None:
    seen = [p for bucket in BUCKETS.values() for p in bucket]
    assert sorted(seen) == sorted(Permission) and len(seen) == len(set(seen))


def test_permission_names_are_the_documented_ones() -> None:
    assert {p.value for p in Permission} == {
        "usage.view", "billing.subscription", "billing.topup", "billing.payment_methods",
        "users.manage", "users.settings", "numbers.manage", "callflows.manage",
        "monitoring.use", "reporting.view", "dialer.manage",
        "account.settings", "plugins.manage", "recordings.manage", "media.manage",
        "contacts.manage",
        "dial.out_of_plan", "dial.special_numbers", "dial.any_hour", "callerid.choose",
        "callerid.local_presence",
    }
