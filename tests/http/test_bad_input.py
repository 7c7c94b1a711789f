"""Bad input over real HTTP: every bad request gets a 4xx ``application/problem+json`` naming
the problem, and changes nothing: no lease, no decision counted, no call id remembered."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from tests.conftest import Server
from tests.http.http_support import PROBLEM_JSON, Api, ServerFactory, account, agent, connect

CONTACT = "2125550187"
LIMIT = 64 * 1024


def dial_body(call_id: str, **fields: Any) -> dict[str, Any]:
    """A valid dial for ``solo`` (one channel) with ``fields`` changed (None removes one)."""
    body = {"user": "solo", "to": CONTACT, "call_id": call_id, **fields}
    return {k: v for k, v in body.items() if v is not None}


def padded(call_id: str, size: int) -> bytes:
    """A valid dial body, padded with JSON whitespace to exactly ``size`` bytes."""
    raw = msgspec.json.encode(dial_body(call_id))
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


class Case(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    status: int
    names: str
    """A regular expression the problem's detail must match (it names the problem)."""
    field: str | None = None
    method: str = "POST"
    path: str = "/v1/dial"
    json: Any = None
    data: bytes | None = None
    headers: dict[str, str] | None = None


CASES = [
    Case(
        id="malformed-json",
        data=msgspec.json.encode(dial_body("malformed-json"))[:-1],
        status=400,
        names=r"not valid JSON",
    ),
    Case(
        id="empty-body",
        data=b"",
        status=400,
        names=r"not valid JSON",
    ),
    Case(
        id="not-an-object",
        json=[dial_body("not-an-object")],
        status=422,
        names=r"object",
    ),
    Case(
        id="wrong-type",
        json=dial_body("wrong-type", user=1),
        status=422,
        field="user",
        names=r"`str`.*`int`",
    ),
    Case(
        id="unknown-field",
        json={**dial_body("unknown-field"), "x": 1},
        status=422,
        field="x",
        names=r"unknown field `x`",
    ),
    Case(
        id="missing-field",
        json=dial_body("missing-field", to=None),
        status=422,
        field="to",
        names=r"missing required field `to`",
    ),
    Case(
        id="body-over-64-kib",
        data=padded("body-over-64-kib", LIMIT + 1),
        status=413,
        names=r"65536|64 ?KiB",
    ),
    Case(
        id="unknown-user",
        json=dial_body("unknown-user", user="nobody"),
        status=404,
        field="user",
        names=r"nobody",
    ),
    Case(
        id="to-not-a-number",
        json=dial_body("to-not-a-number", to="hello"),
        status=422,
        field="to",
        names=r"\$\.to",
    ),
    Case(
        id="caller-id-not-e164",
        json=dial_body("caller-id-not-e164", caller_id="2125550101"),
        status=422,
        field="caller_id",
        names=r"\$\.caller_id",
    ),
    Case(
        id="call-id-with-a-space",
        json=dial_body("call id"),
        status=422,
        field="call_id",
        names=r"\$\.call_id",
    ),
    Case(
        id="missing-token",
        json=dial_body("missing-token"),
        headers={},
        status=401,
        names=r"Bearer",
    ),
    Case(
        id="bad-token",
        json=dial_body("bad-token"),
        headers={"Authorization": "Bearer cg_not-a-token"},
        status=401,
        names=r"token",
    ),
    Case(
        id="not-a-bearer-token",
        json=dial_body("not-a-bearer-token"),
        headers={"Authorization": "Basic c29sbzpzb2xv"},
        status=401,
        names=r"Bearer",
    ),
    Case(
        id="unknown-route",
        path="/v1/dials",
        json=dial_body("unknown-route"),
        status=404,
        names=r"no such endpoint: POST /v1/dials",
    ),
    Case(
        id="a-line-feed-in-the-path",
        path="/v1/dial%0a",
        json=dial_body("a-line-feed-in-the-path"),
        status=404,
        names=r"no such endpoint: POST /v1/dial\n",
    ),
    Case(
        id="a-line-feed-in-an-admin-path",
        path="/admin/v1/users%0a",
        method="GET",
        status=404,
        names=r"no such endpoint: GET /admin/v1/users\n",
    ),
    Case(
        id="get-on-dial",
        method="GET",
        status=405,
        names=r"GET is not allowed on /v1/dial; allowed: POST",
    ),
    Case(
        id="explain-with-a-bad-destination",
        path="/v1/explain",
        json=dial_body("explain-with-a-bad-destination", to="hello"),
        status=422,
        field="to",
        names=r"\$\.to",
    ),
    Case(
        id="end-with-an-unknown-outcome",
        path="/v1/calls/end-with-an-unknown-outcome/end",
        json={"outcome": "hung_up"},
        status=422,
        field="outcome",
        names=r"hung_up",
    ),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with ServerFactory(tmp_path_factory.mktemp("bad-input")) as factory:
        yield factory.start(account(users=[agent("solo", max_channels=1)]))


@pytest.fixture
async def api(shared: Server) -> AsyncIterator[Api]:
    async with connect(shared) as client:
        yield client


async def solo_can_dial_once_with(api: Api, call_id: str) -> None:
    """``solo`` (one channel) is not on a call, and ``call_id`` is not remembered: a dial with
    it is allowed as new. The call is then ended, so the next test starts clean."""
    decision = await api.dial("solo", CONTACT, call_id=call_id)
    assert decision["allowed"], decision
    await api.end(call_id, "canceled")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_is_a_4xx_problem_that_changes_nothing(api: Api, case: Case) -> None:
    before = await api.metrics()

    reply = await api.request(
        case.method, case.path, json=case.json, data=case.data, headers=case.headers
    )

    assert reply.status == case.status, reply
    assert reply.content_type == PROBLEM_JSON, reply
    assert isinstance(reply.body, dict), reply
    assert reply.body["status"] == case.status
    assert reply.body["title"]
    assert re.search(case.names, reply.body["detail"]), reply.body
    if case.field is not None:
        assert reply.body.get("field") == case.field, reply.body
    after = await api.metrics()
    assert after.active_leases == before.active_leases, "no lease taken"
    assert after.decisions == before.decisions, "no decision counted"
    assert after.value("callgate_decision_seconds_count") == before.value(
        "callgate_decision_seconds_count"
    )
    await solo_can_dial_once_with(api, case.id)


async def test_digits_that_are_no_phone_number_are_a_denial_not_an_error(api: Api) -> None:
    decision = await api.dial("solo", "123")

    assert decision["allowed"] is False
    assert decision["reason"] == "invalid_number"
    assert "123" in decision["detail"]
    await solo_can_dial_once_with(api, "after-123")


async def test_a_body_of_exactly_64_kib_is_accepted(api: Api) -> None:
    reply = await api.request("POST", "/v1/dial", data=padded("exactly-64-kib", LIMIT))

    assert reply.status == 200, reply
    assert reply.body["allowed"] and reply.body["call_id"] == "exactly-64-kib"
    await api.end("exactly-64-kib", "canceled")


async def test_a_405_says_which_methods_are_allowed(api: Api) -> None:
    """RFC 9110 section 15.5.6: a 405 response MUST carry an ``Allow`` header."""
    reply = await api.request("GET", "/v1/dial")

    assert reply.status == 405
    assert reply.headers.get("Allow") == "POST", reply.headers


async def test_a_401_says_how_to_authenticate(api: Api) -> None:
    """RFC 9110 section 15.5.2: a 401 response MUST carry a ``WWW-Authenticate`` header."""
    reply = await api.request("POST", "/v1/dial", json=dial_body("no-token"), headers={})

    assert reply.status == 401
    assert reply.headers.get("WWW-Authenticate", "").startswith("Bearer"), reply.headers


async def test_every_method_of_a_read_route_is_answered(api: Api) -> None:
    """GET routes take HEAD too; any other method is a 405 naming both."""
    assert (await api.request("HEAD", "/healthz")).status == 200

    reply = await api.request("DELETE", "/healthz")

    assert reply.status == 405 and reply.content_type == PROBLEM_JSON
    assert reply.headers.get("Allow") == "GET, HEAD", reply.headers
