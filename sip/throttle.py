"""Bans after repeated digest failures: per login at an address first, the whole address only
when it tries many logins (time is an argument; no I/O).

Many users may share one source address (an office behind NAT), so one of them guessing or
mistyping a password must not silence the others. Two counters, both ``engine.throttle``
with the same N (``failures``), W (``window_s``) and B (``ban_s``):

1. **A login at an address** (the address, and the digest username in its realm): N failed
   answers within W ban that pair for B seconds. Its INVITEs then get nothing at all (with
   an Authorization for that username, or without one and that user in the From URI); the
   address's other users are answered as before.
2. **The address**: failures for N different usernames within W ban the whole address for B
   seconds; it then gets no answer to anything. Each username counts once, at its first
   failure from that address within W. A scan for usernames, or a password sprayed over
   many logins, is stopped this way; an office would need N of its users to fail within W.

A username that is nobody's login is counted exactly like a real one, on purpose: were a
flood for one unknown username to ban the whole address while the same for a real login
banned only the pair, a guesser could tell real usernames from made-up ones by what still
answers after a ban (the 401s themselves are alike for that reason, ``sip.redirect``).

What this bounds: a guesser at one address gets at most N guesses per login and fewer than
N logins (so under N * N guesses) per ban period. Memory is bounded by ``max_tracked`` per
counter (see ``engine.throttle``).
"""

from __future__ import annotations

import enum

from engine.throttle import Throttle

__all__ = ["AuthThrottle", "BanScope"]


class BanScope(enum.StrEnum):
    """What a ban silences (the ``scope`` label of ``callgate_sip_bans_total``)."""

    USER = "user"
    """One login at one address."""
    ADDRESS = "address"
    """Everything from one address."""


class AuthThrottle:
    """Failed digest answers per (address, login), and failing logins per address."""

    def __init__(
        self, *, failures: int, window_s: float, ban_s: float, max_tracked: int = 100_000
    ) -> None:
        self._logins = Throttle(failures=failures, window_s=window_s, ban_s=ban_s,
                                max_tracked=max_tracked)
        self._addresses = Throttle(failures=failures, window_s=window_s, ban_s=ban_s,
                                   max_tracked=max_tracked)

    def banned(self, address: str, now_s: float) -> bool:
        """Whether everything from ``address`` is banned now."""
        return self._addresses.banned(address, now_s)

    def login_banned(self, address: str, login: str, now_s: float) -> bool:
        """Whether ``login`` (``username@realm``) is banned at ``address`` now."""
        return self._logins.banned(_pair(address, login), now_s)

    def failed(self, address: str, login: str, now_s: float) -> tuple[BanScope, ...]:
        """Count a failed answer for ``login`` (``username@realm``) from ``address``, whether
        or not that login exists; the bans this failure starts (usually none)."""
        pair = _pair(address, login)
        first = self._logins.counted(pair, now_s) == 0  # the username's first within W
        started: list[BanScope] = []
        if self._logins.failed(pair, now_s):
            started.append(BanScope.USER)
        if first and self._addresses.failed(address, now_s):
            started.append(BanScope.ADDRESS)
        return tuple(started)

    def tracked(self) -> int:
        """Pairs and addresses held now: what bounds this object's memory."""
        return self._logins.tracked() + self._addresses.tracked()


def _pair(address: str, login: str) -> str:
    return f"{address} {login}"  # an address holds no space: the pair reads back one way
