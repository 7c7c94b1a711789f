"""The Redis store in one process, counted at the Redis server: one script call per dial and
nothing else; configuration reloads without notifications; an answer lost to the deadline
leaves no channel taken."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from callerid import AccountConfig, Outcome, Reason
from engine.decide import Engine
from engine.errors import NotFound
from engine.metrics import Metrics
from engine.service import AccountService
from engine.store.redis_store import RedisStore
from engine.store.redis_store import scripts as S
from engine.sync import refresh_forever
from engine.wire import DialRequest

from ..engine.test_store_contract import Clock, allow, ticket
from ..redis_support import RedisServer


class Monitor:
    """The commands clients send to Redis while in use (``MONITOR``, read over a plain socket),
    without the commands scripts run inside Redis."""

    def __init__(self, redis: RedisServer) -> None:
        self._redis = redis
        self._sock = socket.create_connection(("127.0.0.1", redis.port), timeout=10)
        self._sock.sendall(b"MONITOR\r\n")
        self._file = self._sock.makefile("rb")
        assert self._file.readline() == b"+OK\r\n"
        self.lines: list[str] = []

    def stop(self) -> Counter[str]:
        """Stop watching; the number of each command sent by clients."""
        marker = f"end-of-monitor-{time.monotonic_ns()}"
        self._redis.cli("ECHO", marker)
        while True:
            line = self._file.readline().decode(errors="replace").rstrip("\r\n")
            if marker in line:
                break
            if "[0 lua]" not in line:
                self.lines.append(line)
        self._sock.close()
        return Counter(
            line.split("] ", 1)[1].split(" ", 1)[0].strip('"').lower() for line in self.lines
        )


@pytest.fixture
async def setup(
    request: pytest.FixtureRequest, redis_server: RedisServer, demo: AccountConfig
) -> AsyncIterator[tuple[RedisStore, Engine]]:
    """A store and an engine with the demo account; the store's deadline is the default
    (100 ms) for tests marked ``deadline``, else relaxed (a burst on 2 cores can take longer)."""
    redis_server.cli("FLUSHALL")
    relaxed = request.node.get_closest_marker("deadline") is None
    store = RedisStore(redis_server.url + ("?timeout_ms=2000" if relaxed else ""))
    await store.open()
    engine = Engine(store, metrics=Metrics(CollectorRegistry(), store.lease_counts))
    await AccountService(store, on_saved=engine.install).put(demo)
    yield store, engine
    await store.close()


async def test_each_dial_is_one_script_call_and_reads_no_configuration(
    setup: tuple[RedisStore, Engine], redis_server: RedisServer
) -> None:
    _, engine = setup
    dials = 200

    async def burst(tag: str) -> None:
        decisions = await asyncio.gather(
            *(engine.dial("demo", DialRequest(user="olivia", to=f"+1212555{i:04d}",
                                              call_id=f"{tag}{i}"))
              for i in range(dials))
        )
        assert all(d.reason is None or d.reason is Reason.CHANNEL_LIMIT for d in decisions)

    await burst("warm")  # the connection pool fills up
    monitor = Monitor(redis_server)
    await burst("c")
    sent = monitor.stop()
    assert sent == {"evalsha": dials}, monitor.lines[:5]
    admit = {line.split()[4] for line in monitor.lines}
    assert len(admit) == 1, "one script, the admission, for every dial"


async def test_the_periodic_check_alone_reloads_a_change(
    setup: tuple[RedisStore, Engine], redis_server: RedisServer, demo: AccountConfig
) -> None:
    """No notifications at all (this process never subscribes): the version check every
    ``poll_s`` finds a change saved by another process."""
    store, engine = setup
    poll = asyncio.create_task(refresh_forever(store, engine, poll_s=0.3))
    other = RedisStore(redis_server.url)
    await other.open()
    try:
        renamed = msgspec.structs.replace(demo, max_channels=3)
        await AccountService(other).put(renamed)
        await asyncio.sleep(0.3 + 0.2)
        assert engine.snapshot("demo").max_channels == 3
    finally:
        poll.cancel()
        await other.close()


@pytest.mark.deadline
async def test_an_admission_that_runs_past_its_deadline_takes_nothing(
    setup: tuple[RedisStore, Engine], redis_server: RedisServer
) -> None:
    store, engine = setup
    await engine.dial("demo", DialRequest(user="ana", to="+12125550100", call_id="warm"))
    held = int(redis_server.cli("ZCARD", "cg:{demo}:channels"))
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # Redis hangs: it reads nothing
    try:
        late = await engine.dial("demo", DialRequest(user="ana", to="+12125550100", call_id="late"))
        assert late.reason is Reason.STORE_UNAVAILABLE and "125 ms" in (late.detail or "")
        await asyncio.sleep(0.3)
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
    # Redis runs the admission on waking, finds its deadline passed, and takes nothing.
    probe = await engine.dial("demo", DialRequest(user="ana", to="+12125550199"))
    assert probe.allowed
    assert int(redis_server.cli("ZCARD", "cg:{demo}:channels")) == held + 1
    assert redis_server.cli("EXISTS", "cg:{demo}:call:late") == "0"
    await engine.end("demo", probe.call_id, Outcome.BUSY)
    assert store.undone == 0, "nothing was taken, so nothing had to be given back"
    again = await engine.dial("demo", DialRequest(user="ana", to="+12125550100", call_id="late"))
    assert again.allowed, "the retry is decided afresh"


async def test_call_records_stay_compact(
    setup: tuple[RedisStore, Engine], redis_server: RedisServer
) -> None:
    """An allowed call's record is a hash of short fields (Redis keeps it as a listpack); a
    remembered denial is a short string."""
    _, engine = setup
    allowed = await engine.dial("demo", DialRequest(user="ana", to="+12125550100", call_id="c1"))
    assert allowed.allowed
    assert redis_server.cli("TYPE", "cg:{demo}:call:c1") == "string"
    assert int(redis_server.cli("STRLEN", "cg:{demo}:call:c1")) < 160
    denied = await engine.dial("demo", DialRequest(user="ana", to="12", call_id="c2"))
    assert denied.reason is Reason.INVALID_NUMBER
    assert redis_server.cli("TYPE", "cg:{demo}:denied:c2") == "string"
    assert int(redis_server.cli("STRLEN", "cg:{demo}:denied:c2")) < 160
    again = await engine.dial("demo", DialRequest(user="ana", to="12", call_id="c2"))
    assert again == denied, "a retry gets the denial as it was given"


async def test_live_calls_are_read_page_by_page(
    setup: tuple[RedisStore, Engine], demo: AccountConfig
) -> None:
    """More calls than one page of the live-calls script holds: every one listed, once, in
    order of lease expiry."""
    store, engine = setup
    roomy = msgspec.structs.replace(
        demo,
        users=tuple(msgspec.structs.replace(u, max_channels=10_000) for u in demo.users),
        max_channels=None,
    )
    await AccountService(store, on_saved=engine.install).put(roomy)
    decisions = await asyncio.gather(*(
        engine.dial("demo", DialRequest(user="olivia", to=f"+1212555{i:04d}", call_id=f"live-{i}"))
        for i in range(450)))
    assert all(d.allowed for d in decisions)
    live = await store.live_calls("demo")
    assert sorted(c.call_id for c in live) == sorted(d.call_id for d in decisions)
    assert [c.lease_expires_ms for c in live] == sorted(c.lease_expires_ms for c in live)
    assert all(c.user_id == "olivia" and c.to and c.caller_id for c in live)


async def test_expired_leases_are_given_back_without_a_refusal(redis_server: RedisServer) -> None:
    """A dial under its limits does not read the lease set, yet leases that expired are given
    back by later dials (now and then, about one in 16), so they never pile up."""
    redis_server.cli("FLUSHALL")
    clock = Clock()
    store = RedisStore(redis_server.url + "?timeout_ms=2000", skew_ms=clock.skew)
    await store.open()
    try:
        for i in range(20):
            assert (await store.admit(ticket(f"old{i}", user=f"u{i}", ttl_ms=1000),
                                      allow(f"old{i}"))).allowed
        assert redis_server.cli("ZCARD", "cg:{a}:channels") == "20"
        clock.ms += 2000
        for i in range(200):
            clock.ms += 1
            assert (await store.admit(ticket(f"new{i}", user="n", limit=1000),
                                      allow(f"new{i}"))).allowed
            if int(redis_server.cli("ZCARD", "cg:{a}:channels")) == i + 1:
                break
        else:
            raise AssertionError("200 dials later, the expired leases were still held")
        assert redis_server.cli("HGETALL", "cg:{a}:held") == f"n\n{i + 1}"
    finally:
        await store.close()


async def test_a_call_record_an_older_callgate_left_reads_as_none(
    setup: tuple[RedisStore, Engine], redis_server: RedisServer
) -> None:
    """Records were hashes before they were strings: one left by an older process is a call id
    never seen (ending it is a 404, dialling it decides afresh), never a script error."""
    _, engine = setup
    redis_server.cli("HSET", "cg:{demo}:call:old", "u", "ana", "o", "")
    with pytest.raises(NotFound):
        await engine.end("demo", "old", Outcome.ANSWERED)
    again = await engine.dial("demo", DialRequest(user="ana", to="+12125550100", call_id="old"))
    assert again.allowed
    assert redis_server.cli("TYPE", "cg:{demo}:call:old") == "string"
    await engine.end("demo", "old", Outcome.BUSY)


async def test_live_calls_page_through_calls_with_one_lease_expiry(
    setup: tuple[RedisStore, Engine], redis_server: RedisServer
) -> None:
    """Pages go on from the expiry the page before ended at, skipping what it listed: 450
    leases of one expiry (more than two pages) are each listed once."""
    store, _ = setup
    expiry = str(int(time.time() * 1000) + 3_600_000)
    for start in range(0, 450, 150):
        members = [arg for i in range(start, start + 150) for arg in (expiry, f"ana|same-{i:03d}")]
        redis_server.cli("ZADD", "cg:{demo}:channels", *members)
    live = await store.live_calls("demo")
    assert sorted(c.call_id for c in live) == [f"same-{i:03d}" for i in range(450)]
    assert {c.lease_expires_ms for c in live} == {int(expiry)}


async def test_an_undo_gives_back_the_channel_of_its_own_attempt_only(
    setup: tuple[RedisStore, Engine], redis_server: RedisServer
) -> None:
    """What runs when an admission's answer was lost: the attempt's channel is given back and
    its record dropped; an undo naming another attempt (a retry took the record over), or
    run again, changes nothing."""
    store, engine = setup
    held = int(redis_server.cli("ZCARD", "cg:{demo}:channels"))
    allowed = await engine.dial("demo", DialRequest(user="ana", to="+12125550100", call_id="u1"))
    assert allowed.allowed
    record = "cg:{demo}:call:u1"
    head = redis_server.cli("EVAL", "return string.match(redis.call('GET', KEYS[1]), '^[^|]*')",
                            "1", record)  # the fields before the answer (lua/record.lua)
    nonce = head.split(" ")[6]
    usage = redis_server.cli("KEYS", "cg:{demo}:usage:*")  # today's, in the account's zone
    assert redis_server.cli("HGET", usage, allowed.caller_id) == "1"
    keys = S.UndoKeys(record, "cg:{demo}:channels", "cg:{demo}:held", usage)
    await store._undo(keys, "u1", "another-attempt", 0.0)
    assert store.undone == 0 and redis_server.cli("EXISTS", record) == "1"
    await store._undo(keys, "u1", nonce, 0.0)
    assert store.undone == 1 and redis_server.cli("EXISTS", record) == "0"
    assert int(redis_server.cli("ZCARD", "cg:{demo}:channels")) == held
    assert redis_server.cli("HGET", "cg:{demo}:held", "ana") in ("", "0")
    assert redis_server.cli("HEXISTS", usage, allowed.caller_id) == "0"  # no longer counted
    await store._undo(keys, "u1", nonce, 0.0)
    assert store.undone == 1
