"""Sign-in throttling: growing delays per (account, source) pair, a ceiling per source, and
never a lock that one person's failures put on another's account (OWASP ASVS 5, V6.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from identity_support import OWNER_EMAIL, OWNER_PASSWORD, World, world

from flow8.services.identity import (
    Backoff,
    InvalidCredentials,
    RateLimited,
    RateLimiter,
    SigninLimits,
)

ATTACKER = "203.0.113.66"
USER = "198.51.100.7"


def _backoff(now: list[float], **limits: Any) -> Backoff:
    return Backoff.of(SigninLimits(**limits), lambda: now[0])


def test_delays_double_after_the_free_failures_up_to_the_cap() -> None:
    now = [0.0]
    b = _backoff(now, free_failures=3, first_delay=1.0, max_delay=10.0)
    pair = ("victim@example.com", ATTACKER)
    waits = []
    for _ in range(8):
        waits.append(b.blocked_for(pair))
        now[0] += waits[-1]  # wait exactly as long as told
        assert b.blocked_for(pair) == 0
        b.attempt(pair)
        b.failed(pair)
    assert waits == [0, 0, 0, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert b.delay(10_000) == 10.0  # no overflow far beyond the cap


def test_pairs_are_independent_so_no_one_locks_out_another_source() -> None:
    now = [0.0]
    b = _backoff(now, free_failures=2)
    for _ in range(20):
        b.attempt(("victim@example.com", ATTACKER))
    assert b.blocked_for(("victim@example.com", ATTACKER)) > 0
    assert b.blocked_for(("victim@example.com", USER)) == 0
    assert b.blocked_for(("other@example.com", ATTACKER)) == 0


def test_the_delay_runs_from_the_refusal_and_a_success_forgets_the_pair() -> None:
    now = [0.0]
    b = _backoff(now, free_failures=1, first_delay=5.0)
    pair = ("a@example.com", ATTACKER)
    b.attempt(pair)
    now[0] = 3.0  # a slow password check
    b.failed(pair)
    assert b.blocked_for(pair) == 5.0
    now[0] = 8.0
    assert b.blocked_for(pair) == 0
    b.reset(pair)
    b.attempt(pair)
    assert b.blocked_for(pair) == 5.0  # counted up front: racing attempts wait too
    b.reset(pair)
    assert b.blocked_for(pair) == 0


def test_a_pair_quiet_for_forget_after_starts_over() -> None:
    now = [0.0]
    b = _backoff(now, free_failures=1, first_delay=1.0, max_delay=60.0, forget_after=3600.0)
    pair = ("a@example.com", ATTACKER)
    for _ in range(10):
        b.attempt(pair)
    now[0] = 3599.0
    assert b.blocked_for(pair) == 0  # past the capped delay, still remembered
    b.attempt(pair)
    assert b.blocked_for(pair) == 60.0
    now[0] += 3600.0
    assert b.blocked_for(pair) == 0
    b.attempt(pair)
    assert b.blocked_for(pair) == 1.0  # forgotten: the first failure beyond the free one


def test_backoff_memory_is_bounded() -> None:
    b = Backoff.of(SigninLimits(max_keys=100), lambda: 0.0)
    for i in range(1000):
        b.attempt((f"u{i}@example.com", ATTACKER))
        b.failed((f"v{i}@example.com", ATTACKER))
    assert len(b) <= 100


def test_limits_refuse_settings_that_would_undo_them() -> None:
    with pytest.raises(ValueError, match="forget_after"):
        SigninLimits(max_delay=900, forget_after=60)
    with pytest.raises(ValueError, match="delays"):
        SigninLimits(first_delay=0)
    with pytest.raises(ValueError, match="source_failures"):
        SigninLimits(source_failures=0)


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


# -- the service: login throttled per pair and per source --------------------------------------


async def _fail(w: World, email: str, ip: str, n: int) -> None:
    for _ in range(n):
        with pytest.raises(InvalidCredentials):
            await w.login(email, "wrong-password-x", ip=ip)


async def test_an_attackers_guesses_never_lock_the_user_out(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await _fail(w, OWNER_EMAIL, ATTACKER, 5)
        with pytest.raises(RateLimited) as limited:
            await w.login(OWNER_EMAIL, OWNER_PASSWORD, ip=ATTACKER)  # even the right one
        assert limited.value.retry_after == 1.0
        # The user, from their own address, is not touched by any of it.
        assert (await w.login(OWNER_EMAIL, OWNER_PASSWORD, ip=USER)).principal.company_id
        for expected in (1.0, 2.0, 4.0):
            w.now[0] += expected
            await _fail(w, OWNER_EMAIL, ATTACKER, 1)
            with pytest.raises(RateLimited) as limited:
                await w.login(OWNER_EMAIL, "wrong-password-x", ip=ATTACKER)
            assert limited.value.retry_after == expected * 2
        assert (await w.login(OWNER_EMAIL, OWNER_PASSWORD, ip=USER)).principal.company_id
        # An IPv6 attacker cannot dodge the pair by rotating addresses within their /64.
        await _fail(w, OWNER_EMAIL, "2001:db8:1:2::1", 5)
        with pytest.raises(RateLimited):
            await w.login(OWNER_EMAIL, "wrong-password-x", ip="2001:db8:1:2::ffff")


async def test_unknown_accounts_are_throttled_like_known_ones(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for email in (OWNER_EMAIL, "ghost@example.com"):
            await _fail(w, email, ATTACKER, 5)
            with pytest.raises(RateLimited) as limited:
                await w.login(email, "wrong-password-x", ip=ATTACKER)
            assert limited.value.retry_after == 1.0


async def test_a_source_spraying_many_accounts_hits_its_ceiling(tmp_path: Path) -> None:
    limits = SigninLimits(source_failures=6, source_window=600)
    async with world(tmp_path, signin_limits=limits) as w:
        for i in range(6):
            await _fail(w, f"user{i}@example.com", ATTACKER, 1)
        with pytest.raises(RateLimited) as limited:
            await w.login(OWNER_EMAIL, OWNER_PASSWORD, ip=ATTACKER)
        assert limited.value.retry_after == 600
        assert (await w.login(OWNER_EMAIL, OWNER_PASSWORD, ip=USER)).principal.company_id
        w.now[0] += 600
        assert (await w.login(OWNER_EMAIL, OWNER_PASSWORD, ip=ATTACKER)).principal.company_id


async def test_a_success_takes_its_attempt_back_from_the_source(tmp_path: Path) -> None:
    """An office behind one address signing in all day never reaches its ceiling."""
    limits = SigninLimits(source_failures=3)
    async with world(tmp_path, signin_limits=limits) as w:
        for _ in range(10):
            await w.login(OWNER_EMAIL, OWNER_PASSWORD, ip=USER)
        await _fail(w, "typo@example.com", USER, 2)
        assert (await w.login(OWNER_EMAIL, OWNER_PASSWORD, ip=USER)).principal.company_id


async def test_racing_guesses_do_not_outrun_the_delay(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        outcomes: list[str] = []

        async def guess(i: int) -> None:
            try:
                await w.login(OWNER_EMAIL, f"wrong-password-{i}", ip=ATTACKER)
            except (InvalidCredentials, RateLimited) as e:
                outcomes.append(type(e).__name__)

        async with trio.open_nursery() as nursery:
            for i in range(12):
                nursery.start_soon(guess, i)
        assert outcomes.count("InvalidCredentials") == 5
        assert outcomes.count("RateLimited") == 7
        assert len(w.entries("auth_login_failure")) == 5
