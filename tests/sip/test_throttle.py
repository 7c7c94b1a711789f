"""Bans after repeated digest failures: a login at an address first, the whole address only
when it fails for many usernames (time is an argument)."""

from __future__ import annotations

from sip.throttle import AuthThrottle, BanScope

OFFICE = "198.51.100.7"
"""One NAT address, many users behind it."""


def _throttle() -> AuthThrottle:
    return AuthThrottle(failures=3, window_s=60, ban_s=300)


def test_n_failures_of_one_login_ban_that_login_at_that_address_only() -> None:
    throttle = _throttle()
    started = [throttle.failed(OFFICE, "ana@acme", t) for t in (0.0, 1.0, 2.0)]
    assert started == [(), (), (BanScope.USER,)]
    assert throttle.login_banned(OFFICE, "ana@acme", 3.0)
    assert not throttle.login_banned(OFFICE, "lee@acme", 3.0)
    assert not throttle.login_banned("203.0.113.9", "ana@acme", 3.0)
    assert not throttle.banned(OFFICE, 3.0)


def test_the_same_username_in_another_realm_is_another_login() -> None:
    throttle = _throttle()
    for t in (0.0, 1.0, 2.0):
        throttle.failed(OFFICE, "ana@acme", t)
    assert not throttle.login_banned(OFFICE, "ana@other", 3.0)


def test_failures_for_n_different_usernames_ban_the_whole_address() -> None:
    throttle = _throttle()
    assert throttle.failed(OFFICE, "ana@acme", 0.0) == ()
    assert throttle.failed(OFFICE, "lee@acme", 1.0) == ()
    assert throttle.failed(OFFICE, "admin@acme", 2.0) == (BanScope.ADDRESS,)
    assert throttle.banned(OFFICE, 3.0)
    assert not throttle.banned("203.0.113.9", 3.0)


def test_a_login_failing_again_does_not_count_again_towards_the_address() -> None:
    throttle = _throttle()
    for t in (0.0, 1.0):
        throttle.failed(OFFICE, "ana@acme", t)
    assert throttle.failed(OFFICE, "lee@acme", 2.0) == ()
    assert throttle.failed(OFFICE, "lee@acme", 3.0) == ()
    assert not throttle.banned(OFFICE, 4.0)


def test_a_scan_of_unknown_usernames_bans_the_address() -> None:
    throttle = _throttle()
    started = [throttle.failed(OFFICE, f"user{i}@acme", float(i)) for i in range(3)]
    assert started[-1] == (BanScope.ADDRESS,)
    assert throttle.banned(OFFICE, 3.0)


def test_an_unknown_username_is_banned_exactly_as_a_real_one_would_be() -> None:
    """Nothing tells a guesser which usernames are real: the throttle is not even told."""
    real, made_up = _throttle(), _throttle()
    for t in (0.0, 1.0, 2.0):
        assert real.failed(OFFICE, "ana@acme", t) == made_up.failed(OFFICE, "zz-nobody@acme", t)
    assert real.banned(OFFICE, 3.0) is made_up.banned(OFFICE, 3.0) is False


def test_a_username_counts_again_towards_the_address_once_its_failures_left_the_window() -> None:
    throttle = _throttle()
    throttle.failed(OFFICE, "ana@acme", 0.0)
    throttle.failed(OFFICE, "ana@acme", 61.0)
    throttle.failed(OFFICE, "ana@acme", 122.0)
    assert not throttle.banned(OFFICE, 122.0)  # three counts, but never within one window
    throttle.failed(OFFICE, "lee@acme", 123.0)
    assert throttle.failed(OFFICE, "sam@acme", 124.0) == (BanScope.ADDRESS,)


def test_bans_end_after_their_period() -> None:
    throttle = _throttle()
    for t in (0.0, 1.0, 2.0):
        throttle.failed(OFFICE, "ana@acme", t)
    throttle.failed(OFFICE, "lee@acme", 2.0)
    throttle.failed(OFFICE, "sam@acme", 2.0)
    assert throttle.banned(OFFICE, 301.9) and throttle.login_banned(OFFICE, "ana@acme", 301.9)
    assert not throttle.banned(OFFICE, 302.0)
    assert not throttle.login_banned(OFFICE, "ana@acme", 302.0)


def test_one_failure_may_start_both_bans() -> None:
    throttle = AuthThrottle(failures=1, window_s=60, ban_s=300)
    assert throttle.failed(OFFICE, "ana@acme", 0.0) == (BanScope.USER, BanScope.ADDRESS)


def test_memory_is_bounded_however_many_logins_and_addresses_fail() -> None:
    throttle = AuthThrottle(failures=5, window_s=60, ban_s=300, max_tracked=100)
    for i in range(2000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", f"user{i}@acme", 0.0)
        throttle.failed(OFFICE, f"user{i}@acme", 0.0)
    assert throttle.tracked() <= 4 * 100
