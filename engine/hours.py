"""Calling hours on a dial: is it now within the callee's windows, in the callee's local time?

The callee's time zones come from phonenumbers' time-zone data, by the longest prefix of the
number it lists (a New York number has one zone, an Australian mobile all of Australia's).
A number whose zones disagree is judged by the most restrictive: a dial is allowed only when
it is within the windows in every one of them (a +1 toll-free number may ring anywhere from
Guam to Hawaii: 08:00-21:00 everywhere leaves 22:00-07:00 UTC). Where the zones share no
window at all (narrow windows, zones far apart), the number is judged in the account's own
time zone instead. A number phonenumbers places nowhere is judged there too.

On the dial path a zone's local minute is kept until the minute ends, so an allowed dial pays
a prefix lookup and a few comparisons; a denial works out the next allowed time, walking the
window starts of the coming days in each zone (a day across a daylight-saving change has
its own length, so each start is placed by the zone's own rules).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import NamedTuple

import msgspec
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from callerid import Destination
from callerid.geo import NumberKind
from callerid.hours import DAYS, Hours, HoursPolicy, spell

from .days import zone as _zone

__all__ = ["OutsideHours", "judge", "zones_of"]

_UNKNOWN = "Etc/Unknown"
_LONGER = frozenset(key[:i] for key in TIMEZONE_DATA for i in range(1, len(key)))
"""Every prefix some longer listed prefix starts with: a walk down a number's digits stops
at the first that is not one of these (a New York number after 4 digits, not 9)."""


_PLACED = frozenset({NumberKind.FIXED_LINE, NumberKind.FIXED_LINE_OR_MOBILE})
_PLACED_MOBILES = frozenset({52, 54, 55, 62, 86})
"""Countries whose mobile numbers carry an area code (Mexico, Argentina, Brazil, Indonesia,
China), as phonenumbers has it: elsewhere a mobile may be anywhere in its country."""


def zones_of(dest: Destination) -> tuple[str, ...]:
    """The time zones ``dest`` may ring in, as phonenumbers places it (empty: unknown): by
    the longest prefix its data lists for a number with a place (a fixed line, or a mobile
    where mobiles have area codes), else every zone of its country."""
    placed = dest.kind in _PLACED or (dest.kind is NumberKind.MOBILE
                                      and dest.country_code in _PLACED_MOBILES)
    if not placed:
        listed = TIMEZONE_DATA.get(str(dest.country_code))
        return () if listed is None or listed == (_UNKNOWN,) else listed
    area = dest.area
    if area is not None:  # most numbers: the area decides (no longer prefix under it)
        found = _by_area.get(area)
        if found is not None:
            return found
        if area[1:] not in _LONGER:
            found = _by_area[area] = _walk(area[1:])
            return found
    return _walk(dest.e164[1:])


_by_area: dict[str, tuple[str, ...]] = {}
"""The zones of each area that decides them, as found."""


def _walk(digits: str) -> tuple[str, ...]:
    """The zones of the longest listed prefix of ``digits``."""
    zones: tuple[str, ...] = ()
    for length in range(1, min(len(digits), TIMEZONE_LONGEST_PREFIX) + 1):
        prefix = digits[:length]
        listed = TIMEZONE_DATA.get(prefix)
        if listed is not None and listed != (_UNKNOWN,):
            zones = listed
        if prefix not in _LONGER:
            break
    return zones


class _Minute(NamedTuple):
    until_ms: int
    day: date
    weekday: int
    minute: int
    """Minutes after local midnight."""


_minutes: dict[str, _Minute] = {}


def _local_minute(zone: str, now_ms: int) -> _Minute:
    kept = _minutes.get(zone)
    if kept is not None and now_ms < kept.until_ms and now_ms >= kept.until_ms - 60_000:
        return kept
    local = datetime.fromtimestamp(now_ms / 1000, _zone(zone))
    minute = _Minute(until_ms=now_ms - now_ms % 60_000 + 60_000, day=local.date(),
                     weekday=local.weekday(), minute=local.hour * 60 + local.minute)
    _minutes[zone] = minute
    return minute


def _within(hours: Hours, holidays: frozenset[date], day: date, minute: int) -> bool:
    if holidays and day in holidays:
        return False
    for start, end in hours[day.weekday()]:  # noqa: SIM110  (no generator on the dial path)
        if start <= minute < end:
            return True
    return False


class OutsideHours(msgspec.Struct, frozen=True, kw_only=True):
    """Why a dial is held back: the callee's local time where it is outside the windows,
    and the next time the dial would be allowed (None: never, the windows being empty)."""

    zone: str
    callee_time: str
    """The callee's local time now, ISO 8601 with its offset."""
    next_allowed_ms: int | None
    next_allowed_local: str | None
    detail: str


def judge(
    policy: HoursPolicy, dest: Destination, now_ms: int, account_zone: str
) -> OutsideHours | None:
    """None when ``dest`` may be called at ``now_ms`` under ``policy``; else why not."""
    hours = policy.default
    regions = policy.regions
    if regions and (dest.subdivision in regions or dest.region in regions):
        hours = policy.hours_for(dest.subdivision, dest.region)[0]
    zones = zones_of(dest) or (account_zone,)
    holidays = policy.holidays
    for zone in zones:
        at = _minutes.get(zone)
        if at is None or not at.until_ms - 60_000 <= now_ms < at.until_ms:
            at = _local_minute(zone, now_ms)
        if holidays and at.day in holidays:
            break
        minute = at.minute
        for start, end in hours[at.weekday]:
            if start <= minute < end:
                break
        else:
            break
    else:
        return None
    return _outside(policy, dest, now_ms, account_zone, zones)


def _outside(policy: HoursPolicy, dest: Destination, now_ms: int, account_zone: str,
             zones: tuple[str, ...]) -> OutsideHours | None:
    hours, source = policy.hours_for(dest.subdivision, dest.region)
    holidays = policy.holidays
    following = _next_allowed(hours, holidays, zones, now_ms)
    if following is None and zones != (account_zone,):
        zones = (account_zone,)  # no window common to every zone: the account's judges
        at = _local_minute(account_zone, now_ms)
        if _within(hours, holidays, at.day, at.minute):
            return None
        following = _next_allowed(hours, holidays, zones, now_ms)
    outside = next(z for z in zones if not _allowed_at(hours, holidays, (z,), now_ms))
    local = datetime.fromtimestamp(now_ms / 1000, _zone(outside))
    where = f"{outside}" if len(zones) == 1 else f"{outside}, one of its {len(zones)} zones"
    detail = (f"it is {DAYS[local.weekday()]} {local:%H:%M} for {dest.e164} ({where}); "
              f"{source} allow {spell(hours)}")
    if local.date() in holidays:
        detail += f", and {local.date().isoformat()} is a holiday"
    next_local = None
    if following is None:
        detail += "; no time is ever allowed"
    else:
        next_local = datetime.fromtimestamp(following / 1000, _zone(outside)).isoformat(
            timespec="seconds")
        detail += f"; the next allowed time is {next_local}"
    return OutsideHours(zone=outside, callee_time=local.isoformat(timespec="seconds"),
                        next_allowed_ms=following, next_allowed_local=next_local,
                        detail=detail)


def _allowed_at(hours: Hours, holidays: frozenset[date], zones: tuple[str, ...],
                at_ms: int) -> bool:
    for zone in zones:
        local = datetime.fromtimestamp(at_ms / 1000, _zone(zone))
        if not _within(hours, holidays, local.date(), local.hour * 60 + local.minute):
            return False
    return True


def _next_allowed(hours: Hours, holidays: frozenset[date], zones: tuple[str, ...],
                  now_ms: int) -> int | None:
    """The earliest time after ``now_ms`` allowed in every zone: a window start in one of
    them (the allowed times are where every zone's windows overlap, so the first of them
    begins where some zone's window begins), within the coming week and any holidays."""
    horizon = 8 + len(holidays)
    starts: set[int] = set()
    for name in zones:
        zone = _zone(name)
        today = datetime.fromtimestamp(now_ms / 1000, zone).date()
        for offset in range(horizon + 1):
            day = today + timedelta(days=offset)
            if day in holidays:
                continue
            for start, _ in hours[day.weekday()]:
                local = datetime.combine(day, time(start // 60, start % 60), tzinfo=zone)
                at = int(local.timestamp() * 1000)
                if at > now_ms:
                    starts.add(at)
    for at in sorted(starts):
        if _allowed_at(hours, holidays, zones, at):
            return at
    return None
