"""Changes to users' SIP logins: give (or replace), set a new password, switch on or off,
remove.

A login is kept as the digests of its password over the account's SIP domain
(``sip.credentials``), so an account gives SIP logins only once it has a domain. A password
someone chose is refused when weak; one callgate generated is not checked again. The time a
password is set is an argument (``now_ms``): a change reads no clock.
"""

from __future__ import annotations

import msgspec

from callerid import AccountConfig, SipCredential, User
from sip.credentials import check_password, make_credential

from ..errors import Conflict, NotFound
from .parts import Change, user_of, with_user

__all__ = ["remove_sip_login", "set_sip_enabled", "set_sip_login", "set_sip_password"]

_replace = msgspec.structs.replace


def _domain(config: AccountConfig) -> str:
    if config.sip_domain is None:
        raise Conflict("the account has no sip_domain: set it (PATCH /account) before giving "
                       "users SIP credentials", field="sip_domain")
    return config.sip_domain


def _login(user: User) -> SipCredential:
    if user.sip is None:
        raise NotFound(f"user {user.id!r} has no SIP credentials", field="user")
    return user.sip


def _with_login(
    config: AccountConfig, user: User, username: str, password: str, *, enabled: bool,
    now_ms: int, generated: bool,
) -> AccountConfig:
    domain = _domain(config)
    if not generated:
        check_password(password, username=username, realm=domain)
    login = make_credential(username, domain, password, now_ms=now_ms, enabled=enabled)
    return with_user(config, _replace(user, sip=login))


def set_sip_login(
    user_id: str, username: str, password: str, *, enabled: bool, now_ms: int,
    generated: bool = False,
) -> Change:
    """Give a user the login ``username`` with ``password`` (replacing any they had), set at
    ``now_ms``; ``generated``: callgate drew the password, so it is not checked for weakness.

    ``Conflict`` naming ``sip_domain`` when the account has no SIP domain; ``InvalidField``
    naming ``password`` when a chosen password is weak."""

    def change(config: AccountConfig) -> AccountConfig:
        user = user_of(config, user_id)
        return _with_login(config, user, username, password, enabled=enabled, now_ms=now_ms,
                           generated=generated)

    return change


def set_sip_password(
    user_id: str, password: str, *, now_ms: int, generated: bool = False
) -> Change:
    """Give a user's login a new password, set at ``now_ms``, keeping its username and
    whether it is on; as ``set_sip_login`` otherwise. ``NotFound`` naming ``user`` when the
    user has no login."""

    def change(config: AccountConfig) -> AccountConfig:
        user = user_of(config, user_id)
        login = _login(user)
        return _with_login(config, user, login.username, password, enabled=login.enabled,
                           now_ms=now_ms, generated=generated)

    return change


def set_sip_enabled(user_id: str, enabled: bool) -> Change:
    """Switch a user's login on or off (off refuses their SIP requests and keeps the
    credentials). ``NotFound`` naming ``user`` when the user has no login."""

    def change(config: AccountConfig) -> AccountConfig:
        user = user_of(config, user_id)
        login = _replace(_login(user), enabled=enabled)
        return with_user(config, _replace(user, sip=login))

    return change


def remove_sip_login(user_id: str) -> Change:
    """Remove a user's login. ``NotFound`` naming ``user`` when the user has none."""

    def change(config: AccountConfig) -> AccountConfig:
        user = user_of(config, user_id)
        _login(user)
        return with_user(config, _replace(user, sip=None))

    return change
