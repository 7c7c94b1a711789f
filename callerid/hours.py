"""Calling hours: when a callee may be called, in the callee's own local time.

An account's policy (``CallingHours``) gives its windows per weekday, written as text a
person reads and an administrator types: ``"mon-fri 09:00-20:00, sat 10:00-17:00"`` (a day
no group names has no calling), windows for some states, provinces or countries in place of
those, dates with no calling at all (holidays), and whether the shipped table of US state
rules applies (``callerid.hours_us``: where a state's law is narrower than the federal
08:00-21:00, the narrower window holds there too).

Pure: this module parses and compiles the policy into minutes of a weekday; the engine
(``engine.hours``) finds the callee's time zones and judges a dial against what is compiled
here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

import msgspec

__all__ = ["DAYS", "Hours", "HoursError", "HoursPolicy", "compile_hours", "intersect",
           "parse_hours", "spell"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekdays as the text spells them, Monday first (``date.weekday()``)."""

Window = tuple[int, int]
"""From and to, in minutes after local midnight (to at most 1440, midnight after)."""
Hours = tuple[tuple[Window, ...], ...]
"""Seven weekdays' windows, Monday first, each day's sorted and disjoint."""

_GROUP = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)\s*$")


class HoursError(ValueError):
    """Text that is not a calling-hours spec; the message says what is wrong and how to
    write it."""


_EXAMPLE = "write windows as 'mon-fri 09:00-20:00, sat 10:00-17:00'"


def parse_hours(text: str) -> Hours:
    """The windows ``text`` gives each weekday. An empty text is no calling on any day."""
    days: list[list[Window]] = [[] for _ in DAYS]
    for group in filter(str.strip, text.lower().split(",")):
        found = _GROUP.match(group)
        if found is None:
            raise HoursError(f"{group.strip()!r} is not a day or days and a time window: "
                             f"{_EXAMPLE}")
        first, last, h1, m1, h2, m2 = found.groups()
        for name in (first, last):
            if name is not None and name not in DAYS:
                raise HoursError(f"{name!r} is not a day ({', '.join(DAYS)})")
        start, end = int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)
        if int(m1) > 59 or int(m2) > 59 or start >= 1440 or end > 1440 or start >= end:
            raise HoursError(f"{group.strip()!r}: a window runs from a time of day to a later "
                             "one, at most 24:00 (it cannot cross midnight)")
        i, j = DAYS.index(first), DAYS.index(last or first)
        for day in range(i, (j if j >= i else j + 7) + 1):
            days[day % 7].append((start, end))
    return tuple(_merged(d) for d in days)


def _merged(windows: list[Window]) -> tuple[Window, ...]:
    out: list[Window] = []
    for start, end in sorted(windows):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def intersect(a: Hours, b: Hours) -> Hours:
    """The times both ``a`` and ``b`` allow."""
    days = []
    for x, y in zip(a, b, strict=True):
        both = [(max(s1, s2), min(e1, e2)) for s1, e1 in x for s2, e2 in y]
        days.append(tuple(w for w in both if w[0] < w[1]))
    return tuple(days)


def spell(hours: Hours) -> str:
    """``hours`` written back as text, days with the same windows grouped."""
    groups: list[tuple[int, int, tuple[Window, ...]]] = []
    for day, windows in enumerate(hours):
        if groups and groups[-1][2] == windows and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, windows)
        else:
            groups.append((day, day, windows))
    parts = []
    for first, last, windows in groups:
        days = DAYS[first] if first == last else f"{DAYS[first]}-{DAYS[last]}"
        parts += [f"{days} {_clock(s)}-{_clock(e)}" for s, e in windows]
    return ", ".join(parts) or "no calling"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class HoursPolicy(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An account's (or a department's) calling hours, compiled."""

    default: Hours
    regions: dict[str, tuple[Hours, str]]
    """By subdivision ('US-FL') or country ('GB'): the windows there and where they come
    from (the account's own, or the state law the shipped table cites)."""
    holidays: frozenset[date]

    def hours_for(self, subdivision: str | None, region: str | None) -> tuple[Hours, str]:
        """The windows for a callee in ``subdivision`` (of a NANP number) or ``region``, and
        where they come from."""
        for key in (subdivision, region):
            if key is not None:
                found = self.regions.get(key)
                if found is not None:
                    return found
        return self.default, "the account's calling hours"


def compile_hours(
    windows: str, regions: Mapping[str, str], holidays: tuple[date, ...],
    state_rules: Mapping[str, tuple[str, str, str]] | None,
) -> HoursPolicy:
    """``windows`` everywhere; ``regions`` in place of them where named; the shipped
    ``state_rules`` (``hours_us.STATES``), when given, narrowing the windows of each state
    the account does not name itself."""
    default = parse_hours(windows)
    compiled: dict[str, tuple[Hours, str]] = {}
    for key, (state, _, source) in (state_rules or {}).items():
        country = key.split("-")[0]  # the account's windows for the country, if it has some
        base = parse_hours(regions[country]) if country in regions else default
        compiled[key] = (intersect(base, parse_hours(state)),
                         f"the account's calling hours within {key}'s law ({source})")
    for key, spec in regions.items():
        compiled[key] = (parse_hours(spec), f"the account's calling hours for {key}")
    return HoursPolicy(default=default, regions=compiled, holidays=frozenset(holidays))
