"""Faults particular to the embedded store: its database thread dying."""

from __future__ import annotations

import sqlite3

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
