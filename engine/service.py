"""The domain service: the one writer of configuration.

``callgate import``, the admin API and anything else that changes an account go through
``AccountService``. Each change is a pure function of the current account
(``engine.changes``); the service applies it to the stored version, checks every invariant
(``engine.invariants``) and saves the result only if the stored version is still the one it
read, so two concurrent writers cannot interleave: one wins, the other is told to retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from callerid import AccountConfig

from .changes import Change, replace_account
from .errors import NotFound, PreconditionFailed
from .invariants import check
from .store import AuditEntry, Store

__all__ = ["AccountService", "Edit"]

Listener = Callable[[AccountConfig, int], None]
Edit = Callable[[AccountConfig], tuple[AccountConfig, Sequence[AuditEntry]]]
"""A change with its audit entries, computed from the account as read; pure, since it runs
again on the newer account when another writer got in first."""
WRITE_ATTEMPTS = 8


class AccountService:
    def __init__(self, store: Store, *, on_saved: Listener | None = None) -> None:
        self._store = store
        self._on_saved = on_saved

    async def get(self, account_id: str) -> tuple[AccountConfig, int]:
        loaded = await self._store.load_account(account_id)
        if loaded is None:
            raise NotFound(f"no account {account_id!r}", field="account")
        return loaded

    async def put(self, config: AccountConfig, audit: Sequence[AuditEntry] = ()) -> int:
        """Create the account, or replace it whole (``callgate import``): a replacement is
        the change ``replace_account``, with its rules, over the version read; the new
        version."""
        if await self._store.load_account(config.id) is None:
            return await self.create(config, audit)
        change = replace_account(config)
        _, version = await self.write(config.id, lambda current: (change(current), audit))
        return version

    async def create(self, config: AccountConfig, audit: Sequence[AuditEntry] = ()) -> int:
        """Create an account (``Conflict`` if one has its id); the version, 1."""
        check(config)
        version = await self._store.save_account(config, 0, audit)
        self._saved(config, version)
        return version

    async def apply(
        self, account_id: str, change: Change, *, expected_version: int | None = None
    ) -> tuple[AccountConfig, int]:
        """Apply ``change`` to the stored account; with ``expected_version``, only if the
        account is still at that version (else ``PreconditionFailed``)."""
        config, version = await self.get(account_id)
        if expected_version is not None and expected_version != version:
            raise PreconditionFailed(
                f"account {account_id!r} is at version {version}, not {expected_version}"
            )
        new = change(config)
        check(new)
        saved = await self._store.save_account(new, version)
        self._saved(new, saved)
        return new, saved

    async def write(self, account_id: str, edit: Edit) -> tuple[AccountConfig, int]:
        """Apply ``edit`` and save the result with its audit entries, atomically. When another
        writer saved first, ``edit`` runs again on what they saved: it sees their change, so a
        check it makes (an ``If-Match``, a permission) is never made against a stale account.
        What ``edit`` raises (``PreconditionFailed`` for a stale ``If-Match`` included) goes
        to the caller and nothing is written."""
        for attempt in range(WRITE_ATTEMPTS):
            config, version = await self.get(account_id)
            new, audit = edit(config)
            check(new)
            try:
                saved = await self._store.save_account(new, version, audit)
            except PreconditionFailed:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
                continue
            self._saved(new, saved)
            return new, saved
        raise AssertionError("unreachable")

    def _saved(self, config: AccountConfig, version: int) -> None:
        if self._on_saved is not None:
            self._on_saved(config, version)
