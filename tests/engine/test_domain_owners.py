"""A SIP domain belongs to at most one account at a time, in each store, whatever process
saves it: a second account saving it is refused (naming ``sip_domain``) and changes nothing;
a domain changed or removed, or claimed by a save that failed, is free again; concurrent
saves from several stores over the same data leave each domain with exactly one account.
The engine's in-memory check (``engine/changes/account.py``) answers first when it knows the
other account; these tests are about the store's claim, which holds when it does not."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig
from engine.errors import Conflict, PreconditionFailed
from engine.store import EmbeddedStore, RedisStore, Store

from ..admin_api.support import World, refused, serve_embedded
from .test_number_owners import THEIRS, account
from .test_store_contract import clock, contract_store

__all__ = ["clock", "contract_store"]  # fixtures, shared with the store contract

DOMAIN = "acme.sip.example"
TAKEN = f"SIP domain '{DOMAIN}' belongs to another account"


def holding(account_id: str, domain: str | None, *numbers: str) -> AccountConfig:
    """An account (the store checks no invariant) with SIP domain ``domain`` and ``numbers``."""
    return msgspec.structs.replace(account(account_id, *numbers), sip_domain=domain)


async def beside(store: Store) -> Store:
    """Another store over the same data, opened as another process would open it: a second
    Redis client, or the embedded database as ``callgate import`` opens it next to a server."""
    other: Store
    if isinstance(store, RedisStore):
        other = RedisStore(store.settings)
    else:
        assert isinstance(store, EmbeddedStore)
        other = EmbeddedStore(store.data_dir)
    await other.open()
    return other


async def test_a_domain_of_another_account_is_refused(contract_store: Store) -> None:
    await contract_store.save_account(holding("ownera", DOMAIN), 0)
    b = holding("ownerb", None)
    await contract_store.save_account(b, 0)
    with pytest.raises(Conflict, match=TAKEN) as refused_save:
        await contract_store.save_account(holding("ownerb", DOMAIN), 1)
    assert refused_save.value.field == "sip_domain"
    assert "ownera" not in refused_save.value.detail
    assert (await contract_store.load_account("ownerb")) == (b, 1), "nothing changed"


async def test_a_new_account_with_a_taken_domain_is_not_created(contract_store: Store) -> None:
    await contract_store.save_account(holding("ownera", DOMAIN), 0)
    with pytest.raises(Conflict, match=TAKEN):
        await contract_store.save_account(holding("ownerb", DOMAIN), 0)
    assert await contract_store.load_account("ownerb") is None


async def test_a_domain_is_claimed_whatever_its_case(contract_store: Store) -> None:
    """The model keeps domains lower case, so a stored configuration never differs in case;
    the store compares lower case all the same, so a save that skipped that check cannot
    take the domain under another spelling."""
    await contract_store.save_account(holding("ownera", DOMAIN), 0)
    with pytest.raises(Conflict, match=TAKEN) as refused_save:
        await contract_store.save_account(holding("ownerb", DOMAIN.upper()), 0)
    assert refused_save.value.field == "sip_domain"
    assert await contract_store.load_account("ownerb") is None


async def test_an_account_saves_its_own_domain_again(contract_store: Store) -> None:
    await contract_store.save_account(holding("ownera", DOMAIN), 0)
    renamed = msgspec.structs.replace(holding("ownera", DOMAIN), name="Renamed")
    assert await contract_store.save_account(renamed, 1) == 2


async def test_a_domain_changed_or_removed_is_free_again(contract_store: Store) -> None:
    await contract_store.save_account(holding("ownera", DOMAIN), 0)
    await contract_store.save_account(holding("ownera", "new.sip.example"), 1)  # changed
    await contract_store.save_account(holding("ownerb", DOMAIN), 0)
    with pytest.raises(Conflict, match=TAKEN):  # b has it now, a cannot take it back
        await contract_store.save_account(holding("ownera", DOMAIN), 2)
    await contract_store.save_account(holding("ownerb", None), 1)  # removed
    await contract_store.save_account(holding("ownera", DOMAIN), 2)
    await contract_store.save_account(holding("ownerc", "new.sip.example"), 0)  # a let it go


async def test_a_failed_save_keeps_no_domain_claim(contract_store: Store) -> None:
    await contract_store.save_account(holding("ownera", None), 0)
    with pytest.raises(PreconditionFailed):
        await contract_store.save_account(holding("ownera", DOMAIN), 7)
    lone = holding("ownerb", DOMAIN)
    await contract_store.save_account(lone, 0)
    assert (await contract_store.load_account("ownerb")) == (lone, 1)


async def test_a_refused_domain_claims_no_number_either(contract_store: Store) -> None:
    """Numbers and the domain are claimed together or not at all."""
    await contract_store.save_account(holding("ownera", DOMAIN), 0)
    with pytest.raises(Conflict, match=TAKEN):
        await contract_store.save_account(holding("ownerb", DOMAIN, THEIRS), 0)
    await contract_store.save_account(holding("ownerc", None, THEIRS), 0)


async def test_a_refused_number_claims_no_domain_either(contract_store: Store) -> None:
    await contract_store.save_account(holding("ownera", None, THEIRS), 0)
    with pytest.raises(Conflict) as refused_save:
        await contract_store.save_account(holding("ownerb", DOMAIN, THEIRS), 0)
    assert refused_save.value.field == "numbers"
    await contract_store.save_account(holding("ownerc", DOMAIN), 0)


@pytest.mark.parametrize("accounts", [2, 4])
async def test_concurrent_saves_give_each_domain_to_one_account(
    contract_store: Store, accounts: int
) -> None:
    """Round after round, every account tries to take the round's domain at once, each
    through one of two stores over the same data (for Redis, two clients, as two processes;
    for the embedded store, the server's and a second connection, as ``callgate import``):
    exactly one save wins, and every refused save leaves its account as it was."""
    stores = [contract_store, await beside(contract_store)]
    ids = [f"acct{i}" for i in range(accounts)]
    held: dict[str, str | None] = dict.fromkeys(ids)
    for account_id in ids:
        await contract_store.save_account(holding(account_id, None), 0)

    async def take(i: int, domain: str) -> bool:
        store = stores[i % len(stores)]
        config, version = await store.load_account(ids[i])  # type: ignore[misc]
        try:
            await store.save_account(msgspec.structs.replace(config, sip_domain=domain), version)
        except Conflict as exc:
            assert exc.field == "sip_domain"
            return False
        return True

    try:
        for round_ in range(25):
            domain = f"round{round_}.sip.example"
            won = await asyncio.gather(*(take(i, domain) for i in range(accounts)))
            assert sum(won) == 1, won
            held[ids[won.index(True)]] = domain
            stored = {a: (await contract_store.load_account(a))[0].sip_domain  # type: ignore[index]
                      for a in ids}
            assert stored == held, f"round {round_}"
    finally:
        await stores[1].close()


@pytest.mark.parametrize("older", ["no_owners_table", "no_domain_claims"])
async def test_a_database_from_before_domain_claims_gives_each_to_its_first_account(
    tmp_path: Path, older: str
) -> None:
    """Two accounts on one domain, from before the store claimed domains (or anything at
    all): the first by id keeps it, whichever was saved first."""
    data = tmp_path / "data"
    store = EmbeddedStore(data, exclusive=True)
    await store.open()
    await store.save_account(holding("bbb", DOMAIN, THEIRS), 0)
    await store.close()
    with sqlite3.connect(data / "callgate.db") as conn:  # as an older version left it
        if older == "no_owners_table":
            conn.execute("DROP TABLE number_owners")
        else:
            conn.execute("DELETE FROM number_owners WHERE number LIKE 'sip:%'")
        conn.execute("PRAGMA user_version = 0")  # no version: what callgate wrote before
        conn.execute("INSERT INTO accounts (id, version, config) VALUES ('aaa', 1, ?)",
                     (msgspec.json.encode(holding("aaa", DOMAIN)),))
    store = EmbeddedStore(data, exclusive=True)
    await store.open()
    try:
        with pytest.raises(Conflict, match=TAKEN):  # bbb must let it go to save
            await store.save_account(holding("bbb", DOMAIN, THEIRS), 1)
        await store.save_account(holding("aaa", DOMAIN), 1)  # aaa's own domain is fine
        await store.save_account(holding("bbb", None, THEIRS), 1)  # bbb's number stays its own
    finally:
        await store.close()


# -- through the admin API ------------------------------------------------------------------


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """The admin API over an embedded store: it polls for changes once an hour here, so what
    another process writes stays unknown to its memory for the whole test."""
    async for world in serve_embedded(tmp_path / "data"):
        yield world


async def test_the_admin_api_refuses_a_domain_only_the_store_knows_is_taken(
    world: World, tmp_path: Path
) -> None:
    """An import beside the running server gives an account the domain; the server has not
    seen it, so only the store's claim stands between acme and the same domain."""
    importer = EmbeddedStore(tmp_path / "data")
    await importer.open()
    try:
        await importer.save_account(holding("third", DOMAIN), 0)
    finally:
        await importer.close()
    assert world.engine.domain_claimed_by(DOMAIN) == [], "the server must not know it yet"
    version = await world.version()
    reply = await world.api("olivia").patch("/account", {"sip_domain": DOMAIN})
    await refused(world, reply, 409, "sip_domain", version)
    assert reply.body["detail"] == TAKEN
    assert (await world.config())[0].sip_domain is None
    free = await world.api("olivia").patch("/account", {"sip_domain": "free.sip.example"})
    assert free.status == 200, free.body
