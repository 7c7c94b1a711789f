"""Shared fixtures: the demo account, an open embedded store, an engine over it, and a real
``callgate serve`` subprocess on a free port."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path

import msgspec
import pytest
from blockbuster import blockbuster_ctx

from callerid import AccountConfig
from callgate import PACKAGES
from callgate.assembly import assemble
from engine import configfile
from engine.days import load_zones
from engine.decide import Engine
from engine.numbers import load_metadata
from engine.service import AccountService
from engine.store import EmbeddedStore

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.toml"
CALLGATE = Path(sys.executable).parent / "callgate"
NO_DRAIN = ("--drain", "0")
"""Serve options for a server whose test is not about draining: SIGTERM stops it at once,
instead of after the default 5 s drain."""

load_metadata()
load_zones()



@pytest.fixture(autouse=True)
def no_blocking_on_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail an async test whose code under test blocks the event loop (file or socket I/O,
    sleeps, SQLite) from inside callgate's own packages."""
    if not asyncio.iscoroutinefunction(getattr(request.node, "function", None)):
        yield
        return
    with blockbuster_ctx(list(PACKAGES)):
        yield


def demo_config() -> AccountConfig:
    return configfile.decode(DEMO.read_bytes(), "toml", source=str(DEMO))


_E164 = re.compile(rb'"\+(\d{8,15})"')


def another_account(config: AccountConfig, account_id: str, index: int) -> AccountConfig:
    """``config`` as account ``account_id`` with phone numbers of its own: a number belongs
    to one account at a time, so N accounts made from one file (``index`` 0 to 4,999) get
    N sets of numbers, every reference following. A +1 number keeps its area code and gets an
    exchange and a first line digit of ``index``'s; any other keeps all but its last four
    digits, which become 5000 + ``index``."""
    exchange, digit = _EXCHANGES[index % len(_EXCHANGES)], b"%d" % (index // len(_EXCHANGES))

    def renumber(match: re.Match[bytes]) -> bytes:
        digits = match.group(1)
        if len(digits) == 11 and digits.startswith(b"1"):
            digits = digits[:4] + exchange + digit + digits[8:]
        else:
            digits = digits[:-4] + b"%04d" % (5000 + index)  # the demo's end in 0xxx
        return b'"+' + digits + b'"'

    blob = _E164.sub(renumber, configfile.encode(config, "json"))
    return msgspec.structs.replace(configfile.decode(blob, "json", source=account_id),
                                   id=account_id, sip_domain=None)


_EXCHANGES = [f"{n:03d}".encode() for n in range(201, 1000)
              if n % 100 != 11 and n not in (555, 950, 958, 959, 976)]
"""NANP exchange codes phonenumbers takes as valid for any area code of the demo (not N11,
not the 555 the demo's own numbers use)."""


@pytest.fixture
def demo() -> AccountConfig:
    return demo_config()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "data", exclusive=True)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def engine(store: EmbeddedStore, demo: AccountConfig) -> Engine:
    """The engine of a process assembled as ``callgate serve`` assembles it, over ``store``,
    with the demo account saved."""
    parts = assemble(store)
    await parts.service.put(demo)
    return parts.engine


@pytest.fixture
async def service(store: EmbeddedStore, engine: Engine) -> AccountService:
    return AccountService(store, on_saved=engine.install)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A ``callgate serve`` subprocess, by default on the embedded store with the demo account.
    ``args`` are added to the command line (``--redis-url ...``); without ``demo`` the caller
    sets ``token``."""

    def __init__(
        self,
        data_dir: Path,
        demo: Path | None = DEMO,
        *,
        args: Sequence[str] = (),
        token: str = "",
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.demo = demo
        self.args = tuple(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.banner: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 20.0) -> Server:
        return self.spawn().wait_ready(timeout_s)

    def spawn(self) -> Server:
        """Start the process without waiting for it (``wait_ready`` does)."""
        demo = ["--demo", str(self.demo)] if self.demo is not None else []
        self.process = subprocess.Popen(
            [
                str(CALLGATE),
                "serve",
                "--data",
                str(self.data_dir),
                "--port",
                str(self.port),
                *demo,
                *self.args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "CALLGATE_DETECT_BLOCKING": "1"},
        )
        self.output: list[str] = []
        """Everything the process printed (its log included), read by a thread so that a
        chatty server never blocks on a full pipe."""
        self._ready = threading.Event()
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
        return self

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            found = re.search(r"token \(shown once per start\): (cg_\S+)", line)
            if found:
                self.token = found.group(1)
            if line.startswith("Stop with Ctrl-C"):
                self.banner = list(self.output)
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout_s: float = 20.0) -> Server:
        self._ready.wait(timeout_s)
        if not self.banner:
            self.kill()
            raise RuntimeError("callgate serve did not start:\n" + "".join(self.output))
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def kill(self) -> None:
        """``kill -9``: no chance to flush or clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM, without waiting: the server drains (``--drain``), then exits. Once only:
        a second SIGTERM would cut the drain short."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float = 10.0) -> int:
        """Until the process has exited; its exit status."""
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> int:
        """A graceful stop: SIGTERM, and wait for the exit (after the drain); the status."""
        self.terminate()
        return self.wait()


def stop_all(servers: Iterable[Server]) -> list[int]:
    """Stop several servers side by side: SIGTERM to every one first, then wait for each, so
    they drain at the same time (n servers take one drain, not n). Their exit statuses, in
    order."""
    stopping = list(servers)
    for server in stopping:
        server.terminate()
    return [server.wait() for server in stopping]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "server-data").start()
    yield srv
    srv.kill()


def write_account(path: Path, config: AccountConfig) -> Path:
    path.write_bytes(configfile.encode(config, "toml"))
    return path


def replace(struct: msgspec.Struct, **changes: object) -> msgspec.Struct:
    return msgspec.structs.replace(struct, **changes)


from .redis_support_fixtures import redis_cluster, redis_server  # noqa: E402,F401  (fixtures)
