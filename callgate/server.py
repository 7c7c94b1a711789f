"""Start-up and shutdown of a callgate server: one process, or N worker processes sharing one
port (``SO_REUSEPORT``) and one Redis store, under a parent that restarts any that dies.

Each process opens its store, wires itself with ``callgate.assembly.assemble`` and runs what
that built: the HTTP APIs, and the SIP front end when configured."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
from aiohttp import web

from engine import configfile, logs
from engine.days import load_zones
from engine.errors import CallgateError, ConfigurationError
from engine.http import Lifecycle
from engine.numbers import load_metadata, load_numbering_plans
from engine.store import open_store
from engine.sync import refresh_once
from engine.tokens import issue_token
from sip.server import SipServer, tls_context

from . import PACKAGES
from .assembly import Assembly, assemble
from .settings import ServeSettings

__all__ = ["serve", "serve_workers"]

log = logging.getLogger("callgate")


async def _demo(parts: Assembly, path: Path) -> tuple[str, str]:
    """Import the demo account unless the store has accounts already; a new demo token."""
    store = parts.store
    config = configfile.decode(
        await asyncio.to_thread(path.read_bytes), configfile.format_for(path), source=str(path)
    )
    if not await store.account_versions():
        await parts.service.put(config)
        log.info("imported the demo account %r from %s", config.id, path)
    await store.revoke_token(config.id, "demo")
    token = await issue_token(store, config.id, "demo")
    return config.id, token


def _banner(settings: ServeSettings, demo: tuple[str, str] | None) -> str:
    url = f"http://{settings.host}:{settings.port}"
    if settings.redis is not None:
        store = f"Redis store at {settings.redis.where}"
    else:
        store = f"embedded store in {settings.data_dir}"
    workers = f", {settings.workers} worker processes" if settings.workers > 1 else ""
    lines = [f"callgate is serving on {url} ({store}{workers})"]
    if settings.sip is not None:
        lines.append(f"SIP redirect server on {settings.sip.describe()}")
    if demo is not None:
        account, token = demo
        lines += [
            f"Demo account {account!r}; its token (shown once per start): {token}",
            "Ask for a decision:",
            f"  curl -s -X POST {url}/v1/dial -H 'Authorization: Bearer {token}' \\",
            "       -H 'Content-Type: application/json' \\",
            "       -d '{\"user\": \"ana\", \"to\": \"(212) 555-0187\"}'",
        ]
    lines.append("Stop with Ctrl-C.")
    return "\n".join(lines)


def _detect_blocking() -> None:
    """Make any blocking call on the event loop from callgate's code raise (the test suite
    runs its servers so; needs the ``blockbuster`` package of the test extra)."""
    from blockbuster import BlockBuster

    BlockBuster(scanned_modules=list(PACKAGES)).activate()
    log.info("blocking calls on the event loop will raise")


async def _start_sip(settings: ServeSettings, server: SipServer | None) -> SipServer | None:
    """Start ``server`` listening where ``settings`` say; the server once it listens."""
    if settings.sip is None or server is None:
        return None
    context = await tls_context(settings.sip)
    await server.start(settings.sip.listen, settings.sip.tls, context)
    return server


_STOP_MARGIN_S = 5.0
"""How long past its drain and shutdown timeout a worker may take to exit before its parent
kills it."""


async def _drain(settings: ServeSettings, lifecycle: Lifecycle, again: asyncio.Event) -> None:
    """Told to stop: keep answering for ``drain_s`` while ``/healthz`` says not ready and
    every answer closes its connection, so load balancers and clients move elsewhere first;
    a second signal cuts it short. Leases stay as they are: their calls go on."""
    lifecycle.draining = True
    log.info("draining", extra={"fields": {"drain_s": settings.drain_s,
                                           "shutdown_timeout_s": settings.shutdown_timeout_s}})
    try:
        async with asyncio.timeout(settings.drain_s):
            await again.wait()
    except TimeoutError:
        pass
    log.info("stopping: no new connections; finishing the requests in flight")


async def serve(settings: ServeSettings, *, ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM. ``ready``: called once listening, instead of printing
    the banner (a worker process tells its parent)."""
    await asyncio.to_thread(load_metadata)
    await asyncio.to_thread(load_numbering_plans)
    await asyncio.to_thread(load_zones)
    store = open_store(settings.data_dir, settings.redis, serving=True)
    await store.open()
    try:
        parts = assemble(store, settings)
        demo = await _demo(parts, settings.demo) if settings.demo else None
        await refresh_once(store, parts.engine)
        runner = web.AppRunner(parts.app, access_log=None,
                               shutdown_timeout=settings.shutdown_timeout_s)
        await runner.setup()
        sip: SipServer | None = None
        try:
            try:
                await web.TCPSite(
                    runner, settings.host, settings.port, reuse_port=settings.workers > 1
                ).start()
            except OSError as exc:
                raise ConfigurationError(
                    f"--host {settings.host} --port {settings.port}: cannot listen there "
                    f"({exc.strerror or exc})"
                ) from None
            sip = await _start_sip(settings, parts.sip)
            # Before anyone is told we listen: a SIGTERM from then on drains.
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            # Everything alive now lives as long as the process: keep it out of the
            # collector's way, so full collections stay short as call records pile up.
            gc.freeze()
            if os.environ.get("CALLGATE_DETECT_BLOCKING") == "1":
                _detect_blocking()
            if ready is not None:
                ready()
            else:
                print(_banner(settings, demo), flush=True)
            await stop.wait()
            stop.clear()
            await _drain(settings, parts.lifecycle, stop)
        finally:
            if sip is not None:
                await sip.close()
            await runner.cleanup()
    finally:
        await store.close()


# -- several worker processes ------------------------------------------------------------------


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so a
    parent killed with ``kill -9`` leaves no workers behind. Elsewhere, nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def _worker(settings: ServeSettings, pipe: multiprocessing.connection.Connection) -> None:
    """A worker process: serve, and tell the parent once listening (or why it could not)."""
    _die_with_parent()
    if os.getppid() == 1:
        return  # the parent died before the line above took effect
    logs.configure(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings, ready=lambda: pipe.send("ready")))
    except CallgateError as exc:
        pipe.send(f"error: {exc.detail}")
    except KeyboardInterrupt:
        pass


async def _prepare(settings: ServeSettings) -> tuple[str, str] | None:
    """What one process does before the workers start: the demo account and its token."""
    if settings.demo is None:
        return None
    await asyncio.to_thread(load_metadata)
    await asyncio.to_thread(load_numbering_plans)
    store = open_store(settings.data_dir, settings.redis, serving=True)
    await store.open()
    try:
        return await _demo(assemble(store, settings), settings.demo)
    finally:
        await store.close()


def serve_workers(settings: ServeSettings) -> None:
    """Run ``settings.workers`` worker processes on one port until SIGINT or SIGTERM, which
    is passed on to them; a worker that dies is started again."""
    if settings.redis is None:
        raise ConfigurationError(
            f"--workers {settings.workers} needs --redis-url: the embedded store's channel "
            "counts live in one process"
        )
    demo = asyncio.run(_prepare(settings))
    worker_settings = msgspec.structs.replace(settings, demo=None)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        ours, theirs = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(worker_settings, theirs), daemon=False)
        process.start()
        theirs.close()
        try:
            message = ours.recv()
        except EOFError:
            message = "error: the worker exited before it was ready"
        if message != "ready":
            process.join(5)
            raise ConfigurationError(message.removeprefix("error: "))
        return process

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    workers = []
    try:
        for _ in range(settings.workers):
            workers.append(start())
        print(_banner(settings, demo), flush=True)
        while not stopping:
            multiprocessing.connection.wait([w.sentinel for w in workers], timeout=0.2)
            for i, worker in enumerate(workers):
                if worker.exitcode is not None and not stopping:
                    level = logging.INFO if worker.exitcode == 0 else logging.ERROR
                    log.log(level, "worker %d exited (status %s); starting another",
                            worker.pid, worker.exitcode)
                    workers[i] = start()
    finally:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.join(settings.drain_s + settings.shutdown_timeout_s + _STOP_MARGIN_S)
            if worker.is_alive() and worker.pid is not None:
                # Past its drain and shutdown timeout: stuck (a blocked loop, a hung
                # handler). Not left behind holding the port.
                log.warning("worker %d did not stop within %.0f s; killing it", worker.pid,
                            settings.drain_s + settings.shutdown_timeout_s + _STOP_MARGIN_S)
                os.kill(worker.pid, signal.SIGKILL)
                worker.join(5)
    sys.stdout.flush()
