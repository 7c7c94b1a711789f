"""Logs: JSON lines (or plain text) on stderr, with the request they belong to.

Each line is one object: ``time`` (RFC 3339, UTC, ms), ``level``, ``logger``, ``message``,
``request_id`` when the line was written while answering a request that carried an
``X-Request-Id`` (or one the server gave it), ``pid``, then the fields the call site passed
as ``extra={"fields": {...}}``, and ``error`` with the traceback of an exception.

What is logged: at ``info``, start-up, configuration reloads, every admin write (actor,
action, target) and what went wrong, with its context; at ``debug``, also every decision
(HTTP and SIP: user, destination, outcome, rule or reason, call id, time taken).
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import time
from typing import Any

import msgspec

__all__ = ["REQUEST_ID", "JsonFormatter", "configure", "request_id_from"]

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
