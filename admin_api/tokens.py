"""API tokens: a user's own (acting with their permissions) and service tokens (the decision
API only). A token is shown once, at creation; the store keeps its hash.

Revoking is a change to the token's user, so rules 2 and 3 apply: anyone revokes their own;
another user's needs ``account.settings`` and a user the actor may edit (the owner's: the
owner alone); a service token needs ``account.settings``. Deleting a user revokes their
tokens (``revoke_tokens_of``).
"""

from __future__ import annotations

import time

import msgspec

from callerid import AccountConfig, Permission
from engine.errors import InvalidField, NotFound
from engine.store import TokenRecord
from engine.tokens import described, new_token
from engine.wire import rfc3339

from .context import Call, Operation, Reply, page
from .rules import Actor, check_edit_user, require
from .schemas import Page, TokenCreate, TokenCreated, TokenKind, TokenOut, TokenParams

__all__ = ["OPERATIONS", "revoke_tokens_of"]

P = Permission


def token_out(record: TokenRecord) -> TokenOut:
    """A token as the API shows it: as the audit log does (never the token, nor its hash),
    and when it was last used."""
    last_used = None if record.last_used_ms is None else rfc3339(record.last_used_ms)
    return msgspec.convert({**described(record), "last_used_at": last_used}, TokenOut)


def _sees_every_token(actor: Actor) -> bool:
    return actor.is_owner or P.ACCOUNT_SETTINGS in actor.permissions


def _check_revoke(actor: Actor, config: AccountConfig, record: TokenRecord) -> None:
    if record.user_id == actor.user_id:
        return
    require(actor, P.ACCOUNT_SETTINGS)
    user = next((u for u in config.users if u.id == record.user_id), None)
    if user is not None:  # a token left by a deleted user is anyone's with the permission
        check_edit_user(actor, config, user, field="token_id")


async def _revoke(call: Call, actor: Actor, record: TokenRecord) -> bool:
    """Revoke ``record`` and log it: refused at once by this process and, on Redis, by every
    other (the store announces it); False if it was gone already."""
    # Forgotten before the store removes it and again after: a request checking the token
    # meanwhile may have cached it again.
    call.tokens.forget(record.hash)
    entry = call.audit(actor, "token.revoke", f"token:{record.id}", token_out(record), None)
    removed = await call.store.remove_token(call.account_id, record.hash, entry)
    call.tokens.forget(record.hash)
    if removed:
        call.log_write([entry])
    return removed


async def revoke_tokens_of(call: Call, actor: Actor, user_id: str) -> None:
    """Revoke every token of ``user_id`` (each logged as ``token.revoke`` by ``actor``)."""
    for record in await call.store.list_tokens(call.account_id):
        if record.user_id == user_id:
            await _revoke(call, actor, record)


async def list_tokens(call: Call) -> Reply:
    params = call.query(TokenParams)
    _, actor = await call.read()
    records = await call.store.list_tokens(call.account_id)
    if not _sees_every_token(actor):
        records = [r for r in records if r.user_id == actor.user_id]
    if params.kind is not None:
        records = [r for r in records if (r.user_id is None) == (params.kind is TokenKind.SERVICE)]
    if params.user is not None:
        records = [r for r in records if r.user_id == params.user]
    chosen = page(records, lambda r: r.id, params.cursor, params.limit)
    return Reply(Page(items=[token_out(r) for r in chosen.items], next_cursor=chosen.next_cursor))


async def create_token(call: Call) -> Reply:
    body = await call.body(TokenCreate)
    _, actor = await call.read()
    if body.kind is TokenKind.SERVICE:
        require(actor, P.ACCOUNT_SETTINGS)
    user = actor.user_id if body.kind is TokenKind.USER else None
    expires_ms = None
    if body.expires_at is not None:
        expires_ms = int(body.expires_at.timestamp() * 1000)
        if expires_ms <= time.time_ns() // 1_000_000:
            raise InvalidField(f"expires_at {rfc3339(expires_ms)} is not in the future",
                               field="expires_at")
    token, record = new_token(call.account_id, body.name, user, expires_ms=expires_ms)
    out = token_out(record)
    entry = call.audit(actor, "token.create", f"token:{record.id}", None, out)
    await call.store.add_token(record, entry)
    call.log_write([entry])
    return Reply(TokenCreated(**{f: getattr(out, f) for f in out.__struct_fields__},
                              token=token), 201)


async def revoke_token(call: Call) -> Reply:
    config, actor = await call.read()
    token_id = call.param("token_id")
    records = await call.store.list_tokens(call.account_id)
    record = next((r for r in records if r.id == token_id), None)
    # A token the actor cannot list answers as one that does not exist.
    if record is None or (record.user_id != actor.user_id and not _sees_every_token(actor)):
        raise NotFound(f"no token {token_id!r}", field="token_id")
    _check_revoke(actor, config, record)
    call.check_match(None)  # a token has no versions: only If-Match: * can hold
    if not await _revoke(call, actor, record):
        raise NotFound(f"no token {token_id!r}", field="token_id")
    return Reply(status=204)


OPERATIONS = [
    Operation("GET", "/tokens", list_tokens, "List API tokens (never the tokens themselves)",
              "any user for their own; `account.settings` for all", "tokens",
              query=TokenParams, response=Page[TokenOut]),
    Operation("POST", "/tokens", create_token, "Create an API token, shown once",
              "any user for their own; `account.settings` for a service token", "tokens",
              body=TokenCreate, response=TokenCreated, status=201),
    Operation("DELETE", "/tokens/{token_id}", revoke_token, "Revoke an API token at once",
              "any user for their own; `account.settings` for a service token, or another "
              "user's when that user is below you (the owner's: the owner only)", "tokens",
              status=204),
]
