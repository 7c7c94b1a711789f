"""``callgate serve`` as ``make run`` starts it: the banner's curl command gets an allowed
decision, and start-up problems are one clear line, not a traceback."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import CALLGATE, DEMO, NO_DRAIN, Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One demo server for the tests that only read its banner or take its port."""
    served = Server(tmp_path_factory.mktemp("serve") / "data").start()
    yield served
    served.kill()


def test_banner_curl_command_gets_an_allowed_decision(server: Server) -> None:
    text = "".join(server.banner)
    command = text[text.index("  curl -s") :].split("Stop with")[0].replace("\\\n", " ")
    result = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=10)
    answer = json.loads(result.stdout)
    assert answer["allowed"] is True and answer["rule"] == "user_default"


def test_restart_keeps_data_and_prints_a_new_token(tmp_path: Path) -> None:
    first = Server(tmp_path / "data", args=NO_DRAIN).start()
    first.stop()
    second = Server(tmp_path / "data").start()
    try:
        assert second.token and second.token != first.token
        assert not any("imported the demo account" in line for line in second.banner)
    finally:
        second.kill()


def test_port_in_use_is_one_clear_line(server: Server, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CALLGATE), "serve", "--data", str(tmp_path / "other"), "--port", str(server.port),
         "--demo", str(DEMO)],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert f"--port {server.port}: cannot listen there" in result.stderr
    assert "Traceback" not in result.stderr
