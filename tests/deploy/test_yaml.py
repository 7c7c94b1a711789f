"""Every YAML file under deploy/ passes yamllint, with deploy/.yamllint.yaml."""

from __future__ import annotations

import subprocess
import sys

from .support import DEPLOY


def test_deploy_yaml_passes_yamllint() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-f", "parsable",
         "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_yamllint_sees_every_yaml_file() -> None:
    """yamllint lints *.yaml and *.yml: no YAML file hides under another name."""
    names = {p.suffix for p in DEPLOY.rglob("*") if p.is_file()}
    assert names <= {".yaml", ".yml", ".json", ".cfg", ".service", ".env", ""}
