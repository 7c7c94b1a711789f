"""A compiled, immutable view of one account, built for the hot path.

``compile_account`` does once, per configuration version, everything a decision would
otherwise redo per dial: effective permissions, effective call settings (Pro features masked
on non-Pro accounts), each user's available caller-ID set (active numbers only, so a released
or retired number is never presented), the chain of default caller IDs, geo prefix tables,
the active numbers indexed by where they are (local presence), the resting ones and each
number's daily cap.

The input must already satisfy the account invariants (``engine.invariants``); compiling
does not re-check references.
"""

from __future__ import annotations

import msgspec

from .geo import GeoTable, compile_geo
from .hours import HoursPolicy, compile_hours
from .hours_us import STATES
from .local import LocalIndex, compile_local
from .model import (
    AccountConfig,
    AvailableCallerIds,
    CallingHours,
    CallSettings,
    NumberStatus,
    Reputation,
    SipCredential,
    User,
)
from .permissions import Permission, effective_permissions
from .rotation import Caps

__all__ = [
    "AccountSnapshot", "UserView", "compile_account", "effective_settings", "resting_at",
]


class UserView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    is_owner: bool
    department: str | None
    permissions: frozenset[Permission]
    settings: CallSettings
    """Effective call settings: the user's own or the account's, Pro features masked."""
    available: frozenset[str]
    available_sorted: tuple[str, ...]
    default_caller_id: str | None
    department_default: str | None
    geo: GeoTable | None
    """None when geo caller ID is off for this user (or the account is not Pro)."""
    local_presence: bool
    """Local presence applies: the user's setting is on and they hold its permission."""
    max_channels: int
    sip: SipCredential | None
    hours: HoursPolicy | None = None
    """The calling hours the user's dials keep (their department's, else the account's);
    None when there are none or the user holds ``dial.any_hour``."""


class AccountSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    version: int
    default_region: str
    plan_regions: frozenset[str]
    pro: bool
    account_default: str | None
    max_channels: int | None
    lease_ttl_ms: int
    sticky_ttl_ms: int
    users: dict[str, UserView]
    active_numbers: frozenset[str]
    local: LocalIndex
    """The active numbers by where they are, for local presence."""
    resting: dict[str, int]
    """Resting numbers, with when their rest ends (ms since the epoch)."""
    caps: Caps
    """Each number's daily cap."""
    time_zone: str
    """Where the account's day (for caps and usage) starts at midnight."""
    requested_over_cap: bool
    sms_numbers: frozenset[str]
    """The active numbers that can send text messages."""
    sms_sticky_shared: bool
    texting: dict[str, UserView] = {}
    """Each user as a sender of texts (``callerid.sms.texting``), made on first use."""
    sip_domain: str | None
    sip_users: dict[str, str]
    """User id by SIP username (as the user's credential spells it)."""


def effective_settings(account: AccountConfig, user: User) -> CallSettings:
    chosen = user.call_settings if user.call_settings is not None else account.call_settings
    if account.pro:
        return chosen
    return msgspec.structs.replace(chosen, geo_caller_id=False, pro_dialing=False, ai_tools=False)


def _compiled_hours(hours: CallingHours | None) -> HoursPolicy | None:
    if hours is None:
        return None
    return compile_hours(hours.windows, hours.regions, hours.holidays,
                         STATES if hours.state_rules else None)


def compile_account(account: AccountConfig, version: int) -> AccountSnapshot:
    active = frozenset(n.number for n in account.numbers if n.status == NumberStatus.ACTIVE
                       and n.reputation is not Reputation.RETIRED)
    resting = {n.number: int(n.resting_until.timestamp() * 1000) for n in account.numbers
               if n.number in active and n.resting_until is not None}
    pools: dict[str, set[str]] = {}
    for n in account.numbers:
        if n.department is not None and n.number in active:
            pools.setdefault(n.department, set()).add(n.number)
    departments = {d.id: d for d in account.departments}
    account_hours = _compiled_hours(account.calling_hours)
    hours_of = {d.id: _compiled_hours(d.calling_hours) if d.calling_hours else account_hours
                for d in account.departments}
    users: dict[str, UserView] = {}
    for user in account.users:
        is_owner = user.id == account.owner
        department = departments.get(user.department) if user.department else None
        if is_owner or user.available_caller_ids == AvailableCallerIds.ALL:
            available = active
        elif user.available_caller_ids == AvailableCallerIds.DEPARTMENT:
            available = frozenset(pools.get(user.department or "", ()))
        else:
            available = frozenset(user.custom_caller_ids) & active
        settings = effective_settings(account, user)
        permissions = effective_permissions(
            is_owner=is_owner,
            department_permissions=department.permissions if department else None,
            extra_enabled=user.extra_permissions_enabled,
            extra=user.extra_permissions,
            own=user.permissions,
        )
        users[user.id] = UserView(
            id=user.id,
            is_owner=is_owner,
            department=user.department,
            permissions=permissions,
            settings=settings,
            available=available,
            available_sorted=tuple(sorted(available)),
            default_caller_id=user.default_caller_id,
            department_default=department.default_caller_id if department else None,
            geo=compile_geo(user.geo) if settings.geo_caller_id else None,
            local_presence=settings.local_presence
            and Permission.CALLERID_LOCAL_PRESENCE in permissions,
            max_channels=user.max_channels,
            sip=user.sip,
            hours=None if Permission.DIAL_ANY_HOUR in permissions
            else hours_of.get(user.department or "", account_hours),
        )
    return AccountSnapshot(
        account_id=account.id,
        version=version,
        default_region=account.default_region,
        plan_regions=frozenset(account.plan_countries or (account.default_region,)),
        pro=account.pro,
        account_default=account.default_caller_id,
        max_channels=account.max_channels,
        lease_ttl_ms=account.lease_ttl_s * 1000,
        sticky_ttl_ms=account.sticky_ttl_days * 86_400_000,
        users=users,
        active_numbers=active,
        local=compile_local(active),
        resting=resting,
        caps=Caps(default=account.daily_cap,
                  overrides={n.number: n.daily_cap for n in account.numbers
                             if n.daily_cap is not None and n.number in active}),
        time_zone=account.time_zone,
        requested_over_cap=account.requested_over_cap,
        sms_numbers=frozenset(n.number for n in account.numbers if n.sms and n.number in active),
        sms_sticky_shared=account.sms_sticky_shared,
        sip_domain=account.sip_domain,
        sip_users={u.sip.username: u.id for u in account.users if u.sip is not None},
    )


_NONE: frozenset[str] = frozenset()


def resting_at(account: AccountSnapshot, now_ms: int) -> frozenset[str]:
    """The account's numbers resting at ``now_ms``: every automatic rule passes them over."""
    if not account.resting:
        return _NONE
    return frozenset(n for n, until in account.resting.items() if until > now_ms)
