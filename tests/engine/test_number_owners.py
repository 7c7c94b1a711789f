"""A phone number belongs to at most one account at a time, in each store: a second account
saving it is refused (without learning whose it is) and changes nothing; a number released
or removed, or claimed by a save that failed, is free again; concurrent claims from several
connections (as from several processes) leave each number with exactly one account."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig, NumberStatus, PhoneNumber
from engine import configfile
from engine.errors import Conflict, PreconditionFailed
from engine.store import EmbeddedStore, RedisStore, Store

from ..conftest import DEMO
from .test_store_contract import clock, contract_store

__all__ = ["clock", "contract_store"]  # fixtures, shared with the store contract

THEIRS = "+13125550100"


def demo(account_id: str) -> AccountConfig:
    config = configfile.decode(DEMO.read_bytes(), "toml", source=str(DEMO))
    return msgspec.structs.replace(config, id=account_id)


def account(account_id: str, *numbers: str, released: tuple[str, ...] = ()) -> AccountConfig:
    """An account (the store checks no invariant) holding ``numbers`` and ``released``."""
    held = tuple(PhoneNumber(number=n) for n in numbers) + tuple(
        PhoneNumber(number=n, status=NumberStatus.RELEASED) for n in released)
    return msgspec.structs.replace(demo(account_id), numbers=held)


async def test_a_number_of_another_account_is_refused(contract_store: Store) -> None:
    a, b = account("ownera", THEIRS), account("ownerb")
    await contract_store.save_account(a, 0)
    await contract_store.save_account(b, 0)  # the demo's own numbers: b must not get them
    with pytest.raises(Conflict) as refused:
        await contract_store.save_account(account("ownerb", THEIRS), 1)
    assert THEIRS in refused.value.detail and "ownera" not in refused.value.detail
    assert (await contract_store.load_account("ownerb")) == (b, 1), "nothing changed"


async def test_the_demo_numbers_of_a_second_account_are_refused(contract_store: Store) -> None:
    """Two accounts made from one file: the second is refused (its numbers are the first's)."""
    await contract_store.save_account(demo("first"), 0)
    with pytest.raises(Conflict):
        await contract_store.save_account(demo("second"), 0)
    assert await contract_store.load_account("second") is None


async def test_a_released_or_removed_number_is_free_again(contract_store: Store) -> None:
    await contract_store.save_account(account("ownera", THEIRS, "+13125550101"), 0)
    await contract_store.save_account(account("ownera", released=(THEIRS,)), 1)  # released
    await contract_store.save_account(account("ownerb", THEIRS), 0)
    with pytest.raises(Conflict):  # b has it now, a cannot take it back
        await contract_store.save_account(account("ownera", THEIRS), 2)
    await contract_store.save_account(account("ownerb", "+13125550101"), 1)  # removed
    await contract_store.save_account(account("ownera", THEIRS), 2)


async def test_a_failed_save_keeps_no_claim(contract_store: Store) -> None:
    await contract_store.save_account(account("ownera"), 0)
    with pytest.raises(PreconditionFailed):
        await contract_store.save_account(account("ownera", THEIRS), 7)
    lone = account("ownerb", THEIRS)
    await contract_store.save_account(lone, 0)
    assert (await contract_store.load_account("ownerb")) == (lone, 1)


@pytest.mark.parametrize("connections", [2, 4])
async def test_concurrent_claims_leave_each_number_with_one_account(
    contract_store: Store, connections: int, request: pytest.FixtureRequest
) -> None:
    """Accounts on separate connections (for Redis, separate stores: as separate processes
    would be) all try to take the same 20 numbers at once: each number ends in one account,
    and every refused save changed nothing."""
    stores: list[Store] = [contract_store]
    if isinstance(contract_store, RedisStore):
        for _ in range(connections - 1):
            extra = RedisStore(contract_store.settings)
            await extra.open()
            stores.append(extra)
    ids = [f"acct{i}" for i in range(connections)]
    for account_id in ids:
        await contract_store.save_account(account(account_id), 0)
    wanted = [f"+1312555{n:04d}" for n in range(20)]

    async def grab(i: int, number: str) -> bool:
        store = stores[i % len(stores)]
        for _ in range(50):
            config, version = await store.load_account(ids[i])  # type: ignore[misc]
            new = msgspec.structs.replace(
                config, numbers=(*config.numbers, PhoneNumber(number=number)))
            try:
                await store.save_account(new, version)
                return True
            except PreconditionFailed:
                continue  # the account's own concurrent save got in first: read again
            except Conflict:
                return False
        raise AssertionError("no save got through")

    try:
        results = await asyncio.gather(*(grab(i, n) for n in wanted for i in range(connections)))
        owners: dict[str, list[str]] = {n: [] for n in wanted}
        for account_id in ids:
            config, _ = await contract_store.load_account(account_id)  # type: ignore[misc]
            for n in config.numbers:
                owners[n.number].append(account_id)
        assert all(len(held) == 1 for held in owners.values()), owners
        assert sum(results) == len(wanted)
    finally:
        for extra in stores[1:]:
            await extra.close()


async def test_a_database_from_before_number_owners_gives_each_to_its_first_account(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    store = EmbeddedStore(data, exclusive=True)
    await store.open()
    await store.save_account(account("aaa", THEIRS), 0)
    await store.close()
    with sqlite3.connect(data / "callgate.db") as conn:  # as an older version left it:
        conn.execute("DROP TABLE number_owners")          # a second account with the number
        conn.execute("PRAGMA user_version = 0")
        conn.execute("INSERT INTO accounts (id, version, config) VALUES ('bbb', 1, ?)",
                     (configfile.encode(account("bbb", THEIRS), "json"),))
    store = EmbeddedStore(data, exclusive=True)
    await store.open()
    try:
        with pytest.raises(Conflict):  # bbb keeps what it had, but must let it go to save
            await store.save_account(account("bbb", THEIRS), 1)
        await store.save_account(account("aaa"), 1)  # aaa's save of its own numbers is fine
    finally:
        await store.close()
