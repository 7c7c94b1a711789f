"""Do-not-call lists in every store: numbers added, removed, counted and looked up; a dial
(or a text) to a listed number denied ``do_not_call`` in the store's atomic step, before
anything is taken; one account's list never blocks another's dials. Written once, run over
every store implementation."""

from __future__ import annotations

import time

import msgspec

from callerid import Reason
from engine.store import AuditEntry, AuditQuery, Store, TextTicket

from . import test_store_contract as contract
from .test_store_contract import Clock, allow, reopen, ticket

clock, contract_store = contract.clock, contract.contract_store  # the fixtures, over every store

TO = "+12125550187"
OTHER = "+12125550188"


def listed(call_id: str, to: str = TO, **kwargs: object) -> object:
    return msgspec.structs.replace(ticket(call_id, **kwargs), dnc=to)  # type: ignore[arg-type]


def entry(action: str) -> AuditEntry:
    return AuditEntry(at_ms=time.time_ns() // 1_000_000, actor="user:o", action=action,
                      target="dnc", after={"numbers": 1})


async def test_a_dial_to_a_listed_number_is_denied_and_takes_nothing(
    contract_store: Store,
) -> None:
    assert await contract_store.dnc_add("a", [TO]) == 1
    denied = await contract_store.admit(listed("c1"), allow("c1"))  # type: ignore[arg-type]
    assert (denied.allowed, denied.reason, denied.to) == (False, Reason.DO_NOT_CALL, TO)
    assert "do-not-call" in (denied.detail or "")
    assert contract_store.lease_counts().get("a", 0) == 0
    assert await contract_store.usage("a", "2026-12-04") == {}
    # a limit of 1: had the denied dial taken a channel, this one would get none
    other = msgspec.structs.replace(ticket("c2", limit=1), dnc=OTHER)
    assert (await contract_store.admit(other, allow("c2"))).allowed


async def test_a_remembered_dnc_denial_is_replayed(contract_store: Store) -> None:
    await contract_store.dnc_add("a", [TO])
    first = await contract_store.admit(listed("c1"), allow("c1"))  # type: ignore[arg-type]
    await contract_store.dnc_remove("a", [TO])
    again = await contract_store.admit(listed("c1"), allow("c1"))  # type: ignore[arg-type]
    assert again == first and again.reason is Reason.DO_NOT_CALL


async def test_removing_a_number_unblocks_it(contract_store: Store) -> None:
    await contract_store.dnc_add("a", [TO, OTHER])
    assert await contract_store.dnc_remove("a", [TO, "+12125550199"]) == 1
    assert (await contract_store.admit(listed("c1"), allow("c1"))).allowed  # type: ignore[arg-type]
    assert await contract_store.dnc_count("a") == 1
    assert not await contract_store.dnc_contains("a", TO)
    assert await contract_store.dnc_contains("a", OTHER)


async def test_a_dial_not_looked_up_is_not_denied(contract_store: Store) -> None:
    """The engine leaves ``Ticket.dnc`` unset for emergency calls: the store looks up only
    what it is given."""
    await contract_store.dnc_add("a", [TO])
    assert (await contract_store.admit(ticket("c1"), allow("c1"))).allowed


async def test_adding_twice_counts_once(contract_store: Store) -> None:
    assert await contract_store.dnc_add("a", [TO, TO, OTHER]) == 2
    assert await contract_store.dnc_add("a", [TO]) == 0
    assert await contract_store.dnc_count("a") == 2
    assert contract_store.dnc_active("a") or True  # Redis may not know yet: never False here


async def test_one_accounts_list_never_blocks_another(contract_store: Store) -> None:
    await contract_store.dnc_add("b", [TO])
    assert (await contract_store.admit(listed("c1"), allow("c1"))).allowed  # type: ignore[arg-type]
    assert not await contract_store.dnc_contains("a", TO)
    assert await contract_store.dnc_count("a") == 0


async def test_a_listed_contact_gets_no_text_sender(contract_store: Store) -> None:
    await contract_store.dnc_add("a", [TO])
    text = TextTicket(account_id="a", contact="sms:" + TO, day="2026-12-04",
                      sticky_ttl_ms=86_400_000, dnc=TO)
    plan = allow("")
    denied = await contract_store.send_text(text, plan)
    assert (denied.allowed, denied.reason) == (False, Reason.DO_NOT_CALL)
    assert await contract_store.texts("a", "2026-12-04") == {}


async def test_writes_are_audited(contract_store: Store) -> None:
    await contract_store.dnc_add("a", [TO], [entry("dnc.add")])
    await contract_store.dnc_remove("a", [TO], [entry("dnc.remove")])
    entries, _ = await contract_store.audit_log("a", AuditQuery())
    assert [e.action for e in entries] == ["dnc.remove", "dnc.add"]


async def test_long_numbers_and_many_in_one_bucket(contract_store: Store) -> None:
    """Numbers of 15 digits (64-bit buckets) beside short ones, and numbers that share
    their low bits (one bucket, many members)."""
    numbers = ["+999999999999999", "+49301234567"] + [
        f"+1212{n:07d}" for n in range(0, 2_000_000, 65_536)]
    assert await contract_store.dnc_add("a", numbers) == len(numbers)
    for number in numbers:
        assert await contract_store.dnc_contains("a", number)
    assert not await contract_store.dnc_contains("a", "+999999999999998")
    assert not await contract_store.dnc_contains("a", "+12120000001")


async def test_a_list_survives_a_restart(contract_store: Store, clock: Clock) -> None:
    await contract_store.dnc_add("a", [TO, OTHER])
    await contract_store.dnc_remove("a", [OTHER])
    store = await reopen(contract_store, clock)
    assert await store.dnc_count("a") == 1
    assert store.dnc_active("a")
    assert (await store.admit(listed("c1"), allow("c1"))).reason is Reason.DO_NOT_CALL  # type: ignore[arg-type]
