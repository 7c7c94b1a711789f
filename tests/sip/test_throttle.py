"""Bans of source addresses after repeated authentication failures (time is an argument)."""

from __future__ import annotations

from sip.throttle import Throttle


def test_n_failures_within_the_window_start_a_ban() -> None:
    throttle = Throttle(failures=3, window_s=10, ban_s=60)
    assert [throttle.failed("192.0.2.1", t) for t in (0.0, 1.0, 2.0)] == [False, False, True]
    assert throttle.banned("192.0.2.1", 3.0)
    assert not throttle.banned("192.0.2.2", 3.0)


def test_failures_spread_beyond_the_window_start_no_ban() -> None:
    throttle = Throttle(failures=3, window_s=10, ban_s=60)
    assert [throttle.failed("192.0.2.1", t) for t in (0.0, 6.0, 12.0, 18.0)] == [False] * 4
    assert not throttle.banned("192.0.2.1", 18.0)


def test_a_ban_ends_after_its_period() -> None:
    throttle = Throttle(failures=2, window_s=10, ban_s=60)
    throttle.failed("192.0.2.1", 0.0)
    throttle.failed("192.0.2.1", 1.0)
    assert throttle.banned("192.0.2.1", 60.9)
    assert not throttle.banned("192.0.2.1", 61.0)
    assert not throttle.failed("192.0.2.1", 62.0)  # counting starts again


def test_memory_is_bounded_by_the_number_of_addresses_followed() -> None:
    throttle = Throttle(failures=5, window_s=10, ban_s=60, max_tracked=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(throttle._recent) == 100
