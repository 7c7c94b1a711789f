"""A call after its dial on Redis: ending it, keeping its lease alive, and the reads of what
is held (``peek`` for an explanation, the live calls of an account).

End, heartbeat and peek each are one script (``lua/end.lua``, ``lua/heartbeat.lua``,
``lua/peek.lua``) sent on the dial connections under the dial's deadline, but past the
admission queue: they give channels back or read, and never take one. Each answers with a
code; the codes that stand for a call's state go through ``CallStatus``
(``engine/store/callstate.py``), the rules every store shares. The live calls are read a
page at a time off the hot path (``lua/live.lua``), with one ``MGET`` of their records.

``LifecycleCommands`` is a part of ``RedisStore`` (the store inherits it);
``part.StorePart``, the base of every part, declares what it uses of the store.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from callerid import Outcome

from ..callstate import CallState, CallStatus, check_end, check_heartbeat
from ..protocol import AnswerWindow, Ended, LiveCall, Peek, Ticket
from . import scripts as S
from .answers import allowed_answer, caller_and_number, denial_answer, fingerprint_of, text
from .part import StorePart

__all__ = ["LifecycleCommands"]

LIVE_PAGE = 200
LIVE_MAX = 10_000


class LifecycleCommands(StorePart):
    """Ending calls, heartbeats, and reading the calls in progress."""

    # -- what this needs of the store --------------------------------------------------------

    _leases: dict[str, int]

    @staticmethod
    @abstractmethod
    def _check_fingerprint(call_id: str, fingerprint: str, stored: str) -> None: ...

    async def end(
        self, account_id: str, call_id: str, outcome: Outcome, user_id: str | None = None,
        window: AnswerWindow | None = None,
    ) -> Ended:
        account = self._account_keys(account_id)
        reply = await self._lifecycle(
            S.END,
            S.EndKeys(account.call(call_id), account.denied(call_id), account.leases,
                      account.counts, account.sticky, account.sticky_expiry,
                      account.answers if window is not None else None),
            S.EndArgs(self._skew_ms(), call_id, outcome.value,
                      "1" if outcome.connected else "0", user_id or "",
                      f"{window.calls} {window.least}" if window is not None else None),
        )
        code = reply[0]
        if code == S.EndCode.OK:
            self._leases[account_id] = int(reply[2])
            return Ended(call_id=call_id, outcome=outcome,
                         sticky_recorded=bool(reply[1]) and outcome.connected,
                         number=text(reply[3]) or None, rest_due=bool(reply[4]))
        check_end(call_id, self._status(call_id, self._END_STATES[code], reply), outcome)
        # ended with this outcome already: the same answer again, and nothing counted
        return Ended(call_id=call_id, outcome=outcome,
                     sticky_recorded=bool(reply[2]) and outcome.connected)

    async def heartbeat(
        self, account_id: str, call_id: str, ttl_ms: int, user_id: str | None = None
    ) -> int:
        account = self._account_keys(account_id)
        reply = await self._lifecycle(
            S.HEARTBEAT,
            S.HeartbeatKeys(account.call(call_id), account.denied(call_id), account.leases),
            S.HeartbeatArgs(self._skew_ms(), call_id, ttl_ms, user_id or ""),
        )
        check_heartbeat(call_id, self._status(call_id, self._HEARTBEAT_STATES[reply[0]], reply))
        return int(reply[1])  # the new lease expiry: the call was live

    _END_STATES: ClassVar[Mapping[S.EndCode, CallState]] = {
        S.EndCode.MISSING: CallState.MISSING,
        S.EndCode.DENIED: CallState.DENIED,
        S.EndCode.ENDED: CallState.ENDED,
    }
    """The states END answers for without ending anything (OK: it ended the call)."""
    _HEARTBEAT_STATES: ClassVar[Mapping[S.HeartbeatCode, CallState]] = {
        S.HeartbeatCode.MISSING: CallState.MISSING,
        S.HeartbeatCode.DENIED: CallState.DENIED,
        S.HeartbeatCode.ENDED: CallState.ENDED,
        S.HeartbeatCode.EMERGENCY: CallState.EMERGENCY,
        S.HeartbeatCode.EXPIRED: CallState.EXPIRED,
        S.HeartbeatCode.OK: CallState.LIVE,
    }
    """The state each HEARTBEAT reply stands for (OK: it was live, and is extended)."""

    @staticmethod
    def _status(call_id: str, state: CallState, reply: Sequence[Any]) -> CallStatus:
        """``state`` with what a lifecycle script's ``reply`` says of it: the remembered
        denial of a denied call, the outcome of an ended one."""
        if state is CallState.DENIED:
            return CallStatus(state=state, denial=denial_answer(call_id, "", reply[1])[1])
        if state is CallState.ENDED:
            return CallStatus(state=state, outcome=Outcome(text(reply[1])))
        return CallStatus(state=state)

    async def peek(self, ticket: Ticket) -> Peek:
        account = self._account_keys(ticket.account_id)
        call_id = ticket.call_id
        reply = await self._lifecycle(
            S.PEEK,
            S.PeekKeys(account.call(call_id), account.denied(call_id), account.leases,
                       account.counts, account.sticky),
            S.PeekArgs(self._skew_ms(), "1" if ticket.remember else "0", ticket.user_id,
                       ticket.contact or ""),
        )
        held, in_account, sticky, kind = reply[:4]
        known = None
        fingerprint = fingerprint_of(ticket)
        if kind == 1:
            stored, blob, expires, taken, counted = reply[4:]
            self._check_fingerprint(call_id, fingerprint, text(stored))
            known = allowed_answer(call_id, blob, expires, taken, counted)
        elif kind == 2:
            stored_fingerprint, known = denial_answer(call_id, ticket.user_id, reply[4])
            self._check_fingerprint(call_id, fingerprint, stored_fingerprint)
        return Peek(known=known, sticky=text(sticky) or None, user_leases=int(held),
                    account_leases=int(in_account))

    async def live_calls(self, account_id: str) -> list[LiveCall]:
        account = self._account_keys(account_id)
        live: list[LiveCall] = []
        after, skip = "", 0
        while len(live) < LIVE_MAX:
            page = await self._script(
                S.LIVE, S.LiveKeys(account.leases),
                S.LiveArgs(self._skew_ms(), after, skip, LIVE_PAGE),
            )
            if not page:
                break
            held = [(text(page[i]).partition("|"), int(float(page[i + 1])))
                    for i in range(0, len(page), 2)]
            keys = [account.call(call_id) for (_, _, call_id), _ in held]
            records = await self._command(keys[0], "MGET", *keys)
            for ((user, _, call_id), expires), record in zip(held, records, strict=True):
                caller_id, to, inbound = (caller_and_number(record) if record
                                          else (None, None, False))
                live.append(LiveCall(call_id=call_id, user_id=user, to=to, caller_id=caller_id,
                                     lease_expires_ms=expires, inbound=inbound))
            if len(page) < 2 * LIVE_PAGE:
                break
            last = text(page[-1])
            ties = sum(1 for _, expires in held if expires == held[-1][1])
            skip = skip + ties if last == after else ties
            after = last
        return sorted(live, key=lambda c: (c.lease_expires_ms, c.call_id))

    async def sweep(self) -> int:
        """Nothing to do: Redis expires records; dials give expired leases back."""
        return 0
