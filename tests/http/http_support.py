"""Shared pieces of the HTTP tests: account files built from the demo account, real
``callgate serve`` subprocesses started on them, an aiohttp client for the decision API, and a
reader for ``/metrics``.

Everything here talks to a real server over real HTTP; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families

from callerid import AccountConfig, CallSettings, User
from tests.conftest import Server, demo_config, write_account

__all__ = [
    "PROBLEM_JSON",
    "SALES_1",
    "Api",
    "Metrics",
    "Reply",
    "ServerFactory",
    "account",
    "agent",
    "connect",
    "gather_dials",
    "parse_time",
]

SALES_1 = "+12125550101"
"""ana's default caller ID in the demo account (a Sales number)."""
PROBLEM_JSON = "application/problem+json"


# -- account files ---------------------------------------------------------------------------


def agent(
    user_id: str,
    *,
    max_channels: int,
    default_caller_id: str | None = SALES_1,
    sticky: bool | None = None,
    department: str = "sales",
) -> User:
    """A Sales user with its own default caller ID (every active number available)."""
    return User(
        id=user_id,
        email=f"{user_id}@http-tests.example",
        name=f"HTTP test user {user_id}",
        department=department,
        default_caller_id=default_caller_id,
        max_channels=max_channels,
        call_settings=None if sticky is None else CallSettings(sticky_caller_id=sticky),
    )


def account(
    *,
    users: Iterable[User] = (),
    replace_users: dict[str, dict[str, Any]] | None = None,
    **changes: Any,
) -> AccountConfig:
    """The demo account with ``changes`` to the account, fields of some of its users replaced
    (``replace_users={"ana": {"max_channels": 1}}``) and ``users`` added."""
    config = demo_config()
    edits = replace_users or {}
    kept = tuple(
        msgspec.structs.replace(u, **edits[u.id]) if u.id in edits else u for u in config.users
    )
    return msgspec.structs.replace(config, users=kept + tuple(users), **changes)


class ServerFactory:
    """Starts ``callgate serve`` subprocesses on account files; kills them all at the end."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._servers: list[Server] = []

    def start(self, config: AccountConfig, name: str = "server") -> Server:
        directory = self._root / name
        directory.mkdir(parents=True, exist_ok=True)
        path = write_account(directory / "account.toml", config)
        return self.restart(Server(directory / "data", demo=path))

    def restart(self, server: Server, *, demo: Path | None = None) -> Server:
        """A fresh server process on ``server``'s data directory, given ``server``'s account
        file (or ``demo``) as its ``--demo``."""
        fresh = Server(server.data_dir, demo=demo or server.demo).start()
        self._servers.append(fresh)
        return fresh

    def close(self) -> None:
        for server in self._servers:
            server.kill()

    def __enter__(self) -> ServerFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the client ------------------------------------------------------------------------------


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    content_type: str
    headers: Mapping[str, str]
    """Case-insensitive."""
    body: Any
    """The decoded JSON body, or the text when it is not JSON."""


class Api:
    """The decision API of one server, as a dialer uses it."""

    def __init__(self, session: aiohttp.ClientSession, server: Server) -> None:
        self.session = session
        self.server = server

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request; ``headers`` replace the bearer token header when given."""
        sent = self.server.headers if headers is None else headers
        payload = msgspec.json.encode(json) if json is not None else data
        if payload is not None:
            sent = {**sent, "Content-Type": "application/json"}
        async with self.session.request(
            method, self.server.url + path, data=payload, headers=sent
        ) as response:
            raw = await response.read()
            content_type = response.headers.get("Content-Type", "")
            body: Any
            try:
                body = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                body = raw.decode(errors="replace")
            return Reply(
                status=response.status,
                content_type=content_type.split(";")[0].strip(),
                headers=CIMultiDict(response.headers),
                body=body,
            )

    async def _ok(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self.request("POST", path, json=body)
        assert reply.status == 200, reply
        assert isinstance(reply.body, dict)
        return reply.body

    async def dial(self, user: str, to: str, **fields: Any) -> dict[str, Any]:
        """POST /v1/dial, which must answer 200; the decision."""
        return await self._ok("/v1/dial", {"user": user, "to": to, **fields})

    async def explain(self, user: str, to: str, **fields: Any) -> dict[str, Any]:
        return await self._ok("/v1/explain", {"user": user, "to": to, **fields})

    async def end(self, call_id: str, outcome: str) -> dict[str, Any]:
        return await self._ok(f"/v1/calls/{call_id}/end", {"outcome": outcome})

    async def heartbeat(self, call_id: str) -> Reply:
        return await self.request("POST", f"/v1/calls/{call_id}/heartbeat", json={})

    async def fill(self, user: str, channels: int, to: str = "2125550187") -> list[str]:
        """Take ``channels`` channels for ``user`` (each dial must be allowed); their call ids."""
        taken = []
        for _ in range(channels):
            decision = await self.dial(user, to)
            assert decision["allowed"], decision
            taken.append(decision["call_id"])
        return taken

    async def metrics(self) -> Metrics:
        async with self.session.get(self.server.url + "/metrics") as response:
            assert response.status == 200
            return Metrics(await response.text())


@contextlib.asynccontextmanager
async def connect(server: Server) -> AsyncIterator[Api]:
    """A client session for ``server`` with no cap on concurrent connections."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield Api(session, server)


async def gather_dials(api: Api, bodies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send every body to POST /v1/dial at once; the decisions, in order. Every answer must be
    a 200 (a decision); otherwise fail listing the statuses and one problem of each."""
    replies = await asyncio.gather(
        *(api.request("POST", "/v1/dial", json=body) for body in bodies)
    )
    statuses = Counter(r.status for r in replies)
    problems = {r.status: r.body for r in replies if r.status != 200}
    assert set(statuses) == {200}, f"statuses {dict(statuses)}; problems: {problems}"
    return [r.body for r in replies]


# -- metrics ---------------------------------------------------------------------------------


class Metrics:
    """One scrape of ``/metrics``, indexed by sample name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append((sample.labels, sample.value))

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
        return sum(
            value
            for sample_labels, value in self.samples.get(name, [])
            if all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def labels(self, name: str) -> Iterator[dict[str, str]]:
        for sample_labels, _ in self.samples.get(name, []):
            yield sample_labels

    @property
    def active_leases(self) -> float:
        return self.value("callgate_active_leases", account="demo")

    @property
    def decisions(self) -> float:
        return self.value("callgate_decisions_total")


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp from the API."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
