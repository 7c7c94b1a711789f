"""The run itself (I/O): ``main`` reads the options, ``prepare``s, then ``_Run`` sends the dials
(open or closed loop), each sender on a ``Connection`` of its own, and the ends on an aiohttp
client session, with the live progress line, and ``main`` prints the report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence

import aiohttp
import msgspec

from callerid import Outcome

from ..errors import ConfigurationError
from ..numbers import load_metadata
from ..wire import DialRequest, EndRequest
from .connection import Connection
from .options import Plan, add_arguments, plan_from, read_destinations
from .preflight import NETWORK_ERRORS, Setup, encode, failure_of, prepare, problem_text
from .stats import (
    LATE_MS,
    Ends,
    Failure,
    Histogram,
    Progress,
    Report,
    Schedule,
    Tally,
    progress_line,
    render_table,
    summarise,
)

__all__ = ["main", "standalone"]

_DESCRIPTION = "``callgate loadtest``: a load generator for ``POST /v1/dial``, to size a campaign."
_EARLY_S = 0.0005
"""Timers wake up to a millisecond late, so the scheduler wakes half a millisecond early; a
request sent before its time is timed from its actual send."""
BACKLOG = 100_000
"""The most open-loop requests queued for a connection; past it, due requests are not sent
and are counted (``Failure.BACKLOG``), so that a dead server cannot eat the memory. (Requests
queued longer than ``--timeout`` are dropped as timeouts when their turn comes.)"""


class _Answer(msgspec.Struct):
    allowed: bool
    call_id: str | None = None
    """None from a server that is not callgate (the benchmarks' baselines): nothing to end."""
    rule: str | None = None
    reason: str | None = None

_answer = msgspec.json.Decoder(_Answer)
_END_BODY = encode(EndRequest(outcome=Outcome.ANSWERED))


class _Run:
    """One load test: the dials (open or closed loop) on ``concurrency`` connections, one per
    sender, the ends on an aiohttp session, and the live progress line."""

    def __init__(self, plan: Plan, setup: Setup, ends_session: aiohttp.ClientSession) -> None:
        self.plan = plan
        self.setup = setup
        self.ends_session = ends_session
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(plan.seed)
        self.idle_senders = 0
        """Open loop: senders waiting for a request, each on a free connection."""
        self.everything = Tally()
        self.measured = Tally()
        self.window = Histogram()
        self.ends = Ends()
        self.ends_group: asyncio.TaskGroup | None = None  # set by run()
        self.held: deque[tuple[float, str]] = deque()  # (when to end, call id), oldest first
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
        take them in order. (A task per request waiting for a free connection costs the
        generator several times more once the server falls behind.) A request due while
        every connection is busy is marked so, to tell its lateness from the generator's."""
        queue: asyncio.Queue[tuple[float, bool, bool] | None] = asyncio.Queue()
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
                waiting = queue.qsize()
                if waiting >= BACKLOG:
                    for tally in self._tallies(measured):
                        tally.sent += 1
                        tally.failure(Failure.BACKLOG, f"over {BACKLOG:,} requests waiting")
                    continue
                queue.put_nowait((at, measured, waiting >= self.idle_senders))
            i = due
            await asyncio.sleep(0)
        if self.stopping:  # interrupted: what was never sent is not counted
            while not queue.empty():
                queue.get_nowait()
        for _ in range(self.plan.concurrency):
            queue.put_nowait(None)

    def _connection(self) -> Connection:
        return Connection(self.plan.url, "/v1/dial", self.plan.token)

    async def _sender(self, queue: asyncio.Queue[tuple[float, bool, bool] | None]) -> None:
        connection = self._connection()
        try:
            while True:
                self.idle_senders += 1
                item = await queue.get()
                self.idle_senders -= 1
                if item is None:
                    return
                scheduled_s, measured, busy = item
                waited_s = self.loop.time() - scheduled_s
                left_s = self.plan.timeout_s - waited_s
                if left_s <= 0:
                    # It waited for a connection longer than the timeout: a timeout, as the
                    # request's deadline counts that wait too; not sent.
                    for tally in self._tallies(measured):
                        tally.sent += 1
                        tally.failure(Failure.TIMEOUT, "waited longer than --timeout for a "
                                      "connection")
                    continue
                if busy and measured and waited_s * 1e3 > LATE_MS:
                    self.measured.waited += 1
                await self._dial(connection, scheduled_s, measured, left_s)
        finally:
            connection.close()

    async def _worker(self) -> None:
        connection = self._connection()
        try:
            while not self.stopping:
                now = self.loop.time()
                if now >= self.stop_s:
                    return
                if now < self.start_s:
                    await asyncio.sleep(self.start_s - now)
                    continue
                await self._dial(connection, None, now >= self.measure_from_s)
        finally:
            connection.close()

    def _tallies(self, measured: bool) -> tuple[Tally, ...]:
        return (self.everything, self.measured) if measured else (self.everything,)

    async def _dial(self, connection: Connection, scheduled_s: float | None, measured: bool,
                    timeout_s: float | None = None) -> None:
        """One dial, timed from ``scheduled_s`` (open loop) or from its send."""
        tallies = self._tallies(measured)
        body = encode(DialRequest(user=self.rng.choice(self.setup.users),
                                  to=self.setup.destinations.take(self.rng)))
        started = self.loop.time()
        since = started if scheduled_s is None else min(started, scheduled_s)
        for tally in tallies:
            tally.sent += 1
        try:
            async with asyncio.timeout(timeout_s or self.plan.timeout_s):
                reply = await connection.post(body)
        except NETWORK_ERRORS as exc:
            for tally in tallies:
                tally.failure(failure_of(exc), str(exc) or type(exc).__name__)
            return
        ms = (self.loop.time() - since) * 1e3
        self.window.record(ms)
        if reply.status != 200:
            detail = problem_text(reply.status, reply.body)
            for tally in tallies:
                tally.http_error(ms, reply.status, detail)
            return
        try:
            answer = _answer.decode(reply.body)
        except msgspec.DecodeError as exc:
            for tally in tallies:
                tally.failure(Failure.BAD_ANSWER, str(exc))
            return
        label = (answer.rule if answer.allowed else answer.reason) or "?"
        for tally in tallies:
            tally.decision(ms, answer.allowed, label)
        if answer.allowed:
            self.ends.allowed += 1
            if not self.plan.end_calls or answer.call_id is None:
                return
            if self.plan.hold_s == 0 and self.ends_group is not None:
                self.ends_group.create_task(self._end(answer.call_id))
            else:
                self.held.append((self.loop.time() + self.plan.hold_s, answer.call_id))
                self.held_wake.set()

    async def _ender(self, ends: asyncio.TaskGroup) -> None:
        """End each held call when its time comes (all of them once the run stops). The hold
        is the same for every call, so the queue is in the order they are due."""
        while True:
            now = self.loop.time()
            while self.held and (self.stopping or self.held[0][0] <= now):
                ends.create_task(self._end(self.held.popleft()[1]))
            if self.stopping:
                return
            self.held_wake.clear()
            timeout = (self.held[0][0] - now) if self.held else None
            try:
                async with asyncio.timeout(timeout):
                    await self.held_wake.wait()
            except TimeoutError:
                pass

    async def _end(self, call_id: str) -> None:
        self.ends.sent += 1
        try:
            url = f"{self.plan.url}/v1/calls/{call_id}/end"
            async with self.ends_session.post(url, data=_END_BODY) as response:
                status = response.status
                await response.read()
        except NETWORK_ERRORS as exc:
            kind = str(failure_of(exc))
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
                async with asyncio.timeout(max(0.0, self.start_s + tick - self.loop.time())):
                    await self.finished.wait()
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
    # The session asks the preflight's questions, then sends the ends, on connections of
    # their own: ends never wait behind dials, nor take a dial's connection.
    async with _session(plan) as session:
        setup = await prepare(session, plan, listed, _say)
        how = (f"{plan.rate:,.0f} dials/s" if plan.rate is not None
               else f"as fast as {plan.concurrency} connections go")
        _say(f"{how} for {plan.duration_s:g} s (+{plan.warmup_s:g} s warm-up) against "
             f"{plan.url}, as {len(setup.users)} user(s), {setup.described}")
        run = _Run(plan, setup, session)
        # What is loaded by now (modules, the prefilled numbers) lives for the whole run: out
        # of the collector's passes, a full collection during the run is no pause of note.
        gc.freeze()
        loop = asyncio.get_running_loop()
        # Not the main thread, or no signals here: Ctrl-C then stops it cold.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, run.stop)
        cpu_s, wall_s = time.process_time(), loop.time()
        try:
            await run.run()
        finally:
            cpu_s, wall_s = time.process_time() - cpu_s, loop.time() - wall_s
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGINT)
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


def standalone(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.loadtest ...``: ``callgate loadtest`` without the rest of the CLI
    (the benchmarks and the tests run it so)."""
    parser = argparse.ArgumentParser(prog="callgate loadtest", description=_DESCRIPTION)
    add_arguments(parser)
    try:
        return main(parser.parse_args(argv))
    except ConfigurationError as exc:
        print(f"callgate loadtest: error: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

