"""Typed values from client input: msgspec's own errors read once into a place, and turned
into the problem a client is answered with, naming the field."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest

from engine.errors import InvalidField, MalformedRequest
from engine.validation import (
    ANY_KEY,
    Location,
    Step,
    convert,
    decode,
    locate,
    parse_json,
    path_text,
)
from engine.wire import DialRequest

Small = Annotated[int, msgspec.Meta(ge=0)]


class Rule(msgspec.Struct, forbid_unknown_fields=True):
    number: str
    codes: list[Small] = []


class Geo(msgspec.Struct, forbid_unknown_fields=True):
    default: str | None = None
    rules: list[Rule] = []


class Body(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""
    limit: Small = 0
    geo: Geo = msgspec.field(default_factory=Geo)
    members: list[str] = []
    tags: dict[str, Small] = {}


def _refused(value: Any) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as refused:
        msgspec.convert(value, Body)
    return refused.value


PLACES: list[tuple[str, Any, Location, str | None]] = [
    ("top-level field", {"limit": -1}, Location(path=("limit",)), "limit"),
    ("nested field", {"geo": {"default": 1}}, Location(path=("geo", "default")), "geo.default"),
    ("array item", {"members": ["a", 2]}, Location(path=("members", 1)), "members"),
    ("field of an array item", {"geo": {"rules": [{"number": "1", "codes": [-1]}]}},
     Location(path=("geo", "rules", 0, "codes", 0)), "geo.rules"),
    ("mapping value", {"tags": {"a": -1}}, Location(path=("tags", ANY_KEY)), "tags"),
    ("unknown field", {"x": 1}, Location(named="x"), "x"),
    ("unknown nested field", {"geo": {"x": 1}}, Location(path=("geo",), named="x"), "x"),
    ("missing nested field", {"geo": {"rules": [{}]}},
     Location(path=("geo", "rules", 0), named="number"), "number"),
    ("the top itself", [], Location(), None),
]


@pytest.mark.parametrize(("value", "place", "field"), [p[1:] for p in PLACES],
                         ids=[p[0] for p in PLACES])
def test_msgspec_says_where_a_value_failed_and_the_problem_names_that_field(
    value: Any, place: Location, field: str | None
) -> None:
    assert locate(_refused(value)) == place
    assert place.request_field == field


@pytest.mark.parametrize(("path", "text"), [
    ((), ""), (("limit",), "limit"), (("geo", "rules", 0, "codes", 1), "geo.rules[0].codes[1]"),
    ((3, "name"), "[3].name"), (("tags", ANY_KEY), "tags[...]"),
], ids=repr)
def test_a_path_is_written_as_msgspec_writes_it(path: tuple[Step, ...], text: str) -> None:
    assert path_text(path) == text


def test_a_path_read_from_a_message_is_written_back_as_it_was() -> None:
    error = _refused({"geo": {"rules": [{"number": "1"}, {"number": "2", "codes": [0, -1]}]}})
    path = locate(error).path
    assert path is not None
    assert str(error).endswith(f" - at `$.{path_text(path)}`")


_dial_decoder = msgspec.json.Decoder(DialRequest)


def test_a_body_that_fits_is_decoded() -> None:
    dial = decode(_dial_decoder, b'{"user": "ana", "to": "212 555 0187"}')
    assert dial == DialRequest(user="ana", to="212 555 0187")


@pytest.mark.parametrize(("body", "field", "names"), [
    (b'{"user": 1, "to": "2125550187"}', "user", "Expected `str`, got `int`"),
    (b'{"user": "ana"}', "to", "missing required field `to`"),
    (b'{"user": "ana", "to": "1", "x": 1}', "x", "unknown field `x`"),
    (b'{"user": "ana", "to": ""}', "to", "length >= 1"),
    (b'[]', None, "Expected `object`, got `array`"),
], ids=["wrong type", "missing", "unknown", "constraint", "not an object"])
def test_a_body_that_does_not_fit_is_an_invalid_field_naming_it(
    body: bytes, field: str | None, names: str
) -> None:
    with pytest.raises(InvalidField, match=names) as refused:
        decode(_dial_decoder, body)
    assert refused.value.field == field


@pytest.mark.parametrize("body", [b'{"user": "ana"', b"", b"nope"], ids=repr)
def test_a_body_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedRequest, match=r"^the body is not valid JSON: "):
        decode(_dial_decoder, body)
    with pytest.raises(MalformedRequest, match=r"^the body is not valid JSON: "):
        parse_json(body)


def test_parsed_json_is_plain_values() -> None:
    assert parse_json(b'{"a": [1, 2.0, null]}') == {"a": [1, 2.0, None]}


def test_a_query_string_converts_numbers_from_text_only_when_not_strict() -> None:
    assert convert({"limit": "3"}, Body, strict=False).limit == 3
    with pytest.raises(InvalidField, match="Expected `int`, got `str`") as refused:
        convert({"limit": "3"}, Body)
    assert refused.value.field == "limit"


@pytest.mark.parametrize(("to", "fits"), [
    ("+1 (212) 555-0187", True), ("", False), ("1" * 64, True), ("1" * 65, False),
    ("alice", False), ("212\n", False),
], ids=["separators", "empty", "at the limit", "over the limit", "no digits", "line feed"])
def test_a_destination_converted_from_fields_has_the_limits_a_decoded_one_has(
    to: str, fits: bool
) -> None:
    """The SIP front end builds its ``DialRequest`` through ``convert``: the destination is
    held to the same type as the decision API's."""
    fields = {"user": "ana", "to": to}
    if fits:
        assert convert(fields, DialRequest).to == to
        return
    with pytest.raises(InvalidField) as refused:
        convert(fields, DialRequest)
    assert refused.value.field == "to"
    with pytest.raises(InvalidField):
        decode(_dial_decoder, msgspec.json.encode(fields))
