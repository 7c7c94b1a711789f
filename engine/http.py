"""The decision HTTP API (aiohttp).

Every route answers its errors itself (``answers_problems``): a ``CallgateError`` becomes its
row of ``errors.HTTP_STATUS``, an aiohttp HTTP error (a body over the limit) keeps its status,
anything else is a 500; a catch-all route answers unknown paths (404) and methods (405). All
as ``application/problem+json`` naming the problem.

What every route refuses before it looks at anything else: a query parameter given twice
(422: of its values, all but one would be lost without a word). Every route that takes a JSON
body reads it through ``json_body``, which refuses a body not declared JSON (415).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callerid import Reason

from .decide import Engine
from .errors import (
    CallgateError,
    Forbidden,
    InvalidField,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    http_status,
)
from .logs import REQUEST_ID, request_id_from
from .metrics import Metrics
from .store import Store, TokenRecord
from .sync import POLL_S, follow, refresh_forever
from .tokens import AuthLimits, TokenCache
from .validation import decode
from .wire import (
    Decision,
    DialRequest,
    EndRequest,
    HeartbeatRequest,
    InboundAnswer,
    InboundRequest,
    Problem,
    SenderRequest,
    TextSender,
)

__all__ = ["BODY_LIMIT_BYTES", "ENGINE", "LIFECYCLE", "STORE", "TOKENS", "Lifecycle",
           "answer_unrouted", "answers_problems", "build_app", "finish", "json_body"]

log = logging.getLogger("callgate.http")

BODY_LIMIT_BYTES = 64 * 1024

ENGINE = web.AppKey("engine", Engine)
STORE = web.AppKey("store", Store)
TOKENS = web.AppKey("tokens", TokenCache)
METRICS = web.AppKey("metrics", Metrics)



class Lifecycle:
    """Whether this process is draining: told to stop (SIGTERM), it still answers, but
    ``/healthz`` says not ready and every answer closes its connection, so load balancers and
    clients move to another process before this one stops listening."""

    def __init__(self) -> None:
        self.draining = False


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encoder = msgspec.json.Encoder()
_dial_decoder = msgspec.json.Decoder(DialRequest)
_end_decoder = msgspec.json.Decoder(EndRequest)
_heartbeat_decoder = msgspec.json.Decoder(HeartbeatRequest)
_sender_decoder = msgspec.json.Decoder(SenderRequest)
_inbound_decoder = msgspec.json.Decoder(InboundRequest)
# application/json or a structured-syntax suffix type (RFC 6839): application/merge-patch+json.
# aiohttp hands the media type over lower-cased, without its parameters (; charset=...).
_JSON_MEDIA_TYPE = re.compile(r"application/(?:[^\s/;]+\+)?json")


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


def _problem_for(request: web.BaseRequest, exc: Exception) -> web.Response:
    """The problem response for an error raised while answering ``request``."""
    if isinstance(exc, CallgateError):
        status = http_status(exc)
        headers = None
        if status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="callgate"'}
        elif isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return problem_response(status, exc.title, exc.detail, exc.field, headers)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        too_large = PayloadTooLarge(f"the body is over the limit of {BODY_LIMIT_BYTES} bytes")
        return _problem_for(request, too_large)
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        passed = {k: v for k in _PASSED_ON if (v := exc.headers.get(k)) is not None}
        return problem_response(exc.status, exc.reason, exc.text or exc.reason, headers=passed)
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return problem_response(500, "Internal error", "callgate failed to answer; see its log")


def finish(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """What every answer gets on its way out: the caller's request id back, and, while the
    process drains, ``Connection: close``."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        response.headers["X-Request-Id"] = request_id
    if request.config_dict[LIFECYCLE].draining:
        response.force_close()
    return response


def _one_value_each(request: web.Request) -> None:
    """Refuse a query parameter given more than once (422, naming it), whether or not the
    route reads that parameter: which of its values counts would be a guess."""
    query = request.query
    for name in query:
        given = len(query.getall(name))
        if given > 1:
            raise InvalidField(
                f"query parameter `{name}` is given {given} times; give it once", field=name)


def answers_problems(handler: Handler, *, any_query: bool = False) -> Handler:
    """``handler``, with every error it raises answered as a problem, and its log lines
    carrying the request's ``X-Request-Id``; a repeated query parameter is refused before it
    runs, unless ``any_query`` (the catch-all: an unknown path is a 404 whatever its query).
    A wrapper per route rather than a middleware: aiohttp runs each middleware as two more
    coroutines a request."""

    @functools.wraps(handler)
    async def answered(request: web.Request) -> web.StreamResponse:
        REQUEST_ID.set(request_id_from(request.headers.get("X-Request-Id")))
        try:
            if request.query_string and not any_query:
                _one_value_each(request)
            response = await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            response = _problem_for(request, exc)
        return finish(request, response)

    return answered


async def answer_unrouted(request: web.Request) -> web.Response:
    """Every request no route takes: 405 (with ``Allow``) on a known path, else 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        methods = ", ".join(sorted(allowed))
        return problem_response(
            405,
            "Method Not Allowed",
            f"{request.method} is not allowed on {request.path}; allowed: {methods}",
            headers={"Allow": methods},
        )
    return problem_response(404, "Not Found", f"no such endpoint: {request.method} {request.path}")


async def json_body(request: web.Request) -> bytes:
    """The request's body, once its ``Content-Type`` says JSON: ``application/json`` or an
    ``application/*+json`` type, in any case, with any parameters. Any other type, or none,
    is refused with ``UnsupportedMediaType`` (415) and nothing done. RFC 9110 (section 8.3)
    lets a server guess the type of a body sent without one; we do not, as curl without
    ``-H`` labels its body form-urlencoded and a client that mislabels JSON is better told.
    An empty body needs no type (a heartbeat's is optional). A body over the limit raises
    aiohttp's 413 first."""
    body = await request.read()
    if body and _JSON_MEDIA_TYPE.fullmatch(request.content_type) is None:
        sent = request.headers.get("Content-Type")
        said = "has no Content-Type" if sent is None else f"says Content-Type: {sent}"
        raise UnsupportedMediaType(
            f"the body must be JSON, sent with Content-Type: application/json (or an "
            f"application/*+json type); this request {said}",
            field="Content-Type",
        )
    return body


async def _token(request: web.Request) -> TokenRecord:
    """The caller's token; a user's token only while the user exists (one left behind by a
    user an import removed is refused like a revoked one)."""
    tokens, header = request.app[TOKENS], request.headers.get("Authorization")
    token = tokens.cached(header) or await tokens.authenticate(header, request.remote)
    if token.user_id is not None:
        account = request.app[ENGINE].account(token.account_id)
        if account is None or token.user_id not in account.users:
            raise Unauthorized(f"the user of this token, {token.user_id!r}, no longer exists")
    return token


def _dialling_as(token: TokenRecord, body: DialRequest | SenderRequest | InboundRequest) -> str:
    """The account a dial (or a text) is for. A service token dials as any user of its
    account; a user's token only as that user."""
    if token.user_id is not None and body.user != token.user_id:
        raise Forbidden(
            f"this token belongs to user {token.user_id!r}: it dials as that user only",
            field="user",
        )
    return token.account_id


def _decided(answer: Decision | TextSender | InboundAnswer) -> web.Response:
    """An answer is a 200, allowed or denied; ``store_unavailable`` is the one 503."""
    return _json(answer, 503 if answer.reason is Reason.STORE_UNAVAILABLE else 200)


async def dial(request: web.Request) -> web.Response:
    token = await _token(request)
    body = decode(_dial_decoder, await json_body(request))
    return _decided(await request.app[ENGINE].dial(_dialling_as(token, body), body))


async def explain(request: web.Request) -> web.Response:
    token = await _token(request)
    body = decode(_dial_decoder, await json_body(request))
    return _json(await request.app[ENGINE].explain(_dialling_as(token, body), body))


async def text_sender(request: web.Request) -> web.Response:
    token = await _token(request)
    body = decode(_sender_decoder, await json_body(request))
    return _decided(await request.app[ENGINE].text_sender(_dialling_as(token, body), body))


async def inbound(request: web.Request) -> web.Response:
    token = await _token(request)
    body = decode(_inbound_decoder, await json_body(request))
    return _decided(await request.app[ENGINE].inbound(_dialling_as(token, body), body))


async def end(request: web.Request) -> web.Response:
    token = await _token(request)
    body = decode(_end_decoder, await json_body(request))
    result = await request.app[ENGINE].end(
        token.account_id, request.match_info["call_id"], body.outcome, token.user_id
    )
    return _json(result)


async def heartbeat(request: web.Request) -> web.Response:
    token = await _token(request)
    decode(_heartbeat_decoder, await json_body(request) or b"{}")
    return _json(await request.app[ENGINE].heartbeat(
        token.account_id, request.match_info["call_id"], token.user_id
    ))


async def healthz(request: web.Request) -> web.Response:
    """Readiness: 200 while this process should get traffic; 503 while its store cannot be
    used or it is draining before it stops."""
    accounts = len(request.app[ENGINE].versions())
    if request.app[LIFECYCLE].draining:
        return _json({"status": "draining", "accounts": accounts}, 503)
    if not request.app[STORE].healthy:
        return _json({"status": "unavailable", "accounts": accounts}, 503)
    return _json({"status": "ok", "accounts": accounts})


async def alive(request: web.Request) -> web.Response:
    """Liveness: 200 as long as the event loop answers (a store outage is not a reason to
    restart the process: it recovers by itself)."""
    return _json({"status": "alive"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _background(poll_s: float) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        store, engine, tokens = app[STORE], app[ENGINE], app[TOKENS]
        tasks = [
            asyncio.create_task(refresh_forever(store, engine, poll_s=poll_s, tokens=tokens),
                                name="config-poll"),
            asyncio.create_task(follow(store, engine, tokens.forget), name="config-follow"),
            asyncio.create_task(tokens.keep_fresh(), name="token-recheck"),
        ]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.settle()  # automatic rests in flight, before the store closes

    return run


def build_app(
    store: Store,
    engine: Engine,
    metrics_: Metrics,
    *,
    poll_s: float = POLL_S,
    mount: Callable[[web.Application], None] | None = None,
    lifecycle: Lifecycle | None = None,
    auth_limits: AuthLimits = AuthLimits(),
) -> web.Application:
    """The decision API; ``mount`` adds more to it (the admin API) before the route that
    answers every path nothing else takes."""
    app = web.Application(client_max_size=BODY_LIMIT_BYTES)
    app[STORE] = store
    app[ENGINE] = engine
    tokens = app[TOKENS] = TokenCache(store, limits=auth_limits)
    app[METRICS] = metrics_
    metrics_.http_throttled = lambda: tokens.refused
    app[LIFECYCLE] = lifecycle or Lifecycle()
    app.add_routes(
        [
            web.post("/v1/dial", answers_problems(dial)),
            web.post("/v1/explain", answers_problems(explain)),
            web.post("/v1/sms/sender", answers_problems(text_sender)),
            web.post("/v1/inbound", answers_problems(inbound)),
            web.post("/v1/calls/{call_id}/end", answers_problems(end)),
            web.post("/v1/calls/{call_id}/heartbeat", answers_problems(heartbeat)),
            web.get("/healthz", answers_problems(healthz)),
            web.get("/healthz/live", answers_problems(alive)),
            web.get("/metrics", answers_problems(metrics)),
        ]
    )
    if mount is not None:
        mount(app)
    # last: what no route above takes
    # [\s\S], not ".": a path may hold an encoded line feed, and it gets our 404 too
    app.router.add_route("*", r"/{path:[\s\S]*}", answers_problems(answer_unrouted, any_query=True))
    app.cleanup_ctx.append(_background(poll_s))
    return app
