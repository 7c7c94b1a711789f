"""On Redis, a change made through one process's admin API is every process's next decision
within a second, and its audit entry is there for every process to list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import NO_DRAIN, stop_all
from tests.http.http_support import SALES_1, account
from tests.redis.fleet import Fleet, callgate
from tests.redis.test_processes import _all_use, _until

from ..redis_support import RedisServer

SALES_2 = "+12125550102"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    redis = RedisServer(tmp_path / "redis").start()
    (tmp_path / "fleet").mkdir()
    fleet = Fleet(tmp_path / "fleet", redis, url=f"{redis.url}?timeout_ms=2000")
    yield fleet
    stop_all(fleet.servers)
    redis.kill()


async def test_an_admin_change_reaches_every_process_within_a_second(fleet: Fleet) -> None:
    fleet.setup(account())
    owner = callgate("token", "create", "demo", "--user", "olivia", "--name", "owner",
                     "--redis-url", fleet.url).strip()
    # Polled only every 30 s: only the notification can be this quick.
    servers = fleet.start(3, "--config-poll", "30", *NO_DRAIN)
    assert await _all_use(servers, SALES_1)
    headers = {"Authorization": f"Bearer {owner}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.patch(f"{servers[0].url}/admin/v1/users/ana",
                                 json={"default_caller_id": SALES_2}) as reply:
            assert reply.status == 200, await reply.text()
        assert await _until(lambda: _all_use(servers, SALES_2), 1.0) < 1.0
        for server in servers:
            async with session.get(f"{server.url}/admin/v1/audit",
                                   params={"target": "user:ana"}) as reply:
                entries = (await reply.json())["items"]
            assert [(e["actor"], e["action"]) for e in entries] == [("user:olivia", "user.update")]


async def test_a_token_revoked_through_one_process_is_refused_by_every_other(
    fleet: Fleet,
) -> None:
    fleet.setup(account())
    owner = callgate("token", "create", "demo", "--user", "olivia", "--name", "owner",
                     "--redis-url", fleet.url).strip()
    servers = fleet.start(3, *NO_DRAIN)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{servers[0].url}/admin/v1/tokens",
                                json={"name": "laptop"},
                                headers={"Authorization": f"Bearer {owner}"}) as reply:
            created = await reply.json()
        mine = {"Authorization": f"Bearer {created['token']}"}

        async def status(server_url: str) -> int:
            async with session.get(f"{server_url}/admin/v1/users/olivia", headers=mine) as r:
                return r.status

        assert [await status(s.url) for s in servers] == [200, 200, 200]  # known everywhere
        async with session.delete(f"{servers[0].url}/admin/v1/tokens/{created['id']}",
                                  headers={"Authorization": f"Bearer {owner}"}) as reply:
            assert reply.status == 204

        async def refused_everywhere() -> bool:
            return [await status(s.url) for s in servers] == [401, 401, 401]

        # The other processes are told at once (well inside the 2 s their cache would last).
        assert await _until(refused_everywhere, 0.5) < 0.5


async def test_a_deleted_users_token_is_refused_by_every_process_at_once(fleet: Fleet) -> None:
    fleet.setup(account())
    owner = callgate("token", "create", "demo", "--user", "olivia", "--name", "owner",
                     "--redis-url", fleet.url).strip()
    anas = callgate("token", "create", "demo", "--user", "ana", "--name", "phone",
                    "--redis-url", fleet.url).strip()
    servers = fleet.start(3, *NO_DRAIN)
    async with aiohttp.ClientSession() as session:
        async def status(server_url: str) -> int:
            # The decision API: a token left behind would still pass there (then answer 404
            # for the missing user, or 200 until the account reloads); a revoked one is 401.
            async with session.post(f"{server_url}/v1/explain",
                                    json={"user": "ana", "to": "+12125550199"},
                                    headers={"Authorization": f"Bearer {anas}"}) as r:
                return r.status

        assert [await status(s.url) for s in servers] == [200, 200, 200]  # known everywhere
        async with session.delete(f"{servers[0].url}/admin/v1/users/ana",
                                  headers={"Authorization": f"Bearer {owner}"}) as reply:
            assert reply.status == 204, await reply.text()

        async def refused_everywhere() -> bool:
            return [await status(s.url) for s in servers] == [401, 401, 401]

        # Revoked, not merely orphaned: the other processes are told at once.
        assert await _until(refused_everywhere, 0.5) < 0.5
