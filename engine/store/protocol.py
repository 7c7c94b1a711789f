"""What the engine and the domain service need from a store, and the records they exchange.

Two implementations pass one contract suite: the embedded store (one process, SQLite on local
disk) and, later, the Redis store (many processes, one shared Redis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec

from callerid import AccountConfig, Outcome

from ..wire import Decision, EndResult

__all__ = ["Build", "Peek", "Store", "Ticket", "TokenRecord", "channel_refusal"]


class Ticket(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One dial as the store sees it: whose channel, which limits, what to remember."""

    account_id: str
    call_id: str
    user_id: str
    fingerprint: str
    """What the client asked for; a call id reused for a different request is refused."""
    remember: bool
    """The client chose the call id: remember denials too, so a retry gets the same answer."""
    contact: str | None
    """Read the sticky caller ID recorded for this contact; None when sticky does not apply."""
    counted: bool
    """False for emergency calls: no limit applies and no channel is counted."""
    user_limit: int
    account_limit: int | None
    ttl_ms: int


def channel_refusal(ticket: Ticket, user_calls: int, account_calls: int) -> str | None:
    """Why ``ticket`` gets no channel given the calls in progress, or None when one is free."""
    if user_calls >= ticket.user_limit:
        return (
            f"user {ticket.user_id!r} is on {user_calls} calls, "
            f"the most their max channels ({ticket.user_limit}) allows"
        )
    if ticket.account_limit is not None and account_calls >= ticket.account_limit:
        return (
            f"the account is on {account_calls} calls, its cap on concurrent calls "
            f"({ticket.account_limit})"
        )
    return None


Build = Callable[[str | None, str], Decision]
"""The engine's pure decision given the sticky caller ID read for the contact (or None) and
the lease expiry (RFC 3339) an allowed call would get."""


class Peek(msgspec.Struct, frozen=True, kw_only=True):
    """What ``explain`` needs to know without changing anything."""

    known: Decision | None
    """The answer already given for this (client-chosen) call id, if any."""
    sticky: str | None
    user_leases: int
    account_leases: int


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    hash: str
    account_id: str
    name: str
    created_ms: int


class Store(Protocol):
    """Every call that waits on the store's own I/O answers within the store's deadline or
    raises ``StoreUnavailable``; what the caller is not told of by then is undone."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # Configuration: whole accounts, versioned. ``expected_version`` 0 creates.
    async def account_versions(self) -> dict[str, int]: ...

    async def load_account(self, account_id: str) -> tuple[AccountConfig, int] | None: ...

    async def save_account(self, config: AccountConfig, expected_version: int) -> int: ...

    # Tokens, stored by hash only.
    async def add_token(self, record: TokenRecord) -> None: ...

    async def find_token(self, token_hash: str) -> TokenRecord | None: ...

    async def list_tokens(self, account_id: str) -> list[TokenRecord]: ...

    async def revoke_token(self, account_id: str, name: str) -> int: ...

    # Calls: the hot path and the call lifecycle.
    async def admit(self, ticket: Ticket, build: Build) -> Decision: ...

    async def end(self, account_id: str, call_id: str, outcome: Outcome) -> EndResult: ...

    async def heartbeat(self, account_id: str, call_id: str, ttl_ms: int) -> int: ...

    async def peek(self, ticket: Ticket) -> Peek: ...

    async def sweep(self) -> int: ...

    def lease_counts(self) -> dict[str, int]: ...

    @property
    def healthy(self) -> bool: ...
