"""deploy/container/Dockerfile, checked without Docker: two stages, the final one without a
compiler, as a non-root user, with a HEALTHCHECK that works against a real server, copying
only what exists and what .dockerignore lets into the context, and running a real callgate
command with settings callgate accepts."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from tests.conftest import CALLGATE, ROOT, Server, free_port

from .conftest import Live
from .support import DEPLOY, taken_from_env

DOCKERFILE = DEPLOY / "container" / "Dockerfile"
COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|[\w.+-]+-dev)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]


def stages() -> list[Stage]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    found: list[Stage] = []
    for item in parser.structure:
        name, value = item["instruction"], item["value"]
        if name == "FROM":
            base, _, alias = value.partition(" AS ")
            found.append(Stage(base.strip(), alias.strip() or None))
        elif name != "COMMENT" and found:
            found[-1].instructions.append((name, value))
    return found


def exec_form(value: str) -> list[str]:
    """An instruction's JSON (exec) form. The shell form is refused: callgate would run
    under /bin/sh, which does not pass SIGTERM on."""
    assert value.startswith("["), f"not in exec form: {value!r}"
    return list(json.loads(value))


def healthcheck_command() -> list[str]:
    [value] = stages()[-1].all("HEALTHCHECK")
    options, _, command = value.partition("CMD ")
    assert re.fullmatch(r"(\s*--[a-z-]+=\S+)*\s*", options), options
    return exec_form(command.strip())


def test_image_is_built_in_two_stages() -> None:
    build, final = stages()[0], stages()[-1]
    assert len(stages()) >= 2
    assert build.name, "the build stage is named, so the final stage can take from it"
    assert final.base not in {s.name for s in stages()}, "the final stage starts afresh"


def test_final_stage_has_no_compiler() -> None:
    final = stages()[-1]
    for command in final.all("RUN"):
        assert not COMPILERS.search(command), command


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    [user] = final.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, user
    after_user = final.instructions[[i for i, _ in final.instructions].index("USER"):]
    assert "RUN" not in {name for name, _ in after_user}, "nothing runs as root after USER"


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*", ".dockerignore leaves everything out but what it names"
    allowed = [line[1:] for line in lines if line.startswith("!")]
    names = {s.name for s in stages()}
    for stage in stages():
        for value in stage.all("COPY"):
            words = value.split()
            if any(w.startswith("--from=") for w in words):
                assert words[0].split("=", 1)[1] in names
                continue
            for source in [w for w in words[:-1] if not w.startswith("--")]:
                assert (ROOT / source).exists(), source
                assert any(fnmatch.fnmatch(source, pattern) for pattern in allowed), (
                    f"{source} is kept out of the build context by .dockerignore")
        for value in stage.all("RUN"):
            for mount in re.findall(r"--mount=(\S+)", value):
                options = dict(o.split("=", 1) for o in mount.split(","))
                assert options.get("from") in names, mount


def test_build_stage_copies_every_package_the_project_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {w for v in stages()[0].all("COPY") for w in v.split()[:-1]}
    assert {"pyproject.toml", project["project"]["readme"]} <= copied
    assert {p.rstrip("*") for p in packages} <= copied


def test_entrypoint_runs_callgate_serve() -> None:
    final = stages()[-1]
    [entrypoint], [cmd] = final.all("ENTRYPOINT"), final.all("CMD")
    argv = exec_form(entrypoint) + exec_form(cmd)
    assert argv == ["callgate", "serve"]
    done = subprocess.run([str(CALLGATE), *argv[1:], "--help"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr


def test_image_environment_is_settings_callgate_accepts() -> None:
    parser = DockerfileParser(path=str(DOCKERFILE))
    ours = {k: v for k, v in parser.envs.items() if k.startswith("CALLGATE_")}
    assert taken_from_env(ours) == set(ours)
    assert ours["CALLGATE_HOST"] == "0.0.0.0", "reachable from outside the container"
    [volume] = stages()[-1].all("VOLUME")
    assert volume == ours["CALLGATE_DATA"], "the embedded store is in the volume"


def test_exposed_ports_are_callgates() -> None:
    parser = DockerfileParser(path=str(DOCKERFILE))
    [exposed] = stages()[-1].all("EXPOSE")
    http = f"{parser.envs['CALLGATE_PORT']}/tcp"
    from . import test_compose, test_kubernetes

    # The image sets no SIP address: compose and the Kubernetes ConfigMap do, on one port.
    [sip] = {env["CALLGATE_SIP"].rpartition(":")[2]
             for env in (test_compose.environment(), test_kubernetes.environment())}
    assert set(exposed.split()) == {http, f"{sip}/udp", f"{sip}/tcp"}


def run_healthcheck(port: int) -> subprocess.CompletedProcess[bytes]:
    """The HEALTHCHECK command, with this interpreter as the image's python."""
    command = healthcheck_command()
    assert command[0] == "python"
    return subprocess.run([sys.executable, *command[1:]], capture_output=True, timeout=30,
                          env={**os.environ, "CALLGATE_PORT": str(port)})


def test_healthcheck_passes_on_a_serving_callgate(live: Live) -> None:
    done = run_healthcheck(live.port)
    assert done.returncode == 0, done.stderr


def test_healthcheck_fails_without_a_server() -> None:
    assert run_healthcheck(free_port()).returncode == 1


def test_healthcheck_fails_while_callgate_drains(tmp_path: Path) -> None:
    """It asks readiness: after SIGTERM the process still answers, and is not healthy."""
    server = Server(tmp_path / "data", args=["--drain", "20", "--shutdown-timeout", "1"]).start()
    try:
        assert server.process is not None
        # `callgate serve` prints its banner before it installs its SIGTERM handler (and,
        # under CALLGATE_DETECT_BLOCKING, before blockbuster is set up): a SIGTERM in that
        # window ends it at once. Give it a moment first.
        time.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while (done := run_healthcheck(server.port)).returncode == 0:
            assert time.monotonic() < deadline, "still healthy while draining"
            time.sleep(0.1)
        assert done.returncode == 1
        assert server.process.poll() is None, "unhealthy while still serving"
    finally:
        server.kill()
