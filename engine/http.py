"""The decision HTTP API (aiohttp).

One middleware translates errors: a ``CallgateError`` becomes its row of
``errors.HTTP_STATUS``, an aiohttp HTTP error (unknown route, body over the limit) keeps its
status, anything else is a 500; all as ``application/problem+json`` naming the problem.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callerid import Reason

from .decide import Engine
from .errors import (
    CallgateError,
    InvalidField,
    MalformedRequest,
    PayloadTooLarge,
    http_status,
)
from .metrics import Metrics
from .store import Store
from .sync import refresh_forever
from .tokens import TokenCache
from .wire import DialRequest, EndRequest, HeartbeatRequest, Problem

__all__ = ["BODY_LIMIT_BYTES", "ENGINE", "STORE", "TOKENS", "build_app"]

log = logging.getLogger("callgate.http")

BODY_LIMIT_BYTES = 64 * 1024

ENGINE = web.AppKey("engine", Engine)
STORE = web.AppKey("store", Store)
TOKENS = web.AppKey("tokens", TokenCache)
METRICS = web.AppKey("metrics", Metrics)

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encoder = msgspec.json.Encoder()
_dial_decoder = msgspec.json.Decoder(DialRequest)
_end_decoder = msgspec.json.Decoder(EndRequest)
_heartbeat_decoder = msgspec.json.Decoder(HeartbeatRequest)
_FIELD = re.compile(r"at `\$\.([A-Za-z_][\w.]*)|field `([^`]+)`")


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(value), status=status, content_type="application/json")


def problem_response(
    status: int,
    title: str,
    detail: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = Problem(title=title, status=status, detail=detail, field=field)
    return web.Response(
        body=_encoder.encode(body),
        status=status,
        content_type="application/problem+json",
        headers=headers,
    )


# Headers an error status requires (RFC 9110): how to authenticate, which methods exist.
_PASSED_ON = ("Allow", "WWW-Authenticate")


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CallgateError as exc:
        status = http_status(exc)
        headers = {"WWW-Authenticate": 'Bearer realm="callgate"'} if status == 401 else None
        return problem_response(status, exc.title, exc.detail, exc.field, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        passed = {k: v for k in _PASSED_ON if (v := exc.headers.get(k)) is not None}
        if exc.status == 404:
            detail = f"no such endpoint: {request.method} {request.path}"
        elif exc.status == 405:
            detail = f"{request.method} is not allowed on {request.path}; allowed: {passed.get('Allow', '')}"
        else:
            detail = exc.text or exc.reason
        return problem_response(exc.status, exc.reason, detail, headers=passed)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "Internal error", "callgate failed to answer; see its log")


def _decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        found = _FIELD.search(str(exc))
        field = (found.group(1) or found.group(2)) if found else None
        raise InvalidField(str(exc), field=field) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None


async def _body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"the body is over the limit of {BODY_LIMIT_BYTES} bytes", field=None
        ) from None


async def _account(request: web.Request) -> str:
    tokens, header = request.app[TOKENS], request.headers.get("Authorization")
    return tokens.cached(header) or await tokens.account_for(header)


async def dial(request: web.Request) -> web.Response:
    account = await _account(request)
    body = _decode(_dial_decoder, await _body(request))
    decision = await request.app[ENGINE].dial(account, body)
    return _json(decision, 503 if decision.reason is Reason.STORE_UNAVAILABLE else 200)


async def explain(request: web.Request) -> web.Response:
    account = await _account(request)
    body = _decode(_dial_decoder, await _body(request))
    return _json(await request.app[ENGINE].explain(account, body))


async def end(request: web.Request) -> web.Response:
    account = await _account(request)
    body = _decode(_end_decoder, await _body(request))
    result = await request.app[ENGINE].end(account, request.match_info["call_id"], body.outcome)
    return _json(result)


async def heartbeat(request: web.Request) -> web.Response:
    account = await _account(request)
    _decode(_heartbeat_decoder, await _body(request) or b"{}")
    return _json(await request.app[ENGINE].heartbeat(account, request.match_info["call_id"]))


async def healthz(request: web.Request) -> web.Response:
    accounts = len(request.app[ENGINE].versions())
    if not request.app[STORE].healthy:
        return _json({"status": "unavailable", "accounts": accounts}, 503)
    return _json({"status": "ok", "accounts": accounts})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _background(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(refresh_forever(app[STORE], app[ENGINE]))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def build_app(store: Store, engine: Engine, metrics_: Metrics) -> web.Application:
    app = web.Application(middlewares=[problems], client_max_size=BODY_LIMIT_BYTES)
    app[STORE] = store
    app[ENGINE] = engine
    app[TOKENS] = TokenCache(store)
    app[METRICS] = metrics_
    app.add_routes(
        [
            web.post("/v1/dial", dial),
            web.post("/v1/explain", explain),
            web.post("/v1/calls/{call_id}/end", end),
            web.post("/v1/calls/{call_id}/heartbeat", heartbeat),
            web.get("/healthz", healthz),
            web.get("/metrics", metrics),
        ]
    )
    app.cleanup_ctx.append(_background)
    return app
