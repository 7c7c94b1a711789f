"""Text messages on Redis: a text's sender picked, counted and made the contact's sticky
number in one script call (``lua/send_text.lua``), and the texts each number sent on a day.

A text takes no channel and leaves no record, so there is nothing to give back: the script
carries a deadline and does nothing once past it, so a text answered ``store_unavailable``
because Redis was slow is not counted when Redis gets to it later. (One whose answer is lost
after the script ran, a connection cut in that instant, stays counted: a cap errs by a text
towards fewer, never more.)

``TextCommands`` is a part of ``RedisStore`` (the store inherits it);
``part.StorePart``, the base of every part, declares what it uses of the store.
"""

from __future__ import annotations

import time

import msgspec

from callerid import Rule

from ...errors import StoreUnavailable
from ...wire import Decision
from ..dnc import number_key, redis_bucket
from ..protocol import Plan, TextTicket, dnc_denial
from . import scripts as S
from .answers import text
from .connection import Unreachable
from .part import StorePart

__all__ = ["TextCommands"]


class TextCommands(StorePart):
    """Picking a text's sender, and the texts each number sent."""

    # -- texts -------------------------------------------------------------------------------

    async def send_text(self, ticket: TextTicket, plan: Plan) -> Decision:
        account = self._account_keys(ticket.account_id)
        dnc = ticket.dnc
        keys = S.TextKeys(account.texts(ticket.day), account.sticky, account.sticky_expiry,
                          account.dnc(redis_bucket(number_key(dnc))[0]) if dnc else None)
        try:
            node = self.topology.node_for(keys.texts)
        except Unreachable as exc:
            raise self._unavailable(exc, self._deadline_s) from None
        rotation, caps = plan.rotation, plan.caps
        fallback = rotation.exhausted if rotation is not None else plan.decision
        reads_sticky = plan.sticky is not None and bool(plan.sticky_ids)
        reply = await self._lifecycle(S.SEND_TEXT, keys, S.TextArgs(
            skew_ms=self._skew_ms(),
            deadline_ms=int((time.monotonic() + self._deadline_s) * 1000 + node.offset_ms
                            + self._skew_ms()),
            contact=ticket.contact,
            sticky_ids=self._id_list(plan.sticky_ids) if reads_sticky else "",
            sticky_ttl_ms=ticket.sticky_ttl_ms,
            cap="" if caps.default is None else caps.default,
            caps="".join(f",{n}={c}" for n, c in caps.overrides.items()) + ",",
            steps="".join(f"{rule} {' '.join(numbers)};" for rule, numbers in rotation.steps)
            if rotation is not None else "",
            sender=(fallback.caller_id or "") if fallback.allowed else "",
            dnc=dnc,
        ))
        code = reply[0]
        if code == S.TextCode.LATE:
            raise StoreUnavailable(
                f"Redis took the text past its {round(self._deadline_s * 1000)} ms deadline; "
                "it was not counted")
        if code == S.TextCode.NONE:
            return fallback
        if code == S.TextCode.DO_NOT_CALL:
            assert dnc is not None
            return dnc_denial("", dnc)
        rule, sender = text(reply[1]), text(reply[2])
        if rule == Rule.STICKY:
            assert plan.sticky is not None
            return msgspec.structs.replace(plan.sticky, caller_id=sender)
        if rule:
            assert rotation is not None
            return msgspec.structs.replace(rotation.answer, rule=Rule(rule), caller_id=sender)
        return fallback

    async def texts(self, account_id: str, day: str) -> dict[str, int]:
        key = self._account_keys(account_id).texts(day)
        flat = await self._command(key, "HGETALL", key)
        counts = {text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return {number: sent for number, sent in counts.items() if sent > 0}
