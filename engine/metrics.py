"""Prometheus metrics, registered on a registry the caller passes in (a fresh one per test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .wire import Decision

__all__ = ["Metrics"]

_LATENCY_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)


class _LeaseCollector(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "callgate_active_leases", "Channels held by calls in progress", labels=["account"]
        )
        for account, count in sorted(self._counts().items()):
            family.add_metric([account], count)
        yield family


class Metrics:
    def __init__(
        self, registry: CollectorRegistry, lease_counts: Callable[[], dict[str, int]]
    ) -> None:
        self.registry = registry
        self._decisions = Counter(
            "callgate_decisions",
            "Dial decisions, by outcome (allowed/denied), caller-ID rule and denial reason",
            ["outcome", "rule", "reason"],
            registry=registry,
        )
        self._latency = Histogram(
            "callgate_decision_seconds",
            "Time to decide one dial, from request decoded to answer ready",
            buckets=_LATENCY_BUCKETS_S,
            registry=registry,
        )
        registry.register(_LeaseCollector(lease_counts))
        self._children: dict[tuple[bool, str, str], Counter] = {}

    def observe(self, decision: Decision, seconds: float) -> None:
        key = (decision.allowed, decision.rule or "", decision.reason or "")
        child = self._children.get(key)
        if child is None:
            outcome = "allowed" if decision.allowed else "denied"
            child = self._decisions.labels(outcome, key[1], key[2])
            self._children[key] = child
        child.inc()
        self._latency.observe(seconds)
