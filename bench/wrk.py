"""Driving Debian's ``wrk`` (``make bench-tools`` installs it) and reading its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from string import Template

__all__ = ["WrkResult", "parse", "run", "write_script"]

# Each request dials a New York number (+1 212 NXX XXXX, NXX from 200: all valid) that no
# other request of the run dials: a counter, not math.random, so a repeat (which callgate
# answers from its parse cache) cannot happen. One wrk thread (-t1) means one Lua state, so
# one counter. The baseline ignores the Authorization header.
_SCRIPT = Template(
    """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
local counter = $offset
request = function()
  counter = counter + 1
  local n = 2000000 + counter % $cycle
  return wrk.format(nil, "/v1/dial", nil, '{"user":"$user","to":"+1212' .. n .. '"}')
end
"""
)


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def write_script(
    path: Path, *, token: str, user: str, offset: int, repeat_every: int | None = None
) -> Path:
    """A script dialling numbers from ``offset`` on: give each run against one server its own
    range (the warm-up's numbers would otherwise come back, answered from the parse cache).
    With ``repeat_every``, it dials the same ``repeat_every`` numbers over and over instead."""
    cycle = repeat_every if repeat_every is not None else 8_000_000
    path.write_text(_SCRIPT.substitute(token=token, user=user, offset=offset, cycle=cycle))
    return path


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse(output: str) -> WrkResult:
    """The figures of ``wrk --latency``'s report; ValueError when one is missing."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ", output, re.M)
    latency = {
        q: float(v) * _UNIT_MS[unit]
        for q, v, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    if rps is None or total is None or "50" not in latency or "99" not in latency:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, sockets.groups())) if sockets else 0,
    )


def executable() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run `make bench-tools` (Debian package wrk)")
    return found


def run(url: str, script: Path, *, seconds: int, connections: int = 32) -> WrkResult:
    argv = [
        executable(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(script), url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return parse(done.stdout)
