"""What the decision API refuses before it reads a request: a query parameter given twice
(422, naming it) on every route, and a body not declared JSON (415) on every route that takes
one. Both change nothing: no lease, no decision counted, no call id remembered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from tests.conftest import Server
from tests.http.http_support import PROBLEM_JSON, Api, Reply, ServerFactory, account, agent, connect

CONTACT = "2125550187"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with ServerFactory(tmp_path_factory.mktemp("query-and-type")) as factory:
        yield factory.start(account(users=[agent("solo", max_channels=1)]))


@pytest.fixture
async def api(shared: Server) -> AsyncIterator[Api]:
    async with connect(shared) as client:
        yield client


async def send(
    api: Api, method: str, path: str, body: bytes | None = None, content_type: str | None = None
) -> Reply:
    """One request with exactly the Content-Type given (None: no Content-Type header at all,
    which aiohttp would otherwise add for a body)."""
    headers = dict(api.server.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with api.session.request(
        method, api.server.url + path, data=body, headers=headers,
        skip_auto_headers=() if content_type is not None else ("Content-Type",),
    ) as response:
        raw = await response.read()
        try:
            decoded: Any = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            decoded = raw.decode(errors="replace")
        return Reply(status=response.status,
                     content_type=response.headers.get("Content-Type", "").split(";")[0],
                     headers=response.headers, body=decoded)


def dial_json(call_id: str) -> bytes:
    return msgspec.json.encode({"user": "solo", "to": CONTACT, "call_id": call_id})


def assert_problem(reply: Reply, status: int, field: str) -> None:
    assert reply.status == status, reply
    assert reply.content_type == PROBLEM_JSON, reply
    assert reply.body["status"] == status and reply.body["field"] == field, reply.body


async def assert_nothing_changed(api: Api, before: Any, call_id: str) -> None:
    """No lease taken and no decision counted since ``before``; ``call_id`` is not
    remembered: ``solo`` (one channel) dials with it as a new call (then ends it)."""
    after = await api.metrics()
    assert after.active_leases == before.active_leases, "no lease taken"
    assert after.decisions == before.decisions, "no decision counted"
    decision = await api.dial("solo", CONTACT, call_id=call_id)
    assert decision["allowed"], decision
    await api.end(call_id, "canceled")


# -- a query parameter given twice -----------------------------------------------------------

EVERY_ROUTE = [
    ("POST", "/v1/dial"),
    ("POST", "/v1/explain"),
    ("POST", "/v1/calls/no-such-call/end"),
    ("POST", "/v1/calls/no-such-call/heartbeat"),
    ("GET", "/healthz"),
    ("GET", "/healthz/live"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), EVERY_ROUTE, ids=[p for _, p in EVERY_ROUTE])
async def test_a_query_parameter_given_twice_is_a_422_naming_it_on_every_route(
    api: Api, method: str, path: str
) -> None:
    body = {"/v1/dial": dial_json("twice"), "/v1/explain": dial_json("twice")}.get(
        path, b'{"outcome": "answered"}' if path.endswith("/end") else None)
    reply = await send(api, method, f"{path}?source=crm&source=web", body,
                       "application/json" if body is not None else None)

    assert_problem(reply, 422, "source")
    assert "`source` is given 2 times" in reply.body["detail"]


async def test_a_dial_with_a_query_parameter_given_twice_changes_nothing(api: Api) -> None:
    before = await api.metrics()

    reply = await send(api, "POST", "/v1/dial?x=1&y=2&x=3", dial_json("dial-twice"),
                       "application/json")

    assert_problem(reply, 422, "x")
    await assert_nothing_changed(api, before, "dial-twice")


async def test_an_unknown_query_parameter_is_ignored(api: Api) -> None:
    reply = await send(api, "POST", "/v1/dial?source=crm", dial_json("unknown-param"),
                       "application/json")

    assert reply.status == 200 and reply.body["allowed"], reply
    await api.end("unknown-param", "canceled")


async def test_an_unknown_path_is_a_404_whatever_its_query(api: Api) -> None:
    reply = await send(api, "GET", "/v1/dials?x=1&x=2")

    assert reply.status == 404 and reply.body["status"] == 404, reply


# -- a body not declared JSON ----------------------------------------------------------------

REFUSED_TYPES = [
    None,
    "text/plain",
    "application/x-www-form-urlencoded",
    "text/json",
    "application/json-seq",
    "application/jsonx",
    "application/+json",
    "multipart/form-data; boundary=x",
]


@pytest.mark.parametrize("content_type", REFUSED_TYPES, ids=lambda t: t or "none")
async def test_a_dial_whose_body_is_not_declared_json_is_a_415_that_changes_nothing(
    api: Api, content_type: str | None
) -> None:
    call_id = f"type-{REFUSED_TYPES.index(content_type)}"
    before = await api.metrics()

    reply = await send(api, "POST", "/v1/dial", dial_json(call_id), content_type)

    assert_problem(reply, 415, "Content-Type")
    said = "has no Content-Type" if content_type is None else f"says Content-Type: {content_type}"
    assert said in reply.body["detail"], reply.body
    await assert_nothing_changed(api, before, call_id)


@pytest.mark.parametrize("path", ["/v1/explain", "/v1/calls/any/end", "/v1/calls/any/heartbeat"])
async def test_every_route_with_a_body_refuses_one_not_declared_json(api: Api, path: str) -> None:
    body = b'{"outcome": "answered"}' if path.endswith("/end") else (
        b"{}" if path.endswith("/heartbeat") else dial_json("explained"))

    reply = await send(api, "POST", path, body, "text/plain")

    assert_problem(reply, 415, "Content-Type")


JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON; Charset=UTF-8",
    "application/merge-patch+json",
    "APPLICATION/VND.CALLGATE+JSON",
]


@pytest.mark.parametrize("content_type", JSON_TYPES)
async def test_json_and_json_suffix_types_are_accepted(api: Api, content_type: str) -> None:
    call_id = f"json-{JSON_TYPES.index(content_type)}"

    reply = await send(api, "POST", "/v1/dial", dial_json(call_id), content_type)

    assert reply.status == 200 and reply.body["allowed"], reply
    await api.end(call_id, "canceled")


async def test_an_end_not_declared_json_leaves_the_call_holding_its_channel(api: Api) -> None:
    decision = await api.dial("solo", CONTACT, call_id="end-as-text")
    assert decision["allowed"], decision

    reply = await send(api, "POST", "/v1/calls/end-as-text/end", b'{"outcome": "answered"}',
                       "text/plain")

    assert_problem(reply, 415, "Content-Type")
    assert (await api.metrics()).active_leases == 1, "the call still holds its channel"
    # Not ended as answered: ending it with another outcome is no conflict.
    ended = await api.end("end-as-text", "canceled")
    assert ended["outcome"] == "canceled"


async def test_a_heartbeat_without_a_body_needs_no_content_type(api: Api) -> None:
    decision = await api.dial("solo", CONTACT, call_id="bare-heartbeat")
    assert decision["allowed"], decision

    reply = await send(api, "POST", "/v1/calls/bare-heartbeat/heartbeat")

    assert reply.status == 200 and reply.body["call_id"] == "bare-heartbeat", reply
    await api.end("bare-heartbeat", "canceled")


async def test_the_token_is_checked_before_the_content_type(api: Api) -> None:
    async with api.session.post(api.server.url + "/v1/dial", data=dial_json("no-token"),
                                headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 401
