"""Throttling of authentication failures by source address, without I/O (time is an argument).

After ``failures`` failed digest answers from one address within ``window_s`` seconds, that
address is banned for ``ban_s`` seconds: the server sends it nothing at all, so a password
guesser learns nothing and gets no faster answer than a timeout. Memory is bounded: at most
``max_tracked`` addresses are followed, the least recently failing forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict, deque

__all__ = ["Throttle"]


class Throttle:
    def __init__(
        self, *, failures: int, window_s: float, ban_s: float, max_tracked: int = 100_000
    ) -> None:
        if failures < 1 or window_s <= 0 or ban_s < 0:
            raise ValueError("failures >= 1, window_s > 0 and ban_s >= 0")
        self.failures = failures
        self.window_s = window_s
        self.ban_s = ban_s
        self._max_tracked = max_tracked
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._banned_until: dict[str, float] = {}

    def banned(self, host: str, now_s: float) -> bool:
        """Whether ``host`` is banned now."""
        until = self._banned_until.get(host)
        if until is None:
            return False
        if now_s < until:
            return True
        del self._banned_until[host]
        return False

    def failed(self, host: str, now_s: float) -> bool:
        """Count one failure from ``host``; True if it starts a ban."""
        times = self._recent.pop(host, None)
        if times is None:
            times = deque(maxlen=self.failures)
        times.append(now_s)
        self._recent[host] = times
        while len(self._recent) > self._max_tracked:
            self._recent.popitem(last=False)
        if len(times) == self.failures and now_s - times[0] <= self.window_s:
            self._banned_until[host] = now_s + self.ban_s
            del self._recent[host]
            if len(self._banned_until) > self._max_tracked:
                self._forget_expired(now_s)
            return True
        return False

    def _forget_expired(self, now_s: float) -> None:
        for host in [h for h, until in self._banned_until.items() if until <= now_s]:
            del self._banned_until[host]
