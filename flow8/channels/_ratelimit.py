"""A token bucket per client address: ``rate`` requests a second, bursts of ``2 * rate``.

Buckets of clients not seen for a while are forgotten (a full bucket carries no state), so
a scan of many addresses cannot grow the table without bound."""

from __future__ import annotations

import attrs
import trio

MAX_CLIENTS = 10_000


@attrs.define
class _Bucket:
    tokens: float
    at: float


@attrs.define
class RateLimiter:
    rate: float
    burst: float = attrs.field(default=0.0)
    _buckets: dict[str, _Bucket] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.burst <= 0:
            self.burst = max(1.0, self.rate * 2)

    def allow(self, client: str) -> bool:
        """Take one token for ``client``; False when its bucket is empty."""
        if self.rate <= 0:
            return True
        now = trio.current_time()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_CLIENTS:
                self._forget_full(now)
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.at >= refill]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_CLIENTS:  # all busy: drop the oldest half
            for key in sorted(self._buckets, key=lambda k: self._buckets[k].at)[: MAX_CLIENTS // 2]:
                del self._buckets[key]
