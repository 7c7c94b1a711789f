"""Failures per key within a window, then a ban (time is an argument: no clock is read)."""

from __future__ import annotations

import pytest

from engine.throttle import Throttle


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


def test_ban_ends_says_how_long_a_ban_has_left() -> None:
    throttle = Throttle(failures=1, window_s=10, ban_s=60)
    assert throttle.ban_ends("token-a", 0.0) is None
    throttle.failed("token-a", 5.0)
    assert throttle.ban_ends("token-a", 20.0) == pytest.approx(45.0)
    assert throttle.ban_ends("token-b", 20.0) is None
    assert throttle.ban_ends("token-a", 65.0) is None


def test_counted_is_the_failures_within_the_window() -> None:
    throttle = Throttle(failures=3, window_s=10, ban_s=60)
    assert throttle.counted("k", 0.0) == 0
    throttle.failed("k", 0.0)
    throttle.failed("k", 5.0)
    assert throttle.counted("k", 6.0) == 2
    assert throttle.counted("k", 12.0) == 1  # the first fell out of the window
    assert throttle.counted("k", 16.0) == 0
    throttle.failed("k", 16.0)
    throttle.failed("k", 17.0)
    throttle.failed("k", 18.0)  # a ban starts: the count starts again
    assert throttle.counted("k", 18.0) == 0


def test_memory_is_bounded_by_the_number_of_keys_followed() -> None:
    throttle = Throttle(failures=5, window_s=10, ban_s=60, max_tracked=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert throttle.tracked() == 100


def test_memory_is_bounded_under_a_flood_of_bans_lifting_the_soonest_ending_first() -> None:
    throttle = Throttle(failures=1, window_s=10, ban_s=60, max_tracked=100)
    for i in range(1000):
        assert throttle.failed(f"key-{i}", i / 100)
    assert throttle.tracked() == 100
    assert not throttle.banned("key-0", 10.0)  # lifted early, to make room
    assert throttle.banned("key-999", 10.0)


def test_expired_bans_are_forgotten() -> None:
    throttle = Throttle(failures=1, window_s=10, ban_s=60)
    for i in range(50):
        throttle.failed(f"key-{i}", 0.0)
    throttle.failed("late", 61.0)
    assert throttle.tracked() == 1


@pytest.mark.parametrize("bad", [{"failures": 0}, {"window_s": 0}, {"ban_s": -1},
                                 {"max_tracked": 0}],
                         ids=["failures", "window_s", "ban_s", "max_tracked"])
def test_nonsense_settings_are_refused_naming_them(bad: dict[str, float]) -> None:
    settings: dict[str, float] = {"failures": 3, "window_s": 10, "ban_s": 60, **bad}
    field = next(iter(bad))
    with pytest.raises(ValueError, match=f"{field}={bad[field]}"):
        Throttle(**settings)  # type: ignore[arg-type]
