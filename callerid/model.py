"""The domain model: an account's whole configuration as immutable msgspec Structs.

``AccountConfig`` is at once the stored configuration, the ``callgate import`` file and the
source of its JSON Schema (``callgate schema``). Every Struct forbids unknown fields, so a typo
in a file is an error rather than a silently ignored setting, and omits defaults when encoded,
so an export reads like a hand-written file.

The vocabularies the rest of the system compares against (rules, reasons, outcomes, modes)
are enums defined here, once.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Annotated, Final, Literal

import msgspec

from .hours import HoursError, parse_hours
from .permissions import Permission

__all__ = [
    "E164",
    "NOBODY",
    "AccountConfig",
    "AreaCodeRule",
    "AutoRest",
    "AvailableCallerIds",
    "CallSettings",
    "CountryRule",
    "Department",
    "DepartmentsMode",
    "Email",
    "GeoConfig",
    "Group",
    "Id",
    "NumberStatus",
    "Outcome",
    "PhoneNumber",
    "Reason",
    "Rule",
    "SipCredential",
    "SipDomain",
    "SipUsername",
    "SupervisedGroups",
    "User",
]

E164 = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\+[1-9][0-9]{6,14}$(?!\n)",
        description="A phone number in E.164 form, e.g. +12125550100",
        examples=["+12125550100"],
    ),
]
Id = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$(?!\n)",
        description="An identifier: letters, digits, '.', '_', '@', '-'; up to 128 characters",
    ),
]
Region = Annotated[
    str,
    msgspec.Meta(pattern=r"^[A-Z]{2}$(?!\n)", description="ISO 3166-1 alpha-2 region, e.g. US"),
]
AreaCode = Annotated[
    str,
    msgspec.Meta(pattern=r"^[0-9]{1,8}$(?!\n)", description="Leading digits of a national number"),
]
CallingCode = Annotated[int, msgspec.Meta(ge=1, le=999, description="Country calling code")]
Channels = Annotated[int, msgspec.Meta(ge=0, le=100_000)]
DailyCap = Annotated[int, msgspec.Meta(
    ge=0, le=10_000_000,
    description="Outbound calls a number may place in a day (the account's local day)")]
TimeZone = Annotated[str, msgspec.Meta(
    pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$(?!\n)", max_length=64,
    description="An IANA time zone, e.g. America/New_York", examples=["America/New_York"])]
SipDomain = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$(?!\n)",
        description="The account's SIP domain (lower case), the realm of its users' SIP "
        "credentials, e.g. acme.sip.example",
        examples=["acme.sip.example"],
    ),
]
SipUsername = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$(?!\n)",
        description="A SIP username, unique in the account's SIP domain (ignoring case): "
        "letters, digits, '.', '_', '-'; up to 64 characters",
        examples=["ana.desk"],
    ),
]
Md5Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$(?!\n)")]
Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$(?!\n)")]
Name = Annotated[str, msgspec.Meta(max_length=200)]
_NOT_AT_OR_SPACE = (
    r"[^@\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)
"""Neither ``@`` nor white space, the white space spelled out: ``\\s`` means one set to
Python, which checks what the server decodes, and another to the ECMA regex of a JSON Schema,
which clients check with (U+001C to U+001F and U+0085 are white space to Python only, U+FEFF
to ECMA only). The set is Python's, so every email accepted before still is."""
Email = Annotated[
    str,
    msgspec.Meta(pattern=f"^{_NOT_AT_OR_SPACE}+@{_NOT_AT_OR_SPACE}+$(?!\\n)", max_length=254),
]
NOBODY: Final = "nobody"
"""``User.supervised_groups`` of a user who sees no one's live calls."""
SupervisedGroups = tuple[Id, ...] | Literal["nobody"]


class DepartmentsMode(enum.StrEnum):
    LEGACY = "legacy"
    ENFORCED = "enforced"


class AvailableCallerIds(enum.StrEnum):
    ALL = "all"
    DEPARTMENT = "department"
    CUSTOM = "custom"


class NumberStatus(enum.StrEnum):
    ACTIVE = "active"
    RELEASED = "released"


class Reputation(enum.StrEnum):
    """How a number stands with the carriers' spam filters, as the account manages it."""

    ACTIVE = "active"
    RESTING = "resting"
    """Passed over by every automatic rule until its ``resting_until``; a user who may
    choose the caller ID can still ask for it."""
    RETIRED = "retired"
    """Never presented, though still the account's (no other account can take it)."""


class Rule(enum.StrEnum):
    """Which step chose the caller ID."""

    REQUESTED = "requested"
    STICKY = "sticky"
    GEO_AREA_CODE = "geo_area_code"
    GEO_COUNTRY = "geo_country"
    GEO_DEFAULT = "geo_default"
    USER_DEFAULT = "user_default"
    DEPARTMENT_DEFAULT = "department_default"
    ACCOUNT_DEFAULT = "account_default"
    EMERGENCY = "emergency"
    LOCAL_PRESENCE = "local_presence"
    INBOUND = "inbound"
    """Not a caller ID: an incoming call's channel (``POST /v1/inbound``)."""


class Attestation(enum.StrEnum):
    """How far the account vouches for an allowed call's caller ID, the STIR/SHAKEN levels an
    SBC signs with: ``A`` (full) for a number of the account in the user's available set,
    ``B`` (partial) for one the account holds that the user is not assigned to (an emergency
    call's default, say)."""

    FULL = "A"
    PARTIAL = "B"


class Reason(enum.StrEnum):
    """Why a call was denied. New reasons may be added; these are never renamed."""

    INVALID_NUMBER = "invalid_number"
    PERMISSION_DENIED = "permission_denied"
    CALLER_ID_NOT_ALLOWED = "caller_id_not_allowed"
    NO_CALLER_ID = "no_caller_id"
    CHANNEL_LIMIT = "channel_limit"
    CALLER_ID_CAPPED = "caller_id_capped"
    OUTSIDE_CALLING_HOURS = "outside_calling_hours"
    DO_NOT_CALL = "do_not_call"
    STORE_UNAVAILABLE = "store_unavailable"


class Outcome(enum.StrEnum):
    """How a call ended. Connected outcomes (answered, voicemail) record the sticky caller ID."""

    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def connected(self) -> bool:
        return self in (Outcome.ANSWERED, Outcome.VOICEMAIL)


class _Config(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    pass


class CallSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Per-user call settings (or the account's defaults). Pro features apply only on Pro
    accounts. Encoded whole (no omitted defaults): dialers read every field."""

    geo_caller_id: bool = False
    pro_dialing: bool = False
    sticky_caller_id: bool = False
    show_call_statuses: bool = True
    ai_tools: bool = False
    local_presence: bool = False
    """Present a number near the callee (same area code, else state or province, else
    country) when no requested, sticky or geo-rule caller ID applies; needs the
    ``callerid.local_presence`` permission."""


class AreaCodeRule(_Config, frozen=True):
    """Calls to any of ``area_codes`` (leading digits of the national number, in the country
    with ``country_code``) go out from ``number``. The longest matching prefix wins."""

    number: E164
    area_codes: Annotated[tuple[AreaCode, ...], msgspec.Meta(min_length=1)]
    country_code: CallingCode = 1


class CountryRule(_Config, frozen=True):
    """Calls to a country go out from ``number``. Name the country by ISO ``region`` (which
    tells Canada from the US) or by ``calling_code`` (every region sharing it)."""

    number: E164
    region: Region | None = None
    calling_code: CallingCode | None = None

    def __post_init__(self) -> None:
        if (self.region is None) == (self.calling_code is None):
            raise ValueError("a country rule names exactly one of `region` or `calling_code`")


_ONE_COUNTRY = msgspec.Meta(extra_json_schema={"oneOf": [
    {"required": ["region"], "properties": {"region": {"type": "string"}}},
    {"required": ["calling_code"], "properties": {"calling_code": {"type": "integer"}}},
]})
"""What ``CountryRule.__post_init__`` checks, in its JSON Schema: exactly one of ``region``
and ``calling_code`` is given, and not null."""


class GeoConfig(_Config, frozen=True):
    default: E164 | None = None
    area_codes: tuple[AreaCodeRule, ...] = ()
    countries: tuple[Annotated[CountryRule, _ONE_COUNTRY], ...] = ()


class PhoneNumber(_Config, frozen=True):
    number: E164
    name: Name = ""
    voice: bool = True
    sms: bool = False
    status: NumberStatus = NumberStatus.ACTIVE
    department: Id | None = None
    """The department whose dedicated caller-ID pool holds this number, if any."""
    reputation: Reputation = Reputation.ACTIVE
    resting_until: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    """When a resting number's rest ends (with a time zone); set for ``resting`` only."""
    daily_cap: DailyCap | None = None
    """This number's own cap on calls a day, in place of the account's ``daily_cap``."""

    def __post_init__(self) -> None:
        if (self.reputation is Reputation.RESTING) != (self.resting_until is not None):
            raise ValueError("a resting number has a `resting_until`, and only a resting one")


_DAY = "(mon|tue|wed|thu|fri|sat|sun)"
_GROUP = (f"{_DAY}(-{_DAY})? ([01][0-9]|2[0-3]):[0-5][0-9]-"
          "(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)")
HoursSpec = Annotated[str, msgspec.Meta(
    max_length=500, examples=["mon-fri 09:00-20:00, sat 10:00-17:00"],
    # The grammar, for the document; CallingHours checks it itself, to say what is wrong.
    extra_json_schema={"pattern": f"^({_GROUP}(, *{_GROUP})*)?$(?!\\n)"},
    description="Calling windows by weekday in the callee's local time: comma-separated "
    "groups of a day or range of days (mon..sun) and HH:MM-HH:MM; a day no group names has "
    "no calling")]
RegionKey = Annotated[str, msgspec.Meta(
    pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$(?!\n)", examples=["US-FL", "GB"],
    description="A state or province (ISO 3166-2, US-FL) or a country (ISO 3166-1, GB)")]


class CallingHours(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """When callees may be called, in their own local time (``callerid.hours``). A number
    whose possible time zones disagree is judged by the most restrictive; emergency calls
    are never held back; a user with ``dial.any_hour`` is not bound by them."""

    # Encoded whole (no omitted defaults, unlike _Config): every setting shows.

    windows: HoursSpec = "mon-sun 08:00-21:00"
    """Everywhere, unless ``regions`` names the callee's state, province or country. The
    default is the US federal rule (47 CFR 64.1200(c)(1))."""
    regions: dict[RegionKey, HoursSpec] = {}
    """Windows in place of ``windows`` for callees there (a state before its country)."""
    state_rules: bool = True
    """Narrow ``windows`` further in each US state whose law is narrower than the federal
    rule, from the table callgate ships (``callerid.hours_us``)."""
    holidays: tuple[date, ...] = ()
    """Dates with no calling at all (the callee's local date)."""

    def __post_init__(self) -> None:
        specs = [("windows", self.windows), *((f"regions.{k}", v) for k, v in self.regions.items())]
        for where, spec in specs:
            try:
                parse_hours(spec)
            except HoursError as exc:
                raise ValueError(f"{where}: {exc}") from None


class Department(_Config, frozen=True):
    id: Id
    name: Name
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    permissions: tuple[Permission, ...] = ()
    default_caller_id: E164 | None = None
    calling_hours: CallingHours | None = None
    """The department's own calling hours, in place of the account's."""


class SipCredential(_Config, frozen=True):
    """A user's SIP login in the account's SIP domain. Only digests are kept (RFC 7616
    section 3.4.2: HA1 = H(username ":" realm ":" password), the realm being the SIP
    domain), never the password; so the domain cannot change while credentials exist."""

    username: SipUsername
    ha1_md5: Md5Hex
    ha1_sha256: Sha256Hex
    enabled: bool = True
    """VoIP on or off: off refuses every SIP request of the user, credentials kept."""
    password_set_ms: Annotated[int, msgspec.Meta(ge=0)] = 0
    """When the password was last set (ms since the epoch)."""


class User(_Config, frozen=True):
    id: Id
    email: Email
    name: Name = ""
    department: Id | None = None
    permissions: tuple[Permission, ...] = ()
    """The user's own permissions; they apply only to a legacy user outside any department."""
    extra_permissions_enabled: bool = False
    extra_permissions: tuple[Permission, ...] = ()
    default_caller_id: E164 | None = None
    available_caller_ids: AvailableCallerIds = AvailableCallerIds.ALL
    custom_caller_ids: tuple[E164, ...] = ()
    call_settings: CallSettings | None = None
    """Custom call settings; absent means the account's defaults."""
    geo: GeoConfig = GeoConfig()
    max_channels: Channels = 1
    supervised_groups: SupervisedGroups = ()
    """Groups whose live calls this user may see. Empty (or absent) means every user's, as
    far as the user's permissions go; ``"nobody"`` means no one's: what a limited view
    becomes when every group in it is deleted (it must not widen to everyone)."""
    sip: SipCredential | None = None
    """SIP credentials for softphones and desk phones, if the user has any."""

    @property
    def supervision(self) -> tuple[str, ...] | None:
        """The groups this user's view of live calls is limited to (possibly none); None
        when it is not limited to groups."""
        if isinstance(self.supervised_groups, str):  # NOBODY, the only string it may be
            return ()
        return self.supervised_groups or None


class Group(_Config, frozen=True):
    id: Id
    name: Name
    members: tuple[Id, ...] = ()


class AutoRest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """When a number rests by itself: once the last ``over_calls`` calls that went out from
    it and ended have connected (answered or voicemail) at a rate below
    ``min_answer_rate``, it rests for ``rest_hours``, as if an administrator had rested it
    (the audit log names the actor ``system``), and its count starts afresh."""

    # Encoded whole (no omitted defaults, unlike _Config): a file or an answer shows every
    # setting. "Connected" is Outcome.connected.

    min_answer_rate: Annotated[float, msgspec.Meta(
        ge=0, le=1, description="The lowest share of connected calls (0 to 1, e.g. 0.15) a "
        "number may have over its last `over_calls` ended calls before it rests")]
    over_calls: Annotated[int, msgspec.Meta(
        ge=5, le=1000, description="How many of a number's last ended calls the rate is "
        "taken over; fewer never rest it")] = 50
    rest_hours: Annotated[int, msgspec.Meta(
        ge=1, le=720, description="How long an automatic rest lasts")] = 24


class AccountConfig(_Config, frozen=True):
    """One account (tenant) and everything in it."""

    id: Id
    name: Name
    owner: Id
    default_department: Id
    default_region: Region = "US"
    plan_countries: tuple[Region, ...] = ()
    """Destinations included in the plan; empty means the default region only."""
    default_caller_id: E164 | None = None
    call_settings: CallSettings = CallSettings()
    pro: bool = False
    sip_domain: SipDomain | None = None
    departments_mode: DepartmentsMode = DepartmentsMode.ENFORCED
    max_channels: Channels | None = None
    """The plan's cap on concurrent calls across the account; absent means no cap."""
    lease_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=7 * 86400)] = 4 * 3600
    """The longest call allowed without a heartbeat: a lease nobody ends expires after this."""
    sip_lease_ttl_s: Annotated[int, msgspec.Meta(ge=1, le=7 * 86400)] = 120
    """The lease of a call decided by the SIP front end (a 302): a phone that follows the
    redirect never reports the end, so its channel comes back this soon unless a PBX
    heartbeats the call (a heartbeat extends it by ``lease_ttl_s``). Never longer than
    ``lease_ttl_s``: the shorter of the two applies."""
    sticky_ttl_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] = 180
    """How long a contact's sticky caller ID is kept after its last connected call."""
    time_zone: TimeZone = "UTC"
    """The account's time zone: its day, for daily caps and usage, starts at midnight there."""
    daily_cap: DailyCap | None = None
    """Calls each number may place a day (a number's own ``daily_cap`` overrides it); absent
    means no cap. A capped number is passed over by every rule but a requested caller ID."""
    requested_over_cap: bool = False
    """Let a user who may choose the caller ID ask for a number over its cap (else the dial
    is denied ``caller_id_capped``)."""
    calling_hours: CallingHours | None = None
    """When callees may be called (their local time); absent: at any hour."""
    auto_rest: AutoRest | None = None
    """Rest a number automatically when too few of its recent calls connect; absent: never
    (numbers rest only when an administrator says so)."""
    sms_sticky_shared: bool = False
    """Texts and calls share each contact's sticky number: a text goes out from the number
    the contact last connected with on a call, and a later call from the number last texted
    from. Off: texts keep a sticky number per contact of their own."""
    users: tuple[User, ...] = ()
    departments: tuple[Department, ...] = ()
    numbers: tuple[PhoneNumber, ...] = ()
    groups: tuple[Group, ...] = ()
