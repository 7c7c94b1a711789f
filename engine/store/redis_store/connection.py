"""Pipelined connections to one Redis server.

A ``Pipe`` writes the commands given to it in one turn of the event loop together (at most
``COALESCE`` at a time) and reads the replies in order, handing each to the callback that came
with its command. It never waits for anything itself: a caller waits on a future its callback
completes, for as long as the caller likes. A reply that arrives after its caller stopped
waiting is still read, in its turn, and handed to its callback, which can undo what the
command did. So a slow Redis never costs a connection: a command whose caller gave up does
not close it, and the commands behind it keep their places. Only a broken connection (reset,
closed, a reply that does not parse) is closed, and every command still waiting on it is
told it was ``Lost``.

Dead peers are found by TCP keep-alive (about 20 s) and ``TCP_USER_TIMEOUT`` (unacknowledged
data for 10 s). A stopped Redis (SIGSTOP) is not dead: its kernel still accepts and
acknowledges, the connection stays, and the commands wait in the socket until Redis runs
again (the dial script then finds its deadline passed and takes nothing).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis

from .settings import Address, RedisSettings

__all__ = ["Lost", "OnReply", "Pipe", "RedisError", "Unreachable", "open_pipe"]

log = logging.getLogger("callgate.store.redis")

OnReply = Callable[[Any], None]
"""Called with a command's reply: a value, a ``RedisError`` (an error reply) or ``Lost``."""

_KEEPALIVE = (
    ("TCP_KEEPIDLE", 5),
    ("TCP_KEEPINTVL", 5),
    ("TCP_KEEPCNT", 3),
)
_USER_TIMEOUT_MS = 10_000
COALESCE = 16
"""Commands written together at most. A turn of the event loop that answers many requests
(a burst) sends every ``COALESCE`` of them without waiting for the turn to end; a quiet one
sends what it has when it ends. Redis then reads, runs and answers several commands each
time it wakes instead of one: a third less of its CPU per dial under a steady load."""


class RedisError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-NOSCRIPT ...``, ``-MOVED ...``)."""

    @property
    def kind(self) -> str:
        """The reply's first word: ``ERR``, ``NOSCRIPT``, ``MOVED``, ``READONLY``..."""
        return str(self).split(" ", 1)[0]


class Lost(Exception):
    """The connection broke (or was closed) before the reply came."""


class Unreachable(Exception):
    """No connection could be made (refused, timed out, the handshake failed)."""


def _tune(sock: socket.socket | None) -> None:
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in _KEEPALIVE:
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, _USER_TIMEOUT_MS)


class Pipe(asyncio.Protocol):
    """One connection; see the module's docstring. ``on_push`` takes the messages of a
    subscribed connection (pub/sub), which arrive without a command."""

    def __init__(self, name: str, on_push: Callable[[bytes], None] | None = None) -> None:
        self.name = name
        self._on_push = on_push
        self._reader = hiredis.Reader()
        self._waiting: deque[OnReply] = deque()
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._out: list[bytes] = []
        """Commands given in this turn of the event loop, not written yet."""
        self.loading: set[str] = set()
        self.replied_at = 0.0
        """When the last reply arrived (``loop.time()``): a connection whose replies keep
        coming is busy, not stalled."""
        """SHAs of scripts being loaded on this connection (``SCRIPT LOAD`` sent, no reply
        yet)."""
        self.closed = asyncio.get_running_loop().create_future()
        """Done when the connection is gone."""

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        _tune(transport.get_extra_info("socket"))

    def data_received(self, data: bytes) -> None:
        self.replied_at = asyncio.get_running_loop().time()
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                log.warning("Redis at %s sent what is not RESP (%s); reconnecting", self.name, exc)
                self.close()
                return
            if reply is False:
                return
            if isinstance(reply, hiredis.ReplyError):
                reply = RedisError(str(reply))
            if self._on_push is not None and isinstance(reply, list) and reply[:1] == [b"message"]:
                self._on_push(reply[2])
                continue
            if not self._waiting:
                log.warning("Redis at %s sent a reply nobody asked for; reconnecting", self.name)
                self.close()
                return
            on_reply = self._waiting.popleft()
            try:
                on_reply(reply)
            except Exception:
                log.exception("a Redis reply's handler failed")

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        waiting, self._waiting = self._waiting, deque()
        lost = Lost(f"the connection to Redis at {self.name} was lost"
                    + (f": {exc}" if exc else ""))
        for on_reply in waiting:
            try:
                on_reply(lost)
            except Exception:
                log.exception("a Redis reply's handler failed")
        if not self.closed.done():
            self.closed.set_result(None)

    # -- use ---------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self._closed

    @property
    def waiting(self) -> int:
        """Commands sent and not yet answered."""
        return len(self._waiting)

    def send(self, packed: bytes, on_reply: OnReply) -> None:
        """Queue one packed command (``hiredis.pack_command``); ``on_reply`` gets its reply.
        Raises ``Lost`` when the connection is gone."""
        if self._closed:
            raise Lost(f"the connection to Redis at {self.name} is closed")
        self._waiting.append(on_reply)
        out = self._out
        out.append(packed)
        if len(out) >= COALESCE:
            self._flush()
        elif len(out) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        if not self._out:
            return
        out, self._out = self._out, []
        if self._transport is not None and not self._closed:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def call(self, *command: Any) -> asyncio.Future[Any]:
        """Send ``command``; a future of its reply (an error reply or a loss is raised)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def settle(reply: Any) -> None:
            if future.done():
                return
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

        self.send(hiredis.pack_command(command), settle)
        return future

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()


async def open_pipe(
    address: Address,
    settings: RedisSettings,
    context: ssl.SSLContext | None,
    timeout_s: float,
    *,
    on_push: Callable[[bytes], None] | None = None,
    clock: bool = True,
) -> tuple[Pipe, tuple[float, float]]:
    """A connected, authenticated pipe to ``address``, and the server's clock offset (Redis's
    milliseconds minus this process's ``time.monotonic()`` in milliseconds, measured by
    ``TIME`` in the handshake) with the round trip it took (ms): (0, inf) without ``clock``
    (a Sentinel has no ``TIME``). Raises ``Unreachable``."""
    loop = asyncio.get_running_loop()
    name = str(address)
    pipe: Pipe | None = None
    try:
        async with asyncio.timeout(timeout_s):
            if address.path:
                _, pipe = await loop.create_unix_connection(
                    lambda: Pipe(name, on_push), address.path
                )
            else:
                _, pipe = await loop.create_connection(
                    lambda: Pipe(name, on_push), address.host, address.port, ssl=context,
                    server_hostname=address.host if context is not None else None,
                )
            handshake = []
            if settings.password is not None:
                credentials = (settings.username, settings.password) if settings.username else (
                    settings.password,)
                handshake.append(pipe.call("AUTH", *credentials))
            if settings.db:
                handshake.append(pipe.call("SELECT", settings.db))
            if settings.client_name:
                handshake.append(pipe.call("CLIENT", "SETNAME", settings.client_name))
            sent = time.monotonic()
            timed = pipe.call("TIME") if clock else None
            await asyncio.gather(*handshake)
            seconds, micros = await timed if timed is not None else (0, 0)
            received = time.monotonic()
    except (OSError, TimeoutError, RedisError, Lost, ssl.SSLError) as exc:
        if pipe is not None:
            pipe.close()
        why = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            why = f"no answer within {round(timeout_s * 1000)} ms"
        raise Unreachable(f"cannot reach Redis at {name}: {why}") from None
    if not clock:
        return pipe, (0.0, float("inf"))
    redis_ms = int(seconds) * 1000 + int(micros) / 1000
    return pipe, (redis_ms - (sent + received) * 500, (received - sent) * 1000)
