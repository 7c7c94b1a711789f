"""Throwaway Redis servers for the tests: a single server, a 3-master cluster, a primary with
a replica and three Sentinels. Each listens on 127.0.0.1 on a free port, keeps its files in a
temporary directory and is killed when the test (or session) ends; never the machine's own
Redis on 6379."""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(cluster_bus: bool = False) -> int:
    """A free port; with ``cluster_bus``, one whose +10000 (the cluster bus) is free too, so
    both are below 65536: below the kernel's ephemeral range, picked at random."""
    if not cluster_bus:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    for _ in range(1000):
        port = random.randrange(20000, 30000)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def cli(port: int, *args: str, timeout: float = 10.0) -> str:
    done = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=timeout,
    )
    return done.stdout.strip()


class RedisServer:
    """One ``redis-server`` process. ``restart`` starts it again on the same port and files."""

    def __init__(self, directory: Path, *args: str, port: int | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(cluster_bus="--cluster-enabled" in args)
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--save", "", "--protected-mode", "no",
             "--logfile", str(self.dir / "redis.log"), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited: {log}")
            if cli(self.port, "PING") == "PONG":
                return self
            time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not answer")

    def cli(self, *args: str) -> str:
        return cli(self.port, *args)

    def kill(self) -> None:
        """``kill -9``: nothing is flushed beyond what Redis already wrote."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()


class RedisClusterNodes:
    """A Redis Cluster of three masters (and ``replicas`` replicas of each), created with
    ``redis-cli --cluster create``."""

    def __init__(self, directory: Path, replicas: int = 0) -> None:
        self.replicas = replicas
        self.nodes = [
            RedisServer(directory / f"node{i}", "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
            for i in range(3 * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}?cluster=yes"

    def start(self) -> RedisClusterNodes:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        done = subprocess.run(
            [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas",
             str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in self.nodes) and (
                not self.replicas or all(
                    "master_link_status:up" in n.cli("INFO", "replication")
                    for n in self.nodes if "role:slave" in n.cli("INFO", "replication")
                )
            ):
                return self
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def master_of(self, key: str) -> RedisServer:
        """The live master serving ``key``'s slot now, as it says itself."""
        live = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        slot = int(live[0].cli("CLUSTER", "KEYSLOT", key))
        for node in live:
            me = node.cli("CLUSTER", "MYID")
            for fields in (line.split() for line in node.cli("CLUSTER", "NODES").splitlines()):
                if (fields[0] == me and "master" in fields[2]
                        and any(_covers(r, slot) for r in fields[8:])):
                    return node
        raise RuntimeError(f"no live master serves slot {slot}")

    def flush(self) -> None:
        for node in self.nodes:
            node.cli("FLUSHALL")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


class SentinelGroup:
    """A primary, one replica and three Sentinels watching them as ``mymaster`` (quorum 2,
    a primary is down after 1 s without answers)."""

    MASTER = "mymaster"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.primary = RedisServer(directory / "primary")
        self.replica = RedisServer(
            directory / "replica", "--replicaof", "127.0.0.1", str(self.primary.port)
        )
        self.ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis://{hosts}?sentinel={self.MASTER}"

    def start(self) -> SentinelGroup:
        self.primary.start()
        self.replica.start()
        _wait(lambda: "master_link_status:up" in self.replica.cli("INFO", "replication"),
              "the replica did not sync")
        for i, port in enumerate(self.ports):
            home = self.dir / f"sentinel{i}"
            home.mkdir(parents=True, exist_ok=True)
            conf = home / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {home}\n"
                f"logfile {home / 'sentinel.log'}\n"
                f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                f"sentinel failover-timeout {self.MASTER} 5000\n"
                f"sentinel parallel-syncs {self.MASTER} 1\n"
            )
            self.sentinels.append(subprocess.Popen(
                [REDIS_SERVER, str(conf), "--sentinel"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        for port in self.ports:
            def ready(port: int = port) -> bool:
                reply = cli(port, "SENTINEL", "MASTER", self.MASTER)
                return (_field(reply, "num-other-sentinels") == "2"
                        and _field(reply, "num-slaves") == "1")

            _wait(ready, "the Sentinels did not find each other and the replica")
        return self

    def primary_port(self) -> int:
        """The port of the primary as the Sentinels name it now."""
        reply = cli(self.ports[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.MASTER)
        return int(reply.split()[1])

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        self.primary.kill()
        self.replica.kill()


def _covers(slots: str, slot: int) -> bool:
    """Whether a ``CLUSTER NODES`` slot field (``5461`` or ``0-5460``) covers ``slot``."""
    if slots.startswith("["):
        return False  # a slot being migrated
    first, _, last = slots.partition("-")
    return int(first) <= slot <= int(last or first)


def _field(reply: str, name: str) -> str | None:
    """A field of a ``SENTINEL MASTER`` reply (name and value on alternate lines)."""
    lines = reply.splitlines()
    for i in range(0, len(lines) - 1):
        if lines[i] == name:
            return lines[i + 1]
    return None


def _wait(check: Callable[[], bool], failure: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(failure)
