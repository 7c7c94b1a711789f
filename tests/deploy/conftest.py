"""Fixtures of the deploy tests: callgate's settings and commands as it reports them, and one
real server (embedded store, demo account, SIP on) that has seen a dial, a SIP OPTIONS and
a malformed datagram, so that every labelled metric family has samples."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, free_port
from tests.sip.sipmsg import request, status_of

from .support import callgate_commands, config_show


class Live:
    """A running callgate and the series its /metrics exports: sample name -> label names."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.exported: dict[str, set[str]] = {}
        self.values: dict[str, dict[str, set[str]]] = {}
        """sample name -> label -> the values seen."""

    @property
    def port(self) -> int:
        return self.server.port

    def get(self, path: str, method: str = "GET") -> int:
        req = urllib.request.Request(self.server.url + path, method=method,
                                     data=b"{}" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def read_metrics(self) -> str:
        with urllib.request.urlopen(self.server.url + "/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    def parse(self, text: str) -> None:
        self.exported.clear()
        self.values.clear()
        for family in text_string_to_metric_families(text):
            names = {
                "counter": [family.name if family.name.endswith("_total")
                            else family.name + "_total"],
                "histogram": [family.name + s for s in ("_bucket", "_sum", "_count")],
            }.get(family.type, [family.name])
            for name in names:
                self.exported.setdefault(name, set())
            for sample in family.samples:
                self.exported.setdefault(sample.name, set()).update(sample.labels)
                for label, value in sample.labels.items():
                    self.values.setdefault(sample.name, {}).setdefault(label, set()).add(value)


def _dial(server: Server) -> dict[str, Any]:
    req = urllib.request.Request(
        server.url + "/v1/dial", method="POST",
        data=json.dumps({"user": "ana", "to": "(212) 555-0187"}).encode(),
        headers={**server.headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as answer:
        return dict(json.loads(answer.read()))


def _sip_traffic(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        via = f"127.0.0.1:{sock.getsockname()[1]}"
        sock.sendto(request("OPTIONS", via=via, call_id="deploy-options@127.0.0.1"),
                    ("127.0.0.1", port))
        assert status_of(sock.recvfrom(65535)[0]) == 200
        sock.sendto(b"not a SIP message\r\n\r\n", ("127.0.0.1", port))


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    sip_port = free_port()
    server = Server(tmp_path_factory.mktemp("deploy") / "data",
                    args=["--sip", f"127.0.0.1:{sip_port}"]).start()
    try:
        live = Live(server)
        assert _dial(server)["allowed"] is True
        _sip_traffic(sip_port)
        deadline = time.monotonic() + 10
        while True:  # the malformed datagram is counted once the loop has read it
            live.parse(live.read_metrics())
            if live.exported.get("callgate_sip_dropped_total") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        yield live
    finally:
        server.kill()


@pytest.fixture(scope="session")
def settings() -> dict[str, dict[str, Any]]:
    """Every setting of `callgate serve`, by key, with its flag, env and default value."""
    return config_show()


@pytest.fixture(scope="session")
def env_names(settings: dict[str, dict[str, Any]]) -> set[str]:
    return {s["env"] for s in settings.values()}


@pytest.fixture(scope="session")
def commands() -> dict[tuple[str, ...], set[str]]:
    return callgate_commands()

