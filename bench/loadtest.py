"""``callgate loadtest --max --concurrency 32`` against a fresh ``callgate serve`` on the bench
account: what the operators' own load generator measures, beside wrk's figure in ``http``.

The workload is wrk's (user ``ana``, a new number per dial, no end sent), so the two rows
differ only by the generator: callgate loadtest is Python on aiohttp's client and, on a 2-core
machine, takes CPU from the server that wrk (C) does not. Its figures are context, with no
target. It runs as a process of its own (``python -m engine.loadtest``: the same run as
``callgate loadtest``), and reports as JSON.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import msgspec

from engine import configfile
from engine.loadtest import Report

from .http import _callgate, _serving_demo, free_port
from .report import Row
from .workload import BENCH_USER, ROOT, bench_account

__all__ = ["CONCURRENCY", "loadtest", "run"]

CONCURRENCY = 32


def loadtest(url: str, token: str, seconds: int, pace: tuple[str, ...], concurrency: int) -> Report:
    """``callgate loadtest`` against ``url`` as a process of its own (no GIL shared with the
    harness), paced by ``pace`` (``("--max",)`` or ``("--rate", N)``): wrk's workload (the
    bench user, a new number per dial, no end sent) over ``concurrency`` keep-alive
    connections, after a second of warm-up it leaves out. Its report is read from its
    ``--json``."""
    argv = [
        sys.executable, "-m", "engine.loadtest", "--url", url, "--token", token, *pace,
        "--concurrency", str(concurrency), "--duration", str(seconds), "--warmup", "1",
        "--users", BENCH_USER, "--repeat-share", "0", "--no-end", "--json",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 90, cwd=ROOT)
    if done.returncode not in (0, 1):  # 1: over --max-errors, which the report shows
        raise RuntimeError(f"callgate loadtest failed ({done.returncode}):\n{done.stderr}")
    return msgspec.json.decode(done.stdout.strip().splitlines()[-1], type=Report)


def run(seconds: int = 6) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="callgate-bench-loadtest-") as name:
        tmp = Path(name)
        account = tmp / "bench-account.toml"
        account.write_bytes(configfile.encode(bench_account(lease_ttl_s=3600), "toml"))
        port = free_port()
        argv = [_callgate(), "serve", "--data", str(tmp / "data"), "--port", str(port),
                "--demo", str(account)]
        with _serving_demo(argv, port) as server:
            report = loadtest(server.url, server.token, seconds, ("--max",), CONCURRENCY)
    allowed, denied = sum(report.allowed.values()), sum(report.denied.values())
    print(f"  loadtest: {report.rate:,.0f} req/s, {report.sent:,} sent, {allowed:,} allowed, "
          f"{denied:,} denied, {report.errors:,} errors", file=sys.stderr, flush=True)
    busy = report.generator_cpu_s / max(report.run_s, 1e-9)
    errors = [f"HTTP {status}: {n:,}" for status, n in report.http_errors.items()]
    errors += [f"{kind}: {n:,}" for kind, n in report.failures.items()]
    note = (f"{report.sent:,} dials in {report.measured_s:.0f} s: {allowed:,} allowed, "
            f"{denied:,} denied, {report.errors:,} errors"
            + (f" ({', '.join(errors)})" if errors else "")
            + f"; the generator (Python, one core) was {busy:.0%} busy, on the server's machine")
    latency = report.latency
    what = f"callgate loadtest --max -c{CONCURRENCY}"
    return [
        Row(f"{what}: throughput (wrk's workload)", report.rate, "req/s", note=note),
        Row("  same: latency p50", latency.p50_ms if latency else float("nan"), "ms"),
        Row("  same: latency p99", latency.p99_ms if latency else float("nan"), "ms"),
    ]
