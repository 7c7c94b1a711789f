"""The parts of the SIP grammar (RFC 3261 section 25.1) callgate reads, as regular expressions,
each under the ABNF it implements. Linear white space (LWS) inside a header value has already
been folded into single spaces by the parser (section 7.3.1) when these run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = [
    "HEADER_NAME",
    "METHOD",
    "REQUEST_LINE",
    "SIP_URI",
    "STATUS_LINE",
    "TEL_URI",
    "VIA_PARM",
    "find_unquoted",
    "param_pairs",
    "split_unquoted",
]

# token       =  1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"

# Method            =  INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm / extension-method
# extension-method  =  token
METHOD = re.compile(_TOKEN)

# header-name       =  token
HEADER_NAME = re.compile(_TOKEN)

# Request-Line   =  Method SP Request-URI SP SIP-Version CRLF
# SIP-Version    =  "SIP" "/" 1*DIGIT "." 1*DIGIT
# Exactly one SP between the parts (RFC 4475 3.1.2.6, lwsruri: any other spacing is an error).
REQUEST_LINE = re.compile(rf"({_TOKEN}) (\S+) (SIP/[0-9]+\.[0-9]+)", re.IGNORECASE)

# Status-Line     =  SIP-Version SP Status-Code SP Reason-Phrase CRLF
# Status-Code     =  3DIGIT  (the extension-code form: any three digits)
# Reason-Phrase   =  *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
STATUS_LINE = re.compile(r"(SIP/[0-9]+\.[0-9]+) ([0-9]{3})(?: (.*))?", re.IGNORECASE)

# SIP-URI          =  "sip:" [ userinfo ] hostport uri-parameters [ headers ]
# SIPS-URI         =  "sips:" [ userinfo ] hostport uri-parameters [ headers ]
# userinfo         =  ( user / telephone-subscriber ) [ ":" password ] "@"
# hostport         =  host [ ":" port ]
# host             =  hostname / IPv4address / IPv6reference
# The user part may hold any of ";", "?", "/" and escapes, but never "@": the last "@" before
# the host ends it. Groups: scheme, user, password, host, port, parameters, headers.
SIP_URI = re.compile(
    r"(sips?):(?:([^:@]*)(?::([^@]*))?@)?"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::([0-9]{1,5}))?"
    r"((?:;[^;?]*)*)(\?.*)?",
    re.IGNORECASE,
)

# telephone-subscriber (RFC 3966):  telephone-uri = "tel:" telephone-subscriber
# telephone-subscriber = global-number / local-number, each followed by *par
# Groups: the number, the parameters.
TEL_URI = re.compile(r"tel:([^;]+)((?:;.*)?)", re.IGNORECASE)

# via-parm          =  sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol     =  protocol-name SLASH protocol-version SLASH transport
# sent-by           =  host [ COLON port ]
# Groups: protocol name, version, transport, host, port, parameters.
VIA_PARM = re.compile(
    rf"({_TOKEN}) ?/ ?({_TOKEN}) ?/ ?({_TOKEN}) "
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?: ?: ?([0-9]{1,5}))?"
    r"((?: ?; ?[^;]*)*)",
)

# generic-param  =  token [ EQUAL gen-value ]
# gen-value      =  token / host / quoted-string
_PARAM = re.compile(rf'[ \t]*({_TOKEN})[ \t]*(?:=[ \t]*("(?:[^"\\]|\\.)*"|[^;"]*))?[ \t]*')


def param_pairs(text: str) -> dict[str, str | None]:
    """The ``;name=value`` parameters in ``text`` (which starts at the first ``;``), names in
    lower case, quotes kept on quoted values. Raises ``ValueError`` on one that is not a
    generic-param."""
    out: dict[str, str | None] = {}
    for part in split_unquoted(text, ";")[1:]:
        found = _PARAM.fullmatch(part)
        if found is None:
            raise ValueError(f"bad parameter {part!r}")
        value = found.group(2)
        out[found.group(1).lower()] = value.strip() if value is not None else None
    return out


def _outside_quotes(text: str) -> Iterator[tuple[int, str]]:
    """Each character of ``text`` outside quoted strings (``quoted-string``, with its
    ``quoted-pair`` escapes), with its index."""
    quoted = False
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        else:
            yield i, char


def split_unquoted(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside quoted strings and angle brackets."""
    if '"' not in text and "<" not in text:
        return text.split(separator)
    parts: list[str] = []
    start = 0
    depth = 0
    for i, char in _outside_quotes(text):
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def find_unquoted(text: str, char: str) -> int:
    """The index of the first ``char`` outside quoted strings, or -1."""
    if '"' not in text:
        return text.find(char)
    return next((i for i, c in _outside_quotes(text) if c == char), -1)
