"""An open-loop, fixed-rate load generator for ``POST /v1/dial``: latency at a given rate.

wrk is closed-loop: each connection sends its next request only once the previous answer is
in, so a server that stalls also stalls the load, and the requests that would have arrived
during the stall are never sent nor timed ("coordinated omission"); its latencies describe
a server pushed to saturation. A dialer does not wait for callgate: calls are placed when
agents are ready. So this generator schedules request ``i`` at ``start + i / rate``, whatever
the server does, and times each from its *scheduled* send time to the end of its answer:
a stall shows up in the latency of every request scheduled during it. (A request sent early,
by up to ``EARLY_S``, is timed from its actual send.)

HTTP/1.1 keep-alive over a fixed pool of connections (no pipelining). A request whose time
has come goes out on an idle connection; when none is idle it waits for one, and that wait
counts in its latency. Every request dials a number no other request of the run dials, as
the wrk script does. The first ``--warmup`` seconds are sent at the same rate and left out.

The generator must itself keep up (pure Python, on the same two cores as the server): every
request sent more than ``LATE_MS`` after its scheduled time is counted, split into those that
waited for a free connection (the server was slow) and the rest (this loop was late).

``python -m bench.openloop --url http://127.0.0.1:P/v1/dial --rate R --seconds S --token T``
prints one JSON object (``OpenLoopResult``); ``run`` starts it as a separate process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import re
import subprocess
import sys
from array import array
from collections import deque
from urllib.parse import urlsplit

import msgspec

__all__ = ["LATE_MS", "OpenLoopResult", "drive", "main", "run"]

LATE_MS = 1.0
EARLY_S = 0.0005
"""How early a request may go out. The event loop's timers wake up to a millisecond late
(epoll counts whole milliseconds), so waking half a millisecond early centres the sends on
their schedule; an early request is timed from its actual send, a late one from its
scheduled time."""
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)


class OpenLoopResult(msgspec.Struct, frozen=True, kw_only=True):
    rate: float
    """The rate asked for (requests per second)."""
    achieved: float
    """Requests sent per second over the measured part (from first to last send)."""
    requests: int
    """Measured requests (the warm-up left out)."""
    completed: int
    non_2xx: int
    errors: int
    """Requests with no answer: the connection broke, or none came before the end."""
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    late: int
    """Measured requests sent more than ``LATE_MS`` after their scheduled time."""
    late_waiting: int
    """Of those, the ones that waited for a free connection (the server was slow)."""
    connections: int


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight, its answer parsed here."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.index = -1  # the request in flight, or -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        found = _CONTENT_LENGTH.search(self.buffer, 0, end + 2)
        size = end + 4 + (int(found.group(1)) if found else 0)
        if len(self.buffer) < size:
            return
        status = int(self.buffer[9:12])
        del self.buffer[:size]
        index, self.index = self.index, -1
        self.gen.answered(self, index, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class _Generator:
    """One run's state: per request its scheduled, sent and answered times and its status;
    the idle connections, and the requests due that wait for one."""

    def __init__(
        self, host: str, port: int, path: str, token: str, user: str, offset: int
    ) -> None:
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
        ).encode()
        self.user = user
        self.offset = offset
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[int] = deque()
        self.scheduled = array("d")
        self.sent = array("d")
        self.done = array("d")
        self.status = array("i")
        self.waited = bytearray()
        self.outstanding = 0
        self.all_done = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def request(self, index: int) -> bytes:
        # +1 212 NXX XXXX with NXX from 200: valid, and new for every request (as in wrk.py).
        number = 2_000_000 + (self.offset + index) % 8_000_000
        body = f'{{"user":"{self.user}","to":"+1212{number}"}}'.encode()
        return self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def send(self, connection: _Connection, index: int) -> None:
        assert connection.transport is not None
        connection.index = index
        self.sent[index] = self.loop.time()
        connection.transport.write(self.request(index))

    def due(self, index: int) -> None:
        """Request ``index``'s time has come: out now on an idle connection, else it waits."""
        self.outstanding += 1
        self.all_done.clear()
        if self.idle:
            self.send(self.idle.popleft(), index)
        else:
            self.waited[index] = 1
            self.waiting.append(index)

    def answered(self, connection: _Connection, index: int, status: int) -> None:
        self.done[index] = self.loop.time()
        self.status[index] = status
        self.finish_one()
        if self.waiting:
            self.send(connection, self.waiting.popleft())
        else:
            self.idle.append(connection)

    def lost(self, connection: _Connection) -> None:
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.index >= 0:
            connection.index = -1
            self.finish_one()  # no answer: done stays 0, counted as an error

    def finish_one(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0:
            self.all_done.set()


def _quantile(sorted_ms: list[float], q: float) -> float:
    """Nearest rank: the smallest latency that at least ``q`` of the requests did not exceed."""
    if not sorted_ms:
        return 0.0
    return sorted_ms[max(1, math.ceil(len(sorted_ms) * q)) - 1]


async def drive(
    url: str,
    *,
    rate: float,
    seconds: float,
    warmup: float = 1.0,
    connections: int = 64,
    token: str = "none",
    user: str = "ana",
    offset: int = 6_000_000,
) -> OpenLoopResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    gen = _Generator(host, port, parts.path or "/", token, user, offset)
    loop = gen.loop
    for _ in range(connections):
        _, protocol = await loop.create_connection(lambda: _Connection(gen), host, port)
        gen.idle.append(protocol)
    warm = int(rate * warmup)
    total = warm + int(rate * seconds)
    gen.scheduled.extend([0.0] * total)
    gen.sent.extend([0.0] * total)
    gen.done.extend([0.0] * total)
    gen.status.extend([0] * total)
    gen.waited.extend(bytes(total))
    start = loop.time() + 0.05
    for i in range(total):
        at = start + i / rate
        gen.scheduled[i] = at
        delay = at - EARLY_S - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        gen.due(i)
    if gen.outstanding:
        try:
            await asyncio.wait_for(gen.all_done.wait(), timeout=10.0)
        except TimeoutError:
            pass
    for connection in [*gen.idle]:
        if connection.transport is not None:
            connection.transport.close()
    return _result(gen, rate, warm, total, connections)


def _result(
    gen: _Generator, rate: float, warm: int, total: int, connections: int
) -> OpenLoopResult:
    measured = range(warm, total)
    latencies: list[float] = []
    non_2xx = errors = late = late_waiting = 0
    for i in measured:
        if gen.done[i] == 0.0:
            errors += 1
        else:
            latencies.append((gen.done[i] - min(gen.sent[i], gen.scheduled[i])) * 1e3)
            if not 200 <= gen.status[i] < 300:
                non_2xx += 1
        if gen.sent[i] and (gen.sent[i] - gen.scheduled[i]) * 1e3 > LATE_MS:
            late += 1
            late_waiting += gen.waited[i]
    latencies.sort()
    sends = [gen.sent[i] for i in measured if gen.sent[i]]
    span = max(sends) - min(sends) if len(sends) > 1 else 0.0
    return OpenLoopResult(
        rate=rate,
        achieved=(len(sends) - 1) / span if span else 0.0,
        requests=len(measured),
        completed=len(latencies),
        non_2xx=non_2xx,
        errors=errors,
        p50_ms=_quantile(latencies, 0.5),
        p99_ms=_quantile(latencies, 0.99),
        p999_ms=_quantile(latencies, 0.999),
        max_ms=latencies[-1] if latencies else 0.0,
        late=late,
        late_waiting=late_waiting,
        connections=connections,
    )


def run(
    url: str,
    *,
    rate: float,
    seconds: float,
    warmup: float = 1.0,
    connections: int = 64,
    token: str = "none",
    offset: int = 6_000_000,
) -> OpenLoopResult:
    """Run the generator as a process of its own (its own interpreter, no GIL shared with the
    harness) and read its result."""
    argv = [
        sys.executable, "-m", "bench.openloop", "--url", url, "--rate", str(rate),
        "--seconds", str(seconds), "--warmup", str(warmup), "--connections", str(connections),
        "--token", token, "--offset", str(offset),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + warmup + 60)
    if done.returncode != 0:
        raise RuntimeError(f"bench.openloop failed ({done.returncode}):\n{done.stderr}")
    return msgspec.json.decode(done.stdout.strip().splitlines()[-1], type=OpenLoopResult)


def main() -> None:
    parser = argparse.ArgumentParser(description="open-loop fixed-rate POST /v1/dial load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent, not measured")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--token", default="none")
    parser.add_argument("--user", default="ana")
    parser.add_argument("--offset", type=int, default=6_000_000)
    args = parser.parse_args()
    # No collector pauses in the generator's own timing: a run allocates little that lives.
    gc.disable()
    result = asyncio.run(
        drive(
            args.url, rate=args.rate, seconds=args.seconds, warmup=args.warmup,
            connections=args.connections, token=args.token, user=args.user, offset=args.offset,
        )
    )
    print(msgspec.json.encode(result).decode(), flush=True)


if __name__ == "__main__":
    main()
