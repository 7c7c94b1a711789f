"""Bytes in, SIP messages out: no sockets, no clock.

``parse_message`` reads one whole message (a UDP datagram, or what ``StreamFramer`` cut from a
TCP or TLS stream). It follows RFC 3261 section 7: a start line, header lines (names
case-insensitive, compact forms, values folded over several lines, several values of a
header in one line separated by commas), an empty line, a body framed by Content-Length.

What it cannot take it reports in one of two ways:

- a message it can answer (it has a Via header, so a response can be routed; an unreadable
  Via is copied back as it came) comes back as a ``Request`` with ``defect`` set and the
  status to answer with: 400 for a malformed header, 505 for another SIP version, 416 for a
  Request-URI scheme we do not serve, 513 for a message over the size limit;
- a message it cannot answer at all raises ``SipMessageError`` with status None: the caller
  drops it.

Limits, and why: a redirect server reads a handful of headers and no body, so nothing it must
accept comes near them; they bound what one message can cost a peer's victim (us).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

from .abnf import (
    HEADER_NAME,
    REQUEST_LINE,
    SIP_URI,
    STATUS_LINE,
    TEL_URI,
    VIA_PARM,
    find_unquoted,
    param_pairs,
    split_unquoted,
)
from .errors import SipMessageError
from .message import NameAddr, Request, Response, Uri, Via

__all__ = [
    "MAX_HEADERS",
    "MAX_MESSAGE_BYTES",
    "Keepalive",
    "StreamFramer",
    "ack_via",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
]

MAX_MESSAGE_BYTES = 32 * 1024
"""Whole message, head and body. A UDP datagram may be 64 KiB, but an INVITE with its SDP is
about 1 KiB; RFC 3261 section 18.1.1 moves anything near the path MTU to TCP anyway."""
MAX_HEADERS = 200
"""Header lines after folding (RFC 4475's longest valid torture message has under 100)."""

# RFC 3261 section 7.3.3, and the later RFCs that gave their headers a compact form.
COMPACT = {
    "a": "accept-contact",  # RFC 3841
    "b": "referred-by",  # RFC 3892
    "c": "content-type",
    "d": "request-disposition",  # RFC 3841
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",  # RFC 3841
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",  # RFC 4474
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "s": "subject",
    "t": "to",
    "u": "allow-events",  # RFC 6665
    "v": "via",
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 4474
}
_SINGLE = frozenset({"call-id", "cseq", "from", "to", "max-forwards", "content-length"})
"""Headers a request carries at most once (section 20): two of them is a malformed request."""
_SCHEMES = ("sip", "sips", "tel")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_WHITESPACE = re.compile(r"[ \t]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_DISPLAY_TOKENS = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+(?: [A-Za-z0-9\-.!%*_+`'~]+)*")
_LINE_END = re.compile(r"\r?\n")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(.*?)[ \t]*\r?$",
                             re.IGNORECASE | re.MULTILINE)
_MAX_CSEQ = 2**31 - 1


class Keepalive:
    """A CRLF keep-alive on a stream (RFC 5626 section 3.5.1): ``\\r\\n\\r\\n`` asks for a
    ``\\r\\n`` back."""

    __slots__ = ()


KEEPALIVE = Keepalive()



_DIGITS_MAX = 12
"""A number in a header (Content-Length, CSeq, Max-Forwards) has at most this many digits:
every limit we apply is far below 10^12, and Python refuses to read a number of over 4,300
digits at all (``ValueError``, which must not escape the parser)."""


def _count(text: str) -> bool:
    """Whether ``text`` is a number of ASCII digits short enough to read."""
    return 0 < len(text) <= _DIGITS_MAX and text.isascii() and text.isdigit()

def parse_uri(text: str) -> Uri | None:
    """A sip:, sips: or tel: URI, or None if ``text`` is not one."""
    found = SIP_URI.fullmatch(text)
    if found is not None:
        scheme, user, _password, host, port, params, _headers = found.groups()
        return Uri(
            scheme=scheme.lower(),
            user=unquote(user) if user else None,
            host=host.lower(),
            port=int(port) if port else None,
            params=param_pairs(params) if params else {},
        )
    found = TEL_URI.fullmatch(text)
    if found is not None:
        number, params = found.groups()
        return Uri(scheme="tel", user=unquote(number), host=None,
                   params=param_pairs(params) if params else {})
    return None


def parse_name_addr(text: str) -> NameAddr:
    """name-addr / addr-spec with its parameters (RFC 3261 section 20.10: without angle
    brackets, everything after the first ``;`` is a header parameter)."""
    opening = find_unquoted(text, "<")
    if opening >= 0:
        display = text[:opening].strip()
        rest = text[opening + 1:]
        close = rest.find(">")
        if close < 0:
            raise ValueError("'<' without '>'")
        uri, params = rest[:close].strip(), rest[close + 1:].strip()
        if params and not params.startswith(";"):
            raise ValueError(f"unexpected {params!r} after '>'")
    else:
        display = ""
        uri, semicolon, params = text.strip().partition(";")
        uri = uri.strip()
        params = ";" + params if semicolon else ""
    if not uri or " " in uri:
        raise ValueError(f"no URI in {text!r}")
    if display.startswith('"'):
        if len(display) < 2 or not display.endswith('"'):
            raise ValueError(f"unbalanced quotes in {display!r}")
        display = display[1:-1]
    elif display and _DISPLAY_TOKENS.fullmatch(_WHITESPACE.sub(" ", display)) is None:
        # display-name = *(token LWS) / quoted-string (section 25.1)
        raise ValueError(f"an unquoted display name must be tokens: {display!r}")
    return NameAddr(display=display, uri=uri, params=param_pairs(params) if params else {})


def _via(value: str) -> Via:
    value = value.strip()
    if "  " in value or "\t" in value:
        value = _WHITESPACE.sub(" ", value)
    found = VIA_PARM.fullmatch(value)
    if found is None:
        raise ValueError(f"not a via-parm: {value.strip()!r}")
    _name, _version, transport, host, port, params = found.groups()
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"port out of range in {value.strip()!r}")
    return Via(
        transport=transport.upper(),
        host=host,
        port=int(port) if port else None,
        params=param_pairs(params) if params else {},
        raw=value.strip(),
    )


@functools.lru_cache(maxsize=512)
def _canonical(name: str) -> str | None:
    """A header name as it came (whitespace before the colon allowed) -> its lower-case
    long form; None if it is not a token. Cached: peers spell the same few names."""
    name = name.rstrip(" \t")
    if HEADER_NAME.fullmatch(name) is None:
        return None
    lower = name.lower()
    return COMPACT.get(lower, lower)


_ACK_VIA = re.compile(rb"\r\n(?:via|v)[ \t]*:[ \t]*([^\r\n,]*)(,?)[^\r\n]*\r\n([ \t]?)",
                      re.IGNORECASE)


def ack_via(data: bytes) -> Via | None:
    """The top Via of an ACK, read without parsing the rest: all an ACK is matched by. None
    when that is not simple (not an ACK, a folded or unreadable Via): parse it whole."""
    if not data.startswith(b"ACK "):
        return None
    found = _ACK_VIA.search(data, 0, data.find(b"\r\n\r\n"))
    if found is None or found.group(3):
        return None
    try:
        return _via(found.group(1).decode("latin-1"))
    except ValueError:
        return None


def _head_lines(head: str) -> tuple[str, list[str]]:
    """The start line and the header lines, folded lines joined (section 7.3.1)."""
    # Split on CRLF when that is the only line end, as RFC 3261 writes it; else on any.
    lines = head.split("\r\n") if head.count("\n") == head.count("\r\n") else _LINE_END.split(head)
    while len(lines) > 1 and not lines[-1]:
        lines.pop()  # a head that ends in its own CRLF, with no empty line after it
    start = lines[0]
    headers: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not headers:
                raise SipMessageError("a continuation line before any header", status=None)
            headers[-1] = f"{headers[-1].rstrip()} {line.strip()}"
        else:
            headers.append(line)
    return start, headers


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\r\n\r\n")
    if end >= 0 and data.count(b"\n", 0, end) == data.count(b"\r\n", 0, end):
        return data[:end], data[end + 4:]
    found = _HEAD_END.search(data)  # bare line feeds: the earliest blank line of any kind
    if found is None:
        return data, b""
    return data[: found.start()], data[found.end():]


_HEADER_LINE = re.compile(r"^([^:\r\n]*):[ \t]*([^\r\n]*)\r?$", re.MULTILINE)


def _simple_headers(head: str) -> tuple[str, list[tuple[str, str]]] | None:
    """The start line and headers of a head in the plain form nearly every peer sends (CRLF
    line ends, no folded lines, every line a header), read with one regular expression;
    None for anything else, which ``_headers`` reads line by line."""
    start, _, rest = head.partition("\r\n")
    if "\n " in rest or "\n\t" in rest or rest.count("\n") != rest.count("\r\n"):
        return None
    pairs = _HEADER_LINE.findall(rest)
    if len(pairs) != rest.count("\r\n") + (1 if rest else 0) or len(pairs) > MAX_HEADERS:
        return None
    headers = [(_canonical(name), value.rstrip(" \t")) for name, value in pairs]
    if any(name is None for name, _ in headers):
        return None
    return start, headers  # type: ignore[return-value]  # no None left


def _headers(head: str) -> tuple[str, list[tuple[str, str]], str | None]:
    """The start line, the headers and the first defect found, line by line."""
    start, lines = _head_lines(head)
    if len(lines) > MAX_HEADERS:
        raise SipMessageError(f"{len(lines)} header lines, more than {MAX_HEADERS}", status=None)
    headers: list[tuple[str, str]] = []
    defect: str | None = None
    for line in lines:
        name, colon, value = line.partition(":")
        canonical = _canonical(name) if colon else None
        if canonical is None:
            defect = defect or f"not a header line: {line[:80]!r}"
            continue
        headers.append((canonical, value.strip(" \t")))
    return start, headers, defect


def parse_message(data: bytes, *, framed: bool = False) -> Request | Response:
    """One SIP message from ``data``. ``framed``: the bytes came from ``StreamFramer`` (the
    body is exactly Content-Length long); else a datagram, whose body is what follows the
    head (section 18.3: a Content-Length longer than that is an error, shorter cuts it)."""
    raw_head, rest = _split_head(data.lstrip(b"\r\n"))
    head = raw_head.decode("latin-1")
    simple = _simple_headers(head)
    if simple is not None:
        start, headers = simple
        defect: str | None = None
    else:
        start, headers, defect = _headers(head)
    if not start:
        raise SipMessageError("an empty message", status=None)

    if start[:4].upper() == "SIP/":
        status = STATUS_LINE.fullmatch(start)
        if status is None:
            raise SipMessageError(f"not a status line: {start[:80]!r}", status=None)
        return Response(status=int(status.group(2)), reason=status.group(3) or "",
                        headers=tuple(headers), body=rest)
    return _request(start, tuple(headers), rest, defect, framed, len(data))


def _request(
    start: str,
    headers: tuple[tuple[str, str], ...],
    rest: bytes,
    defect: str | None,
    framed: bool,
    size: int,
) -> Request:
    line = REQUEST_LINE.fullmatch(start)
    vias: list[Via] = []
    if not any(name == "via" for name, _ in headers):
        raise SipMessageError("no Via header: a response could not be matched", status=None)
    try:
        for name, value in headers:
            if name == "via":
                vias.extend(_via(part) for part in split_unquoted(value, ","))
    except ValueError as exc:
        # Answerable still: the response goes back to the source address, with the Via
        # values copied as they came (RFC 4475 section 3.1.2.1 expects a 400).
        vias = []
        defect = defect or f"bad Via: {exc}"
    if line is None:
        method = start.split(" ", 1)[0] if " " in start else ""
        return Request(method=method.upper(), uri="", headers=headers, body=b"",
                       vias=tuple(vias), defect=f"not a request line: {start[:80]!r}")
    method, uri, version = line.groups()

    def defective(detail: str, status: int = 400) -> Request:
        return Request(method=method, uri=uri, headers=headers, body=b"", vias=tuple(vias),
                       defect=detail, defect_status=status)

    if size > MAX_MESSAGE_BYTES:
        return defective(f"{size} bytes, more than {MAX_MESSAGE_BYTES}", 513)
    if version.upper() != "SIP/2.0":
        return defective(f"{version} is not SIP/2.0", 505)
    if defect is not None:
        return defective(defect)
    try:
        return _checked(method, uri, headers, rest, tuple(vias), framed)
    except SipMessageError as exc:  # answerable: _checked raises only with a status
        return defective(exc.detail, exc.status or 400)


def _checked(
    method: str,
    uri: str,
    headers: tuple[tuple[str, str], ...],
    rest: bytes,
    vias: tuple[Via, ...],
    framed: bool,
) -> Request:
    """The request, its headers checked; a defect raises ``SipMessageError`` with the status
    to answer it with."""
    single = {name: value for name, value in headers if name in _SINGLE}
    names = [name for name, _ in headers]
    if len(single) != sum(map(_SINGLE.__contains__, names)):
        twice = next(name for name in _SINGLE if names.count(name) > 1)
        raise SipMessageError(f"more than one {twice} header")
    for name in ("call-id", "cseq", "from", "to"):
        if name not in single:
            raise SipMessageError(f"no {name} header")
    call_id = single["call-id"]
    if not call_id or " " in call_id:
        raise SipMessageError(f"bad Call-ID {call_id!r}")
    number, _, cseq_method = single["cseq"].partition(" ")
    if not _count(number) or int(number) > _MAX_CSEQ or cseq_method.strip() != method:
        raise SipMessageError(f"bad CSeq {single['cseq']!r} for a {method}")
    try:
        from_ = parse_name_addr(single["from"])
        to = parse_name_addr(single["to"])
    except ValueError as exc:
        raise SipMessageError(f"bad From or To: {exc}") from None
    max_forwards: int | None = None
    if "max-forwards" in single:
        if not _count(single["max-forwards"]) or int(single["max-forwards"]) > 255:
            raise SipMessageError(f"bad Max-Forwards {single['max-forwards']!r}")
        max_forwards = int(single["max-forwards"])
    body = rest
    if "content-length" in single:
        if not _count(single["content-length"]):
            raise SipMessageError(f"bad Content-Length {single['content-length']!r}")
        length = int(single["content-length"])
        if length > len(rest):
            raise SipMessageError(f"Content-Length {length} but only {len(rest)} bytes of body")
        body = rest[:length]
    elif framed:
        body = b""
    scheme, colon, _ = uri.partition(":")
    if not colon or _SCHEME.fullmatch(scheme) is None:
        raise SipMessageError(f"bad Request-URI {uri!r}")
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        raise SipMessageError(f"Request-URI scheme {scheme!r} is not served here", status=416)
    try:
        request_uri = parse_uri(uri)
    except ValueError as exc:
        raise SipMessageError(f"bad Request-URI {uri!r}: {exc}") from None
    if request_uri is None:
        raise SipMessageError(f"bad Request-URI {uri!r}")
    return Request(
        method=method,
        uri=uri,
        headers=headers,
        body=body,
        vias=vias,
        call_id=call_id,
        cseq=int(number),
        cseq_method=cseq_method.strip(),
        from_=from_,
        to=to,
        max_forwards=max_forwards,
        request_uri=request_uri,
    )


class StreamFramer:
    """Cuts a TCP or TLS byte stream into messages by Content-Length (RFC 3261 section 18.3).
    ``feed`` returns the whole messages the bytes so far complete, and ``KEEPALIVE`` for each
    CRLF keep-alive; ``SipMessageError`` means the stream cannot be framed any further (no
    end of head within the limit, or a bad Content-Length) and must be closed.

    A peer chooses how its bytes are split, down to one per segment, so each byte is looked
    at a bounded number of times however the stream arrives: the buffer is a bytearray (it
    grows at its end and drops a message from its start in amortised constant time), the
    search for the end of the head resumes where the last one gave up, and once the head is
    found only the message's end is kept until its body is in. Feeding N bytes costs O(N),
    one at a time or all at once. The model is h11's ``h11/_receivebuffer.py``, which does
    the same "to avoid DoS issues"."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._searched = 0  # no end of head starts before this offset: resume the search here
        self._end: int | None = None  # once the head is in: the offset the message ends at

    def feed(self, data: bytes) -> list[bytes | Keepalive]:
        self._buffer += data
        out: list[bytes | Keepalive] = []
        while self._buffer:
            if self._end is None:
                if self._buffer.startswith(b"\r\n"):
                    if self._buffer.startswith(b"\r\n\r\n"):
                        out.append(KEEPALIVE)
                        self._consume(4)
                        continue
                    if len(self._buffer) < 4 and b"\r\n\r\n".startswith(self._buffer):
                        break  # maybe the start of a keep-alive
                    self._consume(2)  # a CRLF before a start line is ignored
                    continue
                self._end = self._message_end()
                if self._end is None:
                    break
            if len(self._buffer) < self._end:
                break
            out.append(bytes(self._buffer[: self._end]))
            self._consume(self._end)
        return out

    def _consume(self, count: int) -> None:
        del self._buffer[:count]  # amortised: CPython advances the start (bpo-19087)
        self._searched = 0
        self._end = None

    def _message_end(self) -> int | None:
        """Where the message at the start of the buffer ends; None until its head is in."""
        found = _HEAD_END.search(self._buffer, self._searched)
        if found is None:
            if len(self._buffer) > MAX_MESSAGE_BYTES:
                raise SipMessageError("no end of headers within the size limit", status=None)
            # An end of head is at most 4 bytes: one may yet start in the last 3.
            self._searched = max(0, len(self._buffer) - 3)
            return None
        # bytes, not the bytearray: findall would hand back (unhashable) bytearrays
        lengths = set(_CONTENT_LENGTH.findall(bytes(self._buffer[: found.start()])))
        if len(lengths) > 1:
            raise SipMessageError("conflicting Content-Length headers", status=None)
        value = lengths.pop() if lengths else b"0"
        if not _count(value.decode("latin-1")):
            raise SipMessageError(f"bad Content-Length {value[:20]!r}", status=None)
        end = found.end() + int(value)
        if end > MAX_MESSAGE_BYTES:
            raise SipMessageError(f"a message of {end} bytes, more than the limit", status=None)
        return end
