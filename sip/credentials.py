"""SIP credentials: a user's login in the account's SIP domain, kept only as digests.

A password is turned into its two HA1 digests at once (RFC 7616 section 3.4.2, and RFC 8760
for SIP's SHA-256), and forgotten: ``HA1 = H(username ":" realm ":" password)``, the realm being
the account's SIP domain. A digest answer can be checked from HA1 alone, so callgate never
needs the password again; it is shown once, when callgate generates it.

A password an administrator chooses is refused when it is weak (``check_password``): short,
guessable from the login, mostly repetition, or under 64 bits by a plain count of its
character classes. A generated one has 144 bits.
"""

from __future__ import annotations

import math
import secrets

from callerid import SipCredential
from engine.errors import InvalidField

from .digest import HASHES

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "check_password",
    "generate_password",
    "ha1",
    "make_credential",
]

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
MIN_PASSWORD_BITS = 64
_CLASSES = (
    (str.islower, 26),
    (str.isupper, 26),
    (str.isdigit, 10),
)
_OTHER_PRINTABLE = 32  # printable ASCII that is neither letter nor digit


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """HA1 for ``algorithm`` (``MD5`` or ``SHA-256``), as lower-case hex."""
    digest = HASHES.get(algorithm)
    if digest is None:
        raise ValueError(f"unknown digest algorithm {algorithm!r}")
    return digest(f"{username}:{realm}:{password}".encode())


def generate_password() -> str:
    """A new random password: 24 characters from the URL-safe alphabet (144 bits)."""
    return secrets.token_urlsafe(18)


def _bits(password: str) -> float:
    pool = sum(size for test, size in _CLASSES if any(test(c) for c in password))
    if any(not c.isalnum() for c in password):
        pool += _OTHER_PRINTABLE
    return len(password) * math.log2(pool) if pool else 0.0


def check_password(password: str, *, username: str, realm: str) -> None:
    """Raise ``InvalidField`` (field ``password``) saying why ``password`` is too weak to be a
    SIP password for ``username`` in ``realm``; return when it is not."""

    def weak(why: str) -> InvalidField:
        return InvalidField(f"the password is too weak: {why}", field="password")

    if not all("!" <= c <= "~" for c in password):
        raise InvalidField(
            "the password may hold printable ASCII characters only (no spaces): softphones "
            "differ in how they encode anything else",
            field="password",
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise weak(f"{len(password)} characters, fewer than {MIN_PASSWORD_LENGTH}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidField(
            f"the password is {len(password)} characters, more than {MAX_PASSWORD_LENGTH}",
            field="password",
        )
    lowered = password.lower()
    for word in (username.lower(), realm.split(".", 1)[0].lower()):
        if len(word) >= 3 and word in lowered:
            raise weak(f"it contains {word!r}, which anyone who knows the login can guess")
    if len(set(password)) * 3 < len(password):
        raise weak("it is mostly the same few characters repeated")
    if _bits(password) < MIN_PASSWORD_BITS:
        raise weak(
            f"about {_bits(password):.0f} bits, under {MIN_PASSWORD_BITS}: make it longer "
            "or mix upper and lower case, digits and symbols"
        )


def make_credential(
    username: str, realm: str, password: str, *, now_ms: int, enabled: bool = True
) -> SipCredential:
    """The stored form of a login: its digests, never ``password``."""
    return SipCredential(
        username=username,
        ha1_md5=ha1("MD5", username, realm, password),
        ha1_sha256=ha1("SHA-256", username, realm, password),
        enabled=enabled,
        password_set_ms=now_ms,
    )
