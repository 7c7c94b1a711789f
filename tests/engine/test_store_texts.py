"""A text's sender in every store: picked from the contact's sticky number and the texts each
number sent today, counted apart from calls, made the contact's sticky number, in one atomic
step, with no channel taken. Written once, run over every store implementation."""

from __future__ import annotations

import asyncio
from collections import Counter

from callerid import Outcome, Reason, Rule
from callerid.rotation import ALL_CAPPED, NO_CAPS, Caps
from engine.store import Plan, Rotation, Store, TextTicket
from engine.wire import Decision

from . import test_store_contract as contract
from .test_store_contract import OURS, Clock, reopen, ticket

clock, contract_store = contract.clock, contract.contract_store  # the fixtures, over every store

A, B, C = "+12125550101", "+12125550102", "+12125550103"
FALLBACK = "+13055550100"
TO = "+12125550187"
DAY = "2026-12-04"


def text_ticket(contact: str = "sms:" + TO, day: str = DAY) -> TextTicket:
    return TextTicket(account_id="a", contact=contact, day=day, sticky_ttl_ms=86_400_000)


def plain(sender: str = A) -> Plan:
    return Plan(decision=Decision(allowed=True, call_id="", caller_id=sender,
                                  rule=Rule.USER_DEFAULT, to=TO))


def rotate(*steps: tuple[Rule, tuple[str, ...]], caps: Caps = NO_CAPS,
           sticky: bool = False) -> Plan:
    steps = steps or ((Rule.LOCAL_PRESENCE, (A, B, C)),)
    answer = Decision(allowed=True, call_id="", caller_id=steps[0][1][0], rule=steps[0][0],
                      to=TO)
    exhausted = Decision(allowed=False, call_id="", reason=Reason.CALLER_ID_CAPPED,
                         detail=ALL_CAPPED, to=TO)
    return Plan(
        decision=answer, caps=caps,
        rotation=Rotation(steps=steps, answer=answer, exhausted=exhausted),
        sticky=Decision(allowed=True, call_id="", rule=Rule.STICKY, to=TO) if sticky else None,
        sticky_ids=OURS | {A, B, C} if sticky else frozenset(),
    )


async def test_a_text_counts_against_its_sender_apart_from_calls(contract_store: Store) -> None:
    sent = await contract_store.send_text(text_ticket(), plain())
    assert (sent.allowed, sent.caller_id, sent.rule) == (True, A, Rule.USER_DEFAULT)
    assert await contract_store.texts("a", DAY) == {A: 1}
    assert await contract_store.usage("a", DAY) == {}
    assert (await contract_store.peek(ticket("probe", remember=False))).user_leases == 0
    await contract_store.admit(ticket("c1"), Plan(decision=Decision(
        allowed=True, call_id="c1", caller_id=A, rule=Rule.USER_DEFAULT, to=TO)))
    assert await contract_store.usage("a", DAY) == {A: 1}
    assert await contract_store.texts("a", DAY) == {A: 1}
    assert await contract_store.texts("a", "2026-12-05") == {}


async def test_a_burst_of_texts_takes_turns_and_never_passes_a_cap(contract_store: Store) -> None:
    spread = await asyncio.gather(*(contract_store.send_text(text_ticket(f"sms:+1{i}"), rotate())
                                    for i in range(90)))
    assert Counter(s.caller_id for s in spread) == {A: 30, B: 30, C: 30}
    caps = Caps(default=32, overrides={B: 30})
    steps = ((Rule.LOCAL_PRESENCE, (A, B, C)), (Rule.ACCOUNT_DEFAULT, (FALLBACK,)))
    more = await asyncio.gather(*(
        contract_store.send_text(text_ticket(f"sms:+2{i}"), rotate(*steps, caps=caps))
        for i in range(60)))
    assert Counter(s.caller_id for s in more if s.allowed) == {A: 2, C: 2, FALLBACK: 32}
    assert Counter(s.reason for s in more if not s.allowed) == {Reason.CALLER_ID_CAPPED: 24}
    assert await contract_store.texts("a", DAY) == {A: 32, B: 30, C: 32, FALLBACK: 32}


async def test_the_sender_becomes_the_contacts_sticky_number(contract_store: Store) -> None:
    first = await contract_store.send_text(text_ticket(), rotate(sticky=True))
    assert (first.rule, first.caller_id) == (Rule.LOCAL_PRESENCE, A)
    again = await contract_store.send_text(text_ticket(), rotate(sticky=True))
    assert (again.rule, again.caller_id) == (Rule.STICKY, A)
    other = await contract_store.send_text(text_ticket("sms:+13125550199"), rotate(sticky=True))
    assert other.caller_id == B  # another contact: the rotation, A being used most
    capped = await contract_store.send_text(text_ticket(), rotate(caps=Caps(overrides={A: 2}),
                                                                  sticky=True))
    assert (capped.rule, capped.caller_id) == (Rule.LOCAL_PRESENCE, C)  # A is at its cap


async def test_texts_and_calls_share_a_contacts_sticky_number_by_its_key(
    contract_store: Store,
) -> None:
    """The engine keys a text's sticky number by the contact itself when the account shares
    them with calls (``callerid.sms.sticky_contact``): then each sees the other's."""
    await contract_store.admit(ticket("c0"), Plan(decision=Decision(
        allowed=True, call_id="c0", caller_id="+13105550110", rule=Rule.USER_DEFAULT, to=TO)))
    await contract_store.end("a", "c0", Outcome.ANSWERED)  # the call's sticky number
    own = await contract_store.send_text(text_ticket("sms:" + TO), rotate(sticky=True))
    assert own.rule is Rule.LOCAL_PRESENCE
    shared = await contract_store.send_text(text_ticket(TO), rotate(sticky=True))
    assert (shared.rule, shared.caller_id) == (Rule.STICKY, "+13105550110")
    await contract_store.send_text(text_ticket(TO), plain("+12125550100"))
    call = await contract_store.admit(ticket("c1"), contract.allow("c1", fallback=FALLBACK))
    assert (call.rule, call.caller_id) == (Rule.STICKY, "+12125550100")


async def test_a_denied_text_counts_nothing_and_sets_no_sticky(contract_store: Store) -> None:
    denial = Plan(decision=Decision(allowed=False, call_id="", reason=Reason.NO_CALLER_ID,
                                    detail="none", to=TO))
    assert await contract_store.send_text(text_ticket(), denial) == denial.decision
    capped = await contract_store.send_text(
        text_ticket(), rotate((Rule.USER_DEFAULT, (A,)), caps=Caps(default=0), sticky=True))
    assert (capped.allowed, capped.reason) == (False, Reason.CALLER_ID_CAPPED)
    assert await contract_store.texts("a", DAY) == {}
    after = await contract_store.send_text(text_ticket(), rotate(sticky=True))
    assert after.rule is Rule.LOCAL_PRESENCE  # no sticky number was set


async def test_texts_survive_a_restart(contract_store: Store, clock: Clock) -> None:
    for i in range(4):
        await contract_store.send_text(text_ticket(f"sms:+1{i}"), rotate())
    again = await reopen(contract_store, clock)
    assert await again.texts("a", DAY) == {A: 2, B: 1, C: 1}
    assert (await again.send_text(text_ticket("sms:+19"), rotate())).caller_id == B
    assert (await again.send_text(text_ticket("sms:+10"), rotate(sticky=True))).rule is Rule.STICKY
