"""An account's day: what daily caps and usage count by, starting at midnight in the
account's time zone (``AccountConfig.time_zone``).

``local_day`` is on the dial path, so each zone's current day is kept with when it ends,
and recomputed only then: a dial pays a dictionary lookup and a comparison. A zone's rules are
read from a file the first time it is used; a server reads them all before it serves
(``load_zones``, 60 ms), so that no dial waits on the disk.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, available_timezones

__all__ = ["day_bounds", "load_zones", "local_day", "zone"]


class _Day(NamedTuple):
    day: str
    starts_ms: int
    ends_ms: int


_current: dict[str, _Day] = {}
_zones: dict[str, ZoneInfo] = {}


def load_zones() -> None:
    """Read every time zone's rules now, before serving, not on a dial."""
    for name in available_timezones():
        _zones.setdefault(name, ZoneInfo(name))


def zone(name: str) -> ZoneInfo:
    """The zone named ``name``, read once."""
    found = _zones.get(name)
    if found is None:
        found = _zones[name] = ZoneInfo(name)
    return found


def day_bounds(time_zone: str, now_ms: int) -> tuple[str, int, int]:
    """The day ('2026-12-04') in ``time_zone`` at ``now_ms``, and when it starts and ends
    (ms since the epoch; a day across a DST change is 23 or 25 hours long)."""
    tz = zone(time_zone)
    now = datetime.fromtimestamp(now_ms / 1000, tz)
    start = datetime(now.year, now.month, now.day, tzinfo=tz)
    following = start.date() + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz)
    return now.date().isoformat(), int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def local_day(time_zone: str, now_ms: int) -> str:
    """The day in ``time_zone`` at ``now_ms``."""
    known = _current.get(time_zone)
    if known is not None and known.starts_ms <= now_ms < known.ends_ms:
        return known.day
    day = _Day(*day_bounds(time_zone, now_ms))
    _current[time_zone] = day
    return day.day
