"""The admin API's aiohttp application, mounted by ``callgate serve`` under ``/admin/v1``.

Every operation answers with a user's token only (a service token may call the decision API
alone); its errors are ``application/problem+json`` answers from the decision API's single
translator. ``/admin/v1/openapi.json`` and ``/admin/v1/docs`` (Swagger UI, served from the
``swagger-ui-py`` package: nothing is fetched from elsewhere when the page is viewed) need no
token.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from engine.decide import Engine
from engine.errors import Forbidden, NotFound
from engine.http import answer_unrouted, answers_problems, json_body
from engine.service import AccountService
from engine.store import Store
from engine.tokens import TokenCache

from . import account, activity, departments, dnc, groups, numbers, sip, tokens, users
from .context import Call, Operation, encode
from .openapi import PREFIX, document

__all__ = ["OPERATIONS", "PREFIX", "build_admin_app", "openapi_document", "permission_table"]

OPERATIONS: list[Operation] = [
    *account.OPERATIONS,
    *users.OPERATIONS,
    *departments.OPERATIONS,
    *numbers.OPERATIONS,
    *dnc.OPERATIONS,
    *groups.OPERATIONS,
    *tokens.OPERATIONS,
    *sip.OPERATIONS,
    *activity.OPERATIONS,
]

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>callgate admin API</title>
<link rel="stylesheet" href="assets/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="assets/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "../openapi.json", dom_id: "#docs", deepLinking: true,
  docExpansion: "list"});
</script>
</body>
</html>
"""


def _version() -> str:
    try:
        return importlib.metadata.version("callgate")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def permission_table() -> str:
    """The README's table: every operation and the permission it needs."""
    rows = ["| operation | permission |", "|---|---|"]
    for op in OPERATIONS:
        rows.append(f"| `{op.method} {op.path}`: {op.summary} | {op.permission} |")
    return "\n".join(rows) + "\n"


_VERSION = _version()  # read from the package's metadata at import, not in a request


@functools.cache
def openapi_document() -> bytes:
    return encode(document(OPERATIONS, version=_VERSION))


def _swagger_ui() -> Path:
    """Swagger UI's files, found without importing the package (its import scans its own
    modules and loads a template engine: none of which the docs page needs)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("the swagger-ui-py package is missing: reinstall callgate")
    return Path(spec.origin).parent / "static"


_SWAGGER_UI = _swagger_ui()  # at import, before any event loop runs
_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


def _handler(
    operation: Operation, store: Store, service: AccountService, token_cache: TokenCache,
    engine: Engine,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization")
        token = token_cache.cached(header) or await token_cache.authenticate(
            header, request.remote)
        if token.user_id is None:
            raise Forbidden(
                "a service token may call the decision API only: the admin API takes a "
                "user's token"
            )
        if operation.body is not None:
            # Checked here, from the declaration, so that no operation with a body forgets:
            # a body not declared JSON is a 415 before anything is read or changed.
            await json_body(request)
        reply = await operation.handler(
            Call(request, operation, token, service, store, token_cache, engine)
        )
        if reply.body is None:
            return web.Response(status=reply.status, headers=reply.headers)
        return web.Response(
            body=encode(reply.body), status=reply.status, headers=reply.headers,
            content_type="application/json",
        )

    handle.__name__ = operation.operation_id
    return answers_problems(handle)


def build_admin_app(store: Store, engine: Engine, token_cache: TokenCache) -> web.Application:
    """The admin API over ``store``; a change is installed in ``engine`` as it is saved, so
    this process's next decision sees it (other processes reload it from the store)."""
    service = AccountService(store, on_saved=engine.install)
    app = web.Application()
    for operation in OPERATIONS:
        app.router.add_route(
            operation.method, operation.path,
            _handler(operation, store, service, token_cache, engine),
        )

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=openapi_document(), content_type="application/json")

    async def docs(request: web.Request) -> web.Response:
        if not request.path.endswith("/"):
            return web.Response(status=302, headers={"Location": request.path + "/"})
        return web.Response(text=_DOCS_PAGE, content_type="text/html")

    app.router.add_get("/openapi.json", answers_problems(openapi))
    app.router.add_get("/docs", answers_problems(docs))
    app.router.add_get("/docs/", answers_problems(docs))
    assets: dict[str, bytes] = {}

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _ASSETS:
            raise NotFound(f"no docs asset {name!r}", field="name")
        if name not in assets:
            assets[name] = await asyncio.to_thread((_SWAGGER_UI / name).read_bytes)
        return web.Response(body=assets[name], content_type=_ASSETS[name],
                            headers={"Cache-Control": "public, max-age=86400"})

    app.router.add_get("/docs/assets/{name}", answers_problems(asset))
    # [\s\S], not ".": a path may hold an encoded line feed, and it gets our 404 too
    app.router.add_route("*", r"/{path:[\s\S]*}", answers_problems(answer_unrouted, any_query=True))
    return app
