"""Permission names and the effective-permission rule.

Admin permissions come in three buckets (finance & billing, activity management, account
management); calling permissions are checked on every dial. The effective set of a user is:

* the account owner: every permission;
* a user in a department: the department's permissions, plus the user's extra permissions when
  their extra-permissions toggle is on;
* a user without a department (only possible in ``legacy`` mode): the user's own set.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

__all__ = [
    "ALL_PERMISSIONS",
    "BUCKETS",
    "Permission",
    "effective_permissions",
    "migrate_into_department",
]


class Permission(enum.StrEnum):
    # Finance & billing
    USAGE_VIEW = "usage.view"
    BILLING_SUBSCRIPTION = "billing.subscription"
    BILLING_TOPUP = "billing.topup"
    BILLING_PAYMENT_METHODS = "billing.payment_methods"
    # Activity management
    USERS_MANAGE = "users.manage"
    USERS_SETTINGS = "users.settings"
    NUMBERS_MANAGE = "numbers.manage"
    CALLFLOWS_MANAGE = "callflows.manage"
    MONITORING_USE = "monitoring.use"
    REPORTING_VIEW = "reporting.view"
    DIALER_MANAGE = "dialer.manage"
    # Account management
    ACCOUNT_SETTINGS = "account.settings"
    PLUGINS_MANAGE = "plugins.manage"
    RECORDINGS_MANAGE = "recordings.manage"
    MEDIA_MANAGE = "media.manage"
    CONTACTS_MANAGE = "contacts.manage"
    # Calling (checked at dial time)
    DIAL_OUT_OF_PLAN = "dial.out_of_plan"
    DIAL_SPECIAL_NUMBERS = "dial.special_numbers"
    DIAL_ANY_HOUR = "dial.any_hour"
    CALLERID_CHOOSE = "callerid.choose"
    CALLERID_LOCAL_PRESENCE = "callerid.local_presence"


BUCKETS: dict[str, frozenset[Permission]] = {
    "finance_billing": frozenset(
        {
            Permission.USAGE_VIEW,
            Permission.BILLING_SUBSCRIPTION,
            Permission.BILLING_TOPUP,
            Permission.BILLING_PAYMENT_METHODS,
        }
    ),
    "activity_management": frozenset(
        {
            Permission.USERS_MANAGE,
            Permission.USERS_SETTINGS,
            Permission.NUMBERS_MANAGE,
            Permission.CALLFLOWS_MANAGE,
            Permission.MONITORING_USE,
            Permission.REPORTING_VIEW,
            Permission.DIALER_MANAGE,
        }
    ),
    "account_management": frozenset(
        {
            Permission.ACCOUNT_SETTINGS,
            Permission.PLUGINS_MANAGE,
            Permission.RECORDINGS_MANAGE,
            Permission.MEDIA_MANAGE,
            Permission.CONTACTS_MANAGE,
        }
    ),
    "calling": frozenset(
        {
            Permission.DIAL_OUT_OF_PLAN,
            Permission.DIAL_SPECIAL_NUMBERS,
            Permission.DIAL_ANY_HOUR,
            Permission.CALLERID_CHOOSE,
            Permission.CALLERID_LOCAL_PRESENCE,
        }
    ),
}

ALL_PERMISSIONS: frozenset[Permission] = frozenset(Permission)


def effective_permissions(
    *,
    is_owner: bool,
    department_permissions: Iterable[Permission] | None,
    extra_enabled: bool,
    extra: Iterable[Permission],
    own: Iterable[Permission],
) -> frozenset[Permission]:
    """The permissions a user holds.

    ``department_permissions`` is None when the user is in no department (legacy mode), in
    which case ``own`` applies; otherwise ``own`` is ignored.
    """
    if is_owner:
        return ALL_PERMISSIONS
    if department_permissions is None:
        return frozenset(own)
    held = frozenset(department_permissions)
    if extra_enabled:
        held |= frozenset(extra)
    return held


def migrate_into_department(
    held: Iterable[Permission], department_permissions: Iterable[Permission]
) -> frozenset[Permission]:
    """Extra permissions a legacy user keeps when put into a department: what they held that
    the department does not grant (smrtPhone: "the user will retain any additional privileges")."""
    return frozenset(held) - frozenset(department_permissions)
