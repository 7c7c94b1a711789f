"""A call's answer as the Redis store keeps it: compact msgpack in the call record (about 40
bytes for an allowed call, so the record stays one short string), read back into the
``Decision`` a retry, an end or the live calls see; and a request's fingerprint, short enough
to sit in the record (``lua/record.lua`` gives the record's layout)."""

from __future__ import annotations

import base64
import hashlib

import msgspec

from callerid import Attestation, CallSettings, Permission, Reason, Rule

from ...wire import Decision, rfc3339
from ..protocol import Ticket, channel_denial, dnc_denial, refusal_detail

__all__ = [
    "allowed_answer",
    "caller_and_number",
    "denial_answer",
    "fingerprint_of",
    "pick_tail",
    "stored_answer",
    "text",
]

_SETTINGS = tuple(f.name for f in msgspec.structs.fields(CallSettings))


class _Allowed(msgspec.Struct, array_like=True, gc=False):
    """An allowed answer as a call record keeps it: about 40 bytes."""

    rule: Rule
    caller_id: str | None
    to: str | None
    settings: int
    """``CallSettings`` as bits, in field order; -1 for none."""
    attestation: Attestation | None = None
    """None in records written before attestation was answered."""


class _Denied(msgspec.Struct, array_like=True, gc=False, omit_defaults=True):
    reason: Reason
    detail: str | None = None
    to: str | None = None
    permission: Permission | None = None
    choices: tuple[str, ...] | None = None


_allowed_encoder = msgspec.msgpack.Encoder()
_allowed_decoder = msgspec.msgpack.Decoder(_Allowed)
_denied_decoder = msgspec.msgpack.Decoder(_Denied)


def _settings_bits(settings: CallSettings | None) -> int:
    if settings is None:
        return -1
    return sum(1 << i for i, name in enumerate(_SETTINGS) if getattr(settings, name))


def _settings_from(bits: int) -> CallSettings | None:
    if bits < 0:
        return None
    return CallSettings(**{name: bool(bits >> i & 1) for i, name in enumerate(_SETTINGS)})


def stored_answer(decision: Decision) -> bytes:
    if decision.allowed:
        assert decision.rule is not None
        return _allowed_encoder.encode(_Allowed(
            rule=decision.rule, caller_id=decision.caller_id, to=decision.to,
            settings=_settings_bits(decision.settings), attestation=decision.attestation,
        ))
    assert decision.reason is not None
    return _allowed_encoder.encode(_Denied(
        reason=decision.reason, detail=decision.detail, to=decision.to,
        permission=decision.permission, choices=decision.choices,
    ))


def pick_tail(template: Decision) -> bytes:
    """An allowed answer as ``stored_answer`` keeps it, less its array header and its rule:
    what ADMIT appends to the rule a rotation chose (its caller ID goes in the record's
    head, so the stored one is None)."""
    assert template.rule is not None
    blob = stored_answer(msgspec.structs.replace(template, caller_id=None))
    head = b"\x95" + _allowed_encoder.encode(template.rule.value)
    assert blob.startswith(head) and len(template.rule.value) < 32  # a fixarray, a fixstr
    return blob[len(head):]


def allowed_answer(
    call_id: str, blob: bytes, expires: int, sticky: bytes, counted: bytes
) -> Decision:
    """An allowed call's answer from its record; an emergency call's (not ``counted``) holds
    no channel, so it shows no lease."""
    stored = _allowed_decoder.decode(blob)
    return Decision(
        allowed=True, call_id=call_id, caller_id=text(sticky) or stored.caller_id,
        rule=stored.rule, to=stored.to,
        lease_expires_at=rfc3339(int(expires)) if counted == b"1" else None,
        settings=_settings_from(stored.settings), attestation=stored.attestation,
    )


def caller_and_number(record: bytes) -> tuple[str | None, str | None, bool]:
    """The caller ID and the number of a call, and whether it is an incoming one, from its
    record (``lua/record.lua``)."""
    head, _, blob = record.partition(b"|")
    sticky = head.split(b" ")[3]
    stored = _allowed_decoder.decode(blob)
    return text(sticky) or stored.caller_id, stored.to, stored.rule is Rule.INBOUND


def denial_answer(call_id: str, user_id: str, entry: bytes) -> tuple[str, Decision]:
    """A remembered denial: (its fingerprint, the answer)."""
    head, _, blob = entry.partition(b"|")
    _, fingerprint, _, limits = head.decode().split(" ")
    if limits == "dnc":
        return fingerprint, dnc_denial(call_id, text(blob))
    if limits != "-":
        held, in_account, user_limit, cap = limits.split(",")
        detail = refusal_detail(
            user_id, int(held), int(in_account), int(user_limit), int(cap) if cap else None
        )
        return fingerprint, channel_denial(call_id, detail or "no channel free")
    stored = _denied_decoder.decode(blob)
    return fingerprint, Decision(
        allowed=False, call_id=call_id, reason=stored.reason, detail=stored.detail,
        to=stored.to, permission=stored.permission, choices=stored.choices,
    )


def fingerprint_of(ticket: Ticket) -> str:
    """The request's fingerprint, short (12 characters, no space) for the record."""
    digest = hashlib.blake2b(ticket.fingerprint.encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode()


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
