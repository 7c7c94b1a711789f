"""Typed values from what a client sends, and what to tell the client when they do not fit.

Every front end turns input into our msgspec types here: the decision API decodes its bodies
(``decode``), the admin API converts its parsed bodies and query strings (``parse_json``,
``convert``), the SIP front end converts the fields of an INVITE into the same ``DialRequest``
the decision API decodes. A value that does not fit its type is an ``InvalidField`` naming the
field; a body that is not JSON is a ``MalformedRequest``.

msgspec says where a value failed only in the text of its error: ``Object missing required
field `to```, or ``Expected `int` >= 1 - at `$.users[3].max_channels```. ``locate`` is the one
place that reads that text; everything else works with the ``Location`` it returns.

Pure: no I/O, no event loop.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from .errors import InvalidField, MalformedRequest

__all__ = [
    "ANY_KEY",
    "Location",
    "Step",
    "convert",
    "decode",
    "invalid",
    "locate",
    "parse_json",
    "path_text",
]

T = TypeVar("T")

Step = str | int
"""One step of a path into a value: a field's name, or a position in an array."""

ANY_KEY = "[...]"
"""The step msgspec gives for a value of a mapping (it does not say which key)."""

# msgspec ends a message with " - at `$<path>`" when the value is below the top (" - at `key`
# in `$<path>`" when it is a mapping's key that failed: the path is the mapping's).
_AT = re.compile(r" - at (?:`key` in )?`\$([^`]*)`$")
# One step of such a path: ".name", "[3]", or "[...]".
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[[^\]]*\]")
# The field a missing-field or unknown-field message names.
_NAMED = re.compile(r"field `([^`]+)`")


class Location(msgspec.Struct, frozen=True, kw_only=True):
    """Where msgspec says a value failed."""

    path: tuple[Step, ...] | None = None
    """The steps from the top of the value to the one that failed; None when the message
    names no place (msgspec says none for the top itself)."""
    named: str | None = None
    """The field a missing-field or unknown-field message names (``to`` in ``Object missing
    required field `to```), which is not a step of ``path``: the path ends at the object."""

    @property
    def request_field(self) -> str | None:
        """The field a problem answer names: the field a message names, else the path's
        leading field names, dotted (``geo.default``; ``members`` for ``members[2]``, as a
        client sends the list whole); None when the path starts at the top or a position."""
        if self.named is not None:
            return self.named
        names: list[str] = []
        for step in self.path or ():
            if not isinstance(step, str) or step == ANY_KEY:
                break
            names.append(step)
        return ".".join(names) or None


def path_text(path: tuple[Step, ...]) -> str:
    """``path`` as msgspec writes it after its ``$``, without the leading dot:
    ``users[3].geo.default``; ``""`` for the top."""
    parts: list[str] = []
    for step in path:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif step == ANY_KEY:
            parts.append(step)
        else:
            parts.append(f".{step}" if parts else step)
    return "".join(parts)


def locate(exc: msgspec.ValidationError) -> Location:
    """Where ``exc`` says its value failed, read from its message."""
    message = str(exc)
    at = _AT.search(message)
    head = message[: at.start()] if at else message
    named = _NAMED.search(head)
    return Location(
        path=None if at is None else _steps(at.group(1)),
        named=named.group(1) if named else None,
    )


def _steps(text: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    for found in _STEP.finditer(text):
        name, index = found.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append(ANY_KEY)
    return tuple(steps)


def invalid(exc: msgspec.ValidationError) -> InvalidField:
    """``exc`` as the problem a client is answered with: msgspec's message, naming the
    field."""
    return InvalidField(str(exc), field=locate(exc).request_field)


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """``body`` decoded by ``decoder`` (built once, for the type it decodes).

    Raises ``InvalidField`` for JSON that does not fit the type, ``MalformedRequest`` for a
    body that is not JSON."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise invalid(exc) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None


def parse_json(body: bytes) -> Any:
    """``body`` as plain JSON values (dicts, lists, str, ...), for a caller that adjusts them
    before ``convert``. Raises ``MalformedRequest`` for a body that is not JSON."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None


def convert(value: Any, kind: type[T], *, strict: bool = True) -> T:
    """``value`` (plain values: a parsed body, a query string's dict, a SIP request's fields)
    as ``kind``, with every constraint of ``kind`` checked; ``strict=False`` reads numbers and
    booleans from strings, as a query string holds them.

    Raises ``InvalidField`` naming the field that does not fit."""
    try:
        return msgspec.convert(value, kind, strict=strict)
    except msgspec.ValidationError as exc:
        raise invalid(exc) from None
