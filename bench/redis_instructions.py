"""Redis's own instructions per dial under callgrind: callgate's ADMIT beside the ceiling's
script, a figure that does not drift with the machine.

Redis CPU per dial measured by the clock (``bench redis``) moves by tens of percent from one
round to the next on this shared machine; callgrind counts the instructions ``redis-server``
runs instead, which repeat to well under one percent. Each side gets a fresh ``redis-server``
under ``valgrind --tool=callgrind``; after its set-up and a warm-up, the counters are zeroed
(``callgrind_control -z``), ``DIALS`` dials run (64 in flight, as a server with many
connections sends them), and the counters are dumped (``callgrind_control -d``): everything
Redis did in that window, reading and parsing the requests, the script, the replies, divided
by the dials.

- callgate: real dials through the engine on the Redis store (the bench user: allowed, no
  sticky lookup, no call id of the client's), so ADMIT gets the arguments a server gives it.
- the ceiling: ``bench/redis_baseline_app.py``'s script (TIME, ZADD, ZCARD) with its key and
  argument, as that app sends it per request.

What the instructions do not count is the kernel's share (the socket reads and writes), about
the same per command on both sides: the ratio here is an upper bound of the CPU time ratio.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis

from .redis_baseline_app import SCRIPT
from .redis_http import RedisServer, redis_server
from .report import Row
from .workload import BENCH_USER, FreshNumbers, bench_account

__all__ = ["run"]

DIALS = 2_000
WARMUP = 200
IN_FLIGHT = 64
_STARTUP_S = 60.0  # redis-server starts far slower under valgrind


Dial = Callable[[str], Awaitable[None]]
"""One dial to the given number, on one side."""
Side = Callable[[str], AbstractAsyncContextManager[Dial]]
"""A side, set up against a Redis URL: what it dials with while open."""


async def _in_flight(dial: Dial, numbers: list[str]) -> None:
    pending = iter(numbers)

    async def worker() -> None:  # one of IN_FLIGHT, as a server has one task a connection
        for number in pending:
            await dial(number)

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


def _per_dial(tmp: Path, name: str, side: Side) -> float:
    """Redis's instructions per dial of ``side``: a fresh ``redis-server`` under callgrind,
    counters zeroed after set-up and warm-up, dumped after ``DIALS`` dials."""
    out = tmp / f"{name}.out"
    wrapper = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}")
    numbers = FreshNumbers(seed=11).take(WARMUP + DIALS)

    async def measure(server: RedisServer) -> int:
        async with side(server.url) as dial:
            await _in_flight(dial, numbers[:WARMUP])
            pid = str(server.process.pid)
            await asyncio.to_thread(_control, "-z", pid)
            await _in_flight(dial, numbers[WARMUP:])
            await asyncio.to_thread(_control, "-d", pid)
        dump = out.with_name(out.name + ".1")
        found = re.search(r"^summary: (\d+)$", dump.read_text(), re.M)
        if found is None:
            raise RuntimeError(f"no summary in callgrind's dump {dump}")
        return int(found.group(1))

    with redis_server(tmp, wrapper, _STARTUP_S) as server:
        return asyncio.run(measure(server)) / DIALS


def _control(option: str, pid: str) -> None:
    subprocess.run(["callgrind_control", option, pid], check=True, capture_output=True,
                   timeout=60)


@asynccontextmanager
async def _callgate(url: str) -> AsyncIterator[Dial]:
    """Real dials through the engine on the Redis store."""
    from engine.decide import Engine
    from engine.service import AccountService
    from engine.store.redis_store import RedisStore, parse_redis_url
    from engine.wire import DialRequest

    # A deadline far above valgrind's slowness: a measurement, not a race.
    store = RedisStore(parse_redis_url(url + "?timeout_ms=60000"))
    await store.open()
    try:
        engine = Engine(store)
        await AccountService(store, on_saved=engine.install).put(bench_account())

        async def dial(number: str) -> None:
            decision = await engine.dial("demo", DialRequest(user=BENCH_USER, to=number))
            if not decision.allowed:
                raise RuntimeError(f"a bench dial was denied: {decision.reason}")

        yield dial
    finally:
        await store.close()


@asynccontextmanager
async def _ceiling(url: str) -> AsyncIterator[Dial]:
    """The ceiling app's one EVALSHA per request, through the same kind of pool."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=IN_FLIGHT)
    client = aioredis.Redis(connection_pool=pool)
    try:
        sha = await client.script_load(SCRIPT)

        async def dial(number: str) -> None:
            await client.evalsha(sha, 1, "bl:u:" + BENCH_USER, number)

        yield dial
    finally:
        await client.aclose()


def run() -> list[Row]:
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (Debian package valgrind)")
    with tempfile.TemporaryDirectory(prefix="bench-redis-instructions-") as tmp:
        mine = _per_dial(Path(tmp), "callgate", _callgate)
        theirs = _per_dial(Path(tmp), "ceiling", _ceiling)
    return [
        Row("Redis instructions per dial (callgrind), 1 process", mine / 1000, "k instr",
            theirs / 1000, "aiohttp+EVALSHA's script",
            note=f"{DIALS:,} dials after {WARMUP} of warm-up, {IN_FLIGHT} in flight; everything "
            "redis-server ran in that window (requests, script, replies), not the kernel's "
            "share"),
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row.what}: {row.value:.1f} {row.unit} (ceiling {row.baseline:.1f})")
