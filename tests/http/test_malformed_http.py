"""A request too broken to parse is one warning line, without a traceback, at most one every
10 s per process, the next saying how many were left out; other errors on aiohttp's server
logger keep their level and traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from engine import logs
from engine.logs import MalformedRequests
from tests.conftest import Server

BAD_HEADER = b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"
BAD_VERSION = b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"
SERVER_LOG = logging.getLogger("aiohttp.server")


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


async def send_raw(port: int, raw: bytes) -> bytes:
    """``raw`` on a fresh connection; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug of ours")


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake clock, and a ``MalformedRequests`` filter reading it on aiohttp's logger."""
    fake = FakeClock()
    installed = MalformedRequests(clock=fake)
    SERVER_LOG.addFilter(installed)
    try:
        yield fake
    finally:
        SERVER_LOG.removeFilter(installed)


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """A plain aiohttp server (logging on ``aiohttp.server``, as callgate's does), with one
    route that fails."""
    app = web.Application()
    app.router.add_get("/boom", _boom)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "aiohttp.server"]


async def test_a_malformed_request_is_one_warning_without_a_traceback(
    clock: FakeClock, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await send_raw(port, BAD_HEADER)

    assert answer.startswith(b"HTTP/1.0 400"), answer
    [record] = server_records(caplog)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "malformed HTTP request"
    assert record.fields == {  # type: ignore[attr-defined]
        "peer": "127.0.0.1", "problem": "Invalid header token: b'Bad Header'", "suppressed": 0}


async def test_malformed_requests_are_logged_once_in_10_s_counting_the_rest(
    clock: FakeClock, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    await send_raw(port, BAD_HEADER)
    for _ in range(3):
        clock.now_s += 3
        await send_raw(port, BAD_VERSION)
    assert len(server_records(caplog)) == 1, "the three within 10 s are left out"

    clock.now_s += 1  # 10 s after the first line
    await send_raw(port, BAD_VERSION)

    _, second = server_records(caplog)
    assert second.fields["suppressed"] == 3  # type: ignore[attr-defined]
    assert second.fields["problem"].startswith("Bad status line")  # type: ignore[attr-defined]
    clock.now_s += 10
    await send_raw(port, BAD_HEADER)
    assert server_records(caplog)[-1].fields["suppressed"] == 0  # type: ignore[attr-defined]


async def test_an_error_that_is_not_a_parse_error_keeps_its_level_and_traceback(
    clock: FakeClock, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    await send_raw(port, BAD_HEADER)  # the filter is quiet for 10 s now
    caplog.clear()

    answer = await send_raw(port, b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 500"), answer
    [record] = server_records(caplog)
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """``logs.configure`` replaces the process's logging set-up: put pytest's back."""
    root = logging.getLogger()
    handlers, level, filters = list(root.handlers), root.level, list(SERVER_LOG.filters)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        SERVER_LOG.filters[:] = filters


def test_configuring_logs_again_keeps_one_filter(restored_logging: None) -> None:
    logs.configure("info", "json")
    logs.configure("info", "text")  # a worker process configures again

    assert sum(isinstance(f, MalformedRequests) for f in SERVER_LOG.filters) == 1


def _malformed_lines(server: Server, timeout_s: float = 10.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [json.loads(line) for line in list(server.output)
                 if line.startswith("{") and "malformed HTTP request" in line]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


async def test_callgate_serve_logs_a_malformed_request_as_one_warning_line(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path / "data").start()
    try:
        answer = await send_raw(server.port, BAD_HEADER)
        assert answer.startswith(b"HTTP/1.0 400"), answer

        [line] = _malformed_lines(server)
    finally:
        server.kill()
    assert line["level"] == "warning" and line["logger"] == "aiohttp.server"
    assert (line["peer"], line["suppressed"]) == ("127.0.0.1", 0)
    assert line["problem"] == "Invalid header token: b'Bad Header'"
    assert "error" not in line
    logged = "".join(server.output)
    assert "Traceback" not in logged and "Error handling request" not in logged, logged
