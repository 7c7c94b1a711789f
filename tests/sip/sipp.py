"""Running sipp against callgate's SIP front end, and reading what it saw."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port

__all__ = ["SCENARIOS", "SippRun", "run_sipp"]

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


@dataclass
class SippRun:
    exit_code: int
    outcomes: list[str]
    """What the scenario logged, one line a call (``outcome 302 +1...``)."""
    errors: str


def run_sipp(
    target: tuple[str, int],
    scenario: str,
    *args: str,
    workdir: Path,
    calls: int = 1,
    rate: float = 10,
    limit: int | None = None,
    transport: str = "udp",
    source: str = "127.0.0.1",
    timeout_s: float = 60,
) -> SippRun:
    """Run ``scenario`` (a file in ``scenarios/``) for ``calls`` calls at ``rate`` a second,
    at most ``limit`` at once, from ``source`` on a free port. ``transport``: ``udp`` (one
    socket), ``udp-per-call`` (a socket a call: a new source port each, so SO_REUSEPORT
    spreads the calls over worker processes) or ``tcp``."""
    workdir.mkdir(parents=True, exist_ok=True)
    mode = {"udp": "u1", "tcp": "t1", "udp-per-call": "un"}[transport]
    command = [
        "sipp", f"{target[0]}:{target[1]}", "-sf", str(SCENARIOS / scenario),
        "-m", str(calls), "-r", str(rate), "-l", str(limit or calls), "-t", mode,
        "-max_socket", "1000",
        "-i", source, "-p", str(free_port()), "-nostdin", "-trace_err", "-trace_logs",
        "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-recv_timeout", "10000", *args,
    ]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                          timeout=timeout_s + 30)
    logs = "".join(p.read_text() for p in workdir.glob("*_logs.log"))
    errors = "".join(p.read_text() for p in workdir.glob("*_errors.log"))
    outcomes = re.findall(r"^outcome .*$", logs, re.MULTILINE)
    return SippRun(done.returncode, outcomes, errors + done.stderr[-2000:])
