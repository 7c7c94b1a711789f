"""``python -m bench [all|micro|http|redis|sip|loadtest|instructions]``: the benchmarks, one table.

``micro`` is everything in process (caller-ID resolution, the decision with and without its
store, the blocking check); ``http`` is ``/v1/dial`` under wrk on the embedded store; ``redis``
is ``/v1/dial`` on the Redis store (a throwaway ``redis-server`` per run) against one EVALSHA
behind aiohttp, one process and two, its round trips per dial counted on Redis, and latency
at half its peak under an open-loop load, a burst of 1,000 dials released at once on 4 workers
beside the ceiling app under the same burst, the Redis memory a call in progress and a sticky
caller ID take, and Redis's instructions per dial under callgrind beside the ceiling's;
``sip`` is the highest INVITE->302 rate sipp gets with no failure and no retransmission,
against a minimal UDP responder; ``loadtest`` is ``callgate loadtest --max --concurrency 32``
on wrk's workload (context, no target); ``instructions`` (not part of ``all``: it takes
minutes) counts instructions per operation under callgrind. Progress goes to stderr, the table
to stdout. The exit status is 0 whether targets are met or missed (this is a report); it is 1
only when the harness itself fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from importlib.metadata import version

from . import (
    blocking,
    http,
    inprocess,
    instructions,
    loadtest,
    micro,
    redis_burst,
    redis_http,
    redis_instructions,
    redis_memory,
    sip,
)
from .report import Row, Section, format_table

ISSUE_PHONENUMBERS_US = "45-65 µs"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "part",
        nargs="?",
        choices=["all", "micro", "http", "redis", "sip", "loadtest", "instructions"],
        default="all",
    )
    parser.add_argument("--rounds", type=int, default=5, help="in-process rounds (default 5)")
    parser.add_argument("--http-rounds", type=int, default=5, help="HTTP rounds (default 5)")
    parser.add_argument(
        "--redis-rounds", type=int, default=3, help="Redis HTTP rounds (default 3)"
    )
    parser.add_argument(
        "--sip-rounds", type=int, default=3, help="SIP rate-search rounds (default 3)"
    )
    parser.add_argument(
        "--sip-seconds", type=int, default=4, help="length of each sipp trial (default 4)"
    )
    parser.add_argument(
        "--seconds", type=int, default=6, help="length of each measured wrk run (default 6)"
    )
    return parser


def _wrk_version() -> str:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "wrk missing"
    return (done.stdout or done.stderr).split("\n")[0].split(" [")[0]


def _redis_version() -> str:
    try:
        done = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=10
        )
    except OSError:
        return "redis-server missing"
    found = re.search(r"v=(\S+)", done.stdout)
    return f"redis-server {found.group(1) if found else '?'}"


def _footnotes(sections: Sequence[Section], elapsed_s: float) -> list[str]:
    rows = [row for _, rows in sections for row in rows]
    phonenumbers = next((r.baseline for r in rows if r.baseline_what == "phonenumbers"), None)
    ceilings = {r.baseline_what for r in rows}
    notes = [
        "ratio: callgate / baseline, the median of the per-round ratios (each round measures "
        "both sides back to back, in alternating order);",
        "absolute targets are judged on callgate's median. phonenumbers = parse + "
        "is_valid_number + number_type of the same numbers;",
        "aiohttp+msgspec = bench/baseline_app.py, one process, under the same wrk run "
        "(-t1 -c32, unique destination per request).",
    ]
    if redis_http.CEILING in ceilings:
        notes += [
            f"{redis_http.CEILING} = bench/redis_baseline_app.py: baseline_app's handler plus "
            "one EVALSHA (TIME, ZADD, ZCARD) via redis.asyncio + hiredis, 64-connection "
            "blocking pool, no deadline;",
            "  same wrk run as callgate's, each side on a fresh redis-server and fresh "
            "processes; 2 processes = N processes on one port (SO_REUSEPORT), for callgate "
            "`serve --workers 2`;",
            "  open loop = callgate loadtest --rate (engine/loadtest): requests at fixed "
            f"intervals over {redis_http.OPEN_LOOP_CONNECTIONS} keep-alive connections, latency "
            "from each request's scheduled send time (no coordinated omission); its note gives "
            "the same generator against aiohttp+msgspec (no Redis).",
        ]
    if sip.CEILING in ceilings:
        notes.append(
            f"{sip.CEILING} = bench/sip_baseline.py: a 302 built from the INVITE's lines on the "
            "default asyncio loop; each figure is the highest sipp rate (UDP, trials of "
            "--sip-seconds) with no failed call and no retransmission, found by doubling then "
            "bisecting, a fresh server per trial."
        )
    if phonenumbers is not None:
        notes.append(
            f"Machine speed check: phonenumbers cost {phonenumbers:.1f} µs per number in this "
            f"run (the issue measured {ISSUE_PHONENUMBERS_US} on this machine)."
        )
    notes.append(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, phonenumbers "
        f"{version('phonenumbers')}, aiohttp {version('aiohttp')}, {_wrk_version()}"
        + (f", {_redis_version()}, redis-py {version('redis')}" if redis_http.CEILING in ceilings
           else "")
        + f"; whole run {elapsed_s:.0f} s."
    )
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    sections: list[tuple[str, list[Row]]] = []
    try:
        if args.part in ("all", "micro"):
            print("callerid resolution and normalise ...", file=sys.stderr, flush=True)
            sections.append(("callerid resolution, normalise (pure)", micro.run(args.rounds)))
            print("full decision in process, embedded store ...", file=sys.stderr, flush=True)
            sections.append(
                ("full decision in process, embedded store, no HTTP", inprocess.run(args.rounds))
            )
            print("blocking calls on the event loop ...", file=sys.stderr, flush=True)
            sections.append(("event loop", blocking.run()))
        if args.part == "instructions":
            print("instructions per operation under callgrind ...", file=sys.stderr, flush=True)
            sections.append(("instructions per operation (callgrind)", instructions.run()))
        if args.part in ("all", "http"):
            print("HTTP /v1/dial under wrk ...", file=sys.stderr, flush=True)
            sections.append(
                ("HTTP, one process each", http.run(args.http_rounds, args.seconds))
            )
        if args.part in ("all", "redis"):
            print("HTTP /v1/dial on the Redis store ...", file=sys.stderr, flush=True)
            sections.append(
                ("HTTP on the Redis store", redis_http.run(args.redis_rounds, args.seconds))
            )
            print("a burst of 1,000 dials on the Redis store ...", file=sys.stderr, flush=True)
            sections.append(
                ("a burst on the Redis store, beside the ceiling app",
                 redis_burst.run(args.redis_rounds))
            )
            print("Redis memory per call and per sticky caller ID ...", file=sys.stderr, flush=True)
            sections.append(("Redis memory (for sizing)", redis_memory.run()))
            print("Redis instructions per dial under callgrind ...", file=sys.stderr, flush=True)
            sections.append(("Redis instructions per dial (callgrind: steady where the clock "
                             "is not)", redis_instructions.run()))
        if args.part in ("all", "sip"):
            print("SIP INVITE -> 302 under sipp ...", file=sys.stderr, flush=True)
            sections.append(
                ("SIP redirect server, UDP, sipp on the same machine",
                 sip.run(args.sip_rounds, args.sip_seconds))
            )
        if args.part in ("all", "loadtest"):
            print("callgate loadtest --max ...", file=sys.stderr, flush=True)
            sections.append(
                ("callgate loadtest (the operators' generator), embedded store",
                 loadtest.run(args.seconds))
            )
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print("bench: the harness failed (above); no report", file=sys.stderr)
        return 1
    title = f"callgate benchmarks ({args.part}): medians of interleaved rounds"
    print(format_table(title, sections, _footnotes(sections, time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
