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
4. **Configuration** (``configuration.py``) is saved per account with a version, by
   ``lua/save_config.lua`` only over the version its writer read. ``lua/announce.lua`` then
   numbers the change in one global counter, keeps it in a short stream (the change feed)
   and publishes it. A process learns of changes from the publication at once, and from the
   feed each second (``changes``: one command, whatever the number of accounts); only when
   the feed cannot say what it missed (at start, after Redis lost it, after more than 1,000
   changes) does it compare every account's version. Revoked tokens travel the same way.
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
from collections.abc import Callable
from typing import Any

import msgspec

from callerid import Rule

from ...errors import ConfigurationError, Conflict, StoreUnavailable
from ...wire import Decision, rfc3339
from ..callstate import sticky_pair
from ..dnc import number_key, redis_bucket
from ..protocol import Plan, Rotation, Ticket, channel_denial, dnc_denial, refusal_detail
from . import scripts as S
from .answers import (
    allowed_answer,
    denial_answer,
    fingerprint_of,
    pick_tail,
    stored_answer,
    text,
)
from .audit import AuditCommands
from .calls import ScriptCall
from .configuration import ConfigurationCommands
from .connection import Lost, Pipe, RedisError, Unreachable
from .dnc import DncCommands
from .keys import AccountKeys
from .lifecycle import LifecycleCommands
from .settings import RedisSettings, parse_redis_url
from .texts import TextCommands
from .tokens import TokenCommands
from .topology import Node, Topology, build_topology

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
UNDO_FOR_S = 5.0
_UNAVAILABLE_REPLIES = {
    "READONLY", "MASTERDOWN", "CLUSTERDOWN", "LOADING", "TRYAGAIN", "BUSY", "OOM", "NOAUTH",
    "WRONGPASS", "MOVED", "ASK", "NOSCRIPT", "NOREPLICAS", "MISCONF",
}

_NONCE_PREFIX = secrets.token_hex(6) + ":"
_attempts = itertools.count(1)


class RedisStore(
    LifecycleCommands, TextCommands, ConfigurationCommands, TokenCommands, AuditCommands,
    DncCommands,
):
    """The store: its connections and the dial (the hot path) here; the calls' lifecycle,
    texts, configuration and the change feed, tokens, the audit log and the do-not-call
    lists in the parts it inherits (``lifecycle.py``, ``texts.py``, ``configuration.py``,
    ``tokens.py``, ``audit.py``, ``dnc.py``)."""

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
        self._dnc_known: dict[str, tuple[bool, float]] = {}
        self._dnc_reading: set[str] = set()
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
                call = ScriptCall(self, script, call_args, None)
                call.send(await node.pipe(admin=True))
                reply = await call.future
        except (Unreachable, Lost, TimeoutError, RedisError) as exc:
            raise self._unavailable(exc, ADMIN_DEADLINE_S) from None
        self._healthy = True
        return reply

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
                call = ScriptCall(self, script, script.call_args(keys, args), None)
                call.send(pipe)
                reply = await call.future
        except (Unreachable, Lost, TimeoutError, RedisError) as exc:
            raise self._unavailable(exc, self._deadline_s * (1 + GRACE)) from None
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
        if not ticket.remember and not plan.may_allow and ticket.dnc is None:
            return plan.decision  # nothing to take, look up or remember
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        account = self._account_keys(ticket.account_id)
        self._active[ticket.account_id] = deadline
        call_id = ticket.call_id
        fallback, sticky, rotation, caps = plan.decision, plan.sticky, plan.rotation, plan.caps
        if rotation is not None:
            fallback = rotation.exhausted  # the answer unless the rotation finds a number
        reads_sticky = sticky is not None and ticket.contact is not None
        replays = ticket.remember or reads_sticky  # then K.denied, fingerprint and nonce go
        keys = S.AdmitKeys(
            record=account.call(call_id),
            leases=account.leases,
            counts=account.counts,
            usage=account.usage(ticket.day),
            denied=account.denied(call_id) if replays else None,
            sticky=account.sticky if reads_sticky else None,
        )
        kept = sticky_pair(fallback) if fallback.allowed else None
        capped = bool(caps) and (reads_sticky or rotation is not None)
        later = capped or rotation is not None  # arguments after the sticky ones follow
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
            + ("1" if fallback.allowed else "0") + ("1" if ticket.dnc is not None else ""),
            user=ticket.user_id,
            call_id=call_id,
            user_limit=ticket.user_limit,
            account_limit="" if ticket.account_limit is None else ticket.account_limit,
            ttl_ms=ticket.ttl_ms,
            keep=kept[1] if kept is not None else "",
            tail=f"{counted} {nonce} {fingerprint} {ticket.user_id} {contact} "
            f"{ticket.sticky_ttl_ms}|",
            answer=stored_answer(fallback),
            fingerprint=fingerprint if replays else "" if later else None,
            nonce=nonce if replays else "" if later else None,
            contact=contact if reads_sticky else "" if later else None,
            sticky_answer=(stored_answer(sticky) if sticky is not None and reads_sticky
                           else b"" if later else None),
            sticky_ids=self._id_list(plan.sticky_ids) if reads_sticky else "" if later else None,
            cap=("" if caps.default is None else caps.default) if capped else
            "" if rotation is not None else None,
            caps="".join(f",{n}={c}" for n, c in caps.overrides.items()) + ","
            if capped else "" if rotation is not None else None,
            steps="".join(f"{rule} {' '.join(numbers)};" for rule, numbers in rotation.steps)
            if rotation is not None else None,
            pick=pick_tail(rotation.answer) if rotation is not None else None,
        )
        undo = S.UndoKeys(keys.record, keys.leases, keys.counts, keys.usage)

        def late(reply: Any) -> None:
            if isinstance(reply, list) and reply and reply[0] == S.AdmitCode.ALLOWED:
                self._spawn(self._undo(undo, call_id, nonce, 0.0))

        def lost() -> None:
            if fallback.allowed or sticky is not None:
                # Not before the script's own deadline has passed: until then an ADMIT that
                # Redis read before the connection broke may still run, after the undo.
                wait = max(0.0, script_deadline - loop.time()) + 0.05
                self._spawn(self._undo(undo, call_id, nonce, wait))

        call_args = S.ADMIT.call_args(keys, args)
        if ticket.dnc is not None:  # the number's set, last of the keys; the number, last
            n = call_args[0]
            bucket = account.dnc(redis_bucket(number_key(ticket.dnc))[0])
            call_args = (n + 1, *call_args[1:n + 1], bucket, *call_args[n + 1:], ticket.dnc)
        call = ScriptCall(self, S.ADMIT, call_args, gate.release, late, lost)
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
        return self._admitted(ticket, fingerprint, fallback, sticky, rotation, reply)

    async def _remeasure(self, node: Node) -> None:
        """A dial ran past its deadline by Redis's clock: if that clock stepped (NTP, a VM
        moved), every deadline would be wrong until the next measure. Measure it now."""
        with contextlib.suppress(Unreachable, TimeoutError, Lost, RedisError):
            await node.refresh_clock(force=True)

    async def _wait(self, call: ScriptCall, pipe: Pipe, deadline: float) -> Any:
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
        rotation: Rotation | None, reply: list[Any],
    ) -> Decision:
        code = reply[0]
        call_id = ticket.call_id
        if code == S.AdmitCode.ALLOWED:
            _, _, expires, taken, in_account, rule = reply
            answer = fallback
            if rule:
                assert rotation is not None
                answer = msgspec.structs.replace(rotation.answer, rule=Rule(text(rule)),
                                                 caller_id=text(taken))
            elif taken:
                assert sticky is not None
                answer = msgspec.structs.replace(sticky, caller_id=text(taken))
            if not ticket.counted:
                return answer  # an emergency call holds no channel: no lease to show
            if in_account >= 0:  # else counted only by the background count
                self._leases[ticket.account_id] = int(in_account)
            return msgspec.structs.replace(answer, lease_expires_at=rfc3339(int(expires)))
        if code == S.AdmitCode.DENIED:
            return fallback
        if code == S.AdmitCode.DO_NOT_CALL:
            assert ticket.dnc is not None
            return dnc_denial(call_id, ticket.dnc)
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
        self, keys: S.UndoKeys, call_id: str, nonce: str, wait_s: float
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

    async def usage(self, account_id: str, day: str) -> dict[str, int]:
        key = self._account_keys(account_id).usage(day)
        flat = await self._command(key, "HGETALL", key)
        counts = {text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return {number: calls for number, calls in counts.items() if calls > 0}

    def lease_counts(self) -> dict[str, int]:
        """Channels held per account, as this process last saw them (every dial and end
        tells it)."""
        return dict(self._leases)

    def _skew_ms(self) -> int:
        return self._skew() if self._skew is not None else 0
