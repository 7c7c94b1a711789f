"""Counting failures per key and banning a key that fails too often, without I/O.

Theory of operation: after ``failures`` failures of one key within ``window_s`` seconds, that
key is banned for ``ban_s`` seconds. What a key is belongs to the caller (a source address, an
``address|username`` pair, a token id); this module only counts. Time is an argument
(``now_s``, any monotonic clock in seconds), so tests drive it with a fake clock.

Invariants:

- Memory is bounded: at most ``max_tracked`` keys are followed while they fail, the least
  recently failing forgotten first, and at most ``max_tracked`` bans are held. Bans are kept in
  the order they were set; as ``ban_s`` is the same for all (and time does not go back), that
  is the order they end in, so expired bans are dropped from the front in amortised constant
  time. Should more than ``max_tracked`` bans be live at once, the ones that would end soonest
  are lifted early: a flood from more keys than we can remember must not exhaust memory.
- A key's failure count starts again from zero when its ban starts.
"""

from __future__ import annotations

from collections import OrderedDict, deque

__all__ = ["Throttle"]


class Throttle:
    """Failures per key within a sliding window, then a ban of the key."""

    def __init__(
        self, *, failures: int, window_s: float, ban_s: float, max_tracked: int = 100_000
    ) -> None:
        if failures < 1 or window_s <= 0 or ban_s < 0 or max_tracked < 1:
            raise ValueError(
                f"throttle needs failures >= 1, window_s > 0, ban_s >= 0 and max_tracked >= 1; "
                f"got failures={failures}, window_s={window_s}, ban_s={ban_s}, "
                f"max_tracked={max_tracked}"
            )
        self.failures = failures
        self.window_s = window_s
        self.ban_s = ban_s
        self.max_tracked = max_tracked
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._banned_until: OrderedDict[str, float] = OrderedDict()

    def banned(self, key: str, now_s: float) -> bool:
        """Whether ``key`` is banned at ``now_s``."""
        return self.ban_ends(key, now_s) is not None

    def ban_ends(self, key: str, now_s: float) -> float | None:
        """Seconds from ``now_s`` until the ban on ``key`` ends; None if it is not banned."""
        until = self._banned_until.get(key)
        if until is None:
            return None
        if now_s < until:
            return until - now_s
        del self._banned_until[key]
        return None

    def failed(self, key: str, now_s: float) -> bool:
        """Count one failure of ``key`` at ``now_s``; True if this failure starts a ban."""
        times = self._recent.pop(key, None)
        if times is None:
            times = deque(maxlen=self.failures)
        times.append(now_s)
        self._recent[key] = times
        while len(self._recent) > self.max_tracked:
            self._recent.popitem(last=False)
        if len(times) == self.failures and now_s - times[0] <= self.window_s:
            del self._recent[key]
            self._ban(key, now_s)
            return True
        return False

    def counted(self, key: str, now_s: float) -> int:
        """How many failures of ``key`` fall within the window ending at ``now_s`` (0 for a
        key never seen, forgotten, or whose ban started since)."""
        times = self._recent.get(key)
        if times is None:
            return 0
        return sum(1 for at in times if now_s - at <= self.window_s)

    def tracked(self) -> int:
        """How many keys are held (failing or banned): what bounds this object's memory."""
        return len(self._recent) + len(self._banned_until)

    def _ban(self, key: str, now_s: float) -> None:
        self._banned_until.pop(key, None)  # re-inserted at the end: the order stays end order
        self._banned_until[key] = now_s + self.ban_s
        while self._banned_until:
            first, until = next(iter(self._banned_until.items()))
            if until > now_s and len(self._banned_until) <= self.max_tracked:
                break
            del self._banned_until[first]
