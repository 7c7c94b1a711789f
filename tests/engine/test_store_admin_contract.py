"""What the admin API needs of every store: the audit log, written in the same atomic step as
the change it records; user tokens; the calls holding channels now. Run over every store."""

from __future__ import annotations

import msgspec
import pytest

from callerid import AccountConfig, Outcome
from engine.errors import InvalidField, PreconditionFailed
from engine.store import AuditEntry, AuditQuery, Store, TokenRecord

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
