"""Throwaway Redis deployments for the tests: a single server, a 3-master cluster, a primary
with a replica and three Sentinels. Each runs real ``redis-server`` processes on free ports in a
temporary directory (never the machine's 6379, never anybody's data) and is stopped at the end."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

__all__ = ["RedisCluster", "RedisProcess", "RedisSentinels", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int, *args: str, timeout_s: float = 5.0) -> str:
    """One command through ``redis-cli``; its output (empty when the server is not up)."""
    result = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return result.stdout.strip()


class RedisProcess:
    """One ``redis-server`` (or Sentinel) process."""

    def __init__(self, directory: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = directory
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, config: str | None = None, timeout_s: float = 10.0) -> RedisProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = ["redis-server"]
        if config is not None:
            path = self.directory / "redis.conf"
            path.write_text(config)
            command.append(str(path))
        command += [
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--logfile", str(self.directory / "redis.log"), *self.args,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _command(self.port, "PING") == "PONG":
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        log = (self.directory / "redis.log").read_text() if (self.directory / "redis.log").exists() else ""
        raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log[-2000:]}")

    def command(self, *args: str) -> str:
        return _command(self.port, *args)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class RedisCluster:
    """Three masters, no replicas, created with ``redis-cli --cluster create``."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        self.nodes = [
            RedisProcess(
                directory / f"node{i}",
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                "--appendonly", "no",
            )
            for i in range(masters)
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0?cluster=1"

    def start(self, timeout_s: float = 30.0) -> RedisCluster:
        for node in self.nodes:
            node.start()
        subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in n.command("CLUSTER", "INFO") for n in self.nodes):
                return self
            time.sleep(0.1)
        raise RuntimeError("the Redis cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


class RedisSentinels:
    """A primary, one replica and three Sentinels watching them as ``callgate``."""

    NAME = "callgate"

    def __init__(self, directory: Path) -> None:
        self.primary = RedisProcess(directory / "primary", "--appendonly", "yes")
        self.replica = RedisProcess(directory / "replica", "--appendonly", "yes")
        self.sentinels = [RedisProcess(directory / f"sentinel{i}") for i in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.NAME}"

    def start(self) -> RedisSentinels:
        self.primary.start()
        self.replica.start(config=f"replicaof 127.0.0.1 {self.primary.port}\n")
        for sentinel in self.sentinels:
            sentinel.directory.mkdir(parents=True, exist_ok=True)
            config = (
                f"sentinel monitor {self.NAME} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.NAME} 1000\n"
                f"sentinel failover-timeout {self.NAME} 5000\n"
                f"sentinel parallel-syncs {self.NAME} 1\n"
            )
            sentinel.args = ("--sentinel",)
            sentinel.start(config=config)
        return self

    def stop(self) -> None:
        for process in (*self.sentinels, self.replica, self.primary):
            process.kill()
