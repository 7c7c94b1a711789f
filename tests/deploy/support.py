"""What the deploy tests share: the files under deploy/, callgate's own settings, commands and
metrics as the real program reports them, and a small reader of the PromQL in alerts and
dashboards.

callgate's side is always asked, never restated here: settings from `callgate config show
--format json`, commands and flags from `callgate ... --help`, metrics from a running
server's /metrics (conftest.py)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from callgate.cli import main as callgate_main
from tests.conftest import CALLGATE, ROOT

__all__ = [
    "DEPLOY",
    "OTHER_TOOLS_FLAGS",
    "TARGET_LABELS",
    "Selector",
    "callgate_command_lines",
    "callgate_commands",
    "config_show",
    "deploy_files",
    "expr_problems",
    "load_yaml",
    "promql_selectors",
    "require_tool",
    "seconds",
]

DEPLOY = ROOT / "deploy"
OURS = ("container", "compose", "kubernetes", "systemd", "prometheus", "grafana")
"""deploy/kamailio is Kamailio's configuration: its CALLGATE_* names are its own defines."""

OTHER_TOOLS_FLAGS: Mapping[str, frozenset[str]] = {
    "redis-server": frozenset({"--appendonly", "--appendfsync", "--maxmemory-policy"}),
    "prometheus": frozenset({"--config.file", "--storage.tsdb.path"}),
    "docker (HEALTHCHECK, RUN, compose)": frozenset(
        {"--interval", "--timeout", "--start-period", "--retries", "--mount", "--build"}),
    "pip": frozenset({"--no-cache-dir", "--wheel-dir", "--find-links", "--no-index"}),
    "apt-get": frozenset({"--no-install-recommends"}),
    "useradd, groupadd": frozenset(
        {"--system", "--uid", "--gid", "--home-dir", "--shell", "--no-create-home"}),
    "systemctl": frozenset({"--now"}),
    "kubectl": frozenset({"--from-literal"}),
}
"""Every flag deploy/ names that is not callgate's, by the tool that takes it."""


def deploy_files() -> list[Path]:
    return sorted(p for d in OURS for p in (DEPLOY / d).rglob("*") if p.is_file())


def load_yaml(path: Path) -> list[Any]:
    """Every document of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def require_tool(name: str) -> str:
    """The path of a command `make test` installs (Makefile SYSTEM_TOOLS); its absence is a
    failure, not a skip."""
    found = shutil.which(name)
    assert found, f"{name} is not installed: `make system-tools` installs it"
    return found


def seconds(text: str | int | float) -> float:
    """A duration as Docker, compose and systemd write it (30, "30s", "1m30s", "1min")."""
    if isinstance(text, (int, float)):
        return float(text)
    total, units = 0.0, {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h)?", text.strip())
    assert parts and "".join(n + (u or "") for n, u in parts) == text.replace(" ", ""), text
    for number, unit in parts:
        total += float(number) * units[unit or "s"]
    return total


# -- callgate's settings, commands and flags, from callgate itself ---------------------------------


def config_show(environ: Mapping[str, str] = {}) -> dict[str, dict[str, Any]]:
    """`callgate config show --format json` in an environment holding only ``environ`` of
    the CALLGATE_* variables: each setting by its key. Fails with callgate's own message when
    a value is refused."""
    return json.loads(_config_show(tuple(sorted(environ.items()))))  # type: ignore[no-any-return]


def taken_from_env(environ: Mapping[str, str]) -> set[str]:
    """The variables of ``environ`` that callgate takes as settings (and nothing else of the
    environment): compare with ``set(environ)``."""
    return {s["env"] for s in config_show(environ).values() if s["source"] == "env"}


def stop_budget_s(environ: Mapping[str, str]) -> float:
    """The longest a callgate with these settings takes to stop after SIGTERM: its drain, then
    its shutdown timeout."""
    shown = config_show(environ)
    return float(shown["drain"]["value"]) + float(shown["shutdown_timeout"]["value"])


@functools.cache
def _config_show(environ: tuple[tuple[str, str], ...]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLGATE_")}
    done = subprocess.run([str(CALLGATE), "config", "show", "--format", "json"],
                          env={**env, **dict(environ)}, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, f"callgate config show refused {dict(environ)}:\n{done.stderr}"
    return json.dumps({s["key"]: s for s in json.loads(done.stdout)["settings"]})


def _help(path: tuple[str, ...]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        callgate_main([*path, "--help"])
    return out.getvalue()


def callgate_commands() -> dict[tuple[str, ...], set[str]]:
    """Every command of the `callgate` CLI (("serve",), ("token", "create"), ...) with the
    flags it takes, read from its --help."""
    found: dict[tuple[str, ...], set[str]] = {}
    pending: list[tuple[str, ...]] = [()]
    while pending:
        path = pending.pop()
        text = _help(path)
        assert text.startswith("usage: callgate"), f"callgate {' '.join(path)} --help: {text!r}"
        found[path] = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text)) - {"--help"}
        usage = text.split("\n\n", 1)[0]
        sub = re.search(r"\{([a-z,-]+)\}\s+\.\.\.", usage)
        if sub:
            pending += [(*path, name) for name in sub.group(1).split(",")]
    return found


_COMMAND_AT = re.compile(
    r"(?:^#\s{3,}|[`/])callgate((?:[ \t]+[a-z][a-z0-9-]*)+)([^`]*)"
)
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def callgate_command_lines(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """Each callgate command line written in ``text`` (shell examples in comments, indented
    by three spaces or more after the ``#``; ExecStart lines and other paths to the program;
    backticked commands), as (words after `callgate`, flags on the line and on the lines a
    trailing backslash continues it to)."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        for match in _COMMAND_AT.finditer(line):
            words = match.group(1).split()
            flags = _FLAG.findall(match.group(2))
            following = number
            while lines[following].rstrip().endswith("\\") and following + 1 < len(lines):
                following += 1
                flags += _FLAG.findall(lines[following])
            yield words, flags


# -- PromQL ----------------------------------------------------------------------------------------


class Selector:
    """A series selector of an expression: the metric and its label matchers."""

    def __init__(self, metric: str, matchers: list[tuple[str, str, str]]) -> None:
        self.metric = metric
        self.matchers = matchers

    def __repr__(self) -> str:
        return f"{self.metric}{{{', '.join(f'{n}{o}{v!r}' for n, o, v in self.matchers)}}}"


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
             "unless", "bool", "offset", "inf", "nan"}
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def promql_selectors(expr: str) -> tuple[list[Selector], set[str]]:
    """The selectors of a PromQL expression, and the label names its by/without/on/ignoring
    clauses group on. (Not a parser: promtool checks the syntax; this finds the names.)"""
    grouping = {label.strip() for found in _GROUPING.findall(expr)
                for label in found.split(",") if label.strip()}
    rest = _GROUPING.sub(" ", expr)
    selectors = []
    for metric, body in _SELECTOR.findall(rest):
        selectors.append(Selector(metric, _MATCHER.findall(body)))
    rest = _SELECTOR.sub(" ", rest)
    rest = re.sub(r'"(?:[^"\\]|\\.)*"', " ", rest)  # strings
    rest = re.sub(r"\[[^\]]*\]", " ", rest)  # range and subquery windows
    for name in re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", rest):
        if name.lower() not in _KEYWORDS:
            selectors.append(Selector(name, []))
    return selectors, grouping


TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus adds to every scraped series."""


def expr_problems(
    expr: str,
    exported: Mapping[str, set[str]],
    seen: Mapping[str, Mapping[str, set[str]]],
    known_values: Mapping[str, set[str]],
) -> list[str]:
    """What in ``expr`` callgate does not export: a metric not on /metrics (``up`` aside, the
    scrape's own), a label the metric does not carry, a grouping label none of its metrics
    carries, or a matched value callgate never gives that label (``known_values``, else the
    values ``seen`` on the live server)."""
    selectors, grouping = promql_selectors(expr)
    problems, carried = [], set(TARGET_LABELS)
    for selector in selectors:
        if selector.metric == "up":
            labels: set[str] = set()
        elif selector.metric in exported:
            labels = exported[selector.metric]
        else:
            problems.append(f"{selector.metric} is not exported")
            continue
        carried |= labels
        for name, op, value in selector.matchers:
            if name not in labels | TARGET_LABELS:
                problems.append(f"{selector!r}: {selector.metric} has no label {name!r}")
            elif op in ("=", "!=") and name in known_values and value not in known_values[name]:
                problems.append(f"{selector!r}: {name}={value!r} is never exported "
                                f"(known: {sorted(known_values[name])})")
            elif op in ("=", "!=") and name not in known_values and name not in TARGET_LABELS:
                values = seen.get(selector.metric, {}).get(name, set())
                if value not in values:
                    problems.append(f"{selector!r}: {name}={value!r} not seen (seen: "
                                    f"{sorted(values)})")
    for label in sorted(grouping - carried):
        problems.append(f"groups by {label!r}, which none of its metrics carries")
    return problems
