"""Several ``callgate serve`` processes on one throwaway Redis, set up the way an operator
would: the account imported and a token created with the CLI, then the servers started with
``--redis-url``."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from callerid import AccountConfig
from tests.conftest import CALLGATE, NO_DRAIN, Server, stop_all, write_account

from ..redis_support import RedisServer


def callgate(*args: str, timeout: float = 30.0) -> str:
    """Run a ``callgate`` command, which must succeed; what it printed."""
    done = subprocess.run([str(CALLGATE), *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Fleet:
    def __init__(self, root: Path, redis: RedisServer, *, url: str | None = None) -> None:
        self.root = root
        self.redis = redis
        self.url = url or redis.url
        self.token = ""
        self.servers: list[Server] = []

    def put(self, config: AccountConfig) -> None:
        """``callgate import`` of ``config`` (create or replace), as an operator would."""
        name = f"{config.id}-{len(list(self.root.iterdir()))}.toml"
        path = write_account(self.root / name, config)
        callgate("import", "--redis-url", self.url, str(path))

    def setup(self, config: AccountConfig) -> Fleet:
        self.put(config)
        self.token = callgate("token", "create", config.id, "--redis-url", self.url).strip()
        return self

    def start(self, count: int, *args: str) -> list[Server]:
        """``count`` servers on their own ports, started together, without a drain (``args``
        may ask for one)."""
        fresh = [
            Server(self.root / f"unused-{len(self.servers) + i}", demo=None, token=self.token,
                   args=["--redis-url", self.url, *NO_DRAIN, *args]).spawn()
            for i in range(count)
        ]
        for server in fresh:
            server.wait_ready()
        self.servers += fresh
        return fresh

    def close(self) -> None:
        stop_all(self.servers)  # SIGTERM: a --workers parent stops its workers too


def leases(redis: RedisServer, account: str = "demo", users: Sequence[str] = ()) -> dict[str, int]:
    """Leases held in Redis now: the account's and each user's (expired ones included, until a
    dial of the account gives them back)."""
    held = {"account": int(redis.cli("ZCARD", f"cg:{{{account}}}:channels"))}
    for user in users:
        held[user] = int(redis.cli("HGET", f"cg:{{{account}}}:held", user) or 0)
    return held
