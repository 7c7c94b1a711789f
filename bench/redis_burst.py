"""A predictive dialer's burst on the Redis store: 1,000 ``/v1/dial`` released at once against
4 processes on one port (``--workers 4``), beside the Redis ceiling app
(``redis_baseline_app``, one EVALSHA per request) under the same burst.

Each round starts a fresh ``redis-server`` and fresh processes for each side, ABBA order. The
1,000 requests are all opened first and released by one event; each is timed from its
release to its answer. callgate's account has one user with 10 channels, so a right answer is
10 allowed and 990 ``channel_limit``: a 503 is a dial the burst cost a decision. The ceiling
answers 200 to every request it gets.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import msgspec

from engine import configfile

from .http import _callgate, _server, _serving_demo, free_port
from .redis_http import CALLGATE_URL_OPTIONS, redis_server
from .report import Row, median
from .workload import demo_config

__all__ = ["run"]

BURST = 1000
WORKERS = 4
USER = "ana"
MAX_CHANNELS = 10


async def _burst(url: str, token: str) -> tuple[Counter[str], float]:
    """Fire ``BURST`` dials at once; the outcomes and the p99 latency (ms)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    go = asyncio.Event()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> tuple[str, float]:
            body = msgspec.json.encode({"user": USER, "to": f"+1212555{i:04d}"})
            await go.wait()
            started = time.perf_counter()
            try:
                async with session.post(f"{url}/v1/dial", data=body, headers={
                        **headers, "Content-Type": "application/json"}) as response:
                    answer = msgspec.json.decode(await response.read())
                    status = response.status
            except aiohttp.ClientError:
                return "error", time.perf_counter() - started
            elapsed = time.perf_counter() - started
            if status == 503:
                return "503", elapsed
            if status != 200:
                return str(status), elapsed
            if not isinstance(answer, dict) or ("reason" not in answer and "rule" not in answer):
                return "decided", elapsed  # the ceiling's answer
            return ("allowed" if answer["allowed"] else answer.get("reason", "denied")), elapsed

        tasks = [asyncio.create_task(one(i)) for i in range(BURST)]
        await asyncio.sleep(0.3)
        go.set()
        results = await asyncio.gather(*tasks)
    latencies = sorted(seconds for _, seconds in results)
    return Counter(kind for kind, _ in results), latencies[int(0.99 * len(latencies))] * 1000


def _answered(outcomes: Counter[str]) -> int:
    """Requests answered 200 (whatever the answer said)."""
    return sum(
        n for kind, n in outcomes.items() if kind not in ("503", "error") and not kind.isdigit()
    )


def _round(tmp: Path, account: Path, which: str) -> tuple[Counter[str], float]:
    with redis_server(tmp) as store:
        port = free_port()
        if which == "ceiling":
            argv = [sys.executable, "-m", "bench.redis_baseline_app", "--port", str(port),
                    "--redis-url", store.url, "--workers", str(WORKERS)]
            with _server(argv, port) as server:
                return asyncio.run(_burst(server.url, ""))
        argv = [_callgate(), "serve", "--redis-url", store.url + CALLGATE_URL_OPTIONS,
                "--port", str(port), "--demo", str(account), "--workers", str(WORKERS)]
        with _serving_demo(argv, port) as server:
            time.sleep(1.0)  # every worker has loaded the account and connected
            return asyncio.run(_burst(server.url, server.token))


def run(rounds: int = 3) -> list[Row]:
    demo = demo_config()
    users = tuple(msgspec.structs.replace(u, max_channels=MAX_CHANNELS) if u.id == USER else u
                  for u in demo.users)
    config = msgspec.structs.replace(demo, users=users, max_channels=None)
    results: dict[str, list[tuple[Counter[str], float]]] = {"ceiling": [], "callgate": []}
    with tempfile.TemporaryDirectory(prefix="callgate-bench-burst-") as name:
        tmp = Path(name)
        account = tmp / "burst-account.toml"
        account.write_bytes(configfile.encode(config, "toml"))
        for n in range(rounds):
            for which in ("ceiling", "callgate") if n % 2 == 0 else ("callgate", "ceiling"):
                results[which].append(_round(tmp, account, which))
            print(f"  burst round {n + 1}/{rounds}: "
                  + "; ".join(f"{k} {dict(v[-1][0])}, p99 {v[-1][1]:.0f} ms"
                              for k, v in results.items()),
                  file=sys.stderr, flush=True)
    ours, ceiling = results["callgate"], results["ceiling"]
    decided = [c["allowed"] + c["channel_limit"] for c, _ in ours]
    exact = all(c["allowed"] == MAX_CHANNELS for c, _ in ours)
    return [
        Row(f"{BURST:,} dials at once, --workers {WORKERS}: real decisions (median)",
            median(decided), "of 1,000", target=">= 950 (95%)",
            met=min(decided) >= 0.95 * BURST and exact,
            note=f"every round: {', '.join(str(d) for d in decided)}; allowed exactly "
                 f"{MAX_CHANNELS} in every round: {exact}; the rest 503 "
                 f"(ceiling: {', '.join(str(_answered(c)) for c, _ in ceiling)} answered 200)"),
        Row("  same: p99 latency from release", median(p for _, p in ours), "ms",
            baseline=median(p for _, p in ceiling), baseline_what="the ceiling app, same burst"),
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row.what}: {row.value:.0f} {row.unit} {row.note}")
