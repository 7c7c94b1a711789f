"""SIP INVITE -> 302 under sipp: the highest call rate with no failed call and no
retransmission, for callgate's redirect server and for the minimal responder
(``sip_baseline``) on the same event loop, in interleaved rounds.

callgate runs as ``callgate serve --sip`` on the embedded store with the bench account, and
sipp calls as a trusted peer (``tests/sip/scenarios/uac_trusted.xml``: INVITE naming the user
-> 302 -> ACK, the decision included: normalise, caller ID, a channel taken and made
durable). The digest-authenticated rate is measured beside it
(``uac_auth.xml``: INVITE -> 401 -> ACK -> INVITE with Authorization -> 302 -> ACK, two
transactions a call) and shown against the same ceiling.

A trial runs sipp at one rate for ``seconds`` seconds on a fresh server (and a fresh data
directory, so every trial starts from the same state). It passes when sipp exits 0 and its
statistics show no failed call and no retransmission. The search doubles the rate until a
trial fails, then bisects until the bounds are within 5%: the figure is the highest rate
that passed. sipp runs on the same two cores, as the issue's figures were measured.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec

from engine import configfile
from sip.credentials import make_credential

from .http import Server, _callgate, _server, free_port
from .report import Row, median, paired_ratio
from .workload import BENCH_USER, ROOT, bench_account

__all__ = ["run"]

RATIO_TARGET = 0.30
CEILING = "minimal UDP responder"
SCENARIOS = ROOT / "tests" / "sip" / "scenarios"
DOMAIN = "bench.sip.example"
PASSWORD = "Bench-softphone-2026"
EXPECTED = "12125550101"
"""The bench user's caller ID (her default), which every 302 must carry."""
START_RATE = 500.0
MAX_TRIALS = 9


@dataclass
class Trial:
    rate: float
    passed: bool
    successful: int
    failed: int
    retransmissions: int


def _sipp(port: int, scenario: str, rate: float, seconds: int, workdir: Path,
          extra: tuple[str, ...]) -> Trial:
    calls = int(rate * seconds)
    stats = workdir / f"stats-{int(rate)}.csv"
    command = [
        "sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIOS / scenario), "-s", "2125550187",
        "-key", "user", BENCH_USER, "-key", "domain", DOMAIN, "-set", "expected", EXPECTED,
        "-r", f"{rate:.0f}", "-m", str(calls), "-l", "20000", "-i", "127.0.0.1",
        "-p", str(free_port()), "-nostdin", "-timeout", f"{seconds + 30}s", "-timeout_error",
        "-recv_timeout", "5000", "-trace_stat", "-stf", str(stats), "-fd", "1", *extra,
    ]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                          timeout=seconds + 60)
    row: dict[str, str] = {}
    if stats.exists():
        with stats.open() as f:
            rows = list(csv.DictReader(f, delimiter=";"))
        row = rows[-1] if rows else {}

    def count(name: str) -> int:
        return int(row.get(name, "0") or 0)

    successful, failed = count("SuccessfulCall(C)"), count("FailedCall(C)")
    retransmissions = count("Retransmissions(C)")
    passed = (done.returncode == 0 and failed == 0 and retransmissions == 0
              and successful == calls)
    return Trial(rate, passed, successful, failed, retransmissions)


Start = Callable[[], AbstractContextManager[int]]
"""Starts a fresh server and gives its SIP port; stops it on exit."""


def _search(start: Start, scenario: str, seconds: int,
            extra: Callable[[int], tuple[str, ...]]) -> float:
    """The highest rate with no failed call and no retransmission (bisected)."""
    lo, hi = 0.0, None
    rate = START_RATE
    for _ in range(MAX_TRIALS):
        with tempfile.TemporaryDirectory(prefix="bench-sip-") as tmp, start() as port:
            trial = _sipp(port, scenario, rate, seconds, Path(tmp), extra(port))
        print(f"    {scenario} at {rate:,.0f}/s: "
              f"{'ok' if trial.passed else 'FAILED'} ({trial.successful} ok, {trial.failed} "
              f"failed, {trial.retransmissions} retransmissions)", file=sys.stderr, flush=True)
        if trial.passed:
            lo = rate
        else:
            hi = rate
        if hi is not None and hi - lo <= 0.05 * max(lo, 1.0):
            break
        rate = rate * 2 if hi is None else (lo + hi) / 2
    return lo


@contextmanager
def _baseline() -> Iterator[int]:
    port = free_port()
    with _server([sys.executable, "-m", "bench.sip_baseline", "127.0.0.1", str(port)], port):
        yield port


def _account_file(directory: Path) -> Path:
    config = bench_account()
    users = tuple(
        msgspec.structs.replace(u, sip=make_credential(u.id, DOMAIN, PASSWORD, now_ms=0))
        if u.id == BENCH_USER else u
        for u in config.users
    )
    path = directory / "bench.toml"
    path.write_bytes(configfile.encode(
        msgspec.structs.replace(config, sip_domain=DOMAIN, users=users), "toml"))
    return path


def _callgate_sip(trusted: bool) -> Start:
    @contextmanager
    def start() -> Iterator[int]:
        with tempfile.TemporaryDirectory(prefix="bench-sip-data-") as tmp:
            data = Path(tmp) / "data"
            subprocess.run([_callgate(), "import", str(_account_file(Path(tmp))), "--data",
                            str(data)], check=True, capture_output=True, timeout=60)
            port, sip = free_port(), free_port()
            argv = [_callgate(), "serve", "--data", str(data), "--port", str(port),
                    "--sip", f"127.0.0.1:{sip}", "--sip-gateway", "gw.example"]
            if trusted:
                argv += ["--sip-trusted", "127.0.0.1/32"]
            with _server(argv, port) as server:
                yield sip
                _check_clean(server)

    return start


def _check_clean(server: Server) -> None:
    errors = [line for line in server.output if " ERROR " in line]
    if errors:
        raise RuntimeError("callgate logged errors during the benchmark:\n" + "".join(errors[:5]))


def _no_args(port: int) -> tuple[str, ...]:
    return ()


def _auth_args(port: int) -> tuple[str, ...]:
    return ("-au", BENCH_USER, "-ap", PASSWORD, "-auth_uri", f"2125550187@127.0.0.1:{port}")


def run(rounds: int, seconds: int) -> list[Row]:
    ceiling: list[float] = []
    trusted: list[float] = []
    digest: list[float] = []
    for round_ in range(rounds):
        print(f"  round {round_ + 1} of {rounds}", file=sys.stderr, flush=True)
        sides = [
            (ceiling, _baseline, "uac_trusted.xml", _no_args),
            (trusted, _callgate_sip(True), "uac_trusted.xml", _no_args),
            (digest, _callgate_sip(False), "uac_auth.xml", _auth_args),
        ]
        if round_ % 2:
            sides.reverse()
        for figures, start, scenario, extra in sides:
            figures.append(_search(start, scenario, seconds, extra))
    ratio = paired_ratio(trusted, ceiling)

    def spread(values: list[float]) -> str:
        return "rounds " + ", ".join(f"{v:,.0f}" for v in values)

    return [
        Row("INVITE->302 max rate, trusted peer, decision incl.", median(trusted), "calls/s",
            baseline=median(ceiling), baseline_what=CEILING,
            target=f">= {RATIO_TARGET:.2f}x", met=ratio >= RATIO_TARGET, paired_ratio=ratio,
            note=f"{spread(trusted)}; ceiling {spread(ceiling)}"),
        Row("INVITE->401->INVITE->302, digest auth", median(digest), "calls/s",
            baseline=median(ceiling), baseline_what=CEILING, paired_ratio=paired_ratio(
                digest, ceiling), note=f"{spread(digest)}; two transactions a call"),
    ]
