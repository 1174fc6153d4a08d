"""Sign-in throttling that slows guessing without letting anyone lock somebody else out.

OWASP ASVS 5 (V6.3, anti-automation) asks for limits on password guessing that cannot be turned
into an account lockout. A lock per account would let anyone shut a user out by sending wrong
passwords for their email, so failures count per (account, source) pair instead: the source
guessing is slowed down, with delays that double after a few free failures, while the same
account signing in from anywhere else is not touched. A per-source ceiling over all accounts
stops one address from spraying guesses across many accounts; it is set high enough for an
office or a proxy (see `TRUSTED_PROXIES`) sharing one address.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import attrs


@attrs.frozen
class SigninLimits:
    """How password attempts (sign-in, accepting an invitation as an existing user, changing
    one's password) are slowed. A source is a client address as `address_key` counts it
    (an IPv4 address, or an IPv6 /64)."""

    # Failed attempts an (account, source) pair makes before it must wait between attempts.
    free_failures: int = 5
    # Seconds to wait after the first failure beyond the free ones; doubles with each further
    # failure (1, 2, 4, ... s) ...
    first_delay: float = 1.0
    # ... up to this many seconds (15 minutes: at most ~100 guesses a day per pair).
    max_delay: float = 900.0
    # A pair that has not failed for this long starts over with its free failures.
    forget_after: float = 86_400.0
    # Failed attempts one source may make against any accounts within `source_window`
    # seconds before it is refused (a success takes its attempt back).
    source_failures: int = 100
    source_window: float = 900.0
    # Pairs and sources tracked at most (least recently used forgotten): bounded memory.
    max_keys: int = 100_000

    def __attrs_post_init__(self) -> None:
        if self.free_failures < 0 or self.source_failures < 1:
            raise ValueError("free_failures must be >= 0 and source_failures >= 1")
        if not 0 < self.first_delay <= self.max_delay:
            raise ValueError("delays must satisfy 0 < first_delay <= max_delay")
        if self.forget_after < self.max_delay:
            # Otherwise a patient guesser would get a fresh set of free failures each time.
            raise ValueError("forget_after must be at least max_delay")


Pair = tuple[str, str]  # (account, source)


@attrs.define
class Backoff:
    """Growing delays per (account, source) pair after `free` failures.

    An attempt is counted before its (slow) password check, so racing attempts cannot all get
    past the delay; `failed` restarts the delay when the refusal is known, and `reset` forgets
    the pair after a success.
    """

    free: int
    first_delay: float
    max_delay: float
    forget_after: float
    clock: Callable[[], float]
    max_keys: int = 100_000
    # pair -> (failures counted, when the last one was counted)
    _pairs: OrderedDict[Pair, tuple[int, float]] = attrs.field(init=False, factory=OrderedDict)

    @classmethod
    def of(cls, limits: SigninLimits, clock: Callable[[], float]) -> Backoff:
        return cls(
            limits.free_failures,
            limits.first_delay,
            limits.max_delay,
            limits.forget_after,
            clock,
            limits.max_keys,
        )

    def delay(self, failures: int) -> float:
        """Seconds a pair with `failures` counted failures waits before its next attempt."""
        if failures < self.free:
            return 0.0
        # (bounded exponent: 2.0 ** 1100 would overflow long after the cap applies)
        return min(self.max_delay, self.first_delay * 2.0 ** min(failures - self.free, 64))

    def _current(self, pair: Pair) -> tuple[int, float] | None:
        state = self._pairs.get(pair)
        if state is None:
            return None
        if self.clock() - state[1] >= self.forget_after:
            del self._pairs[pair]
            return None
        self._pairs.move_to_end(pair)
        return state

    def blocked_for(self, pair: Pair) -> float:
        """Seconds until `pair` may try again; 0 when it may now."""
        state = self._current(pair)
        if state is None:
            return 0.0
        failures, last = state
        return max(0.0, last + self.delay(failures) - self.clock())

    def attempt(self, pair: Pair) -> None:
        """Count an attempt as a failure before it is checked."""
        state = self._current(pair)
        self._pairs[pair] = ((state[0] if state else 0) + 1, self.clock())
        if len(self._pairs) > self.max_keys:
            self._pairs.popitem(last=False)

    def failed(self, pair: Pair) -> None:
        """The attempt counted by `attempt` failed: its delay runs from now."""
        state = self._pairs.get(pair)
        self._pairs[pair] = (state[0] if state else 1, self.clock())
        if len(self._pairs) > self.max_keys:
            self._pairs.popitem(last=False)

    def reset(self, pair: Pair) -> None:
        self._pairs.pop(pair, None)

    def __len__(self) -> int:
        return len(self._pairs)
