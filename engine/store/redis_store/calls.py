"""One script call on its way to Redis: the ``EVALSHA`` sent on a pipe, and what becomes of
its reply.

A reply is one of three things: the script's answer, for the caller waiting on the call's
future; an error reply that another try can mend (``NOSCRIPT``: load the script and send it
again; ``MOVED``/``ASK``: send it again to the node now named for the slot); or a failure,
raised to the caller. A caller may stop waiting before its reply comes: the reply is still
read, in its turn on the connection (``connection.py``), and handed to the call's ``late``
handler, which can undo what the script did. A connection that breaks first leaves no reply
at all, and the ``lost`` handler is told instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import hiredis

from . import scripts as S
from .connection import Lost, Pipe, RedisError
from .topology import Node

__all__ = ["ScriptCall"]

_RELOCATED = {"READONLY", "MOVED", "ASK", "CLUSTERDOWN", "MASTERDOWN"}
"""Error replies that say a key is served elsewhere now: the topology is told."""


class _Store(Protocol):
    """What a call needs of its store: a way to tell the topology that a key moved."""

    def _topology_moved(self, reply: RedisError) -> Node | None: ...


class ScriptCall:
    """One script call: sends it, and takes its reply (loading the script where Redis does
    not know it, following a cluster's ``MOVED`` once). ``late`` gets a reply its caller no
    longer waited for; ``lost`` is told when the connection broke before any reply."""

    __slots__ = (
        "args",
        "future",
        "late",
        "lost",
        "pipe",
        "release",
        "retries",
        "script",
        "store",
    )

    def __init__(
        self,
        store: _Store,
        script: S.Script,
        args: tuple[Any, ...],
        release: Callable[[], None] | None,
        late: Callable[[Any], None] | None = None,
        lost: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.script = script
        self.args = args
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.late = late
        self.lost = lost
        self.release = release
        self.retries = 2
        self.pipe: Pipe | None = None

    def send(self, pipe: Pipe) -> None:
        self.pipe = pipe
        pipe.send(hiredis.pack_command(("EVALSHA", self.script.sha, *self.args)), self.on_reply)

    def on_reply(self, reply: Any) -> None:
        if isinstance(reply, RedisError) and reply.kind in _RELOCATED:
            node = self.store._topology_moved(reply)  # told once, retried or not
        else:
            node = None
        if (isinstance(reply, RedisError) and self.retries and self.pipe is not None
                and not self.future.done()):  # a caller gone: nothing was taken, leave it
            self.retries -= 1
            try:
                if reply.kind == "NOSCRIPT":
                    self._load(self.pipe)
                    self.send(self.pipe)
                    return
                pipe = node.dial_pipe() if node is not None else None
                if pipe is not None:  # MOVED/ASK to a node we know: once more, there
                    self.send(pipe)
                    return
            except Lost as exc:
                reply = exc
        if self.release is not None:
            self.release()
            self.release = None
        if self.future.done():
            if isinstance(reply, Lost):
                if self.lost is not None:
                    self.lost()
            elif self.late is not None:
                self.late(reply)
            return
        if isinstance(reply, Exception):
            if isinstance(reply, Lost) and self.lost is not None:
                self.lost()
            self.future.set_exception(reply)
        else:
            self.future.set_result(reply)

    def _load(self, pipe: Pipe) -> None:
        """``SCRIPT LOAD`` once per connection at a time, ahead of the repeated call."""
        loading = pipe.loading
        sha = self.script.sha
        if sha in loading:
            return
        loading.add(sha)
        load: tuple[Any, ...] = ("SCRIPT", "LOAD", self.script.source)
        pipe.send(hiredis.pack_command(load),
                  lambda _: loading.discard(sha))
