"""deploy/compose/compose.yaml: valid for docker-compose, callgate built from our Dockerfile on
a Redis with AOF, Prometheus reading our config, and every setting, port and file it names
one that exists."""

from __future__ import annotations

import subprocess
from typing import Any

from dockerfile_parse import DockerfileParser

from .support import (
    DEPLOY,
    config_show,
    load_yaml,
    require_tool,
    seconds,
    stop_budget_s,
    taken_from_env,
)

COMPOSE = DEPLOY / "compose" / "compose.yaml"


def services() -> dict[str, dict[str, Any]]:
    [doc] = load_yaml(COMPOSE)
    return dict(doc["services"])


def environment() -> dict[str, str]:
    """The callgate container's CALLGATE_* variables: the image's, then compose's."""
    image = DockerfileParser(path=str(DEPLOY / "container" / "Dockerfile")).envs
    ours = {k: v for k, v in image.items() if k.startswith("CALLGATE_")}
    return {**ours, **services()["callgate"]["environment"]}


def test_compose_file_is_valid_for_docker_compose() -> None:
    """`docker-compose config` checks the file against the Compose schema, and that the
    build context exists (it needs no Docker daemon)."""
    done = subprocess.run([require_tool("docker-compose"), "-f", str(COMPOSE), "config", "-q"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""


def test_callgate_is_built_from_our_dockerfile() -> None:
    build = services()["callgate"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert (context / build["dockerfile"]) == DEPLOY / "container" / "Dockerfile"
    assert (context / ".dockerignore").exists()


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = services()["redis"]
    command = redis["command"]
    option = {command[i]: command[i + 1] for i in range(1, len(command) - 1, 2)}
    assert command[0] == "redis-server"
    assert option["--appendonly"] == "yes"
    assert option["--maxmemory-policy"] == "noeviction", "an evicted lease is a channel lost"
    [volume] = redis["volumes"]
    assert volume.split(":")[1] == "/data"
    [doc] = load_yaml(COMPOSE)
    assert volume.split(":")[0] in doc["volumes"]


def test_callgate_settings_are_accepted_and_reach_redis() -> None:
    environment = services()["callgate"]["environment"]
    assert taken_from_env(environment) == set(environment)
    assert environment["CALLGATE_REDIS_URL"].startswith("redis://redis:")
    assert "redis" in services()["callgate"]["depends_on"]


def test_published_ports_are_the_ones_callgate_listens_on() -> None:
    shown = config_show(environment())
    http = str(shown["port"]["value"])
    sip = environment()["CALLGATE_SIP"].rpartition(":")[2]
    published = {p.rpartition(":")[2] for p in services()["callgate"]["ports"]}
    assert published == {f"{http}/tcp", f"{sip}/udp", f"{sip}/tcp"}


def test_stop_grace_period_outlasts_drain_and_shutdown() -> None:
    callgate = services()["callgate"]
    assert seconds(callgate["stop_grace_period"]) > stop_budget_s(environment())


def test_prometheus_mounts_our_config_and_rules() -> None:
    prometheus = services()["prometheus"]
    mounts = {}
    for volume in prometheus["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            path = (COMPOSE.parent / source).resolve()
            assert path.is_file(), source
            mounts[target] = path
    config = mounts["/etc/prometheus/prometheus.yml"]
    assert config == DEPLOY / "prometheus" / "prometheus.yml"
    [doc] = load_yaml(config)
    for rules in doc["rule_files"]:
        assert mounts[f"/etc/prometheus/{rules}"] == config.parent / rules
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    [job] = doc["scrape_configs"]
    host, port = job["static_configs"][0]["targets"][0].split(":")
    assert host in services()
    assert port == str(config_show(environment())["port"]["value"])
