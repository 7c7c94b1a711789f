"""API tokens: a user's own (acting with their permissions) and service tokens (the decision
API only). A token is shown once, at creation; the store keeps its hash."""

from __future__ import annotations

from callerid import Permission
from engine.errors import NotFound
from engine.store import TokenRecord
from engine.tokens import new_token
from engine.wire import rfc3339

from .context import Call, Operation, Reply, page
from .rules import require
from .schemas import ListParams, Page, TokenCreate, TokenCreated, TokenKind, TokenOut

__all__ = ["OPERATIONS"]

P = Permission


def token_out(record: TokenRecord) -> TokenOut:
    return TokenOut(
        id=record.id, name=record.name,
        kind=TokenKind.SERVICE if record.user_id is None else TokenKind.USER,
        user=record.user_id, created_at=rfc3339(record.created_ms),
    )


async def list_tokens(call: Call) -> Reply:
    params = call.query(ListParams)
    config, actor = await call.read()
    records = await call.store.list_tokens(call.account_id)
    if not (actor.is_owner or P.ACCOUNT_SETTINGS in actor.permissions):
        records = [r for r in records if r.user_id == actor.user_id]
    chosen = page(records, lambda r: r.id, params.cursor, params.limit)
    return Reply(Page(items=[token_out(r) for r in chosen.items], next_cursor=chosen.next_cursor))


async def create_token(call: Call) -> Reply:
    body = await call.body(TokenCreate)
    config, actor = await call.read()
    if body.kind is TokenKind.SERVICE:
        require(actor, P.ACCOUNT_SETTINGS)
    user = actor.user_id if body.kind is TokenKind.USER else None
    token, record = new_token(call.account_id, body.name, user)
    out = token_out(record)
    await call.store.add_token(record, call.audit(actor, "token.create", f"token:{record.id}",
                                                  None, out))
    return Reply(TokenCreated(**{f: getattr(out, f) for f in out.__struct_fields__},
                              token=token), 201)


async def revoke_token(call: Call) -> Reply:
    config, actor = await call.read()
    token_id = call.param("token_id")
    records = await call.store.list_tokens(call.account_id)
    record = next((r for r in records if r.id == token_id), None)
    if record is None or (
        record.user_id != actor.user_id
        and not (actor.is_owner or P.ACCOUNT_SETTINGS in actor.permissions)
    ):
        raise NotFound(f"no token {token_id!r}", field="token_id")
    call.tokens.forget(record.hash)
    removed = await call.store.remove_token(
        call.account_id, record.hash,
        call.audit(actor, "token.revoke", f"token:{record.id}", token_out(record), None),
    )
    call.tokens.forget(record.hash)
    if not removed:
        raise NotFound(f"no token {token_id!r}", field="token_id")
    return Reply(status=204)


OPERATIONS = [
    Operation("GET", "/tokens", list_tokens, "List API tokens (never the tokens themselves)",
              "any user for their own; `account.settings` for all", "tokens",
              query=ListParams, response=Page[TokenOut]),
    Operation("POST", "/tokens", create_token, "Create an API token, shown once",
              "any user for their own; `account.settings` for a service token", "tokens",
              body=TokenCreate, response=TokenCreated, status=201),
    Operation("DELETE", "/tokens/{token_id}", revoke_token, "Revoke an API token at once",
              "any user for their own; `account.settings` for any", "tokens", status=204),
]
