"""HTTP ``/v1/dial`` of ``callgate serve`` on the Redis store against the Redis ceiling
(``redis_baseline_app``: aiohttp + msgspec + one EVALSHA), one process and two, under the
same wrk load, in interleaved rounds; then latency at half of callgate's peak, open loop.

Four sides per round, each on a fresh ``redis-server`` (on a free port, never the machine's
own) and fresh server processes, warmed up by a short wrk run on numbers the measured run
never dials: the ceiling on one process, callgate on one, the ceiling on two processes and
``callgate serve --workers 2`` (both ``SO_REUSEPORT``). Even rounds run them in that order,
odd rounds in reverse, so drift of the machine's speed favours no side of any pair. On two
cores the server, Redis and wrk share the CPUs: two processes cannot reach twice one, so the
2:1 figure of callgate is shown beside the ceiling's own.

Round trips are counted on the Redis server, not trusted from the code:

* ``INFO commandstats`` before and after each measured run: EVALSHA calls per dial, the dials
  being the leases Redis gained (``ZCARD``: every admitted dial adds one, and none expires
  within the hour-long lease). INFO also counts the commands scripts run inside (``ZADD``,
  ``HSET``...), indistinguishable from the same commands sent by a client, so the other
  commands it reports leave out every name the dial's scripts call: a lower bound.
* ``MONITOR`` over a separate, shorter wrk run (MONITOR slows Redis: never during a measured
  run): it marks script-internal commands ``[0 lua]``, so every command a client sent is
  seen, EVALSHA told apart by its script's SHA, and the dials counted by callgate's /metrics.

The open-loop part runs ``callgate loadtest --rate`` (``engine.loadtest``: requests at fixed
intervals, each timed from its scheduled send time, no coordinated omission) as a process of
its own, against callgate on one process at half of its median peak above, against the
ceiling at the same rate, and against ``baseline_app`` (no Redis) to show what the generator
and the machine alone leave in the tail; each on fresh processes and a fresh Redis, in
alternating order.
"""

from __future__ import annotations

import math
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from engine import configfile
from engine.loadtest import LATE_MS, Latency, Report
from engine.store.redis_store import scripts

from . import wrk
from .http import (
    Server,
    Side,
    _callgate,
    _decisions,
    _record,
    _scripts,
    _server,
    _serving_demo,
    free_port,
    health,
)
from .loadtest import loadtest
from .report import Row, median, paired_ratio
from .workload import BENCH_USER, bench_account

__all__ = ["run"]

RATIO_TARGET = 0.70
REDIS_CPU_TARGET = 1.5
"""Redis CPU per dial, at most this many times the ceiling's (issue 15)."""
OPEN_LOOP_LOAD = 0.5
"""The open-loop rate, as a share of callgate's median peak on one process."""
OPEN_LOOP_P99_MS = 5.0
OPEN_LOOP_CONNECTIONS = 64
CEILING = "aiohttp+EVALSHA"
CALLGATE_URL_OPTIONS = ""
"""Query options of callgate's ``--redis-url`` (e.g. ``?timeout_ms=1000``): none, so the
store's deadline is the production one and any deadline miss shows as store_unavailable."""
MONITOR_S = 2
LEASE_TTL_S = 3600
_REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
_STARTUP_S = 10.0

_SHAS = {script.sha: script.name.upper() for script in scripts.SCRIPTS}
"""callgate's scripts by the SHA its EVALSHA calls name them by."""
_DIAL_SCRIPTS = (scripts.ADMIT, scripts.UNDO_ADMIT)
"""The scripts that can run while dials are all that is asked: admissions, and the undo of
one whose answer was lost (MONITOR shows any other EVALSHA by name)."""
_SCRIPT_CALLS = frozenset(
    c.lower()
    for script in _DIAL_SCRIPTS
    for c in re.findall(r"redis\.call\('(\w+)'", script.source)
)
"""The commands those scripts run inside Redis: INFO cannot tell them from a client's."""

# -- a throwaway redis-server -------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    client: redis.Redis

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


@contextmanager
def redis_server(
    tmp: Path, wrapper: tuple[str, ...] = (), startup_s: float = _STARTUP_S
) -> Iterator[RedisServer]:
    """A fresh, empty ``redis-server`` on a free port (no persistence), killed afterwards;
    ``wrapper`` runs it under another program (valgrind)."""
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="redis-", dir=tmp))
    process = subprocess.Popen(
        [*wrapper, _REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory), "--logfile", str(directory / "log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.02)
        yield RedisServer(port, process, client)
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What Redis has run so far (commandstats calls by command), its CPU time, and the time
    it spent running EVALSHA (scripts included)."""

    calls: dict[str, int]
    cpu_s: float
    evalsha_us: int


def _snapshot(client: redis.Redis) -> Snapshot:
    # One INFO for both sections: the delta of two snapshots then holds exactly one INFO of ours.
    info: dict[str, Any] = client.info("commandstats", "cpu")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()
             if k.startswith("cmdstat_")}
    evalsha = int(info.get("cmdstat_evalsha", {}).get("usec", 0))
    return Snapshot(calls, float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), evalsha)


def _difference(before: Snapshot, after: Snapshot) -> Counter[str]:
    calls = Counter({k: n - before.calls.get(k, 0) for k, n in after.calls.items()})
    calls["info"] -= 1  # the first snapshot's own
    return +calls


# -- CPU time of the processes involved ---------------------------------------------------------


def _process_cpu_s(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (the workers of a ``--workers`` parent)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _children_cpu_s() -> float:
    """CPU of this process's waited-for children: across a ``wrk.run``, wrk's own."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the sides ----------------------------------------------------------------------------------


@dataclass
class RedisSide(Side):
    """A side's wrk figures (``Side``) and what each request cost, counted on the measured runs."""

    dials: int = 0
    """Scripts that took a lease (Redis' count) over the measured runs."""
    evalsha: int = 0
    others: Counter[str] = field(default_factory=Counter)
    server_us: list[float] = field(default_factory=list)
    redis_us: list[float] = field(default_factory=list)
    script_us: list[float] = field(default_factory=list)
    """Of ``redis_us``, the time Redis spent in EVALSHA (the script and what it calls)."""
    wrk_us: list[float] = field(default_factory=list)


@dataclass
class Census:
    """Client commands MONITOR saw while callgate answered ``dials`` dials."""

    dials: float = 0.0
    windows: int = 0
    seconds: float = 0.0
    commands: Counter[str] = field(default_factory=Counter)


def _measured(
    server: Server,
    store: RedisServer,
    tmp: Path,
    name: str,
    token: str,
    seconds: int,
    warmup: int,
    side: RedisSide,
    leases: Callable[[], int],
) -> None:
    """Warm up, then the measured wrk run, with Redis's counts and every process's CPU around
    it; ``leases``: how many leases Redis holds (one per admitted dial)."""
    url = f"{server.url}/v1/dial"
    warm, measured = _scripts(tmp, name, token)
    wrk.run(url, warm, seconds=warmup)
    dials_before, before = leases(), _snapshot(store.client)
    server_cpu, wrk_cpu = _process_cpu_s(server.process.pid), _children_cpu_s()
    result = wrk.run(url, measured, seconds=seconds)
    wrk_cpu = _children_cpu_s() - wrk_cpu
    time.sleep(0.2)  # the requests wrk left in flight finish
    server_cpu = _process_cpu_s(server.process.pid) - server_cpu
    after = _snapshot(store.client)
    dials = leases() - dials_before
    calls = _difference(before, after)
    answered = result.requests - result.non_2xx
    # A denial writes nothing: a run made of them would time a cheaper path than admissions.
    if answered - dials > 0.01 * max(answered, 1) + 64:
        raise RuntimeError(f"bench: {name}: {answered} answers, but only {dials} leases taken")
    _record(side, result)
    side.dials += dials
    side.evalsha += calls.pop("evalsha", 0)
    side.others.update({k: n for k, n in calls.items() if k not in _SCRIPT_CALLS})
    per = 1e6 / max(dials, 1)
    side.server_us.append(server_cpu * per)
    side.redis_us.append((after.cpu_s - before.cpu_s) * per)
    side.script_us.append((after.evalsha_us - before.evalsha_us) / max(dials, 1))
    side.wrk_us.append(wrk_cpu * per)


def _round_ceiling(tmp: Path, workers: int, seconds: int, warmup: int, side: RedisSide) -> None:
    with redis_server(tmp) as store:
        port = free_port()
        argv = [sys.executable, "-m", "bench.redis_baseline_app", "--port", str(port),
                "--redis-url", store.url, "--workers", str(workers)]
        with _server(argv, port) as server:
            key = f"bl:u:{BENCH_USER}"  # the ceiling's script adds each number to this set
            _measured(server, store, tmp, f"ceiling{workers}", "none", seconds, warmup, side,
                      lambda: int(store.client.zcard(key)))


def _callgate_argv(store: RedisServer, port: int, account: Path, workers: int) -> list[str]:
    return [_callgate(), "serve", "--redis-url", store.url + CALLGATE_URL_OPTIONS,
            "--port", str(port), "--demo", str(account), "--workers", str(workers)]


def _leases_key(account: Path) -> str:
    config = configfile.decode(account.read_bytes(), "toml", source=str(account))
    return f"cg:{{{config.id}}}:channels"


def _round_callgate(
    tmp: Path,
    account: Path,
    workers: int,
    seconds: int,
    warmup: int,
    side: RedisSide,
    census: Census | None,
) -> None:
    key = _leases_key(account)
    with redis_server(tmp) as store:
        port = free_port()
        with _serving_demo(_callgate_argv(store, port, account, workers), port) as server:
            # /metrics is per process: with two workers, whichever answers; exact with one.
            before = _decisions(server.url) if workers == 1 else {}
            _measured(server, store, tmp, f"callgate{workers}", server.token, seconds, warmup,
                      side, lambda: int(store.client.zcard(key)))
            if workers == 1:
                after = _decisions(server.url)
                side.denied += after.get("denied", 0.0) - before.get("denied", 0.0)
                side.unavailable += after.get("unavailable", 0.0) - before.get("unavailable", 0.0)
            if census is not None:
                _monitor_window(server, store, tmp, census)


# -- MONITOR ------------------------------------------------------------------------------------

# ``+<time> [<db> <client address, or lua>] "<command>" "<first argument>" ...``
_MONITOR_LINE = re.compile(rb'^\+[\d.]+ \[\d+ ([^\]]*)\] "([^"]*)"(?: "([^"]*)")?', re.M)


class _Monitor:
    """A raw-socket MONITOR client, reading everything Redis echoes into memory until closed."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.sendall(b"MONITOR\r\n")
        first = self._sock.recv(5)
        if first != b"+OK\r\n":
            raise RuntimeError(f"MONITOR refused: {first!r}")
        self._sock.settimeout(0.2)
        self._chunks: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                break
            self._chunks.append(chunk)

    def close(self) -> bytes:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        return b"".join(self._chunks)


def _client_commands(echoed: bytes) -> Counter[str]:
    """The commands clients sent (``[0 lua]`` lines are run by scripts), EVALSHA by script."""
    commands: Counter[str] = Counter()
    for source, command, first in _MONITOR_LINE.findall(echoed):
        if source == b"lua":
            continue
        name = command.decode().lower()
        if name in ("evalsha", "eval"):
            sha = (first or b"").decode()
            name = f"{name} {_SHAS.get(sha, 'script ' + sha[:8]) if name == 'evalsha' else ''}"
        commands[name.strip()] += 1
    return commands


def _monitor_window(server: Server, store: RedisServer, tmp: Path, census: Census) -> None:
    """Every client command during a short wrk run of its own, dials counted by /metrics."""
    script = wrk.write_script(
        tmp / "callgate-monitor.lua", token=server.token, user=BENCH_USER, offset=4_000_000
    )
    monitor = _Monitor(store.port)
    started = time.monotonic()
    try:
        before = _decisions(server.url)
        wrk.run(f"{server.url}/v1/dial", script, seconds=MONITOR_S)
        time.sleep(0.3)  # the requests wrk left in flight finish
        after = _decisions(server.url)
    finally:
        echoed = monitor.close()
    census.windows += 1
    census.seconds += time.monotonic() - started
    census.dials += sum(after.values()) - sum(before.values())
    census.commands.update(_client_commands(echoed))


# -- open loop ----------------------------------------------------------------------------------


_NO_LATENCY = Latency(p50_ms=math.nan, p90_ms=math.nan, p99_ms=math.nan, p999_ms=math.nan,
                      max_ms=math.nan)


def _latency(report: Report) -> Latency:
    """A run's latency figures; NaN when nothing was answered (the row then shows it)."""
    return report.latency or _NO_LATENCY


@dataclass
class OpenSide:
    results: list[Report] = field(default_factory=list)
    unavailable: float = 0.0

    def median(self, pick: Callable[[Report], float]) -> float:
        return median(pick(r) for r in self.results)


def _open_loop(url: str, *, rate: float, seconds: int, token: str = "none") -> Report:
    """``callgate loadtest --rate`` against the server at ``url`` (``bench.loadtest``)."""
    return loadtest(url, token, seconds, ("--rate", str(rate)), OPEN_LOOP_CONNECTIONS)


def _open_ceiling(tmp: Path, rate: float, seconds: int, warmup: int, side: OpenSide) -> None:
    with redis_server(tmp) as store:
        port = free_port()
        argv = [sys.executable, "-m", "bench.redis_baseline_app", "--port", str(port),
                "--redis-url", store.url]
        with _server(argv, port) as server:
            wrk.run(f"{server.url}/v1/dial", _scripts(tmp, "open-ceiling", "none")[0],
                    seconds=warmup)
            side.results.append(_open_loop(server.url, rate=rate, seconds=seconds))


def _open_plain(tmp: Path, rate: float, seconds: int, warmup: int, side: OpenSide) -> None:
    """The generator and the machine alone: ``baseline_app``, no Redis, at the same rate.
    A tail here is not the server's; a tail the ceiling adds to it is the Redis hop's."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.baseline_app", "--port", str(port)]
    with _server(argv, port) as server:
        wrk.run(f"{server.url}/v1/dial", _scripts(tmp, "open-plain", "none")[0], seconds=warmup)
        side.results.append(_open_loop(server.url, rate=rate, seconds=seconds))


def _open_callgate(
    tmp: Path, account: Path, rate: float, seconds: int, warmup: int, side: OpenSide
) -> None:
    with redis_server(tmp) as store:
        port = free_port()
        with _server(_callgate_argv(store, port, account, 1), port) as server:
            wrk.run(f"{server.url}/v1/dial", _scripts(tmp, "open-callgate", server.token)[0],
                    seconds=warmup)
            before = _decisions(server.url)
            side.results.append(
                _open_loop(server.url, rate=rate, seconds=seconds, token=server.token))
            after = _decisions(server.url)
            side.unavailable += after.get("unavailable", 0.0) - before.get("unavailable", 0.0)


# -- the report ---------------------------------------------------------------------------------


def _costs(side: RedisSide) -> str:
    return (
        f"CPU per request: server {median(side.server_us):.0f} µs, Redis "
        f"{median(side.redis_us):.0f} µs (running the script: {median(side.script_us):.0f} µs), "
        f"wrk {median(side.wrk_us):.0f} µs"
    )


def _listed(commands: Counter[str]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in commands.most_common()) or "none"


def _throughput_rows(
    label: str, callgate: RedisSide, ceiling: RedisSide, target: bool, metrics: str = ""
) -> list[Row]:
    rps_ratio = paired_ratio(callgate.rps, ceiling.rps)
    note = (
        f"callgate: {health(callgate)}{metrics}, {_costs(callgate)}; ceiling: "
        f"{health(ceiling)}, {_costs(ceiling)}"
    )
    return [
        Row(f"{label}: throughput", median(callgate.rps), "req/s", median(ceiling.rps), CEILING,
            f">= {RATIO_TARGET}x ceiling" if target else "",
            rps_ratio >= RATIO_TARGET if target else None, note, rps_ratio),
        Row("  same: latency p50", median(callgate.p50), "ms", median(ceiling.p50), CEILING,
            paired_ratio=paired_ratio(callgate.p50, ceiling.p50)),
        Row("  same: latency p99", median(callgate.p99), "ms", median(ceiling.p99), CEILING,
            paired_ratio=paired_ratio(callgate.p99, ceiling.p99)),
    ]


def _redis_cpu_rows(
    one: RedisSide, two: RedisSide, c_one: RedisSide, c_two: RedisSide
) -> list[Row]:
    """Redis's CPU per dial beside the ceiling's (INFO cpu around each measured run): what one
    dial's script costs the shared Redis, the resource every process of a fleet waits on."""
    ratio_one = paired_ratio(one.redis_us, c_one.redis_us)
    return [
        Row("Redis CPU per dial, 1 process", median(one.redis_us), "µs", median(c_one.redis_us),
            CEILING, f"<= {REDIS_CPU_TARGET}x ceiling", ratio_one <= REDIS_CPU_TARGET,
            f"of it running the script: callgate {median(one.script_us):.0f} µs, ceiling "
            f"{median(c_one.script_us):.0f} µs; per round: "
            + ", ".join(f"{a / b:.2f}x" for a, b in zip(one.redis_us, c_one.redis_us, strict=True)),
            ratio_one),
        Row("  same, 2 processes", median(two.redis_us), "µs", median(c_two.redis_us), CEILING,
            paired_ratio=paired_ratio(two.redis_us, c_two.redis_us)),
    ]


def _scaling_row(one: RedisSide, two: RedisSide, c_one: RedisSide, c_two: RedisSide) -> Row:
    mine, theirs = paired_ratio(two.rps, one.rps), paired_ratio(c_two.rps, c_one.rps)
    return Row(
        "2 processes / 1 process (req/s)", mine, "x", theirs, "the ceiling's own 2:1",
        note="the median over rounds of each round's 2-process req/s over its 1-process req/s; "
        "server, Redis and wrk share two cores",
    )


def _round_trip_rows(
    one: RedisSide, two: RedisSide, c_one: RedisSide, c_two: RedisSide, census: Census
) -> list[Row]:
    def per(side: RedisSide) -> float:
        return side.evalsha / max(side.dials, 1)

    def counted(side: RedisSide) -> str:
        return (
            f"{side.evalsha:,} EVALSHA for {side.dials:,} dials; other commands: "
            f"{_listed(side.others)}"
        )

    admit = census.commands.get("evalsha ADMIT", 0)
    others = Counter({k: n for k, n in census.commands.items() if k != "evalsha ADMIT"})
    exact = census.dials > 0 and admit == round(census.dials)
    few = sum(others.values()) <= 0.01 * census.dials
    return [
        Row(
            "Redis: EVALSHA per dial (INFO commandstats), 1 process", per(one), "per dial",
            per(c_one), CEILING, "1 per dial", abs(per(one) - 1) < 0.01,
            f"callgate: {counted(one)} (measured runs; names the dial's scripts also call, "
            f"{', '.join(sorted(_SCRIPT_CALLS))}, are left out: INFO counts script-internal "
            f"calls under them); ceiling: {counted(c_one)}",
        ),
        Row(
            "  same, 2 processes", per(two), "per dial", per(c_two), CEILING,
            note=f"callgate: {counted(two)}; ceiling: {counted(c_two)}",
        ),
        Row(
            f"  MONITOR, {census.windows} x {MONITOR_S} s of wrk, 1 process: ADMIT per dial",
            admit / max(census.dials, 1.0), "per dial", target="exactly 1, nothing else per dial",
            met=exact and few,
            note=f"{census.dials:,.0f} dials (callgate's /metrics), {admit:,} EVALSHA of ADMIT; "
            f"every other command a client sent in those {census.seconds:.1f} s "
            f"(script-internal [0 lua] lines left out): {_listed(others)}",
        ),
    ]


def _open_rows(rate: float, callgate: OpenSide, ceiling: OpenSide, plain: OpenSide) -> list[Row]:
    def how(side: OpenSide) -> str:
        r = side.results
        return (
            f"{sum(x.sent for x in r):,} requests, {sum(sum(x.http_errors.values()) for x in r)} "
            f"not 200, {sum(sum(x.failures.values()) for x in r)} unanswered, max "
            f"{max(_latency(x).max_ms for x in r):.1f} ms, sent > {LATE_MS:.0f} ms late: "
            f"{sum(x.late for x in r):,} by the generator, {sum(x.waited for x in r):,} "
            "waiting for a free connection"
        )

    def row(what: str, pick: Callable[[Report], float], unit: str = "ms", **judged: Any) -> Row:
        mine, theirs = [pick(r) for r in callgate.results], [pick(r) for r in ceiling.results]
        return Row(what, median(mine), unit, median(theirs), CEILING,
                   paired_ratio=paired_ratio(mine, theirs), **judged)

    calibration = (
        f"the generator against aiohttp+msgspec (no Redis) at the same rate: p50 "
        f"{plain.median(lambda r: _latency(r).p50_ms):.2f} ms, p99 "
        f"{plain.median(lambda r: _latency(r).p99_ms):.2f} ms, p99.9 "
        f"{plain.median(lambda r: _latency(r).p999_ms):.2f} ms ({how(plain)})"
    )
    p99 = callgate.median(lambda r: _latency(r).p99_ms)
    return [
        row(
            f"open loop, {rate:,.0f} req/s ({OPEN_LOOP_LOAD}x callgate's peak): latency p99",
            lambda r: _latency(r).p99_ms,
            target=f"< {OPEN_LOOP_P99_MS:.0f} ms",
            met=p99 < OPEN_LOOP_P99_MS,
            note=f"callgate: {how(callgate)}, {callgate.unavailable:.0f} store_unavailable; "
            f"ceiling: {how(ceiling)}; {calibration}",
        ),
        row("  same: latency p50", lambda r: _latency(r).p50_ms),
        row("  same: latency p99.9", lambda r: _latency(r).p999_ms),
        row("  same: achieved rate (answered)", lambda r: r.rate, "req/s"),
    ]


def run(
    rounds: int = 3,
    seconds: int = 6,
    warmup: int = 1,
    open_rounds: int = 3,
    open_seconds: int = 5,
) -> list[Row]:
    wrk.executable()  # fail before starting anything when wrk or redis-server is missing
    if not Path(_REDIS_SERVER).exists():
        raise RuntimeError("no redis-server: apt-get install redis-server")
    sides = {name: RedisSide() for name in ("ceiling1", "callgate1", "ceiling2", "callgate2")}
    census = Census()
    opened = {"callgate": OpenSide(), "ceiling": OpenSide(), "no-redis": OpenSide()}
    with tempfile.TemporaryDirectory(prefix="callgate-bench-redis-") as name:
        tmp = Path(name)
        account = tmp / "bench-account.toml"
        account.write_bytes(configfile.encode(bench_account(lease_ttl_s=LEASE_TTL_S), "toml"))
        for n in range(rounds):
            # ABBA order over all four: every pair, and each 2:1 pair, alternates its order.
            order = list(sides) if n % 2 == 0 else list(reversed(sides))
            for which in order:
                workers = int(which[-1])
                if which.startswith("ceiling"):
                    _round_ceiling(tmp, workers, seconds, warmup, sides[which])
                else:
                    _round_callgate(tmp, account, workers, seconds, warmup, sides[which],
                                    census if workers == 1 else None)
            print(
                f"  redis round {n + 1}/{rounds}: "
                + "; ".join(
                    f"{k} {s.rps[-1]:,.0f} req/s (p50 {s.p50[-1]:.2f} ms, p99 {s.p99[-1]:.2f} ms)"
                    for k, s in sides.items()
                ),
                file=sys.stderr,
                flush=True,
            )
        rate = round(OPEN_LOOP_LOAD * median(sides["callgate1"].rps))
        for n in range(open_rounds):
            for which in list(opened) if n % 2 == 0 else list(reversed(opened)):
                if which == "callgate":
                    _open_callgate(tmp, account, rate, open_seconds, warmup, opened[which])
                elif which == "ceiling":
                    _open_ceiling(tmp, rate, open_seconds, warmup, opened[which])
                else:
                    _open_plain(tmp, rate, open_seconds, warmup, opened[which])
            print(
                f"  open loop {n + 1}/{open_rounds} at {rate:,} req/s: "
                + "; ".join(
                    f"{k} p50 {_latency(s.results[-1]).p50_ms:.2f} ms, p99 "
                    f"{_latency(s.results[-1]).p99_ms:.2f} ms, p99.9 "
                    f"{_latency(s.results[-1]).p999_ms:.2f} ms" for k, s in opened.items()
                ),
                file=sys.stderr,
                flush=True,
            )
    one, two, c_one, c_two = (sides[k] for k in ("callgate1", "callgate2", "ceiling1", "ceiling2"))
    metrics = (
        f" (its /metrics: {one.unavailable:.0f} store_unavailable, i.e. Redis missed the "
        f"store's deadline, {one.denied:.0f} other denials)"
    )
    rows = _throughput_rows("HTTP /v1/dial on Redis, 32 conns, 1 process", one, c_one, True,
                            metrics)
    rows += _throughput_rows("same, 2 processes (--workers 2)", two, c_two, False)
    rows.append(_scaling_row(one, two, c_one, c_two))
    rows += _redis_cpu_rows(one, two, c_one, c_two)
    rows += _round_trip_rows(one, two, c_one, c_two, census)
    rows += _open_rows(rate, opened["callgate"], opened["ceiling"], opened["no-redis"])
    return rows
