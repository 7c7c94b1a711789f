"""Digest authentication of SIP requests (RFC 3261 section 22, RFC 7616, RFC 8760), with
``qop=auth`` and the MD5 and SHA-256 algorithms offered together.

Theory of operation
-------------------

Nonces are checked without being stored. A nonce is::

    base64url( instance[4] | sequence[8] | issued_s[4] | HMAC-SHA256(key, the 16 bytes)[:12] )

``instance`` and ``key`` are drawn at random when a ``Nonces`` is made, one per process, so a
nonce can be checked only by the process that issued it; another process (a restarted one, a
sibling worker) finds a foreign instance and answers with a fresh challenge marked
``stale=true``, which a client follows without asking its user again (RFC 7616 section 3.3).

Rule 1: a nonce is accepted only if its HMAC verifies and it is younger than ``ttl_s``. An
  older one with a correct digest gets ``stale=true``; with a wrong digest it is a failure.

Rule 2: each nonce-count (``nc``) is accepted once per nonce, in increasing order (RFC 7616
  section 3.4). The highest count seen for each nonce is kept in a ring of ``slots`` entries
  indexed by the nonce's sequence number (the way Kamailio's auth module does it): memory is
  fixed, whatever the rate. A nonce whose slot has been reused by a newer one is answered as
  stale: its client authenticates again, silently.

Rule 3: an unknown username and a wrong password are the same failure, reached through the
  same work: an unknown username is checked against a random HA1, so neither the answer nor
  its timing tells a valid username from an invalid one.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
import struct
from array import array
from collections.abc import Callable

import msgspec

from .abnf import split_unquoted

__all__ = [
    "ALGORITHMS",
    "HASHES",
    "DigestResponse",
    "Nonces",
    "Verdict",
    "challenge_headers",
    "parse_authorization",
    "verify",
]

ALGORITHMS = ("MD5", "SHA-256")
"""The algorithms callgate can check, in the order challenges offer them by default. RFC 8760
section 2.4 asks for the most preferred first, but many deployed clients read only the first
challenge of a 401 and know only MD5 (sipp 3.6, SIPVicious, older desk phones): offered first,
SHA-256 would lock them out. ``SipSettings.digest_algorithms`` changes the order or the set."""
HASHES: dict[str, Callable[[bytes], str]] = {  # each algorithm's hash, as lower-case hex
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
_NONCE = struct.Struct(">4sQI")
_MAC_BYTES = 12


class Verdict(enum.Enum):
    OK = "ok"
    STALE = "stale"
    """A correct answer to a nonce that is too old, foreign or evicted: challenge again,
    with ``stale=true``."""
    FAILED = "failed"
    """A wrong answer: a bad password, an unknown user, a replayed count, a forged nonce."""


class DigestResponse(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An Authorization (or Proxy-Authorization) header's digest parameters."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None


def parse_authorization(value: str) -> DigestResponse:
    """The parameters of ``Digest username="...", realm="...", ...``; ``ValueError`` if it
    is not a digest answer with every parameter we need."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"not a Digest answer: {scheme!r}")
    params: dict[str, str] = {}
    for part in split_unquoted(rest, ","):
        name, equals, raw = part.strip().partition("=")
        if not equals:
            if part.strip():
                raise ValueError(f"bad parameter {part.strip()!r}")
            continue
        raw = raw.strip()
        if raw.startswith('"'):
            if len(raw) < 2 or not raw.endswith('"'):
                raise ValueError(f"unbalanced quotes in {name.strip()}")
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[name.strip().lower()] = raw
    missing = [p for p in ("username", "realm", "nonce", "uri", "response") if p not in params]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return DigestResponse(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"].lower(),
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=params.get("qop"),
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
    )


def challenge_headers(
    realm: str, nonce: str, *, stale: bool, algorithms: tuple[str, ...] = ALGORITHMS
) -> tuple[tuple[str, str], ...]:
    """The WWW-Authenticate headers of a 401: one per algorithm, in the order given."""
    flag = ", stale=true" if stale else ""
    return tuple(
        ("WWW-Authenticate",
         f'Digest realm="{realm}", nonce="{nonce}", algorithm={algorithm}, qop="auth"{flag}')
        for algorithm in algorithms
    )


class Nonces:
    """Issues nonces and checks them (rules 1 and 2 above)."""

    def __init__(self, *, ttl_s: float, slots: int = 1 << 20) -> None:
        self.ttl_s = ttl_s
        self._key = secrets.token_bytes(32)
        self._instance = secrets.token_bytes(4)
        self._slots = slots
        self._counts = array("I", bytes(array("I").itemsize * slots))
        self._next = 0

    def _mac(self, head: bytes) -> bytes:
        return hmac.new(self._key, head, "sha256").digest()[:_MAC_BYTES]

    def issue(self, now_s: float) -> str:
        sequence = self._next
        self._next += 1
        self._counts[sequence % self._slots] = 0
        head = _NONCE.pack(self._instance, sequence, int(now_s))
        return base64.urlsafe_b64encode(head + self._mac(head)).decode()

    def _decode(self, nonce: str) -> tuple[bytes, int, int, bytes] | None:
        try:
            raw = base64.urlsafe_b64decode(nonce.encode())
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _NONCE.size + _MAC_BYTES:
            return None
        instance, sequence, issued = _NONCE.unpack(raw[: _NONCE.size])
        return instance, sequence, issued, raw[_NONCE.size:]

    def check(self, nonce: str, nc: str, now_s: float) -> Verdict:
        """The verdict on ``nonce`` used with count ``nc``, for an answer whose digest is
        correct (an incorrect one fails whatever the nonce). Records the count when OK."""
        decoded = self._decode(nonce)
        if decoded is None:
            return Verdict.FAILED
        instance, sequence, issued, mac = decoded
        if instance != self._instance:
            return Verdict.STALE  # issued by another process, or by this one before a restart
        if not hmac.compare_digest(mac, self._mac(_NONCE.pack(instance, sequence, issued))):
            return Verdict.FAILED
        if now_s - issued > self.ttl_s:
            return Verdict.STALE
        if sequence + self._slots < self._next:
            return Verdict.STALE  # its slot belongs to a newer nonce now
        try:
            count = int(nc, 16)
        except ValueError:
            return Verdict.FAILED
        slot = sequence % self._slots
        if not 0 < count <= 0xFFFFFFFF or count <= self._counts[slot]:
            return Verdict.FAILED  # a replay, or a count going backwards
        self._counts[slot] = count
        return Verdict.OK


def expected_response(ha1: str, answer: DigestResponse, method: str) -> str:
    """``KD(HA1, nonce:nc:cnonce:qop:H(A2))`` with ``A2 = method:uri`` (RFC 7616 section
    3.4.1, qop=auth)."""
    h = HASHES[answer.algorithm]
    ha2 = h(f"{method}:{answer.uri}".encode())
    return h(f"{ha1}:{answer.nonce}:{answer.nc}:{answer.cnonce}:{answer.qop}:{ha2}".encode())


_DECOY_HA1 = {"MD5": secrets.token_hex(16), "SHA-256": secrets.token_hex(32)}


def verify(
    answer: DigestResponse,
    *,
    method: str,
    ha1: Callable[[str], str | None],
    nonces: Nonces,
    now_s: float,
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> Verdict:
    """Check ``answer`` to a challenge for a request with ``method``; ``ha1(algorithm)`` is the
    user's stored digest (None for an unknown user); only the ``algorithms`` offered count.
    The realm and URI are the caller's to check: they say which account and which request the
    answer is for."""
    if (answer.algorithm not in algorithms or answer.qop != "auth" or not answer.nc
            or not answer.cnonce):
        return Verdict.FAILED  # RFC 2069 answers (no qop), -sess and algorithms not offered
    known = ha1(answer.algorithm)
    expected = expected_response(known or _DECOY_HA1[answer.algorithm], answer, method)
    if not hmac.compare_digest(expected, answer.response) or known is None:
        return Verdict.FAILED
    return nonces.check(answer.nonce, answer.nc, now_s)
