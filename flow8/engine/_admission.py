"""Per-company admission of plays on this instance: how fast a company may start plays and
how many of its plays may run here at once.

Both are limits of one instance (each instance admits on its own; N instances admit up to N
times as much). They keep one company from taking the whole instance: a flow that starts
itself, or a client that floods the run route, is slowed or queued, never dropped.

* The start rate is a token bucket per company (``rate`` tokens a second, holding up to one
  second's worth). A start from outside (API, channel) that finds it empty is refused with
  the time to wait; a start from inside a play (a subflow) waits for its token instead.
* Running plays are counted per company; a company at its limit gets new plays queued (NEW)
  rather than started at birth, and the dispatcher leaves them until one of its plays ends.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import attrs
import trio

from .exceptions import PlayLimitReached

_MAX_TRACKED = 10_000  # companies with a bucket in memory (least recently used dropped)


@attrs.define
class _Bucket:
    tokens: float
    stamp: float


@attrs.define
class Admission:
    """``rate`` starts per second and ``running`` plays at once per company; 0 = no limit."""

    rate: float
    running: int
    clock: Callable[[], float] = time.monotonic
    _buckets: collections.OrderedDict[str, _Bucket] = attrs.field(
        init=False, factory=collections.OrderedDict
    )
    _counts: collections.Counter[str] = attrs.field(init=False, factory=collections.Counter)

    # -- start rate ----------------------------------------------------------------------

    def _wait_for_token(self, company_id: str) -> float:
        """Take a token if there is one (0.0); else the seconds until there will be."""
        if not self.rate:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(company_id)
        if bucket is None:
            bucket = _Bucket(self.rate, now)
            self._buckets[company_id] = bucket
            if len(self._buckets) > _MAX_TRACKED:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(company_id)
            bucket.tokens = min(self.rate, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def admit(self, company_id: str) -> None:
        """A start from outside: refused with PLAY_RATE_LIMIT when the company is over it."""
        wait = self._wait_for_token(company_id)
        if wait:
            raise PlayLimitReached(
                "PLAY_RATE_LIMIT",
                f"this company starts more than {self.rate:g} plays a second; retry shortly",
                retry_after=wait,
            )

    async def admit_waiting(self, company_id: str) -> None:
        """A start from inside a play: waits for the company's next token."""
        while True:
            wait = self._wait_for_token(company_id)
            if not wait:
                return
            await trio.sleep(wait)

    # -- running plays ---------------------------------------------------------------------

    def has_room(self, company_id: str) -> bool:
        return not self.running or self._counts[company_id] < self.running

    def full_companies(self) -> list[str]:
        """Companies whose plays the dispatcher should not claim now."""
        if not self.running:
            return []
        return [c for c, n in self._counts.items() if n >= self.running]

    def started(self, company_id: str) -> None:
        self._counts[company_id] += 1

    def ended(self, company_id: str) -> None:
        self._counts[company_id] -= 1
        if self._counts[company_id] <= 0:
            del self._counts[company_id]
