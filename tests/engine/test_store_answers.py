"""Each number's window of last ended calls (``auto_rest``) in every store: ``end`` adds the
call's outcome to its caller ID's window in the step that ends it, says when a full window
holds too few connected calls (and clears it, once, however many ends race), counts a
repeated end once and an emergency call never, and keeps the windows across a restart.
Written once, run over every store implementation."""

from __future__ import annotations

import asyncio

import pytest

from callerid import AutoRest, Outcome
from engine.store import AnswerWindow, Store
from engine.store.protocol import record_answer

from . import test_store_contract as contract
from .test_store_contract import Clock, allow, reopen, ticket

clock, contract_store = contract.clock, contract.contract_store  # the fixtures, over every store

MAIN = "+12125550100"
"""``allow``'s caller ID."""
OTHER = "+13055550100"
FIVE = AnswerWindow(calls=5, least=2)
"""Over the last 5 ended calls, fewer than 2 connected (a rate below 0.4) is due a rest."""
UNANSWERED = [Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.CANCELED]


async def ended_calls(
    store: Store, outcomes: list[Outcome], *, start: int = 0, number: str = MAIN,
    window: AnswerWindow | None = FIVE,
) -> list[bool]:
    """Dial and end one call from ``number`` per outcome, one after the other; whether each
    end said a rest is due."""
    due = []
    for i, outcome in enumerate(outcomes, start):
        call_id = f"{number[1:]}-{i}"
        assert (await store.admit(ticket(call_id, limit=1000), allow(call_id, number))).allowed
        ended = await store.end("a", call_id, outcome, window=window)
        assert ended.number == number
        due.append(ended.rest_due)
    return due


@pytest.mark.parametrize(("calls", "rate", "least"), [
    (50, 0.3, 15), (50, 0.15, 8), (5, 0.4, 2), (20, 0.0, 0), (20, 1.0, 20), (7, 0.5, 4),
], ids=["0.3-of-50", "0.15-of-50", "0.4-of-5", "never", "all", "0.5-of-7"])
def test_the_window_needs_the_connected_calls_the_rate_asks_for(
    calls: int, rate: float, least: int,
) -> None:
    assert AnswerWindow.of(AutoRest(min_answer_rate=rate, over_calls=calls)) == AnswerWindow(
        calls=calls, least=least)


def test_record_answer_keeps_the_last_calls_and_clears_a_due_window() -> None:
    window = AnswerWindow(calls=3, least=1)
    assert record_answer("", False, window) == ("0", False)
    assert record_answer("10", False, window) == ("100", False)
    assert record_answer("100", False, window) == ("", True)
    assert record_answer("011", True, window) == ("111", False)


async def test_a_full_window_of_unanswered_calls_is_due_once_then_starts_afresh(
    contract_store: Store,
) -> None:
    due = await ended_calls(contract_store, [*UNANSWERED, Outcome.NO_ANSWER] * 2)
    assert due == [False] * 4 + [True] + [False] * 4 + [True]


async def test_fewer_calls_than_the_window_are_never_due(contract_store: Store) -> None:
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER] * 4) == [False] * 4


async def test_enough_connected_calls_keep_a_number_from_rest(contract_store: Store) -> None:
    """Answered and voicemail both connect: 2 of the last 5 is a rate of 0.4, not below it;
    then one of the two connected calls leaves the window, and the rate falls below."""
    outcomes = [Outcome.ANSWERED, Outcome.VOICEMAIL, Outcome.NO_ANSWER, Outcome.BUSY,
                Outcome.NO_ANSWER, Outcome.FAILED]
    assert await ended_calls(contract_store, outcomes) == [False] * 5 + [True]


async def test_each_number_has_its_own_window(contract_store: Store) -> None:
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER] * 4) == [False] * 4
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER] * 4, number=OTHER) == [False] * 4
    assert await ended_calls(contract_store, [Outcome.BUSY], start=10) == [True]
    assert await ended_calls(contract_store, [Outcome.BUSY], start=10, number=OTHER) == [True]


async def test_a_repeated_end_counts_once(contract_store: Store) -> None:
    assert (await contract_store.admit(ticket("c0"), allow("c0"))).allowed
    first = await contract_store.end("a", "c0", Outcome.NO_ANSWER, window=FIVE)
    for _ in range(5):
        again = await contract_store.end("a", "c0", Outcome.NO_ANSWER, window=FIVE)
        assert again.answer == first.answer
        assert (again.number, again.rest_due) == (None, False)
    assert (first.number, first.rest_due) == (MAIN, False)
    # c0 and three more: four calls in the window, not yet five
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER] * 3, start=1) == [False] * 3
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER], start=4) == [True]


async def test_an_emergency_call_counts_against_no_number(contract_store: Store) -> None:
    for i in range(6):
        assert (await contract_store.admit(ticket(f"sos{i}", counted=False),
                                           allow(f"sos{i}"))).allowed
        ended = await contract_store.end("a", f"sos{i}", Outcome.NO_ANSWER, window=FIVE)
        assert (ended.number, ended.rest_due) == (None, False)
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER] * 4) == [False] * 4


async def test_ends_without_a_window_keep_nothing(contract_store: Store) -> None:
    """An account without ``auto_rest`` keeps no window (its calls still say their number):
    the count starts when the window is first asked for."""
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER] * 6, window=None) == [False] * 6
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER] * 5, start=6) == [False] * 4 + [
        True]


async def test_the_windows_survive_a_restart(contract_store: Store, clock: Clock) -> None:
    assert await ended_calls(contract_store, [Outcome.NO_ANSWER] * 4) == [False] * 4
    again = await reopen(contract_store, clock)
    try:
        assert await ended_calls(again, [Outcome.NO_ANSWER], start=4) == [True]
        assert await ended_calls(again, [Outcome.NO_ANSWER] * 4, start=5) == [False] * 4
    finally:
        await again.close()


async def test_ends_at_once_are_due_once_per_window(contract_store: Store) -> None:
    """20 calls from one number ending at once, 5 to a window: exactly 4 ends are told."""
    for i in range(20):
        assert (await contract_store.admit(ticket(f"c{i}", limit=1000), allow(f"c{i}"))).allowed
    ended = await asyncio.gather(*(
        contract_store.end("a", f"c{i}", Outcome.NO_ANSWER, window=FIVE) for i in range(20)))
    assert sum(e.rest_due for e in ended) == 4
    assert {e.number for e in ended} == {MAIN}
