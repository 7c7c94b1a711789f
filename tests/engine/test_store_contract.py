"""Store behaviour every store must show: leases, limits, idempotency, expiry, sticky caller
IDs, durability across a reopen. Written once, run over every store implementation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callerid import Outcome, Reason, Rule
from engine.errors import Conflict, NotFound
from engine.store import Build, EmbeddedStore, Store, Ticket
from engine.wire import Decision


class Clock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["embedded"])
async def contract_store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    store = EmbeddedStore(tmp_path / "data", exclusive=True, clock_ms=clock)
    await store.open()
    yield store
    await store.close()


async def reopen(store: Store, clock: Clock) -> Store:
    assert isinstance(store, EmbeddedStore)
    await store.close()
    again = EmbeddedStore(store.data_dir, exclusive=True, clock_ms=clock)
    await again.open()
    return again


def ticket(call_id: str, *, user: str = "u", limit: int = 2, account_limit: int | None = None,
           remember: bool = True, contact: str | None = "+12125550187", counted: bool = True,
           fingerprint: str = "f", ttl_ms: int = 60_000) -> Ticket:
    return Ticket(account_id="a", call_id=call_id, user_id=user, fingerprint=fingerprint,
                  remember=remember, contact=contact, counted=counted, user_limit=limit,
                  account_limit=account_limit, ttl_ms=ttl_ms)


def allow(call_id: str, fallback: str = "+12125550100") -> Build:
    def build(sticky: str | None, lease_expires_at: str) -> Decision:
        return Decision(allowed=True, call_id=call_id, caller_id=sticky or fallback,
                        rule=Rule.STICKY if sticky else Rule.USER_DEFAULT, to="+12125550187",
                        lease_expires_at=lease_expires_at)
    return build


async def test_lease_taken_up_to_user_limit(contract_store: Store) -> None:
    answers = [await contract_store.admit(ticket(f"c{i}"), allow(f"c{i}")) for i in range(3)]
    assert [a.allowed for a in answers] == [True, True, False]
    assert answers[2].reason is Reason.CHANNEL_LIMIT and "max channels (2)" in (answers[2].detail or "")


async def test_account_cap_across_users(contract_store: Store) -> None:
    answers = [
        await contract_store.admit(ticket(f"c{i}", user=f"u{i % 3}", limit=5, account_limit=4), allow(f"c{i}"))
        for i in range(9)
    ]
    assert sum(a.allowed for a in answers) == 4
    assert "cap on concurrent calls" in (answers[-1].detail or "")


async def test_concurrent_admits_never_exceed_limit(contract_store: Store) -> None:
    answers = await asyncio.gather(
        *(contract_store.admit(ticket(f"c{i}", limit=5), allow(f"c{i}")) for i in range(100))
    )
    assert sum(a.allowed for a in answers) == 5


async def test_same_call_id_same_answer_one_lease(contract_store: Store) -> None:
    first = await contract_store.admit(ticket("c1"), allow("c1"))
    again = await asyncio.gather(*(contract_store.admit(ticket("c1"), allow("c1")) for _ in range(20)))
    assert all(a == first for a in again)
    assert (await contract_store.admit(ticket("c2"), allow("c2"))).allowed
    assert not (await contract_store.admit(ticket("c3"), allow("c3"))).allowed


async def test_denial_remembered_for_client_call_id(contract_store: Store) -> None:
    for i in range(2):
        await contract_store.admit(ticket(f"c{i}"), allow(f"c{i}"))
    denied = await contract_store.admit(ticket("late"), allow("late"))
    await contract_store.end("a", "c0", Outcome.NO_ANSWER)
    assert await contract_store.admit(ticket("late"), allow("late")) == denied


async def test_call_id_reused_for_other_request_is_conflict(contract_store: Store) -> None:
    await contract_store.admit(ticket("c1"), allow("c1"))
    with pytest.raises(Conflict, match="different request"):
        await contract_store.admit(ticket("c1", fingerprint="other"), allow("c1"))


async def test_end_frees_channel(contract_store: Store) -> None:
    for i in range(2):
        await contract_store.admit(ticket(f"c{i}"), allow(f"c{i}"))
    await contract_store.end("a", "c0", Outcome.BUSY)
    assert (await contract_store.admit(ticket("c2"), allow("c2"))).allowed


async def test_expired_lease_frees_channel(contract_store: Store, clock: Clock) -> None:
    for i in range(2):
        await contract_store.admit(ticket(f"c{i}", ttl_ms=1000), allow(f"c{i}"))
    assert not (await contract_store.admit(ticket("c2"), allow("c2"))).allowed
    clock.ms += 1001
    assert (await contract_store.admit(ticket("c3"), allow("c3"))).allowed


async def test_heartbeat_extends_lease(contract_store: Store, clock: Clock) -> None:
    for i in range(2):
        await contract_store.admit(ticket(f"c{i}", ttl_ms=1000), allow(f"c{i}"))
    clock.ms += 900
    expires = await contract_store.heartbeat("a", "c0", 1000)
    assert expires == clock.ms + 1000
    clock.ms += 500  # c1 expired, c0 still held
    assert (await contract_store.admit(ticket("c2"), allow("c2"))).allowed
    assert not (await contract_store.admit(ticket("c3"), allow("c3"))).allowed


async def test_heartbeat_after_expiry_or_end_refused(contract_store: Store, clock: Clock) -> None:
    await contract_store.admit(ticket("c0", ttl_ms=1000), allow("c0"))
    await contract_store.admit(ticket("c1"), allow("c1"))
    await contract_store.end("a", "c1", Outcome.ANSWERED)
    with pytest.raises(Conflict, match="has ended"):
        await contract_store.heartbeat("a", "c1", 1000)
    clock.ms += 1001
    with pytest.raises(Conflict, match="expired"):
        await contract_store.heartbeat("a", "c0", 1000)
    with pytest.raises(NotFound):
        await contract_store.heartbeat("a", "nope", 1000)


async def test_uncounted_call_takes_no_channel(contract_store: Store) -> None:
    for i in range(2):
        await contract_store.admit(ticket(f"c{i}"), allow(f"c{i}"))
    emergency = await contract_store.admit(ticket("sos", counted=False), allow("sos"))
    assert emergency.allowed


@pytest.mark.parametrize("outcome", list(Outcome), ids=[o.value for o in Outcome])
async def test_sticky_recorded_only_on_connected_calls(contract_store: Store, outcome: Outcome) -> None:
    await contract_store.admit(ticket("c0"), allow("c0", fallback="+13105550110"))
    result = await contract_store.end("a", "c0", outcome)
    assert result.sticky_recorded is outcome.connected
    peek = await contract_store.peek(ticket("probe", remember=False))
    assert peek.sticky == ("+13105550110" if outcome.connected else None)


async def test_sticky_is_account_wide(contract_store: Store) -> None:
    await contract_store.admit(ticket("c0", user="u1"), allow("c0", fallback="+13105550110"))
    await contract_store.end("a", "c0", Outcome.VOICEMAIL)
    answer = await contract_store.admit(ticket("c1", user="u2"), allow("c1"))
    assert (answer.rule, answer.caller_id) == (Rule.STICKY, "+13105550110")


async def test_end_is_idempotent_and_refuses_a_different_outcome(contract_store: Store) -> None:
    await contract_store.admit(ticket("c0"), allow("c0"))
    first = await contract_store.end("a", "c0", Outcome.ANSWERED)
    assert await contract_store.end("a", "c0", Outcome.ANSWERED) == first
    with pytest.raises(Conflict, match="already ended"):
        await contract_store.end("a", "c0", Outcome.BUSY)
    with pytest.raises(NotFound):
        await contract_store.end("a", "ghost", Outcome.BUSY)


async def test_leases_sticky_and_records_survive_reopen(contract_store: Store, clock: Clock) -> None:
    first = await contract_store.admit(ticket("c0"), allow("c0", fallback="+13105550110"))
    await contract_store.end("a", "c0", Outcome.ANSWERED)
    held = [await contract_store.admit(ticket(f"h{i}", contact=None), allow(f"h{i}")) for i in range(2)]
    assert all(h.allowed for h in held)
    store = await reopen(contract_store, clock)
    try:
        assert not (await store.admit(ticket("h2", contact=None), allow("h2"))).allowed
        assert await store.admit(ticket("h0", contact=None), allow("h0")) == held[0]
        assert (await store.peek(ticket("probe", remember=False))).sticky == first.caller_id
    finally:
        await store.close()


async def test_sweep_forgets_records_past_retention(contract_store: Store, clock: Clock) -> None:
    await contract_store.admit(ticket("c0", ttl_ms=1000), allow("c0"))
    clock.ms += 1000 + 15 * 60 * 1000 + 1
    assert await contract_store.sweep() == 1
    with pytest.raises(NotFound):
        await contract_store.end("a", "c0", Outcome.ANSWERED)


async def test_ended_call_stays_ended_across_reopen_after_its_record_expires(
    contract_store: Store, clock: Clock,
) -> None:
    await contract_store.admit(ticket("c0", limit=1, ttl_ms=3_600_000), allow("c0"))
    await contract_store.end("a", "c0", Outcome.BUSY)
    clock.ms += 15 * 60 * 1000 + 1  # the ended record's retention is over; the lease's is not
    store = await reopen(contract_store, clock)
    try:
        assert (await store.admit(ticket("c1", limit=1), allow("c1"))).allowed
        with pytest.raises(NotFound):
            await store.end("a", "c0", Outcome.BUSY)
    finally:
        await store.close()
