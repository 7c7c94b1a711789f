"""Open-loop pacing and what a run came to, all pure: ``Schedule`` (when each request is due),
``Histogram`` (percentiles), ``Tally`` (counts of one run or of its measured part),
``summarise`` (a ``Report``), ``render_table`` (the final table) and ``progress_line`` (the
live line)."""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Sequence

import msgspec

from .options import Loop, Plan

__all__ = [
    "LATE_MS",
    "Ends",
    "Failure",
    "Histogram",
    "Latency",
    "Progress",
    "Report",
    "Schedule",
    "Tally",
    "progress_line",
    "render_table",
    "summarise",
]

LATE_MS = 1.0
"""An open-loop request that starts this much after its scheduled time is counted as late:
the generator, not the server, fell behind."""
_BUSY = 0.85
"""A generator busier than this (of its one core) is said to be a likely limit."""


class Failure(enum.StrEnum):
    """A request that got no usable answer."""

    REFUSED = "connection refused"
    CONNECT = "cannot connect"
    DISCONNECTED = "server disconnected"
    TIMEOUT = "timeout"
    CONNECTION = "connection error"
    BAD_ANSWER = "answer not a decision"
    BACKLOG = "not sent: backlog full"


class Schedule(msgspec.Struct, frozen=True):
    """Open-loop pacing: request ``i`` is due at ``start_s + i / rate``."""

    rate: float
    start_s: float

    def at(self, index: int) -> float:
        return self.start_s + index / self.rate

    def due(self, now_s: float) -> int:
        """How many requests are due by ``now_s`` (the first index not due yet)."""
        if now_s < self.start_s:
            return 0
        return math.floor((now_s - self.start_s) * self.rate) + 1

    def before(self, until_s: float) -> int:
        """How many requests are due strictly before ``until_s``."""
        return max(0, math.ceil((until_s - self.start_s) * self.rate))


class Histogram:
    """Latencies in logarithmic buckets 1% wide, from 1 µs: any quantile to within 0.5%, in
    constant memory however long the run; the maximum is exact."""

    _FLOOR_MS = 0.001
    _LOG_GROWTH = math.log(1.01)

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.count = 0
        self.max_ms = 0.0

    def record(self, ms: float) -> None:
        self.counts[int(math.log(max(ms, self._FLOOR_MS) / self._FLOOR_MS) / self._LOG_GROWTH)] += 1
        self.count += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q`` quantile (the smallest latency at least ``q`` of the samples
        do not exceed), as its bucket's geometric middle, or the maximum when it falls in the
        top bucket; 0.0 for an empty histogram."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        buckets = sorted(self.counts)
        for bucket in buckets[:-1]:
            seen += self.counts[bucket]
            if seen >= rank:
                middle = self._FLOOR_MS * math.exp((bucket + 0.5) * self._LOG_GROWTH)
                return min(middle, self.max_ms)
        return self.max_ms  # the top bucket's samples are within 1% of the maximum


class Tally:
    """What the requests of a run (or of its measured part) came to."""

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        """Requests that got an HTTP answer, whatever its status."""
        self.latency = Histogram()
        self.allowed: Counter[str] = Counter()
        self.denied: Counter[str] = Counter()
        self.http_errors: Counter[int] = Counter()
        self.failures: Counter[Failure] = Counter()
        self.examples: dict[str, str] = {}
        """The first detail seen per error, to show what went wrong."""
        self.late = 0
        self.worst_late_ms = 0.0
        self.waited = 0

    @property
    def errors(self) -> int:
        return sum(self.http_errors.values()) + sum(self.failures.values())

    def decision(self, ms: float, allowed: bool, label: str) -> None:
        self.answered += 1
        self.latency.record(ms)
        (self.allowed if allowed else self.denied)[label] += 1

    def http_error(self, ms: float, status: int, detail: str) -> None:
        self.answered += 1
        self.latency.record(ms)
        self.http_errors[status] += 1
        self.examples.setdefault(f"HTTP {status}", detail)

    def failure(self, failure: Failure, detail: str) -> None:
        self.failures[failure] += 1
        self.examples.setdefault(failure.value, detail)


class Latency(msgspec.Struct, frozen=True, kw_only=True):
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """A run's figures, over its measured part (ends over the whole run)."""

    url: str
    loop: Loop
    target_rate: float | None
    concurrency: int
    measured_s: float
    warmup_s: float
    users: tuple[str, ...]
    destinations: str
    sent: int
    answered: int
    rate: float
    """Requests answered per second (any status) over the measured seconds."""
    latency: Latency | None
    """Over the answered requests; None when none was answered."""
    allowed: dict[str, int]
    denied: dict[str, int]
    http_errors: dict[int, int]
    failures: dict[str, int]
    examples: dict[str, str]
    late: int
    """Open loop: measured requests that started over ``LATE_MS`` after their time because
    the generator fell behind its schedule."""
    worst_late_ms: float
    waited: int = 0
    """Open loop: measured requests due while every connection was busy, sent over
    ``LATE_MS`` after their time: the server, not the generator, held them back (the wait
    is in their latency)."""
    errors: int
    ends_sent: int
    ends_ok: int
    ends_failed: dict[str, int]
    left_up: int
    """Allowed calls not ended (``--no-end``, or their end failed)."""
    run_s: float = 0.0
    """The whole run's wall time, warm-up and the last answers and ends included."""
    generator_cpu_s: float = 0.0
    """This process's CPU time over the run: near ``run_s``, the generator (one core, Python)
    may be what limits the rate."""
    interrupted: bool = False

    @property
    def error_pct(self) -> float:
        return 100.0 * self.errors / self.sent if self.sent else 0.0


class Ends(msgspec.Struct, kw_only=True):
    sent: int = 0
    ok: int = 0
    failed: dict[str, int] = {}
    allowed: int = 0


def summarise(tally: Tally, ends: Ends, plan: Plan, *, measured_s: float,
              users: Sequence[str], destinations: str, run_s: float = 0.0,
              generator_cpu_s: float = 0.0, interrupted: bool = False) -> Report:
    h = tally.latency
    latency = None if not h.count else Latency(
        p50_ms=h.quantile(0.5), p90_ms=h.quantile(0.9), p99_ms=h.quantile(0.99),
        p999_ms=h.quantile(0.999), max_ms=h.max_ms)
    return Report(
        url=plan.url, loop=plan.loop, target_rate=plan.rate, concurrency=plan.concurrency,
        measured_s=measured_s, warmup_s=plan.warmup_s, users=tuple(users),
        destinations=destinations, sent=tally.sent, answered=tally.answered,
        rate=tally.answered / measured_s if measured_s > 0 else 0.0, latency=latency,
        allowed=dict(tally.allowed.most_common()), denied=dict(tally.denied.most_common()),
        http_errors=dict(sorted(tally.http_errors.items())),
        failures={str(k): v for k, v in tally.failures.most_common()},
        examples=dict(tally.examples), late=tally.late,
        worst_late_ms=tally.worst_late_ms, waited=tally.waited, errors=tally.errors,
        ends_sent=ends.sent, ends_ok=ends.ok, ends_failed=dict(ends.failed),
        left_up=ends.allowed - ends.ok, run_s=run_s, generator_cpu_s=generator_cpu_s,
        interrupted=interrupted,
    )


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _share(count: int, total: int) -> str:
    return f"{100.0 * count / total:5.1f}%" if total else ""


def render_table(report: Report) -> str:
    """The final table (plain text, for stdout)."""
    r = report
    if r.loop is Loop.OPEN:
        how = f"open loop at {r.target_rate:,.0f} req/s over {r.concurrency} connections"
    else:
        how = f"closed loop (--max), {r.concurrency} connections"
    users = ", ".join(r.users[:5]) + (f" and {len(r.users) - 5} more" if len(r.users) > 5 else "")
    out = [
        f"callgate loadtest: {r.url}, {how}",
        f"{r.measured_s:.1f} s measured after {r.warmup_s:g} s of warm-up"
        + (" (interrupted)" if r.interrupted else "")
        + f"; users {users}; {r.destinations}",
        "",
    ]
    target = f"   (target {r.target_rate:,.0f})" if r.target_rate is not None else ""
    out.append(f"{'requests/s':<24}{r.rate:>12,.1f}{target}")
    out.append(f"{'requests sent':<24}{r.sent:>12,}")
    out.append(f"{'answered':<24}{r.answered:>12,}")
    if r.late:
        worst = _ms(r.worst_late_ms)
        out.append(f"{f'started over {LATE_MS:g} ms late':<24}{r.late:>12,}   (worst {worst} ms: "
                   "the generator fell behind)")
    if r.waited:
        out.append(f"{'waited for a connection':<24}{r.waited:>12,}   (over {LATE_MS:g} ms, all "
                   f"{r.concurrency} busy: the server was slow)")
    if r.run_s > 0:
        busy = r.generator_cpu_s / r.run_s
        out.append(f"{'generator CPU':<24}{busy:>11.0%}    of one core"
                   + (": it may be what limits the rate; run it on another machine"
                      if busy >= _BUSY else ""))
    out.append("")
    names = ("p50", "p90", "p99", "p99.9", "max")
    out.append(f"{'latency, ms':<16}" + "".join(f"{n:>9}" for n in names))
    if r.latency is None:
        out.append(f"{'':<16}{'(no answer)':>9}")
    else:
        lat = r.latency
        values = (lat.p50_ms, lat.p90_ms, lat.p99_ms, lat.p999_ms, lat.max_ms)
        out.append(f"{'':<16}" + "".join(f"{_ms(v):>9}" for v in values))
    out.append("  from each request's " + ("scheduled send time (open loop)"
                                          if r.loop is Loop.OPEN else "send"))
    out.append("")
    rows: list[tuple[str, int]] = [("allowed", sum(r.allowed.values()))]
    rows += [(f"  {rule}", n) for rule, n in r.allowed.items()]
    rows.append(("denied", sum(r.denied.values())))
    rows += [(f"  {reason}", n) for reason, n in r.denied.items()]
    rows.append(("HTTP errors", sum(r.http_errors.values())))
    rows += [(f"  {status}", n) for status, n in r.http_errors.items()]
    rows.append(("no answer", sum(r.failures.values())))
    rows += [(f"  {kind}", n) for kind, n in r.failures.items()]
    out.append(f"{'outcome':<24}{'count':>12}{'share':>9}")
    out += [f"{label:<24}{n:>12,}   {_share(n, r.sent)}".rstrip() for label, n in rows]
    if r.ends_sent or r.left_up:
        out.append("")
        failed = sum(r.ends_failed.values())
        tail = f"   {r.ends_ok:,} ok" + (f", {failed:,} failed" if failed else "")
        out.append(f"{'ends sent':<24}{r.ends_sent:>12,}{tail} (warm-up included)")
        out += [f"  {kind:<22}{n:>12,}" for kind, n in r.ends_failed.items()]
    if r.left_up:
        out.append(f"{'calls left up':<24}{r.left_up:>12,}   (they hold a channel until they "
                   "end or their lease expires)")
    if r.examples:
        out += ["", "first error of each kind:"]
        out += [f"  {kind}: {detail}" for kind, detail in r.examples.items()]
    return "\n".join(out).rstrip() + "\n"


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    elapsed_s: float
    sent: int
    answered: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    warming: bool
    done: bool = False
    """The last line: the rate and percentiles are then the whole run's."""


def progress_line(p: Progress) -> str:
    """The live line (stderr, once a second): figures of the whole run so far, rate and
    latency of the last second."""
    latency = ("p50 -  p99 -" if p.p50_ms is None or p.p99_ms is None
               else f"p50 {_ms(p.p50_ms)} ms  p99 {_ms(p.p99_ms)} ms")
    return (f"{p.elapsed_s:6.1f} s  sent {p.sent:,}  answered {p.answered:,}  "
            f"{p.rate:,.0f}/s  {latency}  errors {p.errors:,}"
            + ("  (warm-up)" if p.warming else "  (done)" if p.done else ""))
