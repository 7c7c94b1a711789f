"""The full decision in process (normalise, policy, lease, resolve) on the embedded store,
without HTTP, beside phonenumbers' parse + validate + type cost for the same numbers.

The embedded store answers an admitted dial only once its lease row is committed by the
SQLite writer thread (group commit). So one dial awaited alone includes a thread round trip
and a commit of its own, while many dials in flight share commits. Two figures, both shown:

* throughput: 64 dials in flight (64 workers, each dialling again once answered, as 64
  connections would), wall time / decisions: the cost per decision a loaded process pays;
  this is what the targets are judged on;
* latency: one dial awaited at a time, median per dial: what a lone client waits.

Every round runs on a fresh store, so no user ever reaches their max channels (a
``channel_limit`` denial writes nothing and would flatter the figures); every decision must be
allowed, else the harness fails.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from callerid import AccountConfig, CallingHours, Reason
from callgate.assembly import assemble
from engine.decide import Engine
from engine.errors import StoreUnavailable
from engine.metrics import Metrics
from engine.numbers import load_metadata, normalise
from engine.store import EmbeddedStore
from engine.wire import DialRequest

from .dnc_memory import numbers as dnc_numbers
from .micro import phonenumbers_cost_us
from .report import Row, median, paired_ratio
from .workload import BENCH_USER, FreshNumbers, bench_account

__all__ = ["Stack", "bench_engine", "run"]

FRESH_RATIO_TARGET = 1.5
REPEATED_TARGET_US = 30.0
CHECKS_RATIO_TARGET = 1.1
DNC_LISTED = 1_000_000
IN_FLIGHT = 64


@dataclass(frozen=True, slots=True)
class Stack:
    engine: Engine
    store: EmbeddedStore
    metrics: Metrics


@asynccontextmanager
async def bench_engine(config: AccountConfig) -> AsyncIterator[Stack]:
    """An engine over a new embedded store in a temporary directory, assembled as the test
    fixtures and ``callgate serve`` assemble it (metrics included: the server pays for them
    too)."""
    with tempfile.TemporaryDirectory(prefix="callgate-bench-") as tmp:
        store = EmbeddedStore(Path(tmp) / "data", exclusive=True)
        await store.open()
        try:
            parts = assemble(store)
            await parts.service.put(config)
            yield Stack(parts.engine, store, parts.metrics)
        finally:
            await store.close()


@dataclass
class Tally:
    """Every dial's latency, and how many hit the engine's store deadline (answered
    ``store_unavailable``, HTTP 503, or raised as ``StoreUnavailable``)."""

    timeouts: int = 0
    dials: int = 0
    latencies_s: list[float] = field(default_factory=list)


async def _dial(engine: Engine, account: str, request: DialRequest, tally: Tally) -> None:
    started = time.perf_counter()
    tally.dials += 1
    try:
        decision = await engine.dial(account, request)
    except StoreUnavailable:  # the engine raises it, or answers it as a denial (below)
        tally.timeouts += 1
        return
    finally:
        tally.latencies_s.append(time.perf_counter() - started)
    if decision.reason == Reason.STORE_UNAVAILABLE:
        tally.timeouts += 1
        return
    if not decision.allowed:
        raise RuntimeError(f"bench: {request.to} was denied ({decision.reason}: {decision.detail})")


async def in_flight(
    engine: Engine, account: str, requests: Sequence[DialRequest], tally: Tally
) -> tuple[float, float]:
    """(wall µs, event-loop-thread CPU µs) per decision, ``IN_FLIGHT`` dials at a time: as
    many workers, each dialling the next request once its last is answered, as a server's
    connections do (one task each). A task per dial would add its own creation and scheduling,
    about a quarter of a repeated dial's instructions, which no decision costs."""
    wall, cpu = time.perf_counter(), time.thread_time()
    pending = iter(requests)

    async def worker() -> None:
        for request in pending:
            await _dial(engine, account, request, tally)

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    n = len(requests)
    return (time.perf_counter() - wall) / n * 1e6, (time.thread_time() - cpu) / n * 1e6


async def one_at_a_time(
    engine: Engine, account: str, requests: Sequence[DialRequest], tally: Tally
) -> float:
    """Median µs per dial, each awaited before the next is sent."""
    first = len(tally.latencies_s)
    for request in requests:
        await _dial(engine, account, request, tally)
    return statistics.median(tally.latencies_s[first:]) * 1e6


@dataclass
class Series:
    baseline: list[float] = field(default_factory=list)
    fresh_flight: list[float] = field(default_factory=list)
    fresh_cpu: list[float] = field(default_factory=list)
    fresh_seq: list[float] = field(default_factory=list)
    repeat_flight: list[float] = field(default_factory=list)
    repeat_seq: list[float] = field(default_factory=list)
    checked_flight: list[float] = field(default_factory=list)
    """The fresh dials again, with calling hours and a do-not-call list to look up."""
    flight: Tally = field(default_factory=Tally)
    seq: Tally = field(default_factory=Tally)


async def _checked_round(
    config: AccountConfig, numbers: list[str], warm: list[str], listed: list[str], s: Series
) -> None:
    """The fresh dials in flight under calling hours that allow every minute (the check runs
    in full, never denies) and a do-not-call list of ``listed`` (none of them dialled)."""
    dialled = {d.e164 for n in numbers + warm if (d := normalise(n, "US")) is not None}
    hours = msgspec.structs.replace(config, calling_hours=CallingHours(
        windows="mon-sun 00:00-24:00"))
    async with bench_engine(hours) as stack:
        await stack.store.dnc_add(config.id, [n for n in listed if n not in dialled])
        requests = [DialRequest(user=BENCH_USER, to=n) for n in warm]
        await in_flight(stack.engine, config.id, requests, Tally())
        normalise.cache_clear()
        requests = [DialRequest(user=BENCH_USER, to=n) for n in numbers]
        s.checked_flight.append((await in_flight(stack.engine, config.id, requests,
                                                 s.flight))[0])


async def _callgate_round(
    config: AccountConfig, numbers: list[str], seq_numbers: list[str], warm: list[str], s: Series
) -> None:
    def dials(to: Sequence[str]) -> list[DialRequest]:
        return [DialRequest(user=BENCH_USER, to=n) for n in to]

    async with bench_engine(config) as stack:
        engine = stack.engine
        # Warm-up on numbers of its own: first-call costs (SQLite pages, code paths) out.
        await in_flight(engine, config.id, dials(warm), Tally())
        await one_at_a_time(engine, config.id, dials(warm[:64]), Tally())

        normalise.cache_clear()
        wall, cpu = await in_flight(engine, config.id, dials(numbers), s.flight)
        s.fresh_flight.append(wall)
        s.fresh_cpu.append(cpu)
        normalise.cache_clear()
        s.fresh_seq.append(await one_at_a_time(engine, config.id, dials(seq_numbers), s.seq))

        # One destination dialled again and again: the parse is cached after the first.
        again = dials(numbers[:1])
        s.repeat_flight.append(
            (await in_flight(engine, config.id, again * len(numbers), s.flight))[0]
        )
        s.repeat_seq.append(
            await one_at_a_time(engine, config.id, again * len(seq_numbers), s.seq)
        )


async def _rounds(rounds: int, per_round: int, seq_per_round: int) -> Series:
    load_metadata()
    config = bench_account()
    fresh = FreshNumbers(seed=2)
    listed = dnc_numbers(DNC_LISTED)
    s = Series()
    for n in range(rounds):
        numbers = fresh.take(per_round)
        seq_numbers = fresh.take(seq_per_round)
        warm = fresh.take(512)
        if n % 2 == 0:  # alternate the order, so drift within a round favours neither side
            s.baseline.append(phonenumbers_cost_us(numbers))
            await _callgate_round(config, numbers, seq_numbers, warm, s)
        else:
            await _callgate_round(config, numbers, seq_numbers, warm, s)
            s.baseline.append(phonenumbers_cost_us(numbers))
        await _checked_round(config, numbers, warm, listed, s)
        print(
            f"  in-process round {n + 1}/{rounds}: phonenumbers {s.baseline[-1]:.1f} µs; "
            f"fresh {s.fresh_flight[-1]:.1f} µs/decision in flight, "
            f"{s.fresh_seq[-1]:.0f} µs one at a time; repeated {s.repeat_flight[-1]:.1f} / "
            f"{s.repeat_seq[-1]:.0f} µs",
            file=sys.stderr,
            flush=True,
        )
    return s


def _deadline_note(tally: Tally, label: str) -> str:
    worst = max(tally.latencies_s, default=0.0) * 1e3
    p99 = statistics.quantiles(tally.latencies_s, n=100)[98] * 1e3 if tally.latencies_s else 0.0
    text = f"{label}: per-dial latency p99 {p99:.1f} ms, max {worst:.1f} ms"
    if tally.timeouts:
        text += (
            f"; {tally.timeouts} of {tally.dials} dials hit the engine's store deadline "
            "(store_unavailable, HTTP 503)"
        )
    return text


def run(rounds: int = 5, per_round: int = 10_000, seq_per_round: int = 2_000) -> list[Row]:
    s = asyncio.run(_rounds(rounds, per_round, seq_per_round))
    base = median(s.baseline)
    pn = "phonenumbers"
    target_fresh = f"<= {FRESH_RATIO_TARGET}x baseline"

    def row(what: str, values: list[float], target: str = "", met: bool | None = None,
            note: str = "") -> Row:
        return Row(what, median(values), "µs", base, pn, target, met, note,
                   paired_ratio(values, s.baseline))

    fresh_ratio = paired_ratio(s.fresh_flight, s.baseline)
    return [
        row(
            f"dial, fresh dest, {IN_FLIGHT} in flight: wall/decision",
            s.fresh_flight,
            target_fresh,
            fresh_ratio <= FRESH_RATIO_TARGET,
            _deadline_note(s.flight, "all in-flight dials, fresh and repeated"),
        ),
        row("  fresh: event-loop thread CPU/decision", s.fresh_cpu),
        row("  fresh, one at a time: median latency", s.fresh_seq,
            note=_deadline_note(s.seq, "all one-at-a-time dials")),
        row(
            f"dial, repeated dest, {IN_FLIGHT} in flight: wall/decision",
            s.repeat_flight,
            f"< {REPEATED_TARGET_US:.0f} µs",
            median(s.repeat_flight) < REPEATED_TARGET_US,
        ),
        row("  repeated, one at a time: median latency", s.repeat_seq),
        Row(f"dial, fresh dest, {IN_FLIGHT} in flight, with calling hours and a "
            f"{DNC_LISTED:,}-number do-not-call list", median(s.checked_flight), "µs",
            median(s.fresh_flight), "the same without", f"<= {CHECKS_RATIO_TARGET}x",
            paired_ratio(s.checked_flight, s.fresh_flight) <= CHECKS_RATIO_TARGET,
            "issue 19: the calling-hours and do-not-call checks on the whole dial path",
            paired_ratio(s.checked_flight, s.fresh_flight)),
    ]
