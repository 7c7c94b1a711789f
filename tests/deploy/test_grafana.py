"""deploy/grafana/callgate.json: a dashboard Grafana can import, whose every query promtool
parses and selects only series callgate exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .conftest import Live
from .support import DEPLOY, expr_problems, require_tool
from .test_prometheus import known_label_values

DASHBOARD = DEPLOY / "grafana" / "callgate.json"

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
"""Grafana's own interval variables, as a Prometheus range a query would get."""


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels() -> list[dict[str, Any]]:
    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for item in items for p in (item, *walk(item.get("panels", [])))]
    return walk(dashboard()["panels"])


def queries() -> list[tuple[str, str]]:
    """(panel title and refId, the query as Prometheus would get it) for every target."""
    variables = {f"${v['name']}": ".*" for v in dashboard()["templating"]["list"]
                 if v["type"] == "query"}
    found = []
    for panel in panels():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in {**GRAFANA_VARIABLES, **variables}.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: an unknown variable in {expr!r}"
            found.append((f"{panel['title']} {target['refId']}", expr))
    return found


def test_dashboard_is_a_grafana_dashboard() -> None:
    board = dashboard()
    assert board["uid"] == "callgate" and board["title"]
    assert isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels():
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_every_panel_reads_the_datasource_variable() -> None:
    [variable] = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    uid = "${" + variable["name"] + "}"
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']} has no query"
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    """Each query as a recording rule: `promtool check rules` parses its PromQL."""
    rules = [{"record": f"grafana:query_{n}", "expr": expr} for n, (_, expr) in
             enumerate(queries())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([require_tool("promtool"), "check", "rules", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_every_query_selects_only_exported_series(live: Live) -> None:
    problems = {where: expr_problems(expr, live.exported, live.values, known_label_values())
                for where, expr in queries()}
    assert {where: found for where, found in problems.items() if found} == {}


def test_dashboard_shows_every_callgate_metric(live: Live) -> None:
    shown = set(re.findall(r"callgate_\w+", " ".join(expr for _, expr in queries())))
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in live.exported
                if name.startswith("callgate_")}
    assert {f for f in families if not any(s.startswith(f) for s in shown)} == set()
