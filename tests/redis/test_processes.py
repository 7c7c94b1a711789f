"""Many callgate processes on one Redis behave as one: limits hold across processes, a retried
call id gets one answer and one lease wherever it lands, and a configuration change made by
one process reaches every other."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from callerid import (
    AccountConfig,
    AvailableCallerIds,
    CallSettings,
    Permission,
    PhoneNumber,
    User,
)
from tests.conftest import Server
from tests.http.http_support import SALES_1, Api, account, agent, connect

from ..redis_support import RedisServer
from .fleet import Fleet, leases

SALES_2 = "+12125550102"
BEHAVIOUR = "timeout_ms=2000"
"""1,000 requests at once on 2 cores keep each process's loop busy for longer than the 100 ms
deadline; these tests are about limits, not deadlines."""


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def fleet(tmp_path: Path, redis: RedisServer) -> Iterator[Fleet]:
    (tmp_path / "fleet").mkdir()
    fleet = Fleet(tmp_path / "fleet", redis, url=f"{redis.url}?{BEHAVIOUR}")
    yield fleet
    fleet.close()


async def spread(servers: list[Server], bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST every body to /v1/dial at once, body i to server i mod n; every answer must be a
    decision (200)."""
    async with Clients(servers) as apis:
        replies = await asyncio.gather(
            *(apis[i % len(apis)].request("POST", "/v1/dial", json=b) for i, b in enumerate(bodies))
        )
    statuses = Counter(r.status for r in replies)
    refused = [r.body for r in replies if r.status != 200][:3]
    assert set(statuses) == {200}, f"{dict(statuses)}: {refused}"
    return [r.body for r in replies]


class Clients:
    """One client per server."""

    def __init__(self, servers: list[Server]) -> None:
        self._contexts = [connect(s) for s in servers]

    async def __aenter__(self) -> list[Api]:
        return [await c.__aenter__() for c in self._contexts]

    async def __aexit__(self, *exc: object) -> None:
        for context in self._contexts:
            await context.__aexit__(None, None, None)


async def test_1000_dials_over_4_processes_allow_exactly_max_channels(fleet: Fleet) -> None:
    fleet.setup(account(users=[agent("bulk", max_channels=10)], max_channels=None))
    servers = fleet.start(4)
    bodies = [{"user": "bulk", "to": f"+1212555{i:04d}"} for i in range(1000)]
    decisions = await spread(servers, bodies)
    allowed = [d for d in decisions if d["allowed"]]
    assert len(allowed) == 10
    assert Counter(d["reason"] for d in decisions if not d["allowed"]) == {"channel_limit": 990}
    assert leases(fleet.redis, users=["bulk"]) == {"account": 10, "bulk": 10}
    async with connect(servers[3]) as api:  # every process reports the shared count

        async def reported() -> bool:
            return (await api.metrics()).active_leases == 10

        await _until(reported, 3.0)

    async with Clients(servers) as apis:
        await asyncio.gather(
            *(apis[i % 4].end(d["call_id"], "answered") for i, d in enumerate(allowed))
        )
    assert leases(fleet.redis, users=["bulk"]) == {"account": 0, "bulk": 0}


async def test_1000_dials_over_4_processes_hold_the_account_cap(fleet: Fleet) -> None:
    users = [agent(f"team{i}", max_channels=5) for i in range(5)]
    fleet.setup(account(users=users, max_channels=12))
    servers = fleet.start(4)
    bodies = [{"user": f"team{i % 5}", "to": f"+1212555{i:04d}"} for i in range(1000)]
    decisions = await spread(servers, bodies)
    allowed = [d for d in decisions if d["allowed"]]
    assert len(allowed) == 12
    per_user = Counter(bodies[i]["user"] for i, d in enumerate(decisions) if d["allowed"])
    assert max(per_user.values()) <= 5
    async with Clients(servers) as apis:
        for i, d in enumerate(allowed):
            await apis[i % 4].end(d["call_id"], "no_answer")
    assert leases(fleet.redis, users=[u.id for u in users])["account"] == 0
    assert set(leases(fleet.redis, users=[u.id for u in users]).values()) == {0}


NEW_YORK = ("+12125550101", "+12125550102", "+12125550103", "+12125550104", "+12125550105")
"""Five Sales numbers of area code 212: the demo's two and three more."""
ELSEWHERE_US = ("+13105550110", "+13125550120", "+15125550130")
"""Sales' other US numbers: local presence's country tier for a 212 callee."""


def rotating(**changes: Any) -> AccountConfig:
    """The demo with five 212 numbers in Sales and a user with local presence who may hold
    1,000 calls; ``changes`` to the account."""
    config = account(max_channels=None, **changes)
    added = tuple(PhoneNumber(number=n, name=f"New York {n[-1]}", department="sales")
                  for n in NEW_YORK[2:])
    user = User(id="rota", email="rota@http-tests.example", department="sales",
                available_caller_ids=AvailableCallerIds.DEPARTMENT, max_channels=1000,
                extra_permissions_enabled=True,
                extra_permissions=(Permission.CALLERID_LOCAL_PRESENCE,),
                call_settings=CallSettings(local_presence=True))
    return msgspec.structs.replace(config, numbers=config.numbers + added,
                                   users=(*config.users, user))


def usage(redis: RedisServer) -> dict[str, int]:
    """Today's calls per number, as Redis holds them (the account's day: UTC here)."""
    (key,) = redis.cli("KEYS", "cg:{demo}:usage:*").split()
    flat = redis.cli("HGETALL", key).split()
    return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}


async def test_1000_dials_over_4_processes_take_turns_exactly(fleet: Fleet) -> None:
    """A burst through four processes: the five numbers of the callee's area code each place
    200, as the counts in Redis say."""
    fleet.setup(rotating())
    servers = fleet.start(4)
    decisions = await spread(servers, [{"user": "rota", "to": f"+1212555{i:04d}"}
                                       for i in range(1000)])
    assert {d["rule"] for d in decisions} == {"local_presence"}
    assert Counter(d["caller_id"] for d in decisions) == dict.fromkeys(NEW_YORK, 200)
    assert usage(fleet.redis) == dict.fromkeys(NEW_YORK, 200)


async def test_1000_dials_over_4_processes_never_pass_a_daily_cap(fleet: Fleet) -> None:
    """Cap 100 a number: the five 212 numbers, then Sales' three other US numbers, each
    place exactly 100; the other 200 dials are denied ``caller_id_capped`` and hold no
    channel."""
    fleet.setup(rotating(daily_cap=100))
    servers = fleet.start(4)
    decisions = await spread(servers, [{"user": "rota", "to": f"+1212555{i:04d}"}
                                       for i in range(1000)])
    allowed = [d for d in decisions if d["allowed"]]
    assert Counter(d["caller_id"] for d in allowed) == dict.fromkeys(NEW_YORK + ELSEWHERE_US,
                                                                     100)
    assert Counter(d["reason"] for d in decisions if not d["allowed"]) == {
        "caller_id_capped": 200}
    assert usage(fleet.redis) == dict.fromkeys(NEW_YORK + ELSEWHERE_US, 100)
    assert leases(fleet.redis, users=["rota"])["rota"] == 800


async def test_400_texts_over_4_processes_take_turns_within_their_caps(fleet: Fleet) -> None:
    """Texts count apart from calls: the five 212 numbers, the only ones that can text, each
    send exactly 50 (their cap); the other 150 are denied ``caller_id_capped``, no channel
    is taken, and no call is counted."""
    config = rotating(daily_cap=50)
    numbers = tuple(msgspec.structs.replace(n, sms=n.number in NEW_YORK) for n in config.numbers)
    fleet.setup(msgspec.structs.replace(config, numbers=numbers))
    servers = fleet.start(4)
    async with Clients(servers) as apis:
        replies = await asyncio.gather(*(
            apis[i % 4].request("POST", "/v1/sms/sender",
                                json={"user": "rota", "to": f"+1212555{i:04d}"})
            for i in range(400)))
    assert {r.status for r in replies} == {200}
    answers = [r.body for r in replies]
    assert Counter(a["sender"] for a in answers if a["allowed"]) == dict.fromkeys(NEW_YORK, 50)
    assert Counter(a["reason"] for a in answers if not a["allowed"]) == {"caller_id_capped": 150}
    (key,) = fleet.redis.cli("KEYS", "cg:{demo}:texts:*").split()
    flat = fleet.redis.cli("HGETALL", key).split()
    assert {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)} == dict.fromkeys(
        NEW_YORK, 50)
    assert fleet.redis.cli("KEYS", "cg:{demo}:usage:*") == ""
    assert leases(fleet.redis, users=["rota"])["rota"] == 0


async def test_1000_incoming_and_outgoing_calls_over_4_processes_share_the_limit(
    fleet: Fleet,
) -> None:
    """Half incoming, half outgoing, all at once through four processes: a channel counts
    every call, so exactly max channels (10) get one, whichever way they go."""
    fleet.setup(account(users=[agent("both", max_channels=10)], max_channels=None))
    servers = fleet.start(4)
    async with Clients(servers) as apis:
        replies = await asyncio.gather(*(
            apis[i % 4].request("POST", "/v1/inbound" if i % 2 else "/v1/dial",
                                json={"user": "both", "from": f"+1312555{i:04d}"} if i % 2
                                else {"user": "both", "to": f"+1212555{i:04d}"})
            for i in range(1000)))
    assert {r.status for r in replies} == {200}
    allowed = [r.body for r in replies if r.body["allowed"]]
    assert len(allowed) == 10
    assert {r.body["reason"] for r in replies if not r.body["allowed"]} == {"channel_limit"}
    assert leases(fleet.redis, users=["both"]) == {"account": 10, "both": 10}
    async with Clients(servers) as apis:
        await asyncio.gather(*(apis[i % 4].end(a["call_id"], "answered")
                               for i, a in enumerate(allowed)))
    assert leases(fleet.redis, users=["both"]) == {"account": 0, "both": 0}


async def test_a_call_id_retried_on_every_process_gets_one_answer_and_one_lease(
    fleet: Fleet,
) -> None:
    fleet.setup(account(users=[agent("retry", max_channels=3)]))
    servers = fleet.start(4)
    body = {"user": "retry", "to": "(212) 555-0187", "call_id": "dialer-7f3a"}
    decisions = await spread(servers, [body] * 40)
    assert all(d == decisions[0] for d in decisions) and decisions[0]["allowed"]
    assert leases(fleet.redis, users=["retry"])["retry"] == 1


async def test_two_workers_share_one_port_and_the_limit(fleet: Fleet) -> None:
    fleet.setup(account(users=[agent("pair", max_channels=4)]))
    [server] = fleet.start(1, "--workers", "2")
    assert "2 worker processes" in "".join(server.banner)
    bodies = [{"user": "pair", "to": f"+1212555{i:04d}"} for i in range(300)]
    decisions = await spread([server], bodies)
    assert sum(d["allowed"] for d in decisions) == 4
    answered_by = {d["call_id"].rsplit("-", 1)[0] for d in decisions}
    assert len(answered_by) == 2, "both workers answered"


async def _until(check: Any, timeout_s: float) -> float:
    """Seconds until ``await check()`` is true; fails after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout_s} s")


async def _all_use(servers: list[Server], caller_id: str) -> bool:
    async with Clients(servers) as apis:
        answers = await asyncio.gather(*(a.explain("ana", "(212) 555-0187") for a in apis))
    return all(answer.get("caller_id") == caller_id for answer in answers)


async def test_a_change_reaches_every_process_within_a_second(fleet: Fleet) -> None:
    fleet.setup(account())
    servers = fleet.start(4, "--config-poll", "30")  # only the notification can be this quick
    assert await _all_use(servers, SALES_1)
    fleet.put(account(replace_users={"ana": {"default_caller_id": SALES_2}}))
    assert await _until(lambda: _all_use(servers, SALES_2), 1.0) < 1.0


async def test_with_notifications_cut_a_change_arrives_within_the_poll_interval(
    fleet: Fleet,
) -> None:
    fleet.setup(account())
    servers = fleet.start(4, "--config-poll", "1")
    assert await _all_use(servers, SALES_1)
    killed = fleet.redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
    assert int(killed) == 4, "each process had its subscription"
    fleet.put(account(replace_users={"ana": {"default_caller_id": SALES_2}}))
    await _until(lambda: _all_use(servers, SALES_2), 1.0 + 0.5)


def _workers_of(parent: int) -> list[int]:
    """The worker processes of a ``--workers`` parent (its children running spawn_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _start_two_workers(fleet: Fleet) -> tuple[Server, int, list[int]]:
    """A ``--workers 2`` server, its parent's pid, and its two workers' pids."""
    fleet.setup(account())
    [server] = fleet.start(1, "--workers", "2")
    assert server.process is not None
    workers = _workers_of(server.process.pid)
    assert len(workers) == 2
    return server, server.process.pid, workers


async def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(fleet: Fleet) -> None:
    server, parent, workers = _start_two_workers(fleet)
    os.kill(workers[0], signal.SIGKILL)
    for _ in range(100):
        now = _workers_of(parent)
        if len(now) == 2 and workers[0] not in now:
            break
        await asyncio.sleep(0.1)
    assert len(now) == 2 and workers[0] not in now, now
    decisions = await spread([server], [{"user": "ana", "to": "2125550187"}] * 20)
    assert sum(d["allowed"] for d in decisions) == 2
    assert server.stop() == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in now)


async def test_workers_do_not_outlive_a_killed_parent(fleet: Fleet) -> None:
    server, _, workers = _start_two_workers(fleet)
    server.kill()  # kill -9: the parent cannot pass anything on
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() for pid in workers):
            break
        await asyncio.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
