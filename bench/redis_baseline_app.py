"""The Redis ceiling: the least an aiohttp service answering a dial from Redis could do.

``baseline_app``'s handler (decode the small JSON body into a msgspec Struct, encode a small
Struct back, no access log) plus exactly one ``EVALSHA`` per request, of a script doing tiny
work of the same kind as callgate's admission (a ``ZADD`` of the dialled number into a
per-user sorted set, scored by the Redis server's clock, and the set's size back), through
``redis.asyncio`` with hiredis and a blocking pool of 64 connections, as callgate's Redis
store uses. It waits on nothing else: no deadline around the call, no token, no policy. So
callgate's ``/v1/dial`` on the Redis store cannot be faster than this under the same load;
the ratio says what callgate's own work costs beside the round trip every dial must make.

``python -m bench.redis_baseline_app --port P --redis-url redis://127.0.0.1:R [--workers N]``
prints ``Stop with Ctrl-C.`` once listening, as ``callgate serve`` does. ``--workers N`` runs N
processes on one port (``SO_REUSEPORT``) under an idle parent that starts them and passes
SIGTERM on, the shape of ``callgate serve --workers N``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable

import msgspec
import redis.asyncio as aioredis
from aiohttp import web

from .baseline_app import (
    _decoder,  # the same request body as the plain baseline
    serve_until_stopped,
)

__all__ = ["SCRIPT", "build_app", "main"]

POOL_SIZE = 64

SCRIPT = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""


class DialOut(msgspec.Struct):
    allowed: bool
    user: str
    to: str
    held: int


_encoder = msgspec.json.Encoder()
REDIS = web.AppKey("redis", aioredis.Redis)
SHA = web.AppKey("sha", str)


async def dial(request: web.Request) -> web.Response:
    body = _decoder.decode(await request.read())
    held = await request.app[REDIS].evalsha(request.app[SHA], 1, "bl:u:" + body.user, body.to)
    answer = DialOut(allowed=True, user=body.user, to=body.to, held=int(held))
    return web.Response(body=_encoder.encode(answer), content_type="application/json")


def build_app(redis_url: str) -> web.Application:
    app = web.Application()
    app.add_routes([web.post("/v1/dial", dial)])

    async def connect(app: web.Application) -> AsyncIterator[None]:
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=POOL_SIZE)
        client = aioredis.Redis(connection_pool=pool)
        app[REDIS] = client
        app[SHA] = await client.script_load(SCRIPT)
        yield
        await client.aclose()

    app.cleanup_ctx.append(connect)
    return app


async def serve(
    host: str, port: int, redis_url: str, *, reuse_port: bool, ready: Callable[[], None]
) -> None:
    await serve_until_stopped(build_app(redis_url), host, port, reuse_port=reuse_port,
                              ready=ready)


def _banner(host: str, port: int, workers: int) -> None:
    print(f"redis ceiling serving on http://{host}:{port} ({workers} process(es))", flush=True)
    print("Stop with Ctrl-C.", flush=True)


def _worker(
    host: str, port: int, redis_url: str, pipe: multiprocessing.connection.Connection
) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, redis_url, reuse_port=True, ready=lambda: pipe.send("ok")))


def _serve_workers(host: str, port: int, redis_url: str, workers: int) -> None:
    """``workers`` processes on one port; SIGINT or SIGTERM stops them all."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes: list[multiprocessing.process.BaseProcess] = []
    try:
        for _ in range(workers):
            ours, theirs = context.Pipe(duplex=False)
            process = context.Process(target=_worker, args=(host, port, redis_url, theirs))
            process.start()
            theirs.close()
            processes.append(process)
            try:
                started = ours.poll(30) and ours.recv() == "ok"
            except EOFError:
                started = False
            if not started:
                raise RuntimeError("a worker did not start")
        _banner(host, port, workers)
        while not stopping and all(p.is_alive() for p in processes):
            multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0.2)
    finally:
        for worker in processes:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        for worker in processes:
            worker.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description="minimal aiohttp + one EVALSHA ceiling server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.workers > 1:
        _serve_workers(args.host, args.port, args.redis_url, args.workers)
    else:
        asyncio.run(
            serve(args.host, args.port, args.redis_url, reuse_port=False,
                  ready=lambda: _banner(args.host, args.port, 1))
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
