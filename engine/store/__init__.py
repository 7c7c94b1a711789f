"""Stores: where configuration, tokens, leases, call records and sticky caller IDs live."""

from pathlib import Path

from .embedded import EmbeddedStore
from .protocol import (
    AnswerWindow,
    AuditEntry,
    AuditQuery,
    Ended,
    LiveCall,
    Peek,
    Plan,
    Rotation,
    Store,
    TextTicket,
    Ticket,
    TokenRecord,
)
from .redis_store import RedisSettings, RedisStore

__all__ = [
    "AnswerWindow",
    "AuditEntry",
    "AuditQuery",
    "EmbeddedStore",
    "Ended",
    "LiveCall",
    "Peek",
    "Plan",
    "Rotation",
    "Store",
    "TextTicket",
    "Ticket",
    "TokenRecord",
    "open_store",
]


def open_store(data_dir: Path, redis: RedisSettings | None, *, serving: bool) -> Store:
    """The Redis store when ``redis`` is given, else the embedded store in ``data_dir``. A
    server (``serving``) waits for Redis to come up and owns the data directory alone; a
    one-off command fails at once and may run beside a server."""
    if redis is not None:
        return RedisStore(redis, wait_at_start=serving)
    return EmbeddedStore(data_dir, exclusive=serving)
