"""deploy/kubernetes: every resource validates against the Kubernetes schemas
(kubernetes-validate, strict: no unknown fields), and the resources fit together and fit
callgate: selectors find the pods, ports and probes are callgate's, the grace period
outlasts the drain, the settings are ones callgate accepts."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from dockerfile_parse import DockerfileParser

from .conftest import Live
from .support import DEPLOY, config_show, load_yaml, stop_budget_s, taken_from_env

KUBERNETES = DEPLOY / "kubernetes"
OLDEST = "1.27.0"
"""The oldest Kubernetes the manifests claim (a UDP and a TCP port in one Service of type
LoadBalancer, as service.yaml suggests for SIP, needs 1.26 or later)."""
VERSIONS = sorted({OLDEST, kubernetes_validate.latest_version()})
"""Validated against the oldest release claimed and the newest kubernetes-validate knows."""


def resources() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in load_yaml(path)]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [r for r in resources()
               if r["kind"] == kind and name in (None, r["metadata"]["name"])]
    return found


def pod() -> dict[str, Any]:
    return dict(one("Deployment")["spec"]["template"])


def container() -> dict[str, Any]:
    [found] = pod()["spec"]["containers"]
    return dict(found)


def environment() -> dict[str, str]:
    """What the container's envFrom gives it: its ConfigMaps' and Secrets' keys."""
    env: dict[str, str] = {}
    for source in container()["envFrom"]:
        if "configMapRef" in source:
            env |= one("ConfigMap", source["configMapRef"]["name"])["data"]
        else:
            env |= one("Secret", source["secretRef"]["name"])["stringData"]
    return env


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("resource", resources(),
                         ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_resource_validates_against_kubernetes_schema(resource: dict[str, Any],
                                                      version: str) -> None:
    kubernetes_validate.validate(resource, version, strict=True)


def test_the_issue_resources_are_there() -> None:
    kinds = sorted(r["kind"] for r in resources())
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "Secret", "Service", "Service"]


def test_selectors_find_the_pods() -> None:
    labels = pod()["metadata"]["labels"]
    assert matches(one("Deployment")["spec"]["selector"]["matchLabels"], labels)
    assert matches(one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels)
    for service in [r for r in resources() if r["kind"] == "Service"]:
        assert matches(service["spec"]["selector"], labels), service["metadata"]["name"]


def test_services_reach_container_ports_by_name_and_protocol() -> None:
    ports = {(p["name"], p["protocol"]) for p in container()["ports"]}
    for service in [r for r in resources() if r["kind"] == "Service"]:
        for port in service["spec"]["ports"]:
            assert (port["targetPort"], port.get("protocol", "TCP")) in ports, port


def test_sip_is_served_over_udp_and_tcp() -> None:
    sip = one("Service", "callgate-sip")["spec"]
    assert {p["protocol"] for p in sip["ports"]} == {"UDP", "TCP"}
    assert sip["sessionAffinity"] == "ClientIP", "a digest answer reaches its nonce's replica"


def test_container_ports_are_the_ones_callgate_listens_on() -> None:
    shown = config_show(environment())
    sip_port = int(environment()["CALLGATE_SIP"].rpartition(":")[2])
    ports = {(p["containerPort"], p["protocol"]) for p in container()["ports"]}
    assert ports == {(int(shown["port"]["value"]), "TCP"), (sip_port, "UDP"),
                     (sip_port, "TCP")}
    assert environment()["CALLGATE_HOST"] == "0.0.0.0"


def test_settings_are_accepted_by_callgate() -> None:
    env = environment()
    assert taken_from_env(env) == set(env)
    assert config_show(env)["redis_url"]["secret"] is True, (
        "the Redis URL's password stays in the Secret"
    )
    assert "CALLGATE_REDIS_URL" in one("Secret")["stringData"]
    assert "CALLGATE_REDIS_URL" not in one("ConfigMap")["data"]


def test_probes_ask_readiness_and_liveness_on_the_http_port(live: Live) -> None:
    spec = container()
    port = int(config_show(environment())["port"]["value"])
    http = next(p for p in spec["ports"] if p["containerPort"] == port)["name"]
    paths = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert spec[probe]["httpGet"]["port"] == http
        paths[probe] = spec[probe]["httpGet"]["path"]
    assert paths == {"startupProbe": "/healthz/live", "readinessProbe": "/healthz",
                     "livenessProbe": "/healthz/live"}
    for path in set(paths.values()):
        assert live.get(path) == 200, path


def test_grace_period_outlasts_drain_and_shutdown() -> None:
    assert pod()["spec"]["terminationGracePeriodSeconds"] > stop_budget_s(environment())
    drain = float(config_show(environment())["drain"]["value"])
    readiness = container()["readinessProbe"]
    noticed_s = readiness["periodSeconds"] * readiness["failureThreshold"]
    assert noticed_s < drain, "the kubelet sees not-ready before the drain ends"
    assert "lifecycle" not in container(), "no preStop: callgate drains by itself"


def test_pods_run_as_the_image_user_without_privileges() -> None:
    [user] = [i["value"] for i in DockerfileParser(
        path=str(DEPLOY / "container" / "Dockerfile")).structure if i["instruction"] == "USER"]
    security = pod()["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert f"{security['runAsUser']}:{security['runAsGroup']}" == user
    assert container()["securityContext"]["allowPrivilegeEscalation"] is False
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True


def test_container_runs_callgate_serve(commands: dict[tuple[str, ...], set[str]]) -> None:
    assert "command" not in container(), "the image's entrypoint, callgate"
    assert tuple(container()["args"]) in commands


def test_autoscaler_scales_the_deployment_on_requested_cpu() -> None:
    hpa = one("HorizontalPodAutoscaler")["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", one("Deployment")["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert container()["resources"]["requests"]["cpu"]
    assert "replicas" not in one("Deployment")["spec"], "the autoscaler owns the count"
    assert hpa["minReplicas"] >= 2, "one replica down leaves one serving"


def test_disruption_budget_keeps_a_replica_serving() -> None:
    budget = one("PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] < one("HorizontalPodAutoscaler")["spec"]["minReplicas"]


def test_scrape_annotations_point_at_metrics(live: Live) -> None:
    annotations = pod()["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in {p["containerPort"]
                                                      for p in container()["ports"]}
    assert live.get(annotations["prometheus.io/path"]) == 200
