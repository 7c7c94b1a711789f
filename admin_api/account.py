"""The account itself: its settings, and the permission presets it offers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, DepartmentsMode, Permission
from engine import changes
from engine.errors import Conflict
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
        sticky_ttl_days=config.sticky_ttl_days, etag="",
    ))


def _reply(config: AccountConfig) -> Reply:
    return tagged(account_out(config))


async def get_account(call: Call) -> Reply:
    config, _ = await call.read()
    return _reply(config)


def _enforce_departments(
    config: AccountConfig, actor: Actor
) -> AccountConfig:
    """Legacy -> enforced: every user outside a department moves into the default one,
    keeping what they held as extra permissions."""
    new = _replace(config, departments_mode=DepartmentsMode.ENFORCED)
    for user in config.users:
        if user.id != config.owner and user.department is None:
            moved_config = changes.move_user(user.id, config.default_department)(new)
            moved = next(u for u in moved_config.users if u.id == user.id)
            check_permission_change(actor, config, user, effective(moved_config, moved),
                                    field="departments_mode")
            new = moved_config
    return new


def _check_domain_change(
    config: AccountConfig, domain: str | None, claimed_by: Callable[[str], list[str]]
) -> None:
    with_sip = [u.id for u in config.users if u.sip is not None]
    if with_sip:
        raise Conflict(
            f"{len(with_sip)} users have SIP credentials in {config.sip_domain!r} (their "
            f"password digests are made over the domain), e.g. {with_sip[0]!r}: remove their "
            "credentials before changing the domain",
            field="sip_domain",
        )
    if domain is not None and [a for a in claimed_by(domain) if a != config.id]:
        raise Conflict(f"SIP domain {domain!r} belongs to another account", field="sip_domain")


async def update_account(call: Call) -> Reply:
    body = await call.body(AccountPatch)
    fields = {f: v for f in body.__struct_fields__ if (v := getattr(body, f)) is not UNSET}

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.ACCOUNT_SETTINGS)
        call.check_match(account_out(config).etag)
        # ``fields`` is read, never changed: the edit runs again after a concurrent save.
        mode = fields.get("departments_mode", config.departments_mode)
        if fields.get("sip_domain", config.sip_domain) != config.sip_domain:
            _check_domain_change(config, fields["sip_domain"], call.engine.domain_claimed_by)
        new = _replace(config, **{f: v for f, v in fields.items() if f != "departments_mode"})
        if mode is not config.departments_mode:
            if mode is DepartmentsMode.LEGACY:
                raise Conflict("an account moves from legacy to enforced departments mode, "
                               "never back", field="departments_mode")
            new = _enforce_departments(new, actor)
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
