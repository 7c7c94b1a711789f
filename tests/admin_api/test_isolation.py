"""Two accounts: every operation of the OpenAPI document, called with account A's token on
account B's ids, answers 404 (as for an id that does not exist) and changes nothing."""

from __future__ import annotations

import json
import re
from typing import Any

from admin_api import OPERATIONS, PREFIX, openapi_document

from .support import VALID_BODIES, World

B_IDS = {"user_id": "zoe", "department_id": "spare", "group_id": "team",
         "number": "+14155550133", "token_id": None}
"""Ids that exist in account B only (the token id is read from the store)."""

BODIES: dict[str, Any] = VALID_BODIES


def _routes_with_ids() -> list[tuple[str, str, str | None]]:
    document = json.loads(openapi_document())
    out = []
    for path, methods in document["paths"].items():
        if "{" not in path:
            continue
        for method, operation in methods.items():
            body = operation.get("requestBody")
            ref = body["content"]["application/json"]["schema"]["$ref"] if body else None
            out.append((method.upper(), path.removeprefix(PREFIX),
                        ref.rsplit("/", 1)[1] if ref else None))
    return out


def test_the_walk_covers_every_operation_with_an_id() -> None:
    walked = {(m, p) for m, p, _ in _routes_with_ids()}
    assert walked == {(op.method, op.path) for op in OPERATIONS if "{" in op.path}
    assert len(walked) >= 20


async def test_account_a_cannot_reach_account_b_ids(world: World) -> None:
    b_before = await world.config("other")
    b_tokens = await world.store.list_tokens("other")
    ids = dict(B_IDS, token_id=b_tokens[0].id)
    owner = world.api("olivia")  # every permission in account A
    for method, path, body_type in _routes_with_ids():
        if path.startswith("/dnc/"):
            continue  # a number on A's do-not-call list is A's data, whoever's number it is
        concrete = re.sub(r"{(\w+)}", lambda m: str(ids[m.group(1)]).replace("+", "%2B"), path)
        body = BODIES.get(body_type or "") if body_type else None
        reply = await owner.call(method, concrete, body)
        assert reply.status == 404, (method, concrete, reply.status, reply.body)
        assert reply.body["status"] == 404
    assert await world.config("other") == b_before
    assert await world.store.list_tokens("other") == b_tokens
    from engine.store import AuditQuery

    assert (await world.store.audit_log("other", AuditQuery()))[0] == []


async def test_an_id_of_another_account_answers_as_one_that_does_not_exist(world: World) -> None:
    owner = world.api("olivia")
    theirs = await owner.get("/users/zoe")
    nobody = await owner.get("/users/nobody")
    assert theirs.status == nobody.status == 404
    assert theirs.body["title"] == nobody.body["title"]
