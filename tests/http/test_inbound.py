"""POST /v1/inbound: an incoming call takes one of the user's channels under the same limits
and leases as outgoing ones (a channel counts every call, in or out); it is ended and kept
alive the same way, and a retry of its call id gets the same answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import Server
from tests.http.http_support import Api, ServerFactory, account, agent, connect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    users = [agent(f"pair{i}", max_channels=2) for i in range(6)]
    with ServerFactory(tmp_path_factory.mktemp("inbound")) as factory:
        yield factory.start(account(users=users))


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    async with connect(server) as client:
        yield client


async def inbound(api: Api, user: str, **fields: Any) -> dict[str, Any]:
    reply = await api.request("POST", "/v1/inbound", json={"user": user, **fields})
    assert reply.status == 200, reply
    assert isinstance(reply.body, dict)
    return reply.body


async def test_an_incoming_call_leaves_one_outgoing_channel_of_two(api: Api) -> None:
    taken = await inbound(api, "pair0", **{"from": "(312) 555-0100"})
    assert (taken["allowed"], taken["direction"], taken["from"]) == (True, "inbound",
                                                                      "+13125550100")
    assert taken["lease_expires_at"] and taken["call_id"]
    first = await api.dial("pair0", "2125550187")
    assert first["allowed"], first
    second = await api.dial("pair0", "2125550188")
    assert (second["allowed"], second["reason"]) == (False, "channel_limit")
    assert "on 2 calls" in second["detail"]
    await api.end(taken["call_id"], "answered")
    assert (await api.dial("pair0", "2125550189"))["allowed"]


async def test_a_full_user_refuses_an_incoming_call_so_the_pbx_can_route_it(api: Api) -> None:
    await api.fill("pair1", 2)
    refused = await inbound(api, "pair1", **{"from": "+44 20 7946 0187"})
    assert (refused["allowed"], refused["reason"]) == (False, "channel_limit")
    assert refused["from"] == "+442079460187" and "lease_expires_at" not in refused


async def test_an_incoming_call_is_ended_and_kept_alive_like_an_outgoing_one(api: Api) -> None:
    taken = await inbound(api, "pair2", call_id="pbx-in-1")
    assert "from" not in taken  # withheld
    again = await inbound(api, "pair2", call_id="pbx-in-1")
    assert again == taken  # a retry: the same answer, one channel
    assert (await api.heartbeat("pbx-in-1")).status == 200
    ended = await api.end("pbx-in-1", "answered")
    assert ended["sticky_recorded"] is False  # an incoming call sets no sticky caller ID
    await api.fill("pair2", 2)  # both channels free again


async def test_a_call_id_or_a_body_that_does_not_fit_is_a_problem(api: Api) -> None:
    await inbound(api, "pair3", call_id="shared-id")
    reused = await api.request("POST", "/v1/dial",
                               json={"user": "pair3", "to": "2125550187", "call_id": "shared-id"})
    assert reused.status == 409
    for body, status in (({"user": "nobody"}, 404), ({"user": "pair3", "to": "1"}, 422),
                         ({"user": "pair3", "from": "letters"}, 422)):
        reply = await api.request("POST", "/v1/inbound", json=body)
        assert reply.status == status, (body, reply)
