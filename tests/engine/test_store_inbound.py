"""An incoming call in every store: it holds a channel like an outgoing one, shows in the live
calls as incoming, and counts against no number and sets no sticky caller ID."""

from __future__ import annotations

import asyncio

from callerid import Outcome, Rule
from engine.store import Plan, Store
from engine.wire import Decision

from . import test_store_contract as contract
from .test_store_contract import ticket

clock, contract_store = contract.clock, contract.contract_store  # the fixtures, over every store


def incoming(call_id: str, caller: str | None = "+13125550100") -> Plan:
    return Plan(decision=Decision(allowed=True, call_id=call_id, rule=Rule.INBOUND, to=caller))


async def test_incoming_and_outgoing_calls_share_the_users_channels(
    contract_store: Store,
) -> None:
    answers = await asyncio.gather(*(
        contract_store.admit(ticket(f"c{i}", limit=5, contact=None),
                             incoming(f"c{i}") if i % 2 else contract.allow(f"c{i}"))
        for i in range(40)))
    assert sum(a.allowed for a in answers) == 5
    live = await contract_store.live_calls("a")
    assert len(live) == 5
    for call in live:
        assert call.inbound == (int(call.call_id[1:]) % 2 == 1), call
        if call.inbound:
            assert (call.to, call.caller_id) == ("+13125550100", None)


async def test_an_incoming_call_counts_against_no_number_and_sets_no_sticky(
    contract_store: Store,
) -> None:
    taken = await contract_store.admit(ticket("in1", contact=None), incoming("in1"))
    assert (taken.allowed, taken.rule, taken.to) == (True, Rule.INBOUND, "+13125550100")
    ended = await contract_store.end("a", "in1", Outcome.ANSWERED)
    assert ended.sticky_recorded is False
    assert await contract_store.usage("a", "2026-12-04") == {}
    assert (await contract_store.peek(ticket("probe", remember=False))).sticky is None
    withheld = await contract_store.admit(ticket("in2", contact=None), incoming("in2", None))
    assert withheld.allowed and withheld.to is None
