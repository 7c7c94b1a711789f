"""The docs page in a real browser: Debian's chromium, headless, opens /admin/v1/docs/ from a
running server (with no network but the server: every asset comes from callgate) and the
page it renders lists every operation of the OpenAPI document."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from admin_api import openapi_document
from tests.conftest import NO_DRAIN, Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data", args=NO_DRAIN).start()
    yield running
    running.stop()


def _rendered(url: str, profile: Path) -> str:
    """The page's DOM once its scripts have run (chromium's virtual time lets the fetch of the
    document and the rendering finish before the dump)."""
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=15000",
         # Only the server may be reached: a fetch from anywhere else fails the page.
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_docs_page_lists_every_operation(server: Server, tmp_path: Path) -> None:
    dom = _rendered(f"{server.url}/admin/v1/docs/", tmp_path / "profile")
    document = json.loads(openapi_document())
    shown = set(re.findall(r'id="operations-[^"]*?-([A-Za-z_]+)"', dom))
    wanted = {op["operationId"] for methods in document["paths"].values()
              for op in methods.values()}
    assert wanted and wanted <= shown, sorted(wanted - shown)
    assert "callgate admin API" in dom
