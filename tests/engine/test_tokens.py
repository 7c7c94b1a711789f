"""The token cache in front of the store: requests are answered from memory, one lookup
serves a burst with a new token, a revoked token is refused within ``TRUST_S``, and a known
token rides out an outage of the store. Time is a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import StoreUnavailable, Unauthorized
from engine.store import EmbeddedStore, TokenRecord
from engine.tokens import TokenCache, issue_token


class Counting:
    """A real store, with its token lookups counted (and failed, when told to)."""

    def __init__(self, store: EmbeddedStore, *, feed: bool = False) -> None:
        self.store = store
        self.lookups = 0
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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_with_a_new_token_makes_one_lookup(store: EmbeddedStore) -> None:
    token = await issue_token(store, "a", "burst")
    counting = Counting(store)
    cache = TokenCache(counting)  # type: ignore[arg-type]
    accounts = await asyncio.gather(*(cache.account_for(f"Bearer {token}") for _ in range(200)))
    assert set(accounts) == {"a"} and counting.lookups == 1


async def test_a_known_token_is_answered_from_memory_while_confirmed(
    store: EmbeddedStore,
) -> None:
    token = await issue_token(store, "a", "known")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock)  # type: ignore[arg-type]
    header = f"Bearer {token}"
    await cache.account_for(header)
    for _ in range(10):  # background rechecks keep it confirmed: no request waits on them
        clock.now += cache.RECHECK_S
        await cache.recheck()
        assert cache.cached(header) is not None
    assert counting.lookups == 11


async def test_a_token_revoked_elsewhere_is_refused_at_the_next_recheck(
    store: EmbeddedStore,
) -> None:
    token = await issue_token(store, "a", "revoked")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock)  # type: ignore[arg-type]
    header = f"Bearer {token}"
    await cache.account_for(header)
    await store.revoke_token("a", "revoked")  # another process does this
    clock.now += cache.RECHECK_S
    await cache.recheck()
    assert cache.cached(header) is None
    with pytest.raises(Unauthorized):
        await cache.account_for(header)


async def test_an_unconfirmed_token_is_looked_up_again_after_trust_runs_out(
    store: EmbeddedStore,
) -> None:
    token = await issue_token(store, "a", "stale")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock)  # type: ignore[arg-type]
    header = f"Bearer {token}"
    await cache.account_for(header)
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
    token = await issue_token(store, "a", "refreshed")
    counting, clock = Counting(store), Clock()
    cache = TokenCache(counting, clock=clock)  # type: ignore[arg-type]
    header = f"Bearer {token}"
    await cache.account_for(header)
    clock.now += cache.REFRESH_S  # no recheck ran: the request starts a background lookup
    assert cache.cached(header) is not None
    await asyncio.sleep(0.05)
    assert counting.lookups == 2
    clock.now += cache.TRUST_S - 0.1  # confirmed by that lookup: still answered from memory
    assert cache.cached(header) is not None
