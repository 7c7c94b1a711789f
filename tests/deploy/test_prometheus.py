"""deploy/prometheus: the scrape config and alert rules pass promtool, the rules' unit tests
pass, every alert is tested both ways, and every series they select is one callgate
exports."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from callerid.model import Reason, Rule

from .conftest import Live
from .support import DEPLOY, expr_problems, load_yaml, require_tool

PROMETHEUS = DEPLOY / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
ALERTS = PROMETHEUS / "alerts.yml"
ALERTS_TEST = PROMETHEUS / "alerts_test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], cwd=PROMETHEUS,
                          capture_output=True, text=True, timeout=60)


def alert_rules() -> list[dict[str, Any]]:
    [doc] = load_yaml(ALERTS)
    return [rule for group in doc["groups"] for rule in group["rules"]]


def scrape_jobs() -> dict[str, dict[str, Any]]:
    [doc] = load_yaml(CONFIG)
    return {job["job_name"]: job for job in doc["scrape_configs"]}


def known_label_values() -> dict[str, set[str]]:
    """The values callgate gives its labels, from the enums it counts with, and the scrape
    jobs of prometheus.yml."""
    return {
        "outcome": {"allowed", "denied"},
        "reason": {r.value for r in Reason} | {""},
        "rule": {r.value for r in Rule} | {""},
        "job": set(scrape_jobs()),
    }


def test_scrape_config_passes_promtool_check_config() -> None:
    done = promtool("check", "config", CONFIG.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout


def test_alert_rules_pass_promtool_check_rules() -> None:
    done = promtool("check", "rules", ALERTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_alert_rules_pass_their_unit_tests() -> None:
    done = promtool("test", "rules", ALERTS_TEST.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    [doc] = load_yaml(ALERTS_TEST)
    assert doc["rule_files"] == [ALERTS.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "never tested firing"
    assert names - quiet == set(), "never tested staying quiet"
    assert (firing | quiet) - names == set(), "tests of alerts that do not exist"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_severity_summary_and_description(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_selects_only_exported_series(rule: dict[str, Any], live: Live) -> None:
    assert expr_problems(rule["expr"], live.exported, live.values, known_label_values()) == []


def test_alerts_cover_the_issue_list() -> None:
    """Decision error rate, p99 latency, store unavailable, channel-limit saturation, SIP
    auth-failure bursts: each has an alert over the metric that measures it."""
    exprs = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    wanted = {
        "CallgateDecisionErrorRate": 'reason="store_unavailable"',
        "CallgateDecisionLatencyHigh": "histogram_quantile(0.99,",
        "CallgateStoreUnavailable": 'reason="store_unavailable"',
        "CallgateDown": "up{",
        "CallgateChannelLimitSaturation": 'reason="channel_limit"',
        "CallgateSipAuthFailureBurst": "callgate_sip_auth_failures_total",
    }
    for alert, fragment in wanted.items():
        assert fragment in exprs[alert], alert


def test_scrape_job_reads_callgate_metrics_path(live: Live) -> None:
    jobs = scrape_jobs()
    assert set(jobs) == {"callgate"}
    job = jobs["callgate"]
    assert live.get(job.get("metrics_path", "/metrics")) == 200
    [target] = [t for static in job["static_configs"] for t in static["targets"]]
    assert target == "callgate:8080", "the compose service and its port (test_compose.py)"
