"""Sliding-window counters keyed by account or IP, bounded in memory."""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Callable

import attrs

IPV6_PREFIX = 64


def address_key(ip: str) -> str:
    """The key a per-address limit counts an IP under: an IPv4 address as it is, an IPv6
    address by its /64 network. One IPv6 subscriber is routinely given a whole /64, so counting
    full addresses would let one client rotate through 2**64 of them past the limit."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


@attrs.define
class RateLimiter:
    """At most `limit` hits per `window` seconds per key.

    At most `max_keys` keys are tracked (least recently used evicted), so a flood of distinct
    keys costs bounded memory.
    """

    limit: int
    window: float
    clock: Callable[[], float]
    max_keys: int = 100_000
    _hits: OrderedDict[str, deque[float]] = attrs.field(init=False, factory=OrderedDict)

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = deque()
            self._hits[key] = hits
            if len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def blocked_for(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when allowed now."""
        hits = self._recent(key)
        if len(hits) < self.limit:
            return 0.0
        return max(0.0, hits[0] + self.window - self.clock())

    def hit(self, key: str) -> None:
        self._recent(key).append(self.clock())

    def undo(self, key: str) -> None:
        """Take back one hit (an attempt counted up front that turned out fine)."""
        hits = self._hits.get(key)
        if hits:
            hits.pop()

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)
