"""No blocking call on the event loop on the hot path.

The decision API is served in this process (``engine.http.build_app`` over the embedded store)
and driven over loopback with many dials in flight, while blockbuster watches every call made
from callgate's own packages (``callgate.PACKAGES``) on the loop (file and socket I/O, sleeps,
SQLite, ...).
A blocking call raises ``BlockingError`` there, which the API answers with a 500 and logs; both
are counted. The run lasts longer than the token cache's revalidation interval, so the token
lookup through the store is on the path too.

Beside it, for context, the longest stall of the loop: how late a 1 ms timer fired at worst
while the API was under load (CPU work between awaits shows up here, blocking or not).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp.test_utils import TestServer

from callgate import PACKAGES
from engine.days import load_zones
from engine.http import build_app
from engine.numbers import load_metadata
from engine.tokens import issue_token

from .inprocess import bench_engine
from .report import Row
from .workload import BENCH_USER, FreshNumbers, bench_account

__all__ = ["run"]

CONCURRENCY = 32


@dataclass
class Findings:
    statuses: dict[int, int] = field(default_factory=dict)
    blocking: list[str] = field(default_factory=list)
    worst_stall_s: float = 0.0


class _Catch(logging.Handler):
    """Collects every logged exception that is a blockbuster ``BlockingError``."""

    def __init__(self, findings: Findings) -> None:
        super().__init__()
        self._findings = findings

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and type(error).__name__ == "BlockingError":
            self._findings.blocking.append(str(error))


async def _watch_stalls(findings: Findings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        expected = time.perf_counter() + 0.001
        await asyncio.sleep(0.001)
        findings.worst_stall_s = max(findings.worst_stall_s, time.perf_counter() - expected)


async def _drive(url: str, token: str, numbers: list[str], seconds: float, f: Findings) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    pending = iter(numbers)
    until = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        for to in pending:
            if time.monotonic() > until:
                return
            body = {"user": BENCH_USER, "to": to}
            async with session.post(f"{url}/v1/dial", json=body, headers=headers) as response:
                await response.read()
                f.statuses[response.status] = f.statuses.get(response.status, 0) + 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))


async def _check(seconds: float) -> Findings:
    try:
        from blockbuster import blockbuster_ctx
    except ImportError as exc:  # blockbuster comes with the test extra
        raise RuntimeError("blockbuster is not installed: pip install -e '.[test,bench]'") from exc
    load_metadata()
    load_zones()
    findings = Findings()
    config = bench_account()
    catch = _Catch(findings)
    logging.getLogger().addHandler(catch)
    try:
        async with bench_engine(config) as stack:
            token = await issue_token(stack.store, config.id, "bench")
            server = TestServer(build_app(stack.store, stack.engine, stack.metrics))
            await server.start_server()
            try:
                url = str(server.make_url("")).rstrip("/")
                numbers = FreshNumbers(seed=3).take(int(seconds * 5000))
                stop = asyncio.Event()
                with blockbuster_ctx(list(PACKAGES)):
                    watcher = asyncio.create_task(_watch_stalls(findings, stop))
                    await _drive(url, token, numbers, seconds, findings)
                    stop.set()
                    await watcher
            finally:
                await server.close()
    finally:
        logging.getLogger().removeHandler(catch)
    return findings


def run(seconds: float = 3.0) -> list[Row]:
    findings = asyncio.run(_check(seconds))
    served = sum(findings.statuses.values())
    failed = {s: n for s, n in findings.statuses.items() if s != 200}
    if not served:
        raise RuntimeError("bench: the blocking check served no request")
    note = f"{served} dials over HTTP in process, {CONCURRENCY} in flight"
    if failed:
        note += f"; non-200 answers: {failed}"
    if findings.blocking:
        note += f"; first: {findings.blocking[0][:160]}"
    return [
        Row(
            "blocking calls on the loop (dial path)",
            float(len(findings.blocking)),
            "calls",
            target="0",
            met=not findings.blocking and not failed,
            note=note,
        ),
        Row("  longest event-loop stall under load", findings.worst_stall_s * 1e3, "ms"),
    ]
