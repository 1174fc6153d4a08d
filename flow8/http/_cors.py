"""CORS for the origins the configuration allows, and nothing else.

Credentials (the session cookie) are allowed for those origins, so the allow-list must be exact
origins: no wildcard is ever echoed. Works on raw ASGI header pairs (`_middleware` calls it).
"""

from __future__ import annotations

import attrs

Pair = tuple[bytes, bytes]

_ALLOWED_HEADERS = b"Content-Type, Authorization, X-CSRF-Token, Idempotency-Key, X-Request-Id"
_ALLOWED_METHODS = b"GET, POST, PUT, DELETE"
_VARY = (b"vary", b"Origin")


@attrs.frozen
class Cors:
    """`preflight` answers an OPTIONS preflight before routing; `headers` are added to every
    other answer."""

    allowed: frozenset[bytes]

    @classmethod
    def of(cls, origins: list[str] | tuple[str, ...]) -> Cors:
        return cls(frozenset(o.encode("latin-1") for o in origins))

    def preflight(self, origin: bytes) -> list[Pair]:
        """The headers of the 204 answering a preflight from `origin`."""
        if origin not in self.allowed:
            return [_VARY]
        return [
            *self._granted(origin),
            (b"access-control-allow-methods", _ALLOWED_METHODS),
            (b"access-control-allow-headers", _ALLOWED_HEADERS),
            (b"access-control-max-age", b"600"),
        ]

    def headers(self, origin: bytes | None) -> list[Pair]:
        if not origin or origin not in self.allowed:
            return []
        return [
            *self._granted(origin),
            (b"access-control-expose-headers", b"X-Request-Id, Retry-After"),
        ]

    @staticmethod
    def _granted(origin: bytes) -> list[Pair]:
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            _VARY,
        ]
