"""The tree's layers hold: imports point down, and the cores do no I/O.

Every module of callgate's packages has one layer, in ``LAYERS`` below:

1. the caller-ID policy (``callerid``), which imports nothing else of ours;
2. the other cores: the SIP parser, transactions, digest and redirect logic, number
   normalisation, destination policy, wire types, errors and configuration changes; pure
   functions and Structs, no I/O;
3. the engine and its stores: the decision pipeline, the account service, tokens, metrics;
4. the front ends: the decision HTTP API, the SIP transports, the admin API, the load
   generator (a client of the HTTP API);
5. the composition root, ``callgate``: the command, its settings, the assembly of a server.

A module imports only modules of its own layer or below (read from its source, imports
inside functions included), and a module of the first two layers, imported alone in a fresh
interpreter, loads none of asyncio, socket, sqlite3, redis or aiohttp. A new module needs a
row here: the test fails until it has one, so its layer is a decision, not an accident.
"""

from __future__ import annotations

import ast
import enum
import subprocess
import sys
from pathlib import Path

import pytest

from callgate import PACKAGES

ROOT = Path(__file__).resolve().parent.parent


class Layer(enum.IntEnum):
    POLICY = 1
    CORE = 2
    ENGINE = 3
    FRONT_END = 4
    ROOT = 5

    @property
    def pure(self) -> bool:
        return self <= Layer.CORE


LAYERS: dict[str, Layer] = {
    # A name ending in ".*" is a package with everything in it; any other is one module
    # (a package's name alone is its __init__).
    "callerid.*": Layer.POLICY,
    "sip": Layer.CORE,
    "sip.abnf": Layer.CORE,
    "sip.credentials": Layer.CORE,
    "sip.digest": Layer.CORE,
    "sip.errors": Layer.CORE,
    "sip.message": Layer.CORE,
    "sip.parser": Layer.CORE,
    "sip.redirect": Layer.CORE,
    "sip.throttle": Layer.CORE,
    "sip.transactions": Layer.CORE,
    "engine": Layer.CORE,
    "engine.changes.*": Layer.CORE,
    "engine.configfile": Layer.CORE,
    "engine.days": Layer.CORE,
    "engine.hours": Layer.CORE,
    "engine.errors": Layer.CORE,
    "engine.invariants": Layer.CORE,
    "engine.numbers": Layer.CORE,
    "engine.dnc": Layer.CORE,
    "engine.policy": Layer.CORE,
    "engine.throttle": Layer.CORE,
    "engine.validation": Layer.CORE,
    "engine.wire": Layer.CORE,
    "engine.decide": Layer.ENGINE,
    "engine.logs": Layer.ENGINE,
    "engine.metrics": Layer.ENGINE,
    "engine.resting": Layer.ENGINE,
    "engine.service": Layer.ENGINE,
    "engine.store.*": Layer.ENGINE,
    "engine.sync": Layer.ENGINE,
    "engine.tokens": Layer.ENGINE,
    "engine.http": Layer.FRONT_END,
    "engine.loadtest.*": Layer.FRONT_END,
    "sip.server": Layer.FRONT_END,
    "admin_api.*": Layer.FRONT_END,
    "callgate.*": Layer.ROOT,
}

IO_MODULES = ("asyncio", "socket", "sqlite3", "redis", "aiohttp")


def _modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name (``__main__`` modules left out: they
    are run, never imported)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> Layer | None:
    if module in LAYERS:
        return LAYERS[module]
    package = module
    while package:
        if f"{package}.*" in LAYERS:
            return LAYERS[f"{package}.*"]
        package = package.rpartition(".")[0]
    return None


def imported(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, module) for each import of one of our modules in ``path``. ``from a import b``
    names ``a.b`` when that is a module, else ``a``; relative imports are resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.append((node.lineno, name if name in MODULES else base))
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def test_every_module_has_a_layer() -> None:
    missing = sorted(m for m in MODULES if layer_of(m) is None)
    assert not missing, f"modules with no row in tests/test_layers.py LAYERS: {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    own = layer_of(module)
    assert own is not None
    upward = []
    for line, name in imported(module, MODULES[module]):
        theirs = layer_of(name)
        if theirs is not None and theirs > own:
            upward.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {name} "
                          f"({theirs.name}) from the {own.name} layer")
    assert not upward, "a module imports one of a higher layer:\n" + "\n".join(upward)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) in (Layer.POLICY,
                                                                                 Layer.CORE)))
def test_a_core_module_imports_no_io(module: str) -> None:
    code = (f"import sys, {module}; "
            f"print(','.join(m for m in {IO_MODULES!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing {module} alone loads {done.stdout.strip()}"
