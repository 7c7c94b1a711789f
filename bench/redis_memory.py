"""How much Redis memory callgate's call state takes, for sizing a Redis: bytes per call in
progress (its lease and its call record) and per sticky caller ID, measured on a throwaway
``redis-server`` (``INFO memory`` before and after, divided by the count).

The calls are real dials through the engine on the Redis store: ``sam`` of the bench account
(sticky caller ID on) dials ``CALLS`` distinct contacts and holds them; then every call ends
answered, which records each contact's sticky caller ID and shortens the call records' life
to their retry window (15 minutes), after which only the sticky entries remain; the figure
for those is taken once the records are deleted by hand, as their expiry would. Last, as many
dials to a number that does not exist, each with a call id, are denied and remembered for
their retry window: the size of a denial's record.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from callerid import Outcome
from engine.decide import Engine
from engine.service import AccountService
from engine.store.redis_store import RedisStore, parse_redis_url
from engine.wire import DialRequest

from .redis_http import redis_server
from .report import Row
from .workload import FreshNumbers, bench_account

__all__ = ["run"]

CALLS = 20_000
USER = "sam"


def _used(client: object) -> int:
    info = client.info("memory")  # type: ignore[attr-defined]
    return int(info["used_memory"])


async def _measure(url: str, client: object) -> tuple[float, float, float, float]:
    store = RedisStore(parse_redis_url(url + "?timeout_ms=5000"))  # a measurement, not a race
    await store.open()
    try:
        engine = Engine(store)
        await AccountService(store, on_saved=engine.install).put(bench_account())
        numbers = FreshNumbers(seed=7).take(CALLS)
        empty = _used(client)
        call_ids = []
        for start in range(0, CALLS, 200):
            decisions = await asyncio.gather(*(
                engine.dial("demo", DialRequest(user=USER, to=n, call_id=f"size-{start + i}"))
                for i, n in enumerate(numbers[start:start + 200])))
            refused = [d for d in decisions if not d.allowed]
            if refused:
                raise RuntimeError(f"a dial was refused: {refused[0].reason} {refused[0].detail}")
            call_ids += [d.call_id for d in decisions]
        held = _used(client)
        for start in range(0, CALLS, 200):
            await asyncio.gather(*(engine.end("demo", c, Outcome.ANSWERED)
                                   for c in call_ids[start:start + 200]))
        ended = _used(client)
        records = [k for k in client.scan_iter(match="cg:{demo}:call:*", count=1000)]  # type: ignore[attr-defined]
        for start in range(0, len(records), 1000):
            client.delete(*records[start:start + 1000])  # type: ignore[attr-defined]
        sticky_only = _used(client)
        for start in range(0, CALLS, 200):
            denied = await asyncio.gather(*(
                engine.dial("demo", DialRequest(user=USER, to="12", call_id=f"no-{start + i}"))
                for i in range(200)))
            if any(d.allowed for d in denied):
                raise RuntimeError("a dial to '12' was allowed")
        with_denials = _used(client)
    finally:
        await store.close()
    per_call = (held - empty) / CALLS
    per_record = (ended - sticky_only) / max(len(records), 1)
    per_sticky = (sticky_only - empty) / CALLS
    per_denial = (with_denials - sticky_only) / CALLS
    return per_call, per_record, per_sticky, per_denial


def run() -> list[Row]:
    with (
        tempfile.TemporaryDirectory(prefix="bench-redis-memory-") as tmp,
        redis_server(Path(tmp)) as redis,
    ):
        per_call, per_record, per_sticky, per_denial = asyncio.run(
            _measure(redis.url, redis.client)
        )
    note = f"{CALLS:,} calls of one user, INFO used_memory before and after"
    return [
        Row("Redis memory per call in progress (lease + record)", per_call, "bytes", note=note),
        Row("Redis memory per ended call's record (kept 15 min)", per_record, "bytes"),
        Row("Redis memory per sticky caller ID (kept sticky_ttl_days)", per_sticky, "bytes"),
        Row("Redis memory per remembered denial (kept 15 min)", per_denial, "bytes"),
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row.what}: {row.value:.0f} {row.unit}")
