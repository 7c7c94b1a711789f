"""Automatic rest through the engine, on every store: a number whose answer rate over its last
``over_calls`` ended calls falls below the account's ``min_answer_rate`` rests for
``rest_hours``, written as a change by ``system`` (audited, installed at once); one at the
rate, one with fewer calls, an account without ``auto_rest`` never do; a repeated end counts
once; two writers resting one number at once rest it once. The per-number metrics count
attempts and answered calls and show each number's state. The rest edit itself
(``engine.resting.rest_number``) is checked here too, as a pure function."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from callerid import AccountConfig, AutoRest, NumberStatus, Outcome, Reputation, Rule
from engine import configfile
from engine.decide import Engine
from engine.errors import ConfigurationError
from engine.metrics import Metrics
from engine.resting import SYSTEM, AutoRester, NothingToRest, rest_number
from engine.service import AccountService
from engine.store import AuditQuery, Store
from engine.wire import DialRequest

from ..conftest import demo_config
from . import test_store_contract as contract

clock, contract_store = contract.clock, contract.contract_store  # the fixtures, over every store

ANA = "+12125550101"
"""ana's own default: every dial of hers to a New York number goes out from it."""
MAIN = "+12125550100"
"""The account's default: ana's dials go out from it while hers rests."""
CALLEE = "(212) 555-0187"
RULE = AutoRest(min_answer_rate=0.4, over_calls=5, rest_hours=24)
"""Fewer than 2 connected calls of a number's last 5 rest it for a day."""
NO = [Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.CANCELED, Outcome.NO_ANSWER]


def demo(auto_rest: AutoRest | None = RULE, **numbers: dict[str, object]) -> AccountConfig:
    """The demo account with ``auto_rest``; ``numbers`` changes numbers (by last 4 digits)."""
    config = demo_config()
    changed = tuple(msgspec.structs.replace(n, **numbers.get(n.number[-4:], {}))
                    for n in config.numbers)
    return msgspec.structs.replace(config, auto_rest=auto_rest, numbers=changed)


@dataclass
class World:
    store: Store
    engine: Engine
    service: AccountService
    registry: CollectorRegistry
    dialled: int = 0

    async def calls(self, outcomes: list[Outcome], user: str = "ana") -> list[str]:
        """One call per outcome, dialled and ended one after the other; their caller IDs."""
        used = []
        for outcome in outcomes:
            self.dialled += 1
            decision = await self.engine.dial("demo", DialRequest(
                user=user, to=CALLEE, call_id=f"call-{self.dialled}"))
            assert decision.allowed, decision
            used.append(str(decision.caller_id))
            await self.engine.end("demo", decision.call_id, outcome)
        return used

    async def number(self, number: str = ANA) -> tuple[Reputation, datetime | None]:
        await self.engine.settle()
        config, _ = await self.service.get("demo")
        found = next(n for n in config.numbers if n.number == number)
        return found.reputation, found.resting_until

    async def system_writes(self) -> list[tuple[str, str, object, object]]:
        await self.engine.settle()
        entries, _ = await self.store.audit_log("demo", AuditQuery(actor=SYSTEM))
        return [(e.action, e.target, e.before, e.after) for e in entries]

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"account": "demo", **labels})


async def world_over(store: Store, config: AccountConfig) -> World:
    registry = CollectorRegistry()
    engine = Engine(store, metrics=Metrics(registry, store.lease_counts))
    service = AccountService(store, on_saved=engine.install)
    await service.put(config)
    return World(store, engine, service, registry)


@pytest.fixture
async def world(contract_store: Store) -> AsyncIterator[World]:
    world = await world_over(contract_store, demo())
    yield world
    await world.engine.settle()


def _now() -> datetime:
    return datetime.now(UTC)


# -- the rest --------------------------------------------------------------------------------


async def test_a_number_whose_answer_rate_falls_below_the_threshold_rests(world: World) -> None:
    assert await world.calls([Outcome.ANSWERED, *NO[:4]]) == [ANA] * 5  # 1 of 5 connected
    before = _now()
    reputation, until = await world.number()
    assert reputation is Reputation.RESTING
    assert until is not None
    assert before + timedelta(hours=24, seconds=-5) <= until <= before + timedelta(hours=24)

    # it is this process's next decision's at once: the automatic rules pass it over
    assert await world.calls([Outcome.ANSWERED]) == [MAIN]
    explained = await world.engine.explain("demo", DialRequest(user="ana", to=CALLEE))
    assert (explained.caller_id, explained.rule) == (MAIN, Rule.ACCOUNT_DEFAULT)

    [(action, target, was, now)] = await world.system_writes()
    assert (action, target) == ("number.update", f"number:{ANA}")
    assert isinstance(was, dict) and isinstance(now, dict)
    assert "reputation" not in was  # active: the default, left out as in an export
    assert (now["reputation"], now["resting_until"]) == ("resting", until.isoformat().replace(
        "+00:00", "Z"))


async def test_voicemail_counts_as_connected(world: World) -> None:
    await world.calls([Outcome.VOICEMAIL, Outcome.VOICEMAIL, *NO[:3]])
    assert await world.number() == (Reputation.ACTIVE, None)


async def test_a_number_at_the_threshold_keeps_working(world: World) -> None:
    """2 connected of 5 is a rate of 0.4: not below 0.4."""
    _, version = await world.service.get("demo")
    await world.calls([Outcome.ANSWERED, *NO[:3], Outcome.ANSWERED])
    assert await world.number() == (Reputation.ACTIVE, None)
    assert await world.system_writes() == []
    assert (await world.service.get("demo"))[1] == version


async def test_fewer_calls_than_the_window_never_rest(world: World) -> None:
    await world.calls(NO[:4])
    assert await world.number() == (Reputation.ACTIVE, None)
    assert await world.system_writes() == []


async def test_a_repeated_end_counts_once(world: World) -> None:
    decision = await world.engine.dial("demo", DialRequest(user="ana", to=CALLEE, call_id="x"))
    for _ in range(5):
        ended = await world.engine.end("demo", "x", Outcome.NO_ANSWER)
        assert (ended.call_id, ended.outcome, ended.sticky_recorded) == (
            "x", Outcome.NO_ANSWER, False)
    assert decision.caller_id == ANA
    await world.calls(NO[:3])
    assert await world.number() == (Reputation.ACTIVE, None)  # 4 calls, not 8
    await world.calls(NO[:1])
    assert (await world.number())[0] is Reputation.RESTING


async def test_an_account_without_auto_rest_never_rests_a_number(contract_store: Store) -> None:
    world = await world_over(contract_store, demo(auto_rest=None))
    await world.calls(NO * 3)
    assert await world.number() == (Reputation.ACTIVE, None)
    assert await world.system_writes() == []


async def test_a_rested_number_starts_a_fresh_window(world: World) -> None:
    """Rested after 5 calls; its calls while resting (a chooser asks for it) start a new
    window, which rests nothing since it is resting already."""
    await world.calls(NO)
    assert (await world.number())[0] is Reputation.RESTING
    for i in range(6):
        decision = await world.engine.dial("demo", DialRequest(
            user="olivia", to=CALLEE, caller_id=ANA, call_id=f"asked-{i}"))
        assert (decision.caller_id, decision.rule) == (ANA, Rule.REQUESTED)
        await world.engine.end("demo", decision.call_id, Outcome.NO_ANSWER)
    assert len(await world.system_writes()) == 1


async def test_two_writers_resting_one_number_at_once_rest_it_once(world: World) -> None:
    """Two processes told at once (each its own service, over one store): one writes, the
    other's edit, run again on what the first saved, finds the number resting already."""
    _, version = await world.service.get("demo")
    resters = [AutoRester(AccountService(world.store, on_saved=world.engine.install))
               for _ in range(2)]
    for rester in resters:
        rester.rest("demo", ANA)
    for rester in resters:
        await rester.settle()
    assert (await world.number())[0] is Reputation.RESTING
    assert len(await world.system_writes()) == 1
    assert (await world.service.get("demo"))[1] == version + 1


async def test_a_failed_rest_is_logged_not_raised(
    contract_store: Store, caplog: pytest.LogCaptureFixture,
) -> None:
    rester = AutoRester(AccountService(contract_store))
    with caplog.at_level(logging.ERROR, logger="callgate.resting"):
        rester.rest("nobody", ANA)
        await rester.settle()
    [record] = [r for r in caplog.records if r.name == "callgate.resting"]
    assert "could not rest a number automatically" in record.getMessage()
    assert "nobody" in record.getMessage()


# -- metrics ---------------------------------------------------------------------------------


async def test_metrics_count_each_numbers_attempts_and_answered_calls(world: World) -> None:
    await world.calls([Outcome.ANSWERED, Outcome.VOICEMAIL, Outcome.NO_ANSWER])
    await world.engine.end("demo", "call-1", Outcome.ANSWERED)  # a repeated end: counted once
    await world.engine.dial("demo", DialRequest(user="ana", to="911"))  # emergency: no number's
    assert world.sample("callgate_number_attempts_total", number=ANA) == 3
    assert world.sample("callgate_number_answered_total", number=ANA) == 2
    assert world.sample("callgate_number_attempts_total", number=MAIN) is None


async def test_the_state_metric_shows_each_numbers_reputation_now(contract_store: Store) -> None:
    past = _now() - timedelta(hours=1)
    world = await world_over(contract_store, demo(**{
        "0102": {"reputation": Reputation.RESTING, "resting_until": _now() + timedelta(hours=1)},
        "0110": {"reputation": Reputation.RESTING, "resting_until": past},  # its rest is over
        "0120": {"reputation": Reputation.RETIRED},
    }))

    def state(number: str) -> set[str]:
        return {s for s in ("active", "resting", "retired")
                if world.sample("callgate_number_state", number=number, state=s) == 1}

    assert state(MAIN) == state(ANA) == {"active"}
    assert state("+12125550102") == {"resting"}
    assert state("+13105550110") == {"active"}
    assert state("+13125550120") == {"retired"}
    assert state("+13055550140") == set()  # released: no longer the account's to show
    await world.calls(NO)
    await world.engine.settle()
    assert state(ANA) == {"resting"}


# -- the edit --------------------------------------------------------------------------------

NOW_MS = 1_796_000_000_000


def _rest(config: AccountConfig, number: str = ANA) -> AccountConfig:
    new, audit = rest_number(number, NOW_MS)(config)
    assert [(e.actor, e.action, e.target, e.at_ms) for e in audit] == [
        (SYSTEM, "number.update", f"number:{number}", NOW_MS)]
    return new


def test_the_rest_lasts_rest_hours_from_now() -> None:
    rested = next(n for n in _rest(demo(AutoRest(min_answer_rate=0.1, rest_hours=3))).numbers
                  if n.number == ANA)
    assert rested.reputation is Reputation.RESTING
    assert rested.resting_until == datetime.fromtimestamp(NOW_MS // 1000, UTC) + timedelta(
        hours=3)


def test_a_number_whose_rest_is_over_is_rested_again() -> None:
    over = datetime.fromtimestamp(NOW_MS / 1000 - 60, UTC)
    config = demo(**{"0101": {"reputation": Reputation.RESTING, "resting_until": over}})
    assert next(n for n in _rest(config).numbers if n.number == ANA).resting_until != over


@pytest.mark.parametrize("numbers", [
    {"0101": {"reputation": Reputation.RESTING,
              "resting_until": datetime.fromtimestamp(NOW_MS / 1000 + 60, UTC)}},
    {"0101": {"reputation": Reputation.RETIRED}},
    {"0101": {"status": NumberStatus.RELEASED, "department": None}},
], ids=["resting", "retired", "released"])
def test_a_number_not_in_use_is_left_alone(numbers: dict[str, dict[str, object]]) -> None:
    with pytest.raises(NothingToRest):
        rest_number(ANA, NOW_MS)(demo(**numbers))


def test_nothing_rests_once_auto_rest_is_off_or_the_number_is_gone() -> None:
    with pytest.raises(NothingToRest):
        rest_number(ANA, NOW_MS)(demo(auto_rest=None))
    with pytest.raises(NothingToRest):
        rest_number("+19995550100", NOW_MS)(demo())


# -- the configuration file ------------------------------------------------------------------


def test_import_export_and_the_schema_carry_auto_rest() -> None:
    config = demo(AutoRest(min_answer_rate=0.15, over_calls=40, rest_hours=48))
    for fmt in ("toml", "json"):
        blob = configfile.encode(config, fmt)
        assert configfile.decode(blob, fmt) == config
    assert b"[auto_rest]\nmin_answer_rate = 0.15\nover_calls = 40\nrest_hours = 48" in (
        configfile.encode(config, "toml"))
    schema = configfile.json_schema()
    rule = schema["$defs"]["AutoRest"]
    assert rule["required"] == ["min_answer_rate"]
    assert rule["properties"]["over_calls"]["minimum"] == 5
    assert rule["properties"]["min_answer_rate"]["maximum"] == 1


@pytest.mark.parametrize("bad", [
    "min_answer_rate = 1.5", "min_answer_rate = -0.1", "min_answer_rate = 0.2\nover_calls = 4",
    "min_answer_rate = 0.2\nrest_hours = 0", "min_answer_rate = 0.2\nrest_hours = 721",
    "over_calls = 50", "min_answer_rate = 0.2\nrest_days = 1",
], ids=["rate-over-1", "rate-below-0", "too-few-calls", "no-rest", "rest-too-long",
        "no-rate", "unknown-field"])
def test_a_bad_auto_rest_is_refused_naming_it(bad: str) -> None:
    blob = configfile.encode(demo(auto_rest=None), "toml") + f"\n[auto_rest]\n{bad}\n".encode()
    with pytest.raises(ConfigurationError, match=r"auto_rest"):
        configfile.decode(blob, "toml")
