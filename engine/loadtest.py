"""``callgate loadtest``: a load generator for ``POST /v1/dial``, to size a campaign.

Two ways to load a server:

* **open loop** (``--rate N``): request ``i`` is due at ``start + i / N``, whatever the server
  does, and is timed from that *scheduled* time to the end of its answer. A server that stalls
  for a second shows N slow answers, not a second in which nothing was asked: there is no
  coordinated omission. A request due when all ``--concurrency`` connections are busy waits
  for one, and the wait is in its latency. The generator itself can fall behind (it is Python,
  often on the server's machine): requests that started over ``LATE_MS`` after their time are
  counted and shown.
* **closed loop** (``--max``): ``--concurrency`` workers, each sending its next dial as soon as
  its previous one is answered: the most the server answers at that concurrency, timed from
  each actual send.

Each allowed call is ended with outcome ``answered`` ``--hold`` seconds after its answer (so a
long run gives its channels back instead of meeting ``channel_limit``), untimed, over
connections of their own (up to ``--concurrency`` more), so that ends neither wait behind
dials nor take their connections; ``--no-end`` keeps the calls up. Calls still held when the
run stops are ended then. Nothing raises on a server's failure: connection errors, timeouts
and error statuses are counted and shown; the exit status says whether more than
``--max-errors`` of the requests failed. The first ``--warmup`` seconds are sent the same way
and left out of the figures.

The pure parts are plain functions and classes that the tests call directly: ``plan_from``
(options), ``NumberSource`` (fresh valid numbers), ``Destinations`` (fresh or repeated),
``Schedule`` (open-loop pacing), ``Histogram`` (percentiles), ``Tally`` / ``summarise`` /
``render_table`` / ``progress_line``. The I/O is ``_setup`` (what the server says about the
token and the account) and ``_Run`` (two aiohttp client sessions: dials, ends).
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import hashlib
import math
import os
import random
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiohttp
import msgspec
import phonenumbers
from yarl import URL

from callerid import Outcome

from .errors import ConfigurationError
from .numbers import SUPPORTED_REGIONS, load_metadata, normalise
from .wire import DialRequest, EndRequest

__all__ = [
    "Destinations",
    "Failure",
    "Histogram",
    "Latency",
    "Loop",
    "NumberSource",
    "Plan",
    "Progress",
    "Report",
    "Schedule",
    "Tally",
    "add_arguments",
    "main",
    "plan_from",
    "progress_line",
    "read_destinations",
    "render_table",
    "summarise",
]

LATE_MS = 1.0
"""An open-loop request that starts this much after its scheduled time is counted as late:
the generator, not the server, fell behind."""
_EARLY_S = 0.0005
"""Timers wake up to a millisecond late, so the scheduler wakes half a millisecond early; a
request sent before its time is timed from its actual send."""
BACKLOG = 100_000
"""The most open-loop requests queued for a connection; past it, due requests are not sent
and are counted (``Failure.BACKLOG``), so that a dead server cannot eat the memory. (Requests
queued longer than ``--timeout`` are dropped as timeouts when their turn comes.)"""
_RECENT = 10_000
"""How many dialled numbers a repeated dial picks from."""
_PREFILL_MAX = 50_000
"""The most generated numbers made before a run (about a second's work); later ones are made
as they are needed."""
_PREFILL_CLOSED = 20_000
_BUSY = 0.85
"""A generator busier than this (of its one core) is said to be a likely limit."""
_DEFAULT_URL = "http://127.0.0.1:8080"


class Loop(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Failure(enum.StrEnum):
    """A request that got no usable answer."""

    REFUSED = "connection refused"
    CONNECT = "cannot connect"
    DISCONNECTED = "server disconnected"
    TIMEOUT = "timeout"
    CONNECTION = "connection error"
    BAD_ANSWER = "answer not a decision"
    BACKLOG = "not sent: backlog full"


# -- options ---------------------------------------------------------------------------------


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A load test's settings, checked (``plan_from``)."""

    url: str
    token: str
    loop: Loop
    rate: float | None
    """Requests per second (open loop); None for the closed loop."""
    duration_s: float
    warmup_s: float
    concurrency: int
    users: tuple[str, ...] | None
    """None: the token's own user (a user's token)."""
    destinations_file: Path | None
    regions: tuple[str, ...] | None
    """None: the account's plan countries when the token may read them, else US."""
    repeat_share: float
    hold_s: float
    end_calls: bool
    timeout_s: float
    max_errors_pct: float
    seed: int | None
    json: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every ``callgate loadtest`` option to ``parser``. Values stay text: ``plan_from``
    reads and checks them, so a bad one is one ``ConfigurationError`` line."""
    add = parser.add_argument
    add("--url", metavar="URL",
        help=f"base URL of a callgate server (env CALLGATE_URL; default {_DEFAULT_URL})")
    add("--token", metavar="TOKEN",
        help="a service token, or a user's token (dials as that user only) (env CALLGATE_TOKEN)")
    add("--rate", metavar="N",
        help="open loop: N dials per second at fixed intervals, timed from each scheduled time")
    add("--max", action="store_true",
        help="closed loop: as fast as --concurrency connections allow")
    add("--duration", metavar="S", default="10", help="measured seconds (default 10)")
    add("--warmup", metavar="S", default="1",
        help="seconds sent first and left out of the figures (default 1)")
    add("--concurrency", metavar="N", default="32", help="connections (default 32)")
    add("--users", metavar="A,B,...",
        help="user ids to dial as, picked at random per dial (default with a user's token: "
        "its user; required with a service token)")
    add("--destinations", metavar="FILE",
        help="numbers to dial, one a line, in turn (default: generated valid numbers)")
    add("--region", metavar="R[,R...]",
        help="regions of the generated numbers (default: the account's plan countries when "
        "the token may read the account, else US)")
    add("--repeat-share", metavar="F",
        help="share of generated dials to a number dialled already (default 0.3)")
    add("--hold", metavar="S", default="0",
        help="end each allowed call S seconds after its answer, outcome answered (default 0)")
    add("--no-end", action="store_true", help="never end the allowed calls")
    add("--timeout", metavar="S", default="5", help="per-request timeout (default 5)")
    add("--max-errors", metavar="P%", default="1%",
        help="exit status 1 when more than P%% of the requests fail (default 1%%)")
    add("--seed", metavar="N", help="seed of the users' and numbers' choice (default random)")
    add("--json", action="store_true", help="print the report as JSON instead of the table")


def _number(flag: str, raw: str, what: str, low: float, high: float,
            *, low_open: bool = False) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (low < value if low_open else low <= value) or not value <= high:
        bound = f"over {low:,g}" if low_open else f"from {low:,g}"
        raise ConfigurationError(f"{flag}: expected {what} {bound} to {int(high):,}, "
                                 f"got {raw!r}")
    return value


def _whole(flag: str, raw: str, what: str, low: int, high: int) -> int:
    value = _number(flag, raw, what, low, high)
    if not value.is_integer():
        raise ConfigurationError(f"{flag}: expected a whole number of {what}, got {raw!r}")
    return int(value)


def _listed(flag: str, raw: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    if not items:
        raise ConfigurationError(f"{flag}: expected a comma-separated list, got {raw!r}")
    return items


def plan_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Plan:
    """The checked settings of ``args`` (from ``add_arguments``), with ``CALLGATE_URL`` and
    ``CALLGATE_TOKEN`` from ``environ``; ``ConfigurationError`` names the first bad one."""
    url = (args.url or environ.get("CALLGATE_URL") or _DEFAULT_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"--url: expected http://HOST[:PORT], got {url!r}")
    token = args.token or environ.get("CALLGATE_TOKEN") or ""
    if not token:
        raise ConfigurationError("--token (or CALLGATE_TOKEN) is needed: a service token or "
                                 "a user's token of the account to load")
    if (args.rate is None) == (not args.max):
        raise ConfigurationError("give --rate N (open loop) or --max (closed loop), not "
                                 + ("both" if args.max else "neither"))
    rate = None if args.max else _number("--rate", args.rate, "requests per second", 0, 1e6,
                                         low_open=True)
    regions = None
    if args.region is not None:
        regions = tuple(r.upper() for r in _listed("--region", args.region))
        for region in regions:
            if region not in SUPPORTED_REGIONS or region == "001":
                raise ConfigurationError(f"--region: {region!r} is not an ISO region "
                                         "phonenumbers knows (US, GB, FR, ...)")
    file = None if args.destinations is None else Path(args.destinations)
    if file is not None and (regions is not None or args.repeat_share is not None):
        flag = "--region" if regions is not None else "--repeat-share"
        raise ConfigurationError(f"{flag} is for generated numbers; --destinations dials "
                                 "the file's numbers in turn")
    repeat = 0.3 if args.repeat_share is None else _number(
        "--repeat-share", args.repeat_share, "a share", 0, 1)
    hold = _number("--hold", args.hold, "seconds", 0, 86_400)
    if args.no_end and hold > 0:
        raise ConfigurationError("--hold is how long before a call is ended; --no-end ends "
                                 "none: give one of them")
    max_errors = args.max_errors.strip()
    seed = None
    if args.seed is not None:
        try:
            seed = int(args.seed)
        except ValueError:
            raise ConfigurationError(f"--seed: expected an integer, got {args.seed!r}") from None
    return Plan(
        url=url, token=token, loop=Loop.CLOSED if args.max else Loop.OPEN, rate=rate,
        duration_s=_number("--duration", args.duration, "seconds", 0, 1e6, low_open=True),
        warmup_s=_number("--warmup", args.warmup, "seconds", 0, 3600),
        concurrency=_whole("--concurrency", args.concurrency, "connections", 1, 10_000),
        users=None if args.users is None else _listed("--users", args.users),
        destinations_file=file, regions=regions, repeat_share=repeat, hold_s=hold,
        end_calls=not args.no_end,
        timeout_s=_number("--timeout", args.timeout, "seconds", 0, 3600, low_open=True),
        max_errors_pct=_number("--max-errors", max_errors.removesuffix("%"), "a percentage",
                               0, 100),
        seed=seed, json=bool(args.json),
    )


def read_destinations(text: str, source: str) -> tuple[str, ...]:
    """The numbers of a ``--destinations`` file: one a line, blank lines and ``#`` comments
    skipped, sent as written (the server normalises them)."""
    numbers = tuple(s for line in text.splitlines() if (s := line.split("#")[0].strip()))
    if not numbers:
        raise ConfigurationError(f"--destinations {source}: no number in it")
    return numbers


# -- destinations ----------------------------------------------------------------------------

_DIALLABLE = frozenset({"fixed_line", "mobile", "fixed_line_or_mobile"})


class _Block(msgspec.Struct, frozen=True):
    """Numbers ``+{prefix}`` followed by ``free`` digits, walked by a permutation of
    ``10**free`` so that none comes twice."""

    prefix: str
    free: int
    region: str


def _example_numbers(region: str) -> list[tuple[int, str]]:
    """(country code, national significant number) of phonenumbers' example fixed-line and
    mobile numbers of ``region``: the seeds of its generated numbers. (The only use of
    phonenumbers here: what is valid is ``normalise``'s to say, as on the server.)"""
    out = []
    for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None and example.country_code is not None:
            out.append((example.country_code,
                        phonenumbers.national_significant_number(example)))
    return out


def _diallable(number: str, region: str) -> bool:
    dest = normalise(number, region)
    return dest is not None and dest.region == region and dest.kind in _DIALLABLE


_STEP = 6_364_136_223_846_793_005  # odd, not a multiple of 5: coprime to every 10**k


def _candidate(block: _Block, j: int, offset: int) -> str:
    size = 10**block.free
    return f"+{block.prefix}{(offset + j * _STEP) % size:0{block.free}d}"


def _blocks(region: str, sample: int = 200, min_valid: float = 0.25) -> list[_Block]:
    """Per example number, the widest block (fewest leading digits kept) in which at least
    ``min_valid`` of a sample are valid fixed-line or mobile numbers of ``region``; nested
    blocks are dropped so that no number can come from two."""
    found: list[_Block] = []
    for code, national in _example_numbers(region):
        for keep in range(1, len(national)):
            free = min(len(national) - keep, 9)
            block = _Block(f"{code}{national[:len(national) - free]}", free, region)
            tries = min(sample, 10**free)
            valid = sum(_diallable(_candidate(block, j, 0), region) for j in range(tries))
            if valid >= max(1, min_valid * tries):
                found.append(block)
                break
    found.sort(key=lambda b: (len(b.prefix), b.prefix))
    kept: list[_Block] = []
    for block in found:
        total = len(block.prefix) + block.free
        if not any(block.prefix.startswith(k.prefix) and total == len(k.prefix) + k.free
                   for k in kept):
            kept.append(block)
    return kept


class NumberSource:
    """Valid fixed-line and mobile numbers (E.164) of ``regions``, taken in turn from each
    region, none given twice until a region's blocks are exhausted (tens of millions of
    numbers for most regions). Checked with callgate's own ``normalise``: every number is one
    the server reads as diallable in that region (a premium-rate or shared-cost number would
    be a ``permission_denied`` of no interest here). ``seed`` None: a random start, so that
    two runs dial different numbers. Raises ``ConfigurationError`` for a region with no such
    numbers."""

    def __init__(self, regions: Sequence[str], seed: int | None = None) -> None:
        self._regions: list[list[_Block]] = []
        for region in regions:
            blocks = _blocks(region)
            if not blocks:
                raise ConfigurationError(f"--region {region}: cannot generate valid numbers "
                                         "there; give --destinations FILE")
            self._regions.append(blocks)
        self._taken = [0] * len(self._regions)
        self._offset = random.Random(seed).randrange(10**9)
        self._next = 0
        self._ready: deque[str] = deque()

    def __iter__(self) -> Iterator[str]:
        return self

    def prefill(self, count: int) -> None:
        """Make the next ``count`` numbers now, before a run, so that the run does not spend
        its time on them (each costs a few ``normalise`` calls)."""
        self._ready.extend(self._make() for _ in range(count))

    def __next__(self) -> str:
        return self._ready.popleft() if self._ready else self._make()

    def _make(self) -> str:
        which = self._next % len(self._regions)
        self._next += 1
        blocks = self._regions[which]
        for _ in range(100_000):
            n = self._taken[which]
            self._taken[which] = n + 1
            block = blocks[n % len(blocks)]
            number = _candidate(block, n // len(blocks), self._offset)
            if _diallable(number, block.region):
                return number
        raise RuntimeError(f"no valid number in 100,000 candidates in {blocks[0].region}")


class Destinations:
    """What each dial calls: with a list, its numbers in turn; else a fresh number, or with
    probability ``repeat_share`` one of the last ``_RECENT`` numbers dialled (as a dialer
    retries its list: callgate's normalise and sticky caches meet them again)."""

    def __init__(self, *, listed: Sequence[str] = (), fresh: Iterator[str] | None = None,
                 repeat_share: float = 0.0) -> None:
        if not listed and fresh is None:
            raise ValueError("Destinations needs a list or a source of fresh numbers")
        self._listed = tuple(listed)
        self._fresh = fresh
        self._repeat_share = repeat_share
        self._recent: list[str] = []
        self._next = 0

    def take(self, rng: random.Random) -> str:
        if self._listed:
            number = self._listed[self._next % len(self._listed)]
            self._next += 1
            return number
        assert self._fresh is not None
        if self._recent and rng.random() < self._repeat_share:
            return self._recent[rng.randrange(len(self._recent))]
        number = next(self._fresh)
        if len(self._recent) < _RECENT:
            self._recent.append(number)
        else:
            self._recent[self._next % _RECENT] = number
            self._next += 1
        return number


# -- pacing and statistics -------------------------------------------------------------------


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
    """Open loop: measured requests that started over ``LATE_MS`` after their time."""
    worst_late_ms: float
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
        worst_late_ms=tally.worst_late_ms, errors=tally.errors,
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
        out.append(f"{'started over 1 ms late':<24}{r.late:>12,}   (worst {worst} ms: the "
                   "generator fell behind)")
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


# -- the run (I/O) ---------------------------------------------------------------------------


class _Answer(msgspec.Struct):
    allowed: bool
    call_id: str
    rule: str | None = None
    reason: str | None = None


class _Problem(msgspec.Struct):
    title: str = ""
    detail: str = ""


class _AccountOut(msgspec.Struct):
    default_region: str
    plan_countries: list[str]


class _TokenOut(msgspec.Struct):
    id: str
    user: str | None = None


class _TokenPage(msgspec.Struct):
    items: list[_TokenOut]
    next_cursor: str | None = None


_answer = msgspec.json.Decoder(_Answer)
_problem = msgspec.json.Decoder(_Problem)
_account = msgspec.json.Decoder(_AccountOut)
_tokens = msgspec.json.Decoder(_TokenPage)
_encode = msgspec.json.Encoder().encode
_END_BODY = _encode(EndRequest(outcome=Outcome.ANSWERED))


def _problem_text(status: int, body: bytes) -> str:
    try:
        problem = _problem.decode(body)
    except msgspec.DecodeError:
        return body[:200].decode(errors="replace") or f"HTTP {status}"
    return problem.detail or problem.title or f"HTTP {status}"


def _failure_of(exc: BaseException) -> Failure:
    if isinstance(exc, TimeoutError):
        return Failure.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure.REFUSED if isinstance(exc.os_error, ConnectionRefusedError) \
            else Failure.CONNECT
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Failure.DISCONNECTED
    return Failure.CONNECTION


_NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


@dataclass(frozen=True)
class _Setup:
    users: tuple[str, ...]
    destinations: Destinations
    described: str


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def _setup(session: aiohttp.ClientSession, plan: Plan, listed: Sequence[str],
                 say: Callable[[str], None]) -> _Setup:
    """Who to dial as and what to dial, asking the server what the options leave open: the
    account (a user's token may read it; a service token gets 403) and the token's own user."""
    admin = f"{plan.url}/admin/v1"
    user_token: bool | None = None  # None: the server could not be asked
    regions = plan.regions
    try:
        status, body = await _get(session, f"{admin}/account")
    except _NETWORK_ERRORS as exc:
        say(f"cannot reach {plan.url} ({_failure_of(exc)}: {exc}); going on, the errors "
            "will be counted")
    else:
        if status == 401:
            raise ConfigurationError(
                f"--token: the server refused it ({_problem_text(status, body)})")
        if status == 403:  # "a service token may call the decision API only"
            user_token = False
        elif status == 200:
            try:
                account = _account.decode(body)
            except msgspec.DecodeError:
                say(f"{plan.url}/admin/v1/account is not a callgate account; going on")
            else:
                user_token = True
                regions = regions or tuple(account.plan_countries) or (account.default_region,)
        else:
            say(f"{plan.url}/admin/v1/account answered HTTP {status} "
                f"({_problem_text(status, body)}); going on")
    own = await _own_user(session, admin, plan.token) if user_token else None
    users = plan.users
    if users is None:
        if own is None:
            why = ("a service token dials as any user, so it needs the list" if user_token is False
                   else "the server could not be asked whose token this is")
            raise ConfigurationError(f"--users A,B,... is needed: {why}")
        users = (own,)
    if listed:
        destinations, described = Destinations(listed=listed), f"{len(listed):,} listed numbers"
    else:
        regions = regions or ("US",)
        fresh = NumberSource(regions, seed=plan.seed)
        total_s = plan.warmup_s + plan.duration_s
        wanted = _PREFILL_CLOSED if plan.rate is None else math.ceil(
            plan.rate * total_s * (1 - plan.repeat_share)) + 64
        await asyncio.to_thread(fresh.prefill, min(wanted, _PREFILL_MAX))
        destinations = Destinations(fresh=fresh, repeat_share=plan.repeat_share)
        described = (f"numbers generated in {', '.join(regions)}, "
                     f"{plan.repeat_share:.0%} repeated")
    if user_token is not None:
        await _check_users(session, plan, users, destinations.take(random.Random(0)))
    return _Setup(users, destinations, described)


async def _own_user(session: aiohttp.ClientSession, admin: str, token: str) -> str | None:
    """The user of a user's token: the admin API names a token by the start of its SHA-256
    (``TokenRecord.id``), and lists a user's own tokens to them."""
    token_id = hashlib.sha256(token.encode()).hexdigest()[:16]
    cursor: str | None = ""
    while cursor is not None:
        status, body = await _get(session, f"{admin}/tokens?kind=user&limit=500"
                                  + (f"&cursor={quote(cursor)}" if cursor else ""))
        if status != 200:
            return None
        try:
            page = _tokens.decode(body)
        except msgspec.DecodeError:
            return None
        for item in page.items:
            if item.id == token_id:
                return item.user
        cursor = page.next_cursor
    return None


async def _check_users(session: aiohttp.ClientSession, plan: Plan, users: Sequence[str],
                       number: str) -> None:
    """Ask ``/v1/explain`` (no channel taken) once per user, so that an unknown user or one
    the token may not dial as stops the run before it starts."""
    for user in users:
        body = _encode(DialRequest(user=user, to=number))
        try:
            async with session.post(f"{plan.url}/v1/explain", data=body) as response:
                status, answer = response.status, await response.read()
        except _NETWORK_ERRORS:
            return
        if status in (401, 403, 404, 422):
            raise ConfigurationError(f"--users: {user!r}: {_problem_text(status, answer)} "
                                     f"(HTTP {status})")


class _Run:
    """One load test: the dials (open or closed loop) on one session of ``concurrency``
    connections, the ends on another, and the live progress line."""

    def __init__(self, plan: Plan, setup: _Setup, session: aiohttp.ClientSession,
                 ends_session: aiohttp.ClientSession) -> None:
        self.plan = plan
        self.setup = setup
        self.session = session
        self.ends_session = ends_session
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(plan.seed)
        self.dial_url = URL(f"{plan.url}/v1/dial")  # parsed once, not per request
        self.timeout = aiohttp.ClientTimeout(total=plan.timeout_s)
        self.everything = Tally()
        self.measured = Tally()
        self.window = Histogram()
        self.ends = Ends()
        self.ends_group: asyncio.TaskGroup | None = None  # set by run()
        self.held: list[tuple[float, str]] = []  # (when to end, call id), oldest first
        self.held_from = 0
        self.held_wake = asyncio.Event()
        self.stopping = False
        self.interrupted = False
        self.finished = asyncio.Event()
        self.start_s = self.loop.time() + 0.05
        self.measure_from_s = self.start_s + plan.warmup_s
        self.stop_s = self.measure_from_s + plan.duration_s
        self.stopped_s = self.stop_s

    def stop(self) -> None:
        """Ctrl-C: stop sending, finish, print what was measured."""
        if not self.stopping:
            self.stopping, self.interrupted = True, True
            self.stopped_s = self.loop.time()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as ends:
            self.ends_group = ends
            ender = ends.create_task(self._ender(ends))
            progress = ends.create_task(self._progress())
            async with asyncio.TaskGroup() as dials:
                if self.plan.rate is None:
                    for _ in range(self.plan.concurrency):
                        dials.create_task(self._worker())
                else:
                    await self._open_loop(dials, Schedule(self.plan.rate, self.start_s))
            self.stopping = True
            self.held_wake.set()
            await ender
            self.finished.set()
        await progress

    async def _open_loop(self, dials: asyncio.TaskGroup, schedule: Schedule) -> None:
        """Queue each request when it is due; ``concurrency`` senders, one per connection,
        take them in order. (A task per request waiting on aiohttp's connection pool costs
        the generator several times more once the server falls behind.)"""
        queue: asyncio.Queue[tuple[float, bool] | None] = asyncio.Queue()
        for _ in range(self.plan.concurrency):
            dials.create_task(self._sender(queue))
        first_measured = schedule.before(self.measure_from_s)
        last = schedule.before(self.stop_s)
        i = 0
        while i < last and not self.stopping:
            delay = schedule.at(i) - _EARLY_S - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            now = self.loop.time()
            due = min(schedule.due(now + _EARLY_S), last)
            for j in range(i, due):
                at, measured = schedule.at(j), j >= first_measured
                if measured and (now - at) * 1e3 > LATE_MS:
                    self.measured.late += 1
                    self.measured.worst_late_ms = max(self.measured.worst_late_ms,
                                                      (now - at) * 1e3)
                if queue.qsize() >= BACKLOG:
                    for tally in self._tallies(measured):
                        tally.sent += 1
                        tally.failure(Failure.BACKLOG, f"over {BACKLOG:,} requests waiting")
                    continue
                queue.put_nowait((at, measured))
            i = due
            await asyncio.sleep(0)
        if self.stopping:  # interrupted: what was never sent is not counted
            while not queue.empty():
                queue.get_nowait()
        for _ in range(self.plan.concurrency):
            queue.put_nowait(None)

    async def _sender(self, queue: asyncio.Queue[tuple[float, bool] | None]) -> None:
        while (item := await queue.get()) is not None:
            scheduled_s, measured = item
            left_s = self.plan.timeout_s - (self.loop.time() - scheduled_s)
            if left_s <= 0:
                # It waited for a connection longer than the timeout: a timeout, as it would
                # be for aiohttp, whose timeout counts that wait too; not sent.
                for tally in self._tallies(measured):
                    tally.sent += 1
                    tally.failure(Failure.TIMEOUT, "waited longer than --timeout for a "
                                  "connection")
                continue
            await self._dial(scheduled_s, measured, aiohttp.ClientTimeout(total=left_s))

    async def _worker(self) -> None:
        while not self.stopping:
            now = self.loop.time()
            if now >= self.stop_s:
                return
            if now < self.start_s:
                await asyncio.sleep(self.start_s - now)
                continue
            await self._dial(None, now >= self.measure_from_s)

    def _tallies(self, measured: bool) -> tuple[Tally, ...]:
        return (self.everything, self.measured) if measured else (self.everything,)

    async def _dial(self, scheduled_s: float | None, measured: bool,
                    timeout: aiohttp.ClientTimeout | None = None) -> None:
        """One dial, timed from ``scheduled_s`` (open loop) or from its send."""
        tallies = self._tallies(measured)
        body = _encode(DialRequest(user=self.rng.choice(self.setup.users),
                                   to=self.setup.destinations.take(self.rng)))
        started = self.loop.time()
        since = started if scheduled_s is None else min(started, scheduled_s)
        for tally in tallies:
            tally.sent += 1
        try:
            async with self.session.post(self.dial_url, data=body,
                                         timeout=timeout or self.timeout) as response:
                status, payload = response.status, await response.read()
        except _NETWORK_ERRORS as exc:
            for tally in tallies:
                tally.failure(_failure_of(exc), str(exc) or type(exc).__name__)
            return
        ms = (self.loop.time() - since) * 1e3
        self.window.record(ms)
        if status != 200:
            detail = _problem_text(status, payload)
            for tally in tallies:
                tally.http_error(ms, status, detail)
            return
        try:
            answer = _answer.decode(payload)
        except msgspec.DecodeError as exc:
            for tally in tallies:
                tally.failure(Failure.BAD_ANSWER, str(exc))
            return
        label = (answer.rule if answer.allowed else answer.reason) or "?"
        for tally in tallies:
            tally.decision(ms, answer.allowed, label)
        if answer.allowed:
            self.ends.allowed += 1
            if self.plan.end_calls and self.plan.hold_s == 0 and self.ends_group is not None:
                self.ends_group.create_task(self._end(answer.call_id))
            elif self.plan.end_calls:
                self.held.append((self.loop.time() + self.plan.hold_s, answer.call_id))
                self.held_wake.set()

    async def _ender(self, ends: asyncio.TaskGroup) -> None:
        """End each held call when its time comes (all of them once the run stops). The hold
        is the same for every call, so the list is in the order they are due."""
        while True:
            now = self.loop.time()
            while self.held_from < len(self.held) and (
                    self.stopping or self.held[self.held_from][0] <= now):
                ends.create_task(self._end(self.held[self.held_from][1]))
                self.held_from += 1
            if self.held_from > 4096:
                del self.held[:self.held_from]
                self.held_from = 0
            if self.stopping:
                return
            self.held_wake.clear()
            timeout = (self.held[self.held_from][0] - now) if self.held_from < len(self.held) \
                else None
            try:
                await asyncio.wait_for(self.held_wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _end(self, call_id: str) -> None:
        self.ends.sent += 1
        try:
            url = f"{self.plan.url}/v1/calls/{call_id}/end"
            async with self.ends_session.post(url, data=_END_BODY) as response:
                status = response.status
                await response.read()
        except _NETWORK_ERRORS as exc:
            kind = str(_failure_of(exc))
        else:
            if status == 200:
                self.ends.ok += 1
                return
            kind = f"HTTP {status}"
        self.ends.failed[kind] = self.ends.failed.get(kind, 0) + 1

    async def _progress(self) -> None:
        """A line a second until the run is over, then a last one."""
        tty = sys.stderr.isatty()
        last_s, last_answered, tick = self.start_s, 0, 1
        last_shown = (-1, -1, -1)
        while not self.finished.is_set():
            try:
                await asyncio.wait_for(self.finished.wait(),
                                       max(0.0, self.start_s + tick - self.loop.time()))
            except TimeoutError:
                pass
            now = self.loop.time()
            tick = math.floor(now - self.start_s) + 1  # a late tick is not caught up on
            every, window = self.everything, self.window
            shown = (every.sent, every.answered, every.errors)
            if self.finished.is_set() and shown == last_shown:
                if tty:
                    sys.stderr.write("\n")
                break
            last_shown = shown
            self.window = Histogram()
            done = self.finished.is_set()
            since_s, since_answered = (self.start_s, 0) if done else (last_s, last_answered)
            latency = every.latency if done else window
            line = progress_line(Progress(
                elapsed_s=now - self.start_s, sent=every.sent, answered=every.answered,
                rate=(every.answered - since_answered) / max(now - since_s, 1e-3), done=done,
                p50_ms=latency.quantile(0.5) if latency.count else None,
                p99_ms=latency.quantile(0.99) if latency.count else None,
                errors=every.errors, warming=now < self.measure_from_s and not done,
            ))
            last_s, last_answered = now, every.answered
            end = "\n" if not tty or done else ""
            sys.stderr.write(f"\r{line}\x1b[K{end}" if tty else f"{line}{end}")
            sys.stderr.flush()


def _say(text: str) -> None:
    print(f"callgate loadtest: {text}", file=sys.stderr, flush=True)


def _session(plan: Plan) -> aiohttp.ClientSession:
    headers = {"Authorization": f"Bearer {plan.token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=plan.concurrency, limit_per_host=plan.concurrency)
    return aiohttp.ClientSession(connector=connector, headers=headers,
                                 timeout=aiohttp.ClientTimeout(total=plan.timeout_s))


async def _load(plan: Plan, listed: Sequence[str]) -> Report:
    # Ends have connections of their own: on the dials' pool, a closed loop's workers take
    # each connection back the moment it is free and the ends would wait for ever, leaving
    # every channel taken (and every dial a channel_limit).
    async with _session(plan) as session, _session(plan) as ends_session:
        setup = await _setup(session, plan, listed, _say)
        how = (f"{plan.rate:,.0f} dials/s" if plan.rate is not None
               else f"as fast as {plan.concurrency} connections go")
        _say(f"{how} for {plan.duration_s:g} s (+{plan.warmup_s:g} s warm-up) against "
             f"{plan.url}, as {len(setup.users)} user(s), {setup.described}")
        run = _Run(plan, setup, session, ends_session)
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, run.stop)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signals here: Ctrl-C then stops it cold
        cpu_s, wall_s = time.process_time(), loop.time()
        try:
            await run.run()
        finally:
            cpu_s, wall_s = time.process_time() - cpu_s, loop.time() - wall_s
            try:
                loop.remove_signal_handler(signal.SIGINT)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    measured_s = max(0.0, min(run.stopped_s, run.stop_s) - run.measure_from_s)
    return summarise(run.measured, run.ends, plan, measured_s=measured_s, users=setup.users,
                     destinations=setup.described, run_s=wall_s, generator_cpu_s=cpu_s,
                     interrupted=run.interrupted)


def main(args: argparse.Namespace) -> int:
    """Run ``callgate loadtest`` with ``args`` (from ``add_arguments``): print the table (or
    ``--json``) on stdout and return the exit status: 0 when the run completed, 1 when more
    than ``--max-errors`` of its requests failed, 130 when interrupted. Raises
    ``ConfigurationError`` for a bad option (exit status 2)."""
    plan = plan_from(args, os.environ)
    listed: tuple[str, ...] = ()
    if plan.destinations_file is not None:
        try:
            text = plan.destinations_file.read_text()
        except OSError as exc:
            raise ConfigurationError(f"--destinations {plan.destinations_file}: cannot read "
                                     f"it ({exc.strerror or exc})") from None
        listed = read_destinations(text, str(plan.destinations_file))
    else:
        load_metadata()  # before the loop: phonenumbers reads its metadata files on first use
    report = asyncio.run(_load(plan, listed))
    if plan.json:
        sys.stdout.buffer.write(msgspec.json.encode(report) + b"\n")
    else:
        sys.stdout.write(render_table(report))
    sys.stdout.flush()
    if report.interrupted:
        return 130
    if report.error_pct > plan.max_errors_pct:
        _say(f"{report.errors:,} of {report.sent:,} requests failed ({report.error_pct:.1f}%), "
             f"over --max-errors {plan.max_errors_pct:g}%")
        return 1
    return 0


def _standalone(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.loadtest ...``, until ``callgate loadtest`` is wired in."""
    parser = argparse.ArgumentParser(prog="callgate loadtest", description=__doc__.split("\n")[0])
    add_arguments(parser)
    try:
        return main(parser.parse_args(argv))
    except ConfigurationError as exc:
        print(f"callgate loadtest: error: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(_standalone())
