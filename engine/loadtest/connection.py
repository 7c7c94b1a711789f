"""The dials' HTTP/1.1: one keep-alive connection per sender, a POST out and its answer back.

aiohttp's client costs several times the CPU of the bytes a dial sends and reads. The load
generator often runs on the server's machine (the benchmarks always do), so at thousands of
dials a second that CPU is taken from the server being measured, and the generator falls
behind its own schedule. A dial is always the same small JSON POST, so a ``Connection``
writes prepared bytes and hands what comes back to ``AnswerReader``: a parser with no I/O
(bytes in, ``Answer``s out), which the tests feed directly. The preflight and the ends stay
on aiohttp: they are few, and untimed.

Failures are this module's own exceptions, all ``HttpFailure``: ``ConnectFailed`` (its
``__cause__`` is the ``OSError``), ``Disconnected`` and ``BadAnswer``; a deadline is the
caller's ``asyncio.timeout``, after which the connection is closed (its answer may still
come, and must not be read as the next dial's).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "Answer",
    "AnswerReader",
    "BadAnswer",
    "ConnectFailed",
    "Connection",
    "Disconnected",
    "HttpFailure",
]

_MAX_HEAD = 64 * 1024
"""The most bytes of status line and headers read before giving up on an answer."""
_NO_BODY = frozenset({204, 304})
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) (\d{3})[ \r]")
_FRAMING = re.compile(rb"\r\n(content-length|transfer-encoding|connection)[ \t]*:[ \t]*([^\r]*)",
                      re.I)
"""The headers that say where an answer ends and whether the connection stays open; the
others are not read."""


class HttpFailure(Exception):
    """A dial that got no usable answer from the connection."""


class ConnectFailed(HttpFailure):
    """The connection could not be opened; ``__cause__`` says why."""


class Disconnected(HttpFailure):
    """The server closed the connection before the answer was complete."""


class BadAnswer(HttpFailure):
    """The server's bytes are not an HTTP/1.1 answer this client can read."""


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    close: bool
    """The server closes the connection after this answer (``Connection: close``)."""


class AnswerReader:
    """HTTP/1.1 answers from the bytes of one connection, with no I/O: ``feed`` what arrives,
    then take each complete answer from ``next_answer``. Bodies are delimited by
    ``Content-Length`` or chunked; an answer with neither (and a status that has a body) is
    a ``BadAnswer``, as this client cannot tell where it ends."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_answer(self) -> Answer | None:
        """The next complete answer, or None until more bytes come; ``BadAnswer`` when the
        bytes cannot be one."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > _MAX_HEAD:
                raise BadAnswer(f"no end of headers in the first {_MAX_HEAD:,} bytes")
            return None
        head = bytes(buffer[:end + 2])
        line = _STATUS_LINE.match(head)
        if line is None:
            first = head.split(b"\r\n", 1)[0][:80]
            raise BadAnswer(f"not an HTTP/1.x status line: {first!r}")
        minor, status = line.group(1), int(line.group(2))
        headers = {name.lower().decode(): value.strip().decode("latin-1")
                   for name, value in _FRAMING.findall(head)}
        start = end + 4
        if 100 <= status < 200:  # an interim answer: the real one follows
            del buffer[:start]
            return self.next_answer()
        if status in _NO_BODY:
            body, consumed = b"", start
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            found = _chunked(buffer, start)
            if found is None:
                return None
            body, consumed = found
        elif (length := headers.get("content-length")) is not None:
            if not length.isdigit():
                raise BadAnswer(f"Content-Length is not a number: {length[:40]!r}")
            consumed = start + int(length)
            if len(buffer) < consumed:
                return None
            body = bytes(buffer[start:consumed])
        else:
            raise BadAnswer(f"HTTP {status} with neither Content-Length nor chunked body")
        del buffer[:consumed]
        connection = headers.get("connection", "").lower()
        close = "close" in connection or (minor == b"0" and "keep-alive" not in connection)
        return Answer(status, body, close)


def _chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """A chunked body from ``start``: the body and where it ends, or None when incomplete."""
    body = bytearray()
    at = start
    while True:
        eol = buffer.find(b"\r\n", at)
        if eol < 0:
            return None
        size_text = bytes(buffer[at:eol]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadAnswer(f"not a chunk size: {size_text[:40]!r}") from None
        if size == 0:
            trailers_end = buffer.find(b"\r\n\r\n", eol)
            return None if trailers_end < 0 else (bytes(body), trailers_end + 4)
        if len(buffer) < eol + 2 + size + 2:
            return None
        body += buffer[eol + 2:eol + 2 + size]
        at = eol + 2 + size + 2


class _Protocol(asyncio.Protocol):
    """The asyncio side of one connection: bytes to the reader, its answer to the waiter."""

    def __init__(self) -> None:
        self.reader = AnswerReader()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            answer = self.reader.next_answer()
        except BadAnswer as exc:
            self._fail(exc)
            return
        if answer is None:
            return
        waiter, self.waiter = self.waiter, None
        if waiter is None:
            self._fail(BadAnswer(f"an answer (HTTP {answer.status}) to no request"))
        elif not waiter.done():
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(Disconnected("the server closed the connection"
                                + (f" ({exc})" if exc is not None else "")))

    def _fail(self, exc: HttpFailure) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Connection:
    """One keep-alive connection to the server for POSTs to one path, at most one in flight,
    opened on the first ``post`` and again after the server or a deadline closed it."""

    def __init__(self, url: str, path: str, token: str) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        tls = parts.scheme == "https"
        self._port = parts.port or (443 if tls else 80)
        self._ssl = ssl.create_default_context() if tls else None
        self._head = (
            f"POST {parts.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            "Content-Length: "
        ).encode()
        self._protocol: _Protocol | None = None

    async def post(self, body: bytes) -> Answer:
        """POST ``body``; its answer, or an ``HttpFailure``. Under a caller's deadline: a
        cancelled post closes the connection."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = self._protocol = await self._connect()
        assert protocol.transport is not None
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        protocol.waiter = waiter
        protocol.transport.write(self._head + b"%d\r\n\r\n" % len(body) + body)
        try:
            answer = await waiter
        except BaseException:
            self.close()
            raise
        if answer.close:
            self.close()
        return answer

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                _Protocol, self._host, self._port, ssl=self._ssl)
        except OSError as exc:
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        return protocol

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.closed = True
            if protocol.transport is not None:
                protocol.transport.close()
