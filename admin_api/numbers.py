"""Phone numbers (caller IDs): add, rename, assign to a department's pool, release. A
released number stays on record and is never presented again."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, Permission, PhoneNumber
from engine import changes
from engine.errors import Conflict
from engine.store import AuditEntry

from .context import Call, Operation, Reply, find, page, tagged, versioned
from .rules import Actor, require
from .schemas import NumberCreate, NumberOut, NumberParams, NumberPatch, Page

__all__ = ["OPERATIONS"]

P = Permission
_replace = msgspec.structs.replace


def number_out(number: PhoneNumber) -> NumberOut:
    return versioned(NumberOut(**msgspec.structs.asdict(number), etag=""))


def _number(config: AccountConfig, number: str) -> PhoneNumber:
    return find(config.numbers, lambda n: n.number, number, "number")


def _as_number(config: AccountConfig, number: str) -> Reply:
    return tagged(number_out(_number(config, number)))


def _check_pool(config: AccountConfig, department: str | None) -> None:
    """The pool a number is put in is a department of the account (the invariants would say
    so too, but naming ``numbers[i]`` rather than the request's field)."""
    if department is not None and all(d.id != department for d in config.departments):
        raise Conflict(f"no department {department!r} in this account", field="department")


def _replaced(
    call: Call, config: AccountConfig, actor: Actor, before: PhoneNumber, after: PhoneNumber,
    action: str,
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    new = _replace(config, numbers=tuple(after if n.number == before.number else n
                                         for n in config.numbers))
    return new, [call.audit(actor, action, f"number:{before.number}", before, after)]


async def list_numbers(call: Call) -> Reply:
    params = call.query(NumberParams)
    config, _ = await call.read(P.NUMBERS_MANAGE)
    numbers = config.numbers
    if params.status is not None:
        numbers = tuple(n for n in numbers if n.status.value == params.status.value)
    if params.department is not None:
        numbers = tuple(n for n in numbers if n.department == params.department)
    chosen = page(numbers, lambda n: n.number, params.cursor, params.limit)
    return Reply(Page(items=[number_out(n) for n in chosen.items],
                      next_cursor=chosen.next_cursor))


async def add_number(call: Call) -> Reply:
    body = await call.body(NumberCreate)

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.NUMBERS_MANAGE)
        _check_pool(config, body.department)
        number = PhoneNumber(**msgspec.structs.asdict(body))
        new = changes.add_number(number)(config)
        return new, [call.audit(actor, "number.create", f"number:{number.number}", None,
                                number)]

    config = await call.write(edit)
    return tagged(number_out(_number(config, body.number)), 201)


async def get_number(call: Call) -> Reply:
    config, _ = await call.read(P.NUMBERS_MANAGE)
    return _as_number(config, call.param("number"))


async def update_number(call: Call) -> Reply:
    body = await call.body(NumberPatch)
    number = call.param("number")
    fields = {f: v for f in body.__struct_fields__ if (v := getattr(body, f)) is not UNSET}

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.NUMBERS_MANAGE)
        before = _number(config, number)
        call.check_match(number_out(before).etag)
        # A released number joining a pool is refused by the invariants (as in an import).
        _check_pool(config, fields.get("department"))
        return _replaced(call, config, actor, before, _replace(before, **fields),
                         "number.update")

    return _as_number(await call.write(edit), number)


async def release_number(call: Call) -> Reply:
    number = call.param("number")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.NUMBERS_MANAGE)
        before = _number(config, number)
        call.check_match(number_out(before).etag)
        new = changes.release_number(number)(config)
        return new, [call.audit(actor, "number.release", f"number:{number}", before,
                                _number(new, number))]

    return _as_number(await call.write(edit), number)


_MANAGE = "`numbers.manage`"

OPERATIONS = [
    Operation("GET", "/numbers", list_numbers, "List phone numbers", _MANAGE, "numbers",
              query=NumberParams, response=Page[NumberOut]),
    Operation("POST", "/numbers", add_number, "Add a phone number", _MANAGE, "numbers",
              body=NumberCreate, response=NumberOut, status=201),
    Operation("GET", "/numbers/{number}", get_number, "Read a phone number", _MANAGE,
              "numbers", response=NumberOut),
    Operation("PATCH", "/numbers/{number}", update_number,
              "Rename a number, or assign it to a department's pool", _MANAGE, "numbers",
              body=NumberPatch, response=NumberOut, conditional=True),
    Operation("POST", "/numbers/{number}/release", release_number, "Release a number",
              _MANAGE, "numbers", response=NumberOut, conditional=True),
]
