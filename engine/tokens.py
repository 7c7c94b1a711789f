"""API tokens: random, shown once, stored only as a SHA-256 hash.

A token has 256 bits of randomness, so a fast hash is enough: nobody can search that space,
and the lookup by hash gives no timing hint about any stored token.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

from .errors import StoreUnavailable, Unauthorized
from .store import AuditEntry, Store, TokenRecord
from .wire import rfc3339

__all__ = ["TokenCache", "hash_token", "issue_token", "new_token"]

PREFIX = "cg_"
_REVALIDATE_S = 2.0
_STALE_OK_S = 300.0
_LOOKUP_DEADLINE_S = 1.0
_DIGESTS_KEPT = 4096


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(account_id: str, name: str, user_id: str | None = None) -> tuple[str, TokenRecord]:
    """A new token and the record stored for it: the only time the token itself exists."""
    token = PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        hash=hash_token(token),
        account_id=account_id,
        name=name,
        created_ms=time.time_ns() // 1_000_000,
        user_id=user_id,
    )
    return token, record


def described(record: TokenRecord) -> dict[str, str | None]:
    """A token as the audit log shows it (never the token, nor its hash)."""
    return {"id": record.id, "name": record.name,
            "kind": "service" if record.user_id is None else "user", "user": record.user_id,
            "created_at": rfc3339(record.created_ms)}


async def issue_token(
    store: Store, account_id: str, name: str, user_id: str | None = None, *,
    actor: str | None = None,
) -> str:
    """Create and store a token for ``account_id`` (a service token, or ``user_id``'s); with
    ``actor``, log its creation as that actor's (``cli``)."""
    token, record = new_token(account_id, name, user_id)
    audit = None
    if actor is not None:
        audit = AuditEntry(at_ms=record.created_ms, actor=actor, action="token.create",
                           target=f"token:{record.id}", after=described(record))
    await store.add_token(record, audit)
    return token


class TokenCache:
    """Maps bearer tokens to their records, asking the store at most every couple of seconds
    per token, so a token revoked by another process stops working within that time (one
    revoked through this process stops at once: ``forget``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, tuple[TokenRecord, float]] = {}
        self._digests: dict[str, str] = {}
        self._lookups: dict[str, asyncio.Future[TokenRecord | None]] = {}

    def cached(self, authorization: str | None) -> TokenRecord | None:
        """The record of a token checked within the last couple of seconds, else None (then
        ``record_for`` asks the store): the common case without a coroutine."""
        if authorization is None or authorization[:7].lower() != "bearer ":
            return None
        digest = self._digests.get(authorization[7:])
        known = self._known.get(digest) if digest is not None else None
        if known is not None and time.monotonic() - known[1] < _REVALIDATE_S:
            return known[0]
        return None

    def forget(self, token_hash: str) -> None:
        """Stop trusting what is known of a token (it was just revoked)."""
        self._known.pop(token_hash, None)

    async def _lookup(self, digest: str) -> TokenRecord | None:
        """The store's record for ``digest``. Requests that arrive together with one token
        (a dialer opening many connections at once) share one lookup."""
        pending = self._lookups.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._ask_store(digest))
            self._lookups[digest] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(pending)

    async def _ask_store(self, digest: str) -> TokenRecord | None:
        try:
            async with asyncio.timeout(_LOOKUP_DEADLINE_S):
                return await self._store.find_token(digest)
        except TimeoutError:
            raise StoreUnavailable("the token store did not answer in time") from None

    async def record_for(self, authorization: str | None) -> TokenRecord:
        """The record of the bearer token in ``authorization``; ``Unauthorized`` when there is
        none, or it is unknown or revoked."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # schemes are case-insensitive
            raise Unauthorized("send the token as `Authorization: Bearer <token>`")
        digest = self._digests.get(token)
        if digest is None:
            digest = hash_token(token.strip())
            if len(self._digests) >= _DIGESTS_KEPT:
                self._digests.clear()  # a flood of made-up tokens must not grow memory
            self._digests[token] = digest  # keyed as ``cached`` looks it up
        now = time.monotonic()
        known = self._known.get(digest)
        if known is not None and now - known[1] < _REVALIDATE_S:
            return known[0]
        try:
            record = await self._lookup(digest)
        except StoreUnavailable:
            if known is not None and now - known[1] < _STALE_OK_S:
                # A token this process knew minutes ago keeps working while the store is
                # down: the request then gets the store's own answer (a decision saying
                # ``store_unavailable``), the same as every other request.
                return known[0]
            raise
        if record is None:
            self._known.pop(digest, None)
            raise Unauthorized("unknown or revoked token")
        self._known[digest] = (record, now)
        return record

    async def account_for(self, authorization: str | None) -> str:
        return (await self.record_for(authorization)).account_id
