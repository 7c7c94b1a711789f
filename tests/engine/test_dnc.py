"""Do-not-call lists through the engine, on every store: a dial (and a text) to a listed
number is denied ``do_not_call`` after a million-number import, emergency numbers never are,
explain names the step; and ``callgate dnc import`` refuses a file with a bad line whole,
naming the line."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callerid import Outcome, Reason
from engine.decide import Engine
from engine.service import AccountService
from engine.store import AuditQuery, Store
from engine.store.redis_store import RedisStore
from engine.wire import DialRequest, SenderRequest

from ..conftest import CALLGATE, DEMO, demo_config
from ..redis_support import RedisServer
from ..redis_support_fixtures import store_url
from . import test_store_contract as contract
from .test_store_contract import store_kinds

clock, contract_store = contract.clock, contract.contract_store  # the fixtures, over every store

LISTED = "+12125550187"
_AREAS = (212, 213, 310, 312, 415, 617, 646, 718, 202, 305)


def many_numbers(count: int) -> list[str]:
    """``count`` distinct valid US numbers (none of them the demo's 555 numbers)."""
    return [f"+1{_AREAS[i % 10]}{200 + (i // 10) % 700}{(i // 7000) % 10_000:04d}"
            for i in range(count)]


@pytest.fixture
async def engine(contract_store: Store) -> AsyncIterator[Engine]:
    engine = Engine(contract_store)
    await AccountService(contract_store, on_saved=engine.install).put(demo_config())
    yield engine


async def dial(engine: Engine, to: str, **request: str) -> Reason | None:
    decision = await engine.dial("demo", DialRequest(user="ana", to=to, **request))
    return decision.reason if not decision.allowed else None


async def test_a_million_number_list_denies_a_listed_dial(
    engine: Engine, contract_store: Store,
) -> None:
    """1,000,000 numbers on the embedded store and a single Redis; 100,000 on the cluster
    (its import is the same script calls, each to the account's one slot)."""
    count = 100_000 if store_kinds[id(contract_store)][0] == "cluster" else 1_000_000
    numbers = many_numbers(count)
    assert await contract_store.dnc_add("demo", [*numbers, LISTED]) == count + 1
    assert await contract_store.dnc_count("demo") == count + 1
    assert contract_store.dnc_active("demo")
    assert await dial(engine, "(212) 555-0187") is Reason.DO_NOT_CALL
    assert await dial(engine, numbers[count // 2]) is Reason.DO_NOT_CALL
    assert await dial(engine, "+12125550188") is None  # not listed: allowed


async def test_emergency_numbers_are_never_blocked(engine: Engine, contract_store: Store) -> None:
    await contract_store.dnc_add("demo", [LISTED])
    assert await dial(engine, "911") is None


async def test_removing_a_number_lets_it_be_dialled(engine: Engine, contract_store: Store) -> None:
    await contract_store.dnc_add("demo", [LISTED])
    assert await dial(engine, LISTED, call_id="c1") is Reason.DO_NOT_CALL
    await contract_store.dnc_remove("demo", [LISTED])
    assert await dial(engine, LISTED, call_id="c2") is None
    # a retry of the denied call id still gets its answer
    assert await dial(engine, LISTED, call_id="c1") is Reason.DO_NOT_CALL


async def test_a_listed_contact_gets_no_text_sender(engine: Engine, contract_store: Store) -> None:
    await contract_store.dnc_add("demo", [LISTED])
    answer = await engine.text_sender("demo", SenderRequest(user="ana", to=LISTED))
    assert (answer.allowed, answer.reason) == (False, Reason.DO_NOT_CALL)


async def test_explain_shows_the_do_not_call_step(engine: Engine, contract_store: Store) -> None:
    plain = await engine.explain("demo", DialRequest(user="ana", to=LISTED))
    assert "do_not_call" not in [t.step for t in plain.trace or ()]  # no list: no step
    await contract_store.dnc_add("demo", [LISTED])
    denied = await engine.explain("demo", DialRequest(user="ana", to=LISTED))
    assert denied.reason is Reason.DO_NOT_CALL
    assert [(t.step, t.result) for t in denied.trace or ()][-1] == ("do_not_call", "denied")
    allowed = await engine.explain("demo", DialRequest(user="ana", to="+12125550188"))
    assert allowed.allowed
    assert ("do_not_call", "ok") in [(t.step, t.result) for t in allowed.trace or ()]


def callgate(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CALLGATE), *args, "--data", str(data)],
                          capture_output=True, text=True, timeout=120)


def test_cli_import_refuses_a_bad_line_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert callgate("import", str(DEMO), data=data).returncode == 0
    listing = tmp_path / "dnc.txt"
    listing.write_text("# our list\n+12125550187\n\n(212) 555-0188\n555-01\n+12125550189\n")
    refused = callgate("dnc", "import", "demo", str(listing), data=data)
    assert refused.returncode == 2
    assert "line 5: '555-01' is not a valid phone number" in refused.stderr
    assert callgate("dnc", "count", "demo", data=data).stdout.strip() == "0"
    listing.write_text("# our list\n+12125550187\n\n(212) 555-0188\n+12125550189\n")
    done = callgate("dnc", "import", "demo", str(listing), data=data)
    assert done.returncode == 0, done.stderr
    assert "3 numbers read, 3 added" in done.stdout
    assert callgate("dnc", "count", "demo", data=data).stdout.strip() == "3"
    listing.write_text("+12125550188\n")
    assert callgate("dnc", "remove", "demo", str(listing), data=data).returncode == 0
    assert callgate("dnc", "count", "demo", data=data).stdout.strip() == "2"


async def test_cli_import_is_audited(tmp_path: Path) -> None:
    from engine.store import EmbeddedStore

    data = tmp_path / "data"
    assert callgate("import", str(DEMO), data=data).returncode == 0
    listing = tmp_path / "dnc.txt"
    listing.write_text("+12125550187\n")
    assert callgate("dnc", "import", "demo", str(listing), data=data).returncode == 0
    store = EmbeddedStore(data)
    await store.open()
    try:
        entries, _ = await store.audit_log("demo", AuditQuery(target="dnc"))
    finally:
        await store.close()
    assert [(e.action, e.actor, e.after) for e in entries] == [
        ("dnc.import", "cli", {"file": str(listing), "numbers": 1})]




def _evalsha_calls(server: RedisServer) -> int:
    for line in server.cli("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


async def test_on_redis_a_dial_looked_up_is_still_one_script_call(
    request: pytest.FixtureRequest,
) -> None:
    url = store_url(request, "redis")
    server: RedisServer = request.getfixturevalue("redis_server")
    store = RedisStore(url)
    await store.open()
    try:
        engine = Engine(store)
        await AccountService(store, on_saved=engine.install).put(demo_config())
        await store.dnc_add("demo", [LISTED])
        warm = await engine.dial("demo", DialRequest(user="ana", to="+12125550189"))
        await engine.end("demo", warm.call_id, Outcome.NO_ANSWER)  # the scripts are loaded
        for i, to in enumerate([LISTED, "+12125550188"] * 10):
            before = _evalsha_calls(server)
            decision = await engine.dial("demo", DialRequest(user="ana", to=to, call_id=f"c{i}"))
            assert _evalsha_calls(server) - before == 1
            assert decision.reason is (Reason.DO_NOT_CALL if to == LISTED else None)
            if decision.allowed:
                await engine.end("demo", decision.call_id, Outcome.NO_ANSWER)
    finally:
        await store.close()
