"""The Redis store: many callgate processes, one shared Redis (or Sentinel group, or Cluster).

Theory of operation
-------------------
Every piece of call state lives in Redis, under the keys ``keys.py`` lists, so every callgate
process sees the same leases, call records and sticky caller IDs, and any of them can answer
any request.

1. **One dial is one script call** (``lua/admit.lua``): it replays the answer of a retried
   call id, or reads the contact's sticky caller ID, picks the engine's answer (``Plan``),
   gives back expired leases, takes the channel or refuses at the limit, and keeps the
   record, atomically on the Redis server. A dial that can only be denied and needs no
   record (the client chose no call id) makes no round trip at all. Nothing else is sent on
   the dial path: tokens and configuration are in memory (kept fresh in the background).
2. **Every dial has a deadline** (``timeout_ms``, 100 ms by default) from its arrival.
   - It waits its turn in this process's admission queue for its Redis server (at most
     ``inflight`` dials on their way to it at once; a queue per server, so a silent cluster
     master holds up only its own slots); one whose deadline passes while it waits is answered
     ``store_unavailable`` without anything being sent.
   - The deadline travels with the script, in Redis's clock; a script that starts after it
     reads and writes nothing. So a dial answered 503 can never leave a channel taken, however
     long Redis was stalled, and the dials queued in a stalled Redis's socket cost it next
     to nothing when it wakes.
   - The caller waits for the reply until the deadline plus a quarter of it (a script that
     started just in time still has its reply on the way). A reply that comes later is read
     all the same, in its turn on the connection (``connection.py``), and if it took a
     channel, the channel is given back at once (``lua/undo_admit.lua``, by the attempt's
     nonce; a retry of the call id takes the record over first, so an undo never takes an
     answer a retry received).
   - The undo has one more use: a connection that breaks while a dial is in flight leaves
     no reply to read. Once that dial's deadline has passed (so it either ran before, or
     will never take anything), its admission is undone, retried for a few seconds.
   - A missed deadline never closes a connection: a stalled Redis does not cause a storm
     of reconnections when it wakes.
3. **Lease expiry** is Redis's clock. Expired leases are given back by the next dial of the
   account (``purge`` in ``lua/leases.lua``): no process sweeps anything.
4. **Configuration** is saved per account with a version, by ``lua/save_config.lua`` only
   over the version its writer read. ``lua/announce.lua`` then numbers the change in one
   global counter, keeps it in a short stream (the change feed) and publishes it. A process
   learns of changes from the publication at once, and from the feed each second
   (``changes``: one command, whatever the number of accounts); only when the feed cannot
   say what it missed (at start, after Redis lost it, after more than 1,000 changes) does
   it compare every account's version. Revoked tokens travel the same way.
5. Records expire by themselves (Redis key expiry). An allowed call's record is a hash of
   short fields; a denial's is a short string.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import hiredis
import msgspec

from callerid import AccountConfig, Outcome

from ...errors import (
    ConfigurationError,
    Conflict,
    InvalidField,
    PreconditionFailed,
    StoreUnavailable,
)
from ...wire import Decision, EndResult, rfc3339
from ..callstate import CallState, CallStatus, check_end, check_heartbeat, sticky_pair
from ..protocol import (
    AUDIT_PAGE_MAX,
    AuditEntry,
    AuditQuery,
    Changes,
    LiveCall,
    OnChange,
    Peek,
    Plan,
    Ticket,
    TokenRecord,
    channel_denial,
    claim_refused,
    claimed_names,
    refusal_detail,
)
from . import scripts as S
from .answers import (
    allowed_answer,
    caller_and_number,
    denial_answer,
    fingerprint_of,
    stored_answer,
    text,
)
from .connection import Lost, Pipe, RedisError, Unreachable, open_pipe
from .keys import (
    ACCOUNTS,
    CHANNEL,
    FEED,
    FEED_VERSION,
    NUMBER_OWNERS,
    AccountKeys,
    numbers_of,
    token_index,
)
from .settings import RedisSettings, parse_redis_url
from .topology import CONNECT_TIMEOUT_S, Node, Topology, build_topology

__all__ = ["RedisStore"]

log = logging.getLogger("callgate.store.redis")

ADMIN_DEADLINE_S = 1.0
"""Configuration, tokens, audit and live calls are off the hot path: they may wait longer."""
GRACE = 0.25
"""The part of the deadline a caller still waits for a reply after it, when Redis has gone
silent (a stall): the bound of every answer is the deadline and this part of it."""
BUSY = 2.0
"""The part of the deadline a caller may wait after it, instead, while its connection keeps
receiving replies (Redis is busy with a burst, not stalled): a reply on its way is a real
decision, better than a 503. Scripts run until this bound, and no later."""
PROGRESS_S = 0.1
"""A connection that got a reply this recently is making progress. Replies come in order, so
a dial still unanswered ``GRACE`` after its deadline (125 ms after it was sent, at least) on a
connection silent for this long has met a stall that began right after it was sent; shorter
silences are Redis's own hiccups (an AOF write on a busy disk) or a busy event loop here."""
TRANSIT_MS = 3
"""What a reply needs to come back: a script must start this long before its caller stops
waiting."""
CLOCK_EVERY_S = 10.0
COUNTS_EVERY_S = 2.0
ACTIVE_FOR_S = 60.0
"""The lease counts (a metric) of an account this process served within ``ACTIVE_FOR_S`` are
read every ``COUNTS_EVERY_S``; an idle account costs nothing."""
FEED_KEPT = 1000
UNDO_FOR_S = 5.0
LIVE_PAGE = 200
LIVE_MAX = 10_000
_AUDIT_SCAN = 2000
_STREAM_PART_MAX = 2**64 - 1
_REVOKED = "-token"
_UNAVAILABLE_REPLIES = {
    "READONLY", "MASTERDOWN", "CLUSTERDOWN", "LOADING", "TRYAGAIN", "BUSY", "OOM", "NOAUTH",
    "WRONGPASS", "MOVED", "ASK", "NOSCRIPT", "NOREPLICAS", "MISCONF",
}

_RELOCATED = {"READONLY", "MOVED", "ASK", "CLUSTERDOWN", "MASTERDOWN"}
"""Error replies that say a key is served elsewhere now: the topology is told."""

_NONCE_PREFIX = secrets.token_hex(6) + ":"
_attempts = itertools.count(1)

_config_encoder = msgspec.json.Encoder()
_config_decoder = msgspec.json.Decoder(AccountConfig)
_token_encoder = msgspec.msgpack.Encoder()
_token_decoder = msgspec.msgpack.Decoder(TokenRecord)
_audit_encoder = msgspec.json.Encoder()
_audit_decoder = msgspec.json.Decoder(AuditEntry)


def _stream_id(cursor: str) -> str:
    """An audit cursor as the stream id it is: ``<ms>-<seq>``, ASCII digits in range."""
    ms, dash, seq = cursor.partition("-")
    if not (
        dash
        and all(part.isascii() and part.isdigit() and int(part) <= _STREAM_PART_MAX
                for part in (ms, seq))
    ):
        raise InvalidField(f"cursor {cursor!r} is not one this store gave out", field="cursor")
    return cursor


# -- one script call on its way ----------------------------------------------------------------

class _Call:
    """One script call: sends it, and takes its reply (loading the script where Redis does
    not know it, following a cluster's ``MOVED`` once). ``late`` gets a reply its caller no
    longer waited for; ``lost`` is told when the connection broke before any reply."""

    __slots__ = (
        "args",
        "future",
        "late",
        "lost",
        "pipe",
        "release",
        "retries",
        "script",
        "store",
    )

    def __init__(
        self,
        store: RedisStore,
        script: S.Script,
        args: tuple[Any, ...],
        release: Callable[[], None] | None,
        late: Callable[[Any], None] | None = None,
        lost: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.script = script
        self.args = args
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.late = late
        self.lost = lost
        self.release = release
        self.retries = 2
        self.pipe: Pipe | None = None

    def send(self, pipe: Pipe) -> None:
        self.pipe = pipe
        pipe.send(hiredis.pack_command(("EVALSHA", self.script.sha, *self.args)), self.on_reply)

    def on_reply(self, reply: Any) -> None:
        if isinstance(reply, RedisError) and reply.kind in _RELOCATED:
            node = self.store._topology_moved(reply)  # told once, retried or not
        else:
            node = None
        if (isinstance(reply, RedisError) and self.retries and self.pipe is not None
                and not self.future.done()):  # a caller gone: nothing was taken, leave it
            self.retries -= 1
            try:
                if reply.kind == "NOSCRIPT":
                    self._load(self.pipe)
                    self.send(self.pipe)
                    return
                pipe = node.dial_pipe() if node is not None else None
                if pipe is not None:  # MOVED/ASK to a node we know: once more, there
                    self.send(pipe)
                    return
            except Lost as exc:
                reply = exc
        if self.release is not None:
            self.release()
            self.release = None
        if self.future.done():
            if isinstance(reply, Lost):
                if self.lost is not None:
                    self.lost()
            elif self.late is not None:
                self.late(reply)
            return
        if isinstance(reply, Exception):
            if isinstance(reply, Lost) and self.lost is not None:
                self.lost()
            self.future.set_exception(reply)
        else:
            self.future.set_result(reply)

    def _load(self, pipe: Pipe) -> None:
        """``SCRIPT LOAD`` once per connection at a time, ahead of the repeated call."""
        loading = pipe.loading
        sha = self.script.sha
        if sha in loading:
            return
        loading.add(sha)
        load: tuple[Any, ...] = ("SCRIPT", "LOAD", self.script.source)
        pipe.send(hiredis.pack_command(load),
                  lambda _: loading.discard(sha))


class RedisStore:
    def __init__(
        self,
        settings: RedisSettings | str,
        *,
        wait_at_start: bool = False,
        skew_ms: Callable[[], int] | None = None,
    ) -> None:
        """``wait_at_start``: keep trying (with backoff) until Redis answers, instead of
        failing at once. ``skew_ms``: added to Redis's clock; tests use it to move time."""
        if isinstance(settings, str):
            try:
                settings = parse_redis_url(settings)
            except ValueError as exc:
                raise ConfigurationError(f"--redis-url: {exc}") from None
        self.settings = settings
        self._deadline_s = settings.deadline_s
        self._wait_at_start = wait_at_start
        self._skew = skew_ms
        self._topology: Topology | None = None
        self._gates: dict[Node, asyncio.Semaphore] = {}
        self._healthy = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._monitor_task: asyncio.Task[None] | None = None
        self._leases: dict[str, int] = {}
        self._active: dict[str, float] = {}
        self._ids: dict[frozenset[str], str] = {}
        self._keys: dict[str, AccountKeys] = {}
        self.undone = 0
        """Admissions given back because their answer never reached the caller."""

    # -- connections -------------------------------------------------------------------------

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            raise StoreUnavailable("the Redis store is not open")
        return self._topology

    async def open(self) -> None:
        delay = 0.5
        while True:
            topology = build_topology(self.settings)
            try:
                await topology.start()
                break
            except Unreachable as exc:
                topology.close()
                if not self._wait_at_start:
                    raise StoreUnavailable(
                        f"cannot reach Redis at {self.settings.where}: {exc}"
                    ) from None
                log.warning("cannot reach Redis at %s (%s); trying again in %.1f s",
                            self.settings.where, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
        self._topology = topology
        self._healthy = True
        log.info("connected to Redis at %s", self.settings.where)
        self._monitor_task = asyncio.create_task(self._monitor(), name="redis-monitor")

    async def close(self) -> None:
        if self._monitor_task is not None:
            self._monitor_task.cancel()
            await asyncio.gather(self._monitor_task, return_exceptions=True)
            self._monitor_task = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
            for task in self._tasks:
                task.cancel()
        if self._topology is not None:
            self._topology.close()
            self._topology = None

    @property
    def healthy(self) -> bool:
        return self._healthy

    def connections_opened(self) -> int:
        """Connections this store has opened so far (every node, every pipe)."""
        return sum(n.opened for n in self.topology.nodes())

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _monitor(self) -> None:
        """Find out when Redis is back after a failure, keep each node's clock offset fresh
        (one ``TIME`` per node every ``CLOCK_EVERY_S``) and the lease counts of the accounts
        this process serves."""
        last_clock = last_counts = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            nodes = self.topology.nodes()
            now = time.monotonic()
            try:
                if not self._healthy:
                    await self._admin(nodes[0], "PING")
                    log.info("Redis at %s answers again", self.settings.where)
                    self._healthy = True
                if now - last_clock >= CLOCK_EVERY_S:
                    last_clock = now
                    for node in nodes:
                        await node.refresh_clock()
                if now - last_counts >= COUNTS_EVERY_S:
                    last_counts = now
                    await self._count_leases(now)
            except (StoreUnavailable, Unreachable, TimeoutError, Lost, RedisError):
                pass
            except Exception:  # the monitor must outlive anything: it is how Redis comes back
                log.exception("the Redis monitor failed a round; it goes on")

    async def _count_leases(self, now: float) -> None:
        for account_id, seen in list(self._active.items()):
            if now - seen > ACTIVE_FOR_S:
                del self._active[account_id]
                continue
            key = self._account_keys(account_id).leases
            node = self.topology.node_for(key)
            redis_now = int(time.monotonic() * 1000 + node.offset_ms + self._skew_ms())
            self._leases[account_id] = int(
                await self._command(key, "ZCOUNT", key, f"({redis_now}", "+inf")
            )

    def _topology_moved(self, reply: RedisError) -> Node | None:
        """Tell the topology of a ``MOVED``/``READONLY`` reply; the node now named for the
        slot of a ``MOVED``, if known."""
        topology = self.topology
        topology.moved(reply)
        parts = str(reply).split(" ")
        if parts[0] in ("MOVED", "ASK") and len(parts) == 3:
            host, _, port = parts[2].rpartition(":")
            for node in topology.nodes():
                if node.address.host == host and str(node.address.port) == port:
                    return node
        return None

    def _unavailable(self, exc: BaseException, waited_s: float | None = None) -> StoreUnavailable:
        if isinstance(exc, TimeoutError) and waited_s is not None:
            failure = StoreUnavailable(f"Redis did not answer within {round(waited_s * 1000)} ms")
        else:
            failure = StoreUnavailable(f"Redis is unavailable: {exc or type(exc).__name__}")
        if self._healthy:
            log.warning("Redis at %s: %s", self.settings.where, failure.detail)
        self._healthy = False
        if isinstance(exc, RedisError) and exc.kind not in _UNAVAILABLE_REPLIES:
            log.error("Redis refused a command of callgate's: %s", exc)
        return failure

    async def _admin(self, node: Node, *command: Any) -> Any:
        """One plain command on ``node``'s admin connection, within ``ADMIN_DEADLINE_S``."""
        try:
            async with asyncio.timeout(ADMIN_DEADLINE_S):
                pipe = await node.pipe(admin=True)
                return await pipe.call(*command)
        except (Unreachable, Lost, TimeoutError, RedisError) as exc:
            if isinstance(exc, RedisError) and exc.kind in ("MOVED", "READONLY"):
                self._topology_moved(exc)
            raise self._unavailable(exc, ADMIN_DEADLINE_S) from None

    async def _command(self, key: str, *command: Any) -> Any:
        """A plain command about ``key``, on the admin connection of the node that has it."""
        try:
            node = self.topology.node_for(key)
        except Unreachable as exc:
            raise self._unavailable(exc) from None
        result = await self._admin(node, *command)
        self._healthy = True
        return result

    async def _script(self, script: S.Script, keys: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        """A script off the hot path, on the admin connection, within ``ADMIN_DEADLINE_S``."""
        call_args = script.call_args(keys, args)
        try:
            async with asyncio.timeout(ADMIN_DEADLINE_S):
                node = self.topology.node_for(keys[0])
                call = _Call(self, script, call_args, None)
                call.send(await node.pipe(admin=True))
                reply = await call.future
        except (Unreachable, Lost, TimeoutError, RedisError) as exc:
            raise self._unavailable(exc, ADMIN_DEADLINE_S) from None
        self._healthy = True
        return reply

    # -- the hot path ------------------------------------------------------------------------

    def _account_keys(self, account_id: str) -> AccountKeys:
        keys = self._keys.get(account_id)
        if keys is None:
            if len(self._keys) > 65536:
                self._keys.clear()
            keys = self._keys[account_id] = AccountKeys(account_id)
        return keys

    def _id_list(self, ids: frozenset[str]) -> str:
        """``,id1,id2,``: the set as the admission script searches it (cached per set: a
        snapshot's sets live as long as it does)."""
        listed = self._ids.get(ids)
        if listed is None:
            if len(self._ids) > 4096:
                self._ids.clear()
            listed = self._ids[ids] = "," + ",".join(sorted(ids)) + ","
        return listed

    async def admit(self, ticket: Ticket, plan: Plan) -> Decision:
        if not ticket.remember and not plan.may_allow:
            return plan.decision  # nothing to take and nothing to remember
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        account = self._account_keys(ticket.account_id)
        self._active[ticket.account_id] = deadline
        call_id = ticket.call_id
        fallback, sticky = plan.decision, plan.sticky
        reads_sticky = sticky is not None and ticket.contact is not None
        replays = ticket.remember or reads_sticky  # then K.denied, fingerprint and nonce go
        keys = S.AdmitKeys(
            record=account.call(call_id),
            leases=account.leases,
            counts=account.counts,
            denied=account.denied(call_id) if replays else None,
            sticky=account.sticky if reads_sticky else None,
        )
        kept = sticky_pair(fallback) if fallback.allowed else None
        nonce = f"{_NONCE_PREFIX}{next(_attempts)}"
        fingerprint = fingerprint_of(ticket)
        try:
            node = self.topology.node_for(keys.record)
        except Unreachable as exc:
            raise self._unavailable(exc, self._deadline_s) from None
        gate = self._gates.get(node)
        if gate is None:  # one per node: a silent master must not hold the others' turns
            gate = self._gates[node] = asyncio.Semaphore(self.settings.inflight)
        if gate.locked():
            try:
                async with asyncio.timeout_at(deadline):
                    await gate.acquire()
            except TimeoutError:
                raise StoreUnavailable(  # Redis answers, just not in time: still healthy
                    f"{self.settings.inflight} dials were on their way to Redis for the whole "
                    f"{round(self._deadline_s * 1000)} ms deadline; this one was not sent"
                ) from None
        else:
            await gate.acquire()
        try:
            pipe = node.dial_pipe()
            if pipe is None:
                async with asyncio.timeout_at(deadline):
                    pipe = await node.pipe()
        except (Unreachable, TimeoutError) as exc:
            gate.release()
            raise self._unavailable(exc, self._deadline_s) from None
        except BaseException:
            gate.release()
            raise
        script_deadline = deadline + self._deadline_s * BUSY
        contact = ticket.contact or fallback.to or ""
        counted = "1" if ticket.counted else "0"
        args = S.AdmitArgs(
            skew_ms=self._skew_ms(),
            deadline_ms=int(script_deadline * 1000 - TRANSIT_MS + node.offset_ms
                            + self._skew_ms()),
            flags=("1" if ticket.remember else "0") + counted
            + ("1" if fallback.allowed else "0"),
            user=ticket.user_id,
            call_id=call_id,
            user_limit=ticket.user_limit,
            account_limit="" if ticket.account_limit is None else ticket.account_limit,
            ttl_ms=ticket.ttl_ms,
            keep=kept[1] if kept is not None else "",
            tail=f"{counted} {nonce} {fingerprint} {ticket.user_id} {contact} "
            f"{ticket.sticky_ttl_ms}|",
            answer=stored_answer(fallback),
            fingerprint=fingerprint if replays else None,
            nonce=nonce if replays else None,
            contact=contact if reads_sticky else None,
            sticky_answer=stored_answer(sticky) if sticky is not None and reads_sticky else None,
            sticky_ids=self._id_list(plan.sticky_ids) if reads_sticky else None,
        )
        undo = (keys.record, keys.leases, keys.counts)

        def late(reply: Any) -> None:
            if isinstance(reply, list) and reply and reply[0] == S.AdmitCode.ALLOWED:
                self._spawn(self._undo(undo, call_id, nonce, 0.0))

        def lost() -> None:
            if fallback.allowed or sticky is not None:
                # Not before the script's own deadline has passed: until then an ADMIT that
                # Redis read before the connection broke may still run, after the undo.
                wait = max(0.0, script_deadline - loop.time()) + 0.05
                self._spawn(self._undo(undo, call_id, nonce, wait))

        call = _Call(self, S.ADMIT, S.ADMIT.call_args(keys, args), gate.release, late, lost)
        try:
            call.send(pipe)
        except Lost as exc:
            gate.release()
            raise self._unavailable(exc) from None
        try:
            reply = await self._wait(call, pipe, deadline)
        except (TimeoutError, Lost, RedisError) as exc:
            raise self._unavailable(exc, self._deadline_s * (1 + GRACE)) from None
        self._healthy = True
        if reply[0] == S.AdmitCode.LATE and node.clock_suspect():
            self._spawn(self._remeasure(node))
        return self._admitted(ticket, fingerprint, fallback, sticky, reply)

    async def _remeasure(self, node: Node) -> None:
        """A dial ran past its deadline by Redis's clock: if that clock stepped (NTP, a VM
        moved), every deadline would be wrong until the next measure. Measure it now."""
        with contextlib.suppress(Unreachable, TimeoutError, Lost, RedisError):
            await node.refresh_clock(force=True)

    async def _wait(self, call: _Call, pipe: Pipe, deadline: float) -> Any:
        """The reply of ``call``, waited for until ``GRACE`` after ``deadline``, and on until
        ``BUSY`` after it while ``pipe`` keeps receiving replies; else ``TimeoutError`` (and
        the call's reply, when it comes, goes to its late handler)."""
        loop = asyncio.get_running_loop()
        try:
            for until in (deadline + self._deadline_s * GRACE, deadline + self._deadline_s * BUSY):
                try:
                    async with asyncio.timeout_at(until):
                        return await asyncio.shield(call.future)
                except TimeoutError:
                    # A busy event loop may not have read what Redis sent yet: a turn of the
                    # loop to read it (two: this task's turn comes before the reading's).
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                    if call.future.done():
                        return call.future.result()  # it came just as the wait ended
                    if loop.time() - pipe.replied_at > PROGRESS_S:
                        raise  # Redis has gone silent: do not wait on
            raise TimeoutError
        finally:
            if not call.future.done():
                call.future.cancel()  # its reply goes to the late handler

    def _admitted(
        self, ticket: Ticket, fingerprint: str, fallback: Decision, sticky: Decision | None,
        reply: list[Any],
    ) -> Decision:
        code = reply[0]
        call_id = ticket.call_id
        if code == S.AdmitCode.ALLOWED:
            _, _, expires, taken, in_account = reply
            answer = fallback
            if taken:
                assert sticky is not None
                answer = msgspec.structs.replace(sticky, caller_id=text(taken))
            if not ticket.counted:
                return answer  # an emergency call holds no channel: no lease to show
            if in_account >= 0:  # else counted only by the background count
                self._leases[ticket.account_id] = int(in_account)
            return msgspec.structs.replace(answer, lease_expires_at=rfc3339(int(expires)))
        if code == S.AdmitCode.DENIED:
            return fallback
        if code == S.AdmitCode.LIMIT:
            held, in_account = int(reply[2]), int(reply[3])
            self._leases[ticket.account_id] = in_account
            detail = refusal_detail(
                ticket.user_id, held, in_account, ticket.user_limit, ticket.account_limit
            )
            return channel_denial(call_id, detail or "no channel free")
        if code == S.AdmitCode.REPLAY:
            _, _, stored_fingerprint, blob, expires, taken, counted = reply
            self._check_fingerprint(call_id, fingerprint, text(stored_fingerprint))
            return allowed_answer(call_id, blob, expires, taken, counted)
        if code == S.AdmitCode.REPLAY_DENIAL:
            stored_fingerprint, answer = denial_answer(call_id, ticket.user_id, reply[2])
            self._check_fingerprint(call_id, fingerprint, stored_fingerprint)
            return answer
        # LATE: Redis ran it after its deadline, yet the reply came within the grace.
        raise StoreUnavailable("Redis ran the dial after its deadline, so it took nothing")

    @staticmethod
    def _check_fingerprint(call_id: str, fingerprint: str, stored: str) -> None:
        if stored != fingerprint:
            raise Conflict(
                f"call id {call_id!r} was already used for a different request", field="call_id"
            )

    async def _undo(
        self, keys: tuple[str, str, str], call_id: str, nonce: str, wait_s: float
    ) -> None:
        """Give back an admission whose answer its caller never had. ``wait_s``: until the
        dial's deadline has passed in Redis (after that it cannot take anything any more)."""
        if wait_s:
            await asyncio.sleep(wait_s)
        until = time.monotonic() + UNDO_FOR_S
        while True:
            try:
                if await self._script(S.UNDO_ADMIT, keys,
                                      S.UndoArgs(self._skew_ms(), call_id, nonce)):
                    self.undone += 1
                    log.info("gave back the channel of call %r: its answer was lost", call_id)
                return
            except StoreUnavailable:
                if time.monotonic() > until:
                    log.warning("could not give back the channel of call %r; it is held "
                                "until its lease expires", call_id)
                    return
                await asyncio.sleep(0.25)

    # -- the call lifecycle ------------------------------------------------------------------

    async def end(
        self, account_id: str, call_id: str, outcome: Outcome, user_id: str | None = None
    ) -> EndResult:
        account = self._account_keys(account_id)
        reply = await self._lifecycle(
            S.END,
            S.EndKeys(account.call(call_id), account.denied(call_id), account.leases,
                      account.counts, account.sticky, account.sticky_expiry),
            S.EndArgs(self._skew_ms(), call_id, outcome.value,
                      "1" if outcome.connected else "0", user_id or ""),
        )
        code = reply[0]
        if code == S.EndCode.OK:
            self._leases[account_id] = int(reply[2])
            return EndResult(call_id=call_id, outcome=outcome,
                             sticky_recorded=bool(reply[1]) and outcome.connected)
        check_end(call_id, self._status(call_id, self._END_STATES[code], reply), outcome)
        # ended with this outcome already: the same answer again
        return EndResult(call_id=call_id, outcome=outcome,
                         sticky_recorded=bool(reply[2]) and outcome.connected)

    async def heartbeat(
        self, account_id: str, call_id: str, ttl_ms: int, user_id: str | None = None
    ) -> int:
        account = self._account_keys(account_id)
        reply = await self._lifecycle(
            S.HEARTBEAT,
            S.HeartbeatKeys(account.call(call_id), account.denied(call_id), account.leases),
            S.HeartbeatArgs(self._skew_ms(), call_id, ttl_ms, user_id or ""),
        )
        check_heartbeat(call_id, self._status(call_id, self._HEARTBEAT_STATES[reply[0]], reply))
        return int(reply[1])  # the new lease expiry: the call was live

    _END_STATES: ClassVar[Mapping[S.EndCode, CallState]] = {
        S.EndCode.MISSING: CallState.MISSING,
        S.EndCode.DENIED: CallState.DENIED,
        S.EndCode.ENDED: CallState.ENDED,
    }
    """The states END answers for without ending anything (OK: it ended the call)."""
    _HEARTBEAT_STATES: ClassVar[Mapping[S.HeartbeatCode, CallState]] = {
        S.HeartbeatCode.MISSING: CallState.MISSING,
        S.HeartbeatCode.DENIED: CallState.DENIED,
        S.HeartbeatCode.ENDED: CallState.ENDED,
        S.HeartbeatCode.EMERGENCY: CallState.EMERGENCY,
        S.HeartbeatCode.EXPIRED: CallState.EXPIRED,
        S.HeartbeatCode.OK: CallState.LIVE,
    }
    """The state each HEARTBEAT reply stands for (OK: it was live, and is extended)."""

    @staticmethod
    def _status(call_id: str, state: CallState, reply: Sequence[Any]) -> CallStatus:
        """``state`` with what a lifecycle script's ``reply`` says of it: the remembered
        denial of a denied call, the outcome of an ended one."""
        if state is CallState.DENIED:
            return CallStatus(state=state, denial=denial_answer(call_id, "", reply[1])[1])
        if state is CallState.ENDED:
            return CallStatus(state=state, outcome=Outcome(text(reply[1])))
        return CallStatus(state=state)

    async def _lifecycle(
        self, script: S.Script, keys: tuple[Any, ...], args: tuple[Any, ...]
    ) -> Any:
        """End and heartbeat: the dial's deadline, on the dial connections (no queue: they
        give channels back, and never take one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s * (1 + GRACE)
        try:
            async with asyncio.timeout_at(deadline):
                node = self.topology.node_for(keys[0])
                pipe = node.dial_pipe() or await node.pipe()
                call = _Call(self, script, script.call_args(keys, args), None)
                call.send(pipe)
                reply = await call.future
        except (Unreachable, Lost, TimeoutError, RedisError) as exc:
            raise self._unavailable(exc, self._deadline_s * (1 + GRACE)) from None
        self._healthy = True
        return reply

    async def peek(self, ticket: Ticket) -> Peek:
        account = self._account_keys(ticket.account_id)
        call_id = ticket.call_id
        reply = await self._lifecycle(
            S.PEEK,
            S.PeekKeys(account.call(call_id), account.denied(call_id), account.leases,
                       account.counts, account.sticky),
            S.PeekArgs(self._skew_ms(), "1" if ticket.remember else "0", ticket.user_id,
                       ticket.contact or ""),
        )
        held, in_account, sticky, kind = reply[:4]
        known = None
        fingerprint = fingerprint_of(ticket)
        if kind == 1:
            stored, blob, expires, taken, counted = reply[4:]
            self._check_fingerprint(call_id, fingerprint, text(stored))
            known = allowed_answer(call_id, blob, expires, taken, counted)
        elif kind == 2:
            stored_fingerprint, known = denial_answer(call_id, ticket.user_id, reply[4])
            self._check_fingerprint(call_id, fingerprint, stored_fingerprint)
        return Peek(known=known, sticky=text(sticky) or None, user_leases=int(held),
                    account_leases=int(in_account))

    async def live_calls(self, account_id: str) -> list[LiveCall]:
        account = self._account_keys(account_id)
        live: list[LiveCall] = []
        after, skip = "", 0
        while len(live) < LIVE_MAX:
            page = await self._script(
                S.LIVE, S.LiveKeys(account.leases),
                S.LiveArgs(self._skew_ms(), after, skip, LIVE_PAGE),
            )
            if not page:
                break
            held = [(text(page[i]).partition("|"), int(float(page[i + 1])))
                    for i in range(0, len(page), 2)]
            keys = [account.call(call_id) for (_, _, call_id), _ in held]
            records = await self._command(keys[0], "MGET", *keys)
            for ((user, _, call_id), expires), record in zip(held, records, strict=True):
                caller_id, to = caller_and_number(record) if record else (None, None)
                live.append(LiveCall(call_id=call_id, user_id=user, to=to, caller_id=caller_id,
                                     lease_expires_ms=expires))
            if len(page) < 2 * LIVE_PAGE:
                break
            last = text(page[-1])
            ties = sum(1 for _, expires in held if expires == held[-1][1])
            skip = skip + ties if last == after else ties
            after = last
        return sorted(live, key=lambda c: (c.lease_expires_ms, c.call_id))

    async def sweep(self) -> int:
        """Nothing to do: Redis expires records; dials give expired leases back."""
        return 0

    def lease_counts(self) -> dict[str, int]:
        """Channels held per account, as this process last saw them (every dial and end
        tells it)."""
        return dict(self._leases)

    def _skew_ms(self) -> int:
        return self._skew() if self._skew is not None else 0

    # -- configuration -----------------------------------------------------------------------

    async def account_versions(self) -> dict[str, int]:
        members = await self._command(ACCOUNTS, "SMEMBERS", ACCOUNTS)
        ids = sorted(text(m) for m in members)
        versions = await asyncio.gather(
            *(self._command(self._account_keys(a).config, "HGET", self._account_keys(a).config, "v")
              for a in ids)
        )
        return {a: int(v) for a, v in zip(ids, versions, strict=True) if v is not None}

    async def load_account(self, account_id: str) -> tuple[AccountConfig, int] | None:
        key = self._account_keys(account_id).config
        blob, version = await self._command(key, "HMGET", key, "c", "v")
        if blob is None or version is None:
            return None
        return _config_decoder.decode(blob), int(version)

    async def save_account(
        self, config: AccountConfig, expected_version: int, audit: Sequence[AuditEntry] = ()
    ) -> int:
        """The account's numbers and SIP domain (``claimed_names``) are claimed first (in
        their own slot: a script cannot touch both), then the configuration saved over its
        version, then whatever the account no longer has (or claimed for a save that failed)
        let go. A process that dies between the first two leaves its claims until the
        account's next save. An account saved before domains were claimed claims its domain
        at its next save."""
        await self._command(ACCOUNTS, "SADD", ACCOUNTS, config.id)
        numbers = S.NumberKeys(NUMBER_OWNERS, numbers_of(config.id))
        claimed = await self._script(
            S.CLAIM_NUMBERS, numbers, S.NumbersArgs(config.id, tuple(claimed_names(config))))
        if not claimed[0]:
            raise claim_refused(text(claimed[1]))
        account = self._account_keys(config.id)
        try:
            saved, version = await self._script(
                S.SAVE_CONFIG,
                S.ConfigKeys(account.config, account.audit),
                S.SaveConfigArgs(expected_version, _config_encoder.encode(config),
                                 tuple(_audit_encoder.encode(e) for e in audit)),
            )
        except BaseException:
            self._spawn(self._settle_numbers(config.id, later=True))
            raise
        await self._settle_numbers(config.id)
        if not saved:
            if expected_version == 0:
                raise Conflict(f"account {config.id!r} already exists", field="id")
            raise PreconditionFailed(
                f"account {config.id!r} is at version {version}, not {expected_version}: "
                "it changed since it was read"
            )
        await self._announce("a", config.id, str(version))
        return int(version)

    async def _settle_numbers(self, account_id: str, *, later: bool = False) -> None:
        """Hold on to the numbers and SIP domain the stored configuration of ``account_id``
        has, and let go of the others it claimed; ``later``: in the background, after a failed
        save, trying again while Redis cannot be reached (the next save settles them too)."""
        numbers = S.NumberKeys(NUMBER_OWNERS, numbers_of(account_id))
        for attempt in range(20 if later else 1):
            try:
                stored = await self.load_account(account_id)
                kept = tuple(claimed_names(stored[0])) if stored is not None else ()
                await self._script(S.RELEASE_NUMBERS, numbers, S.NumbersArgs(account_id, kept))
                return
            except StoreUnavailable:
                if not later:
                    raise
                await asyncio.sleep(min(0.5 * 2 ** attempt, 10.0))
        log.warning("could not settle the numbers and SIP domain claimed by account %r; its "
                    "next save does", account_id)

    async def _announce(self, kind: str, subject: str, value: str = "") -> None:
        """Put a change on the feed and publish it; on failure, keep trying in the
        background (the change itself is saved)."""
        args = S.AnnounceArgs(kind, subject, value, CHANNEL, FEED_KEPT)
        try:
            await self._script(S.ANNOUNCE, S.FeedKeys(FEED_VERSION, FEED), args)
        except StoreUnavailable:
            self._spawn(self._announce_later(args))

    async def _announce_later(self, args: S.AnnounceArgs) -> None:
        for _ in range(120):
            await asyncio.sleep(0.5)
            try:
                await self._script(S.ANNOUNCE, S.FeedKeys(FEED_VERSION, FEED), args)
                return
            except StoreUnavailable:
                continue
        log.warning("could not announce a change of %r; other processes find it at their next "
                    "full check", args.subject)

    async def changes(self, since: int = -1) -> Changes:
        """One ``GET`` of the change counter; the feed is read only when it moved."""
        current = await self._command(FEED_VERSION, "GET", FEED_VERSION)
        if since >= 0 and int(current or 0) == since:
            return Changes(complete=True, cursor=since)
        reply = await self._script(
            S.FEED, S.FeedKeys(FEED_VERSION, FEED), S.FeedArgs(since, FEED_KEPT)
        )
        accounts: dict[str, int] = {}
        revoked: list[str] = []
        for fields in reply[2:]:
            entry = dict(zip(fields[::2], fields[1::2], strict=True))
            if b"t" in entry:
                revoked.append(text(entry[b"t"]))
            else:
                account_id, version = text(entry[b"a"]), int(entry[b"v"])
                accounts[account_id] = max(version, accounts.get(account_id, 0))
        return Changes(complete=bool(reply[1]), accounts=accounts, revoked=tuple(revoked),
                       cursor=int(reply[0]))

    @property
    def feeds_revocations(self) -> bool:
        return True

    async def watch(
        self, on_change: OnChange, on_revoked: Callable[[str], None] | None = None
    ) -> None:
        """Reload what other processes save, as they announce it, and forget tokens they
        revoke. After every (re)subscribe ``on_change(None, 0)`` asks for a full check:
        messages sent while this process was not listening are lost."""
        delay = 0.5
        while True:
            messages: asyncio.Queue[bytes] = asyncio.Queue()
            pipe: Pipe | None = None
            try:
                node = self.topology.any_node()
                pipe, _ = await open_pipe(
                    node.address, self.settings, self.topology.context, CONNECT_TIMEOUT_S,
                    on_push=messages.put_nowait,
                )
                async with asyncio.timeout(CONNECT_TIMEOUT_S):  # not wait_for (see topology.py)
                    await pipe.call("SUBSCRIBE", CHANNEL)
                delay = 0.5
                await on_change(None, 0)
                closed = pipe.closed
                while True:
                    get = asyncio.ensure_future(messages.get())
                    await asyncio.wait((get, closed), return_when=asyncio.FIRST_COMPLETED)
                    if not get.done():
                        get.cancel()
                        raise Lost("the subscription's connection closed")
                    account_id, _, version = text(get.result()).partition(" ")
                    if account_id == _REVOKED:
                        if on_revoked is not None:
                            on_revoked(version)
                    elif version.isdigit():
                        await on_change(account_id, int(version))
            except (Unreachable, Lost, TimeoutError, RedisError, StoreUnavailable) as exc:
                log.warning(
                    "configuration notifications from Redis lost (%s); subscribing again "
                    "in %.1f s, the change feed covers the gap", exc, delay,
                )
            finally:
                if pipe is not None:
                    pipe.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)

    # -- tokens ------------------------------------------------------------------------------
    # ``…:tokens`` maps each token hash to its record; ``cg:token:<hash>`` finds a hash's
    # account (it lives in another slot, so the two are written one after the other: the
    # record first, and removed last).

    async def add_token(self, record: TokenRecord, audit: AuditEntry | None = None) -> None:
        account = self._account_keys(record.account_id)
        await self._script(
            S.ADD_TOKEN, S.TokenKeys(account.tokens, account.audit, account.token_use),
            S.AddTokenArgs(record.hash, _token_encoder.encode(record),
                           (_audit_encoder.encode(audit),) if audit else ()),
        )
        index = token_index(record.hash)
        await self._command(index, "SET", index, record.account_id)

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        index = token_index(token_hash)
        account_id = await self._command(index, "GET", index)
        if account_id is None:
            return None
        tokens = self._account_keys(text(account_id)).tokens
        blob = await self._command(tokens, "HGET", tokens, token_hash)
        return None if blob is None else _token_decoder.decode(blob)

    async def list_tokens(self, account_id: str) -> list[TokenRecord]:
        account = self._account_keys(account_id)
        blobs = await self._command(account.tokens, "HVALS", account.tokens)
        use = await self._command(account.token_use, "HGETALL", account.token_use)
        used = {text(use[i]): int(use[i + 1]) for i in range(0, len(use), 2)}
        records = [_token_decoder.decode(b) for b in blobs]
        records = [msgspec.structs.replace(r, last_used_ms=used.get(r.hash)) for r in records]
        return sorted(records, key=lambda r: (r.created_ms, r.name))

    async def touch_token(self, account_id: str, token_hash: str, at_ms: int) -> None:
        use = self._account_keys(account_id).token_use
        await self._command(use, "HSET", use, token_hash, at_ms)

    async def revoke_token(self, account_id: str, name: str) -> int:
        revoked = [r for r in await self.list_tokens(account_id) if r.name == name]
        for record in revoked:
            await self.remove_token(account_id, record.hash)
        return len(revoked)

    async def remove_token(
        self, account_id: str, token_hash: str, audit: AuditEntry | None = None
    ) -> bool:
        index = token_index(token_hash)
        owner = await self._command(index, "GET", index)
        if owner is None or text(owner) != account_id:
            return False
        await self._command(index, "DEL", index)
        account = self._account_keys(account_id)
        removed = await self._script(
            S.REMOVE_TOKEN, S.TokenKeys(account.tokens, account.audit, account.token_use),
            S.RemoveTokenArgs(token_hash, (_audit_encoder.encode(audit),) if audit else ()),
        )
        await self._announce("t", token_hash)
        return bool(removed)

    # -- audit log ---------------------------------------------------------------------------

    async def audit_log(
        self, account_id: str, query: AuditQuery
    ) -> tuple[list[AuditEntry], str | None]:
        """Reads the stream newest first from the cursor, at most ``_AUDIT_SCAN`` entries a
        page, keeping those that match."""
        key = self._account_keys(account_id).audit
        end = "+" if query.before is None else "(" + _stream_id(query.before)
        found: list[AuditEntry] = []
        scanned = 0
        last: str | None = None
        while scanned < _AUDIT_SCAN and len(found) < query.limit:
            batch = await self._command(
                key, "XREVRANGE", key, end, "-", "COUNT", min(AUDIT_PAGE_MAX, _AUDIT_SCAN)
            )
            if not batch:
                return found, None
            for stream_id, fields in batch:
                last = text(stream_id)
                scanned += 1
                entry = _audit_decoder.decode(
                    dict(zip(fields[::2], fields[1::2], strict=True))[b"e"]
                )
                if query.matches(entry):
                    found.append(msgspec.structs.replace(entry, id=last))
                    if len(found) == query.limit:
                        break
            end = "(" + (last or "")
        return found, last
