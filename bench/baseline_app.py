"""The HTTP baseline: the least an aiohttp service answering a dial could do.

One POST handler on the same path as callgate's (``/v1/dial``), so one wrk script drives both:
it decodes the small JSON body into a msgspec Struct and encodes a small Struct back. No
access log, like ``callgate serve``. Run it as ``python -m bench.baseline_app --port P``; it
prints ``Stop with Ctrl-C.`` once it is listening, as ``callgate serve`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable

import msgspec
from aiohttp import web

__all__ = ["build_app", "main", "serve_until_stopped"]


class DialIn(msgspec.Struct):
    user: str
    to: str


class DialOut(msgspec.Struct):
    allowed: bool
    user: str
    to: str


_decoder = msgspec.json.Decoder(DialIn)
_encoder = msgspec.json.Encoder()


async def dial(request: web.Request) -> web.Response:
    body = _decoder.decode(await request.read())
    answer = DialOut(allowed=True, user=body.user, to=body.to)
    return web.Response(body=_encoder.encode(answer), content_type="application/json")


def build_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.post("/v1/dial", dial)])
    return app


async def serve(host: str, port: int) -> None:
    await serve_until_stopped(build_app(), host, port, reuse_port=False,
                              ready=lambda: _banner(host, port))


def _banner(host: str, port: int) -> None:
    print(f"baseline serving on http://{host}:{port}", flush=True)
    print("Stop with Ctrl-C.", flush=True)


async def serve_until_stopped(
    app: web.Application, host: str, port: int, *, reuse_port: bool, ready: Callable[[], None]
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, calling ``ready`` once it listens: both
    baselines run this way, as ``callgate serve`` does, so that the figures compare the
    handlers alone."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        ready()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="minimal aiohttp + msgspec baseline server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
