"""Sliding-window limiter used for logins."""

from __future__ import annotations

from flow8.services.identity import RateLimiter


def test_blocks_after_limit_until_window_slides() -> None:
    now = [0.0]
    rl = RateLimiter(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert rl.blocked_for("a") == 0
        rl.hit("a")
        now[0] += 1
    assert rl.blocked_for("a") == 57.0
    assert rl.blocked_for("b") == 0  # keys are independent
    now[0] = 60.5  # the first hit (t=0) slid out
    assert rl.blocked_for("a") == 0
    rl.reset("a")
    assert rl.blocked_for("a") == 0


def test_memory_is_bounded_by_max_keys() -> None:
    rl = RateLimiter(limit=1, window=60, clock=lambda: 0.0, max_keys=100)
    for i in range(1000):
        rl.hit(f"k{i}")
    assert len(rl._hits) <= 101
    assert rl.blocked_for("k999") > 0


def test_undo_takes_back_one_hit() -> None:
    rl = RateLimiter(limit=2, window=60, clock=lambda: 0.0)
    rl.hit("a")
    rl.hit("a")
    assert rl.blocked_for("a") > 0
    rl.undo("a")
    assert rl.blocked_for("a") == 0
    rl.undo("a")
    rl.undo("a")  # nothing left to take back, and no key: no error
    rl.undo("never-seen")
    rl.hit("a")
    assert rl.blocked_for("a") == 0


def test_per_address_limits_count_ipv6_by_64_network() -> None:
    from flow8.services.identity import address_key

    assert address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_key("unknown") == "unknown"  # no peer address: one shared bucket
