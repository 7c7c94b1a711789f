"""API tokens: random, shown once, stored only as a SHA-256 hash.

A token has 256 bits of randomness, so a fast hash is enough: nobody can search that space,
and the lookup by hash gives no timing hint about any stored token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import secrets
import time
from collections.abc import Callable

import msgspec

from .errors import StoreUnavailable, TooManyRequests, Unauthorized
from .store import AuditEntry, Store, TokenRecord
from .throttle import Throttle
from .wire import rfc3339

__all__ = ["AuthLimits", "TokenCache", "hash_token", "issue_token", "new_token"]

PREFIX = "cg_"
_DIGESTS_KEPT = 4096


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(
    account_id: str, name: str, user_id: str | None = None, *, expires_ms: int | None = None
) -> tuple[str, TokenRecord]:
    """A new token and the record stored for it: the only time the token itself exists."""
    token = PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        hash=hash_token(token),
        account_id=account_id,
        name=name,
        created_ms=time.time_ns() // 1_000_000,
        user_id=user_id,
        expires_ms=expires_ms,
    )
    return token, record


def described(record: TokenRecord) -> dict[str, str | None]:
    """A token as the audit log shows it (never the token, nor its hash)."""
    return {"id": record.id, "name": record.name,
            "kind": "service" if record.user_id is None else "user", "user": record.user_id,
            "created_at": rfc3339(record.created_ms),
            "expires_at": None if record.expires_ms is None else rfc3339(record.expires_ms)}


async def issue_token(
    store: Store, account_id: str, name: str, user_id: str | None = None, *,
    actor: str | None = None, expires_ms: int | None = None,
) -> str:
    """Create and store a token for ``account_id`` (a service token, or ``user_id``'s); with
    ``actor``, log its creation as that actor's (``cli``)."""
    token, record = new_token(account_id, name, user_id, expires_ms=expires_ms)
    audit = None
    if actor is not None:
        audit = AuditEntry(at_ms=record.created_ms, actor=actor, action="token.create",
                           target=f"token:{record.id}", after=described(record))
    await store.add_token(record, audit)
    return token


class AuthLimits(msgspec.Struct, frozen=True, kw_only=True):
    """``failures`` failed authentications within ``window_s`` seconds from one source
    address, or with one unknown token from anywhere, refuse that address (or token) for
    ``ban_s`` seconds with 429."""

    failures: int = 20
    window_s: float = 60.0
    ban_s: float = 60.0


class _Known:
    __slots__ = ("checked", "record", "touched", "used")

    def __init__(self, record: TokenRecord, now: float) -> None:
        self.record = record
        self.checked = now
        """When the store last confirmed the token (monotonic seconds)."""
        self.used = now
        self.touched = float("-inf")
        """When this process last wrote the token's ``last_used`` to the store."""


class TokenCache:
    """Maps bearer tokens to their records, from memory: a request never waits on the store
    for a token this process has seen, while the store confirms it at least every
    ``TRUST_S`` (so a token revoked anywhere stops working within that time; one revoked
    through this process stops at once: ``forget``).

    Confirmation happens in the background (``keep_fresh``): with a store whose change feed
    names every revoked token, each successful poll of the feed confirms every token at
    once (``confirm_all``) and a full re-check runs only every ``FEED_RECHECK_S``; otherwise
    each token used in the last ``IDLE_S`` is looked up again every ``RECHECK_S``. Only a new
    token (or one whose confirmation is overdue while the store answers) is looked up on
    the request's path; requests that arrive together with it share that one lookup. While
    the store cannot be reached, a token confirmed within ``STALE_OK_S`` keeps working: the
    request then gets the store's own answer (a decision saying ``store_unavailable``), the
    same as every other request.

    ``authenticate`` is how a request gets its token: it throttles failed attempts (see
    ``AuthLimits``), so neither a token guesser nor a client stuck on a revoked token makes
    the store look up one unknown token after another. A token this process knows is never
    throttled: a client whose token works is not locked out by a neighbour behind the same
    address (an office NAT, a load balancer) that keeps failing."""

    TRUST_S = 2.0
    REFRESH_S = 1.5
    """A token used when its confirmation is this old is looked up again in the background,
    so that it is confirmed before ``TRUST_S`` runs out (the request does not wait)."""
    RECHECK_S = 1.0
    FEED_RECHECK_S = 60.0
    IDLE_S = 600.0
    STALE_OK_S = 300.0
    LOOKUP_DEADLINE_S = 0.5
    TOUCH_S = 60.0
    """A token's ``last_used`` is written at most this often by one process."""

    def __init__(
        self, store: Store, *, clock: Callable[[], float] = time.monotonic,
        limits: AuthLimits = AuthLimits(),
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._wall_ms = wall_ms
        self._by_address = Throttle(
            failures=limits.failures, window_s=limits.window_s, ban_s=limits.ban_s)
        self._by_token = Throttle(
            failures=limits.failures, window_s=limits.window_s, ban_s=limits.ban_s)
        self._failures = limits.failures
        self._asking: dict[str, set[str]] = {}
        """Per source address, the unknown tokens being looked up for it now."""
        self.refused = 0
        """Requests answered 429 so far (a metric)."""
        self._known: dict[str, _Known] = {}
        self._digests: dict[str, str] = {}
        self._lookups: dict[str, asyncio.Future[TokenRecord | None]] = {}
        self._confirmed = float("-inf")
        self._refreshing: set[asyncio.Task[None]] = set()

    def _entry(self, token: str) -> _Known | None:
        digest = self._digests.get(token)
        return self._known.get(digest) if digest is not None else None

    def cached(self, authorization: str | None) -> TokenRecord | None:
        """The record of a token confirmed within ``TRUST_S``, else None (then
        ``record_for`` decides): the common case, without a coroutine."""
        if authorization is None or authorization[:7].lower() != "bearer ":
            return None
        known = self._entry(authorization[7:])
        if known is None:
            return None
        now = self._clock()
        age = now - max(known.checked, self._confirmed)
        if age < self.TRUST_S and not self._expired(known.record):
            known.used = now
            if age >= self.REFRESH_S:
                self._refresh_soon(known.record.hash)
            if now - known.touched >= self.TOUCH_S:
                self._touch(known, now)
            return known.record
        return None

    def _expired(self, record: TokenRecord) -> bool:
        return record.expires_ms is not None and self._wall_ms() >= record.expires_ms

    def _touch(self, known: _Known, now: float) -> None:
        """Write that the token was used, in the background (a failure is tried again at the
        next use a minute later)."""
        known.touched = now
        record = known.record
        task = asyncio.ensure_future(self._store.touch_token(
            record.account_id, record.hash, self._wall_ms()))
        self._refreshing.add(task)
        task.add_done_callback(self._touched)

    def _touched(self, task: asyncio.Task[None]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled():
            task.exception()  # looked at: a store that is down gets it at the next use

    def _refresh_soon(self, digest: str) -> None:
        """Look ``digest`` up in the background (once at a time), off the request's path."""
        if digest in self._lookups:
            return
        task = asyncio.ensure_future(self._refresh(digest))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _refresh(self, digest: str) -> None:
        asked_at = self._clock()
        try:
            record = await self._lookup(digest)
        except StoreUnavailable:
            return  # the next request or recheck tries again
        known = self._known.get(digest)
        if record is None:
            self._known.pop(digest, None)
        elif known is not None:
            known.record, known.checked = record, asked_at

    def forget(self, token_hash: str) -> None:
        """Stop trusting what is known of a token (it was just revoked)."""
        self._known.pop(token_hash, None)

    def confirm_all(self, at: float) -> None:
        """The store's change feed named every token revoked before ``at`` (monotonic
        seconds): every token still known is confirmed as of then."""
        self._confirmed = max(self._confirmed, at)

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
            async with asyncio.timeout(self.LOOKUP_DEADLINE_S):
                return await self._store.find_token(digest)
        except TimeoutError:
            raise StoreUnavailable("the token store did not answer in time") from None

    async def record_for(self, authorization: str | None) -> TokenRecord:
        """The record of the bearer token in ``authorization``; ``Unauthorized`` when there is
        none, or it is unknown, revoked or expired."""
        record = await self._find(authorization)
        if self._expired(record):
            assert record.expires_ms is not None
            raise Unauthorized(f"this token expired at {rfc3339(record.expires_ms)}")
        known = self._known.get(record.hash)
        now = self._clock()
        if known is not None and now - known.touched >= self.TOUCH_S:
            self._touch(known, now)
        return record

    def _digest(self, token: str) -> str:
        """``token``'s hash, remembered (keyed as ``cached`` looks it up)."""
        digest = self._digests.get(token)
        if digest is None:
            digest = hash_token(token.strip())
            if len(self._digests) >= _DIGESTS_KEPT:
                self._digests.clear()  # a flood of made-up tokens must not grow memory
            self._digests[token] = digest
        return digest

    async def _find(self, authorization: str | None) -> TokenRecord:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # schemes are case-insensitive
            raise Unauthorized("send the token as `Authorization: Bearer <token>`")
        digest = self._digest(token)
        now = self._clock()
        known = self._known.get(digest)
        if known is not None:
            age = now - max(known.checked, self._confirmed)
            if age < self.TRUST_S:
                known.used = now
                if age >= self.REFRESH_S:
                    self._refresh_soon(digest)
                return known.record
            if age < self.STALE_OK_S and not self._store.healthy:
                # The store is down: its own answer (503) follows; do not wait on it here.
                known.used = now
                return known.record
        try:
            record = await self._lookup(digest)
        except StoreUnavailable:
            if known is not None and now - known.checked < self.STALE_OK_S:
                known.used = now
                return known.record
            raise
        if record is None:
            self._known.pop(digest, None)
            raise Unauthorized("unknown or revoked token")
        self._known[digest] = _Known(record, now)
        return record

    async def authenticate(self, authorization: str | None, peer: str | None) -> TokenRecord:
        """The record of the caller's token (``record_for``), with failures throttled: from a
        source address (``peer``) or with an unknown token that failed ``AuthLimits.failures``
        times within the window, ``TooManyRequests`` until the ban ends, without asking the
        store. Unknown tokens being looked up count as failures until they are decided, so a
        burst of guesses sent at once is cut short too (one new token sent on many
        connections at once is one lookup, and counts once). A token this process has seen
        is let through (and checked as usual)."""
        record = self.cached(authorization)
        if record is not None:
            return record
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            token = ""
        if token and self._entry(token) is not None:
            return await self.record_for(authorization)
        now = self._clock()
        address = peer or "-"
        presented = self._digest(token)[:16] if token else ""  # the one ``record_for`` uses
        asking = self._asking.setdefault(address, set())
        wait = max(self._by_address.ban_ends(address, now) or 0.0,
                   (self._by_token.ban_ends(presented, now) or 0.0) if presented else 0.0)
        if not wait and presented not in asking and (
            self._by_address.counted(address, now) + len(asking) >= self._failures
        ):
            wait = 1.0  # the lookups in flight decide within a second
        if wait > 0:
            if not asking:
                del self._asking[address]
            self.refused += 1
            raise TooManyRequests(
                f"too many failed authentications from this address or with this token; "
                f"try again in {math.ceil(wait)} s", retry_after_s=math.ceil(wait))
        fresh = presented not in asking
        asking.add(presented)
        try:
            return await self.record_for(authorization)
        except Unauthorized:
            now = self._clock()
            self._by_address.failed(address, now)
            if presented:
                self._by_token.failed(presented, now)
            raise
        finally:
            if fresh:
                asking.discard(presented)
                if not asking:
                    self._asking.pop(address, None)

    async def account_for(self, authorization: str | None) -> str:
        return (await self.record_for(authorization)).account_id

    async def recheck(self) -> None:
        """Look up again every token used within ``IDLE_S``; forget the others, and the
        revoked."""
        now = self._clock()
        for digest, known in list(self._known.items()):
            if now - known.used > self.IDLE_S:
                del self._known[digest]
                continue
            record = await self._lookup(digest)
            if record is None:
                self._known.pop(digest, None)
            elif self._known.get(digest) is known:
                known.record, known.checked = record, now

    async def keep_fresh(self) -> None:
        """``recheck`` every ``RECHECK_S`` (every ``FEED_RECHECK_S`` with a store whose
        change feed names revoked tokens), until cancelled."""
        every = self.FEED_RECHECK_S if self._store.feeds_revocations else self.RECHECK_S
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(StoreUnavailable):
                await self.recheck()
