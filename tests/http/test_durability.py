"""What a client was told survives ``kill -9``: the configuration, sticky caller IDs, leases,
ended calls and remembered call ids are all there when a new server opens the same data
directory. And when the disk is slow, what the client is told still matches what is held."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from callerid import CallSettings
from engine.store.sqlite import _BUSY_TIMEOUT_MS
from tests.conftest import DEMO, Server
from tests.http.http_support import Api, Reply, ServerFactory, account, agent, connect

CONTACT = "+12125550187"
ANA = "+12125550101"
"""ana's default caller ID; with sticky on in this account's copy of her settings."""
STICKY = CallSettings(sticky_caller_id=True)


class BeforeKill(msgspec.Struct, kw_only=True):
    """The answers the first server gave before it was killed."""

    answers: dict[str, dict[str, Any]]


async def _before_kill(server: Server) -> BeforeKill:
    async with connect(server) as api:
        sticky_call = await api.dial("ana", CONTACT)
        ended = await api.end(sticky_call["call_id"], "answered")
        assert ended["sticky_recorded"] is True
        answers = {
            call_id: await api.dial("ana", "2125550111", call_id=call_id)
            for call_id in ("lease-1", "lease-2", "denied-1")
        }
        assert [a["allowed"] for a in answers.values()] == [True, True, False]
        assert answers["denied-1"]["reason"] == "channel_limit"
        lee = await api.dial("lee", CONTACT, call_id="ended-1")
        await api.end(lee["call_id"], "no_answer")
        return BeforeKill(answers=answers)


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, BeforeKill]]:
    """A server on the demo account plus a user ``kept``, with ana on two channels and sticky
    caller ID on, used, killed with SIGKILL, and a new server on the same data directory. The
    new one is started with the plain demo file as ``--demo``, so what it serves can only come
    from the data directory."""
    config = account(
        users=[agent("kept", max_channels=1)],
        replace_users={"ana": {"max_channels": 2, "call_settings": STICKY}},
    )
    with ServerFactory(tmp_path_factory.mktemp("durability")) as factory:
        first = factory.start(config)
        before = asyncio.run(_before_kill(first))
        first.kill()
        yield factory.restart(first, demo=DEMO), before


@pytest.fixture
async def api(restarted: tuple[Server, BeforeKill]) -> AsyncIterator[Api]:
    async with connect(restarted[0]) as client:
        yield client


@pytest.fixture
def before(restarted: tuple[Server, BeforeKill]) -> BeforeKill:
    return restarted[1]


# -- after kill -9 -----------------------------------------------------------------------------


async def test_the_configuration_survives_kill_9(api: Api) -> None:
    decision = await api.dial("kept", CONTACT)  # a user the demo file does not have

    assert decision["allowed"]
    assert (decision["rule"], decision["caller_id"]) == ("user_default", ANA)


async def test_a_sticky_caller_id_survives_kill_9(api: Api) -> None:
    decision = await api.dial("sam", CONTACT)

    assert (decision["rule"], decision["caller_id"]) == ("sticky", ANA)


async def test_leases_survive_kill_9(api: Api) -> None:
    decision = await api.dial("ana", CONTACT)

    assert decision["allowed"] is False
    assert decision["reason"] == "channel_limit"


async def test_a_call_ended_before_kill_9_stays_ended(api: Api) -> None:
    assert (await api.dial("lee", CONTACT))["allowed"], "lee's one channel is free"


@pytest.mark.parametrize("call_id", ["lease-1", "denied-1"], ids=["allowed", "denied"])
async def test_a_call_id_answered_before_kill_9_gets_the_same_answer_after_it(
    api: Api, before: BeforeKill, call_id: str
) -> None:
    again = await api.dial("ana", "2125550111", call_id=call_id)

    assert again == before.answers[call_id]


# -- when the disk is slow ---------------------------------------------------------------------


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerFactory]:
    with ServerFactory(tmp_path) as factory:
        yield factory


@contextlib.contextmanager
def database_locked(server: Server) -> Iterator[None]:
    """Hold the write lock of ``server``'s database, as another writer beside it would (the
    CLI's configuration commands may run beside a server)."""
    conn = sqlite3.connect(server.data_dir / "callgate.db", isolation_level=None, timeout=2.0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def dial_while_locked(api: Api, body: dict[str, Any], hold_s: float) -> Reply:
    """POST /v1/dial while the database is locked for ``hold_s`` (or until the answer comes,
    if it takes longer than that)."""
    await api.explain(body["user"], body["to"])  # the token is checked now, not under the lock
    with database_locked(api.server):
        answer = asyncio.ensure_future(api.request("POST", "/v1/dial", json=body))
        await asyncio.sleep(hold_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(answer), timeout=3.0)
    return await answer


async def holds_a_channel(api: Api, user: str) -> bool:
    """Whether ``user`` (one channel) is on a call: a new dial is refused for the channel.
    Right after the lock goes, the writer may still be finishing what it waited for, so a
    503 is retried, as a dialer does (the question is what is held, not how soon)."""
    for _ in range(50):
        reply = await api.request("POST", "/v1/dial", json={"user": user, "to": "2125550199"})
        if reply.status != 503:
            break
        await asyncio.sleep(0.1)
    assert reply.status == 200, reply
    decision = reply.body
    if decision["allowed"]:
        await api.end(decision["call_id"], "canceled")
    return decision.get("reason") == "channel_limit"


async def test_a_dial_held_up_by_the_disk_holds_a_channel_only_if_it_was_allowed(
    servers: ServerFactory,
) -> None:
    server = servers.start(account(replace_users={"ana": {"max_channels": 1}}))
    async with connect(server) as api:
        reply = await dial_while_locked(api, {"user": "ana", "to": CONTACT}, hold_s=0.0)

        told_allowed = reply.status == 200 and reply.body["allowed"] is True
        held = await holds_a_channel(api, "ana")
        assert held == told_allowed, (
            f"the client was told {reply.status} {reply.body}, "
            f"yet ana's channel is {'held' if held else 'free'}"
        )


async def test_a_dial_whose_write_failed_leaves_nothing_behind(servers: ServerFactory) -> None:
    """Neither its channel nor its count against the caller ID's daily cap (1 here: a count
    left behind would deny the retry ``caller_id_capped``)."""
    server = servers.start(account(replace_users={"ana": {"max_channels": 1}}, daily_cap=1))
    body = {"user": "ana", "to": CONTACT, "call_id": "slow-1"}
    async with connect(server) as api:
        # Past SQLite's busy timeout, so the server's write of this call fails.
        first = await dial_while_locked(api, body, hold_s=_BUSY_TIMEOUT_MS / 1000 + 0.5)
        assert first.status == 503, first
        assert first.body["allowed"] is False and first.body["reason"] == "store_unavailable"
        assert first.body["call_id"] == "slow-1" and first.body["detail"]

        retry = await api.request("POST", "/v1/dial", json=body)

        assert retry.status == 200, f"the retry after the lock was released got {retry}"
        assert retry.body["allowed"] is True
        assert await holds_a_channel(api, "ana"), "the retry holds ana's one channel"
