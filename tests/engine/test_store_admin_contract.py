"""What the admin API needs of every store: the audit log, written in the same atomic step as
the change it records; user tokens; the calls holding channels now. Run over every store."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from callerid import AccountConfig, Outcome
from engine.errors import InvalidField, PreconditionFailed
from engine.store import AuditEntry, AuditQuery, EmbeddedStore, Store, TokenRecord
from engine.store.redis_store import RedisStore
from engine.store.redis_store.keys import AccountKeys

from ..redis_support import RedisServer
from ..redis_support_fixtures import store_url
from .test_store_contract import Clock, allow, clock, contract_store, ticket

__all__ = ["clock", "contract_store"]  # fixtures, shared with the store contract


def entry(n: int, *, actor: str = "user:owner", target: str = "account:demo") -> AuditEntry:
    return AuditEntry(at_ms=1_000_000 + n, actor=actor, action="account.update", target=target,
                      before={"n": n - 1}, after={"n": n})


async def test_a_save_logs_its_entries_and_a_refused_save_logs_none(
    contract_store: Store, demo: AccountConfig
) -> None:
    await contract_store.save_account(demo, 0, [entry(1)])
    with pytest.raises(PreconditionFailed):
        await contract_store.save_account(demo, 0 + 5, [entry(2)])
    logged, cursor = await contract_store.audit_log(demo.id, AuditQuery())
    assert [msgspec.structs.replace(e, id="") for e in logged] == [entry(1)]
    assert logged[0].id and cursor is None
    assert (await contract_store.audit_log("other", AuditQuery()))[0] == []


async def test_the_log_pages_newest_first_and_filters(
    contract_store: Store, demo: AccountConfig
) -> None:
    for n in range(1, 8):
        actor = "user:owner" if n % 2 else "user:ana"
        await contract_store.save_account(
            demo, n - 1, [entry(n, actor=actor, target=f"user:u{n % 3}")]
        )
    seen: list[int] = []
    cursor = None
    while True:
        page, cursor = await contract_store.audit_log(demo.id, AuditQuery(limit=3, before=cursor))
        seen += [e.after["n"] for e in page]
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    ana, _ = await contract_store.audit_log(demo.id, AuditQuery(actor="user:ana"))
    assert [e.after["n"] for e in ana] == [6, 4, 2]
    u1, _ = await contract_store.audit_log(demo.id, AuditQuery(target="user:u1"))
    assert [e.after["n"] for e in u1] == [7, 4, 1]
    window, _ = await contract_store.audit_log(
        demo.id, AuditQuery(since_ms=1_000_003, until_ms=1_000_006)
    )
    assert [e.after["n"] for e in window] == [5, 4, 3]


async def test_a_cursor_the_store_never_gave_is_refused(
    contract_store: Store, demo: AccountConfig
) -> None:
    await contract_store.save_account(demo, 0, [entry(1)])
    with pytest.raises(InvalidField, match="cursor"):
        await contract_store.audit_log(demo.id, AuditQuery(before="not-a-cursor"))


async def _ids(store: Store, account_id: str) -> list[str]:
    """The ids of an account's audit log, oldest first, read two a page."""
    ids: list[str] = []
    cursor = None
    while True:
        page, cursor = await store.audit_log(account_id, AuditQuery(limit=2, before=cursor))
        ids += [e.id for e in page]
        if cursor is None:
            return ids[::-1]


async def test_an_accounts_audit_ids_count_its_own_entries_alone(
    contract_store: Store, demo: AccountConfig
) -> None:
    """An audit id tells its reader nothing of other accounts' writes: accounts a and b
    writing in turn get the very ids that c gets writing the same alone."""
    versions = {"a": 0, "b": 0, "c": 0}

    async def write(account_id: str, entries: int) -> None:
        config = msgspec.structs.replace(demo, id=account_id, numbers=())
        versions[account_id] = await contract_store.save_account(
            config, versions[account_id], [entry(n) for n in range(1, entries + 1)])

    for entries in (1, 2, 1, 3):
        await write("a", entries)
        await write("b", 4)
    for entries in (1, 2, 1, 3):
        await write("c", entries)
    a, c = await _ids(contract_store, "a"), await _ids(contract_store, "c")
    assert len(set(a)) == 7 and a == c
    assert len(await _ids(contract_store, "b")) == 16


def _old_audit_table(path: Path, rows: list[tuple[str, AuditEntry]]) -> None:
    """A database as a version before per-account audit numbers left it: one sequence
    across accounts (only the audit table: opening makes the rest)."""
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT NOT "
            "NULL, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, target TEXT NOT NULL, entry "
            "BLOB NOT NULL); CREATE INDEX audit_by_account ON audit (account_id, seq);")
        conn.executemany(
            "INSERT INTO audit (account_id, at_ms, actor, target, entry) VALUES (?, ?, ?, ?, ?)",
            [(a, e.at_ms, e.actor, e.target, msgspec.json.encode(e)) for a, e in rows])


async def test_an_embedded_log_from_one_sequence_is_numbered_per_account(
    tmp_path: Path, demo: AccountConfig
) -> None:
    """Entries written when ids ran across accounts load, numbered per account in the order
    they were written; paging works, and the next entry takes the next number."""
    interleaved = [("a", entry(1)), ("b", entry(1)), ("a", entry(2)), ("b", entry(2)),
                   ("b", entry(3)), ("a", entry(3))]
    _old_audit_table(tmp_path / "data" / "callgate.db", interleaved)
    store = EmbeddedStore(tmp_path / "data", exclusive=True)
    await store.open()
    try:
        assert await _ids(store, "a") == await _ids(store, "b") == ["1", "2", "3"]
        logged, _ = await store.audit_log("a", AuditQuery())
        assert [e.after["n"] for e in logged] == [3, 2, 1]
        await store.save_account(msgspec.structs.replace(demo, id="a"), 0, [entry(4)])
    finally:
        await store.close()
    again = EmbeddedStore(tmp_path / "data", exclusive=True)
    await again.open()
    try:
        assert await _ids(again, "a") == ["1", "2", "3", "4"]
        assert await _ids(again, "b") == ["1", "2", "3"]
    finally:
        await again.close()


async def test_a_redis_log_with_time_based_ids_goes_on_from_its_newest(
    request: pytest.FixtureRequest, demo: AccountConfig
) -> None:
    """Entries Redis numbered by the time (``*``, as before per-account ids) load; the next
    entry goes on from the newest one's id, and paging runs across both kinds."""
    url = store_url(request, "redis")
    server: RedisServer = request.getfixturevalue("redis_server")
    key = AccountKeys("a").audit
    old = [server.cli("XADD", key, "*", "e", msgspec.json.encode(entry(n)).decode())
           for n in (1, 2)]
    store = RedisStore(url)
    await store.open()
    try:
        await store.save_account(msgspec.structs.replace(demo, id="a"), 0, [entry(3), entry(4)])
        ms, _, seq = old[-1].partition("-")
        assert await _ids(store, "a") == [*old, f"{ms}-{int(seq) + 1}", f"{ms}-{int(seq) + 2}"]
        logged, _ = await store.audit_log("a", AuditQuery())
        assert [e.after["n"] for e in logged] == [4, 3, 2, 1]
    finally:
        await store.close()


async def test_user_tokens_and_their_revocation_are_logged(contract_store: Store) -> None:
    mine = TokenRecord(hash="a" * 64, account_id="a", name="laptop", created_ms=5, user_id="ana")
    service = TokenRecord(hash="b" * 64, account_id="a", name="dialer", created_ms=6)
    await contract_store.add_token(mine, entry(1, target="token:" + mine.id))
    await contract_store.add_token(service)
    assert await contract_store.find_token(mine.hash) == mine
    assert (await contract_store.find_token(service.hash)).user_id is None  # type: ignore[union-attr]
    # Another account's id for the token changes nothing.
    assert not await contract_store.remove_token("b", mine.hash, entry(9))
    assert await contract_store.find_token(mine.hash) == mine
    assert await contract_store.remove_token("a", mine.hash, entry(2, target="token:" + mine.id))
    assert await contract_store.find_token(mine.hash) is None
    assert not await contract_store.remove_token("a", mine.hash, entry(3))
    logged, _ = await contract_store.audit_log("a", AuditQuery())
    assert [e.after["n"] for e in logged] == [2, 1]
    assert (await contract_store.audit_log("b", AuditQuery()))[0] == []


async def test_live_calls_are_the_channels_held_now(contract_store: Store, clock: Clock) -> None:
    await contract_store.admit(ticket("c1", user="ana", ttl_ms=60_000), allow("c1"))
    await contract_store.admit(ticket("c2", user="bob", ttl_ms=1_000), allow("c2", "+13105550110"))
    await contract_store.admit(ticket("c3", user="ana", ttl_ms=60_000), allow("c3"))
    await contract_store.end("a", "c3", Outcome.BUSY)
    live = await contract_store.live_calls("a")
    assert [(c.call_id, c.user_id, c.to, c.caller_id) for c in live] == [
        ("c2", "bob", "+12125550187", "+13105550110"),
        ("c1", "ana", "+12125550187", "+12125550100"),
    ]
    clock.ms += 2_000
    assert [c.call_id for c in await contract_store.live_calls("a")] == ["c1"]
    assert await contract_store.live_calls("other") == []


async def test_a_call_ends_or_extends_only_for_its_own_user_when_one_is_named(
    contract_store: Store,
) -> None:
    """A user's own token may end or extend that user's calls only; another user's call
    answers as if it did not exist."""
    from engine.errors import NotFound

    await contract_store.admit(ticket("c1", user="ana"), allow("c1"))
    with pytest.raises(NotFound):
        await contract_store.heartbeat("a", "c1", 60_000, "bob")
    with pytest.raises(NotFound):
        await contract_store.end("a", "c1", Outcome.BUSY, "bob")
    assert [c.call_id for c in await contract_store.live_calls("a")] == ["c1"]
    assert await contract_store.heartbeat("a", "c1", 60_000, "ana") > 0
    assert (await contract_store.end("a", "c1", Outcome.BUSY, "ana")).outcome is Outcome.BUSY
    assert await contract_store.live_calls("a") == []
