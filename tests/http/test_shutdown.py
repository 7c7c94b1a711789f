"""Graceful shutdown: SIGTERM under a steady load of dials. The server says it is not ready
(``/healthz`` 503) while it keeps answering for its drain time, closes every answered
connection, finishes what is in flight and exits 0: no request lost, no reset, no 5xx. With
two workers on Redis, one restarted under load loses nothing either."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.conftest import Server
from tests.http.http_support import account
from tests.redis.fleet import Fleet
from tests.redis_support import RedisServer

USERS = ("ana", "sam", "gina", "lee")


@dataclass
class Load:
    """Dialers behind a load balancer's view of one server: they start requests only while
    its last health probe said ready; every request started must be answered."""

    url: str
    token: str
    ready: bool = True
    answers: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stopped: bool = False
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(2000000))

    async def probe(self, session: aiohttp.ClientSession, saw: list[int]) -> None:
        while not self.stopped:
            try:
                async with session.get(f"{self.url}/healthz") as reply:
                    saw.append(reply.status)
                    self.ready = reply.status == 200
            except aiohttp.ClientError:
                self.ready = False
            await asyncio.sleep(0.05)

    async def dialer(self, session: aiohttp.ClientSession, user: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while not self.stopped:
            if not self.ready:
                await asyncio.sleep(0.01)
                continue
            body = {"user": user, "to": f"+1212{next(self.numbers)}"}
            try:
                async with session.post(f"{self.url}/v1/dial", json=body,
                                        headers=headers) as reply:
                    answer = await reply.json()
                    self.answers[reply.status] += 1
                if answer.get("allowed"):
                    end = f"{self.url}/v1/calls/{answer['call_id']}/end"
                    async with session.post(end, json={"outcome": "busy"},
                                            headers=headers) as reply:
                        await reply.read()
                        self.answers[reply.status] += 1
            except (TimeoutError, aiohttp.ClientError) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")


async def test_sigterm_under_load_answers_every_request_and_exits_0(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", args=["--drain", "1", "--shutdown-timeout", "5"]).start()
    assert server.process is not None
    load = Load(server.url, server.token)
    health: list[int] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        tasks = [asyncio.create_task(load.dialer(session, user)) for user in USERS * 4]
        prober = asyncio.create_task(load.probe(session, health))
        await asyncio.sleep(1.0)
        before = sum(load.answers.values())
        server.process.send_signal(signal.SIGTERM)
        status = await asyncio.to_thread(server.process.wait, 20)
        load.stopped = True
        ended = await asyncio.gather(*tasks, prober, return_exceptions=True)
    assert status == 0, "".join(server.output[-20:])
    assert [e for e in ended if e is not None] == []  # no dialer died of anything else
    assert load.failures == [], load.failures[:5]
    assert set(load.answers) == {200}, load.answers
    assert before > 50 and sum(load.answers.values()) > before  # answered while draining too
    assert 503 in health, "the health probe never saw the drain"
    assert any("draining" in line for line in server.output)


def _workers(parent: int) -> list[int]:
    done = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(parent)], capture_output=True,
                          text=True, check=True)
    return [int(line.split()[0]) for line in done.stdout.splitlines()
            if "multiprocessing.spawn" in line and "resource_tracker" not in line]


async def test_restarting_one_of_two_workers_under_load_loses_no_request(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    (tmp_path / "fleet").mkdir()
    fleet = Fleet(tmp_path / "fleet", redis, url=redis.url)
    try:
        fleet.setup(account())
        server = fleet.start(1, "--workers", "2", "--drain", "1")[0]
        assert server.process is not None
        workers = _workers(server.process.pid)
        assert len(workers) == 2
        load = Load(server.url, fleet.token)  # no balancer: both workers share the port
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            tasks = [asyncio.create_task(load.dialer(session, user)) for user in USERS * 2]
            await asyncio.sleep(1.0)
            subprocess.run(["kill", "-TERM", str(workers[0])], check=True)
            deadline = time.monotonic() + 20
            replaced = _workers(server.process.pid)
            while time.monotonic() < deadline and (workers[0] in replaced or len(replaced) < 2):
                await asyncio.sleep(0.1)  # drained, exited, and started again by the parent
                replaced = await asyncio.to_thread(_workers, server.process.pid)
            await asyncio.sleep(1.0)  # the new worker serves too
            load.stopped = True
            ended = await asyncio.gather(*tasks, return_exceptions=True)
        assert workers[0] not in replaced and len(replaced) == 2
        assert [e for e in ended if e is not None] == []  # no dialer died of anything else
        assert load.failures == [], load.failures[:5]
        assert set(load.answers) == {200} and sum(load.answers.values()) > 100, load.answers
    finally:
        fleet.close()
        redis.kill()


def test_a_worker_that_does_not_stop_is_killed_by_its_parent(tmp_path: Path) -> None:
    """A worker stuck past its drain and shutdown timeout (here: stopped, SIGSTOP) is killed,
    so the parent exits and leaves nothing holding the port."""
    redis = RedisServer(tmp_path / "redis").start()
    (tmp_path / "fleet").mkdir()
    fleet = Fleet(tmp_path / "fleet", redis, url=redis.url)
    try:
        fleet.setup(account())
        server = fleet.start(1, "--workers", "2", "--drain", "0", "--shutdown-timeout", "1")[0]
        assert server.process is not None
        workers = _workers(server.process.pid)
        assert len(workers) == 2
        subprocess.run(["kill", "-STOP", str(workers[0])], check=True)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert time.monotonic() - started < 20
        alive = subprocess.run(["ps", "-o", "stat=", "-p", str(workers[0])],
                               capture_output=True, text=True)
        assert alive.stdout.strip() in ("", "Z"), alive.stdout  # gone (or reaped soon)
    finally:
        fleet.close()
        redis.kill()
