"""Instructions per operation under callgrind: figures that do not drift with the machine.

Wall-clock figures on this shared machine move by tens of percent between runs, which hides
changes of a few percent. ``valgrind --tool=callgrind`` counts instructions instead, and the
count repeats to well under one percent. Each workload runs twice in a fresh process, with
no operations and with N, and the difference divided by N is the cost of one operation
(start-up, metadata loading and the store's set-up cancel out). Every thread is counted, so a
dial's figure includes its share of the database thread's work.

Run: ``python -m bench instructions`` (a few minutes: valgrind slows Python about fiftyfold).
The child side is ``python -m bench.instructions WORKLOAD N``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import Row

__all__ = ["WORKLOADS", "run"]

WORKLOADS = {
    "phonenumbers": 2000,
    "normalise": 2000,
    "dial-fresh": 1024,
    "dial-repeated": 1024,
}
_IN_FLIGHT = 64


def _numbers(count: int) -> list[str]:
    # Valid New York numbers, each once (+1 212 NXX XXXX with NXX from 200).
    return [f"+1212{2_000_000 + i * 7:07d}" for i in range(count)]


def _child(workload: str, count: int) -> None:
    from engine.numbers import load_metadata, normalise

    load_metadata()
    if workload == "phonenumbers":
        import phonenumbers

        for text in _numbers(count):
            number = phonenumbers.parse(text, "US")
            phonenumbers.is_valid_number(number)
            phonenumbers.number_type(number)
        return
    if workload == "normalise":
        for text in _numbers(count):
            normalise(text, "US")
        return
    asyncio.run(_dials(workload, count))


async def _dials(workload: str, count: int) -> None:
    from prometheus_client import CollectorRegistry

    from engine.decide import Engine
    from engine.metrics import Metrics
    from engine.service import AccountService
    from engine.store import EmbeddedStore
    from engine.wire import DialRequest

    from .workload import BENCH_USER, bench_account

    with tempfile.TemporaryDirectory(prefix="callgate-instructions-") as tmp:
        store = EmbeddedStore(Path(tmp), exclusive=True)
        await store.open()
        engine = Engine(store, metrics=Metrics(CollectorRegistry(), store.lease_counts))
        await AccountService(store, on_saved=engine.install).put(bench_account())
        numbers = _numbers(count) if workload == "dial-fresh" else ["+12125550187"] * count
        pending = iter([DialRequest(user=BENCH_USER, to=n) for n in numbers])

        async def worker() -> None:  # one of _IN_FLIGHT, as a server has one task a connection
            for request in pending:
                if not (await engine.dial("demo", request)).allowed:
                    raise RuntimeError("a bench dial was denied: it would time a cheaper path")

        await asyncio.gather(*(worker() for _ in range(_IN_FLIGHT)))
        await store.close()


def _instructions(workload: str, count: int) -> int:
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, "-m", "bench.instructions", workload, str(count),
            ],
            check=True,
            capture_output=True,
            cwd=Path(__file__).resolve().parent.parent,
            timeout=1800,
        )
        found = re.search(r"^summary: (\d+)$", out.read_text(), re.M)
        if found is None:
            raise RuntimeError(f"no summary in callgrind's output for {workload}")
        return int(found.group(1))


def per_operation(workload: str) -> float:
    count = WORKLOADS[workload]
    return (_instructions(workload, count) - _instructions(workload, 0)) / count


def run() -> list[Row]:
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (Debian package valgrind)")
    figures = {}
    for workload in WORKLOADS:
        figures[workload] = per_operation(workload)
        print(f"  {workload}: {figures[workload]:,.0f} instructions", file=sys.stderr, flush=True)
    baseline = figures["phonenumbers"]
    what = "phonenumbers (instructions)"

    def row(label: str, workload: str, target: str = "", met: bool | None = None) -> Row:
        value = figures[workload] / 1000
        return Row(label, value, "k instr", baseline / 1000, what, target, met,
                   paired_ratio=figures[workload] / baseline)

    return [
        row("normalise, new number", "normalise"),
        row(
            "dial, new number, 64 in flight (all threads)",
            "dial-fresh",
            "<= 1.5x baseline",
            figures["dial-fresh"] <= 1.5 * baseline,
        ),
        row("dial, repeated number, 64 in flight (all threads)", "dial-repeated"),
    ]


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]))
