"""The connections the Redis store keeps: ``pool`` pipelined connections for dials and one
for the rest, however many dials wait; the script source sent once per connection; and
connections broken by a Redis restart replaced without failing a dial."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig, Reason
from engine.decide import Engine
from engine.service import AccountService
from engine.store.redis_store import RedisStore
from engine.wire import DialRequest

from ..conftest import another_account
from ..redis_support import RedisClusterNodes, RedisServer


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


async def test_a_burst_runs_on_the_pool_pipelined(
    redis: RedisServer, demo: AccountConfig
) -> None:
    store, engine = await _engine(f"{redis.url}?pool=2&timeout_ms=5000", demo)
    try:
        reasons = await _burst(engine, "a", 300)
        assert reasons == [None] * 300  # none failed
        clients = _clients(redis)
        assert len(clients) <= 2 + 1, clients  # the pool, and one for everything else
        assert store.connections_opened() <= 3
        assert redis.cli("ZCARD", "cg:{demo}:channels") == "300"
        # This Redis knew no script: each connection loaded it once, not each dial (ADMIT on
        # the two dial connections; CLAIM_NUMBERS, SAVE_CONFIG, RELEASE_NUMBERS and ANNOUNCE
        # on the other).
        assert _calls(redis, "eval") == 0
        assert 1 <= _calls(redis, "script|load") <= 2 + 4
        assert _calls(redis, "evalsha") >= 300
    finally:
        await store.close()


async def test_connections_broken_by_a_restart_fail_no_dial(
    redis: RedisServer, demo: AccountConfig
) -> None:
    store, engine = await _engine(f"{redis.url}?pool=2&timeout_ms=5000", demo)
    try:
        assert await _burst(engine, "before", 30) == [None] * 30
        redis.restart()  # no AOF: an empty Redis that knows no script either
        await asyncio.sleep(0.05)  # the kernel tells the store its connections closed
        # Each broken connection is replaced on first use; every dial waits for that.
        assert await _burst(engine, "after", 30) == [None] * 30
        assert redis.cli("ZCARD", "cg:{demo}:channels") == "30"
    finally:
        await store.close()


async def test_a_stalled_cluster_master_holds_up_only_its_own_accounts(
    tmp_path: Path, demo: AccountConfig
) -> None:
    """Each Redis server has its own admission queue: with the master of one account's slot
    stopped, that account's dials fill its queue and get 503, while an account on another
    master is decided as usual."""
    cluster = RedisClusterNodes(tmp_path / "cluster").start()
    try:
        ids = [f"acct{i}" for i in range(40)]
        stalled_id = ids[0]
        stalled = cluster.master_of(f"cg:{{{stalled_id}}}:channels")
        healthy_id = next(
            a for a in ids if cluster.master_of(f"cg:{{{a}}}:channels") is not stalled
        )
        store = RedisStore(f"{cluster.url}&inflight=8")
        await store.open()
        try:
            engine = Engine(store)
            service = AccountService(store, on_saved=engine.install)
            for n, account_id in enumerate((stalled_id, healthy_id)):
                await service.put(another_account(demo, account_id, n))
            assert stalled.process is not None
            stalled.process.send_signal(signal.SIGSTOP)
            try:
                waiting = [asyncio.create_task(engine.dial(stalled_id, DialRequest(
                    user="olivia", to=f"+1212555{i:04d}"))) for i in range(30)]
                await asyncio.sleep(0.02)  # 8 are sent and stuck; the rest wait their turn
                healthy = await engine.dial(healthy_id, DialRequest(user="olivia",
                                                                    to="+12125550100"))
                assert healthy.allowed, healthy
                reasons = {d.reason for d in await asyncio.gather(*waiting)}
                assert reasons == {Reason.STORE_UNAVAILABLE}
            finally:
                stalled.process.send_signal(signal.SIGCONT)
        finally:
            await store.close()
    finally:
        cluster.stop()
