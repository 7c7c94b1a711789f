"""Do-not-call lists on Redis: each account's list in 65,536 integer sets (``store/dnc.py``
says why), changed by ``lua/dnc_add.lua`` and ``lua/dnc_remove.lua`` with the list's count
and the audit entry; a dial looks its destination up inside ADMIT (``lua/admit.lua``).

Which accounts have a list: a dial of an account whose list is empty sends no lookup
(``dnc_active``), so such accounts pay nothing. Each process reads an account's count at
most once a second, in the background, when it dials for it: a list another process gives
its first number is looked up by this one within about a second; one this process writes,
at once. An account this process has not read yet is looked up.

``DncCommands`` is a part of ``RedisStore`` (the store inherits it);
``part.StorePart``, the base of every part, declares what it uses of the store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec

from ...errors import StoreUnavailable
from ..dnc import number_key, redis_bucket
from ..protocol import AuditEntry
from . import scripts as S
from .part import StorePart

__all__ = ["DNC_BATCH", "DncCommands"]

DNC_BATCH = 5_000
"""Numbers per script call of a large write: a few milliseconds of Redis's time each, so a
million-number import does not hold Redis up for dials."""
DNC_READ_EVERY_S = 1.0

_audit_encoder = msgspec.json.Encoder()


class DncCommands(StorePart):
    """The do-not-call lists."""

    # -- what this needs of the store --------------------------------------------------------

    _dnc_known: dict[str, tuple[bool, float]]
    """Each account's list: (non-empty, when that was read, ``time.monotonic``)."""
    _dnc_reading: set[str]

    # -- the lists ---------------------------------------------------------------------------

    async def dnc_add(
        self, account_id: str, numbers: Sequence[str], audit: Sequence[AuditEntry] = ()
    ) -> int:
        changed = await self._dnc_write(S.DNC_ADD, account_id, numbers, audit)
        if numbers:
            self._dnc_known[account_id] = (True, time.monotonic())
        return changed

    async def dnc_remove(
        self, account_id: str, numbers: Sequence[str], audit: Sequence[AuditEntry] = ()
    ) -> int:
        changed = await self._dnc_write(S.DNC_REMOVE, account_id, numbers, audit)
        self._dnc_known.pop(account_id, None)  # empty now? the next dial reads it again
        return changed

    async def _dnc_write(
        self, script: S.Script, account_id: str, numbers: Sequence[str],
        audit: Sequence[AuditEntry],
    ) -> int:
        account = self._account_keys(account_id)
        head = S.DncKeys(account.dnc_count, account.audit)
        unique = sorted({number_key(n) for n in numbers})
        entries = [_audit_encoder.encode(e) for e in audit]
        changed = 0
        batches = [unique[i:i + DNC_BATCH] for i in range(0, len(unique), DNC_BATCH)] or [[]]
        for n, batch in enumerate(batches, 1):
            sets, members = [], []
            for number in batch:
                bucket, member = redis_bucket(number)
                sets.append(account.dnc(bucket))
                members.append(str(member))
            last = n == len(batches)
            changed += int(await self._script(script, (*head, *sets), S.DncArgs(
                audit=entries[0] if last and entries else "", numbers=tuple(members))))
            if last and len(entries) > 1:  # one entry per write: more go with empty writes
                for entry in entries[1:]:
                    await self._script(script, head, S.DncArgs(audit=entry, numbers=()))
        return changed

    async def dnc_contains(self, account_id: str, number: str) -> bool:
        bucket, member = redis_bucket(number_key(number))
        key = self._account_keys(account_id).dnc(bucket)
        return bool(await self._command(key, "SISMEMBER", key, str(member)))

    async def dnc_count(self, account_id: str) -> int:
        key = self._account_keys(account_id).dnc_count
        return int(await self._command(key, "GET", key) or 0)

    def dnc_active(self, account_id: str) -> bool:
        known = self._dnc_known.get(account_id)
        if known is None or time.monotonic() - known[1] > DNC_READ_EVERY_S:
            if account_id not in self._dnc_reading:
                self._dnc_reading.add(account_id)
                self._spawn(self._read_dnc(account_id))
            if known is None:
                return True
        return known[0]

    async def _read_dnc(self, account_id: str) -> None:
        try:
            listed = await self.dnc_count(account_id)
            if len(self._dnc_known) > 65536:
                self._dnc_known.clear()
            self._dnc_known[account_id] = (listed > 0, time.monotonic())
        except StoreUnavailable:
            pass  # what was known stands (or, never read, a lookup on every dial)
        finally:
            self._dnc_reading.discard(account_id)
