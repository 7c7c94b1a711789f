"""pytest-benchmark micro-benchmarks: ``python -m pytest bench/ --benchmark-only``.

They live outside ``tests/`` (the suite's testpaths), so ``make test`` never runs them, and
they assert behaviour only (which rule, which number), never time. ``python -m bench`` is the
report with baselines and targets; these are for comparing one change against another
(``--benchmark-autosave`` / ``--benchmark-compare``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from callerid import AccountSnapshot, compile_account, resolve
from engine.decide import decide
from engine.numbers import load_metadata, normalise

from .micro import RESOLUTION_CASES
from .workload import BENCH_USER, FreshNumbers, demo_config


@pytest.fixture(scope="module")
def snapshot() -> AccountSnapshot:
    load_metadata()
    return compile_account(demo_config(), 1)


@pytest.mark.parametrize(("user_id", "raw", "rule"), RESOLUTION_CASES)
def test_resolve(
    benchmark: Any, snapshot: AccountSnapshot, user_id: str, raw: str, rule: str
) -> None:
    user = snapshot.users[user_id]
    dest = normalise(raw, snapshot.default_region)
    assert dest is not None
    result = benchmark(resolve, snapshot, user, dest, sticky=None)
    assert result.rule == rule


def test_normalise_cached(benchmark: Any) -> None:
    load_metadata()
    normalise("+12125550187", "US")
    assert benchmark(normalise, "+12125550187", "US") is not None


def test_normalise_fresh(benchmark: Any) -> None:
    """Each call parses a number never seen before (the cache always misses)."""
    load_metadata()
    numbers: Iterator[str] = iter(FreshNumbers(seed=4).take(3000))

    def setup() -> tuple[tuple[str, str], dict[str, Any]]:
        return (next(numbers), "US"), {}

    normalise.cache_clear()
    result = benchmark.pedantic(normalise, setup=setup, rounds=2000, warmup_rounds=100)
    assert result is not None


def test_decide_cached(benchmark: Any, snapshot: AccountSnapshot) -> None:
    """normalise (cached) + policy + resolve: the decision without lease or store."""
    user = snapshot.users[BENCH_USER]

    def decide_once() -> Any:
        dest = normalise("+12125550187", "US")
        return decide(snapshot, user, "+12125550187", dest, None, "bench-call", None)

    assert benchmark(decide_once).allowed
