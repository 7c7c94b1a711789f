"""Tokens in each store: an expiry kept with the record, and when a token was last used,
written coarsely and listed with it; a database from before either column still opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.store import EmbeddedStore, Store, TokenRecord

from .test_store_contract import Clock, clock, contract_store

__all__ = ["clock", "contract_store"]  # fixtures, shared with the store contract


def record(name: str, *, expires_ms: int | None = None) -> TokenRecord:
    return TokenRecord(hash=f"{name:0<64}"[:64], account_id="a", name=name,
                       created_ms=1_700_000_000_000, user_id="u", expires_ms=expires_ms)


async def test_an_expiry_is_kept_and_use_is_listed(contract_store: Store, clock: Clock) -> None:
    await contract_store.add_token(record("expiring", expires_ms=1_800_000_000_000))
    await contract_store.add_token(record("forever"))
    found = await contract_store.find_token(record("expiring").hash)
    assert found is not None and found.expires_ms == 1_800_000_000_000
    listed = {r.name: r for r in await contract_store.list_tokens("a")}
    assert listed["forever"].expires_ms is None
    assert listed["expiring"].last_used_ms is None and listed["forever"].last_used_ms is None

    await contract_store.touch_token("a", record("expiring").hash, 1_750_000_000_000)
    listed = {r.name: r for r in await contract_store.list_tokens("a")}
    assert listed["expiring"].last_used_ms == 1_750_000_000_000
    assert listed["forever"].last_used_ms is None
    await contract_store.touch_token("other", record("forever").hash, 1_750_000_000_000)
    used = {r.name: r.last_used_ms for r in await contract_store.list_tokens("a")}
    assert used["forever"] is None

    assert await contract_store.remove_token("a", record("expiring").hash)
    await contract_store.add_token(record("expiring"))  # the same hash again: never used
    listed = {r.name: r for r in await contract_store.list_tokens("a")}
    assert listed["expiring"].last_used_ms is None and listed["expiring"].expires_ms is None


async def test_a_database_from_before_token_expiry_opens(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "callgate.db") as conn:
        conn.execute("CREATE TABLE tokens (hash TEXT PRIMARY KEY, account_id TEXT NOT NULL, "
                     "name TEXT NOT NULL, created_ms INTEGER NOT NULL, user_id TEXT)")
        conn.execute("INSERT INTO tokens VALUES (?, 'a', 'old', 1, 'u')", ("f" * 64,))
    store = EmbeddedStore(data, exclusive=True)
    await store.open()
    try:
        old = await store.find_token("f" * 64)
        assert old is not None and old.expires_ms is None and old.name == "old"
        await store.touch_token("a", "f" * 64, 5)
        assert [r.last_used_ms for r in await store.list_tokens("a")] == [5]
    finally:
        await store.close()
