"""Rotation and daily caps in every store: the pick is made in the step that takes the channel,
from the calls each number placed today, so numbers take turns and a cap is never passed,
however many dials arrive at once. Written once, run over every store implementation."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from callerid import Outcome, Reason, Rule
from callerid.rotation import ALL_CAPPED, NO_CAPS, Caps
from engine.store import Plan, Rotation, Store
from engine.store.protocol import USAGE_KEPT_DAYS
from engine.wire import Decision

from . import test_store_contract as contract
from .test_store_contract import OURS, Clock, reopen, ticket

clock, contract_store = contract.clock, contract.contract_store  # the fixtures, over every store

A, B, C = "+12125550101", "+12125550102", "+12125550103"
FALLBACK = "+13055550100"
TO = "+12125550187"


def rotate(call_id: str, *steps: tuple[Rule, tuple[str, ...]], caps: Caps = NO_CAPS,
           sticky: bool = False) -> Plan:
    """Allowed from the least used number of the first step with one under its cap, else
    denied ``caller_id_capped``; with ``sticky``, a sticky caller ID of ``OURS`` first."""
    steps = steps or ((Rule.LOCAL_PRESENCE, (A, B, C)),)
    first = steps[0]
    answer = Decision(allowed=True, call_id=call_id, caller_id=first[1][0], rule=first[0], to=TO)
    exhausted = Decision(allowed=False, call_id=call_id, reason=Reason.CALLER_ID_CAPPED,
                         detail=ALL_CAPPED, to=TO)
    return Plan(
        decision=answer,
        rotation=Rotation(steps=steps, answer=answer, exhausted=exhausted),
        caps=caps,
        sticky=Decision(allowed=True, call_id=call_id, rule=Rule.STICKY, to=TO) if sticky
        else None,
        sticky_ids=OURS if sticky else frozenset(),
    )


async def test_numbers_take_turns_one_dial_after_another(contract_store: Store) -> None:
    answers = [await contract_store.admit(ticket(f"c{i}", limit=100), rotate(f"c{i}"))
               for i in range(9)]
    assert [a.caller_id for a in answers] == [A, B, C] * 3
    assert {a.rule for a in answers} == {Rule.LOCAL_PRESENCE}
    assert all(a.lease_expires_at for a in answers)
    assert await contract_store.usage("a", "2026-12-04") == {A: 3, B: 3, C: 3}


async def test_a_burst_spreads_evenly(contract_store: Store) -> None:
    answers = await asyncio.gather(*(
        contract_store.admit(ticket(f"c{i}", limit=1000), rotate(f"c{i}")) for i in range(90)))
    assert Counter(a.caller_id for a in answers) == {A: 30, B: 30, C: 30}
    assert await contract_store.usage("a", "2026-12-04") == {A: 30, B: 30, C: 30}


async def test_a_burst_never_passes_a_cap(contract_store: Store) -> None:
    """60 dials at once over two steps: the area code's two numbers (cap 5, one of them 3
    of its own), then a default (cap 5): 13 allowed, the rest denied ``caller_id_capped``."""
    caps = Caps(default=5, overrides={B: 3})
    steps = ((Rule.LOCAL_PRESENCE, (A, B)), (Rule.ACCOUNT_DEFAULT, (FALLBACK,)))
    answers = await asyncio.gather(*(
        contract_store.admit(ticket(f"c{i}", limit=1000), rotate(f"c{i}", *steps, caps=caps))
        for i in range(60)))
    used = Counter(a.caller_id for a in answers if a.allowed)
    assert used == {A: 5, B: 3, FALLBACK: 5}
    assert {a.rule for a in answers if a.caller_id == FALLBACK} == {Rule.ACCOUNT_DEFAULT}
    denied = [a for a in answers if not a.allowed]
    assert len(denied) == 47
    assert {(a.reason, a.detail) for a in denied} == {(Reason.CALLER_ID_CAPPED, ALL_CAPPED)}
    assert await contract_store.usage("a", "2026-12-04") == {A: 5, B: 3, FALLBACK: 5}
    assert (await contract_store.peek(ticket("probe", remember=False))).user_leases == 13


async def test_a_capped_denial_holds_nothing_and_replays(contract_store: Store) -> None:
    caps = Caps(default=1)
    steps = ((Rule.USER_DEFAULT, (A,)),)
    assert (await contract_store.admit(ticket("c1"), rotate("c1", *steps, caps=caps))).allowed
    denied = await contract_store.admit(ticket("c2"), rotate("c2", *steps, caps=caps))
    assert (denied.allowed, denied.reason) == (False, Reason.CALLER_ID_CAPPED)
    assert (await contract_store.peek(ticket("probe", remember=False))).user_leases == 1
    assert await contract_store.admit(ticket("c2"), rotate("c2", *steps, caps=caps)) == denied
    assert await contract_store.usage("a", "2026-12-04") == {A: 1}


async def test_counts_are_per_day_and_a_new_day_starts_afresh(contract_store: Store) -> None:
    caps = Caps(default=1)
    steps = ((Rule.USER_DEFAULT, (A,)),)
    assert (await contract_store.admit(ticket("c1"), rotate("c1", *steps, caps=caps))).allowed
    assert not (await contract_store.admit(ticket("c2"), rotate("c2", *steps, caps=caps))).allowed
    tomorrow = ticket("c3", day="2026-12-05")
    assert (await contract_store.admit(tomorrow, rotate("c3", *steps, caps=caps))).allowed
    assert await contract_store.usage("a", "2026-12-04") == {A: 1}
    assert await contract_store.usage("a", "2026-12-05") == {A: 1}
    assert await contract_store.usage("a", "2026-12-06") == {}
    assert await contract_store.usage("other", "2026-12-04") == {}


async def test_every_allowed_call_counts_once_whatever_its_rule(contract_store: Store) -> None:
    """A plain answer counts against its caller ID too (the usage report and the caps of
    later dials see it); a retry of the same call id does not count again; ending a call
    gives nothing back; a call that takes no channel (emergency) counts nothing."""
    plain = Plan(decision=Decision(allowed=True, call_id="p1", caller_id=A,
                                   rule=Rule.USER_DEFAULT, to=TO))
    first = await contract_store.admit(ticket("p1"), plain)
    assert await contract_store.admit(ticket("p1"), plain) == first
    await contract_store.end("a", "p1", Outcome.ANSWERED)
    emergency = Plan(decision=Decision(allowed=True, call_id="e1", caller_id=B,
                                       rule=Rule.EMERGENCY, to="+1911"))
    assert (await contract_store.admit(ticket("e1", counted=False), emergency)).allowed
    assert await contract_store.usage("a", "2026-12-04") == {A: 1}
    again = await contract_store.admit(ticket("r1"), rotate("r1", (Rule.LOCAL_PRESENCE, (A, B))))
    assert again.caller_id == B  # A already placed one today


async def test_a_sticky_number_over_its_cap_gives_way_to_the_rotation(
    contract_store: Store,
) -> None:
    sticky = "+13105550110"  # one of OURS
    caps = Caps(overrides={sticky: 1})
    await contract_store.admit(ticket("s0"), Plan(decision=Decision(
        allowed=True, call_id="s0", caller_id=sticky, rule=Rule.USER_DEFAULT, to=TO)))
    await contract_store.end("a", "s0", Outcome.ANSWERED)
    answer = await contract_store.admit(ticket("c1"), rotate("c1", caps=caps, sticky=True))
    assert (answer.rule, answer.caller_id) == (Rule.LOCAL_PRESENCE, A)
    uncapped = await contract_store.admit(ticket("c2"), rotate("c2", sticky=True))
    assert (uncapped.rule, uncapped.caller_id) == (Rule.STICKY, sticky)
    assert await contract_store.usage("a", "2026-12-04") == {sticky: 2, A: 1}


async def test_counts_survive_a_restart(contract_store: Store, clock: Clock) -> None:
    for i in range(4):
        await contract_store.admit(ticket(f"c{i}", limit=10), rotate(f"c{i}"))
    again = await reopen(contract_store, clock)
    assert await again.usage("a", "2026-12-04") == {A: 2, B: 1, C: 1}
    answer = await again.admit(ticket("c9", limit=10), rotate("c9"))
    assert answer.caller_id == B


@pytest.mark.parametrize("days_back", [USAGE_KEPT_DAYS + 2])
async def test_old_days_are_forgotten(contract_store: Store, clock: Clock, days_back: int) -> None:
    """A day more than ``USAGE_KEPT_DAYS`` back is dropped by the sweep (the embedded store)
    or expires (Redis: the key is set to expire when its first call is counted)."""
    from datetime import UTC, datetime, timedelta

    today = datetime.fromtimestamp(clock() / 1000, UTC).date()
    old = (today - timedelta(days=days_back)).isoformat()
    await contract_store.admit(ticket("c1", day=old), rotate("c1"))
    await contract_store.admit(ticket("c2", day=today.isoformat()), rotate("c2"))
    assert await contract_store.usage("a", old) == {A: 1}
    await contract_store.sweep()
    from engine.store.redis_store import RedisStore

    if isinstance(contract_store, RedisStore):
        ttl = await contract_store._command(  # the day's key, as Redis keeps it
            contract_store._account_keys("a").usage(old), "TTL",
            contract_store._account_keys("a").usage(old))
        assert 0 < int(ttl) <= USAGE_KEPT_DAYS * 86_400
        return
    assert await contract_store.usage("a", old) == {}
    assert await contract_store.usage("a", today.isoformat()) == {A: 1}
