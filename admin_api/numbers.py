"""Phone numbers (caller IDs): add, rename, assign to a department's pool, rest or retire,
cap, release; and how many calls each placed on a day. A released number stays on record
and is never presented again."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date

import msgspec
from msgspec import UNSET

from callerid import AccountConfig, NumberStatus, Permission, PhoneNumber
from engine import changes
from engine.days import local_day
from engine.errors import InvalidField
from engine.store import AuditEntry

from .context import Call, Operation, Reply, find, page, tagged, versioned
from .rules import Actor, require
from .schemas import (
    NumberCreate,
    NumberOut,
    NumberParams,
    NumberPatch,
    NumberUsage,
    Page,
    UsageOfDay,
    UsageParams,
)

__all__ = ["OPERATIONS"]

P = Permission


def number_out(number: PhoneNumber) -> NumberOut:
    return versioned(NumberOut(**msgspec.structs.asdict(number), etag=""))


def _number(config: AccountConfig, number: str) -> PhoneNumber:
    return find(config.numbers, lambda n: n.number, number, "number")


def _as_number(config: AccountConfig, number: str) -> Reply:
    return tagged(number_out(_number(config, number)))


def _changed(
    call: Call, actor: Actor, config: AccountConfig, new: AccountConfig, number: str,
    action: str,
) -> tuple[AccountConfig, Sequence[AuditEntry]]:
    before, after = _number(config, number), _number(new, number)
    return new, [call.audit(actor, action, f"number:{number}", before, after)]


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


def _usage_params(call: Call) -> UsageParams:
    try:
        return call.query(UsageParams)
    except InvalidField as exc:
        if exc.field != "day":
            raise
        sent = call.request.query.get("day", "")
        raise InvalidField(f"day {sent!r} is not a date: write it YYYY-MM-DD, e.g. 2026-12-04",
                           field="day") from None


def _usage_of(
    config: AccountConfig, counts: dict[str, int], texts: dict[str, int]
) -> list[NumberUsage]:
    """Each active number of ``config`` with its ``counts`` (the calls it placed on one day)
    and ``texts`` (the texts it sent), its cap (its own, else the account's) and what is
    left of it for each, in number order."""
    out = []
    for number in sorted(config.numbers, key=lambda n: n.number):
        if number.status is not NumberStatus.ACTIVE:
            continue
        calls, sent = counts.get(number.number, 0), texts.get(number.number, 0)
        cap = number.daily_cap if number.daily_cap is not None else config.daily_cap
        out.append(NumberUsage(number=number.number, name=number.name, calls=calls,
                               daily_cap=cap,
                               remaining=None if cap is None else max(cap - calls, 0),
                               texts=sent,
                               texts_remaining=None if cap is None else max(cap - sent, 0)))
    return out


async def number_usage(call: Call) -> Reply:
    params = _usage_params(call)
    config, _ = await call.read(P.NUMBERS_MANAGE, P.USAGE_VIEW)
    day = params.day or date.fromisoformat(
        local_day(config.time_zone, time.time_ns() // 1_000_000))
    counts = await call.store.usage(call.account_id, day.isoformat())
    texts = await call.store.texts(call.account_id, day.isoformat())
    return Reply(UsageOfDay(day=day, time_zone=config.time_zone,
                            numbers=_usage_of(config, counts, texts)))


async def add_number(call: Call) -> Reply:
    body = await call.body(NumberCreate)

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.NUMBERS_MANAGE)
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
        call.check_match(number_out(_number(config, number)).etag)
        settings = {f: v for f, v in fields.items() if f != "department"}
        new = changes.update_number(number, settings)(config)
        if "department" in fields:
            # A released number joining a pool is refused by the invariants (as in an import).
            new = changes.assign_number(number, fields["department"])(new)
        return _changed(call, actor, config, new, number, "number.update")

    return _as_number(await call.write(edit), number)


async def release_number(call: Call) -> Reply:
    number = call.param("number")

    def edit(config: AccountConfig, actor: Actor) -> tuple[AccountConfig, Sequence[AuditEntry]]:
        require(actor, P.NUMBERS_MANAGE)
        call.check_match(number_out(_number(config, number)).etag)
        new = changes.release_number(number)(config)
        return _changed(call, actor, config, new, number, "number.release")

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
              "Rename a number, assign it to a department's pool, set its reputation or its "
              "daily cap",
              _MANAGE, "numbers",
              body=NumberPatch, response=NumberOut, conditional=True),
    Operation("POST", "/numbers/{number}/release", release_number, "Release a number",
              _MANAGE, "numbers", response=NumberOut, conditional=True),
    Operation("GET", "/number-usage", number_usage,
              "Calls each active number placed on a day, against its daily cap",
              "`numbers.manage` or `usage.view`", "numbers", query=UsageParams,
              response=UsageOfDay),
]
