"""HTTP ``/v1/dial`` of ``callgate serve`` (embedded store, one process) against the minimal
aiohttp + msgspec server of ``baseline_app``, under the same wrk load, in interleaved rounds.

Only one server runs at a time (the machine has two cores: one for the server, one for wrk),
each round on a fresh process and, for callgate, a fresh data directory, so every round starts
from the same state. Each round warms the server up with a short wrk run first.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine import configfile

from . import wrk
from .report import Row, median, paired_ratio
from .workload import BENCH_USER, ROOT, bench_account

__all__ = ["run"]

RATIO_TARGET = 0.5
_STARTUP_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)


def _callgate() -> str:
    beside = Path(sys.executable).parent / "callgate"
    if beside.exists():
        return str(beside)
    raise RuntimeError(f"no callgate console script beside {sys.executable}: pip install -e .")


@contextmanager
def _server(argv: list[str], port: int) -> Iterator[Server]:
    """Start ``argv``, wait for its ``Stop with Ctrl-C`` line, stop it (SIGTERM) afterwards."""
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    server = Server(url=f"http://127.0.0.1:{port}", token="", process=process)
    try:
        deadline = time.monotonic() + _STARTUP_S
        while True:
            line = process.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start:\n" + "".join(server.output))
            server.output.append(line)
            found = re.search(r"token \(shown once per start\): (cg_\S+)", line)
            if found:
                server.token = found.group(1)
            if line.startswith("Stop with Ctrl-C"):
                break
        # Keep draining its output (logs), so a full pipe can never stall the server.
        threading.Thread(
            target=lambda: server.output.extend(process.stdout or ()), daemon=True
        ).start()
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def _serving_demo(argv: list[str], port: int) -> Iterator[Server]:
    """``_server`` for a ``callgate serve --demo``: with the token it printed, or an error."""
    with _server(argv, port) as server:
        if not server.token:
            raise RuntimeError("callgate serve printed no token:\n" + "".join(server.output))
        yield server


def _decisions(url: str) -> dict[str, float]:
    """callgate's own count of decisions, from its /metrics: by outcome (``allowed``,
    ``denied``), with deadline misses (reason ``store_unavailable``) apart as ``unavailable``."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[str, float] = {}
    for labels, value in re.findall(r"^callgate_decisions_total\{([^}]*)\} (\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        kind = "unavailable" if found.get("reason") == "store_unavailable" else found["outcome"]
        counts[kind] = counts.get(kind, 0.0) + float(value)
    return counts


@dataclass
class Side:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    non_2xx: int = 0
    socket_errors: int = 0
    requests: int = 0
    denied: float = 0.0
    unavailable: float = 0.0


def _record(side: Side, result: wrk.WrkResult) -> None:
    side.rps.append(result.requests_per_s)
    side.p50.append(result.p50_ms)
    side.p99.append(result.p99_ms)
    side.non_2xx += result.non_2xx
    side.socket_errors += result.socket_errors
    side.requests += result.requests


def health(side: Side) -> str:
    """How a side's wrk runs went: requests, and any error answer or broken socket."""
    text = f"{side.requests:,} requests, {side.non_2xx} not 2xx"
    if side.socket_errors:
        text += f", {side.socket_errors} socket errors"
    return text


def _scripts(tmp: Path, name: str, token: str) -> tuple[Path, Path]:
    """wrk scripts for the warm-up and the measured run, on disjoint number ranges (a warm-up
    dials far fewer than 2,000,000 numbers), so the measured run never repeats a number."""
    return (
        wrk.write_script(tmp / f"{name}-warm.lua", token=token, user=BENCH_USER, offset=0),
        wrk.write_script(tmp / f"{name}.lua", token=token, user=BENCH_USER, offset=2_000_000),
    )


def _round_baseline(tmp: Path, seconds: int, warmup: int, side: Side) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "bench.baseline_app", "--port", str(port)]
    with _server(argv, port) as server:
        url = f"{server.url}/v1/dial"
        warm, measured = _scripts(tmp, "baseline", "none")
        wrk.run(url, warm, seconds=warmup)
        _record(side, wrk.run(url, measured, seconds=seconds))


REPEATED_NUMBERS = 1000
"""The list the repeated-destination run dials over and over, as a dialer works a call list."""


def _round_callgate(
    tmp: Path, account: Path, seconds: int, warmup: int, side: Side, repeated: Side
) -> None:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="data-", dir=tmp))
    argv = [_callgate(), "serve", "--data", str(data), "--port", str(port), "--demo", str(account)]
    with _serving_demo(argv, port) as server:
        url = f"{server.url}/v1/dial"
        warm, measured = _scripts(tmp, "callgate", server.token)
        wrk.run(url, warm, seconds=warmup)
        before = _decisions(server.url)
        result = wrk.run(url, measured, seconds=seconds)
        after = _decisions(server.url)
        listed = wrk.write_script(
            tmp / "callgate-list.lua", token=server.token, user=BENCH_USER, offset=0,
            repeat_every=REPEATED_NUMBERS,
        )
        wrk.run(url, listed, seconds=warmup)
        _record(repeated, wrk.run(url, listed, seconds=seconds))
    allowed, denied, unavailable = (
        after.get(k, 0.0) - before.get(k, 0.0) for k in ("allowed", "denied", "unavailable")
    )
    # A denial (channel_limit, invalid_number) writes nothing: a run made of them would time
    # a cheaper path than the one this benchmark is about.
    if denied > 0.01 * max(allowed + denied, 1.0):
        raise RuntimeError(f"bench: callgate denied {denied:.0f} of {allowed + denied:.0f} dials")
    side.denied += denied
    side.unavailable += unavailable
    _record(side, result)


def run(rounds: int = 5, seconds: int = 6, warmup: int = 1) -> list[Row]:
    wrk.executable()  # fail before starting anything when wrk is missing
    baseline, callgate, repeated = Side(), Side(), Side()
    with tempfile.TemporaryDirectory(prefix="callgate-bench-http-") as name:
        tmp = Path(name)
        account = tmp / "bench-account.toml"
        account.write_bytes(configfile.encode(bench_account(lease_ttl_s=3600), "toml"))
        for n in range(rounds):
            # ABBA order: drift of the machine's speed during a pair favours neither side.
            order = ("baseline", "callgate") if n % 2 == 0 else ("callgate", "baseline")
            for which in order:
                if which == "baseline":
                    _round_baseline(tmp, seconds, warmup, baseline)
                else:
                    _round_callgate(tmp, account, seconds, warmup, callgate, repeated)
            print(
                f"  http round {n + 1}/{rounds}: baseline {baseline.rps[-1]:,.0f} req/s "
                f"(p50 {baseline.p50[-1]:.2f} ms, p99 {baseline.p99[-1]:.2f} ms); callgate "
                f"{callgate.rps[-1]:,.0f} req/s (p50 {callgate.p50[-1]:.2f} ms, "
                f"p99 {callgate.p99[-1]:.2f} ms)",
                file=sys.stderr,
                flush=True,
            )

    note = (
        f"callgate: {health(callgate)}; its /metrics: {callgate.unavailable:.0f} "
        f"store_unavailable (the store missed the engine's deadline), {callgate.denied:.0f} "
        f"other denials; baseline: {health(baseline)}"
    )
    what = "aiohttp+msgspec"
    rps = median(callgate.rps)
    rps_ratio = paired_ratio(callgate.rps, baseline.rps)
    return [
        Row(
            "HTTP /v1/dial, 32 conns: throughput",
            rps,
            "req/s",
            median(baseline.rps),
            what,
            f">= {RATIO_TARGET}x baseline",
            rps_ratio >= RATIO_TARGET,
            note,
            rps_ratio,
        ),
        Row("  same: latency p50", median(callgate.p50), "ms", median(baseline.p50), what,
            paired_ratio=paired_ratio(callgate.p50, baseline.p50)),
        Row("  same: latency p99", median(callgate.p99), "ms", median(baseline.p99), what,
            paired_ratio=paired_ratio(callgate.p99, baseline.p99)),
        Row(
            f"HTTP /v1/dial, a list of {REPEATED_NUMBERS:,} numbers dialled over and over",
            median(repeated.rps),
            "req/s",
            median(baseline.rps),
            what,
            paired_ratio=paired_ratio(repeated.rps, baseline.rps),
        ),
        Row("  same: latency p50", median(repeated.p50), "ms", median(baseline.p50), what,
            paired_ratio=paired_ratio(repeated.p50, baseline.p50)),
        Row("  same: latency p99", median(repeated.p99), "ms", median(baseline.p99), what,
            paired_ratio=paired_ratio(repeated.p99, baseline.p99)),
    ]
