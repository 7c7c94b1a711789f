"""``callgate loadtest``'s options: ``add_arguments`` defines them, ``plan_from`` reads and
checks them into a ``Plan`` (the ``Loop``, the rate, the users, the destinations, ...), and
``read_destinations`` reads a ``--destinations`` file. A bad value is one
``ConfigurationError`` that names the option."""

from __future__ import annotations

import argparse
import enum
import math
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from ..errors import ConfigurationError
from ..numbers import SUPPORTED_REGIONS

__all__ = ["Loop", "Plan", "add_arguments", "plan_from", "read_destinations"]

_DEFAULT_URL = "http://127.0.0.1:8080"


class Loop(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A load test's settings, checked (``plan_from``)."""

    url: str
    token: str
    loop: Loop
    rate: float | None
    """Requests per second (open loop); None for the closed loop."""
    duration_s: float
    warmup_s: float
    concurrency: int
    users: tuple[str, ...] | None
    """None: the token's own user (a user's token)."""
    destinations_file: Path | None
    regions: tuple[str, ...] | None
    """None: the account's plan countries when the token may read them, else US."""
    repeat_share: float
    hold_s: float
    end_calls: bool
    timeout_s: float
    max_errors_pct: float
    seed: int | None
    json: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every ``callgate loadtest`` option to ``parser``. Values stay text: ``plan_from``
    reads and checks them, so a bad one is one ``ConfigurationError`` line."""
    add = parser.add_argument
    add("--url", metavar="URL",
        help=f"base URL of a callgate server (env CALLGATE_URL; default {_DEFAULT_URL})")
    add("--token", metavar="TOKEN",
        help="a service token, or a user's token (dials as that user only) (env CALLGATE_TOKEN)")
    add("--rate", metavar="N",
        help="open loop: N dials per second at fixed intervals, timed from each scheduled time")
    add("--max", action="store_true",
        help="closed loop: as fast as --concurrency connections allow")
    add("--duration", metavar="S", default="10", help="measured seconds (default 10)")
    add("--warmup", metavar="S", default="1",
        help="seconds sent first and left out of the figures (default 1)")
    add("--concurrency", metavar="N", default="32", help="connections (default 32)")
    add("--users", metavar="A,B,...",
        help="user ids to dial as, picked at random per dial (default with a user's token: "
        "its user; required with a service token)")
    add("--destinations", metavar="FILE",
        help="numbers to dial, one a line, in turn (default: generated valid numbers)")
    add("--region", metavar="R[,R...]",
        help="regions of the generated numbers (default: the account's plan countries when "
        "the token may read the account, else US)")
    add("--repeat-share", metavar="F",
        help="share of generated dials to a number dialled already (default 0.3)")
    add("--hold", metavar="S", default="0",
        help="end each allowed call S seconds after its answer, outcome answered (default 0)")
    add("--no-end", action="store_true", help="never end the allowed calls")
    add("--timeout", metavar="S", default="5", help="per-request timeout (default 5)")
    add("--max-errors", metavar="P%", default="1%",
        help="exit status 1 when more than P%% of the requests fail (default 1%%)")
    add("--seed", metavar="N", help="seed of the users' and numbers' choice (default random)")
    add("--json", action="store_true", help="print the report as JSON instead of the table")


def _number(flag: str, raw: str, what: str, low: float, high: float,
            *, low_open: bool = False) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (low < value if low_open else low <= value) or not value <= high:
        bound = f"over {low:,g}" if low_open else f"from {low:,g}"
        raise ConfigurationError(f"{flag}: expected {what} {bound} to {int(high):,}, "
                                 f"got {raw!r}")
    return value


def _whole(flag: str, raw: str, what: str, low: int, high: int) -> int:
    value = _number(flag, raw, what, low, high)
    if not value.is_integer():
        raise ConfigurationError(f"{flag}: expected a whole number of {what}, got {raw!r}")
    return int(value)


def _listed(flag: str, raw: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    if not items:
        raise ConfigurationError(f"{flag}: expected a comma-separated list, got {raw!r}")
    return items


def plan_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Plan:
    """The checked settings of ``args`` (from ``add_arguments``), with ``CALLGATE_URL`` and
    ``CALLGATE_TOKEN`` from ``environ``; ``ConfigurationError`` names the first bad one."""
    url = (args.url or environ.get("CALLGATE_URL") or _DEFAULT_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"--url: expected http://HOST[:PORT], got {url!r}")
    token = args.token or environ.get("CALLGATE_TOKEN") or ""
    if not token:
        raise ConfigurationError("--token (or CALLGATE_TOKEN) is needed: a service token or "
                                 "a user's token of the account to load")
    if (args.rate is None) == (not args.max):
        raise ConfigurationError("give --rate N (open loop) or --max (closed loop), not "
                                 + ("both" if args.max else "neither"))
    rate = None if args.max else _number("--rate", args.rate, "requests per second", 0, 1e6,
                                         low_open=True)
    regions = None
    if args.region is not None:
        regions = tuple(r.upper() for r in _listed("--region", args.region))
        for region in regions:
            if region not in SUPPORTED_REGIONS or region == "001":
                raise ConfigurationError(f"--region: {region!r} is not an ISO region "
                                         "phonenumbers knows (US, GB, FR, ...)")
    file = None if args.destinations is None else Path(args.destinations)
    if file is not None and (regions is not None or args.repeat_share is not None):
        flag = "--region" if regions is not None else "--repeat-share"
        raise ConfigurationError(f"{flag} is for generated numbers; --destinations dials "
                                 "the file's numbers in turn")
    repeat = 0.3 if args.repeat_share is None else _number(
        "--repeat-share", args.repeat_share, "a share", 0, 1)
    hold = _number("--hold", args.hold, "seconds", 0, 86_400)
    if args.no_end and hold > 0:
        raise ConfigurationError("--hold is how long before a call is ended; --no-end ends "
                                 "none: give one of them")
    max_errors = args.max_errors.strip()
    seed = None
    if args.seed is not None:
        try:
            seed = int(args.seed)
        except ValueError:
            raise ConfigurationError(f"--seed: expected an integer, got {args.seed!r}") from None
    return Plan(
        url=url, token=token, loop=Loop.CLOSED if args.max else Loop.OPEN, rate=rate,
        duration_s=_number("--duration", args.duration, "seconds", 0, 1e6, low_open=True),
        warmup_s=_number("--warmup", args.warmup, "seconds", 0, 3600),
        concurrency=_whole("--concurrency", args.concurrency, "connections", 1, 10_000),
        users=None if args.users is None else _listed("--users", args.users),
        destinations_file=file, regions=regions, repeat_share=repeat, hold_s=hold,
        end_calls=not args.no_end,
        timeout_s=_number("--timeout", args.timeout, "seconds", 0, 3600, low_open=True),
        max_errors_pct=_number("--max-errors", max_errors.removesuffix("%"), "a percentage",
                               0, 100),
        seed=seed, json=bool(args.json),
    )


def read_destinations(text: str, source: str) -> tuple[str, ...]:
    """The numbers of a ``--destinations`` file: one a line, blank lines and ``#`` comments
    skipped, sent as written (the server normalises them)."""
    numbers = tuple(s for line in text.splitlines() if (s := line.split("#")[0].strip()))
    if not numbers:
        raise ConfigurationError(f"--destinations {source}: no number in it")
    return numbers
