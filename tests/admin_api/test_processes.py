"""On Redis, a change made through one process's admin API is every process's next decision
within a second, and its audit entry is there for every process to list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

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
    fleet.close()
    redis.kill()


async def test_an_admin_change_reaches_every_process_within_a_second(fleet: Fleet) -> None:
    fleet.setup(account())
    owner = callgate("token", "create", "demo", "--user", "olivia", "--name", "owner",
                     "--redis-url", fleet.url).strip()
    servers = fleet.start(3, "--config-poll", "30")  # only the notification can be this quick
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
