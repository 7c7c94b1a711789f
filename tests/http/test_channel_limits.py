"""Channel leases over real HTTP: the user's max channels and the account's cap hold under
concurrent dials; ending, expiry and heartbeats move leases as DESIGN.md says; a retried call
id gets the same answer and holds one lease; emergency calls never count."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Server
from tests.http.http_support import (
    PROBLEM_JSON,
    SALES_1,
    Api,
    ServerFactory,
    account,
    agent,
    connect,
    gather_dials,
    parse_time,
)

OUTCOMES = ["answered", "voicemail", "no_answer", "busy", "failed", "canceled"]
CONTACT = "(212) 555-0187"

# One user per test on the shared server, so no test sees another's leases.
SHARED_USERS = [
    agent("five", max_channels=5),
    agent("retry-seq", max_channels=2),
    agent("retry-conc", max_channels=2),
    agent("retry-409", max_channels=2),
    agent("twice", max_channels=2),
    agent("end-409", max_channels=1),
    agent("sos-full", max_channels=1),
    agent("sos-free", max_channels=1),
    *(agent(f"end-{outcome}", max_channels=1) for outcome in OUTCOMES),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the tests that need no special account settings (no account cap)."""
    with ServerFactory(tmp_path_factory.mktemp("limits")) as factory:
        yield factory.start(account(users=SHARED_USERS, max_channels=None))


@pytest.fixture
async def api(shared: Server) -> AsyncIterator[Api]:
    async with connect(shared) as client:
        yield client


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerFactory]:
    with ServerFactory(tmp_path) as factory:
        yield factory


# -- the limits under concurrency --------------------------------------------------------------


async def test_200_concurrent_dials_allow_exactly_the_users_max_channels(api: Api) -> None:
    decisions = await gather_dials(api, [{"user": "five", "to": CONTACT}] * 200)

    allowed = [d for d in decisions if d["allowed"]]
    denied = [d for d in decisions if not d["allowed"]]
    assert len(allowed) == 5
    assert Counter(d["reason"] for d in denied) == {"channel_limit": 195}
    assert all("max channels" in d["detail"] for d in denied)
    assert len({d["call_id"] for d in allowed}) == 5


async def test_200_concurrent_dials_across_users_allow_exactly_the_account_cap(
    servers: ServerFactory,
) -> None:
    users = [agent(f"cap{i}", max_channels=10) for i in range(5)]
    server = servers.start(account(users=users, max_channels=8))
    async with connect(server) as api:
        bodies = [{"user": f"cap{i % 5}", "to": CONTACT} for i in range(200)]
        decisions = await gather_dials(api, bodies)

    allowed = [d for d in decisions if d["allowed"]]
    denied = [d for d in decisions if not d["allowed"]]
    assert len(allowed) == 8
    assert Counter(d["reason"] for d in denied) == {"channel_limit": 192}
    assert all("account" in d["detail"] for d in denied), "the detail names the account cap"


# -- what frees a channel ----------------------------------------------------------------------


@pytest.mark.parametrize("outcome", OUTCOMES, ids=OUTCOMES)
async def test_ending_a_call_frees_its_channel(api: Api, outcome: str) -> None:
    user = f"end-{outcome}"
    (call_id,) = await api.fill(user, 1)
    assert (await api.dial(user, CONTACT))["reason"] == "channel_limit"

    ended = await api.end(call_id, outcome)

    assert ended["call_id"] == call_id and ended["outcome"] == outcome
    assert (await api.dial(user, CONTACT))["allowed"]


async def test_ending_a_call_twice_frees_one_channel(api: Api) -> None:
    first, _ = await api.fill("twice", 2)
    once = await api.end(first, "no_answer")

    again = await api.end(first, "no_answer")

    assert again == once
    assert (await api.dial("twice", CONTACT))["allowed"]
    assert (await api.dial("twice", CONTACT))["reason"] == "channel_limit"


async def test_ending_a_call_again_with_another_outcome_is_a_409(api: Api) -> None:
    (call_id,) = await api.fill("end-409", 1)
    await api.end(call_id, "busy")

    reply = await api.request(
        "POST", f"/v1/calls/{call_id}/end", json={"outcome": "answered"}
    )

    assert reply.status == 409 and reply.content_type == PROBLEM_JSON
    assert reply.body["field"] == "outcome"


async def test_an_expired_lease_frees_its_channel(servers: ServerFactory) -> None:
    server = servers.start(account(lease_ttl_s=1, replace_users={"ana": {"max_channels": 2}}))
    async with connect(server) as api:
        await api.fill("ana", 2)
        assert (await api.dial("ana", CONTACT))["reason"] == "channel_limit"

        deadline = time.monotonic() + 5.0  # the leases last 1 s
        while not (decision := await api.dial("ana", CONTACT))["allowed"]:
            assert decision["reason"] == "channel_limit", decision
            assert time.monotonic() < deadline, "the expired leases still hold the channels"
            await asyncio.sleep(0.05)


# -- heartbeats ----------------------------------------------------------------------------------


async def test_a_heartbeat_extends_the_lease(servers: ServerFactory) -> None:
    server = servers.start(account(lease_ttl_s=2, replace_users={"ana": {"max_channels": 1}}))
    async with connect(server) as api:
        dialled = await api.dial("ana", CONTACT)
        assert dialled["allowed"]
        await asyncio.sleep(1.2)

        beat = await api.heartbeat(dialled["call_id"])
        # Past the first expiry (by the store's clock, the wall clock), before the extended one.
        first_expiry = parse_time(dialled["lease_expires_at"])
        await asyncio.sleep((first_expiry - datetime.now(UTC)).total_seconds() + 0.1)

        assert beat.status == 200, beat
        assert beat.body["call_id"] == dialled["call_id"]
        moved = parse_time(beat.body["lease_expires_at"]) - parse_time(dialled["lease_expires_at"])
        assert moved.total_seconds() >= 1.0
        assert (await api.dial("ana", CONTACT))["reason"] == "channel_limit"


async def test_a_heartbeat_for_an_unknown_call_is_a_404(api: Api) -> None:
    reply = await api.heartbeat("no-such-call")

    assert reply.status == 404 and reply.content_type == PROBLEM_JSON
    assert reply.body["field"] == "call_id"
    assert "no-such-call" in reply.body["detail"]


# -- retries with the same call id ---------------------------------------------------------------


async def test_a_call_id_retried_in_sequence_gets_the_same_answer_and_one_lease(api: Api) -> None:
    first = await api.dial("retry-seq", CONTACT, call_id="seq-1")

    retries = [await api.dial("retry-seq", CONTACT, call_id="seq-1") for _ in range(20)]

    assert first["allowed"] and first["call_id"] == "seq-1"
    assert all(r == first for r in retries)
    assert (await api.dial("retry-seq", CONTACT))["allowed"], "one channel left of two"
    assert (await api.dial("retry-seq", CONTACT))["reason"] == "channel_limit"


async def test_50_concurrent_retries_of_a_call_id_get_one_answer_and_one_lease(api: Api) -> None:
    body = {"user": "retry-conc", "to": CONTACT, "call_id": "conc-1"}

    answers = await gather_dials(api, [body] * 50)

    assert answers[0]["allowed"] and answers[0]["call_id"] == "conc-1"
    assert all(a == answers[0] for a in answers)
    assert (await api.dial("retry-conc", CONTACT))["allowed"], "one channel left of two"
    assert (await api.dial("retry-conc", CONTACT))["reason"] == "channel_limit"


async def test_a_call_id_reused_for_another_destination_is_a_409_and_changes_nothing(
    api: Api,
) -> None:
    first = await api.dial("retry-409", CONTACT, call_id="reused-1")

    reply = await api.request(
        "POST",
        "/v1/dial",
        json={"user": "retry-409", "to": "2125550199", "call_id": "reused-1"},
    )

    assert reply.status == 409 and reply.content_type == PROBLEM_JSON
    assert reply.body["status"] == 409 and reply.body["field"] == "call_id"
    assert "reused-1" in reply.body["detail"]
    assert await api.dial("retry-409", CONTACT, call_id="reused-1") == first
    assert (await api.dial("retry-409", CONTACT))["allowed"], "the 409 took no channel"
    assert (await api.dial("retry-409", CONTACT))["reason"] == "channel_limit"


# -- emergency calls ----------------------------------------------------------------------------


async def test_an_emergency_call_goes_through_at_the_channel_limit(api: Api) -> None:
    await api.fill("sos-full", 1)

    decision = await api.dial("sos-full", "911")

    assert decision["allowed"]
    assert decision["rule"] == "emergency"
    assert decision["caller_id"] == SALES_1
    assert decision["to"] == "911"


async def test_an_emergency_call_takes_no_channel(api: Api) -> None:
    before = (await api.metrics()).active_leases
    for _ in range(3):
        assert (await api.dial("sos-free", "911"))["rule"] == "emergency"

    assert (await api.metrics()).active_leases == before


async def test_an_emergency_answer_shows_no_lease_and_cannot_be_extended(api: Api) -> None:
    decision = await api.dial("sos-free", "911", call_id="sos-1")
    assert decision["allowed"] and "lease_expires_at" not in decision
    refused = await api.heartbeat("sos-1")
    assert refused.status == 409 and "holds no channel" in refused.body["detail"]
    assert (await api.end("sos-1", "answered"))["outcome"] == "answered"
    assert (await api.dial("sos-free", CONTACT))["allowed"], "the user's one channel is free"
