"""API tokens on Redis: each account's tokens, and the index that finds a token's account.

``…:tokens`` maps each token hash to its record; ``cg:token:<hash>`` finds a hash's account
(it lives in another slot, so the two are written one after the other: the record first, and
removed last). A removal is announced on the change feed (``configuration.py``), so every
process forgets the token. When a token was last used is kept apart, in ``…:token-use``,
so a use writes one field and never the record.

``TokenCommands`` is a part of ``RedisStore`` (the store inherits it);
``part.StorePart``, the base of every part, declares what it uses of the store.
"""

from __future__ import annotations

from abc import abstractmethod

import msgspec

from ..protocol import AuditEntry, TokenRecord
from . import scripts as S
from .answers import text
from .keys import token_index
from .part import StorePart

__all__ = ["TokenCommands"]

_token_encoder = msgspec.msgpack.Encoder()
_token_decoder = msgspec.msgpack.Decoder(TokenRecord)
_audit_encoder = msgspec.json.Encoder()


class TokenCommands(StorePart):
    """Adding, finding, listing and removing an account's API tokens."""

    # -- what this needs of the store --------------------------------------------------------

    @abstractmethod
    async def _announce(self, kind: str, subject: str, value: str = "") -> None: ...

    async def add_token(self, record: TokenRecord, audit: AuditEntry | None = None) -> None:
        account = self._account_keys(record.account_id)
        await self._script(
            S.ADD_TOKEN, S.TokenKeys(account.tokens, account.audit, account.token_use),
            S.AddTokenArgs(record.hash, _token_encoder.encode(record),
                           (_audit_encoder.encode(audit),) if audit else ()),
        )
        index = token_index(record.hash)
        await self._command(index, "SET", index, record.account_id)

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        index = token_index(token_hash)
        account_id = await self._command(index, "GET", index)
        if account_id is None:
            return None
        tokens = self._account_keys(text(account_id)).tokens
        blob = await self._command(tokens, "HGET", tokens, token_hash)
        return None if blob is None else _token_decoder.decode(blob)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        account = self._account_keys(account_id)
        blobs = await self._command(account.tokens, "HVALS", account.tokens)
        use = await self._command(account.token_use, "HGETALL", account.token_use)
        used = {text(use[i]): int(use[i + 1]) for i in range(0, len(use), 2)}
        records = [_token_decoder.decode(b) for b in blobs]
        records = [msgspec.structs.replace(r, last_used_ms=used.get(r.hash)) for r in records]
        return sorted(records, key=lambda r: (r.created_ms, r.name))

    async def touch_token(self, account_id: str, token_hash: str, at_ms: int) -> None:
        use = self._account_keys(account_id).token_use
        await self._command(use, "HSET", use, token_hash, at_ms)

    async def revoke_token(self, account_id: str, name: str) -> int:
        revoked = [r for r in await self.list_tokens(account_id) if r.name == name]
        for record in revoked:
            await self.remove_token(account_id, record.hash)
        return len(revoked)

    async def remove_token(
        self, account_id: str, token_hash: str, audit: AuditEntry | None = None
    ) -> bool:
        index = token_index(token_hash)
        owner = await self._command(index, "GET", index)
        if owner is None or text(owner) != account_id:
            return False
        await self._command(index, "DEL", index)
        account = self._account_keys(account_id)
        removed = await self._script(
            S.REMOVE_TOKEN, S.TokenKeys(account.tokens, account.audit, account.token_use),
            S.RemoveTokenArgs(token_hash, (_audit_encoder.encode(audit),) if audit else ()),
        )
        await self._announce("t", token_hash)
        return bool(removed)

