"""The decision API's wire structures (dialers are written against these names)."""

from __future__ import annotations

import functools
import time
from typing import Annotated, Literal

import msgspec

from callerid import Attestation, CallSettings, Outcome, Permission, Reason, Rule, TraceStep
from callerid.model import E164, Id

__all__ = [
    "CallId",
    "Decision",
    "DialRequest",
    "EndRequest",
    "EndResult",
    "HeartbeatRequest",
    "HeartbeatResult",
    "InboundAnswer",
    "InboundRequest",
    "Problem",
    "SenderRequest",
    "TextSender",
    "rfc3339",
]

CallId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$(?!\n)",
        description="Client call id (idempotency key): up to 128 of A-Z a-z 0-9 . _ : @ -",
    ),
]
Dialled = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^\s*\+?[0-9 ().\-/]*[0-9][0-9 ().\-/]*$(?!\n)",
        description="The destination as dialled: digits, an optional leading +, and the "
        "separators space ( ) . - /",
    ),
]


class DialRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    user: Id
    to: Dialled
    caller_id: E164 | None = None
    call_id: CallId | None = None


class SenderRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which number a text from ``user`` to ``to`` goes out from (``POST /v1/sms/sender``)."""

    user: Id
    to: Dialled
    sender: E164 | None = None
    """The number the user asks to text from (a user who may choose the caller ID)."""


class TextSender(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """The answer to a ``SenderRequest``: allowed with the ``sender`` and the rule that chose
    it, or denied with a reason (a call's reasons, but for ``channel_limit``)."""

    allowed: bool
    sender: str | None = None
    rule: Rule | None = None
    to: str | None = None
    reason: Reason | None = None
    detail: str | None = None
    permission: Permission | None = None
    choices: tuple[str, ...] | None = None
    callee_time: str | None = None
    next_allowed_at: str | None = None
    next_allowed_local: str | None = None
    """``outside_calling_hours``: as in a call's decision (texts keep calling hours too)."""


class InboundRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An incoming call to ``user`` takes one of their channels (``POST /v1/inbound``)."""

    user: Id
    caller: Dialled | None = msgspec.field(default=None, name="from")
    """The number calling in, as the PBX has it; absent when withheld."""
    call_id: CallId | None = None


class InboundAnswer(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Whether an incoming call got a channel: allowed with its lease, or ``channel_limit``
    (the PBX sends it to voicemail or the next agent)."""

    allowed: bool
    call_id: str
    direction: Literal["inbound"]
    caller: str | None = msgspec.field(default=None, name="from")
    """The number calling in, in E.164 when it is a valid one, else as given."""
    lease_expires_at: str | None = None
    reason: Reason | None = None
    detail: str | None = None


class EndRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    outcome: Outcome


class HeartbeatRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Decision(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    allowed: bool
    call_id: str
    caller_id: str | None = None
    rule: Rule | None = None
    to: str | None = None
    lease_expires_at: str | None = None
    settings: CallSettings | None = None
    attestation: Attestation | None = None
    """An allowed call's STIR/SHAKEN level for its caller ID (``A``/``B``), for the SBC."""
    reason: Reason | None = None
    detail: str | None = None
    permission: Permission | None = None
    choices: tuple[str, ...] | None = None
    callee_time: str | None = None
    """``outside_calling_hours``: the callee's local time now (ISO 8601 with its offset)."""
    next_allowed_at: str | None = None
    """``outside_calling_hours``: when the dial would next be allowed (UTC), if ever."""
    next_allowed_local: str | None = None
    """The same time in the callee's local time."""
    trace: tuple[TraceStep, ...] | None = None


class EndResult(msgspec.Struct, kw_only=True):
    call_id: str
    outcome: Outcome
    sticky_recorded: bool


class HeartbeatResult(msgspec.Struct, kw_only=True):
    call_id: str
    lease_expires_at: str


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem details body (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None


@functools.lru_cache(maxsize=4)
def _rfc3339_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def rfc3339(ms: int) -> str:
    """``ms`` since the epoch as an RFC 3339 UTC timestamp with milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return f"{_rfc3339_seconds(seconds)}.{millis:03d}Z"
