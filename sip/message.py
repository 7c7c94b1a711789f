"""SIP messages as values: what the parser hands out and what a response is built from.

Header values are kept as they arrived (decoded as Latin-1, so every byte survives a round
trip), under their canonical lower-case names (compact forms expanded). A response copies the
request's Via, From, To, Call-ID and CSeq values byte for byte (RFC 3261 section 8.2.6.2).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Address",
    "NameAddr",
    "Request",
    "Response",
    "Uri",
    "Via",
    "build_response",
    "response_address",
]

Address = tuple[str, int]
"""A peer's IP address and port, as the socket reports it."""

_CANONICAL = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
}


def canonical_name(lower: str) -> str:
    """``via`` -> ``Via``, ``call-id`` -> ``Call-ID``: the spelling responses use."""
    known = _CANONICAL.get(lower)
    return known if known is not None else "-".join(p.capitalize() for p in lower.split("-"))


class Uri(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A sip:, sips: or tel: URI; ``user`` unescaped (for tel:, the number)."""

    scheme: str
    user: str | None
    host: str | None
    port: int | None = None
    params: dict[str, str | None] = {}


class Via(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One via-parm: ``SIP/2.0/UDP host:port;branch=...``."""

    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]
    raw: str

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")


class NameAddr(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A From, To, Contact or P-Preferred-Identity value: display name, URI, parameters."""

    display: str
    uri: str
    params: dict[str, str | None]

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")


class Request(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A SIP request. A request the parser could frame but not accept carries ``defect`` (the
    reason) and ``defect_status`` (what to answer); then only ``method`` and ``headers`` can
    be relied on, and ``vias`` is empty if the Via values were unreadable."""

    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]
    """(lower-case canonical name, value) in arrival order; folded lines joined."""
    body: bytes
    vias: tuple[Via, ...]
    call_id: str = ""
    cseq: int = 0
    cseq_method: str = ""
    from_: NameAddr | None = None
    to: NameAddr | None = None
    max_forwards: int | None = None
    request_uri: Uri | None = None
    defect: str | None = None
    defect_status: int = 400

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


class Response(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A SIP response: callgate receives these only by mistake (it sends no requests)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _top_via(via: Via, source: Address) -> str:
    """The top Via as the response carries it: ``received`` when the sent-by host is not the
    source address (RFC 3261 section 18.2.1) and ``rport`` filled in when asked for (RFC
    3581 section 4)."""
    params = dict(via.params)
    host, port = source
    changed = False
    if via.host.strip("[]") != host:
        params["received"] = host
        changed = True
    if "rport" in params and params["rport"] is None:
        params["rport"] = str(port)
        params.setdefault("received", host)
        changed = True
    if not changed:
        return via.raw
    sent_by = via.host if via.port is None else f"{via.host}:{via.port}"
    rendered = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())
    return f"SIP/2.0/{via.transport} {sent_by}{rendered}"


DEFAULT_PORTS = {"TLS": 5061}
"""A sent-by without a port means this for its transport, and 5060 for any other (RFC 3261
section 18.2.2; section 26.2 for TLS)."""


def response_address(request: Request, source: Address) -> Address:
    """Where a response to ``request``, which came as a datagram from ``source``, goes:
    RFC 3261 section 18.2.2 for an unreliable transport. With ``rport`` in the top Via (RFC
    3581 section 4), back to ``source``; without it, to the source IP (the ``received``
    address) and the port in the Via's sent-by, or the transport's default port when it
    names none. A request without a readable Via goes back to ``source``.

    Deviation: ``maddr`` is ignored, and so is a sent-by host that is not the source: sending
    to an address a request names would let anyone aim callgate's answers at a third party.
    The sent-by port aims nowhere a forged source address could not already."""
    if not request.vias:
        return source
    via = request.vias[0]
    if "rport" in via.params:
        return source
    return (source[0], via.port or DEFAULT_PORTS.get(via.transport, 5060))


def build_response(
    request: Request,
    status: int,
    reason: str,
    *,
    source: Address,
    to_tag: str | None,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """The bytes of a response to ``request``: its Via, From, To (with ``to_tag`` added when it
    has none), Call-ID and CSeq, then ``headers`` (name, value), and no body."""
    lines = [f"SIP/2.0 {status} {reason}"]
    for i, via in enumerate(request.vias):
        lines.append(f"Via: {_top_via(via, source) if i == 0 else via.raw}")
    for name, value in request.headers:
        if name == "via" and not request.vias:  # unreadable: copied as it came
            lines.append(f"Via: {value}")
        elif name == "from" or name == "call-id" or name == "cseq":
            lines.append(f"{canonical_name(name)}: {value}")
        elif name == "to":
            has_tag = request.to is not None and request.to.tag is not None
            if to_tag is not None and not has_tag:  # callgate sends no 100 (RFC 3261 8.2.6.2)
                value = f"{value};tag={to_tag}"
            lines.append(f"To: {value}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
