"""The connections the Redis store keeps: never more than ``pool`` for scripts however many
dials wait, and connections broken by a Redis restart replaced without failing a dial."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig, Reason
from engine.decide import Engine
from engine.service import AccountService
from engine.store.redis_store import ADMIN_POOL_SIZE, RedisStore
from engine.wire import DialRequest

from ..redis_support import RedisServer


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A Redis of this test's own: its client list is the store's alone."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


async def _engine(url: str, demo: AccountConfig) -> tuple[RedisStore, Engine]:
    store = RedisStore(url)
    await store.open()
    engine = Engine(store)
    roomy = msgspec.structs.replace(
        demo,
        users=tuple(msgspec.structs.replace(u, max_channels=10_000) for u in demo.users),
        max_channels=None,
    )
    await AccountService(store, on_saved=engine.install).put(roomy)
    return store, engine


async def _burst(engine: Engine, tag: str, count: int) -> list[Reason | None]:
    decisions = await asyncio.gather(
        *(engine.dial("demo", DialRequest(user="olivia", to=f"+1212555{i:04d}",
                                          call_id=f"{tag}-{i}"))
          for i in range(count))
    )
    return [d.reason for d in decisions]


def _clients(redis: RedisServer) -> list[dict[str, str]]:
    """Every client connection but redis-cli's own, as CLIENT LIST's fields."""
    rows = [dict(f.split("=", 1) for f in line.split() if "=" in f)
            for line in redis.cli("CLIENT", "LIST").splitlines()]
    return [row for row in rows if row.get("cmd") != "client|list"]


def _calls(redis: RedisServer, command: str) -> int:
    for line in redis.cli("INFO", "commandstats").splitlines():
        if line.startswith(f"cmdstat_{command}:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


async def test_dials_never_open_more_connections_than_the_pool(
    redis: RedisServer, demo: AccountConfig
) -> None:
    store, engine = await _engine(f"{redis.url}?pool=3&timeout_ms=5000", demo)
    try:
        reasons = await _burst(engine, "a", 300)
        assert reasons == [None] * 300  # all waited their turn, none failed
        clients = _clients(redis)
        scripts = [c for c in clients if c["cmd"] == "evalsha"]
        assert 1 <= len(scripts) <= 3, clients
        assert len(clients) <= 3 + ADMIN_POOL_SIZE, clients
        assert redis.cli("ZCARD", "cg:{demo}:leases") == "300"
        # This Redis knew no script: each connection sent the source once, not each dial.
        evals = _calls(redis, "eval")
        assert 1 <= evals <= 3 + 1, evals  # + the configuration's save
        assert _calls(redis, "evalsha") == 300 + 1
    finally:
        await store.close()


async def test_connections_broken_by_a_restart_fail_no_dial(
    redis: RedisServer, demo: AccountConfig
) -> None:
    store, engine = await _engine(f"{redis.url}?timeout_ms=5000", demo)
    try:
        assert await _burst(engine, "before", 30) == [None] * 30
        idle = len([c for c in _clients(redis) if c["cmd"] == "evalsha"])
        assert idle >= 2, "several idle connections, all broken by the restart below"
        redis.restart()  # no AOF: an empty Redis that knows no script either
        # The first use of each broken connection fails; its retry runs on a new one.
        assert await _burst(engine, "after", 30) == [None] * 30
        assert redis.cli("ZCARD", "cg:{demo}:leases") == "30"
    finally:
        await store.close()
