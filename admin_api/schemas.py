"""The admin API's wire structures: what each request may carry and what each answer holds.

Requests forbid unknown fields, and no request Struct has a field for what a client must
never set through it (``id`` after creation, ``owner``, ``account``, a user's permissions
outside the permissions endpoint): mass assignment has nowhere to land. ``PATCH`` bodies
leave out what they do not change (``UNSET``); ``null`` clears a field that may be empty.
The OpenAPI document is generated from these Structs.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from callerid import (
    AutoRest,
    AvailableCallerIds,
    CallingHours,
    CallSettings,
    Department,
    DepartmentsMode,
    GeoConfig,
    Group,
    Permission,
    PhoneNumber,
    Reputation,
    User,
)
from callerid.model import (
    E164,
    Channels,
    DailyCap,
    Email,
    Id,
    Name,
    Region,
    SipDomain,
    SipUsername,
    SupervisedGroups,
    TimeZone,
)

from .presets import Preset

__all__ = [
    "AccountOut",
    "AccountPatch",
    "AuditEntryOut",
    "AuditQueryParams",
    "Bootstrap",
    "DepartmentCreate",
    "DepartmentOut",
    "DepartmentParams",
    "DepartmentPatch",
    "DepartmentPermissions",
    "GeoCopy",
    "GroupCreate",
    "GroupMembers",
    "GroupOut",
    "GroupParams",
    "GroupPatch",
    "ListParams",
    "LiveChannel",
    "LiveChannelParams",
    "MoveUser",
    "NumberCreate",
    "NumberOut",
    "NumberParams",
    "NumberPatch",
    "NumberUsage",
    "Page",
    "PresetApply",
    "PresetOut",
    "SipLoginOut",
    "TokenCreate",
    "TokenCreated",
    "TokenKind",
    "TokenOut",
    "TokenParams",
    "UsageOfDay",
    "UsageParams",
    "UserCreate",
    "UserOut",
    "UserParams",
    "UserPatch",
    "UserPermissions",
]

T = TypeVar("T")
Description = Annotated[str, msgspec.Meta(max_length=2000)]
Etag = Annotated[str, msgspec.Meta(description="The resource's version: send it as If-Match")]
Limit = Annotated[int, msgspec.Meta(ge=1, le=500, description="Items per page (default 50)")]
Cursor = Annotated[
    str, msgspec.Meta(max_length=200, description="Where the previous page ended")
]
TokenName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Permissions = Annotated[tuple[Permission, ...], msgspec.Meta(max_length=64)]
Search = Annotated[str, msgspec.Meta(max_length=200)]
Moment = Annotated[str, msgspec.Meta(pattern=r"^[0-9T:.+Z-]+$(?!\n)", extra_json_schema={
    "format": "date-time"})]
"""An RFC 3339 time with a time zone, ``T`` and ``Z`` in upper case: what the audit log reads
(``datetime.fromisoformat`` takes no lower case). The OpenAPI document states both halves;
the query's decoder checks the pattern (an empty value among what it refuses), the operation
the time itself."""


class _Request(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    pass


class _Out(msgspec.Struct, kw_only=True, frozen=True):
    pass


class Page(msgspec.Struct, Generic[T], kw_only=True, frozen=True):
    items: list[T]
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next page; null on the last."""


# -- the account -------------------------------------------------------------------------------


class AccountOut(_Out, frozen=True):
    id: Id
    name: Name
    owner: Id
    default_department: Id
    default_region: Region
    plan_countries: tuple[Region, ...]
    default_caller_id: E164 | None
    call_settings: CallSettings
    pro: bool
    sip_domain: SipDomain | None
    departments_mode: DepartmentsMode
    max_channels: Channels | None
    lease_ttl_s: int
    sip_lease_ttl_s: int
    """The lease of a call decided over SIP (a 302), at most ``lease_ttl_s``."""
    sticky_ttl_days: int
    time_zone: TimeZone
    """Where the account's day starts at midnight: daily caps and usage count by it."""
    daily_cap: DailyCap | None
    """Calls each number may place a day (a number's own ``daily_cap`` overrides it); null:
    no cap."""
    requested_over_cap: bool
    """Whether a user who may choose the caller ID may ask for a number over its cap."""
    sms_sticky_shared: bool
    """Whether texts and calls share each contact's sticky number."""
    auto_rest: AutoRest | None
    calling_hours: CallingHours | None
    """When callees may be called, in their local time; null: at any hour."""
    """When a number rests by itself (its answer rate over its last ended calls); null:
    never."""
    etag: Etag


class AccountPatch(_Request, frozen=True):
    name: Name | UnsetType = UNSET
    default_region: Region | UnsetType = UNSET
    plan_countries: Annotated[tuple[Region, ...], msgspec.Meta(max_length=300)] | UnsetType = UNSET
    default_caller_id: E164 | UnsetType | None = UNSET
    call_settings: CallSettings | UnsetType = UNSET
    pro: bool | UnsetType = UNSET
    sip_domain: SipDomain | UnsetType | None = UNSET
    """Cannot change while users have SIP credentials: their digests are made over it."""
    departments_mode: DepartmentsMode | UnsetType = UNSET
    """Only ``legacy`` -> ``enforced``: users without a department move into the default one,
    keeping what they held as extra permissions."""
    max_channels: Channels | UnsetType | None = UNSET
    lease_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=7 * 86400)] | UnsetType = UNSET
    sip_lease_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=7 * 86400)] | UnsetType = UNSET
    """The lease of a call decided over SIP (a 302); the shorter of it and ``lease_ttl_s``
    applies."""
    sticky_ttl_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] | UnsetType = UNSET
    time_zone: TimeZone | UnsetType = UNSET
    """An IANA time zone (``America/New_York``): the account's day, for daily caps and
    usage, starts at midnight there. One the time zone database does not name is a 409."""
    daily_cap: DailyCap | UnsetType | None = UNSET
    """Calls each number may place a day, unless the number has its own ``daily_cap``;
    null: no cap."""
    requested_over_cap: bool | UnsetType = UNSET
    """Let a user who may choose the caller ID ask for a number over its cap (else the
    dial is denied ``caller_id_capped``)."""
    sms_sticky_shared: bool | UnsetType = UNSET
    """Texts and calls share each contact's sticky number (else texts keep their own)."""
    auto_rest: AutoRest | UnsetType | None = UNSET
    calling_hours: CallingHours | UnsetType | None = UNSET
    """When callees may be called (replaced whole: what it leaves out takes its default);
    null: at any hour."""
    """Rest a number by itself when its answer rate over its last ``over_calls`` ended calls
    falls below ``min_answer_rate``, for ``rest_hours`` (replaced whole: a field left out
    takes its default); null: never."""


class Bootstrap(_Request, frozen=True):
    """What ``callgate bootstrap`` creates: an account and its owner."""

    account_id: Id
    account_name: Name
    owner_id: Id
    owner_email: Email
    default_region: Region = "US"


# -- users ---------------------------------------------------------------------------------------


class SipLoginOut(_Out, frozen=True):
    """A user's SIP login as anyone may see it: never the password or its digests."""

    domain: SipDomain
    username: SipUsername
    enabled: bool
    """VoIP on or off."""
    password_set_at: str
    """RFC 3339."""
    etag: Etag


class UserOut(User, frozen=True, kw_only=True):
    sip: SipLoginOut | None = None  # type: ignore[assignment]
    effective_permissions: tuple[Permission, ...]
    is_owner: bool
    etag: Etag


class UserCreate(_Request, frozen=True):
    id: Id
    email: Email
    name: Name = ""
    department: Id | None = None
    """The department to land in; in ``enforced`` mode the default one when absent."""
    default_caller_id: E164 | None = None
    available_caller_ids: AvailableCallerIds = AvailableCallerIds.ALL
    custom_caller_ids: tuple[E164, ...] = ()
    call_settings: CallSettings | None = None
    geo: GeoConfig = GeoConfig()
    max_channels: Channels = 1


class UserPatch(_Request, frozen=True):
    """A user's settings. Permissions change through ``/permissions``, the department through
    ``/move``, geo rules through ``/geo``."""

    email: Email | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    default_caller_id: E164 | UnsetType | None = UNSET
    available_caller_ids: AvailableCallerIds | UnsetType = UNSET
    custom_caller_ids: tuple[E164, ...] | UnsetType = UNSET
    call_settings: CallSettings | UnsetType | None = UNSET
    max_channels: Channels | UnsetType = UNSET
    supervised_groups: SupervisedGroups | UnsetType = UNSET
    """The groups whose live calls the user sees; ``[]`` for every user's, ``"nobody"`` for
    no one's."""


class UserPermissions(_Request, frozen=True):
    extra_permissions_enabled: bool
    extra_permissions: Permissions = ()
    permissions: Permissions = ()
    """The user's own set: only for a legacy user outside every department."""


class MoveUser(_Request, frozen=True):
    department: Id | None
    """null takes a legacy-mode user out of every department."""


class GeoCopy(_Request, frozen=True):
    from_user: Id
    """The user whose whole geo configuration replaces this user's."""


class PresetApply(_Request, frozen=True):
    preset: Preset


class PresetOut(_Out, frozen=True):
    name: Preset
    permissions: tuple[Permission, ...]


class UserParams(_Request, frozen=True):
    cursor: Cursor | None = None
    limit: Limit = 50
    department: Id | None = None
    q: Search | None = None
    """Part of the id, name or email (any case)."""


class ListParams(_Request, frozen=True):
    cursor: Cursor | None = None
    limit: Limit = 50


# -- departments ---------------------------------------------------------------------------------


class DepartmentOut(Department, frozen=True, kw_only=True):
    is_default: bool
    members: tuple[Id, ...]
    numbers: tuple[E164, ...]
    """Its dedicated caller-ID pool."""
    etag: Etag


class DepartmentCreate(_Request, frozen=True):
    id: Id
    name: Name
    description: Description = ""
    default_caller_id: E164 | None = None
    permissions: Permissions = ()
    calling_hours: CallingHours | None = None
    """Its own calling hours, in place of the account's; null: the account's."""
    template: Id | None = None
    """A department whose permissions the new one starts with (instead of ``permissions``)."""

    json_schema_extra: ClassVar[dict[str, Any]] = {"not": {
        "required": ["permissions", "template"],
        "properties": {"permissions": {"minItems": 1}, "template": {"type": "string"}},
    }}
    """``__post_init__``'s rule in the OpenAPI document: not both ``permissions`` (some) and
    a ``template``."""

    def __post_init__(self) -> None:
        # "field `...`" is how a validation error names its field (``context._invalid``).
        if self.template is not None and self.permissions:
            raise ValueError("field `template`: give `permissions` or a `template`, not both")


class DepartmentParams(ListParams, frozen=True):
    q: Search | None = None
    """Part of the id or name (any case)."""


class DepartmentPatch(_Request, frozen=True):
    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    default_caller_id: E164 | UnsetType | None = UNSET
    calling_hours: CallingHours | UnsetType | None = UNSET
    """Its own calling hours (replaced whole); null: the account's apply again."""


class DepartmentPermissions(_Request, frozen=True):
    permissions: Permissions


# -- numbers -------------------------------------------------------------------------------------


class NumberOut(PhoneNumber, frozen=True, kw_only=True):
    etag: Etag


class NumberCreate(_Request, frozen=True):
    number: E164
    name: Name = ""
    voice: bool = True
    sms: bool = False
    department: Id | None = None
    daily_cap: DailyCap | None = None
    """This number's calls a day, in place of the account's ``daily_cap``; null: the
    account's."""


class NumberPatch(_Request, frozen=True):
    name: Name | UnsetType = UNSET
    voice: bool | UnsetType = UNSET
    sms: bool | UnsetType = UNSET
    department: Id | UnsetType | None = UNSET
    """The department pool the number belongs to; null for none."""
    reputation: Reputation | UnsetType = UNSET
    """``resting`` (with ``resting_until``): automatic rules pass it over until then;
    ``retired``: never presented; ``active``: back in use."""
    resting_until: Annotated[datetime, msgspec.Meta(tz=True)] | UnsetType | None = UNSET
    daily_cap: DailyCap | UnsetType | None = UNSET
    """This number's calls a day, in place of the account's ``daily_cap``; null: the
    account's again."""


class NumberStatusFilter(enum.StrEnum):
    ACTIVE = "active"
    RELEASED = "released"


class NumberParams(_Request, frozen=True):
    cursor: Cursor | None = None
    limit: Limit = 50
    status: NumberStatusFilter | None = None
    department: Id | None = None


class UsageParams(_Request, frozen=True):
    day: Annotated[date | None, msgspec.Meta(
        description="The account's day (YYYY-MM-DD); today in its time zone when absent",
        examples=["2026-12-04"])] = None


class NumberUsage(_Out, frozen=True):
    number: E164
    name: Name
    calls: int
    """Calls it placed that day (each allowed dial counts when it is decided)."""
    daily_cap: int | None
    """Its cap: its own, else the account's; null: none."""
    remaining: int | None
    """Calls it may still place that day before automatic rules pass it over; null: no
    cap."""
    texts: int
    """Texts it sent that day (``POST /v1/sms/sender``), counted apart from calls."""
    texts_remaining: int | None
    """Texts it may still send that day under the same cap; null: no cap."""


class UsageOfDay(_Out, frozen=True):
    day: date
    time_zone: TimeZone
    """The account's time zone, in which ``day`` starts at midnight."""
    numbers: list[NumberUsage]
    """Every active number of the account, in order."""


# -- groups --------------------------------------------------------------------------------------


class GroupOut(Group, frozen=True, kw_only=True):
    etag: Etag


class GroupCreate(_Request, frozen=True):
    id: Id
    name: Name
    members: Annotated[tuple[Id, ...], msgspec.Meta(max_length=10_000)] = ()


class GroupPatch(_Request, frozen=True):
    name: Name | UnsetType = UNSET


class GroupMembers(_Request, frozen=True):
    members: Annotated[tuple[Id, ...], msgspec.Meta(max_length=10_000)]


class GroupParams(ListParams, frozen=True):
    q: Search | None = None
    """Part of the id or name (any case)."""
    member: Id | None = None
    """Only the groups this user is in."""


# -- tokens --------------------------------------------------------------------------------------


class TokenKind(enum.StrEnum):
    USER = "user"
    """Acts as the user who created it, with that user's permissions, on both APIs."""
    SERVICE = "service"
    """For a dialer or a PBX: the decision API only, dialling as any user of the account."""


class TokenOut(_Out, frozen=True):
    id: str
    name: str
    kind: TokenKind
    user: Id | None
    created_at: str
    expires_at: str | None
    """When the token stops working; null: never."""
    last_used_at: str | None
    """About when it was last used (to the minute: written at most once a minute); null:
    not since it was created."""


class TokenCreated(TokenOut, frozen=True):
    token: str
    """The token itself: shown this once, stored only as a hash."""


class TokenCreate(_Request, frozen=True):
    name: TokenName
    kind: TokenKind = TokenKind.USER
    expires_at: Annotated[
        datetime,
        msgspec.Meta(tz=True, description="When the token stops working (RFC 3339, with a "
                     "time zone; in the future); none: never"),
    ] | None = None


class TokenParams(ListParams, frozen=True):
    kind: TokenKind | None = None
    user: Id | None = None
    """Only this user's tokens."""


# -- audit log and live channels -----------------------------------------------------------------


class AuditEntryOut(_Out, frozen=True):
    id: str
    at: str
    actor: str
    action: str
    target: str
    before: Any = None
    after: Any = None


class AuditQueryParams(_Request, frozen=True):
    cursor: Cursor | None = None
    limit: Limit = 50
    actor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    """``user:<id>`` or ``cli``."""
    target: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    """``<resource>:<id>``, e.g. ``user:ana``."""
    since: Annotated[Moment, msgspec.Meta(description="RFC 3339 time, inclusive")] | None = None
    until: Annotated[Moment, msgspec.Meta(description="RFC 3339 time, exclusive")] | None = None


class LiveChannelParams(ListParams, frozen=True):
    user: Id | None = None
    """Only this user's calls."""
    group: Id | None = None
    """Only the calls of this group's members."""


class LiveChannel(_Out, frozen=True):
    call_id: str
    user: Id
    direction: Literal["outbound", "inbound"]
    to: str | None
    """The number called (outbound)."""
    caller: str | None = msgspec.field(name="from")
    """The number calling in (inbound), when it was given."""
    caller_id: str | None
    lease_expires_at: str
