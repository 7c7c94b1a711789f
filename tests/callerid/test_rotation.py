"""Rotation and daily caps: of the numbers one rule offers, the one used least today; a number
over its cap is passed over by every rule but a requested caller ID, which is refused
``caller_id_capped`` unless the account lets users go over."""

from __future__ import annotations

import os
import random
from typing import Any

import msgspec
import pytest

from callerid import (
    AccountConfig,
    CallSettings,
    Reason,
    Rule,
    candidate_steps,
    compile_account,
    resolve,
)
from callerid.resolve import Step, StepResult, TraceStep
from callerid.rotation import ALL_CAPPED, NO_CAPS, Caps, least_used

from .test_local import (
    ACCOUNT_DEFAULT,
    BUFFALO,
    DALLAS,
    MANHATTAN_1,
    MANHATTAN_2,
    NUMBERS,
    NYC_CALLEE,
    PARIS_CALLEE,
    QUEENS_CALLEE,
    account,
)

A, B, C = "+12125550101", "+12125550102", "+12125550103"


def capped_account(cap: int | None = None, own: dict[str, int] | None = None,
                   **fields: Any) -> AccountConfig:
    config = account(**fields)
    numbers = tuple(msgspec.structs.replace(n, daily_cap=(own or {}).get(n.number))
                    for n in config.numbers)
    return msgspec.structs.replace(config, daily_cap=cap, numbers=numbers)


# -- least_used, the pick itself -----------------------------------------------------------------

@pytest.mark.parametrize(("counts", "caps", "available", "expected"), [
    (None, NO_CAPS, None, A),                                   # nothing counted: the first
    ({}, NO_CAPS, None, A),
    ({A: 3, B: 1, C: 2}, NO_CAPS, None, B),                     # the least used
    ({A: 2, B: 2, C: 2}, NO_CAPS, None, A),                     # a tie: the earliest
    ({A: 1, B: 0, C: 0}, NO_CAPS, None, B),
    ({A: 0, B: 5}, NO_CAPS, frozenset({B, C}), C),              # only what the user has
    ({A: 2, B: 1, C: 2}, Caps(default=2), None, B),
    ({A: 2, B: 2, C: 2}, Caps(default=2), None, None),          # every one capped
    ({A: 2, B: 2, C: 9}, Caps(default=2, overrides={C: 10}), None, C),  # its own cap
    ({}, Caps(overrides={A: 0}), None, B),                      # a cap of 0: never
    (None, Caps(default=0), None, None),
    ({A: 1, B: 1}, Caps(default=5), frozenset(), None),         # nothing available
])
def test_the_least_used_number_under_its_cap_wins(
    counts: dict[str, int] | None, caps: Caps, available: frozenset[str] | None,
    expected: str | None,
) -> None:
    assert least_used((A, B, C), available, counts, caps) == expected


def test_a_numbers_own_cap_overrides_the_accounts() -> None:
    caps = Caps(default=100, overrides={A: 3})
    assert (caps.of(A), caps.of(B)) == (3, 100)
    assert caps.over(A, {A: 3}) and not caps.over(A, {A: 2}) and not caps.over(B, {B: 99})
    assert caps and not NO_CAPS and Caps(overrides={A: 1})


def test_one_number_after_another_takes_turns_over_a_day() -> None:
    """Counting each pick and picking again is a round robin: over 30 dials each of three
    numbers places 10, and at no point do two differ by more than one."""
    counts: dict[str, int] = {}
    for _ in range(30):
        number = least_used((A, B, C), None, counts)
        assert number is not None
        counts[number] = counts.get(number, 0) + 1
        assert max(counts.values()) - min(counts.get(n, 0) for n in (A, B, C)) <= 1
    assert counts == {A: 10, B: 10, C: 10}


# -- in resolve ----------------------------------------------------------------------------------

def test_local_presence_rotates_between_the_numbers_of_the_area_code() -> None:
    snap = compile_account(account(), 1)
    user = snap.users["u"]
    assert resolve(snap, user, NYC_CALLEE).caller_id == MANHATTAN_2     # the lower, unused
    trace: list[TraceStep] = []
    result = resolve(snap, user, NYC_CALLEE, trace=trace,
                     counts={MANHATTAN_2: 4, MANHATTAN_1: 3})
    assert (result.rule, result.caller_id) == (Rule.LOCAL_PRESENCE, MANHATTAN_1)
    chosen = next(t for t in trace if t.result is StepResult.CHOSEN)
    assert "the least used today of 2 candidates" in chosen.detail


def test_a_capped_tier_gives_way_to_the_next_then_to_the_defaults() -> None:
    snap = compile_account(capped_account(cap=2), 1)
    user = snap.users["u"]
    both = {MANHATTAN_1: 2, MANHATTAN_2: 2}
    assert resolve(snap, user, NYC_CALLEE, counts=both).caller_id == BUFFALO  # the state's
    trace: list[TraceStep] = []
    result = resolve(snap, user, NYC_CALLEE, trace=trace, counts={**both, BUFFALO: 2})
    assert (result.rule, result.caller_id) == (Rule.LOCAL_PRESENCE, DALLAS)   # the country's
    skipped = [t for t in trace if t.step == Step.LOCAL_PRESENCE]
    assert skipped[0].result is StepResult.SKIPPED and "daily cap" in skipped[0].detail
    assert "as are the other 1" in skipped[0].detail
    result = resolve(snap, user, PARIS_CALLEE, counts={ACCOUNT_DEFAULT: 2})
    assert (result.reason, result.detail) == (Reason.CALLER_ID_CAPPED, ALL_CAPPED)


def test_every_number_capped_is_a_clear_denial_not_a_silent_fallback() -> None:
    snap = compile_account(capped_account(cap=1), 1)
    trace: list[TraceStep] = []
    result = resolve(snap, snap.users["u"], NYC_CALLEE, trace=trace,
                     counts=dict.fromkeys(NUMBERS, 1))
    assert result.caller_id is None and result.reason is Reason.CALLER_ID_CAPPED
    assert trace[-1].step == Step.NO_CALLER_ID and trace[-1].detail == ALL_CAPPED


def test_a_default_over_its_cap_passes_to_the_next_default() -> None:
    snap = compile_account(capped_account(own={DALLAS: 5}, default_caller_id=DALLAS,
                                          call_settings=CallSettings()), 1)
    user = snap.users["u"]
    assert resolve(snap, user, NYC_CALLEE, counts={DALLAS: 4}).rule is Rule.USER_DEFAULT
    result = resolve(snap, user, NYC_CALLEE, counts={DALLAS: 5})
    assert (result.rule, result.caller_id) == (Rule.ACCOUNT_DEFAULT, ACCOUNT_DEFAULT)


@pytest.mark.parametrize(("over_allowed", "expected"), [
    (False, Reason.CALLER_ID_CAPPED), (True, None)])
def test_a_requested_number_over_its_cap(over_allowed: bool, expected: Reason | None) -> None:
    config = msgspec.structs.replace(capped_account(cap=3), requested_over_cap=over_allowed)
    snap = compile_account(config, 1)
    boss = snap.users["boss"]  # the owner may choose any number
    trace: list[TraceStep] = []
    result = resolve(snap, boss, NYC_CALLEE, requested=DALLAS, counts={DALLAS: 3}, trace=trace)
    assert result.reason is expected
    if expected is None:
        assert (result.rule, result.caller_id) == (Rule.REQUESTED, DALLAS)
    else:
        assert DALLAS in (result.detail or "") and "daily cap" in (result.detail or "")
        assert trace[-1].step == Rule.REQUESTED and trace[-1].result is StepResult.DENIED
    assert resolve(snap, boss, NYC_CALLEE, requested=DALLAS, counts={DALLAS: 2}).allowed


def test_a_sticky_number_over_its_cap_is_passed_over() -> None:
    config = capped_account(cap=2, call_settings=CallSettings(sticky_caller_id=True,
                                                              local_presence=True))
    snap = compile_account(config, 1)
    user = snap.users["u"]
    assert resolve(snap, user, NYC_CALLEE, sticky=BUFFALO,
                   counts={BUFFALO: 1}).rule is Rule.STICKY
    trace: list[TraceStep] = []
    result = resolve(snap, user, NYC_CALLEE, sticky=BUFFALO, counts={BUFFALO: 2}, trace=trace)
    assert (result.rule, result.caller_id) == (Rule.LOCAL_PRESENCE, MANHATTAN_2)
    sticky = next(t for t in trace if t.step == Rule.STICKY)
    assert sticky.result is StepResult.SKIPPED and "daily cap" in sticky.detail


def test_uncapped_and_uncounted_the_answer_is_as_before() -> None:
    """No caps and no counts: exactly the answer without rotation (the lowest number)."""
    snap = compile_account(account(), 1)
    for callee in (NYC_CALLEE, QUEENS_CALLEE, PARIS_CALLEE):
        assert resolve(snap, snap.users["u"], callee) == resolve(
            snap, snap.users["u"], callee, counts={})


# -- what a store walks ----------------------------------------------------------------------

def test_the_steps_a_store_walks_pick_what_resolve_picks() -> None:
    """``candidate_steps`` walked with ``least_used`` is ``resolve`` given the same counts:
    random accounts, caps and counts (the seed is printed; CALLERID_SEED replays one)."""
    seed = int(os.environ.get("CALLERID_SEED", random.randrange(1 << 32)))
    print(f"CALLERID_SEED={seed}")
    rng = random.Random(seed)
    callees = (NYC_CALLEE, QUEENS_CALLEE, PARIS_CALLEE)
    for _ in range(400):
        mine = tuple(n for n in NUMBERS if rng.random() < 0.6)
        fields: dict[str, Any] = {}
        if mine:
            fields = {"available_caller_ids": "custom", "custom_caller_ids": mine}
            if rng.random() < 0.5:
                fields["default_caller_id"] = rng.choice(mine)
        config = capped_account(cap=rng.choice((None, 1, 2, 3)),
                                own={n: rng.randrange(4) for n in NUMBERS if rng.random() < 0.2},
                                **fields)
        snap = compile_account(config, 1)
        user = snap.users["u"]
        counts = {n: rng.randrange(4) for n in NUMBERS if rng.random() < 0.7}
        callee = rng.choice(callees)
        expected = resolve(snap, user, callee, counts=counts)
        walked = None
        for rule, numbers in candidate_steps(snap, user, callee):
            number = least_used(numbers, None, counts, snap.caps)
            if number is not None:
                walked = (rule, number)
                break
        if expected.allowed:
            assert walked == (expected.rule, expected.caller_id), (seed, counts, callee)
        else:
            assert walked is None, (seed, counts, callee)
            assert expected.reason in (Reason.CALLER_ID_CAPPED, Reason.NO_CALLER_ID)
            assert (expected.reason is Reason.CALLER_ID_CAPPED) == bool(
                candidate_steps(snap, user, callee)), (seed, counts, callee)


def test_the_steps_leave_out_resting_numbers_and_steps_with_none() -> None:
    snap = compile_account(account(), 1)
    steps = candidate_steps(snap, snap.users["u"], NYC_CALLEE, frozenset({MANHATTAN_2}))
    assert steps[0] == (Rule.LOCAL_PRESENCE, (MANHATTAN_1,))
    assert all(MANHATTAN_2 not in numbers for _, numbers in steps)
    assert candidate_steps(snap, snap.users["u"], NYC_CALLEE, first=True) == (
        (Rule.LOCAL_PRESENCE, (MANHATTAN_2, MANHATTAN_1)),)
    assert steps[-1] == (Rule.ACCOUNT_DEFAULT, (ACCOUNT_DEFAULT,))
