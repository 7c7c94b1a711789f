"""``callgate loadtest``: its pure parts (options, pacing, percentiles, numbers, the table) as
plain functions, then real runs against a real ``callgate serve``."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import phonenumbers
import pytest

from engine import loadtest
from engine.errors import ConfigurationError
from engine.loadtest import (
    Destinations,
    Ends,
    Failure,
    Histogram,
    Loop,
    NumberSource,
    Progress,
    Report,
    Schedule,
    Tally,
    plan_from,
    progress_line,
    read_destinations,
    render_table,
    summarise,
)
from engine.loadtest.connection import Answer, AnswerReader, BadAnswer
from engine.loadtest.run import main, standalone

from ..conftest import CALLGATE, ROOT, Server, free_port


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    loadtest.add_arguments(parser)
    return parser.parse_args(argv)


# -- options ---------------------------------------------------------------------------------


def test_options_take_url_and_token_from_the_environment() -> None:
    plan = plan_from(parse("--rate", "50"), {"CALLGATE_URL": "http://h:9/", "CALLGATE_TOKEN": "t"})
    assert (plan.url, plan.token, plan.loop, plan.rate) == ("http://h:9", "t", Loop.OPEN, 50.0)
    assert (plan.repeat_share, plan.max_errors_pct, plan.end_calls) == (0.3, 1.0, True)


def test_max_is_the_closed_loop() -> None:
    plan = plan_from(parse("--max", "--token", "t", "--max-errors", "0.5%"), {})
    assert (plan.loop, plan.rate, plan.max_errors_pct) == (Loop.CLOSED, None, 0.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "give --rate N .* or --max .*neither"),
        (("--rate", "5", "--max"), "not both"),
        (("--rate", "fast"), "--rate: expected requests per second over 0 .* got 'fast'"),
        (("--rate", "0"), "--rate: expected requests per second over 0"),
        (("--max", "--concurrency", "0"), "--concurrency: expected connections from 1"),
        (("--max", "--concurrency", "2.5"), "--concurrency: expected a whole number"),
        (("--max", "--duration", "-1"), "--duration"),
        (("--max", "--repeat-share", "1.5"), "--repeat-share: expected a share from 0 to 1"),
        (("--max", "--hold", "5", "--no-end"), "--hold .* --no-end"),
        (("--max", "--region", "XX"), "--region: 'XX' is not an ISO region"),
        (("--max", "--destinations", "f.txt", "--region", "US"), "--region is for generated"),
        (("--max", "--max-errors", "lots"), "--max-errors: expected a percentage"),
        (("--max", "--url", "ftp://h"), "--url: expected http://HOST"),
        (("--max", "--users", " , "), "--users: expected a comma-separated list"),
    ],
    ids=["neither", "both", "rate-text", "rate-zero", "concurrency", "concurrency-whole",
         "duration", "share",
         "hold-no-end", "region", "region-with-file", "max-errors", "url", "users"],
)
def test_bad_option_is_a_configuration_error_naming_it(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        plan_from(parse(*argv), {"CALLGATE_TOKEN": "t"})


def test_no_token_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"--token .*CALLGATE_TOKEN"):
        plan_from(parse("--max"), {})


def test_bad_option_is_one_line_and_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert standalone(["--rate", "-3", "--token", "t"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("callgate loadtest: error: --rate")


def test_destinations_file_skips_blank_lines_and_comments() -> None:
    text = "# campaign list\n+12125550187\n\n(310) 555-0123  # LA\n"
    assert read_destinations(text, "f") == ("+12125550187", "(310) 555-0123")
    with pytest.raises(ConfigurationError, match="no number"):
        read_destinations("# nothing\n", "f")


# -- pacing ----------------------------------------------------------------------------------


def test_schedule_spaces_requests_at_fixed_intervals() -> None:
    schedule = Schedule(200.0, 10.0)
    assert [schedule.at(i) for i in (0, 1, 200)] == [10.0, 10.005, 11.0]
    assert schedule.before(13.0) == 600  # exactly rate x seconds in a window
    assert schedule.before(10.0) == 0


def test_schedule_makes_every_overdue_request_due_at_once() -> None:
    schedule = Schedule(1000.0, 0.0)
    assert schedule.due(-0.5) == 0
    assert schedule.due(0.0) == 1
    assert schedule.due(0.0005) == 1
    # A 250 ms stall of the generator: the 250 requests it missed are all due now, none
    # dropped, so their latency (from their scheduled time) shows the stall.
    assert schedule.due(0.25) == 251


# -- answers read off a dial's connection ----------------------------------------------------


ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n"
          b"Date: Thu, 03 Dec 2026 10:00:00 GMT\r\n\r\n" b'{"allowed":true}')


def test_answers_split_anywhere_are_read_whole_and_in_order() -> None:
    stream = ANSWER + ANSWER.replace(b"200 OK", b"429 Too Many Requests")
    for cut in range(len(stream) + 1):
        reader = AnswerReader()
        answers = []
        for part in (stream[:cut], stream[cut:]):
            reader.feed(part)
            while (answer := reader.next_answer()) is not None:
                answers.append(answer)
        assert answers == [Answer(200, b'{"allowed":true}', False),
                           Answer(429, b'{"allowed":true}', False)], cut


def test_chunked_answer_interim_answer_and_connection_close() -> None:
    reader = AnswerReader()
    reader.feed(b"HTTP/1.1 100 Continue\r\n\r\n"
                b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\n")
    assert reader.next_answer() is None  # the chunked body's end is not in yet
    reader.feed(b"\r\n")
    assert reader.next_answer() == Answer(503, b"hello world", True)
    reader.feed(b"HTTP/1.0 204 No Content\r\n\r\n")
    assert reader.next_answer() == Answer(204, b"", True)  # HTTP/1.0: closed unless kept


@pytest.mark.parametrize(("data", "message"), [
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\n\r\n{}", "neither Content-Length nor chunked"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length is not a number"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not a chunk size"),
])
def test_unreadable_answer_is_a_bad_answer_naming_what_is_wrong(data: bytes, message: str) -> None:
    reader = AnswerReader()
    reader.feed(data)
    with pytest.raises(BadAnswer, match=message):
        reader.next_answer()


# -- statistics ------------------------------------------------------------------------------


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_histogram_quantiles_are_nearest_rank_within_half_a_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(0.5, 1.0) for _ in range(20_000)]
    histogram = Histogram()
    for v in values:
        histogram.record(v)
    for q in (0.5, 0.9, 0.99, 0.999):
        assert histogram.quantile(q) == pytest.approx(nearest_rank(values, q), rel=0.005)
    assert histogram.quantile(1.0) == max(values) == histogram.max_ms


def test_histogram_of_few_samples() -> None:
    histogram = Histogram()
    assert histogram.quantile(0.5) == 0.0
    for v in (1.0, 2.0, 3.0, 4.0):
        histogram.record(v)
    assert histogram.quantile(0.5) == pytest.approx(2.0, rel=0.005)
    assert histogram.quantile(0.99) == 4.0


# -- destinations ----------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["US", "CA", "GB", "FR", "IT", "DE", "AG"])
def test_generated_numbers_are_valid_distinct_and_diallable(region: str) -> None:
    numbers = [n for n, _ in zip(NumberSource([region], seed=1), range(300), strict=False)]
    assert len(set(numbers)) == len(numbers)
    for number in numbers:
        parsed = phonenumbers.parse(number, None)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.region_code_for_number(parsed) == region, number
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
        assert phonenumbers.number_type(parsed) in (
            phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE), number


def test_generated_numbers_take_each_region_in_turn() -> None:
    numbers = [n for n, _ in zip(NumberSource(["US", "GB"], seed=1), range(10), strict=False)]
    assert [n.startswith("+44") for n in numbers] == [False, True] * 5
    assert all(n.startswith("+1") for n in numbers[::2])


def test_seeded_number_sources_agree_and_unseeded_ones_differ() -> None:
    def first(seed: int | None) -> list[str]:
        return [n for n, _ in zip(NumberSource(["US"], seed=seed), range(5), strict=False)]

    assert first(3) == first(3)
    assert first(None) != first(None)


def test_repeat_share_is_the_share_of_dials_to_a_number_dialled_before() -> None:
    destinations = Destinations(fresh=NumberSource(["US"], seed=2), repeat_share=0.3)
    rng = random.Random(5)
    seen: set[str] = set()
    repeats = 0
    for _ in range(5000):
        number = destinations.take(rng)
        repeats += number in seen
        seen.add(number)
    assert repeats / 5000 == pytest.approx(0.3, abs=0.03)


def test_listed_destinations_are_dialled_in_turn() -> None:
    destinations = Destinations(listed=["a", "b", "c"])
    rng = random.Random(0)
    assert [destinations.take(rng) for _ in range(5)] == ["a", "b", "c", "a", "b"]


# -- the table -------------------------------------------------------------------------------


def sample_report() -> Report:
    tally = Tally()
    tally.sent = 1000
    for i in range(900):
        tally.decision(1.0 + i / 900, True, "user_default" if i % 3 else "sticky")
    for _ in range(80):
        tally.decision(0.8, False, "channel_limit")
    for _ in range(15):
        tally.http_error(2.0, 404, "no user 'bob' in this account")
    for _ in range(5):
        tally.failure(Failure.TIMEOUT, "")
    plan = plan_from(parse("--rate", "100", "--duration", "10", "--url", "http://h:1"),
                     {"CALLGATE_TOKEN": "t"})
    return summarise(tally, Ends(sent=900, ok=899, failed={"HTTP 409": 1}, allowed=900), plan,
                     measured_s=10.0, users=("ana", "bob"), destinations="numbers generated in US",
                     run_s=11.0, generator_cpu_s=9.9)


def test_table_shows_rate_latency_and_every_outcome_with_its_share() -> None:
    table = render_table(sample_report())
    lines = table.splitlines()
    assert "open loop at 100 req/s over 32 connections" in lines[0]

    def row(label: str) -> list[str]:
        found = [line.split() for line in lines if re.match(rf"\s*{re.escape(label)}\s+\d", line)]
        assert found, f"no row {label!r} in:\n{table}"
        return found[0]

    assert row("requests/s")[1:] == ["99.5", "(target", "100)"]  # 995 HTTP answers in 10 s
    assert row("requests sent")[-1] == "1,000"
    assert row("allowed")[-2:] == ["900", "90.0%"]
    assert row("user_default")[-2:] == ["600", "60.0%"]
    assert row("sticky")[-2:] == ["300", "30.0%"]
    assert row("channel_limit")[-2:] == ["80", "8.0%"]
    assert row("HTTP errors")[-2:] == ["15", "1.5%"]
    assert row("404")[-2:] == ["15", "1.5%"]
    assert row("timeout")[-2:] == ["5", "0.5%"]
    assert "899 ok, 1 failed" in table
    assert re.search(r"^generator CPU\s+90%\s+of one core: it may be what limits the rate",
                     table, re.M)
    assert "HTTP 404: no user 'bob' in this account" in table
    header = next(i for i, line in enumerate(lines) if line.startswith("latency, ms"))
    assert lines[header].split()[2:] == ["p50", "p90", "p99", "p99.9", "max"]
    p50, p90, p99, p999, worst = map(float, lines[header + 1].split())
    assert p50 <= p90 <= p99 <= p999 <= worst == 2.0


def test_table_tells_waiting_for_a_connection_from_the_generator_falling_behind() -> None:
    report = msgspec.structs.replace(sample_report(), late=3, worst_late_ms=4.5, waited=120)
    table = render_table(report)
    assert re.search(r"^started over 1 ms late\s+3\s+\(worst 4\.50 ms: the generator fell "
                     r"behind\)$", table, re.M), table
    assert re.search(r"^waited for a connection\s+120\s+\(over 1 ms, all 32 busy: the server "
                     r"was slow\)$", table, re.M), table
    assert "waited for a connection" not in render_table(sample_report())


def test_report_errors_are_http_errors_and_failures() -> None:
    report = sample_report()
    assert (report.errors, report.error_pct) == (20, 2.0)


def test_report_round_trips_as_json() -> None:
    report = sample_report()
    assert msgspec.json.decode(msgspec.json.encode(report), type=Report) == report


def test_progress_line() -> None:
    line = progress_line(Progress(elapsed_s=3.0, sent=600, answered=598, rate=199.6,
                                  p50_ms=1.234, p99_ms=12.5, errors=2, warming=False))
    assert line == "   3.0 s  sent 600  answered 598  200/s  p50 1.23 ms  p99 12.5 ms  errors 2"


# -- real runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("loadtest") / "data").start()
    yield server
    server.kill()


def run_json(server: Server, *argv: str, token: str | None = None) -> tuple[int, Report, str]:
    done = subprocess.run(
        [sys.executable, "-m", "engine.loadtest", "--url", server.url, "--token",
         token or server.token, "--json", *argv],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, msgspec.json.decode(done.stdout, type=Report), done.stderr


def test_open_loop_run_prints_the_table_and_progress(
    running: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("--url", running.url, "--token", running.token, "--rate", "200",
                 "--duration", "3", "--warmup", "0.5", "--users", "ana,sam,gina,olivia",
                 "--seed", "11")
    assert main(args) == 0
    out, err = capsys.readouterr()
    sent = re.search(r"^requests sent\s+([\d,]+)$", out, re.M)
    assert sent is not None, out
    assert int(sent.group(1).replace(",", "")) == 600
    assert re.search(r"^requests/s\s+(19\d|20\d)\.\d\s+\(target 200\)$", out, re.M), out
    assert re.search(r"^allowed\s+[\d,]+\s+\d", out, re.M) and "user_default" in out
    assert re.search(r"^HTTP errors\s+0\s", out, re.M) and re.search(r"^no answer\s+0\s", out, re.M)
    # The live line, once a second (plain lines: stderr is not a terminal here).
    progress = re.findall(r"^\s+\d+\.\d s  sent [\d,]+  answered [\d,]+  [\d,]+/s  p50 ", err, re.M)
    assert len(progress) >= 3, err


def test_closed_loop_gives_every_channel_back(running: Server) -> None:
    status, report, _ = run_json(running, "--max", "--concurrency", "8", "--duration", "1",
                                 "--warmup", "0", "--users", "ana,sam,gina,olivia")
    assert status == 0
    assert report.loop is Loop.CLOSED and report.sent > 100 and report.errors == 0
    assert sum(report.allowed.values()) > 0
    assert report.ends_sent == report.ends_ok and report.left_up == 0


def test_user_token_dials_as_its_user_in_the_accounts_regions_and_held_calls_end(
    running: Server, tmp_path: Path
) -> None:
    created = subprocess.run(
        [str(CALLGATE), "token", "create", "demo", "--user", "ana", "--name", "loadtest",
         "--data", str(running.data_dir)],
        capture_output=True, text=True, timeout=30,
    )
    assert created.returncode == 0, created.stderr
    status, report, err = run_json(running, "--rate", "50", "--duration", "1", "--warmup", "0",
                                   "--hold", "0.3", token=created.stdout.strip().splitlines()[-1])
    assert status == 0, err
    assert report.users == ("ana",)
    assert report.destinations.startswith("numbers generated in US, CA")  # the plan countries
    assert report.errors == 0
    # Held 0.3 s each, ana's two channels are soon in use; every held call is ended, those
    # still held at the stop included.
    assert report.denied.get("channel_limit", 0) > 0
    assert report.ends_sent == report.ends_ok == sum(report.allowed.values()) > 0


def test_closed_port_counts_connection_errors_without_a_traceback() -> None:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "engine.loadtest", "--url", f"http://127.0.0.1:{port}",
         "--token", "cg_x", "--rate", "100", "--duration", "1", "--warmup", "0",
         "--users", "ana"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 1  # every request failed: over --max-errors
    assert re.search(r"^  connection refused\s+100\s+100\.0%$", done.stdout, re.M), done.stdout
    assert "over --max-errors 1%" in done.stderr


@contextlib.contextmanager
def _serving(handler: type[socketserver.BaseRequestHandler]) -> Iterator[str]:
    """The URL of a threaded TCP server answering with ``handler``, for the duration: a
    stand-in server whose misbehaviour the generator has to survive."""
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


class _SlowDialHandler(socketserver.StreamRequestHandler):
    """A server slower than the rate it is sent: each dial answered after ``DELAY_S``, as a
    benchmark's baseline app answers (a decision with no call id); any other path a 404."""

    DELAY_S = 0.02

    def handle(self) -> None:
        while head := self.rfile.readline():
            request_line, length = head, 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.rfile.read(length)
            if request_line.startswith(b"POST /v1/dial "):
                time.sleep(self.DELAY_S)
                status, body = b"200 OK", b'{"allowed":true,"user":"ana"}'
            else:
                status, body = b"404 Not Found", b"404: Not Found"
            self.wfile.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n"
                             % len(body) + body)


def test_requests_waiting_for_a_busy_connection_are_counted_apart_from_the_generators_lateness(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One connection, answers every 20 ms, a request due every 10 ms: half the requests
    wait for the connection: their wait is in their latency, and they are counted as having
    waited. The allowed calls, with no call id, are not ended."""
    with _serving(_SlowDialHandler) as url:
        args = parse("--url", url, "--token", "t", "--rate", "100", "--duration", "1",
                     "--warmup", "0", "--concurrency", "1", "--users", "ana", "--timeout", "30",
                     "--json")
        assert main(args) == 0
    report = msgspec.json.decode(capsys.readouterr().out, type=Report)
    assert report.sent == report.answered == report.allowed["?"] == 100
    assert report.waited > 80
    assert report.latency is not None and report.latency.max_ms > 500  # ~1 s of backlog
    assert report.ends_sent == 0 and report.left_up == 100


class _HangUpHandler(socketserver.StreamRequestHandler):
    """Reads a request's head and hangs up without an answer."""

    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b""):
            pass


def test_server_hanging_up_counts_as_disconnected_and_the_next_dial_reconnects(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _serving(_HangUpHandler) as url:
        args = parse("--url", url, "--token", "t", "--rate", "20", "--duration", "1",
                     "--warmup", "0", "--concurrency", "1", "--users", "ana", "--json")
        assert main(args) == 1  # every dial failed: over --max-errors
    report = msgspec.json.decode(capsys.readouterr().out, type=Report)
    assert report.failures == {"server disconnected": 20}
    assert report.examples["server disconnected"].startswith("the server closed the connection")
