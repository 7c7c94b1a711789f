"""Keeping a serving process's compiled snapshots in step with the stored configuration.

Configuration may change outside this process (``callgate import`` beside a running server;
other processes on a shared store). Two paths bring a change in:

- ``follow``: the store's notifications (Redis pub/sub), so a change made through one process
  reaches every other one within milliseconds;
- ``refresh_forever``: every ``poll_s`` the process compares the stored versions with its own
  and recompiles what changed, which catches what a lost notification missed; now and then
  it also sweeps call records past their retention.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .decide import Engine
from .errors import CallgateError
from .store import Store

__all__ = ["follow", "refresh_forever", "refresh_once"]

log = logging.getLogger("callgate.sync")

POLL_S = 1.0
SWEEP_EVERY = 30


async def refresh_once(store: Store, engine: Engine) -> int:
    """Install every stored account newer than the engine's copy; the number installed (at
    start-up, every account)."""
    installed = engine.versions()
    changed = 0
    for account_id, version in (await store.account_versions()).items():
        if installed.get(account_id, 0) >= version:
            continue
        loaded = await store.load_account(account_id)
        if loaded is not None:
            engine.install(*loaded)
            changed += 1
    return changed


async def follow(
    store: Store, engine: Engine, forget_token: Callable[[str], None] | None = None
) -> None:
    """Reload each account the store announces as changed, and ``forget_token`` each token
    it announces as revoked, until cancelled."""

    async def changed(account_id: str | None, version: int) -> None:
        try:
            if account_id is None:
                if await refresh_once(store, engine):
                    log.info("configuration reloaded after (re)subscribing")
                return
            if engine.versions().get(account_id, 0) >= version:
                return  # this process saved it, or has it already
            loaded = await store.load_account(account_id)
            if loaded is not None:
                engine.install(*loaded)
                log.info("account %r reloaded (version %d, notified)", account_id, loaded[1])
        except CallgateError as exc:
            log.warning("reloading %r failed: %s; the periodic check will retry", account_id, exc.detail)

    await store.watch(changed, forget_token)


async def refresh_forever(
    store: Store, engine: Engine, *, poll_s: float = POLL_S
) -> None:
    rounds = 0
    while True:
        await asyncio.sleep(poll_s)
        rounds += 1
        try:
            if await refresh_once(store, engine):
                log.info("configuration reloaded")
            if rounds % SWEEP_EVERY == 0:
                await store.sweep()
        except CallgateError as exc:
            log.warning("configuration refresh failed: %s", exc.detail)
