"""Changes to the account itself: create one, change its settings.

Two settings carry rules of their own. The SIP domain is the realm every SIP password digest
is made over, so it cannot change while a user has SIP credentials, and it belongs to one
account at a time. The departments mode goes from ``legacy`` to ``enforced`` and never back:
the switch moves every user outside a department into the default one (``move_user``, so
each keeps what they held as extra permissions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from callerid import ALL_PERMISSIONS, AccountConfig, Department, DepartmentsMode, User

from ..errors import Conflict
from .parts import Change, Fields
from .users import move_user

__all__ = ["create_account", "replace_account", "update_account"]

_replace = msgspec.structs.replace
_PARTS = frozenset({"id", "owner", "users", "departments", "numbers", "groups"})
"""What the account's settings are not: its identity, and what other resources hold."""


def create_account(
    *,
    account_id: str,
    name: str,
    owner: User,
    default_region: str = "US",
    departments_mode: DepartmentsMode = DepartmentsMode.ENFORCED,
) -> AccountConfig:
    """A new account: its owner, and a default department that starts with every permission."""
    return AccountConfig(
        id=account_id,
        name=name,
        owner=owner.id,
        default_department="default",
        default_region=default_region,
        departments_mode=departments_mode,
        users=(_replace(owner, department=None),),
        departments=(
            Department(id="default", name="Default", permissions=tuple(sorted(ALL_PERMISSIONS))),
        ),
    )


def _check_domain_change(
    config: AccountConfig, domain: str | None, claimed_by: Callable[[str], Sequence[str]]
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


def _enforce_departments(config: AccountConfig) -> AccountConfig:
    """Legacy -> enforced: every user outside a department moves into the default one,
    keeping what they held as extra permissions."""
    new = _replace(config, departments_mode=DepartmentsMode.ENFORCED)
    for user in config.users:
        if user.id != config.owner and user.department is None:
            new = move_user(user.id, config.default_department)(new)
    return new


def update_account(
    fields: Fields, *, domain_claimed_by: Callable[[str], Sequence[str]]
) -> Change:
    """Replace the account's settings named in ``fields``; ``domain_claimed_by(domain)`` is
    every account whose SIP domain is ``domain`` (this one's included or not).

    ``Conflict`` naming ``sip_domain`` for a new domain while users have SIP credentials or
    one another account holds, and naming ``departments_mode`` for a switch back to legacy.
    ``fields`` naming what is not a setting (the id, the owner, the users...) is a
    ``ValueError``: each of those has changes of its own."""
    if _PARTS & set(fields):
        raise ValueError(f"not account settings: {sorted(_PARTS & set(fields))}")

    def change(config: AccountConfig) -> AccountConfig:
        mode = fields.get("departments_mode", config.departments_mode)
        domain = fields.get("sip_domain", config.sip_domain)
        if domain != config.sip_domain:
            _check_domain_change(config, domain, domain_claimed_by)
        new = _replace(config, **{f: v for f, v in fields.items() if f != "departments_mode"})
        if mode != config.departments_mode:
            if mode == DepartmentsMode.LEGACY:
                raise Conflict("an account moves from legacy to enforced departments mode, "
                               "never back", field="departments_mode")
            new = _enforce_departments(new)
        return new

    return change


def _nobody(domain: str) -> Sequence[str]:
    return ()


def replace_account(
    new: AccountConfig, *, domain_claimed_by: Callable[[str], Sequence[str]] = _nobody
) -> Change:
    """Replace the account whole with ``new`` (``callgate import`` over an existing one).

    The file states every resource as it should be, so nothing is moved for it: its
    departments mode is taken as it is (each user's department is in the file; the one-way
    switch of ``update_account`` is a migration that moves users, which a whole account
    does not need). A new SIP domain meets the rule it meets through ``update_account``: no
    user of ``new`` may keep SIP credentials, whose digests were made over the old domain.
    Whether another account holds the domain is the store's to say when it saves
    (``domain_claimed_by`` only makes that answer come earlier)."""

    def change(config: AccountConfig) -> AccountConfig:
        if new.id != config.id:
            raise ValueError(f"account {new.id!r} cannot replace account {config.id!r}")
        if new.sip_domain != config.sip_domain:
            _check_domain_change(_replace(new, sip_domain=config.sip_domain), new.sip_domain,
                                 domain_claimed_by)
        return new

    return change
