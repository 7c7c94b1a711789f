"""``python -m bench [all|micro|http|instructions]``: run the benchmarks, print one table.

``micro`` is everything in process (caller-ID resolution, the decision with and without its
store, the blocking check); ``http`` is ``/v1/dial`` under wrk; ``instructions`` (not part of
``all``: it takes minutes) counts instructions per operation under callgrind. Progress goes to
stderr, the table to stdout. The exit status is 0 whether targets are met or missed (this is a report);
it is 1 only when the harness itself fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from importlib.metadata import version

from . import blocking, http, inprocess, instructions, micro
from .report import Row, Section, format_table

ISSUE_PHONENUMBERS_US = "45-65 µs"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "part", nargs="?", choices=["all", "micro", "http", "instructions"], default="all"
    )
    parser.add_argument("--rounds", type=int, default=5, help="in-process rounds (default 5)")
    parser.add_argument("--http-rounds", type=int, default=5, help="HTTP rounds (default 5)")
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


def _footnotes(sections: Sequence[Section], elapsed_s: float) -> list[str]:
    rows = [row for _, rows in sections for row in rows]
    phonenumbers = next((r.baseline for r in rows if r.baseline_what == "phonenumbers"), None)
    notes = [
        "ratio: callgate / baseline, the median of the per-round ratios (each round measures "
        "both sides back to back, in alternating order);",
        "absolute targets are judged on callgate's median. phonenumbers = parse + "
        "is_valid_number + number_type of the same numbers;",
        "aiohttp+msgspec = bench/baseline_app.py, one process, under the same wrk run "
        "(-t1 -c32, unique destination per request).",
    ]
    if phonenumbers is not None:
        notes.append(
            f"Machine speed check: phonenumbers cost {phonenumbers:.1f} µs per number in this "
            f"run (the issue measured {ISSUE_PHONENUMBERS_US} on this machine)."
        )
    notes.append(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, phonenumbers "
        f"{version('phonenumbers')}, aiohttp {version('aiohttp')}, {_wrk_version()}; "
        f"whole run {elapsed_s:.0f} s."
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
