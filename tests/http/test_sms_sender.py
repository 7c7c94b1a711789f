"""POST /v1/sms/sender: a text follows a call's caller-ID precedence among the numbers that can
send texts, takes no channel, counts apart from calls, and shares each contact's sticky
number with calls only when the account says so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from tests.conftest import Server
from tests.http.http_support import Api, ServerFactory, account, connect

SMS = ("+12125550102", "+13105550110", "+15125550130", "+16175550199")
"""The numbers that can send texts here; the demo's others cannot (+12125550101, ana's
default, and +12125550100, the account's, among them)."""
CONTACT = "(212) 555-0187"


def texting_account(**changes: Any) -> Any:
    config = account(**changes)
    numbers = tuple(msgspec.structs.replace(n, sms=n.number in SMS) for n in config.numbers)
    return msgspec.structs.replace(config, numbers=numbers)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with ServerFactory(tmp_path_factory.mktemp("sms")) as factory:
        yield {"own": factory.start(texting_account(), "own"),
               "shared": factory.start(texting_account(sms_sticky_shared=True), "shared")}


@pytest.fixture
async def api(servers: dict[str, Server]) -> AsyncIterator[Api]:
    async with connect(servers["own"]) as client:
        yield client


async def sender(api: Api, user: str, to: str, **fields: Any) -> dict[str, Any]:
    reply = await api.request("POST", "/v1/sms/sender", json={"user": user, "to": to, **fields})
    assert reply.status == 200, reply
    assert isinstance(reply.body, dict)
    return reply.body


@pytest.mark.parametrize(("user", "to", "fields", "expected"), [
    ("sam", "(312) 555-0100", {}, ("user_default", "+12125550102")),
    ("lola", CONTACT, {}, ("local_presence", "+12125550102")),      # not +12125550101
    ("lola", "(713) 555-0187", {}, ("local_presence", "+15125550130")),  # Texas
    ("chris", CONTACT, {"sender": "+13105550110"}, ("requested", "+13105550110")),
    ("olivia", CONTACT, {"sender": "+16175550199"}, ("requested", "+16175550199")),
])
async def test_a_call_s_precedence_among_the_numbers_that_can_text(
    api: Api, user: str, to: str, fields: dict[str, str], expected: tuple[str, str]
) -> None:
    answer = await sender(api, user, to, **fields)
    assert answer["allowed"] and (answer["rule"], answer["sender"]) == expected
    assert answer["to"].startswith("+")
    assert "lease_expires_at" not in answer and "call_id" not in answer


@pytest.mark.parametrize(("user", "to", "fields", "reason", "words"), [
    ("ana", "(312) 555-0101", {}, "no_caller_id", "can send texts"),   # her default cannot
    ("lee", "(312) 555-0102", {}, "no_caller_id", "can send texts"),   # nor the account's
    ("chris", CONTACT, {"sender": "+13125550120"}, "caller_id_not_allowed",
     "cannot send text messages"),
    ("ana", CONTACT, {"sender": "+12125550102"}, "caller_id_not_allowed", ""),  # may not pick
    ("ana", "911", {}, "invalid_number", "emergency"),
    ("ana", "12", {}, "invalid_number", ""),
    ("dev", "+44 20 7946 0187", {}, "permission_denied", ""),  # Support: not out of the plan
])
async def test_a_text_is_denied_with_the_reason(
    api: Api, user: str, to: str, fields: dict[str, str], reason: str, words: str
) -> None:
    answer = await sender(api, user, to, **fields)
    assert (answer["allowed"], answer["reason"]) == (False, reason)
    assert words in answer["detail"]
    assert "sender" not in answer


async def test_a_chooser_without_a_default_is_offered_only_numbers_that_can_text(
    api: Api,
) -> None:
    answer = await sender(api, "chris", CONTACT)
    assert answer["reason"] == "no_caller_id" and answer["choices"] == ["+13105550110"]


async def test_a_text_takes_no_channel(api: Api) -> None:
    """sam has two channels: both held by calls, a text still goes out, and ending the calls
    finds both still his."""
    taken = await api.fill("sam", 2, to="3125550150")
    assert (await sender(api, "sam", "(312) 555-0150"))["allowed"]
    assert (await api.dial("sam", "3125550151"))["reason"] == "channel_limit"
    for call_id in taken:
        await api.end(call_id, "no_answer")


@pytest.mark.parametrize("kind", ["own", "shared"])
async def test_texts_share_the_sticky_number_with_calls_only_when_the_account_says_so(
    servers: dict[str, Server], kind: str
) -> None:
    """chris texts a contact from the number he picks; then sam (sticky caller ID on)
    texts and calls the same contact. His text follows chris's number either way (a
    contact's sticky number is the account's); his call does only when texts and calls
    share it."""
    to = "(415) 555-0142" if kind == "own" else "(415) 555-0143"
    async with connect(servers[kind]) as api:
        await sender(api, "chris", to, sender="+13105550110")
        text = await sender(api, "sam", to)
        assert (text["rule"], text["sender"]) == ("sticky", "+13105550110")
        call = await api.dial("sam", to)
        await api.end(call["call_id"], "answered")
        if kind == "shared":
            assert (call["rule"], call["caller_id"]) == ("sticky", "+13105550110")
        else:
            assert (call["rule"], call["caller_id"]) == ("user_default", "+12125550102")


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"user": "sam"}, 422, "to"),
    ({"user": "sam", "to": CONTACT, "caller_id": "+12125550102"}, 422, "caller_id"),
    ({"user": "sam", "to": CONTACT, "sender": "12125550102"}, 422, "sender"),
    ({"user": "nobody", "to": CONTACT}, 404, "user"),
])
async def test_a_bad_request_is_a_problem_naming_the_field(
    api: Api, body: dict[str, str], status: int, field: str
) -> None:
    reply = await api.request("POST", "/v1/sms/sender", json=body)
    assert (reply.status, reply.content_type) == (status, "application/problem+json")
    assert field in (reply.body.get("field") or "") + reply.body["detail"]


async def test_a_user_token_texts_as_its_user_only(api: Api, servers: dict[str, Server]) -> None:
    from tests.redis.fleet import callgate

    server = servers["own"]
    token = callgate("token", "create", "demo", "--user", "sam", "--data",
                     str(server.data_dir)).strip()
    mine = await api.request("POST", "/v1/sms/sender", json={"user": "sam", "to": CONTACT},
                             headers={"Authorization": f"Bearer {token}"})
    assert mine.status == 200 and mine.body["allowed"]
    other = await api.request("POST", "/v1/sms/sender", json={"user": "lola", "to": CONTACT},
                              headers={"Authorization": f"Bearer {token}"})
    assert (other.status, other.body["field"]) == (403, "user")
    unauthenticated = await api.request("POST", "/v1/sms/sender",
                                        json={"user": "sam", "to": CONTACT}, headers={})
    assert unauthenticated.status == 401
