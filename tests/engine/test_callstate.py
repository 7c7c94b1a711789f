"""What ending a call, or extending its lease, answers in each state: the one table both stores
follow. Pure: plain functions, no store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from callerid import Outcome, Reason, Rule
from engine.errors import Conflict, NotFound, RequestError
from engine.store.callstate import (
    CallState,
    CallStatus,
    check_end,
    check_heartbeat,
    sticky_pair,
)
from engine.store.redis_store import scripts as S
from engine.store.redis_store.store import RedisStore
from engine.wire import Decision

DENIAL = Decision(allowed=False, call_id="c1", reason=Reason.CHANNEL_LIMIT, detail="full")

MISSING = CallStatus(state=CallState.MISSING)
DENIED = CallStatus(state=CallState.DENIED, denial=DENIAL)
ENDED_BUSY = CallStatus(state=CallState.ENDED, outcome=Outcome.BUSY)
EMERGENCY = CallStatus(state=CallState.EMERGENCY)
EXPIRED = CallStatus(state=CallState.EXPIRED)
LIVE = CallStatus(state=CallState.LIVE)

NOT_FOUND = (NotFound, "no call 'c1' in this account", "call_id")
WAS_DENIED = (Conflict, "call 'c1' was denied (channel_limit); it holds no channel", "call_id")


def assert_refused(
    check: pytest.ExceptionInfo[RequestError], expected: tuple[type[RequestError], str, str]
) -> None:
    cls, detail, field = expected
    assert type(check.value) is cls
    assert check.value.detail == detail
    assert check.value.field == field


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (MISSING, NOT_FOUND),
        (DENIED, WAS_DENIED),
        (ENDED_BUSY, (Conflict, "call 'c1' has ended (busy)", "call_id")),
        (EMERGENCY, (Conflict, "call 'c1' is an emergency call: it holds no channel, "
                               "so it has no lease to extend", "call_id")),
        (EXPIRED, (Conflict, "the lease of call 'c1' expired; dial again for a new one",
                   "call_id")),
    ],
    ids=["missing", "denied", "ended", "emergency", "expired"],
)
def test_a_heartbeat_of_a_call_not_live_gets_its_error(
    status: CallStatus, expected: tuple[type[RequestError], str, str]
) -> None:
    with pytest.raises(RequestError) as refused:
        check_heartbeat("c1", status)
    assert_refused(refused, expected)


def test_a_heartbeat_of_a_live_call_goes_ahead() -> None:
    check_heartbeat("c1", LIVE)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (MISSING, NOT_FOUND),
        (DENIED, WAS_DENIED),
        (ENDED_BUSY, (Conflict, "call 'c1' already ended as busy, not answered", "outcome")),
    ],
    ids=["missing", "denied", "ended-otherwise"],
)
def test_an_end_refused_gets_its_error(
    status: CallStatus, expected: tuple[type[RequestError], str, str]
) -> None:
    with pytest.raises(RequestError) as refused:
        check_end("c1", status, Outcome.ANSWERED)
    assert_refused(refused, expected)


@pytest.mark.parametrize("status", [LIVE, EXPIRED, EMERGENCY], ids=lambda s: s.state.value)
def test_a_call_that_took_a_channel_and_has_not_ended_can_end(status: CallStatus) -> None:
    check_end("c1", status, Outcome.ANSWERED)


def test_an_end_repeated_with_the_same_outcome_goes_ahead() -> None:
    check_end("c1", ENDED_BUSY, Outcome.BUSY)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"state": CallState.DENIED},
        {"state": CallState.ENDED},
        {"state": CallState.LIVE, "denial": DENIAL},
        {"state": CallState.EXPIRED, "outcome": Outcome.BUSY},
        {"state": CallState.DENIED, "denial": DENIAL, "outcome": Outcome.BUSY},
    ],
    ids=["denied-without-denial", "ended-without-outcome", "live-with-denial",
         "expired-with-outcome", "denied-with-outcome"],
)
def test_a_status_carries_exactly_what_its_state_quotes(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="goes with the"):
        CallStatus(**kwargs)


def answer(*, rule: Rule = Rule.USER_DEFAULT, caller_id: str | None = "+12125550100",
           to: str | None = "+12125550187") -> Decision:
    return Decision(allowed=True, call_id="c1", caller_id=caller_id, rule=rule, to=to)


def test_the_sticky_pair_is_contact_then_caller_id() -> None:
    assert sticky_pair(answer()) == ("+12125550187", "+12125550100")


@pytest.mark.parametrize(
    "decision",
    [answer(rule=Rule.EMERGENCY), answer(caller_id=None), answer(to=None)],
    ids=["emergency", "no-caller-id", "no-contact"],
)
def test_no_sticky_pair_for_emergency_or_without_caller_id_or_contact(
    decision: Decision,
) -> None:
    assert sticky_pair(decision) is None


def test_every_heartbeat_reply_code_stands_for_a_state() -> None:
    assert set(RedisStore._HEARTBEAT_STATES) == set(S.HeartbeatCode)
    assert RedisStore._HEARTBEAT_STATES[S.HeartbeatCode.OK] is CallState.LIVE


def test_every_end_reply_code_but_ok_stands_for_a_state() -> None:
    assert set(RedisStore._END_STATES) == set(S.EndCode) - {S.EndCode.OK}


def test_the_call_state_module_imports_no_io() -> None:
    import engine.store.callstate as callstate

    tree = ast.parse(Path(callstate.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert not imported & {"asyncio", "aiohttp", "redis", "hiredis", "socket", "sqlite3", "time"}
