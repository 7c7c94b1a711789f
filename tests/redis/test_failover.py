"""Failover under load: with a primary, a replica and three Sentinels, the primary is killed
while dials flow; in a 3-master Cluster with a replica each, the master of the account's slot
is. Either way decisions resume on the promoted replica without restarting callgate, and the
channel limit still holds afterwards."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.http.http_support import account, agent

from ..redis_support import RedisClusterNodes, SentinelGroup
from .fleet import Fleet
from .test_processes import Clients, spread


async def _load(api: Any, stop: asyncio.Event, log: list[tuple[float, int, Any]]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        reply = await api.request(
            "POST", "/v1/dial", json={"user": "load", "to": f"+1646555{n % 10000:04d}"}
        )
        log.append((time.monotonic(), reply.status, reply.body))
        if reply.status == 200 and reply.body["allowed"]:
            await api.request("POST", f"/v1/calls/{reply.body['call_id']}/end",
                              json={"outcome": "busy"})
        elif reply.status == 503:
            await asyncio.sleep(0.05)


async def _kill_under_load(fleet: Fleet, kill: Callable[[], None]) -> None:
    """Two servers under a steady load; ``kill`` a Redis server; decisions must resume (every
    answer of half a second 200) within 30 s without restarting callgate, every answer
    meanwhile being a decision or 503 ``store_unavailable``; then the channel limit holds."""
    users = [agent("load", max_channels=1000), agent("after", max_channels=3)]
    fleet.setup(account(users=users, max_channels=None))
    servers = fleet.start(2)
    async with Clients(servers) as apis:
        stop = asyncio.Event()
        log: list[tuple[float, int, Any]] = []
        workers = [asyncio.create_task(_load(apis[i % 2], stop, log)) for i in range(16)]
        await asyncio.sleep(1.0)
        killed_at = time.monotonic()
        kill()
        resumed_at = None
        while time.monotonic() < killed_at + 30:
            await asyncio.sleep(0.2)
            recent = [s for t, s, _ in log if t > time.monotonic() - 0.5]
            if recent and set(recent) == {200}:
                resumed_at = time.monotonic()
                break
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*workers)
    assert resumed_at is not None, Counter(s for _, s, _ in log)
    statuses = Counter(status for _, status, _ in log)
    assert set(statuses) <= {200, 503}
    assert {b["reason"] for _, s, b in log if s == 503} <= {"store_unavailable"}
    assert all(server.process and server.process.poll() is None for server in servers)
    print(f"resumed {resumed_at - killed_at:.1f} s after the kill; {dict(statuses)}")
    decisions = await spread(servers, [{"user": "after", "to": f"+1212555{i:04d}"}
                                       for i in range(60)])
    assert sum(d["allowed"] for d in decisions) == 3


async def test_primary_killed_under_load_fails_over_to_the_replica(tmp_path: Path) -> None:
    group = SentinelGroup(tmp_path / "sentinel").start()
    (tmp_path / "fleet").mkdir()
    fleet = Fleet(tmp_path / "fleet", group.primary, url=group.url)
    try:
        old_primary = group.primary.port
        await _kill_under_load(fleet, group.primary.kill)
        assert group.primary_port() == group.replica.port != old_primary
    finally:
        fleet.close()
        group.stop()


async def test_a_cluster_master_killed_under_load_fails_over_to_its_replica(
    tmp_path: Path,
) -> None:
    cluster = RedisClusterNodes(tmp_path / "cluster", replicas=1).start()
    (tmp_path / "fleet").mkdir()
    fleet = Fleet(tmp_path / "fleet", cluster.nodes[0], url=cluster.url)
    try:
        doomed = cluster.master_of("cg:{demo}:channels")
        await _kill_under_load(fleet, doomed.kill)
        assert cluster.master_of("cg:{demo}:channels") is not doomed
    finally:
        fleet.close()
        cluster.stop()
