"""Reading an account's audit log on Redis.

The log is a stream per account (``…:audit``), written only by the scripts that change what
it records (``lua/audit.lua`` gives its ids and its length); this module reads it, newest
first, a page at a time. A page's cursor is the stream id of the last entry read, which the
next page starts after.

``AuditCommands`` is a part of ``RedisStore`` (the store inherits it);
``part.StorePart``, the base of every part, declares what it uses of the store.
"""

from __future__ import annotations

import msgspec

from ...errors import InvalidField
from ..protocol import AUDIT_PAGE_MAX, AuditEntry, AuditQuery
from .answers import text
from .part import StorePart

__all__ = ["AuditCommands"]

_AUDIT_SCAN = 2000
_STREAM_PART_MAX = 2**64 - 1

_audit_decoder = msgspec.json.Decoder(AuditEntry)


def _stream_id(cursor: str) -> str:
    """An audit cursor as the stream id it is: ``<ms>-<seq>``, ASCII digits in range."""
    ms, dash, seq = cursor.partition("-")
    if not (
        dash
        and all(part.isascii() and part.isdigit() and int(part) <= _STREAM_PART_MAX
                for part in (ms, seq))
    ):
        raise InvalidField(f"cursor {cursor!r} is not one this store gave out", field="cursor")
    return cursor


class AuditCommands(StorePart):
    """Pages of an account's audit log."""

    async def audit_log(
        self, account_id: str, query: AuditQuery
    ) -> tuple[list[AuditEntry], str | None]:
        """Reads the stream newest first from the cursor, at most ``_AUDIT_SCAN`` entries a
        page, keeping those that match."""
        key = self._account_keys(account_id).audit
        end = "+" if query.before is None else "(" + _stream_id(query.before)
        found: list[AuditEntry] = []
        scanned = 0
        last: str | None = None
        while scanned < _AUDIT_SCAN and len(found) < query.limit:
            batch = await self._command(
                key, "XREVRANGE", key, end, "-", "COUNT", min(AUDIT_PAGE_MAX, _AUDIT_SCAN)
            )
            if not batch:
                return found, None
            for stream_id, fields in batch:
                last = text(stream_id)
                scanned += 1
                entry = _audit_decoder.decode(
                    dict(zip(fields[::2], fields[1::2], strict=True))[b"e"]
                )
                if query.matches(entry):
                    found.append(msgspec.structs.replace(entry, id=last))
                    if len(found) == query.limit:
                        break
            end = "(" + (last or "")
        return found, last
