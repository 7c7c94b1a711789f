"""What a do-not-call list costs: memory per entry on both stores, import time, and the
lookup on the embedded store's index (``engine/store/dnc.py`` says how each store keeps a
list). ``python -m bench.dnc_memory [N]`` (default 1,000,000 numbers).

- Redis: ``INFO used_memory`` before and after ``store.dnc_add`` of N numbers on a throwaway
  ``redis-server``, divided by N.
- Embedded: the SQLite file's growth per number, and the in-memory index's: the process's
  RSS before and after a fresh store opens the list (the index is built at open, from the
  table), divided by N.
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from engine.store import EmbeddedStore
from engine.store.dnc import number_key
from engine.store.redis_store import RedisStore, parse_redis_url

from .redis_http import redis_server
from .report import Row

__all__ = ["numbers", "run"]

N = 1_000_000
_AREAS = (212, 213, 310, 312, 415, 617, 646, 718, 202, 305, 404, 469, 512, 602, 702, 713, 714,
          720, 801, 818)


def numbers(count: int, seed: int = 1) -> list[str]:
    """``count`` distinct valid US numbers."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < count:
        out.add(f"+1{rng.choice(_AREAS)}{rng.randrange(200, 1000)}{rng.randrange(10_000):04d}")
    return sorted(out)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def _redis(listed: list[str], url: str, client: object) -> tuple[float, float]:
    store = RedisStore(parse_redis_url(url + "?timeout_ms=5000"))
    await store.open()
    try:
        before = int(client.info("memory")["used_memory"])  # type: ignore[attr-defined]
        started = time.perf_counter()
        await store.dnc_add("demo", listed)
        took = time.perf_counter() - started
        after = int(client.info("memory")["used_memory"])  # type: ignore[attr-defined]
    finally:
        await store.close()
    return (after - before) / len(listed), took


async def _embedded(listed: list[str], data: Path) -> tuple[float, float, float, float]:
    store = EmbeddedStore(data)
    await store.open()
    size = (data / "callgate.db").stat().st_size
    started = time.perf_counter()
    await store.dnc_add("demo", listed)
    took = time.perf_counter() - started
    await store.close()
    grown = (data / "callgate.db").stat().st_size - size
    before = _rss_bytes()
    again = EmbeddedStore(data)
    await again.open()  # builds the index from the table
    index_bytes = (_rss_bytes() - before) / len(listed)
    sample = [listed[i] for i in range(0, len(listed), max(1, len(listed) // 10_000))]
    index = again._dnc["demo"]
    keys = [number_key(n) for n in sample]
    started_ns = time.perf_counter_ns()
    for _ in range(10):
        for key in keys:
            if key not in index:
                raise RuntimeError("a listed number was not found")
    lookup_ns = (time.perf_counter_ns() - started_ns) / (10 * len(keys))
    await again.close()
    return grown / len(listed), index_bytes, took, lookup_ns


def run(count: int = N) -> list[Row]:
    listed = numbers(count)
    note = f"{count:,} numbers"
    with tempfile.TemporaryDirectory(prefix="bench-dnc-") as tmp:
        with redis_server(Path(tmp)) as redis:
            per_redis, redis_s = asyncio.run(_redis(listed, redis.url, redis.client))
        per_file, per_index, embedded_s, lookup_ns = asyncio.run(
            _embedded(listed, Path(tmp) / "data"))
    return [
        Row("DNC: Redis memory per number (intsets)", per_redis, "bytes", note=note),
        Row("DNC: Redis import", redis_s, "s", note=note),
        Row("DNC: embedded SQLite file per number", per_file, "bytes", note=note),
        Row("DNC: embedded in-memory index per number (RSS)", per_index, "bytes", note=note),
        Row("DNC: embedded import", embedded_s, "s", note=note),
        Row("DNC: embedded index lookup", lookup_ns, "ns"),
    ]


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else N):
        print(f"{row.what}: {row.value:.2f} {row.unit}  {row.note}")
