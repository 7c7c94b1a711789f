"""Keeping a serving process's compiled snapshots in step with the stored configuration.

Configuration may change outside this process (``callgate import`` beside a running server;
other processes on a shared store). Two paths bring a change in:

- ``follow``: the store's notifications (Redis pub/sub), so a change made through one process
  reaches every other one within milliseconds;
- ``refresh_forever``: every ``poll_s`` the process asks the store what changed
  (``Store.changes``: on Redis one read of the change feed, whatever the number of accounts)
  and recompiles those accounts, which catches what a lost notification missed. When the
  store cannot say (the first poll, a gap in the feed, a store without a feed), it compares
  every stored version with its own. The same poll forgets revoked tokens and confirms the
  others to the token cache. Now and then it also sweeps call records past their retention.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .decide import Engine
from .errors import CallgateError
from .store import Store
from .tokens import TokenCache

__all__ = ["follow", "refresh_changed", "refresh_forever", "refresh_once"]

log = logging.getLogger("callgate.sync")

POLL_S = 1.0
SWEEP_EVERY = 30


async def _install_newer(store: Store, engine: Engine, versions: dict[str, int]) -> int:
    """Load and install each account of ``versions`` newer than the engine's copy; the number
    installed."""
    installed = engine.versions()
    changed = 0
    for account_id, version in versions.items():
        if installed.get(account_id, 0) >= version:
            continue  # this process saved it, or has it already
        loaded = await store.load_account(account_id)
        if loaded is not None:
            engine.install(*loaded)
            changed += 1
    return changed


async def refresh_once(store: Store, engine: Engine) -> int:
    """Install every stored account newer than the engine's copy; the number installed (at
    start-up, every account)."""
    return await _install_newer(store, engine, await store.account_versions())


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
            if await _install_newer(store, engine, {account_id: version}):
                log.info("account %r reloaded (version %d, notified)", account_id, version)
        except CallgateError as exc:
            log.warning("reloading %r failed: %s; the periodic check will retry",
                        account_id, exc.detail)

    await store.watch(changed, forget_token)


async def refresh_changed(
    store: Store, engine: Engine, tokens: TokenCache | None = None, since: int = -1
) -> tuple[int, int]:
    """One poll after cursor ``since``: install what the store says changed (or everything
    newer, when it cannot say), forget revoked tokens and confirm the rest. The number of
    accounts installed, and the cursor for the next poll (only once all this succeeded: a
    failed poll is asked again from the same place)."""
    asked_at = time.monotonic()
    changes = await store.changes(since)
    if tokens is not None:
        for token_hash in changes.revoked:
            tokens.forget(token_hash)
    if changes.complete:
        installed = await _install_newer(store, engine, changes.accounts)
    else:
        installed = await refresh_once(store, engine)
    if tokens is not None and store.feeds_revocations:
        if changes.complete:
            tokens.confirm_all(asked_at)
        else:  # revocations may have been missed with the rest: ask about every token
            await tokens.recheck()
    return installed, changes.cursor


async def refresh_forever(
    store: Store, engine: Engine, *, poll_s: float = POLL_S, tokens: TokenCache | None = None
) -> None:
    rounds = 0
    cursor = -1
    while True:
        await asyncio.sleep(poll_s)
        rounds += 1
        try:
            installed, cursor = await refresh_changed(store, engine, tokens, cursor)
            if installed:
                log.info("configuration reloaded")
            if rounds % SWEEP_EVERY == 0:
                await store.sweep()
        except CallgateError as exc:
            log.warning("configuration refresh failed: %s", exc.detail)
