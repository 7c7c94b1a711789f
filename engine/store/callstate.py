"""A call's state as a store sees it when the call is ended or its lease extended, the error
each refused request gets, and the sticky pair a call records when it connects.

Theory of operation
-------------------
Each store finds a call's state its own way: the embedded store from the record it keeps in
memory, the Redis store from the reply code of ``lua/end.lua`` or ``lua/heartbeat.lua``, which
look at the record next to the data. What a state means for a request is decided here, once,
so both stores refuse the same requests with the same error, message and field:

============  ====================================  ==============================
state         end                                   heartbeat
============  ====================================  ==============================
missing       ``NotFound``                          ``NotFound``
denied        ``Conflict``: it holds no channel     ``Conflict``: it holds no channel
ended         the same outcome again is answered    ``Conflict``: it has ended
              as the first end was; another one
              is a ``Conflict`` on ``outcome``
emergency     ends                                  ``Conflict``: no lease to extend
expired       ends                                  ``Conflict``: dial again
live          ends                                  extends the lease
============  ====================================  ==============================

A call is in the first of these states that applies, in this order:

1. missing: no record kept for the call id (never dialled, or past its retention), or the
   record is another user's when the request names a user;
2. denied: the call id was denied, and the denial is remembered;
3. ended: an allowed call that has an outcome;
4. emergency: an allowed call that holds no channel, so has no lease;
5. expired: an allowed call whose lease ran out;
6. live: an allowed call holding its channel.

The Lua scripts check in the same order (``kept.lua`` for 1 and 2, then each script).
"""

from __future__ import annotations

import enum

import msgspec

from callerid import Outcome, Rule

from ..errors import Conflict, NotFound
from ..wire import Decision

__all__ = ["CallState", "CallStatus", "check_end", "check_heartbeat", "sticky_pair"]


class CallState(enum.StrEnum):
    """Where a call stands, as far as ending it or extending its lease goes."""

    MISSING = "missing"
    DENIED = "denied"
    ENDED = "ended"
    EMERGENCY = "emergency"
    EXPIRED = "expired"
    LIVE = "live"


class CallStatus(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A call's state and what the refusals of that state quote."""

    state: CallState
    denial: Decision | None = None
    """The remembered denial of a ``DENIED`` call (its reason is quoted); None otherwise."""
    outcome: Outcome | None = None
    """How an ``ENDED`` call ended; None otherwise."""

    def __post_init__(self) -> None:
        if (self.denial is not None) is not (self.state is CallState.DENIED):
            raise ValueError(f"a denial goes with the denied state, not with {self.state}")
        if (self.outcome is not None) is not (self.state is CallState.ENDED):
            raise ValueError(f"an outcome goes with the ended state, not with {self.state}")


def _refuse_unkept(call_id: str, status: CallStatus) -> None:
    """What end and heartbeat both answer for a call that is missing or was denied."""
    if status.state is CallState.MISSING:
        raise NotFound(f"no call {call_id!r} in this account", field="call_id")
    if status.denial is not None:
        raise Conflict(
            f"call {call_id!r} was denied ({status.denial.reason}); it holds no channel",
            field="call_id",
        )


def check_end(call_id: str, status: CallStatus, outcome: Outcome) -> None:
    """Raise the error that ending call ``call_id``, in ``status``, with ``outcome`` gets.

    Returns when the end may be answered: the call is emergency, expired or live (the store
    ends it), or it ended with ``outcome`` already (the store answers as it did the first
    time). Raises ``NotFound`` for a missing call, ``Conflict`` for a denied one or one that
    ended with another outcome."""
    _refuse_unkept(call_id, status)
    if status.outcome is not None and status.outcome is not outcome:
        raise Conflict(
            f"call {call_id!r} already ended as {status.outcome}, not {outcome}",
            field="outcome",
        )


def check_heartbeat(call_id: str, status: CallStatus) -> None:
    """Raise the error that extending the lease of call ``call_id``, in ``status``, gets.

    Returns only for a live call. Raises ``NotFound`` for a missing call, ``Conflict`` for
    every other state: denied, ended, emergency (it holds no channel, so no lease), expired
    (its channel may be taken by now: the client dials again)."""
    _refuse_unkept(call_id, status)
    match status.state:
        case CallState.ENDED:
            raise Conflict(f"call {call_id!r} has ended ({status.outcome})", field="call_id")
        case CallState.EMERGENCY:
            raise Conflict(
                f"call {call_id!r} is an emergency call: it holds no channel, "
                "so it has no lease to extend",
                field="call_id",
            )
        case CallState.EXPIRED:
            raise Conflict(
                f"the lease of call {call_id!r} expired; dial again for a new one",
                field="call_id",
            )


def sticky_pair(decision: Decision) -> tuple[str, str] | None:
    """(contact, caller ID) that ``decision`` records as the contact's sticky caller ID if
    its call connects; None when it records none: an emergency call, or an answer without a
    caller ID or without a contact."""
    if decision.rule is Rule.EMERGENCY or decision.caller_id is None or decision.to is None:
        return None
    return decision.to, decision.caller_id
