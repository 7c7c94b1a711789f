"""What happened and what is happening: the audit log of every write, and the calls holding
channels now."""

from __future__ import annotations

from datetime import datetime

from callerid import AccountConfig, Permission
from engine.errors import InvalidField
from engine.store import AuditQuery
from engine.wire import rfc3339

from .context import Call, Operation, Reply, page
from .rules import Actor
from .schemas import AuditEntryOut, AuditQueryParams, LiveChannel, LiveChannelParams, Page

__all__ = ["OPERATIONS"]

P = Permission


def _ms(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidField(f"{field}: {value!r} is not an RFC 3339 time", field=field) from None
    if moment.tzinfo is None:
        raise InvalidField(f"{field}: {value!r} has no time zone (add Z or +hh:mm)",
                           field=field)
    return round(moment.timestamp() * 1000)


async def list_audit(call: Call) -> Reply:
    params = call.query(AuditQueryParams)
    await call.read(P.ACCOUNT_SETTINGS)
    entries, cursor = await call.store.audit_log(
        call.account_id,
        AuditQuery(actor=params.actor, target=params.target,
                   since_ms=_ms(params.since, "since"), until_ms=_ms(params.until, "until"),
                   before=params.cursor, limit=params.limit),
    )
    items = [AuditEntryOut(id=e.id, at=rfc3339(e.at_ms), actor=e.actor, action=e.action,
                           target=e.target, before=e.before, after=e.after) for e in entries]
    return Reply(Page(items=items, next_cursor=cursor))


def _watched(config: AccountConfig, actor: Actor) -> frozenset[str] | None:
    """The users whose live calls ``actor`` sees; None for everyone (the owner, or a user
    whose view is not limited to groups)."""
    me = next(u for u in config.users if u.id == actor.user_id)
    scope = None if actor.is_owner else me.supervision
    if scope is None:
        return None
    return frozenset(m for g in config.groups if g.id in scope for m in g.members)


async def list_live_channels(call: Call) -> Reply:
    params = call.query(LiveChannelParams)
    config, actor = await call.read(P.MONITORING_USE)
    watched = _watched(config, actor)
    calls = await call.store.live_calls(call.account_id)
    if watched is not None:
        calls = [c for c in calls if c.user_id in watched]
    if params.user is not None:
        calls = [c for c in calls if c.user_id == params.user]
    if params.group is not None:
        members = {m for g in config.groups if g.id == params.group for m in g.members}
        calls = [c for c in calls if c.user_id in members]
    chosen = page(calls, lambda c: c.call_id, params.cursor, params.limit)
    items = [LiveChannel(call_id=c.call_id, user=c.user_id,
                         direction="inbound" if c.inbound else "outbound",
                         to=None if c.inbound else c.to, caller=c.to if c.inbound else None,
                         caller_id=c.caller_id, lease_expires_at=rfc3339(c.lease_expires_ms))
             for c in chosen.items]
    return Reply(Page(items=items, next_cursor=chosen.next_cursor))


OPERATIONS = [
    Operation("GET", "/audit", list_audit, "The audit log, newest first",
              "`account.settings`", "activity", query=AuditQueryParams,
              response=Page[AuditEntryOut]),
    Operation("GET", "/live-channels", list_live_channels, "Calls holding a channel now",
              "`monitoring.use`; limited to your supervised groups when you have any",
              "activity", query=LiveChannelParams, response=Page[LiveChannel]),
]
