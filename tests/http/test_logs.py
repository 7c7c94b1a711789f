"""Logs: JSON lines on stderr, one per decision at debug level and one per admin write, each
carrying the request's X-Request-Id, which the answer carries back."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import CALLGATE, Server


@pytest.fixture(scope="module")
def info_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server at the default log level for the tests that read its log: among them only
    one dials and only one writes through the admin API, so each finds just its own lines."""
    served = Server(tmp_path_factory.mktemp("logs") / "data").start()
    yield served
    served.kill()


def _owner_token(server: Server) -> str:
    return subprocess.run([str(CALLGATE), "token", "create", "demo", "--user", "olivia",
                           "--data", str(server.data_dir)], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()


def _lines(server: Server, wanted: str, timeout_s: float = 5.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = []
        for line in list(server.output):
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("message") == wanted:
                    found.append(entry)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


async def test_a_decision_is_logged_at_debug_with_the_request_id(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", args=["--log-level", "debug"]).start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{server.url}/v1/dial", json={"user": "ana", "to": "+12125550187"},
                         headers={**server.headers, "X-Request-Id": "dialer-42"}) as r,
        ):
            assert r.status == 200 and r.headers["X-Request-Id"] == "dialer-42"
            call_id = (await r.json())["call_id"]
        [entry] = _lines(server, "decision")
        assert entry["request_id"] == "dialer-42" and entry["level"] == "debug"
        assert (entry["user"], entry["allowed"], entry["rule"]) == ("ana", True, "user_default")
        assert entry["call_id"] == call_id and entry["caller_id"] == "+12125550101"
    finally:
        server.kill()


async def test_decisions_are_not_logged_at_info(info_server: Server) -> None:
    server = info_server
    async with (
        aiohttp.ClientSession(headers=server.headers) as session,
        session.post(f"{server.url}/v1/dial", json={"user": "ana", "to": "+12125550187"}) as r,
    ):
        assert r.status == 200
    assert _lines(server, "decision", timeout_s=0.5) == []


async def test_every_admin_write_is_logged_with_its_actor_and_target(
    info_server: Server,
) -> None:
    server = info_server
    token = _owner_token(server)
    async with (
        aiohttp.ClientSession() as session,
        session.patch(f"{server.url}/admin/v1/users/ana", json={"max_channels": 3},
                      headers={"Authorization": f"Bearer {token}", "X-Request-Id": "ops-7"}) as r,
    ):
        assert r.status == 200, await r.text()
    [entry] = _lines(server, "admin write")
    assert (entry["actor"], entry["actions"], entry["targets"]) == (
        "user:olivia", ["user.update"], ["user:ana"])
    assert entry["request_id"] == "ops-7" and entry["level"] == "info"


async def test_every_answer_carries_the_request_id_back(info_server: Server) -> None:
    """Decisions, admin operations and the routes around them (the document, the docs page
    and its assets, unknown paths and methods) all answer through one wrapper."""
    server = info_server
    cases = [
        ("GET", "/healthz", 200),
        ("GET", "/nowhere", 404),
        ("DELETE", "/v1/dial", 405),
        ("GET", "/admin/v1/account", 200),
        ("GET", "/admin/v1/openapi.json", 200),
        ("GET", "/admin/v1/docs", 302),
        ("GET", "/admin/v1/docs/", 200),
        ("GET", "/admin/v1/docs/assets/swagger-ui.css", 200),
        ("GET", "/admin/v1/docs/assets/nothing.js", 404),
        ("GET", "/admin/v1/nowhere", 404),
    ]
    headers = {"Authorization": f"Bearer {_owner_token(server)}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for i, (method, path, status) in enumerate(cases):
            async with session.request(method, f"{server.url}{path}", allow_redirects=False,
                                       headers={"X-Request-Id": f"r-{i}"}) as r:
                assert (r.status, r.headers.get("X-Request-Id")) == (status, f"r-{i}"), path
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{server.url}/admin/v1/docs") as r,
    ):
        assert r.status == 200 and str(r.url).endswith("/admin/v1/docs/")
