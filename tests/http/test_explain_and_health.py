"""``/v1/explain`` traces every step of the decision and takes nothing; ``/healthz`` and
``/metrics`` report on the server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from tests.conftest import Server
from tests.http.http_support import Api, ServerFactory, account, agent, connect

CONTACT = "2125550187"

# What the demo account's users get for a few destinations, with the (step, result) of every
# step the trace must show, in order.
NORMALISED = [("normalise", "ok"), ("policy", "ok"), ("calling_hours", "skipped")]
NO_AUTOMATION = [("requested", "skipped"), ("sticky", "skipped"), ("geo", "skipped"),
                 ("local_presence", "skipped")]
NO_RULES = [("requested", "skipped"), ("sticky", "skipped"), ("geo", "skipped")]


class Case(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user: str
    to: str
    fields: dict[str, Any] = {}
    allowed: bool = True
    rule: str | None = None
    reason: str | None = None
    steps: list[tuple[str, str]]


CASES = [
    Case(
        id="user-default",
        user="ana",
        to=CONTACT,
        rule="user_default",
        steps=[*NORMALISED, *NO_AUTOMATION, ("user_default", "chosen"), ("channel", "ok")],
    ),
    Case(
        id="department-default",
        user="dev",
        to=CONTACT,
        rule="department_default",
        steps=[
            *NORMALISED,
            *NO_AUTOMATION,
            ("user_default", "skipped"),
            ("department_default", "chosen"),
            ("channel", "ok"),
        ],
    ),
    Case(
        id="account-default",
        user="lee",
        to=CONTACT,
        rule="account_default",
        steps=[
            *NORMALISED,
            *NO_AUTOMATION,
            ("user_default", "skipped"),
            ("department_default", "skipped"),
            ("account_default", "chosen"),
            ("channel", "ok"),
        ],
    ),
    Case(
        id="geo-area-code",
        user="gina",
        to=CONTACT,
        rule="geo_area_code",
        steps=[
            *NORMALISED,
            ("requested", "skipped"),
            ("sticky", "skipped"),
            ("geo_area_code", "chosen"),
            ("channel", "ok"),
        ],
    ),
    Case(
        id="geo-country",
        user="gina",
        to="+442079460018",
        rule="geo_country",
        steps=[
            *NORMALISED,
            ("requested", "skipped"),
            ("sticky", "skipped"),
            ("geo_country", "chosen"),
            ("channel", "ok"),
        ],
    ),
    Case(
        id="geo-default",
        user="gina",
        to="4155550123",
        rule="geo_default",
        steps=[
            *NORMALISED,
            ("requested", "skipped"),
            ("sticky", "skipped"),
            ("geo_default", "chosen"),
            ("channel", "ok"),
        ],
    ),
    Case(
        id="local-presence-area-code",
        user="lola",
        to=CONTACT,
        rule="local_presence",
        steps=[*NORMALISED, *NO_RULES, ("local_presence", "chosen"), ("channel", "ok")],
    ),
    Case(
        id="local-presence-state",
        user="lola",
        to="(713) 555-0187",  # Houston: no Sales number in 713, Austin is in Texas too
        rule="local_presence",
        steps=[*NORMALISED, *NO_RULES, ("local_presence", "skipped"),
               ("local_presence", "chosen"), ("channel", "ok")],
    ),
    Case(
        id="local-presence-country",
        user="lola",
        to="+1 604 555 0187",  # Vancouver: Sales has Toronto, in Canada, not in BC
        rule="local_presence",
        steps=[*NORMALISED, *NO_RULES, ("local_presence", "skipped"),
               ("local_presence", "skipped"), ("local_presence", "chosen"), ("channel", "ok")],
    ),
    Case(
        id="requested",
        user="chris",
        to=CONTACT,
        fields={"caller_id": "+13105550110"},
        rule="requested",
        steps=[*NORMALISED, ("requested", "chosen"), ("channel", "ok")],
    ),
    Case(
        id="requested-without-permission",
        user="ana",
        to=CONTACT,
        fields={"caller_id": "+12125550101"},
        allowed=False,
        reason="caller_id_not_allowed",
        steps=[*NORMALISED, ("requested", "denied")],
    ),
    Case(
        id="no-caller-id",
        user="chris",
        to=CONTACT,
        allowed=False,
        reason="no_caller_id",
        steps=[
            *NORMALISED,
            *NO_AUTOMATION,
            ("user_default", "skipped"),
            ("department_default", "skipped"),
            ("account_default", "skipped"),
            ("none", "denied"),
        ],
    ),
    Case(
        id="invalid-number",
        user="ana",
        to="123",
        allowed=False,
        reason="invalid_number",
        steps=[("normalise", "denied")],
    ),
    Case(
        id="premium-rate",
        user="ana",
        to="+19005550100",
        allowed=False,
        reason="permission_denied",
        steps=[("normalise", "ok"), ("policy", "denied")],
    ),
    Case(
        id="out-of-plan",
        user="dev",
        to="+33142685300",
        allowed=False,
        reason="permission_denied",
        steps=[("normalise", "ok"), ("policy", "denied")],
    ),
    Case(
        id="emergency",
        user="ana",
        to="911",
        rule="emergency",
        steps=[("normalise", "ok"), ("emergency", "chosen")],
    ),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    users = [agent("solo", max_channels=1), agent("full", max_channels=1)]
    with ServerFactory(tmp_path_factory.mktemp("explain")) as factory:
        yield factory.start(account(users=users))


@pytest.fixture
async def api(shared: Server) -> AsyncIterator[Api]:
    async with connect(shared) as client:
        yield client


# -- explain ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_explain_traces_every_step_it_considered(api: Api, case: Case) -> None:
    decision = await api.explain(case.user, case.to, **case.fields)

    assert decision["allowed"] is case.allowed, decision
    assert decision.get("rule") == case.rule
    assert decision.get("reason") == case.reason
    trace = decision["trace"]
    assert [(t["step"], t["result"]) for t in trace] == case.steps
    assert all(t["detail"] for t in trace), "every step says what it found or why it was skipped"


@pytest.mark.parametrize(("to", "caller_id"), [
    (CONTACT, "+12125550101"),            # 212: the lower of Sales' two New York numbers
    ("(713) 555-0187", "+15125550130"),   # Houston: Austin, in Texas
    ("+1 604 555 0187", "+14165550150"),  # Vancouver: Toronto, in Canada
    ("+44 20 7946 0187", "+442079460170"),  # London: London
])
async def test_local_presence_presents_a_number_near_the_callee(
    api: Api, to: str, caller_id: str
) -> None:
    decision = await api.explain("lola", to)
    assert (decision["rule"], decision["caller_id"]) == ("local_presence", caller_id)
    chosen = next(t for t in decision["trace"]
                  if t["step"] == "local_presence" and t["result"] == "chosen")
    assert chosen["caller_id"] == caller_id and "candidate" in chosen["detail"]


async def test_explain_shows_the_sticky_caller_id_it_would_use(api: Api) -> None:
    contact = "+12125550141"
    answered = await api.dial("ana", contact)
    await api.end(answered["call_id"], "answered")

    decision = await api.explain("sam", contact)

    sticky = next(t for t in decision["trace"] if t["step"] == "sticky")
    assert sticky["result"] == "chosen" and sticky["caller_id"] == answered["caller_id"]
    assert decision["rule"] == "sticky"


async def test_explain_at_the_channel_limit_says_the_channel_step_denied(api: Api) -> None:
    await api.fill("full", 1)

    decision = await api.explain("full", CONTACT)

    assert decision["allowed"] is False and decision["reason"] == "channel_limit"
    assert decision["trace"][-1]["step"] == "channel"
    assert decision["trace"][-1]["result"] == "denied"
    assert "full" in decision["trace"][-1]["detail"]


async def test_explain_takes_no_channel_and_remembers_no_call_id(api: Api) -> None:
    before = await api.metrics()
    for i in range(10):
        assert (await api.explain("solo", CONTACT, call_id=f"explained-{i % 2}"))["allowed"]

    after = await api.metrics()
    assert after.active_leases == before.active_leases
    assert after.decisions == before.decisions, "explain is not a decision"
    dialled = await api.dial("solo", "2125550199", call_id="explained-0")
    assert dialled["allowed"] and dialled["to"] == "+12125550199"
    await api.end("explained-0", "canceled")


# -- health and metrics ----------------------------------------------------------------------


async def test_healthz_answers_200(api: Api) -> None:
    reply = await api.request("GET", "/healthz", headers={})

    assert reply.status == 200
    assert reply.body["status"] == "ok"


async def test_metrics_count_decisions_by_outcome_rule_and_reason(api: Api) -> None:
    allowed = {"outcome": "allowed", "rule": "user_default", "reason": ""}
    denied = {"outcome": "denied", "rule": "", "reason": "invalid_number"}
    before = await api.metrics()

    call = await api.dial("ana", CONTACT)
    await api.dial("ana", "123")
    await api.dial("ana", "123")

    after = await api.metrics()
    await api.end(call["call_id"], "canceled")
    name = "callgate_decisions_total"
    assert after.value(name, **allowed) - before.value(name, **allowed) == 1
    assert after.value(name, **denied) - before.value(name, **denied) == 2
    assert {"outcome", "rule", "reason"} <= set(next(after.labels(name)))


async def test_metrics_expose_a_decision_latency_histogram(api: Api) -> None:
    before = await api.metrics()

    for _ in range(3):
        await api.dial("ana", "123")

    after = await api.metrics()
    count = "callgate_decision_seconds_count"
    assert after.value(count) - before.value(count) == 3
    assert after.value("callgate_decision_seconds_sum") > 0
    bounds = {labels["le"] for labels in after.labels("callgate_decision_seconds_bucket")}
    assert "+Inf" in bounds and len(bounds) > 5
    assert after.value("callgate_decision_seconds_bucket", le="+Inf") == after.value(count)


async def test_metrics_expose_active_leases(api: Api) -> None:
    before = (await api.metrics()).active_leases

    call = await api.dial("olivia", CONTACT)
    during = (await api.metrics()).active_leases
    await api.end(call["call_id"], "no_answer")
    after = (await api.metrics()).active_leases

    assert (during - before, after - before) == (1, 0)
