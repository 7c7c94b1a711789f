"""The OpenAPI 3.1 document of the admin API, generated from the operations and their msgspec
Structs (msgspec writes JSON Schema 2020-12, the dialect OpenAPI 3.1 uses)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from engine.wire import Problem

from .context import Operation

__all__ = ["PREFIX", "document"]

PREFIX = "/admin/v1"
_PATH_PARAM = re.compile(r"{(\w+)}")
_REF = "#/components/schemas/{name}"

_ERRORS = {
    "400": "The request cannot be read: a body that is not JSON, or a request line or "
           "headers over the server's limits (8190 bytes each)",
    "401": "No token, or an unknown or revoked one",
    "403": "The token may not do this (a service token, or a permission missing)",
    "404": "No such resource in the token's account",
    "409": "The change conflicts with the account (a duplicate id, a rule of the domain)",
    "412": "If-Match names a version other than the resource's",
    "413": "The body is too large",
    "415": "The body is not declared JSON: send `Content-Type: application/json` (or an "
           "`application/*+json` type)",
    "422": "A field, a query parameter or `If-Match` is invalid, or a query parameter is "
           "given more than once; `field` names it",
    "429": "Too many failed authentications from this address, or with this token: "
           "`Retry-After` says when to try again (a token the server knows is never refused)",
    "503": "The store did not answer in time",
}
_PATH_DESCRIPTIONS = {
    "user_id": "A user's id",
    "department_id": "A department's id",
    "group_id": "A group's id",
    "number": "A phone number in E.164 form (+ may be sent as %2B)",
    "token_id": "A token's id, as listed",
}


def _query_parameters(kind: type, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    (_,), components = msgspec.json.schema_components([kind], ref_template=_REF)
    struct = components[kind.__name__]
    out = []
    for name, schema in struct["properties"].items():
        schema = dict(schema)
        description = schema.pop("description", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": False,
                                 "schema": schema}
        if description:
            param["description"] = description
        out.append(param)
    for name, schema in components.items():
        if name != kind.__name__:
            schemas.setdefault(name, schema)
    return out


def document(operations: Sequence[Operation], *, version: str) -> dict[str, Any]:
    types: list[Any] = [Problem]
    for op in operations:
        types += [t for t in (op.body, op.response) if t is not None]
    refs, schemas = msgspec.json.schema_components(types, ref_template=_REF)
    for kind in types:
        # A rule over several fields, which msgspec cannot state (``DepartmentCreate``'s).
        extra = getattr(kind, "json_schema_extra", None)
        if extra:
            schemas[kind.__name__].update(extra)
    ref_of = dict(zip(map(repr, types), refs, strict=True))
    problem = ref_of[repr(Problem)]
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True,
             "description": _PATH_DESCRIPTIONS.get(name, name),
             "schema": {"type": "string", "minLength": 1}}
            for name in _PATH_PARAM.findall(op.path)
        ]
        if op.query is not None:
            parameters += _query_parameters(op.query, schemas)
        if op.conditional:
            parameters.append({
                "name": "If-Match", "in": "header", "required": False,
                "description": "The ETag read with the resource: the write fails with 412 "
                               "if the resource changed since",
                # Not empty nor blank: an empty list of tags is refused (422), not a 412.
                "schema": {"type": "string", "minLength": 1, "pattern": "[^ \t]"},
            })
        ok: dict[str, Any] = {"description": "Done"}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": ref_of[repr(op.response)]}}
            if op.conditional or "{" in op.path or op.status == 201:
                ok["headers"] = {"ETag": {"schema": {"type": "string"},
                                          "description": "The resource's version"}}
        responses: dict[str, Any] = {str(op.status): ok}
        for status, text in _ERRORS.items():
            if status == "412" and not op.conditional:
                continue
            if status in ("413", "415") and op.body is None:
                continue
            content: dict[str, Any] = {"application/problem+json": {"schema": problem}}
            if status == "400":
                # A request aiohttp's parser cannot take (a request line over its limit) is
                # refused before any handler runs, in plain text.
                content["text/plain"] = {"schema": {"type": "string"}}
            responses[status] = {"description": text, "content": content}
            if status == "429":
                responses[status]["headers"] = {"Retry-After": {
                    "schema": {"type": "integer", "minimum": 1},
                    "description": "Seconds to wait before trying again"}}
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "description": f"Permission: {op.permission}.",
            "tags": [op.tag],
            "parameters": parameters,
            "responses": responses,
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref_of[repr(op.body)]}},
            }
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callgate admin API",
            "version": version,
            "description": "Configure an account: users, departments, numbers, groups, "
                           "permissions, tokens; read the audit log and the live channels. "
                           "Every request carries a user's token: `Authorization: Bearer "
                           "<token>`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
