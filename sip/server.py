"""The SIP front end's sockets: UDP, TCP and TLS listeners around one ``Redirector``.

The transports only move bytes: a datagram, or each message ``StreamFramer`` cuts from a
connection, goes to ``Redirector.receive``; replies go back on the connection, or by datagram
to the address the redirector names (RFC 3261 section 18.2.2); a ``Dial`` is decided by the
engine (the same engine, leases and metrics as HTTP, with the SIP lease) in a task this
server owns, and its answer is sent when ready. Timer G's retransmissions run from one
repeating timer.

Nothing a peer sends can stop the server: the redirector answers or drops every message,
and anything it or the engine raises anyway is logged and counted here (``dropped:error``),
never passed to the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callerid import Outcome
from engine.decide import Engine
from engine.errors import CallgateError, ConfigurationError

from .errors import SipMessageError
from .message import Address
from .parser import Keepalive, StreamFramer
from .redirect import Dial, EndCall, Redirector, Reply, SipSettings
from .throttle import BanScope

__all__ = ["Listen", "SipServeSettings", "SipServer"]

log = logging.getLogger("callgate.sip")

TIMER_TICK_S = 0.1
IDLE_TIMEOUT_S = 300.0
"""A TCP or TLS connection that sends nothing for this long is closed (softphones send CRLF
keep-alives far more often; RFC 5626 suggests 95-120 s)."""
DRAIN_S = 5.0
UDP_BUFFER_BYTES = 4 * 1024 * 1024
"""The UDP socket's receive and send buffers: room for about 5,000 INVITEs, so a burst or a
pause of the loop (a full garbage collection, a slow commit) is queued rather than dropped by
the kernel and retransmitted 500 ms later. Linux caps it at ``net.core.rmem_max`` (often
208 KiB: raise it to let this take effect)."""


class Listen(msgspec.Struct, frozen=True):
    host: str
    port: int


class SipServeSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What ``callgate serve`` needs to run the SIP front end."""

    listen: Listen | None = None
    """UDP and TCP."""
    tls: Listen | None = None
    cert: Path | None = None
    key: Path | None = None
    redirect: SipSettings = SipSettings()

    def __post_init__(self) -> None:
        if self.tls is not None and (self.cert is None or self.key is None):
            raise ConfigurationError("setting sip_tls needs sip_cert and sip_key too")

    def describe(self) -> str:
        parts = []
        if self.listen is not None:
            parts.append(f"udp and tcp {self.listen.host}:{self.listen.port}")
        if self.tls is not None:
            parts.append(f"tls {self.tls.host}:{self.tls.port}")
        return ", ".join(parts)


async def tls_context(settings: SipServeSettings) -> ssl.SSLContext | None:
    """The server's TLS context, its files read off the event loop; None without ``tls``."""
    if settings.tls is None:
        return None
    assert settings.cert is not None and settings.key is not None  # __post_init__ saw to it
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        await asyncio.to_thread(context.load_cert_chain, settings.cert, settings.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"--sip-cert {settings.cert} --sip-key {settings.key}: cannot load them ({exc})"
        ) from None
    return context


Send = Callable[[bytes], None]


def _enlarge_buffers(sock: socket.socket) -> None:
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux doubles it
    if granted < UDP_BUFFER_BYTES:
        log.info("SIP/UDP: receive buffer %d KiB, not the %d KiB asked for: raise "
                 "net.core.rmem_max to queue longer bursts", granted // 1024,
                 UDP_BUFFER_BYTES // 1024)


class SipServer:
    """The listeners and their shared redirector. ``start`` binds, ``close`` stops taking
    messages and waits (bounded) for decisions in flight."""

    def __init__(
        self,
        engine: Engine,
        settings: SipSettings,
        *,
        registry: CollectorRegistry | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.engine = engine
        self.redirector = Redirector(settings, engine)
        self._reuse_port = reuse_port
        self._tasks: set[asyncio.Task[None]] = set()
        self._closers: list[Callable[[], Any]] = []
        self._connections: set[asyncio.Transport] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._datagrams: _UdpSocket | None = None
        self.bound: dict[str, Address] = {}
        """Where each transport listens (``udp``, ``tcp``, ``tls``), ports resolved."""
        if registry is not None:
            registry.register(_SipCollector(self))

    # -- life --------------------------------------------------------------------------------

    async def start(
        self, listen: Listen | None, tls: Listen | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        reuse = self._reuse_port or None
        where = listen
        try:
            if listen is not None:
                udp = _UdpSocket(self, await _udp_socket(listen, reuse=self._reuse_port))
                self._datagrams = udp
                self._closers.append(udp.close)
                self.bound["udp"] = udp.address
                tcp = await loop.create_server(
                    lambda: _Stream(self, "tcp"), listen.host, listen.port, reuse_port=reuse)
                self._closers.append(tcp.close)
                self.bound["tcp"] = tcp.sockets[0].getsockname()[:2]
            if tls is not None:
                where = tls
                if tls_context is None:
                    raise ConfigurationError("--sip-tls needs --sip-cert and --sip-key")
                secure = await loop.create_server(
                    lambda: _Stream(self, "tls"), tls.host, tls.port, ssl=tls_context,
                    reuse_port=reuse,
                )
                self._closers.append(secure.close)
                self.bound["tls"] = secure.sockets[0].getsockname()[:2]
        except OSError as exc:
            self.close_listeners()
            assert where is not None
            raise ConfigurationError(
                f"SIP: cannot listen on {where.host}:{where.port} ({exc.strerror or exc})"
            ) from None
        self._schedule_timers()

    def close_listeners(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()
        for connection in list(self._connections):
            connection.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        self.close_listeners()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=DRAIN_S)
            for task in pending:
                task.cancel()

    # -- the work ----------------------------------------------------------------------------

    def handle(self, data: bytes, peer: Address, send: Send, *, reliable: bool) -> None:
        loop = asyncio.get_running_loop()
        try:
            outputs = self.redirector.receive(data, peer, reliable=reliable, now_s=loop.time())
        except Exception:
            self.redirector.count("dropped:error")
            log.exception("SIP: failed on a %d-byte message from %s:%d", len(data), *peer[:2])
            return
        self._carry_out(outputs, send)

    def _carry_out(self, outputs: list[Reply | Dial | EndCall], send: Send) -> None:
        for output in outputs:
            if isinstance(output, Reply):
                if output.to is not None and self._datagrams is not None:
                    self._datagrams.sendto(output.data, output.to)
                else:
                    send(output.data)
            elif isinstance(output, Dial):
                self._own(self._decide(output, send))
            else:
                self._own(self._end(output))

    def _own(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decide(self, dial: Dial, send: Send) -> None:
        result: Any
        try:
            result = await self.engine.dial(dial.account.account_id, dial.request, sip=True)
        except CallgateError as exc:
            result = exc
        except Exception as exc:
            log.exception("SIP: deciding %s for %r failed", dial.request.call_id, dial.request.user)
            result = CallgateError(f"callgate failed to decide: {type(exc).__name__}")
        try:
            outputs = self.redirector.decided(dial, result, asyncio.get_running_loop().time())
        except Exception:
            self.redirector.count("dropped:error")
            log.exception("SIP: failed to answer %s's decision", dial.request.call_id)
            return
        self._carry_out(outputs, send)

    async def _end(self, end: EndCall) -> None:
        try:
            await self.engine.end(end.account_id, end.call_id, Outcome.CANCELED)
        except Exception as exc:
            detail = exc.detail if isinstance(exc, CallgateError) else repr(exc)
            log.warning("SIP: could not give back the channel of canceled call %s: %s "
                        "(its lease expires by itself)", end.call_id, detail)

    def _schedule_timers(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(TIMER_TICK_S, self._tick)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for data, peer in self.redirector.due(loop.time()):
                self._resend(data, peer)
        except Exception:
            self.redirector.count("dropped:error")
            log.exception("SIP: failed to retransmit final responses")
        finally:
            self._schedule_timers()

    def _resend(self, data: bytes, peer: Address) -> None:
        if self._datagrams is not None:
            self._datagrams.sendto(data, peer)


async def _udp_socket(listen: Listen, *, reuse: bool) -> socket.socket:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(listen.host, listen.port, type=socket.SOCK_DGRAM,
                                   flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        _enlarge_buffers(sock)
        sock.setblocking(False)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _UdpSocket:
    """The UDP listener. It reads every datagram waiting each time the socket is readable
    (asyncio's datagram transport reads one per wake-up of the loop: a select call per
    datagram), and sends at once, queueing only what the kernel will not take now."""

    MAX_READS = 128
    """Datagrams read per wake-up, so a flood cannot keep the loop from everything else."""
    MAX_QUEUED = 10_000

    def __init__(self, server: SipServer, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._queue: deque[tuple[bytes, Any]] = deque()
        self.address: Address = sock.getsockname()[:2]
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        receive, handle = self._sock.recvfrom, self._server.handle
        for _ in range(self.MAX_READS):
            try:
                data, addr = receive(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error for an earlier reply: the peer went away
                log.debug("SIP/UDP: %s", exc)
                continue
            handle(data, (addr[0], addr[1]), functools.partial(self.sendto, addr=addr),
                   reliable=False)

    def sendto(self, data: bytes, addr: Any) -> None:
        if not self._queue:
            try:
                self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self._sock.fileno(), self._writable)
            except OSError as exc:
                log.debug("SIP/UDP: sending to %s: %s", addr, exc)
                return
        if len(self._queue) < self.MAX_QUEUED:
            self._queue.append((data, addr))

    def _writable(self) -> None:
        while self._queue:
            data, addr = self._queue[0]
            try:
                self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("SIP/UDP: sending to %s: %s", addr, exc)
            self._queue.popleft()
        self._loop.remove_writer(self._sock.fileno())

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._loop.remove_writer(self._sock.fileno())
            self._sock.close()


class _Stream(asyncio.Protocol):
    """One TCP or TLS connection."""

    def __init__(self, server: SipServer, kind: str) -> None:
        self._server = server
        self._kind = kind
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._peer: Address = ("", 0)
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._peer = (peer[0], peer[1])
        self._server._connections.add(transport)
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._server._connections.discard(self._transport)
        if self._idle is not None:
            self._idle.cancel()
        self._transport = None

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT_S, self._close)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def data_received(self, data: bytes) -> None:
        self._touch()
        try:
            pieces = self._framer.feed(data)
        except SipMessageError as exc:
            log.info("SIP/%s: closing the connection from %s:%d: %s", self._kind.upper(),
                     *self._peer, exc.detail)
            self._server.redirector.count("dropped:unframeable")
            self._close()
            return
        for piece in pieces:
            if isinstance(piece, Keepalive):
                self._send(b"\r\n")  # RFC 5626 section 3.5.1: the pong
            else:
                self._server.handle(piece, self._peer, self._send, reliable=True)


class _SipCollector(Collector):
    """The redirector's plain counts, as Prometheus metrics."""

    def __init__(self, server: SipServer) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        counters = dict(self._server.redirector.counters)
        requests = CounterMetricFamily("callgate_sip_requests", "SIP requests received, by method",
                                       labels=["method"])
        responses = CounterMetricFamily("callgate_sip_responses",
                                        "SIP responses sent, by status (retransmissions not "
                                        "included)", labels=["status"])
        dropped = CounterMetricFamily("callgate_sip_dropped",
                                      "SIP messages dropped unanswered, by why", labels=["why"])
        for key, count in sorted(counters.items()):
            kind, _, label = key.partition(":")
            if kind == "requests":
                requests.add_metric([label], count)
            elif kind == "responses":
                responses.add_metric([label], count)
            elif kind == "dropped":
                dropped.add_metric([label], count)
        yield requests
        yield responses
        yield dropped
        yield CounterMetricFamily("callgate_sip_auth_failures",
                                  "Failed digest answers (wrong password, unknown user, replay)",
                                  value=counters.get("auth_failures", 0))
        bans = CounterMetricFamily("callgate_sip_bans",
                                   "Bans after repeated auth failures, by scope: one login at "
                                   "an address (user) or a whole address", labels=["scope"])
        for scope in BanScope:
            bans.add_metric([scope.value], counters.get(f"bans:{scope}", 0))
        yield bans
        yield CounterMetricFamily("callgate_sip_retransmissions",
                                  "Retransmitted requests answered from the transaction cache",
                                  value=counters.get("retransmissions", 0))
        yield CounterMetricFamily("callgate_sip_resent",
                                  "Final responses retransmitted for want of an ACK (Timer G)",
                                  value=counters.get("resent", 0))
        yield GaugeMetricFamily("callgate_sip_transactions", "SIP transactions remembered now",
                                value=len(self._server.redirector.transactions))
