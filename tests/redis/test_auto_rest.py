"""Automatic rest across processes on one Redis: calls of one number ended at once through
four processes fill its window of last ended calls in Redis, and the number is rested once
(one write, one audit entry by ``system``), which every process then passes over and shows in
its metrics."""

from __future__ import annotations

import asyncio
import time

from callerid import AutoRest, Reputation
from engine.service import AccountService
from engine.store import AuditQuery
from engine.store.redis_store import RedisStore
from tests.http.http_support import SALES_1, account, agent

from . import test_processes as processes
from .fleet import Fleet
from .test_processes import Clients, spread

redis, fleet = processes.redis, processes.fleet  # the fixtures: a throwaway Redis, processes on it

MAIN = "+12125550100"
"""The demo account's default caller ID: the agent's calls go out from it while SALES_1 rests."""


async def test_calls_ended_at_once_through_4_processes_rest_their_number_once(
    fleet: Fleet,
) -> None:
    """60 calls from SALES_1, ended unanswered at once through four processes, 20 to a
    window: three windows fill, and the number rests once."""
    fleet.setup(account(users=[agent("bulk", max_channels=100)], max_channels=None,
                        auto_rest=AutoRest(min_answer_rate=0.5, over_calls=20, rest_hours=1)))
    servers = fleet.start(4)
    decisions = await spread(servers, [{"user": "bulk", "to": f"+1212555{i:04d}"}
                                       for i in range(60)])
    assert {(d["allowed"], d["caller_id"]) for d in decisions} == {(True, SALES_1)}
    async with Clients(servers) as apis:
        await asyncio.gather(*(apis[i % 4].end(d["call_id"], "no_answer")
                               for i, d in enumerate(decisions)))

    store = RedisStore(fleet.url)
    await store.open()
    try:
        deadline = time.monotonic() + 10
        while True:
            config, _ = await AccountService(store).get("demo")
            number = next(n for n in config.numbers if n.number == SALES_1)
            if number.reputation is Reputation.RESTING or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert number.reputation is Reputation.RESTING
        await asyncio.sleep(1.5)  # room for a second rest, were one on its way
        entries, _ = await store.audit_log("demo", AuditQuery(actor="system"))
        assert [(e.action, e.target) for e in entries] == [("number.update", f"number:{SALES_1}")]
        assert fleet.redis.cli("HGET", "cg:{demo}:answers", SALES_1) == ""  # cleared at the rest
    finally:
        await store.close()

    async with Clients(servers) as apis:
        for api in apis:  # every process has it (told at once, or within its poll)
            deadline = time.monotonic() + 5
            while (await api.dial("bulk", "+12125559999"))["caller_id"] != MAIN:
                assert time.monotonic() < deadline, "a process still presents the rested number"
                await asyncio.sleep(0.1)
        scrapes = [await api.metrics() for api in apis]
    for metrics in scrapes:
        assert metrics.value("callgate_number_state", account="demo", number=SALES_1,
                             state="resting") == 1
        assert metrics.value("callgate_number_answered_total", number=SALES_1) == 0
    assert sum(m.value("callgate_number_attempts_total", account="demo", number=SALES_1)
               for m in scrapes) == 60
