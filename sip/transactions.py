"""Server transactions (RFC 3261 section 17.2), without I/O: time is an argument.

A redirect server answers every request with one final response and keeps no dialogs, so a
transaction here is small: the request's key, its final response once there is one, and the
timers that retransmit and then forget it.

Invariants:

1. A request whose key matches a transaction is a retransmission. It gets the transaction's
   final response again, byte for byte, and no second decision (section 17.2.1, 17.2.2); while
   the decision is still being made it gets nothing (we send no provisional responses).
2. An ACK matching an INVITE transaction is absorbed: it stops the retransmissions of the final
   response and is never answered (section 17.2.1). An ACK matching nothing is dropped.
3. Over UDP, an INVITE's final response is retransmitted at T1, 2*T1, ... capped at T2 until
   the ACK comes or Timer H (64*T1) runs out (Timer G). After the ACK the transaction lingers
   for T4 to absorb retransmitted ACKs (Timer I). A non-INVITE transaction keeps its answer for
   64*T1 over UDP (Timer J). Over TCP and TLS nothing is retransmitted and a transaction ends
   at its ACK (INVITE) or after ``T4`` (others, to catch a client resending over a new
   connection).
4. Memory is bounded: past ``max_transactions`` the transactions nearest their end go first.

Keys (section 17.2.3): with an RFC 3261 branch (``z9hG4bK...``), the branch, the top Via's
sent-by and the method, ACK counting as INVITE; for older clients, the Call-ID, From tag,
CSeq number, top Via and method.
"""

from __future__ import annotations

import enum
import heapq
import itertools

import msgspec

from .message import Address, Request, Via

__all__ = ["T1_S", "T2_S", "T4_S", "Transaction", "Transactions", "invite_key",
           "transaction_key"]

T1_S = 0.5
T2_S = 4.0
T4_S = 5.0
MAGIC_COOKIE = "z9hG4bK"

Key = tuple[str, ...]


def invite_key(via: Via) -> Key | None:
    """The key of the INVITE transaction an ACK with top Via ``via`` belongs to, when its
    branch is an RFC 3261 one (else None: the older key needs the whole message)."""
    return _branch_key(via, "INVITE")


def _branch_key(via: Via, method: str) -> Key | None:
    """RFC 3261 section 17.2.3: branch, sent-by and method, when the branch has the magic
    cookie; None for an older (RFC 2543) client."""
    branch = via.branch
    if branch is None or not branch.startswith(MAGIC_COOKIE):
        return None
    return (branch, via.host.lower(), str(via.port or ""), method)


def transaction_key(request: Request, method: str | None = None) -> Key:
    """The key of the server transaction ``request`` belongs to; ``method`` overrides the
    request's (a CANCEL looks up the INVITE it cancels)."""
    via = request.vias[0]
    method = method or ("INVITE" if request.method == "ACK" else request.method)
    key = _branch_key(via, method)
    if key is not None:
        return key
    from_tag = request.from_.tag if request.from_ is not None else None
    return ("2543", request.call_id, from_tag or "", str(request.cseq), via.raw, method)


class State(enum.Enum):
    PROCEEDING = "proceeding"
    """Waiting for the decision."""
    COMPLETED = "completed"
    """Final response sent."""
    CONFIRMED = "confirmed"
    """INVITE: the ACK came."""


class Transaction(msgspec.Struct, kw_only=True, gc=False):
    """One server transaction (mutable: its state moves on). Not tracked by the garbage
    collector: tens of thousands are alive under load, and a full collection that walks
    them all stalls the loop (measured: retransmissions under sipp at 2,500 calls/s fell
    from 9,177 to 1,538 with collection off)."""

    key: Key
    method: str
    peer: Address
    """Where the request came from (what ``received`` and ``rport`` report)."""
    reliable: bool
    ends_at: float
    reply_to: Address | None = None
    """Over UDP, where its responses go (``message.response_address``); None: on the
    connection."""
    login: str | None = None
    """The login (``username@realm``) an INVITE authenticates as, once known: a ban of it
    silences the retransmissions too."""
    state: State = State.PROCEEDING
    response: bytes | None = None
    canceled: bool = False
    interval_s: float = T1_S
    retransmit_at: float | None = None


class Transactions:
    def __init__(self, *, max_transactions: int = 200_000) -> None:
        self._max = max_transactions
        self._by_key: dict[Key, Transaction] = {}
        self._timers: list[tuple[float, int, Key]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._by_key)

    def find(self, key: Key) -> Transaction | None:
        return self._by_key.get(key)

    def start(
        self, key: Key, method: str, peer: Address, reliable: bool, now_s: float, *,
        reply_to: Address | None = None,
    ) -> Transaction:
        """A new transaction for a request from ``peer``; over UDP its responses go to
        ``reply_to`` (by default ``peer``)."""
        if reply_to is None and not reliable:
            reply_to = peer
        transaction = Transaction(key=key, method=method, peer=peer, reliable=reliable,
                                  reply_to=reply_to, ends_at=now_s + 64 * T1_S)
        self._by_key[key] = transaction
        self._schedule(transaction.ends_at, key)
        while len(self._by_key) > self._max:
            self._evict_one()
        return transaction

    def complete(self, transaction: Transaction, response: bytes, now_s: float) -> None:
        """Record the final response (sent by the caller now)."""
        transaction.response = response
        transaction.state = State.COMPLETED
        if transaction.method == "INVITE":
            if not transaction.reliable:
                transaction.retransmit_at = now_s + T1_S
                self._schedule(transaction.retransmit_at, transaction.key)
            transaction.ends_at = now_s + 64 * T1_S
        else:
            transaction.ends_at = now_s + (T4_S if transaction.reliable else 64 * T1_S)
        self._schedule(transaction.ends_at, transaction.key)

    def acknowledge(self, transaction: Transaction, now_s: float) -> None:
        """An ACK for an INVITE's final response came (absorbed: no reply)."""
        if transaction.state is not State.COMPLETED:
            return
        transaction.state = State.CONFIRMED
        transaction.retransmit_at = None
        transaction.ends_at = now_s + (0.0 if transaction.reliable else T4_S)
        self._schedule(transaction.ends_at, transaction.key)

    def due(self, now_s: float) -> list[Transaction]:
        """Forget the transactions whose time is up; those whose response to retransmit
        now (to ``reply_to``)."""
        out: list[Transaction] = []
        while self._timers and self._timers[0][0] <= now_s:
            _, _, key = heapq.heappop(self._timers)
            transaction = self._by_key.get(key)
            if transaction is None:
                continue
            if transaction.ends_at <= now_s:
                del self._by_key[key]
                continue
            at = transaction.retransmit_at
            if at is not None and at <= now_s and transaction.response is not None:
                out.append(transaction)
                transaction.interval_s = min(2 * transaction.interval_s, T2_S)
                transaction.retransmit_at = now_s + transaction.interval_s
                self._schedule(transaction.retransmit_at, key)
        return out

    def _schedule(self, at: float, key: Key) -> None:
        heapq.heappush(self._timers, (at, next(self._order), key))

    def _evict_one(self) -> None:
        while self._timers:
            _, _, key = heapq.heappop(self._timers)
            if self._by_key.pop(key, None) is not None:
                return
