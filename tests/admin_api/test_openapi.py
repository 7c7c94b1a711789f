"""The OpenAPI document states what the server takes: for each constraint a client could
check before sending, the document (read by a JSON Schema validator, as clients and
schemathesis read it) and the server give the same answer, and a refused request changes
nothing. Integers may be written with a zero fraction (``2.0``), as JSON Schema allows."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest

from admin_api.app import openapi_document
from engine import configfile

from .support import World, refused

WEST = "+13105550122"
"""One of acme's numbers."""
DOCUMENT = json.loads(openapi_document())


def _valid(component: str, value: Any) -> bool:
    """Whether the document's schema ``component`` takes ``value``, formats included."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": DOCUMENT["components"]}
    return bool(jsonschema_rs.Draft202012Validator(schema, validate_formats=True).is_valid(value))


def _component_pattern(component: str, field: str) -> str:
    schema = DOCUMENT["components"]["schemas"][component]["properties"][field]
    return next(p for p in _patterns(schema))


def _parameter(path: str, method: str, name: str) -> dict[str, Any]:
    operation = DOCUMENT["paths"][f"/admin/v1{path}"][method]
    return next(p for p in operation["parameters"] if p["name"] == name)


def _parameter_takes(path: str, method: str, name: str, value: str) -> bool:
    schema = _parameter(path, method, name)["schema"]
    return bool(jsonschema_rs.Draft202012Validator(schema, validate_formats=True).is_valid(value))


# -- integers ------------------------------------------------------------------------------------


async def test_an_integer_written_with_a_zero_fraction_is_that_integer(world: World) -> None:
    reply = await world.api("olivia").patch("/account",
                                            {"sticky_ttl_days": 225.0, "max_channels": 3.0})

    assert reply.status == 200, reply.body
    config, _ = await world.config()
    assert (config.sticky_ttl_days, config.max_channels) == (225, 3)
    assert _valid("AccountPatch", {"sticky_ttl_days": 225.0})


async def test_a_nested_integer_may_have_a_zero_fraction_too(world: World) -> None:
    reply = await world.api("olivia").put("/users/ann/geo", {"area_codes": [
        {"number": WEST, "area_codes": ["212"], "country_code": 1.0}]})

    assert reply.status == 200, reply.body
    config, _ = await world.config()
    ann = next(u for u in config.users if u.id == "ann")
    assert ann.geo.area_codes[0].country_code == 1


async def test_a_number_with_a_fraction_is_no_integer(world: World) -> None:
    version = await world.version()

    reply = await world.api("olivia").patch("/account", {"sticky_ttl_days": 225.5})

    await refused(world, reply, 422, "sticky_ttl_days", version)
    assert not _valid("AccountPatch", {"sticky_ttl_days": 225.5})


# -- If-Match ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["", "\t"], ids=["empty", "blank"])
def test_the_document_declares_that_if_match_names_a_tag(sent: str) -> None:
    assert not _parameter_takes("/account", "patch", "If-Match", sent)
    assert _parameter_takes("/account", "patch", "If-Match", '"abc"')
    assert _parameter_takes("/account", "patch", "If-Match", "*")


async def test_an_empty_if_match_is_refused_as_invalid_not_as_stale(world: World) -> None:
    version = await world.version()

    reply = await world.api("olivia").patch("/account", {"name": "Acme Inc"},
                                            headers={"If-Match": ""})

    await refused(world, reply, 422, "If-Match", version)
    assert "If-Match is empty" in reply.body["detail"]


async def test_an_empty_if_match_on_what_does_not_exist_yet_is_refused_as_invalid(
    world: World,
) -> None:
    await world.api("olivia").patch("/account", {"sip_domain": "acme.sip.example"})
    version = await world.version()

    reply = await world.api("olivia").put("/users/ann/sip", {"username": "ann"},
                                          headers={"If-Match": ""})

    await refused(world, reply, 422, "If-Match", version)


# -- the rules over several fields ---------------------------------------------------------------


@pytest.mark.parametrize(("rule", "takes"), [
    ({"number": WEST, "region": "CA"}, True),
    ({"number": WEST, "calling_code": 44}, True),
    ({"number": WEST, "region": None, "calling_code": 44}, True),
    ({"number": WEST}, False),
    ({"number": WEST, "region": None, "calling_code": None}, False),
    ({"number": WEST, "region": "CA", "calling_code": 44}, False),
], ids=["region", "calling-code", "calling-code-and-null-region", "neither", "both-null",
        "both"])
async def test_a_country_rule_names_one_country_by_the_document_and_the_server(
    world: World, rule: dict[str, Any], takes: bool,
) -> None:
    version = await world.version()

    reply = await world.api("olivia").put("/users/ann/geo", {"countries": [rule]})

    assert _valid("GeoConfig", {"countries": [rule]}) is takes
    if takes:
        assert reply.status == 200, reply.body
    else:
        await refused(world, reply, 422, "countries", version)


@pytest.mark.parametrize(("codes", "takes"), [(["212"], True), ([], False)],
                         ids=["one", "none"])
async def test_an_area_code_rule_has_an_area_code_by_the_document_and_the_server(
    world: World, codes: list[str], takes: bool,
) -> None:
    geo = {"area_codes": [{"number": WEST, "area_codes": codes}]}
    version = await world.version()

    reply = await world.api("olivia").put("/users/ann/geo", geo)

    assert _valid("GeoConfig", geo) is takes
    if takes:
        assert reply.status == 200, reply.body
    else:
        await refused(world, reply, 422, "area_codes", version)


@pytest.mark.parametrize(("given", "takes"), [
    ({"template": "staff"}, True),
    ({"permissions": ["usage.view"]}, True),
    ({"permissions": [], "template": "staff"}, True),
    ({"permissions": ["usage.view"], "template": None}, True),
    ({"permissions": ["usage.view"], "template": "staff"}, False),
], ids=["template", "permissions", "no-permissions-and-template", "permissions-and-null",
        "both"])
async def test_a_new_department_has_permissions_or_a_template_by_the_document_and_the_server(
    world: World, given: dict[str, Any], takes: bool,
) -> None:
    body = {"id": "night", "name": "Night", **given}
    version = await world.version()

    reply = await world.api("olivia").post("/departments", body)

    assert _valid("DepartmentCreate", body) is takes
    if takes:
        assert reply.status == 201, reply.body
    else:
        await refused(world, reply, 422, "template", version)


# -- patterns ------------------------------------------------------------------------------------


def _patterns(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        own = [schema["pattern"]] if isinstance(schema.get("pattern"), str) else []
        return own + [p for v in schema.values() for p in _patterns(v)]
    if isinstance(schema, list):
        return [p for v in schema for p in _patterns(v)]
    return []


_SHORTHAND = re.compile(r"(?<!\\)(?:\\\\)*\\[sSdDwWbB]")
"""A character class shorthand: Python and ECMA regex give ``\\s``, ``\\d``, ``\\w`` and
``\\b`` different meanings (over Unicode, or not), so a value may pass one and not the other."""


@pytest.mark.parametrize("document", ["openapi", "account-files"])
def test_no_pattern_uses_a_class_shorthand_whose_meaning_differs_between_engines(
    document: str,
) -> None:
    schema = DOCUMENT if document == "openapi" else configfile.json_schema()

    found = [p for p in _patterns(schema) if _SHORTHAND.search(p)]

    assert _patterns(schema) and not found


def test_an_email_excludes_what_python_takes_for_white_space_and_no_more() -> None:
    # Emails stored while the pattern said ``[^@\s]`` must still be read.
    pattern = re.compile(_component_pattern("UserPatch", "email"))

    refused = {chr(c) for c in range(0x10000) if not pattern.search(f"a{chr(c)}b@acme.example")}

    assert refused == {chr(c) for c in range(0x10000) if chr(c).isspace() or chr(c) == "@"}


@pytest.mark.parametrize(("email", "takes"), [
    ("ann@acme.example", True),
    ("ann\ufeff@acme.example", True),
    ("ann\x85@acme.example", False),
    ("ann\x1c@acme.example", False),
    ("ann\u00a0@acme.example", False),
    ("an n@acme.example", False),
    ("ann@@acme.example", False),
], ids=["plain", "bom", "next-line", "file-separator", "no-break-space", "space", "two-ats"])
async def test_an_email_is_taken_by_the_document_and_the_server_alike(
    world: World, email: str, takes: bool,
) -> None:
    version = await world.version()

    reply = await world.api("olivia").patch("/users/ann", {"email": email})

    assert _valid("UserPatch", {"email": email}) is takes
    if takes:
        assert reply.status == 200, reply.body
    else:
        await refused(world, reply, 422, "email", version)


# -- query parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(("since", "takes"), [
    ("2024-01-01T00:00:00Z", True),
    ("2024-01-01T09:30:00.250+02:00", True),
    ("", False),
    ("0", False),
    ("2024-01-01t00:00:00z", False),
    ("2024-01-01T00:00:00", False),
    ("2024-02-30T00:00:00Z", False),
], ids=["utc", "offset", "empty", "digit", "lower-case", "no-time-zone", "no-such-day"])
async def test_an_audit_time_is_taken_by_the_document_and_the_server_alike(
    world: World, since: str, takes: bool,
) -> None:
    reply = await world.api("olivia").get("/audit", params={"since": since})

    assert _parameter_takes("/audit", "get", "since", since) is takes
    assert _parameter_takes("/audit", "get", "until", since) is takes
    if takes:
        assert reply.status == 200, reply.body
    else:
        assert reply.status == 422 and reply.body["field"] == "since", reply.body


@pytest.mark.parametrize("document", ["openapi", "account file"])
def test_every_pattern_ends_where_the_value_ends_in_both_engines(document: str) -> None:
    """In Python a pattern's ``$`` also matches before a final line feed (so ``"ann\\n"`` was
    an id), in ECMA only at the end: every anchored pattern says ``$(?!\\n)``, which both
    read alike."""
    schema = DOCUMENT if document == "openapi" else configfile.json_schema()

    loose = [p for p in _patterns(schema) if p.endswith("$")]

    assert _patterns(schema) and not loose


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/users", {"id": "nina\n", "email": "nina@acme.example"}, "id"),
    ("/users", {"id": "nina", "email": "nina@acme.example\n"}, "email"),
    ("/numbers", {"number": "+12125550177\n"}, "number"),
])
async def test_a_value_with_a_trailing_line_feed_is_refused(
    world: World, path: str, body: dict[str, Any], field: str
) -> None:
    version = await world.version()
    reply = await world.api("olivia").post(path, body)
    await refused(world, reply, 422, field, version)
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": r"^[a-z]+$(?!\n)"})
    assert validator.is_valid("nina") and not validator.is_valid("nina\n")
