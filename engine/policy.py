"""Destination policy: may this user call this destination at all?

* A destination outside the account's plan countries needs ``dial.out_of_plan``.
* A premium-rate or shared-cost number (as phonenumbers classes it) needs
  ``dial.special_numbers``.

Emergency destinations are never refused here (the engine does not call this for them).
"""

from __future__ import annotations

import msgspec

from callerid import AccountSnapshot, Destination, Permission, UserView
from callerid.geo import NumberKind

__all__ = ["SPECIAL_KINDS", "PolicyDenial", "check_destination"]

SPECIAL_KINDS = frozenset({NumberKind.PREMIUM_RATE, NumberKind.SHARED_COST})


class PolicyDenial(msgspec.Struct, frozen=True):
    permission: Permission
    detail: str


def check_destination(
    account: AccountSnapshot, user: UserView, dest: Destination
) -> PolicyDenial | None:
    """None when ``user`` may call ``dest``, else the missing permission and why."""
    held = user.permissions
    if dest.region not in account.plan_regions and Permission.DIAL_OUT_OF_PLAN not in held:
        where = dest.region if dest.region != "001" else "a non-geographic service"
        return PolicyDenial(
            Permission.DIAL_OUT_OF_PLAN,
            f"{dest.e164} is in {where}, outside the plan; calling it needs dial.out_of_plan",
        )
    if dest.kind in SPECIAL_KINDS and Permission.DIAL_SPECIAL_NUMBERS not in held:
        kind = dest.kind.replace("_", "-")
        return PolicyDenial(
            Permission.DIAL_SPECIAL_NUMBERS,
            f"{dest.e164} is a {kind} number; calling it needs dial.special_numbers",
        )
    return None
