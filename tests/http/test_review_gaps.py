"""Behaviours pinned after review: explain honours call ids, choices reach the dialer,
emergency calls pass the account cap, the auth scheme is case-insensitive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest

from tests.conftest import Server, demo_config, write_account
from tests.http.http_support import Api, connect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One demo server for the module: each test uses call ids of its own, and ana's two
    channels hold the two calls the tests dial."""
    served = Server(tmp_path_factory.mktemp("review-gaps") / "data").start()
    yield served
    served.kill()


@pytest.fixture
async def api(server: Server) -> AsyncIterator[Api]:
    async with connect(server) as client:
        yield client


async def test_explain_returns_the_stored_answer_for_a_used_call_id(api: Api) -> None:
    first = await api.dial("ana", "2125550111", call_id="used-1")
    again = await api.explain("ana", "2125550111", call_id="used-1")
    assert {k: v for k, v in again.items() if k != "trace"} == first
    assert again["trace"][0]["step"] == "replay"


async def test_explain_refuses_a_call_id_used_for_another_request(api: Api) -> None:
    await api.dial("ana", "2125550111", call_id="used-2")
    reply = await api.request(
        "POST", "/v1/explain", json={"user": "ana", "to": "2125550122", "call_id": "used-2"}
    )
    assert reply.status == 409


async def test_no_caller_id_carries_choices_over_http(api: Api) -> None:
    decision = await api.dial("chris", "2125550111")
    assert decision["reason"] == "no_caller_id"
    assert decision["choices"] == ["+13105550110", "+13125550120", "+14165550150"]


async def explain_status(api: Api, authorization: str) -> int:
    """The status of an explain for ana sent with ``authorization`` as its header."""
    reply = await api.request(
        "POST",
        "/v1/explain",
        json={"user": "ana", "to": "2125550111"},
        headers={"Authorization": authorization},
    )
    return reply.status


async def test_lowercase_bearer_scheme_accepted(server: Server, api: Api) -> None:
    assert await explain_status(api, f"bearer {server.token}") == 200


async def test_emergency_call_passes_the_account_cap(tmp_path: object) -> None:
    config = demo_config()
    config = msgspec.structs.replace(config, max_channels=1)
    path = write_account(tmp_path / "capped.toml", config)  # type: ignore[operator]
    server = Server(tmp_path / "data", demo=path).start()  # type: ignore[operator]
    try:
        async with connect(server) as client:
            assert (await client.dial("ana", "2125550111"))["allowed"]
            assert (await client.dial("sam", "2125550111"))["reason"] == "channel_limit"
            sos = await client.dial("sam", "911")
            assert sos["allowed"] and sos["rule"] == "emergency"
    finally:
        server.kill()


async def test_known_token_under_another_scheme_refused(server: Server, api: Api) -> None:
    await api.explain("ana", "2125550111")  # the token is now in the server's cache
    assert await explain_status(api, f"Basic00 {server.token}") == 401


async def test_an_allowed_answer_says_how_far_the_account_vouches_for_its_caller_id(
    api: Api,
) -> None:
    """``A`` for a number from the user's own set; ``B`` for the account's number an
    emergency call falls back to, which chris (three numbers of his own) is not assigned."""
    chosen = await api.dial("chris", "2125550111", caller_id="+13125550120",
                            call_id="attest-1")
    assert (chosen["allowed"], chosen["attestation"]) == (True, "A")
    sos = await api.dial("chris", "911", call_id="attest-2")
    assert sos["rule"] == "emergency" and sos["caller_id"] not in (
        "+13105550110", "+13125550120", "+14165550150")
    assert sos["attestation"] == "B"
    assert await api.dial("chris", "911", call_id="attest-2") == sos
    await api.end("attest-1", "canceled")
