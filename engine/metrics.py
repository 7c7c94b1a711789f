"""Prometheus metrics, registered on a registry the caller passes in (a fresh one per test).

The decision counter and latency histogram are counted with plain ints and exported by a
collector of our own: only the event loop's thread counts them, so the locks of
prometheus-client's Counter and Histogram buy nothing, and they cost about 2 µs a dial. The
per-number counters are the same: a dict increment on the dial (attempts) and on the end
(answered) of this process; the numbers' states are read from the engine at each scrape.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .wire import Decision

__all__ = ["LATENCY_BUCKETS_S", "Metrics"]

LATENCY_BUCKETS_S = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)

_Key = tuple[bool, str, str]
_Number = tuple[str, str]
"""(account, number)"""


class Metrics(Collector):
    def __init__(
        self, registry: CollectorRegistry, lease_counts: Callable[[], dict[str, int]]
    ) -> None:
        self.registry = registry
        self._lease_counts = lease_counts
        self._decisions: dict[_Key, int] = {}
        self._buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self._latency_sum_s = 0.0
        self.http_throttled: Callable[[], int] = lambda: 0
        """Requests refused with 429 after failed authentications (set by the HTTP app)."""
        self._attempts: dict[_Number, int] = {}
        self._answered: dict[_Number, int] = {}
        self.number_states: Callable[[], Iterable[tuple[str, str, str]]] = lambda: ()
        """(account, number, reputation now) of every number (set by the engine)."""
        registry.register(self)

    def attempt(self, account_id: str, number: str) -> None:
        """An allowed dial went out from ``number`` (counted against it)."""
        key = (account_id, number)
        self._attempts[key] = self._attempts.get(key, 0) + 1

    def answered(self, account_id: str, number: str) -> None:
        """A call from ``number`` ended connected (answered or voicemail)."""
        key = (account_id, number)
        self._answered[key] = self._answered.get(key, 0) + 1

    def observe(self, decision: Decision, seconds: float) -> None:
        key = (decision.allowed, decision.rule or "", decision.reason or "")
        self._decisions[key] = self._decisions.get(key, 0) + 1
        self._buckets[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self._latency_sum_s += seconds

    def collect(self) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            "callgate_decisions",
            "Dial decisions, by outcome (allowed/denied), caller-ID rule and denial reason",
            labels=["outcome", "rule", "reason"],
        )
        for (allowed, rule, reason), count in sorted(self._decisions.items()):
            decisions.add_metric(["allowed" if allowed else "denied", rule, reason], count)
        yield decisions

        cumulative, buckets = 0, []
        bounds = (*map(str, LATENCY_BUCKETS_S), "+Inf")
        for bound, count in zip(bounds, self._buckets, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "callgate_decision_seconds",
            "Time to decide one dial, from request decoded to answer ready",
            buckets=buckets,
            sum_value=self._latency_sum_s,
        )

        leases = GaugeMetricFamily(
            "callgate_active_leases", "Channels held by calls in progress", labels=["account"]
        )
        for account, count in sorted(self._lease_counts().items()):
            leases.add_metric([account], count)
        yield leases
        for name, help_text, counts in (
            ("callgate_number_attempts", "Allowed dials that went out from a number (this "
             "process), by account and number", self._attempts),
            ("callgate_number_answered", "Calls from a number that ended connected (answered "
             "or voicemail; this process), by account and number", self._answered),
        ):
            family = CounterMetricFamily(name, help_text, labels=["account", "number"])
            for (account, number), count in sorted(counts.items()):
                family.add_metric([account, number], count)
            yield family
        states = GaugeMetricFamily(
            "callgate_number_state",
            "1 for each number's reputation now (active, resting or retired); a resting number "
            "whose rest has ended is active", labels=["account", "number", "state"])
        for account, number, state in self.number_states():
            states.add_metric([account, number, str(state)], 1)
        yield states
        yield CounterMetricFamily(
            "callgate_http_throttled",
            "HTTP requests refused with 429 after repeated failed authentications from their "
            "address or with their token",
            value=self.http_throttled(),
        )
