"""Start-up and shutdown of a callgate server process."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from pathlib import Path

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry

from . import configfile
from .decide import Engine
from .errors import ConfigurationError
from .http import build_app
from .metrics import Metrics
from .numbers import load_metadata
from .service import AccountService
from .store import EmbeddedStore, Store
from .sync import refresh_once
from .tokens import issue_token

__all__ = ["ServeSettings", "serve"]

log = logging.getLogger("callgate")



class ServeSettings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    demo: Path | None = None
    """Import this account on first start (empty data directory) and print a fresh token."""


async def _demo(store: Store, engine: Engine, path: Path) -> tuple[str, str]:
    """Import the demo account unless the store has accounts already; a new demo token."""
    config = configfile.decode(
        await asyncio.to_thread(path.read_bytes), configfile.format_for(path), source=str(path)
    )
    if not await store.account_versions():
        await AccountService(store, on_saved=engine.install).put(config)
        log.info("imported the demo account %r from %s", config.id, path)
    await store.revoke_token(config.id, "demo")
    token = await issue_token(store, config.id, "demo")
    return config.id, token


def _banner(settings: ServeSettings, demo: tuple[str, str] | None) -> str:
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"callgate is serving on {url} (embedded store in {settings.data_dir})"]
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

    BlockBuster(scanned_modules=["engine", "callerid"]).activate()
    log.info("blocking calls on the event loop will raise")


async def serve(settings: ServeSettings) -> None:
    await asyncio.to_thread(load_metadata)
    store = EmbeddedStore(settings.data_dir, exclusive=True)
    await store.open()
    try:
        registry = CollectorRegistry()
        metrics = Metrics(registry, store.lease_counts)
        engine = Engine(store, metrics=metrics)
        demo = await _demo(store, engine, settings.demo) if settings.demo else None
        await refresh_once(store, engine)
        runner = web.AppRunner(build_app(store, engine, metrics), access_log=None)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, settings.host, settings.port).start()
            except OSError as exc:
                raise ConfigurationError(
                    f"--host {settings.host} --port {settings.port}: cannot listen there "
                    f"({exc.strerror or exc})"
                ) from None
            # Everything alive now lives as long as the process: keep it out of the
            # collector's way, so full collections stay short as call records pile up.
            gc.freeze()
            print(_banner(settings, demo), flush=True)
            if os.environ.get("CALLGATE_DETECT_BLOCKING") == "1":
                _detect_blocking()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        await store.close()
