"""The admin API refuses what it cannot read unambiguously, changing nothing: a query
parameter given twice (422, naming it) on every operation, with or without a query schema,
and a body not declared JSON (415) on every operation that takes one."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from admin_api import PREFIX
from admin_api.app import OPERATIONS, openapi_document

from .support import Reply, World, refused

WITH_A_BODY = [op for op in OPERATIONS if op.body is not None]
PATH_VALUES = {"user_id": "ann", "department_id": "staff", "group_id": "east",
               "number": "%2B12125550111", "token_id": "no-such-token"}


async def send(world: World, method: str, path: str, body: bytes | None = None,
               content_type: str | None = None, who: str = "olivia") -> Reply:
    """One request as ``who`` with exactly the Content-Type given (None: no Content-Type
    header at all, which aiohttp would otherwise add for a body)."""
    headers = {"Authorization": f"Bearer {world.tokens[who]}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with world.session.request(
        method, world.base + PREFIX + path, data=body, headers=headers,
        skip_auto_headers=() if content_type is not None else ("Content-Type",),
    ) as response:
        raw = await response.read()
        decoded: Any = msgspec.json.decode(raw) if "json" in response.content_type else raw
        return Reply(response.status, decoded, response.headers)


# -- a query parameter given twice -----------------------------------------------------------


async def test_a_repeated_parameter_of_a_query_schema_is_a_422_naming_it(world: World) -> None:
    reply = await send(world, "GET", "/audit?actor=user:ann&actor=user:bob")

    await refused(world, reply, 422, "actor", await world.version())
    assert "`actor` is given 2 times" in reply.body["detail"]


async def test_a_list_refuses_a_repeated_parameter(world: World) -> None:
    reply = await send(world, "GET", "/users?limit=1&limit=2")

    await refused(world, reply, 422, "limit", await world.version())


async def test_an_operation_without_a_query_schema_refuses_a_repeated_parameter(
    world: World,
) -> None:
    reply = await send(world, "GET", "/account?x=1&x=2")

    await refused(world, reply, 422, "x", await world.version())


async def test_a_write_with_a_repeated_parameter_changes_nothing(world: World) -> None:
    version = await world.version()

    reply = await send(world, "PATCH", "/users/ann?dry_run=1&dry_run=0",
                       b'{"name": "Ann Again"}', "application/json")

    await refused(world, reply, 422, "dry_run", version)
    assert (await world.api("olivia").get("/users/ann")).body["name"] == "Ann"


async def test_the_openapi_document_refuses_a_repeated_parameter(world: World) -> None:
    reply = await send(world, "GET", "/openapi.json?v=1&v=2")

    assert reply.status == 422 and reply.body["field"] == "v", reply.body


async def test_an_operation_without_a_query_schema_ignores_an_unknown_parameter(
    world: World,
) -> None:
    reply = await send(world, "GET", "/account?x=1")

    assert reply.status == 200 and reply.body["id"] == "acme", reply.body


async def test_an_operation_with_a_query_schema_refuses_an_unknown_parameter(
    world: World,
) -> None:
    reply = await send(world, "GET", "/users?x=1")

    await refused(world, reply, 422, "x", await world.version())


async def test_an_unknown_admin_path_is_a_404_whatever_its_query(world: World) -> None:
    reply = await send(world, "GET", "/nothing-here?x=1&x=2")

    assert reply.status == 404, reply.body


# -- a body not declared JSON ----------------------------------------------------------------


@pytest.mark.parametrize("op", WITH_A_BODY, ids=lambda op: f"{op.method} {op.path}")
async def test_every_operation_with_a_body_refuses_one_not_declared_json(
    world: World, op: Any
) -> None:
    version = await world.version()

    reply = await send(world, op.method, op.path.format(**PATH_VALUES), b"{}", "text/plain")

    await refused(world, reply, 415, "Content-Type", version)
    assert "says Content-Type: text/plain" in reply.body["detail"]
    assert await world.audit() == [], "nothing written to the audit log"


async def test_a_body_without_a_content_type_is_a_415(world: World) -> None:
    version = await world.version()

    reply = await send(world, "POST", "/users", b'{"id": "cy", "email": "cy@acme.example"}')

    await refused(world, reply, 415, "Content-Type", version)
    assert "has no Content-Type" in reply.body["detail"]
    assert (await world.api("olivia").get("/users/cy")).status == 404


async def test_a_form_encoded_body_is_a_415_that_creates_nothing(world: World) -> None:
    version = await world.version()

    reply = await send(world, "POST", "/tokens", b'{"name": "laptop"}',
                       "application/x-www-form-urlencoded")

    await refused(world, reply, 415, "Content-Type", version)
    listed = (await world.api("olivia").get("/tokens")).body["items"]
    assert "laptop" not in {t["name"] for t in listed}


@pytest.mark.parametrize("content_type", ["application/merge-patch+json",
                                          "Application/JSON; charset=UTF-8"])
async def test_json_and_json_suffix_types_are_accepted(world: World, content_type: str) -> None:
    reply = await send(world, "PATCH", "/users/ann", b'{"name": "Ann B"}', content_type)

    assert reply.status == 200 and reply.body["name"] == "Ann B", reply.body


async def test_the_token_is_checked_before_the_content_type(world: World) -> None:
    async with world.session.post(world.base + PREFIX + "/users", data=b"{}",
                                  headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 401


def test_the_openapi_document_lists_415_for_operations_with_a_body_only() -> None:
    paths = msgspec.json.decode(openapi_document())["paths"]
    for op in OPERATIONS:
        responses = paths[PREFIX + op.path][op.method.lower()]["responses"]
        assert ("415" in responses) == (op.body is not None), (op.method, op.path)
