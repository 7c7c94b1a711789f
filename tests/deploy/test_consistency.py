"""Across deploy/ (Kamailio's file aside): every CALLGATE_* variable, flag, callgate command
and HTTP path the files name exists in callgate, as callgate itself reports it."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CALLGATE, free_port
from tests.redis_support import RedisServer

from .conftest import Live
from .support import OTHER_TOOLS_FLAGS, callgate_command_lines, deploy_files

FILES = deploy_files()
HTTP_PATH = re.compile(r"(?:(GET|POST|PUT|PATCH|DELETE) )?(?<![\w.])"
                       r"(/(?:healthz|metrics|v1|admin/v1)(?:/[\w{}.-]*)*)")


def ids(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("path", FILES, ids=ids)
def test_every_callgate_variable_is_a_setting(path: Path, env_names: set[str]) -> None:
    named = set(re.findall(r"\bCALLGATE_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
    assert named - env_names == set()


@pytest.mark.parametrize("path", FILES, ids=ids)
def test_every_flag_is_callgates_or_another_tools(
    path: Path, commands: dict[tuple[str, ...], set[str]]
) -> None:
    ours = set().union(*commands.values())
    theirs = set().union(*OTHER_TOOLS_FLAGS.values())
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9.-]*[a-z0-9]", path.read_text()))
    assert named - ours - theirs == set()


@pytest.mark.parametrize("path", FILES, ids=ids)
def test_every_callgate_command_exists_with_its_flags(
    path: Path, commands: dict[tuple[str, ...], set[str]]
) -> None:
    for words, flags in callgate_command_lines(path.read_text()):
        command: tuple[str, ...] = ()
        for word in words:  # the subcommands; what follows them are its arguments
            if (*command, word) not in commands:
                break
            command = (*command, word)
        assert command, f"`callgate {' '.join(words)}`: no such command"
        assert not any(other[:-1] == command for other in commands), (
            f"`callgate {' '.join(command)}` needs a subcommand")
        assert set(flags) - commands[command] == set(), f"callgate {' '.join(command)}"


def test_command_lines_are_found() -> None:
    """The reader above sees the commands the files show (or it would check nothing)."""
    found = {tuple(w) for p in FILES for w, _ in callgate_command_lines(p.read_text())}
    assert {("serve",), ("config", "show"), ("bootstrap", "acme")} <= found


@pytest.mark.parametrize("path", FILES, ids=ids)
def test_every_http_path_is_served(path: Path, live: Live) -> None:
    for method, route in HTTP_PATH.findall(path.read_text()):
        status = live.get(re.sub(r"\{\w+\}", "x", route), method or "GET")
        assert status not in (404, 405), f"{method or 'GET'} {route}: {status}"


class Deployed:
    """`callgate serve` with nothing but the CALLGATE_* variables of one deployment, on this
    machine: its addresses moved to loopback and free ports, its store to a throwaway one."""

    def __init__(self, environ: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        sip_port = free_port()
        local = {"CALLGATE_HOST": "127.0.0.1", "CALLGATE_PORT": str(self.port),
                 "CALLGATE_SIP": f"127.0.0.1:{sip_port}"}
        if "CALLGATE_DATA" in environ:
            local["CALLGATE_DATA"] = str(cwd / "data")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLGATE_")}
        self.process = subprocess.Popen(
            [str(CALLGATE), "serve"], cwd=cwd, env={**clean, **environ, **local},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith("Stop with Ctrl-C"):
                self.ready.set()
        self.ready.set()

    def status(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def _deployments() -> dict[str, dict[str, str]]:
    from . import test_compose, test_kubernetes, test_systemd

    return {"compose": test_compose.environment(), "kubernetes": test_kubernetes.environment(),
            "systemd": test_systemd.env_file()}


@pytest.mark.parametrize("deployment", sorted(_deployments()))
def test_deployed_settings_serve(deployment: str, tmp_path: Path, request: pytest.FixtureRequest
                                 ) -> None:
    """Each deployment's settings start a server that answers its probes and /metrics:
    compose and Kubernetes on a real Redis, systemd on the embedded store."""
    environ = _deployments()[deployment]
    if "CALLGATE_REDIS_URL" in environ:
        redis: RedisServer = request.getfixturevalue("redis_server")
        environ = {**environ, "CALLGATE_REDIS_URL": redis.url}
    server = Deployed(environ, tmp_path)
    try:
        assert server.ready.wait(20) and server.process.poll() is None, "".join(server.output)
        assert [server.status(p) for p in ("/healthz", "/healthz/live", "/metrics")] == [
            200, 200, 200]
    finally:
        server.kill()
