"""The account's do-not-call list: how many numbers it holds, whether a number is on it, add
and remove one, add many at once. A listed number is denied ``do_not_call`` on every dial and
text (emergency numbers are never blocked, and cannot be listed). Numbers are read as a
dial's destination is (national formats in the account's default region) and kept as E.164.
Every write that changes the list is audited; one that changes nothing logs nothing.

A list of millions is imported on the server's machine (``callgate dnc import``); a request
adds at most ``IMPORT_MAX`` numbers.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from callerid import Permission
from engine.dnc import parse_number

from .context import Call, Operation, Reply

__all__ = ["OPERATIONS"]

P = Permission
IMPORT_MAX = 2_000
"""Numbers one request may add (a body stays far under the server's body limit)."""


class DncImport(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    numbers: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(
        min_length=1, max_length=IMPORT_MAX,
        description="Numbers as dialled (national ones in the account's default region); "
                    "one that is not a valid number refuses them all, naming it",
        examples=[["+12125550187", "(212) 555-0188"]])]


class DncSummary(msgspec.Struct, kw_only=True, frozen=True):
    count: int
    """How many numbers the list holds."""


class DncEntry(msgspec.Struct, kw_only=True, frozen=True):
    number: str
    """The number as E.164."""
    listed: bool
    """Whether it is on the list (after the request)."""
    changed: bool = False
    """Whether this request added (or removed) it."""


class DncImported(msgspec.Struct, kw_only=True, frozen=True):
    numbers: int
    """Numbers in the request."""
    added: int
    """Of them, the numbers that were not listed before."""
    count: int
    """How many numbers the list holds now."""


async def dnc_summary(call: Call) -> Reply:
    await call.read(P.CONTACTS_MANAGE)
    return Reply(DncSummary(count=await call.store.dnc_count(call.account_id)))


async def _number(call: Call) -> str:
    config, _ = await call.read(P.CONTACTS_MANAGE)
    return parse_number(call.param("number"), config.default_region)


async def dnc_lookup(call: Call) -> Reply:
    number = await _number(call)
    return Reply(DncEntry(number=number,
                          listed=await call.store.dnc_contains(call.account_id, number)))


async def dnc_add(call: Call) -> Reply:
    config, actor = await call.read(P.CONTACTS_MANAGE)
    number = parse_number(call.param("number"), config.default_region)
    store = call.store
    if await store.dnc_contains(call.account_id, number):
        return Reply(DncEntry(number=number, listed=True))
    entry = call.audit(actor, "dnc.add", f"dnc:{number}", None,
                       DncEntry(number=number, listed=True))
    added = await store.dnc_add(call.account_id, [number], [entry])
    call.log_write([entry])
    return Reply(DncEntry(number=number, listed=True, changed=added > 0))


async def dnc_remove(call: Call) -> Reply:
    config, actor = await call.read(P.CONTACTS_MANAGE)
    number = parse_number(call.param("number"), config.default_region)
    store = call.store
    if not await store.dnc_contains(call.account_id, number):
        return Reply(DncEntry(number=number, listed=False))
    entry = call.audit(actor, "dnc.remove", f"dnc:{number}",
                       DncEntry(number=number, listed=True), None)
    removed = await store.dnc_remove(call.account_id, [number], [entry])
    call.log_write([entry])
    return Reply(DncEntry(number=number, listed=False, changed=removed > 0))


async def dnc_import(call: Call) -> Reply:
    body = await call.body(DncImport)
    config, actor = await call.read(P.CONTACTS_MANAGE)
    numbers = [parse_number(raw, config.default_region, where=f"numbers[{i}]")
               for i, raw in enumerate(body.numbers)]
    entry = call.audit(actor, "dnc.import", "dnc", None, None)
    entry = msgspec.structs.replace(entry, after={"numbers": len(numbers)})
    added = await call.store.dnc_add(call.account_id, numbers, [entry])
    call.log_write([entry])
    return Reply(DncImported(numbers=len(numbers), added=added,
                             count=await call.store.dnc_count(call.account_id)))


_MANAGE = "`contacts.manage`"

OPERATIONS = [
    Operation("GET", "/dnc", dnc_summary, "How many numbers the do-not-call list holds",
              _MANAGE, "do-not-call", response=DncSummary),
    Operation("POST", "/dnc", dnc_import, "Add numbers to the do-not-call list (at most 2,000 "
              "a request; `callgate dnc import` for a file of millions)", _MANAGE,
              "do-not-call", body=DncImport, response=DncImported),
    Operation("GET", "/dnc/{number}", dnc_lookup, "Whether a number is on the do-not-call "
              "list", _MANAGE, "do-not-call", response=DncEntry),
    Operation("PUT", "/dnc/{number}", dnc_add, "Put a number on the do-not-call list",
              _MANAGE, "do-not-call", response=DncEntry),
    Operation("DELETE", "/dnc/{number}", dnc_remove, "Take a number off the do-not-call list",
              _MANAGE, "do-not-call", response=DncEntry),
]
