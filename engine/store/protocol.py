"""What the engine and the domain service need from a store, and the records they exchange.

Two implementations pass one contract suite: the embedded store (one process, SQLite on local
disk) and the Redis store (many processes, one shared Redis or Redis Cluster).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec

from callerid import AccountConfig, AutoRest, NumberStatus, Outcome, Reason, Rule
from callerid.rotation import NO_CAPS, Caps, least_used

from ..errors import Conflict
from ..wire import Decision, EndResult

__all__ = [
    "AUDIT_PAGE_MAX",
    "RETENTION_MS",
    "USAGE_KEPT_DAYS",
    "AnswerWindow",
    "AuditEntry",
    "AuditQuery",
    "Changes",
    "Ended",
    "LiveCall",
    "OnChange",
    "Peek",
    "Plan",
    "Rotation",
    "Store",
    "TextTicket",
    "Ticket",
    "TokenRecord",
    "channel_denial",
    "channel_refusal",
    "claim_refused",
    "claimed_names",
    "dnc_denial",
    "number_taken",
    "owned_numbers",
    "record_answer",
    "refusal_detail",
]


RETENTION_MS = 15 * 60 * 1000
"""How long a call's record outlives its lease (or its denial), on every store: the window
in which a retry with the same call id gets the same answer."""


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
    sticky_ttl_ms: int = 180 * 86_400_000
    """How long the contact's sticky caller ID lasts once this call connects."""
    day: str = ""
    """The account's day now ('2026-12-04'): an allowed call counts against its caller ID's
    calls of this day (``Store.usage``)."""
    dnc: str | None = None
    """The destination (E.164) to look up in the account's do-not-call list, in the store's
    atomic step, before anything is taken: listed, the dial is denied ``do_not_call``
    (``dnc_denial``). None: no lookup (the account's list is empty, an emergency call, or a
    denial that comes before the list: an invalid number, the destination policy, calling
    hours)."""


USAGE_KEPT_DAYS = 32
"""How many days back each number's calls per day are kept (``Store.usage``)."""


class TextTicket(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One text's sender to pick (``Store.send_text``): no channel, no call record."""

    account_id: str
    contact: str
    """Where the contact's sticky number is kept (``callerid.sms.sticky_contact``)."""
    day: str
    """The account's day now: the text counts against its sender's texts of this day."""
    sticky_ttl_ms: int
    """How long the sender stays the contact's sticky number."""
    dnc: str | None = None
    """As ``Ticket.dnc``: a listed contact gets no sender (``do_not_call``)."""


def refusal_detail(
    user_id: str, user_calls: int, account_calls: int, user_limit: int, account_limit: int | None
) -> str | None:
    """Why a dial gets no channel given the calls in progress, or None when one is free."""
    if user_calls >= user_limit:
        return (
            f"user {user_id!r} is on {user_calls} calls, "
            f"the most their max channels ({user_limit}) allows"
        )
    if account_limit is not None and account_calls >= account_limit:
        return (
            f"the account is on {account_calls} calls, its cap on concurrent calls "
            f"({account_limit})"
        )
    return None


def channel_refusal(ticket: Ticket, user_calls: int, account_calls: int) -> str | None:
    """Why ``ticket`` gets no channel given the calls in progress, or None when one is free."""
    return refusal_detail(
        ticket.user_id, user_calls, account_calls, ticket.user_limit, ticket.account_limit
    )


class Rotation(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A caller ID that depends on today's counts (``callerid.rotation``): the first step
    with a number under its cap gives it, the least used of the step's numbers."""

    steps: tuple[tuple[Rule, tuple[str, ...]], ...]
    """``callerid.candidate_steps``: each rule with the numbers it offers, in order."""
    answer: Decision
    """The allowed answer, its rule and caller ID set by the pick."""
    exhausted: Decision
    """The answer when every number offered is capped (``caller_id_capped``)."""

    def pick(self, counts: dict[str, int], caps: Caps) -> tuple[Rule, str] | None:
        for rule, numbers in self.steps:
            number = least_used(numbers, None, counts, caps)
            if number is not None:
                return rule, number
        return None


class Plan(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The engine's answer as data, before the store reads what it keeps: the contact's
    sticky caller ID and the calls each number placed today.

    The store picks ``sticky`` when the caller ID it reads for the contact is one of
    ``sticky_ids`` (``callerid.sticky_numbers``: when and from which numbers sticky answers
    is decided there, not here) and under its cap, else ``rotation``'s pick when there is
    one, else ``decision``; an allowed answer then takes a channel or becomes a
    ``channel_limit`` denial, and counts against its caller ID's calls today. Being data
    rather than a callback, a plan can travel to a Redis script, which makes that choice
    next to the data.
    """

    decision: Decision
    """The answer when no usable sticky caller ID is found and there is no rotation. When
    allowed, its ``lease_expires_at`` is left unset: the store sets it from its own clock."""
    sticky: Decision | None = None
    """The allowed answer for a sticky hit, ``caller_id`` and lease expiry left unset; None
    when no sticky caller ID can change the answer."""
    sticky_ids: frozenset[str] = frozenset()
    rotation: Rotation | None = None
    caps: Caps = NO_CAPS
    """The account's daily caps: a sticky caller ID over its cap is passed over."""

    def choose(
        self, sticky: str | None, lease_expires_at: str, counts: dict[str, int] | None = None
    ) -> Decision:
        """The answer given the sticky caller ID read for the contact (or None) and today's
        ``counts``; an allowed one carries ``lease_expires_at``."""
        counts = counts or {}
        if (sticky is not None and self.sticky is not None and sticky in self.sticky_ids
                and not self.caps.over(sticky, counts)):
            return msgspec.structs.replace(
                self.sticky, caller_id=sticky, lease_expires_at=lease_expires_at
            )
        rotation = self.rotation
        if rotation is not None:
            picked = rotation.pick(counts, self.caps)
            if picked is None:
                return rotation.exhausted
            return msgspec.structs.replace(rotation.answer, rule=picked[0], caller_id=picked[1],
                                           lease_expires_at=lease_expires_at)
        if self.decision.allowed:
            return msgspec.structs.replace(self.decision, lease_expires_at=lease_expires_at)
        return self.decision

    @property
    def may_allow(self) -> bool:
        """Whether any read could make this an allowed answer (else nothing is taken)."""
        return self.decision.allowed or self.sticky is not None or self.rotation is not None


def owned_numbers(config: AccountConfig) -> list[str]:
    """The numbers ``config`` holds: its active ones. A phone number belongs to at most one
    account at a time (the store refuses to save a second), so no account can present
    another's number as its caller ID; a released number is let go."""
    return sorted(n.number for n in config.numbers if n.status is NumberStatus.ACTIVE)


def number_taken(number: str) -> str:
    """The refusal of a number another account has (which account is not said)."""
    return (f"{number} belongs to another account: a number can be in one account at a time "
            "(if it is yours, release it there first)")


_DOMAIN = "sip:"
"""What starts a SIP domain's entry among an account's claims: no E.164 number starts so,
which lets the numbers and the domain share one owners table (or hash) and one mechanism."""


def claimed_names(config: AccountConfig) -> list[str]:
    """Everything ``config`` holds that no other account may hold at the same time: its
    active numbers (``owned_numbers``), then its SIP domain as ``sip:<domain>``, lower case
    (the model keeps domains lower case already; lowering here means two spellings of one
    domain could never both pass the store). A store claims them all in the write that saves
    the account, and lets go of those a later save no longer has."""
    names = owned_numbers(config)
    if config.sip_domain is not None:
        names.append(_DOMAIN + config.sip_domain.lower())
    return names


def claim_refused(name: str) -> Conflict:
    """The refusal of a name from ``claimed_names`` that another account holds, naming the
    field it came from (and not the other account)."""
    if name.startswith(_DOMAIN):
        domain = name.removeprefix(_DOMAIN)
        return Conflict(f"SIP domain {domain!r} belongs to another account", field="sip_domain")
    return Conflict(number_taken(name), field="numbers")


def channel_denial(call_id: str, detail: str) -> Decision:
    return Decision(allowed=False, call_id=call_id, reason=Reason.CHANNEL_LIMIT, detail=detail)


def dnc_denial(call_id: str, number: str) -> Decision:
    """The answer to a dial (or a text) to a number on the account's do-not-call list."""
    return Decision(allowed=False, call_id=call_id, reason=Reason.DO_NOT_CALL, to=number,
                    detail=f"{number} is on the account's do-not-call list")


OnChange = Callable[[str | None, int], Awaitable[None]]
"""Told of a configuration change: (account id, its new version), or (None, 0) when changes
may have been missed and every account should be checked."""


class Changes(msgspec.Struct, frozen=True, kw_only=True):
    """What changed in the store since the last ``changes()``."""

    complete: bool
    """False when the store cannot say everything that changed (the first call, a gap in
    its feed, no feed at all): compare every account's version."""
    accounts: dict[str, int] = {}
    """Accounts saved, with their newest version."""
    revoked: tuple[str, ...] = ()
    """Hashes of tokens revoked."""
    cursor: int = -1
    """Where the next ``changes`` starts: pass it back once these changes are applied (a
    caller that failed to apply them passes the old one, and gets them again)."""


class AnswerWindow(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What ``Store.end`` keeps of each number's last ended calls (``AutoRest``): whether
    each connected, over the last ``calls`` of them; a window that holds ``calls`` outcomes
    of which fewer than ``least`` connected is due a rest."""

    calls: int
    least: int
    """The connected calls a full window must hold: the answer rate is below the account's
    ``min_answer_rate`` exactly when fewer connected (``ceil(min_answer_rate * calls)``)."""

    @classmethod
    def of(cls, rule: AutoRest) -> AnswerWindow:
        # rounded first: 0.3 * 50 is 15.000000000000002, and 15 of 50 is not below 0.3
        return cls(calls=rule.over_calls,
                   least=math.ceil(round(rule.min_answer_rate * rule.over_calls, 9)))


def record_answer(seen: str, connected: bool, window: AnswerWindow) -> tuple[str, bool]:
    """A number's window (``'1'`` for each connected call, ``'0'`` for any other, oldest
    first) with one more ended call: the window to keep, and whether a rest is due. A due
    window is cleared (kept as ``''``): the count starts afresh, and of the processes
    ending the number's calls at once only the one that filled it is told. The Redis store
    does the same in ``lua/end.lua``."""
    seen = (seen + ("1" if connected else "0"))[-window.calls:]
    if len(seen) >= window.calls and seen.count("1") < window.least:
        return "", True
    return seen, False


class Ended(EndResult, kw_only=True):
    """What ``Store.end`` answers: the decision API's ``EndResult``, and for the engine what
    the end counted (``Engine.end`` answers the ``EndResult`` alone)."""

    number: str | None = None
    """The caller ID of the call, when this end ended it (not a repeated end) and it counts
    against the number: None for an emergency call or a call without a caller ID."""
    rest_due: bool = False
    """The number's window (``AnswerWindow``) filled with too few connected calls: the
    engine rests the number, and the store has cleared the window."""

    @property
    def answer(self) -> EndResult:
        """The decision API's answer: the same for a repeated end as for the first."""
        return EndResult(call_id=self.call_id, outcome=self.outcome,
                         sticky_recorded=self.sticky_recorded)


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
    user_id: str | None = None
    """The user a token acts as (with that user's permissions); None for a service token,
    which may call the decision API only."""
    expires_ms: int | None = None
    """When the token stops working (ms since the epoch); None: never."""
    last_used_ms: int | None = None
    """About when it was last used (written at most once a minute per process); None: never
    since it was created. Only ``list_tokens`` fills it in."""

    @property
    def id(self) -> str:
        """How the admin API names a token: the start of its hash (the token itself is never
        stored, and 64 bits of a SHA-256 tell tokens apart without revealing anything)."""
        return self.hash[:16]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One write to an account: who did what to which resource, and its state before and
    after (None where it did not exist)."""

    at_ms: int
    actor: str
    """``user:<id>`` for a user's token, ``cli`` for a command on the server's machine."""
    action: str
    """``<resource>.<verb>``, e.g. ``user.update``."""
    target: str
    """``<resource>:<id>``, e.g. ``user:ana``."""
    before: Any = None
    after: Any = None
    id: str = ""
    """The store's cursor for this entry (empty until stored); newer entries sort later."""


AUDIT_PAGE_MAX = 500


class AuditQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Newest first; ``before`` is the cursor a previous page ended at."""

    actor: str | None = None
    target: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    before: str | None = None
    limit: int = 50

    def matches(self, entry: AuditEntry) -> bool:
        return (
            (self.actor is None or entry.actor == self.actor)
            and (self.target is None or entry.target == self.target)
            and (self.since_ms is None or entry.at_ms >= self.since_ms)
            and (self.until_ms is None or entry.at_ms < self.until_ms)
        )


class LiveCall(msgspec.Struct, frozen=True, kw_only=True):
    """A call holding a channel now."""

    call_id: str
    user_id: str
    to: str | None
    caller_id: str | None
    lease_expires_ms: int
    inbound: bool = False
    """An incoming call (``POST /v1/inbound``): ``to`` is then the number calling in."""


class Store(Protocol):
    """Every call that waits on the store's own I/O answers within the store's deadline or
    raises ``StoreUnavailable``; what the caller is not told of by then is undone."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # Configuration: whole accounts, versioned. ``expected_version`` 0 creates.
    async def account_versions(self) -> dict[str, int]: ...

    async def load_account(self, account_id: str) -> tuple[AccountConfig, int] | None: ...

    async def save_account(
        self, config: AccountConfig, expected_version: int, audit: Sequence[AuditEntry] = ()
    ) -> int:
        """Save ``config`` over ``expected_version`` (else ``PreconditionFailed``, or
        ``Conflict`` when creating one that exists); ``audit`` is appended to the account's
        log in the same atomic write."""
        ...

    async def changes(self, since: int = -1) -> Changes:
        """What changed after ``since`` (a previous answer's ``cursor``; -1: it is not known).
        A store without a change feed says it cannot tell (``complete=False``: every
        account's version is compared)."""
        ...

    @property
    def feeds_revocations(self) -> bool:
        """Whether ``changes`` names every token revoked (else a token cache re-checks the
        tokens it holds itself)."""
        ...

    # Tokens, stored by hash only.
    async def add_token(self, record: TokenRecord, audit: AuditEntry | None = None) -> None: ...

    async def find_token(self, token_hash: str) -> TokenRecord | None: ...

    async def list_tokens(self, account_id: str) -> list[TokenRecord]: ...

    async def revoke_token(self, account_id: str, name: str) -> int: ...

    async def touch_token(self, account_id: str, token_hash: str, at_ms: int) -> None:
        """Record that the token was used about ``at_ms`` (coarse: callers write at most once
        a minute, and processes writing at once may leave the earlier of their times)."""
        ...

    async def remove_token(
        self, account_id: str, token_hash: str, audit: AuditEntry | None = None
    ) -> bool:
        """Revoke one token (and log ``audit`` with it); False if the account has no such
        token."""
        ...

    # The audit log of each account.
    async def audit_log(
        self, account_id: str, query: AuditQuery
    ) -> tuple[list[AuditEntry], str | None]:
        """Entries matching ``query``, newest first, and the cursor of the next page (None at
        the end). A page may hold fewer than ``limit`` entries and still have a next one: a
        store scans a bounded number of entries per page."""
        ...

    async def live_calls(self, account_id: str) -> list[LiveCall]:
        """The calls holding a channel of the account now."""
        ...

    async def watch(
        self, on_change: OnChange, on_revoked: Callable[[str], None] | None = None
    ) -> None:
        """Call ``on_change`` for configuration saved by other processes, and ``on_revoked``
        with the hash of each token another process revoked, until cancelled (returns at once
        when the store has no notifications: polling covers configuration, and a token's
        cached check expires within seconds)."""
        ...

    # Calls: the hot path and the call lifecycle.
    async def admit(self, ticket: Ticket, plan: Plan) -> Decision: ...

    async def end(
        self, account_id: str, call_id: str, outcome: Outcome, user_id: str | None = None,
        window: AnswerWindow | None = None,
    ) -> Ended:
        """End a call; with ``user_id``, only that user's (another's answers as missing).
        With ``window`` (the account has ``auto_rest``), a call this end ends that counts
        against its caller ID adds its outcome to the number's window, in the same atomic
        step (``record_answer``); a repeated end adds nothing."""
        ...

    async def heartbeat(
        self, account_id: str, call_id: str, ttl_ms: int, user_id: str | None = None
    ) -> int: ...

    async def peek(self, ticket: Ticket) -> Peek: ...

    async def usage(self, account_id: str, day: str) -> dict[str, int]:
        """The calls each number of the account placed on ``day`` (the account's day, as
        ``Ticket.day`` names it), counted when each call was allowed; numbers that placed
        none are left out. Kept for ``USAGE_KEPT_DAYS``."""
        ...

    async def send_text(self, ticket: TextTicket, plan: Plan) -> Decision:
        """Pick a text's sender as ``Plan.choose`` does, from the contact's sticky number and
        the texts each number sent today; when allowed, count the text against its sender
        and make the sender the contact's sticky number, in one atomic step. Raises
        ``StoreUnavailable`` when that step cannot be done in time (nothing was counted)."""
        ...

    async def texts(self, account_id: str, day: str) -> dict[str, int]:
        """The texts each number sent on ``day``, as ``usage`` counts calls."""
        ...

    async def sweep(self) -> int: ...

    # Do-not-call lists (``engine.store.dnc``): E.164 numbers per account.
    async def dnc_add(
        self, account_id: str, numbers: Sequence[str], audit: Sequence[AuditEntry] = ()
    ) -> int:
        """List ``numbers`` (E.164, already normalised); how many were not listed before.
        ``audit`` is logged with the write (one entry for a whole import). A write of many
        numbers may be split into several atomic steps (the CLI's import of millions): one
        that fails half way leaves the steps done listed, and can be run again."""
        ...

    async def dnc_remove(
        self, account_id: str, numbers: Sequence[str], audit: Sequence[AuditEntry] = ()
    ) -> int:
        """Take ``numbers`` off the list; how many were listed."""
        ...

    async def dnc_contains(self, account_id: str, number: str) -> bool: ...

    async def dnc_count(self, account_id: str) -> int: ...

    def dnc_active(self, account_id: str) -> bool:
        """Whether a dial of the account must be looked up in its list (``Ticket.dnc``):
        False only when the store knows the list is empty, so that accounts without one pay
        nothing on the hot path. No I/O."""
        ...

    def lease_counts(self) -> dict[str, int]: ...

    @property
    def healthy(self) -> bool: ...
