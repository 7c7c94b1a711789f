"""Redis failing under callgate: unreachable at start, killed under load, back again. Every
decision is answered within the bound, as a decision or as 503 ``store_unavailable``; no
process dies; decisions are right again once Redis is back; what was acknowledged before a
kill is still there after a restart of a Redis running with AOF."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CALLGATE, Server
from tests.http.http_support import Api, account, agent, connect

from ..redis_support import RedisServer, free_port
from .fleet import Fleet
from .test_processes import Clients, spread

AOF = ("--appendonly", "yes", "--appendfsync", "always")
BOUND_S = 0.1
SLACK_S = 0.9
"""What a 2-core machine running Redis, two servers and the load may add to the bound."""


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", *AOF).start()
    yield server
    server.kill()


async def _load(api: Api, stop: asyncio.Event, log: list[tuple[float, float, int, Any]]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        reply = await api.request(
            "POST", "/v1/dial", json={"user": "load", "to": f"+1646555{n % 10000:04d}"}
        )
        log.append((started, time.monotonic() - started, reply.status, reply.body))
        if reply.status == 200 and reply.body["allowed"]:
            await api.request("POST", f"/v1/calls/{reply.body['call_id']}/end",
                              json={"outcome": "busy"})


async def test_redis_killed_under_load(tmp_path: Path, aof_redis: RedisServer) -> None:
    (tmp_path / "fleet").mkdir()
    fleet = Fleet(tmp_path / "fleet", aof_redis)
    users = [agent("load", max_channels=1000), agent("held", max_channels=2),
             agent("after", max_channels=3), agent("sticky", max_channels=5, sticky=True)]
    fleet.setup(account(users=users, max_channels=None))
    servers = fleet.start(2)
    try:
        async with Clients(servers) as apis:
            # Acknowledged before the kill: two leases, and a sticky caller ID.
            held = [await apis[0].dial("held", f"+1212555{i:04d}") for i in range(2)]
            assert all(h["allowed"] for h in held)
            first = await apis[1].dial("sticky", "(212) 555-0187", caller_id=None)
            await apis[1].end(first["call_id"], "answered")

            stop = asyncio.Event()
            log: list[tuple[float, float, int, Any]] = []
            workers = [asyncio.create_task(_load(apis[i % 2], stop, log)) for i in range(32)]
            await asyncio.sleep(1.0)
            killed_at = time.monotonic()
            aof_redis.kill()
            await asyncio.sleep(1.5)
            restart_at = time.monotonic()
            await asyncio.to_thread(aof_redis.start)
            back_at = time.monotonic()
            await asyncio.sleep(2.0)
            stop.set()
            await asyncio.gather(*workers)

        statuses = Counter(status for _, _, status, _ in log)
        assert set(statuses) <= {200, 503}, statuses
        assert statuses[503] > 0, "the kill was noticed"
        unavailable = {body["reason"] for _, _, status, body in log if status == 503}
        assert unavailable == {"store_unavailable"}
        slowest = max(elapsed for _, elapsed, _, _ in log)
        assert slowest < BOUND_S + SLACK_S, f"a request waited {slowest:.3f} s"
        print(f"slowest {slowest * 1000:.0f} ms; {dict(statuses)}")
        during = [s for t, _, s, _ in log if killed_at + 0.3 < t < restart_at - 0.3]
        assert during and set(during) == {503}, [
            (t - killed_at, b) for t, _, s, b in log
            if killed_at + 0.3 < t < restart_at - 0.3 and s == 200
        ][:3]
        late = [body for t, _, s, body in log if t > back_at + 1.0]
        assert late and all(body["allowed"] for body in late), "decisions resumed, no restart"
        assert all(server.process and server.process.poll() is None for server in servers)

        async with Clients(servers) as apis:
            # Acknowledged state survived the kill.
            refused = await apis[1].dial("held", "+12125550999")
            assert refused["reason"] == "channel_limit"
            again = await apis[0].dial("sticky", "(212) 555-0187")
            assert (again["rule"], again["caller_id"]) == ("sticky", first["caller_id"])
            for server in servers:
                health = await apis[0].session.get(server.url + "/healthz")
                assert health.status == 200
        # And limits hold as before.
        decisions = await spread(servers, [{"user": "after", "to": f"+1212555{i:04d}"}
                                           for i in range(60)])
        assert sum(d["allowed"] for d in decisions) == 3
    finally:
        fleet.close()


async def test_healthz_reports_redis_down_then_up(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis", *AOF).start()
    (tmp_path / "fleet").mkdir()
    fleet = Fleet(tmp_path / "fleet", redis).setup(account())
    [server] = fleet.start(1)
    try:
        async with connect(server) as api:
            assert (await api.request("GET", "/healthz")).status == 200
            redis.kill()
            await api.request("POST", "/v1/dial", json={"user": "ana", "to": "2125550187"})
            reply = await api.request("GET", "/healthz")
            assert (reply.status, reply.body["status"]) == (503, "unavailable")
            redis.start()
            for _ in range(50):
                if (await api.request("GET", "/healthz")).status == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await api.request("GET", "/healthz")).status == 200
    finally:
        fleet.close()
        redis.kill()


def test_redis_unreachable_at_start_is_retried_with_a_clear_message(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    server = Server(tmp_path / "unused", demo=None, args=["--redis-url", url]).spawn()
    try:
        deadline = time.monotonic() + 10
        while (time.monotonic() < deadline
               and sum("trying again" in line for line in server.output) < 2):
            time.sleep(0.1)
        text = "".join(server.output)
        assert f"cannot reach Redis at {url}" in text and "trying again in" in text
        assert "Traceback" not in text
        redis = RedisServer(tmp_path / "redis", port=port).start()
        try:
            server.wait_ready(timeout_s=20)
            assert f"Redis store at {url}" in "".join(server.banner)
        finally:
            redis.kill()
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6380", "the scheme must be redis://, rediss:// or unix://"),
        ("redis://127.0.0.1:6380?cluster=maybe", "cluster='maybe' is not yes or no"),
        ("redis://127.0.0.1:6380?pool=0", "pool='0' is not a positive number"),
        ("redis://127.0.0.1:6380?colour=blue", "unknown option 'colour'"),
    ],
)
def test_a_bad_redis_url_is_one_line_and_exit_2(tmp_path: Path, url: str, message: str) -> None:
    done = subprocess.run(
        [str(CALLGATE), "serve", "--data", str(tmp_path), "--redis-url", url],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_cli_on_an_unreachable_redis_fails_at_once(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [str(CALLGATE), "token", "list", "demo", "--redis-url", url],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 1 and f"cannot reach Redis at {url}" in done.stderr


def test_workers_need_redis(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CALLGATE), "serve", "--data", str(tmp_path), "--workers", "2"],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2 and "--workers 2 needs --redis-url" in done.stderr


