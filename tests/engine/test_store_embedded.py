"""Faults particular to the embedded store: its database thread dying."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.errors import StoreUnavailable
from engine.store import EmbeddedStore

from .test_store_contract import allow, ticket


def _die(conn: sqlite3.Connection) -> None:
    raise SystemExit("simulated death of the database thread")


async def test_dead_database_thread_fails_fast_and_reports_unhealthy(store: EmbeddedStore) -> None:
    assert store.healthy
    with pytest.raises(StoreUnavailable):
        await store._db.submit(_die)
    assert not store.healthy
    with pytest.raises(StoreUnavailable, match="thread failed"):
        await store.admit(ticket("c1", account_limit=None), allow("c1"))
    assert store.lease_counts().get("a", 0) == 0, "the refused dial left no lease behind"
    with pytest.raises(StoreUnavailable):
        await store.account_versions()


async def test_call_log_keeps_one_row_per_call(store: EmbeddedStore) -> None:
    from callerid import Outcome

    for i in range(5):
        await store.admit(ticket(f"c{i}", limit=10), allow(f"c{i}"))
        await store.heartbeat("a", f"c{i}", 60_000)
        await store.end("a", f"c{i}", Outcome.ANSWERED)
    rows = await store._db.read(
        lambda conn: conn.execute(
            "SELECT call_id, COUNT(*) FROM call_log GROUP BY call_id"
        ).fetchall()
    )
    assert sorted(rows) == [(f"c{i}", 1) for i in range(5)]


async def test_a_database_of_an_earlier_version_is_brought_up_to_date(tmp_path: Path) -> None:
    """Tokens and sticky entries written before their newer columns existed still load."""
    from engine.store import TokenRecord

    (tmp_path / "data").mkdir()
    conn = sqlite3.connect(tmp_path / "data" / "callgate.db")
    conn.executescript(
        """
        CREATE TABLE tokens (hash TEXT PRIMARY KEY, account_id TEXT NOT NULL,
            name TEXT NOT NULL, created_ms INTEGER NOT NULL);
        CREATE TABLE sticky (account_id TEXT NOT NULL, contact TEXT NOT NULL, caller_id TEXT,
            updated_ms INTEGER NOT NULL, PRIMARY KEY (account_id, contact)) WITHOUT ROWID;
        INSERT INTO tokens VALUES ('h', 'a', 'old', 1);
        """
    )
    conn.commit()
    conn.close()
    store = EmbeddedStore(tmp_path / "data", exclusive=True)
    await store.open()
    try:
        assert await store.find_token("h") == TokenRecord(
            hash="h", account_id="a", name="old", created_ms=1
        )
    finally:
        await store.close()
