"""A user's SIP credentials: create (or replace), read, rotate the password, switch VoIP on or
off, remove. Only digests are stored (``sip.credentials``); a password callgate generates is
in the answer that created it and nowhere else, and one an administrator chooses is refused
when weak. No answer and no audit entry carries a password or a digest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from callerid import AccountConfig, Permission, User
from callerid.model import SipUsername
from engine import changes
from engine.errors import Forbidden, NotFound
from engine.store import AuditEntry
from sip.credentials import generate_password

from .context import Call, Operation, Reply, tagged
from .rules import Actor, require
from .schemas import SipLoginOut
from .users import check_below, may_see, sip_login_out
from .users import find_user as _user

__all__ = ["OPERATIONS"]

P = Permission
Password = Annotated[str, msgspec.Meta(
    min_length=1, max_length=256,
    # What the document states is what ``check_password`` takes (12 to 128 printable ASCII
    # characters, no space); decoding takes more, so that a short or spaced password gets
    # that check's message, which says what is wrong, rather than a regular expression.
    extra_json_schema={"pattern": r"^[!-~]{12,128}$(?!\n)", "minLength": 12, "maxLength": 128,
                       "description": "12 to 128 printable ASCII characters, no space; "
                       "refused when weak (the message says why)"})]


class SipLoginSet(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    username: SipUsername
    password: Password | None = None
    """Leave out to have callgate generate one (shown once, in this answer)."""
    enabled: bool = True


class SipPasswordSet(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    password: Password | None = None
    """Leave out to have callgate generate one (shown once, in this answer)."""


class SipLoginPatch(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    enabled: bool | UnsetType = UNSET
    """VoIP on or off: off refuses the user's SIP requests and keeps the credentials."""


class SipLoginCreated(SipLoginOut, frozen=True, kw_only=True):
    password: str | None = None
    """The generated password, shown this once; null when you chose it."""


def _login(config: AccountConfig, user: User) -> SipLoginOut:
    out = sip_login_out(config, user)
    if out is None:
        raise NotFound(f"user {user.id!r} has no SIP credentials", field="user")
    return out


def _may_administer(actor: Actor, user_id: str) -> None:
    """``users.settings``, and not on oneself (but for the owner): an admin who switched a
    user's VoIP off must not see the user switch it back on. Decided from the id alone, before
    the user is looked up (``context``'s step 1); ``check_below`` on the user found follows."""
    require(actor, P.USERS_SETTINGS)
    if user_id == actor.user_id and not actor.is_owner:
        raise Forbidden(
            "you cannot create, replace, switch or remove your own SIP login: a user above "
            "you can; you may read it and rotate its password", field="user_id")


def _check_login_edit(call: Call, actor: Actor, config: AccountConfig, user_id: str) -> None:
    """What switching and removing user ``user_id``'s SIP login both take: the actor may
    administer it, the user is below them, and If-Match is the login's version."""
    _may_administer(actor, user_id)
    user = _user(config, user_id)
    check_below(actor, config, user)
    call.check_match(_login(config, user).etag)


def _saved(
    call: Call, actor: Actor, config: AccountConfig, change: changes.Change, user_id: str,
    action: str,
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    """``change`` applied, with an ``action`` entry showing the login before and after (the
    audit log drops its digests)."""
    new = change(config)
    before, after = _user(config, user_id), _user(new, user_id)
    return new, [call.audit(actor, action, f"user:{user_id}", before.sip, after.sip)]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def get_sip(call: Call) -> Reply:
    config, actor = await call.read()
    user_id = call.param("user_id")
    may_see(actor, user_id)
    return tagged(_login(config, _user(config, user_id)))


async def set_sip(call: Call) -> Reply:
    body = await call.body(SipLoginSet)
    user_id = call.param("user_id")
    # Drawn once: the edit may run again after a concurrent save, and the answer shows this one.
    generated = body.password is None
    password = generate_password() if body.password is None else body.password

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        _may_administer(actor, user_id)
        before = _user(config, user_id)
        check_below(actor, config, before)
        if before.sip is not None:
            call.check_match(_login(config, before).etag)
        else:
            call.check_absent()
        change = changes.set_sip_login(user_id, body.username, password, enabled=body.enabled,
                                       now_ms=_now_ms(), generated=generated)
        action = "user.sip.create" if before.sip is None else "user.sip.replace"
        return _saved(call, actor, config, change, user_id, action)

    config = await call.write(edit)
    return _answer(config, user_id, password if generated else None)


async def rotate_sip_password(call: Call) -> Reply:
    body = await call.body(SipPasswordSet)
    user_id = call.param("user_id")
    generated = body.password is None  # drawn once, as in set_sip
    password = generate_password() if body.password is None else body.password

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        if user_id != actor.user_id:  # anyone may change their own SIP password
            _may_administer(actor, user_id)
        before = _user(config, user_id)
        check_below(actor, config, before)
        call.check_match(_login(config, before).etag)
        change = changes.set_sip_password(user_id, password, now_ms=_now_ms(),
                                          generated=generated)
        return _saved(call, actor, config, change, user_id, "user.sip.rotate")

    config = await call.write(edit)
    return _answer(config, user_id, password if generated else None)


async def update_sip(call: Call) -> Reply:
    body = await call.body(SipLoginPatch)
    user_id = call.param("user_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        _check_login_edit(call, actor, config, user_id)
        if body.enabled is UNSET:
            return config, []
        change = changes.set_sip_enabled(user_id, body.enabled)
        return _saved(call, actor, config, change, user_id, "user.sip.update")

    config = await call.write(edit)
    login = _login(config, _user(config, user_id))
    return tagged(login)


async def delete_sip(call: Call) -> Reply:
    user_id = call.param("user_id")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        _check_login_edit(call, actor, config, user_id)
        change = changes.remove_sip_login(user_id)
        return _saved(call, actor, config, change, user_id, "user.sip.delete")

    await call.write(edit)
    return Reply(status=204)


def _answer(config: AccountConfig, user_id: str, generated: str | None) -> Reply:
    login = _login(config, _user(config, user_id))
    body = SipLoginCreated(**msgspec.structs.asdict(login), password=generated)
    return tagged(body)


_ADMIN = "`users.settings`, on a user below you"
OPERATIONS = [
    Operation("GET", "/users/{user_id}/sip", get_sip,
              "Read a user's SIP login (never the password or its digests)",
              "`users.manage` or `users.settings` (anyone for themselves)", "sip",
              response=SipLoginOut),
    Operation("PUT", "/users/{user_id}/sip", set_sip,
              "Give a user SIP credentials, or replace them; a generated password is shown "
              "once", _ADMIN, "sip", body=SipLoginSet, response=SipLoginCreated,
              conditional=True),
    Operation("POST", "/users/{user_id}/sip/rotate", rotate_sip_password,
              "Set a new SIP password (generated and shown once, or chosen and checked)",
              f"{_ADMIN} (anyone for themselves)", "sip", body=SipPasswordSet,
              response=SipLoginCreated, conditional=True),
    Operation("PATCH", "/users/{user_id}/sip", update_sip, "Switch a user's VoIP on or off",
              _ADMIN, "sip", body=SipLoginPatch, response=SipLoginOut, conditional=True),
    Operation("DELETE", "/users/{user_id}/sip", delete_sip, "Remove a user's SIP credentials",
              _ADMIN, "sip", status=204, conditional=True),
]
