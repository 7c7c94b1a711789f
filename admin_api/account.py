"""The account itself: its settings, and the permission presets it offers."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, Permission
from engine import changes
from engine.store import AuditEntry

from .context import Call, Operation, Reply, tagged, versioned
from .presets import PRESETS
from .rules import Actor, check_permission_change, effective, require
from .schemas import AccountOut, AccountPatch, PresetOut
from .users import changed_users

__all__ = ["OPERATIONS", "account_out", "settings_of"]

P = Permission
_replace = msgspec.structs.replace


def settings_of(config: AccountConfig) -> AccountConfig:
    """The account without what other resources hold (what its audit entries show)."""
    return _replace(config, users=(), departments=(), numbers=(), groups=())


def account_out(config: AccountConfig) -> AccountOut:
    return versioned(AccountOut(
        id=config.id, name=config.name, owner=config.owner,
        default_department=config.default_department, default_region=config.default_region,
        plan_countries=config.plan_countries, default_caller_id=config.default_caller_id,
        call_settings=config.call_settings, pro=config.pro, sip_domain=config.sip_domain,
        departments_mode=config.departments_mode, max_channels=config.max_channels,
        lease_ttl_s=config.lease_ttl_s, sip_lease_ttl_s=config.sip_lease_ttl_s,
        sticky_ttl_days=config.sticky_ttl_days, time_zone=config.time_zone,
        daily_cap=config.daily_cap, requested_over_cap=config.requested_over_cap,
        sms_sticky_shared=config.sms_sticky_shared,
        auto_rest=config.auto_rest, calling_hours=config.calling_hours, etag="",
    ))


def _reply(config: AccountConfig) -> Reply:
    return tagged(account_out(config))


async def get_account(call: Call) -> Reply:
    config, _ = await call.read()
    return _reply(config)


def _check_moved(actor: Actor, config: AccountConfig, new: AccountConfig) -> None:
    """Each user the change from ``config`` to ``new`` moved into a department (the switch to
    enforced mode) is one the actor may leave holding what they hold there."""
    after = {u.id: u for u in new.users}
    for user in config.users:
        moved = after.get(user.id)
        if moved is not None and moved.department != user.department:
            check_permission_change(actor, config, user, effective(new, moved),
                                    field="departments_mode")


async def update_account(call: Call) -> Reply:
    body = await call.body(AccountPatch)
    fields = {f: v for f in body.__struct_fields__ if (v := getattr(body, f)) is not UNSET}

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.ACCOUNT_SETTINGS)
        call.check_match(account_out(config).etag)
        change = changes.update_account(fields, domain_claimed_by=call.engine.domain_claimed_by)
        new = change(config)
        _check_moved(actor, config, new)
        # The users the switch moved into the default department: an entry each.
        moved = changed_users(call, actor, "account.update", config, new)
        return new, [*moved, call.audit(actor, "account.update", f"account:{config.id}",
                                        settings_of(config), settings_of(new))]

    return _reply(await call.write(edit))


async def list_presets(call: Call) -> Reply:
    await call.read()
    return Reply([PresetOut(name=name, permissions=tuple(sorted(permissions)))
                  for name, permissions in PRESETS.items()])


OPERATIONS = [
    Operation("GET", "/account", get_account, "Read the account's settings", "any user",
              "account", response=AccountOut),
    Operation("PATCH", "/account", update_account, "Change the account's settings",
              "`account.settings`", "account", body=AccountPatch, response=AccountOut,
              conditional=True),
    Operation("GET", "/presets", list_presets,
              "The permission presets (admin, supervisor, accountant, technical)", "any user",
              "account", response=list[PresetOut]),
]
