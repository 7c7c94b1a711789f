"""The token cache in front of the store: one lookup for a burst of requests with a new
token, a revoked token refused once the cache revalidates, a known token riding out an outage
of the store."""

from __future__ import annotations

import asyncio

import pytest

from engine.errors import StoreUnavailable, Unauthorized
from engine.store import EmbeddedStore, TokenRecord
from engine.tokens import TokenCache, issue_token


class Counting:
    """A real store, with its token lookups counted (and failed, when told to)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.lookups = 0
        self.down = False

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        self.lookups += 1
        if self.down:
            raise StoreUnavailable("the store is down")
        return await self.store.find_token(token_hash)


async def test_a_burst_with_a_new_token_makes_one_lookup(store: EmbeddedStore) -> None:
    token = await issue_token(store, "a", "burst")
    counting = Counting(store)
    cache = TokenCache(counting)  # type: ignore[arg-type]
    accounts = await asyncio.gather(*(cache.account_for(f"Bearer {token}") for _ in range(200)))
    assert set(accounts) == {"a"} and counting.lookups == 1


async def test_a_known_token_rides_out_an_outage_an_unknown_one_does_not(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await issue_token(store, "a", "known")
    stranger = await issue_token(store, "a", "stranger")
    counting = Counting(store)
    cache = TokenCache(counting)  # type: ignore[arg-type]
    assert await cache.account_for(f"Bearer {token}") == "a"
    monkeypatch.setattr("engine.tokens._REVALIDATE_S", 0.0)  # every request asks the store
    counting.down = True
    assert await cache.account_for(f"Bearer {token}") == "a"
    with pytest.raises(StoreUnavailable):
        await cache.account_for(f"Bearer {stranger}")
    counting.down = False
    await store.revoke_token("a", "known")
    with pytest.raises(Unauthorized):
        await cache.account_for(f"Bearer {token}")
