"""Which Redis server a key lives on, and the connections to each.

- One server: every key is on it.
- Sentinel: one primary, found by asking the Sentinels at every (re)connect and checked with
  ``ROLE``, so after a failover the next connection goes to the promoted replica.
- Cluster: the slot map (``CLUSTER SLOTS``) says which primary serves a key's slot (every key
  of an account shares its ``{account id}`` hash tag, hence its slot). A ``MOVED`` reply, a
  lost connection or a refused one has the map learnt again from any node that answers.

Each server is a ``Node``: ``pool`` pipelined connections for dials and one for everything
else, each opened on first use and again after a loss, one attempt at a time, with a short
backoff after a failed one (a Redis that is down is not asked again by every dial).

Waits are bounded with ``asyncio.timeout``, never ``asyncio.wait_for``: on Python 3.11,
``wait_for`` swallows a cancellation that arrives as the awaited reply does, and a task that
loops on (the configuration subscription, told to stop just as its ``SUBSCRIBE`` was
answered) then keeps a stopping process alive for good.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable

from redis.crc import key_slot

from .connection import Lost, Pipe, RedisError, Unreachable, open_pipe
from .settings import Address, RedisSettings

__all__ = ["Node", "Topology", "build_topology"]

log = logging.getLogger("callgate.store.redis")

CONNECT_TIMEOUT_S = 1.0
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0
_RELEARN_GAP_S = 0.2


class Node:
    """One Redis server and the connections to it. ``locate`` (Sentinel) finds where it is
    now, before each connection."""

    def __init__(
        self,
        address: Address,
        settings: RedisSettings,
        context: ssl.SSLContext | None,
        *,
        locate: Callable[[], Awaitable[Address]] | None = None,
        on_trouble: Callable[[], None] | None = None,
    ) -> None:
        self.address = address
        self._settings = settings
        self._context = context
        self._locate = locate
        self._on_trouble = on_trouble
        self._pipes: list[Pipe | None] = [None] * (settings.pool + 1)  # the last: admin
        self._connecting: list[asyncio.Future[Pipe] | None] = [None] * (settings.pool + 1)
        self._turn = 0
        self._retry_at = 0.0
        self._backoff_s = _BACKOFF_FIRST_S
        self._failure = ""
        self.offset_ms = 0.0
        """Redis's clock minus ``time.monotonic()``, in ms: the best recent measure (see
        ``observe_clock``)."""
        self._clock_rtt_ms = float("inf")
        self._clock_at = 0.0
        self._clock_forced_at = 0.0
        self.opened = 0
        """Connections opened so far (for tests and logs)."""

    @property
    def name(self) -> str:
        return str(self.address)

    def dial_pipe(self) -> Pipe | None:
        """A connected dial pipe now (round robin), or None: then ``connect`` one."""
        pipes = self._pipes
        for _ in range(self._settings.pool):
            self._turn = (self._turn + 1) % self._settings.pool
            pipe = pipes[self._turn]
            if pipe is not None and pipe.usable:
                return pipe
        return None

    async def connect_all(self) -> None:
        """Open every pipe now (at start-up), rather than on first use."""
        for _ in range(self._settings.pool):
            self._turn += 1
            await self.pipe()
        await self.pipe(admin=True)

    async def pipe(self, admin: bool = False) -> Pipe:
        """A connected pipe, for dials or (``admin``) for everything else; raises
        ``Unreachable``."""
        index = self._settings.pool if admin else self._turn % self._settings.pool
        pipe = self._pipes[index]
        if pipe is not None and pipe.usable:
            return pipe
        pending = self._connecting[index]
        if pending is None:
            now = time.monotonic()
            if now < self._retry_at:
                raise Unreachable(self._failure)
            pending = asyncio.ensure_future(self._open(index))
            self._connecting[index] = pending
            pending.add_done_callback(lambda f: self._connected(index, f))
        return await asyncio.shield(pending)

    async def _open(self, index: int) -> Pipe:
        address = self.address
        if self._locate is not None:
            address = self.address = await self._locate()
        pipe, offset = await open_pipe(
            address, self._settings, self._context, CONNECT_TIMEOUT_S
        )
        if self._locate is not None:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):  # not wait_for (see the module)
                    role = await pipe.call("ROLE")
            except (TimeoutError, RedisError, Lost) as exc:
                pipe.close()
                raise Unreachable(f"Redis at {address} did not say its role: {exc}") from None
            if role[0] != b"master":
                pipe.close()
                raise Unreachable(f"Redis at {address} is a {role[0].decode()}, not the primary")
        self.observe_clock(*offset)
        self.opened += 1
        return pipe

    def _connected(self, index: int, future: asyncio.Future[Pipe]) -> None:
        self._connecting[index] = None
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            self._pipes[index] = future.result()
            self._backoff_s = _BACKOFF_FIRST_S
            self._retry_at = 0.0
            return
        self._failure = str(exc)
        self._retry_at = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)
        if self._on_trouble is not None:
            self._on_trouble()

    def trouble(self) -> None:
        """Something failed on this node: where it is may have changed."""
        if self._on_trouble is not None:
            self._on_trouble()

    def observe_clock(self, offset_ms: float, rtt_ms: float, *, force: bool = False) -> None:
        """A measure of the clock offset, good to within half its round trip. A busy event
        loop reads replies late, which makes round trips look long: a measure is taken only
        if its round trip is no longer than the best one's, or that one is old, or it is
        ``force``d (Redis said a dial ran late: its clock may have stepped)."""
        now = time.monotonic()
        if force or rtt_ms <= self._clock_rtt_ms or now - self._clock_at > 30.0:
            self.offset_ms, self._clock_rtt_ms, self._clock_at = offset_ms, rtt_ms, now

    def clock_suspect(self) -> bool:
        """Whether to measure the clock again at once, after a dial Redis ran late (at most
        once a second)."""
        now = time.monotonic()
        if now - self._clock_forced_at < 1.0:
            return False
        self._clock_forced_at = now
        return True

    async def refresh_clock(self, force: bool = False) -> None:
        """Measure the clock offset again (``TIME`` on the admin pipe)."""
        pipe = await self.pipe(admin=True)
        sent = time.monotonic()
        async with asyncio.timeout(CONNECT_TIMEOUT_S):  # not wait_for (see the module)
            seconds, micros = await pipe.call("TIME")
        received = time.monotonic()
        self.observe_clock(int(seconds) * 1000 + int(micros) / 1000 - (sent + received) * 500,
                           (received - sent) * 1000, force=force)

    def reset(self) -> None:
        """Close every connection (where the node is may have changed: the next use connects
        again, asking the Sentinels). A connection being opened is left to finish: callers wait
        on it; it is checked anew (``ROLE``) as it opens."""
        for pipe in self._pipes:
            if pipe is not None:
                pipe.close()
        self._pipes = [None] * len(self._pipes)

    def close(self) -> None:
        """For good (the store closes): pending connections are cancelled too."""
        for pending in self._connecting:
            if pending is not None:
                pending.cancel()
                pending.add_done_callback(_close_opened)
        self.reset()


def _close_opened(future: asyncio.Future[Pipe]) -> None:
    """A connection that opened although nobody wanted it any more: closed."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class Topology:
    """Where each key lives; subclasses for one server, Sentinel and Cluster."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.context = settings.ssl_context()

    def node_for(self, key: str) -> Node:
        raise NotImplementedError

    def nodes(self) -> list[Node]:
        raise NotImplementedError

    def any_node(self) -> Node:
        return self.nodes()[0]

    async def start(self) -> None:
        """Connect (raises ``Unreachable``)."""
        for node in self.nodes():
            await node.connect_all()

    def moved(self, reply: RedisError) -> None:
        """A ``MOVED`` (or ``READONLY``) reply: learn where keys are again."""

    def close(self) -> None:
        for node in self.nodes():
            node.close()


class _Single(Topology):
    def __init__(
        self, settings: RedisSettings, locate: Callable[[], Awaitable[Address]] | None = None
    ) -> None:
        super().__init__(settings)
        self._node = Node(settings.hosts[0], settings, self.context, locate=locate)

    def node_for(self, key: str) -> Node:
        return self._node

    def nodes(self) -> list[Node]:
        return [self._node]


class _Sentinel(_Single):
    """One server, wherever the Sentinels say the primary is."""

    def __init__(self, settings: RedisSettings) -> None:
        super().__init__(settings, locate=self._locate)

    def moved(self, reply: RedisError) -> None:
        # A demoted primary answers writes with READONLY: connect again, asking the Sentinels.
        self._node.reset()

    async def _locate(self) -> Address:
        """The primary's address, from the first Sentinel that knows it."""
        why = "no Sentinel answered"
        # Sentinels take no password of the data servers: connect without one.
        bare = type(self.settings)(url=self.settings.url, hosts=self.settings.hosts)
        for sentinel in self.settings.hosts:
            try:
                pipe, _ = await open_pipe(sentinel, bare, None, CONNECT_TIMEOUT_S, clock=False)
            except Unreachable as exc:
                why = str(exc)
                continue
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):  # not wait_for (see the module)
                    reply = await pipe.call(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.settings.sentinel
                    )
            except (TimeoutError, RedisError, Lost) as exc:
                why = f"Sentinel at {sentinel}: {exc}"
                continue
            finally:
                pipe.close()
            if reply:
                return Address(host=reply[0].decode(), port=int(reply[1]))
            why = f"Sentinel at {sentinel} knows no master {self.settings.sentinel!r}"
        raise Unreachable(why)


class _Cluster(Topology):
    def __init__(self, settings: RedisSettings) -> None:
        super().__init__(settings)
        self._nodes: dict[Address, Node] = {}
        self._slots: list[Node | None] = [None] * 16384
        self._seeds = list(settings.hosts)
        self._learning: asyncio.Task[None] | None = None
        self._learnt_at = 0.0

    def _node(self, address: Address) -> Node:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = Node(
                address, self.settings, self.context, on_trouble=self._trouble
            )
        return node

    def node_for(self, key: str) -> Node:
        node = self._slots[key_slot(key.encode())]
        if node is None:
            self._trouble()
            raise Unreachable(f"no node of the cluster serves the slot of {key!r} yet")
        return node

    def nodes(self) -> list[Node]:
        serving = {id(n): n for n in self._slots if n is not None}
        return list(serving.values()) or [self._node(self._seeds[0])]

    async def start(self) -> None:
        await self._learn()
        if not any(self._slots):
            raise Unreachable("no node of the cluster gave its slot map")
        for node in self.nodes():
            await node.connect_all()

    def moved(self, reply: RedisError) -> None:
        self._trouble()

    def _trouble(self) -> None:
        """Learn the slot map again soon (not more often than every ``_RELEARN_GAP_S``)."""
        if self._learning is not None and not self._learning.done():
            return
        self._learning = asyncio.ensure_future(self._learn_later())

    async def _learn_later(self) -> None:
        wait = self._learnt_at + _RELEARN_GAP_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await self._learn()

    async def _learn(self) -> None:
        """Ask the known nodes, then the seeds, for the slot map; the first answer wins."""
        self._learnt_at = time.monotonic()
        candidates = [n.address for n in self.nodes()] + self._seeds
        candidates += [a for a in self._nodes if a not in candidates]
        for address in dict.fromkeys(candidates):
            node = self._node(address)
            try:
                pipe = await node.pipe(admin=True)
                async with asyncio.timeout(CONNECT_TIMEOUT_S):  # not wait_for (see the module)
                    reply = await pipe.call("CLUSTER", "SLOTS")
            except (Unreachable, TimeoutError, RedisError, Lost):
                continue
            slots: list[Node | None] = [None] * 16384
            for start, end, primary, *_ in reply:
                host = primary[0].decode() or address.host
                owner = self._node(Address(host=host, port=int(primary[1])))
                for slot in range(int(start), int(end) + 1):
                    slots[slot] = owner
            if any(s is not None for s in slots):
                self._slots = slots
                for seed in (n.address for n in self.nodes()):
                    if seed not in self._seeds:
                        self._seeds.append(seed)
                return
        log.warning("no node of the Redis cluster gave its slot map; trying again")

    def close(self) -> None:
        if self._learning is not None:
            self._learning.cancel()
        for node in self._nodes.values():
            node.close()


def build_topology(settings: RedisSettings) -> Topology:
    if settings.cluster:
        return _Cluster(settings)
    if settings.sentinel:
        return _Sentinel(settings)
    return _Single(settings)
