"""Failed authentications on HTTP are throttled, against a real ``callgate serve``: a burst of
wrong tokens from one address turns into 429s with ``Retry-After`` on both APIs, while the
same server keeps answering a valid token from another address (and a token it knows from
the banned one)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import NO_DRAIN, Server, stop_all
from tests.http.http_support import PROBLEM_JSON, Metrics

BAN_AFTER = 10


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = Server(tmp_path / "data", args=("--http-ban-after", str(BAN_AFTER),
                                             "--http-ban-window", "60",
                                             "--http-ban-for", "120", *NO_DRAIN)).start()
    yield served
    stop_all([served])


def _session(source: str) -> aiohttp.ClientSession:
    """A client whose connections come from ``source`` (an address of the loopback net)."""
    connector = aiohttp.TCPConnector(limit=0, local_addr=(source, 0))
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def test_wrong_tokens_from_one_address_are_refused_with_429(server: Server) -> None:
    body = {"user": "ana", "to": "+12125550100"}
    async with _session("127.0.0.1") as attacker, _session("127.0.0.2") as office:
        # The valid token, seen once from the address that will be banned.
        async with attacker.post(f"{server.url}/v1/dial", json=body,
                                 headers=server.headers) as first:
            assert first.status == 200

        async def wrong(i: int) -> tuple[int, str | None, str]:
            async with attacker.post(f"{server.url}/v1/dial", json=body,
                                     headers={"Authorization": f"Bearer cg_guess{i}"}) as r:
                return r.status, r.headers.get("Retry-After"), r.content_type

        answers = await asyncio.gather(*(wrong(i) for i in range(300)))
        statuses = Counter(status for status, _, _ in answers)
        print("300 wrong tokens at once:", dict(statuses))
        assert statuses[401] >= BAN_AFTER and statuses[429] >= 300 - 3 * BAN_AFTER, statuses
        assert set(statuses) == {401, 429}
        retry_after = {after for status, after, _ in answers if status == 429}
        assert retry_after and all(a is not None and 0 < int(a) <= 120 for a in retry_after)
        assert {kind for _, _, kind in answers} == {PROBLEM_JSON}

        async with attacker.get(f"{server.url}/admin/v1/users",
                                headers={"Authorization": "Bearer cg_guess-admin"}) as admin:
            assert admin.status == 429 and admin.headers.get("Retry-After")
        # The token this server knows still works from the banned address...
        async with attacker.post(f"{server.url}/v1/explain", json=body,
                                 headers=server.headers) as known:
            assert known.status == 200
        # ...and from another address a wrong token is still just a 401, a valid one a 200.
        async with office.post(f"{server.url}/v1/dial", json=body,
                               headers={"Authorization": "Bearer cg_typo"}) as typo:
            assert typo.status == 401
        async with office.post(f"{server.url}/v1/explain", json=body,
                               headers=server.headers) as ok:
            assert ok.status == 200
        async with office.get(f"{server.url}/metrics") as scraped:
            metrics = Metrics(await scraped.text())
    assert metrics.value("callgate_http_throttled_total") == statuses[429] + 1
