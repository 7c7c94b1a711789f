"""The token cache in front of the store: requests are answered from memory, one lookup
serves a burst with a new token, a revoked token is refused within ``TRUST_S``, and a known
token rides out an outage of the store. Time is a fake clock."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import pytest

from engine.errors import StoreUnavailable, TooManyRequests, Unauthorized
from engine.store import EmbeddedStore, TokenRecord
from engine.tokens import AuthLimits, TokenCache, issue_token


class Counting:
    """A real store, with its token lookups counted (and failed, when told to)."""

    def __init__(self, store: EmbeddedStore, *, feed: bool = False) -> None:
        self.store = store
        self.lookups = 0
        self.touches: list[int] = []
        self.down = False
        self.feeds_revocations = feed

    @property
    def healthy(self) -> bool:
        return not self.down

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        self.lookups += 1
        if self.down:
            raise StoreUnavailable("the store is down")
        return await self.store.find_token(token_hash)

    async def touch_token(self, account_id: str, token_hash: str, at_ms: int) -> None:
        self.touches.append(at_ms)
        if self.down:
            raise StoreUnavailable("the store is down")
        await self.store.touch_token(account_id, token_hash, at_ms)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Known(NamedTuple):
    counting: Counting
    clock: Clock
    cache: TokenCache
    header: str


async def known_token(store: EmbeddedStore, name: str) -> Known:
    """A cache on a fake clock that has just looked up a new token ``name`` once: where each
    test of how long a known token is trusted starts."""
    token = await issue_token(store, "a", name)
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock)  # type: ignore[arg-type]
    header = f"Bearer {token}"
    await cache.account_for(header)
    return Known(counting, clock, cache, header)


async def test_a_burst_with_a_new_token_makes_one_lookup(store: EmbeddedStore) -> None:
    token = await issue_token(store, "a", "burst")
    counting = Counting(store)
    cache = TokenCache(counting)  # type: ignore[arg-type]
    accounts = await asyncio.gather(*(cache.account_for(f"Bearer {token}") for _ in range(200)))
    assert set(accounts) == {"a"} and counting.lookups == 1


async def test_a_known_token_is_answered_from_memory_while_confirmed(
    store: EmbeddedStore,
) -> None:
    counting, clock, cache, header = await known_token(store, "known")
    for _ in range(10):  # background rechecks keep it confirmed: no request waits on them
        clock.now += cache.RECHECK_S
        await cache.recheck()
        assert cache.cached(header) is not None
    assert counting.lookups == 11


async def test_a_token_revoked_elsewhere_is_refused_at_the_next_recheck(
    store: EmbeddedStore,
) -> None:
    _, clock, cache, header = await known_token(store, "revoked")
    await store.revoke_token("a", "revoked")  # another process does this
    clock.now += cache.RECHECK_S
    await cache.recheck()
    assert cache.cached(header) is None
    with pytest.raises(Unauthorized):
        await cache.account_for(header)


async def test_an_unconfirmed_token_is_looked_up_again_after_trust_runs_out(
    store: EmbeddedStore,
) -> None:
    counting, clock, cache, header = await known_token(store, "stale")
    clock.now += cache.TRUST_S  # no recheck ran (say the loop was busy)
    assert cache.cached(header) is None
    await store.revoke_token("a", "stale")
    with pytest.raises(Unauthorized):
        await cache.account_for(header)
    assert counting.lookups == 2


async def test_a_change_feed_confirms_every_token_without_lookups(store: EmbeddedStore) -> None:
    tokens = [await issue_token(store, "a", f"t{i}") for i in range(3)]
    counting, clock = Counting(store, feed=True), Clock()
    cache = TokenCache(counting, clock=clock)  # type: ignore[arg-type]
    for token in tokens:
        await cache.account_for(f"Bearer {token}")
    for _ in range(30):
        clock.now += 1.0
        cache.confirm_all(clock.now)  # a poll of the feed named no revoked token
        assert all(cache.cached(f"Bearer {t}") is not None for t in tokens)
    assert counting.lookups == 3
    clock.now += cache.TRUST_S  # the feed stopped answering: trust runs out
    assert cache.cached(f"Bearer {tokens[0]}") is None


async def test_a_known_token_rides_out_an_outage_an_unknown_one_does_not(
    store: EmbeddedStore,
) -> None:
    token = await issue_token(store, "a", "known")
    stranger = await issue_token(store, "a", "stranger")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock)  # type: ignore[arg-type]
    assert await cache.account_for(f"Bearer {token}") == "a"
    counting.down = True
    clock.now += cache.TRUST_S + 1
    looked_up = counting.lookups
    assert await cache.account_for(f"Bearer {token}") == "a"
    assert counting.lookups == looked_up, "a store known to be down is not waited on"
    with pytest.raises(StoreUnavailable):
        await cache.account_for(f"Bearer {stranger}")
    with pytest.raises(StoreUnavailable):
        await cache.recheck()
    clock.now += cache.STALE_OK_S  # too long without a confirmation: no more
    with pytest.raises(StoreUnavailable):
        await cache.account_for(f"Bearer {token}")
    counting.down = False
    await store.revoke_token("a", "known")
    with pytest.raises(Unauthorized):
        await cache.account_for(f"Bearer {token}")


async def test_a_token_near_the_end_of_its_trust_is_refreshed_off_the_request(
    store: EmbeddedStore,
) -> None:
    counting, clock, cache, header = await known_token(store, "refreshed")
    clock.now += cache.REFRESH_S  # no recheck ran: the request starts a background lookup
    assert cache.cached(header) is not None
    await asyncio.sleep(0.05)
    assert counting.lookups == 2
    clock.now += cache.TRUST_S - 0.1  # confirmed by that lookup: still answered from memory
    assert cache.cached(header) is not None


# -- throttling failed authentications ---------------------------------------------------------


async def test_failures_from_one_address_get_it_refused_until_the_ban_ends(
    store: EmbeddedStore,
) -> None:
    """After ``failures`` wrong tokens from an address: 429 with how long to wait, without a
    store lookup; other addresses, and tokens this process knows, are unaffected; after the
    ban, the address is heard again."""
    good = await issue_token(store, "a", "good")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock,  # type: ignore[arg-type]
                       limits=AuthLimits(failures=5, window_s=60, ban_s=30))
    assert (await cache.authenticate(f"Bearer {good}", "10.0.0.9")).account_id == "a"
    for i in range(5):
        with pytest.raises(Unauthorized):
            await cache.authenticate(f"Bearer cg_wrong{i}", "10.0.0.1")
    lookups = counting.lookups
    with pytest.raises(TooManyRequests) as refused:
        await cache.authenticate("Bearer cg_wrong-again", "10.0.0.1")
    assert refused.value.retry_after_s == 30 and counting.lookups == lookups
    with pytest.raises(TooManyRequests):
        await cache.authenticate(None, "10.0.0.1")  # no token at all: refused the same
    assert (await cache.authenticate(f"Bearer {good}", "10.0.0.1")).account_id == "a"
    clock.now += cache.TRUST_S + 1  # still banned; the known token needs a lookup: it gets one
    assert (await cache.authenticate(f"Bearer {good}", "10.0.0.1")).account_id == "a"
    assert counting.lookups == lookups + 1
    with pytest.raises(Unauthorized):  # another address: a wrong token is just a 401
        await cache.authenticate("Bearer cg_wrong0", "10.0.0.2")
    clock.now += 30
    with pytest.raises(Unauthorized):  # the ban has ended
        await cache.authenticate("Bearer cg_wrong-again", "10.0.0.1")
    assert cache.refused == 2


async def test_one_unknown_token_from_many_addresses_gets_refused(store: EmbeddedStore) -> None:
    """A fleet of clients stuck on one revoked token: after ``failures`` tries from anywhere,
    that token is answered 429 without a lookup; other tokens from those addresses are not."""
    good = await issue_token(store, "a", "good")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock,  # type: ignore[arg-type]
                       limits=AuthLimits(failures=3, window_s=60, ban_s=10))
    for i in range(3):
        clock.now += 1
        with pytest.raises(Unauthorized):
            await cache.authenticate("Bearer cg_revoked", f"10.0.1.{i}")
    with pytest.raises(TooManyRequests) as refused:
        await cache.authenticate("Bearer cg_revoked", "10.0.1.99")
    assert refused.value.retry_after_s == 10
    assert (await cache.authenticate(f"Bearer {good}", "10.0.1.99")).account_id == "a"


async def test_failures_spread_wider_than_the_window_ban_nothing(store: EmbeddedStore) -> None:
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock,  # type: ignore[arg-type]
                       limits=AuthLimits(failures=3, window_s=10, ban_s=10))
    for i in range(6):
        clock.now += 6  # never 3 within 10 s
        with pytest.raises(Unauthorized):
            await cache.authenticate(f"Bearer cg_wrong{i}", "10.0.0.1")
    assert cache.refused == 0


async def test_a_burst_of_guesses_sent_at_once_makes_few_lookups(store: EmbeddedStore) -> None:
    """Guesses in flight count as failures: of 100 different wrong tokens sent at once from
    one address, only ``failures`` reach the store; 100 requests with one new valid token
    from one address are one lookup and all pass."""
    good = await issue_token(store, "a", "good")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock,  # type: ignore[arg-type]
                       limits=AuthLimits(failures=5, window_s=60, ban_s=30))
    guesses = await asyncio.gather(
        *(cache.authenticate(f"Bearer cg_guess{i}", "10.0.0.1") for i in range(100)),
        return_exceptions=True)
    assert counting.lookups == 5
    assert sum(isinstance(g, Unauthorized) for g in guesses) == 5
    assert sum(isinstance(g, TooManyRequests) for g in guesses) == 95
    records = await asyncio.gather(
        *(cache.authenticate(f"Bearer {good}", "10.0.0.2") for _ in range(100)))
    assert {r.account_id for r in records} == {"a"} and counting.lookups == 6


# -- expiry and last use ---------------------------------------------------------------------


async def test_a_token_stops_working_when_it_expires(store: EmbeddedStore) -> None:
    wall = [1_800_000_000_000]
    token = await issue_token(store, "a", "short", expires_ms=wall[0] + 60_000)
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock, wall_ms=lambda: wall[0])  # type: ignore[arg-type]
    assert (await cache.record_for(f"Bearer {token}")).name == "short"
    assert cache.cached(f"Bearer {token}") is not None
    wall[0] += 60_000
    assert cache.cached(f"Bearer {token}") is None, "memory does not outlive the expiry"
    with pytest.raises(Unauthorized, match=r"expired at 2027-01-15T08:01:00\.000Z"):
        await cache.record_for(f"Bearer {token}")


async def test_use_is_written_at_most_once_a_minute(store: EmbeddedStore) -> None:
    wall = [1_800_000_000_000]
    token = await issue_token(store, "a", "busy")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock, wall_ms=lambda: wall[0])  # type: ignore[arg-type]
    await cache.record_for(f"Bearer {token}")
    for _ in range(130):  # a busy minute and more: answered from memory, written twice
        clock.now += 0.5
        wall[0] += 500
        if cache.cached(f"Bearer {token}") is None:
            cache.confirm_all(clock.now)  # as the change feed would, every poll
            assert cache.cached(f"Bearer {token}") is not None
    await asyncio.sleep(0)
    assert counting.touches == [1_800_000_000_000, 1_800_000_060_000]
    assert [r.last_used_ms for r in await store.list_tokens("a")] == [1_800_000_060_000]
    counting.down = True  # a write that fails is not retried before the next minute
    clock.now += 60
    cache.confirm_all(clock.now)
    assert cache.cached(f"Bearer {token}") is not None
    await asyncio.sleep(0)
    assert len(counting.touches) == 3
