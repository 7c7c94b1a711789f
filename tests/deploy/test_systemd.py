"""deploy/systemd: the unit passes `systemd-analyze verify`, runs a real callgate command,
keeps the embedded store where the env file says, and gives callgate the time it needs to
stop; the env file holds settings callgate accepts."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
from pathlib import Path

from tests.conftest import CALLGATE

from .support import DEPLOY, require_tool, seconds, stop_budget_s, taken_from_env

SYSTEMD = DEPLOY / "systemd"
UNIT = SYSTEMD / "callgate.service"
ENV_FILE = SYSTEMD / "callgate.env"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def env_file() -> dict[str, str]:
    """The variables the env file sets (systemd's EnvironmentFile syntax, which has no
    quoting in this file)."""
    found = {}
    for line in ENV_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            found[name] = value
    return found


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """Verified with ExecStart pointing at this checkout's callgate (verify wants the
    program to exist); any warning (an unknown key, a bad value) fails the test."""
    program = unit()["Service"]["ExecStart"].split()[0]
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(f"ExecStart={program}", f"ExecStart={CALLGATE}"))
    done = subprocess.run([require_tool("systemd-analyze"), "verify", str(copy)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""


def test_exec_start_runs_callgate_serve(commands: dict[tuple[str, ...], set[str]]) -> None:
    argv = shlex.split(unit()["Service"]["ExecStart"])
    assert Path(argv[0]).name == "callgate"
    assert tuple(argv[1:]) in commands


def test_env_file_settings_are_accepted_by_callgate() -> None:
    env = env_file()
    assert taken_from_env(env) == set(env)
    assert unit()["Service"]["EnvironmentFile"].lstrip("-").endswith("/" + ENV_FILE.name)


def test_commented_settings_are_accepted_by_callgate_too() -> None:
    """The examples left commented out work once uncommented (all at once)."""
    examples = dict(re.findall(r"^#(CALLGATE_[A-Z_]+)=(\S+)$", ENV_FILE.read_text(), re.M))
    assert examples
    assert taken_from_env({**env_file(), **examples}) == {*env_file(), *examples}


def test_embedded_store_is_the_state_directory() -> None:
    service = unit()["Service"]
    assert env_file()["CALLGATE_DATA"] == "/var/lib/" + service["StateDirectory"]
    assert service["WorkingDirectory"] == env_file()["CALLGATE_DATA"]


def test_stop_timeout_outlasts_drain_and_shutdown() -> None:
    service = unit()["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert seconds(service["TimeoutStopSec"]) > stop_budget_s(env_file())


def test_service_runs_as_its_own_user_without_privileges() -> None:
    service = unit()["Service"]
    assert service["User"] == "callgate" and service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == "", "ports 8080 and 5060 need no capability"
