"""Building SIP requests and digest answers for tests, the way a softphone would."""

from __future__ import annotations

import re
import secrets

from sip.credentials import ha1
from sip.digest import DigestResponse, expected_response

__all__ = ["ack_for", "answer_challenge", "header", "invite", "request", "status_of"]


def request(
    method: str,
    *,
    to: str = "+12125550187",
    user: str = "ana",
    domain: str = "demo.sip.example",
    branch: str | None = None,
    call_id: str = "call-1@192.0.2.10",
    from_tag: str = "ft1",
    cseq: int = 1,
    via: str = "192.0.2.10:5062",
    transport: str = "UDP",
    extra: tuple[str, ...] = (),
) -> bytes:
    """A request from ``user``@``domain`` to ``to``@``domain``, with ``extra`` header lines."""
    branch = branch or "z9hG4bK" + secrets.token_hex(6)
    lines = [
        f"{method} sip:{to}@{domain} SIP/2.0",
        f"Via: SIP/2.0/{transport} {via};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{domain}>;tag={from_tag}",
        f"To: <sip:{to}@{domain}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:{user}@{via}>",
        *extra,
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def invite(**kw: object) -> bytes:
    return request("INVITE", **kw)  # type: ignore[arg-type]


def status_of(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def header(data: bytes, name: str) -> list[str]:
    """Every value of header ``name`` in a message."""
    found = re.findall(rb"^" + re.escape(name.encode()) + rb": ?(.*?)\r$", data,
                       re.IGNORECASE | re.MULTILINE)
    return [v.decode() for v in found]


def answer_challenge(
    challenge: bytes,
    *,
    username: str,
    password: str,
    uri: str,
    algorithm: str = "MD5",
    method: str = "INVITE",
    nc: str = "00000001",
) -> str:
    """The Authorization header value answering the 401 ``challenge`` with ``algorithm``."""
    offer = next(v for v in header(challenge, "WWW-Authenticate") if f"algorithm={algorithm}" in v)
    realm = re.search(r'realm="([^"]*)"', offer)
    nonce = re.search(r'nonce="([^"]*)"', offer)
    assert realm is not None and nonce is not None
    cnonce = secrets.token_hex(8)
    draft = DigestResponse(username=username, realm=realm.group(1), nonce=nonce.group(1),
                           uri=uri, response="", algorithm=algorithm, qop="auth", nc=nc,
                           cnonce=cnonce)
    response = expected_response(ha1(algorithm, username, realm.group(1), password), draft,
                                 method)
    return (f'Digest username="{username}", realm="{realm.group(1)}", '
            f'nonce="{nonce.group(1)}", uri="{uri}", response="{response}", '
            f'algorithm={algorithm}, cnonce="{cnonce}", qop=auth, nc={nc}')


def ack_for(invite_data: bytes, response: bytes) -> bytes:
    """The ACK of a non-2xx final ``response`` to ``invite_data`` (RFC 3261 section 17.1.1.3:
    same branch, Call-ID, From and CSeq number; the To of the response)."""
    head = invite_data.split(b"\r\n\r\n", 1)[0].decode()
    lines = head.split("\r\n")
    uri = lines[0].split(" ")[1]
    keep = [line for line in lines[1:]
            if line.split(":", 1)[0].lower() in ("via", "from", "call-id", "max-forwards")]
    to = header(response, "To")[0]
    number = header(response, "CSeq")[0].split(" ")[0]
    ack = [f"ACK {uri} SIP/2.0", *keep, f"To: {to}", f"CSeq: {number} ACK", "Content-Length: 0"]
    return ("\r\n".join(ack) + "\r\n\r\n").encode()
