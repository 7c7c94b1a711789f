"""Logs: JSON lines (or plain text) on stderr, with the request they belong to.

Each line is one object: ``time`` (RFC 3339, UTC, ms), ``level``, ``logger``, ``message``,
``request_id`` when the line was written while answering a request that carried an
``X-Request-Id`` (or one the server gave it), ``pid``, then the fields the call site passed
as ``extra={"fields": {...}}``, and ``error`` with the traceback of an exception.

What is logged: at ``info``, start-up, configuration reloads, every admin write (actor,
action, target) and what went wrong, with its context; at ``debug``, also every decision
(HTTP and SIP: user, destination, outcome, rule or reason, call id, time taken). A request
too broken to parse is one ``warning`` line at most every 10 s (``MalformedRequests``).
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["REQUEST_ID", "JsonFormatter", "MalformedRequests", "configure", "request_id_from"]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "callgate_request_id", default=None)
"""The id of the request being answered, for every line logged while answering it."""

_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_encoder = msgspec.json.Encoder()


def request_id_from(header: str | None) -> str | None:
    """A caller's ``X-Request-Id``, if it is one we can repeat safely in logs and headers
    (up to 128 printable characters of a plain set); None otherwise."""
    if header is None or _ACCEPTED_ID.fullmatch(header) is None:
        return None
    return header


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds, fraction = divmod(record.created, 1)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            + f".{int(fraction * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = REQUEST_ID.get()
        fields = getattr(record, "fields", None)
        extras = [f"request_id={request_id}"] if request_id is not None else []
        if isinstance(fields, dict):
            extras += [f"{k}={v}" for k, v in fields.items()]
        return f"{text} {' '.join(extras)}" if extras else text


def _problem(error: BaseException) -> str:
    """What the parser said was wrong, on one line: aiohttp's message spreads the offending
    bytes and a caret under them over several."""
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in str(text).splitlines()]
    said = " ".join(line for line in lines if line.strip("^ "))
    return said if len(said) <= 200 else said[:199] + "…"


class MalformedRequests(logging.Filter):
    """aiohttp's log of a request its parser refused, cut down to one warning line, at most
    one every ``interval_s``.

    aiohttp answers a request it cannot parse (a bad request line, header or chunk, one over
    its size limits) with a plain-text 400 itself, and logs it on ``aiohttp.server`` at error
    with the parser's traceback. Anyone who can reach the port can write those lines, and they
    say nothing about callgate, so this filter (on that logger) rewrites the record: level
    warning, message ``malformed HTTP request``, fields ``peer`` (aiohttp's one argument),
    ``problem`` (the parser's message, on one line) and ``suppressed`` (how many it left out
    since the line before), no traceback. Within ``interval_s`` of a line it lets through, it
    drops the rest and counts them.

    A logging filter rather than a change to the server: aiohttp gives no hook for its parse
    errors (the handler that answers them runs before any route or middleware), and the
    ``logger`` it takes is per runner, outside the logging set-up. The records are recognised
    by their exception, an ``HttpProcessingError``, not by their text. Anything else on the
    logger passes unchanged: an error of ours (a traceback we want), and aiohttp's debug
    lines (it logs non-HTTP bytes at a connection's start, TLS to a plain port, at debug)."""

    def __init__(self, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._clock = clock
        self._quiet_until_s = -math.inf
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError) or record.levelno < logging.WARNING:
            return True
        now_s = self._clock()
        if now_s < self._quiet_until_s:
            self._suppressed += 1
            return False
        args = record.args if isinstance(record.args, tuple) else ()
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.msg, record.args = "malformed HTTP request", ()
        record.exc_info, record.exc_text = None, None
        record.fields = {"peer": str(args[0]) if args else None, "problem": _problem(error),
                         "suppressed": self._suppressed}
        self._quiet_until_s = now_s + self.interval_s
        self._suppressed = 0
        return True


def configure(level: str, fmt: str) -> None:
    """Log at ``level`` in ``fmt`` (``json`` or ``text``) to stderr, replacing any earlier
    set-up (a worker process calls it again)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter(
            f"%(asctime)s %(levelname)s %(name)s[{os.getpid()}]: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())  # one of settings.LOG_LEVELS: logging knows them by name
    server_log = logging.getLogger("aiohttp.server")
    for earlier in [f for f in server_log.filters if isinstance(f, MalformedRequests)]:
        server_log.removeFilter(earlier)
    server_log.addFilter(MalformedRequests())
