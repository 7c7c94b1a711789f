"""Named permission presets: the dashboard roles of Ringover (admin, supervisor, accountant,
technical), as sets of admin permissions. Applying one to a user or a department replaces its
admin permissions with the preset's and leaves its calling permissions as they are."""

from __future__ import annotations

import enum

from callerid import BUCKETS, Permission

__all__ = ["ADMIN_PERMISSIONS", "PRESETS", "Preset", "with_preset"]

ADMIN_PERMISSIONS: frozenset[Permission] = (
    BUCKETS["finance_billing"] | BUCKETS["activity_management"] | BUCKETS["account_management"]
)
P = Permission


class Preset(enum.StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    ACCOUNTANT = "accountant"
    TECHNICAL = "technical"
    NONE = "none"


PRESETS: dict[Preset, frozenset[Permission]] = {
    # Full access to everything an administrator manages.
    Preset.ADMIN: ADMIN_PERMISSIONS,
    # Watches the team: live activity, call logs, statistics, campaigns.
    Preset.SUPERVISOR: frozenset(
        {P.MONITORING_USE, P.USAGE_VIEW, P.REPORTING_VIEW, P.DIALER_MANAGE}
    ),
    # Credits and billing: top-ups, invoices, the subscription and how it is paid.
    Preset.ACCOUNTANT: frozenset(
        {P.BILLING_TOPUP, P.BILLING_SUBSCRIPTION, P.BILLING_PAYMENT_METHODS}
    ),
    # Configuration: users and groups, numbers, call flows (IVRs), integrations, audio,
    # contacts.
    Preset.TECHNICAL: frozenset(
        {P.USERS_MANAGE, P.NUMBERS_MANAGE, P.CALLFLOWS_MANAGE, P.PLUGINS_MANAGE,
         P.MEDIA_MANAGE, P.CONTACTS_MANAGE}
    ),
    Preset.NONE: frozenset(),
}


def with_preset(held: frozenset[Permission], preset: Preset) -> frozenset[Permission]:
    """``held`` with its admin permissions replaced by ``preset``'s."""
    return (held - ADMIN_PERMISSIONS) | PRESETS[preset]
