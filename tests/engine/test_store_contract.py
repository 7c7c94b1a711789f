"""Store behaviour every store must show: leases, limits, idempotency, expiry, sticky caller
IDs, durability across a reopen. Written once, run over every store implementation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig, Attestation, Outcome, Reason, Rule
from engine.errors import Conflict, NotFound, PreconditionFailed
from engine.store import EmbeddedStore, Plan, Store, Ticket, TokenRecord
from engine.store.redis_store import RedisStore
from engine.wire import Decision

from ..redis_support_fixtures import STORE_KINDS, store_url


class Clock:
    """Time as the store sees it, moved by the tests. It starts at the real time; the embedded
    store reads it directly, the Redis store adds how far it has moved to the Redis server's
    clock (so the two agree to within the time a test takes)."""

    def __init__(self) -> None:
        self.start = self.ms = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.ms

    def skew(self) -> int:
        return self.ms - self.start


@pytest.fixture
def clock() -> Clock:
    return Clock()


def open_store(kind: str, where: str, clock: Clock) -> Store:
    if kind == "embedded":
        return EmbeddedStore(Path(where), exclusive=True, clock_ms=clock)
    return RedisStore(where, skew_ms=clock.skew)


@pytest.fixture(params=STORE_KINDS)
async def contract_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Store]:
    kind = request.param
    where = str(tmp_path / "data") if kind == "embedded" else store_url(request, kind)
    store = open_store(kind, where, clock)
    await store.open()
    store_kinds[id(store)] = (kind, where)
    yield store
    await store.close()


store_kinds: dict[int, tuple[str, str]] = {}


async def reopen(store: Store, clock: Clock) -> Store:
    """The same data, opened again by a new store object (a restarted process)."""
    kind, where = store_kinds[id(store)]
    await store.close()
    again = open_store(kind, where, clock)
    await again.open()
    store_kinds[id(again)] = (kind, where)
    return again


def ticket(call_id: str, *, user: str = "u", limit: int = 2, account_limit: int | None = None,
           remember: bool = True, contact: str | None = "+12125550187", counted: bool = True,
           fingerprint: str = "f", ttl_ms: int = 60_000,
           sticky_ttl_ms: int = 86_400_000, day: str = "2026-12-04") -> Ticket:
    return Ticket(account_id="a", call_id=call_id, user_id=user, fingerprint=fingerprint,
                  remember=remember, contact=contact, counted=counted, user_limit=limit,
                  account_limit=account_limit, ttl_ms=ttl_ms, sticky_ttl_ms=sticky_ttl_ms,
                  day=day)


OURS = frozenset({"+12125550100", "+13105550110"})


def allow(call_id: str, fallback: str = "+12125550100") -> Plan:
    """Allowed from ``fallback``, or from a sticky caller ID that is one of ``OURS``."""
    return Plan(
        decision=Decision(allowed=True, call_id=call_id, caller_id=fallback,
                          rule=Rule.USER_DEFAULT, to="+12125550187"),
        sticky=Decision(allowed=True, call_id=call_id, rule=Rule.STICKY, to="+12125550187"),
        sticky_ids=OURS,
    )


async def test_lease_taken_up_to_user_limit(contract_store: Store) -> None:
    answers = [await contract_store.admit(ticket(f"c{i}"), allow(f"c{i}")) for i in range(3)]
    assert [a.allowed for a in answers] == [True, True, False]
    assert answers[2].reason is Reason.CHANNEL_LIMIT
    assert "max channels (2)" in (answers[2].detail or "")


async def test_account_cap_across_users(contract_store: Store) -> None:
    answers = [
        await contract_store.admit(
            ticket(f"c{i}", user=f"u{i % 3}", limit=5, account_limit=4), allow(f"c{i}")
        )
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
    again = await asyncio.gather(
        *(contract_store.admit(ticket("c1"), allow("c1")) for _ in range(20))
    )
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
    assert abs(expires - (clock.ms + 1000)) < 2000, "the lease runs from now"
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


async def test_an_emergency_call_shows_no_lease_and_has_none_to_extend(
    contract_store: Store,
) -> None:
    emergency = await contract_store.admit(ticket("sos", counted=False), allow("sos"))
    assert emergency.allowed and emergency.lease_expires_at is None
    retried = await contract_store.admit(ticket("sos", counted=False), allow("sos"))
    assert retried == emergency, "a retry gets the same answer, without a lease too"
    assert (await contract_store.peek(ticket("sos", counted=False))).known == emergency
    with pytest.raises(Conflict, match="emergency call: it holds no channel"):
        await contract_store.heartbeat("a", "sos", 1000)
    ended = await contract_store.end("a", "sos", Outcome.ANSWERED)
    assert ended.outcome is Outcome.ANSWERED  # ending one is answered as usual


@pytest.mark.parametrize("outcome", list(Outcome), ids=[o.value for o in Outcome])
async def test_sticky_recorded_only_on_connected_calls(
    contract_store: Store, outcome: Outcome
) -> None:
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
    assert (await contract_store.end("a", "c0", Outcome.ANSWERED)).answer == first.answer
    with pytest.raises(Conflict, match="already ended"):
        await contract_store.end("a", "c0", Outcome.BUSY)
    with pytest.raises(NotFound):
        await contract_store.end("a", "ghost", Outcome.BUSY)


async def test_leases_sticky_and_records_survive_reopen(
    contract_store: Store, clock: Clock
) -> None:
    first = await contract_store.admit(ticket("c0"), allow("c0", fallback="+13105550110"))
    await contract_store.end("a", "c0", Outcome.ANSWERED)
    held = [
        await contract_store.admit(ticket(f"h{i}", contact=None), allow(f"h{i}")) for i in range(2)
    ]
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
    await contract_store.sweep()  # the embedded store drops it now; Redis expires it itself
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


def deny_without_sticky(call_id: str) -> Plan:
    """Denied (no caller ID applies) unless the contact's sticky caller ID is one of ours."""
    return Plan(
        decision=Decision(allowed=False, call_id=call_id, reason=Reason.NO_CALLER_ID,
                          detail="no caller ID applies", to="+12125550187"),
        sticky=Decision(allowed=True, call_id=call_id, rule=Rule.STICKY, to="+12125550187"),
        sticky_ids=OURS,
    )


async def connect_sticky(store: Store, caller_id: str = "+13105550110", **kw: object) -> None:
    await store.admit(ticket("s0", **kw), allow("s0", fallback=caller_id))  # type: ignore[arg-type]
    await store.end("a", "s0", Outcome.ANSWERED)


async def test_sticky_hit_turns_a_denial_into_a_call_with_a_channel(contract_store: Store) -> None:
    assert not (await contract_store.admit(ticket("c0"), deny_without_sticky("c0"))).allowed
    await connect_sticky(contract_store, limit=2)
    answer = await contract_store.admit(ticket("c1", limit=2), deny_without_sticky("c1"))
    assert (answer.allowed, answer.rule, answer.caller_id) == (True, Rule.STICKY, "+13105550110")
    assert answer.lease_expires_at is not None
    assert (await contract_store.peek(ticket("probe", remember=False))).user_leases == 1
    assert await contract_store.admit(ticket("c1", limit=2), deny_without_sticky("c1")) == answer


async def test_sticky_caller_id_no_longer_available_is_passed_over(contract_store: Store) -> None:
    await connect_sticky(contract_store)
    plan = msgspec.structs.replace(allow("c1"), sticky_ids=frozenset({"+12125550100"}))
    answer = await contract_store.admit(ticket("c1"), plan)
    assert (answer.rule, answer.caller_id) == (Rule.USER_DEFAULT, "+12125550100")


async def test_sticky_entry_expires_after_its_ttl(contract_store: Store, clock: Clock) -> None:
    await connect_sticky(contract_store, sticky_ttl_ms=10_000)
    clock.ms += 9_000
    assert (await contract_store.peek(ticket("probe", remember=False))).sticky == "+13105550110"
    clock.ms += 1_001
    assert (await contract_store.peek(ticket("probe", remember=False))).sticky is None
    answer = await contract_store.admit(ticket("c1"), allow("c1"))
    assert answer.rule is Rule.USER_DEFAULT


async def test_a_denied_call_holds_nothing_to_end_or_extend(contract_store: Store) -> None:
    denied = await contract_store.admit(ticket("d0"), deny_without_sticky("d0"))
    assert await contract_store.admit(ticket("d0"), deny_without_sticky("d0")) == denied
    with pytest.raises(Conflict, match="was denied"):
        await contract_store.end("a", "d0", Outcome.ANSWERED)
    with pytest.raises(Conflict, match="was denied"):
        await contract_store.heartbeat("a", "d0", 1000)


async def test_channel_limit_denial_replays_word_for_word(contract_store: Store) -> None:
    for i in range(2):
        await contract_store.admit(ticket(f"c{i}"), allow(f"c{i}"))
    refused = await contract_store.admit(ticket("late"), allow("late"))
    assert refused.reason is Reason.CHANNEL_LIMIT
    assert refused.detail == "user 'u' is on 2 calls, the most their max channels (2) allows"
    await contract_store.end("a", "c0", Outcome.BUSY)
    assert await contract_store.admit(ticket("late"), allow("late")) == refused


async def test_unremembered_denial_leaves_nothing(contract_store: Store) -> None:
    plan = Plan(decision=Decision(allowed=False, call_id="x", reason=Reason.PERMISSION_DENIED))
    assert await contract_store.admit(ticket("x", remember=False), plan) == plan.decision
    with pytest.raises(NotFound):
        await contract_store.end("a", "x", Outcome.BUSY)


async def test_config_versions_and_lost_updates(contract_store: Store, demo: AccountConfig) -> None:
    assert await contract_store.account_versions() == {}
    assert await contract_store.load_account(demo.id) is None
    assert await contract_store.save_account(demo, 0) == 1
    with pytest.raises(Conflict, match="already exists"):
        await contract_store.save_account(demo, 0)
    renamed = msgspec.structs.replace(demo, name="Renamed")
    assert await contract_store.save_account(renamed, 1) == 2
    with pytest.raises(PreconditionFailed, match="at version 2, not 1"):
        await contract_store.save_account(demo, 1)
    assert await contract_store.load_account(demo.id) == (renamed, 2)
    assert await contract_store.account_versions() == {demo.id: 2}


async def test_concurrent_saves_over_one_version_one_wins(
    contract_store: Store, demo: AccountConfig
) -> None:
    await contract_store.save_account(demo, 0)
    names = [msgspec.structs.replace(demo, name=f"Writer {i}") for i in range(10)]
    results = await asyncio.gather(
        *(contract_store.save_account(n, 1) for n in names), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["PreconditionFailed"] * 9 + ["int"]
    assert (await contract_store.account_versions())[demo.id] == 2


async def test_tokens_by_hash(contract_store: Store) -> None:
    records = [TokenRecord(hash=f"{i:064x}", account_id="a", name="ci" if i < 2 else "ops",
                           created_ms=1000 + i) for i in range(3)]
    for record in records:
        await contract_store.add_token(record)
    assert await contract_store.find_token(records[2].hash) == records[2]
    assert await contract_store.list_tokens("a") == records
    assert await contract_store.list_tokens("b") == []
    assert await contract_store.revoke_token("a", "ci") == 2
    assert await contract_store.find_token(records[0].hash) is None
    assert await contract_store.list_tokens("a") == [records[2]]


async def test_an_answers_attestation_is_kept_for_its_retries(
    contract_store: Store, clock: Clock
) -> None:
    """What the SBC signs with comes back word for word on a retry, a reopen included, and a
    sticky hit carries the sticky answer's own."""
    partial = Plan(decision=Decision(
        allowed=True, call_id="b1", caller_id="+12125550100", rule=Rule.EMERGENCY,
        to="+12125550187", attestation=Attestation.PARTIAL))
    first = await contract_store.admit(ticket("b1"), partial)
    assert first.attestation is Attestation.PARTIAL
    assert await contract_store.admit(ticket("b1"), partial) == first
    store = await reopen(contract_store, clock)
    try:
        assert await store.admit(ticket("b1"), partial) == first
        await connect_sticky(store)
        sticky = msgspec.structs.replace(
            deny_without_sticky("c1"),
            sticky=Decision(allowed=True, call_id="c1", rule=Rule.STICKY, to="+12125550187",
                            attestation=Attestation.FULL))
        answer = await store.admit(ticket("c1", limit=3), sticky)
        assert (answer.rule, answer.attestation) == (Rule.STICKY, Attestation.FULL)
        assert await store.admit(ticket("c1", limit=3), sticky) == answer
    finally:
        await store.close()
