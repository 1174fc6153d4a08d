"""Who may see `/admin/*`: the bearer admin token, or a short-lived cookie a browser got by
typing that token into the login form.

The cookie carries no secret: it is an expiry and a nonce signed with a key derived from a
per-process random secret and the admin token, so changing the token (or restarting) revokes
every cookie, and a stolen cookie dies after `admin_cookie_ttl_seconds`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

import attrs

from flow8.services.identity import RateLimiter

from .exceptions import Forbidden, NotFound, Unauthenticated

COOKIE_NAME = "flow8_admin"


@attrs.define
class AdminGate:
    token: str | None
    ttl_seconds: float
    clock: Callable[[], float]
    _secret: bytes = attrs.field(factory=lambda: secrets.token_bytes(32))
    # Failed sign-ins through the form, per client IP (10 per 15 minutes).
    failures: RateLimiter = attrs.field(
        default=attrs.Factory(lambda s: RateLimiter(10, 900, s.clock), takes_self=True)
    )

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def _key(self) -> bytes:
        assert self.token
        return hmac.new(self._secret, self.token.encode(), hashlib.sha256).digest()

    def token_matches(self, candidate: str) -> bool:
        if not self.token:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def issue_cookie(self) -> str:
        expires = int(self.clock() + self.ttl_seconds)
        payload = f"{expires}.{secrets.token_urlsafe(12)}"
        sig = hmac.new(self._key(), payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}.{sig}"

    def cookie_valid(self, value: str) -> bool:
        if not self.token:
            return False
        parts = value.split(".")
        if len(parts) != 3 or not (parts[0].isascii() and parts[0].isdigit()):
            return False
        payload = f"{parts[0]}.{parts[1]}"
        expected = hmac.new(self._key(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), parts[2].encode()):
            return False
        return int(parts[0]) > self.clock()

    def check(self, authorization: str | None, cookie: str | None) -> None:
        """Raise unless the request may read admin pages.

        No token configured: 404 (the endpoint does not exist). A bearer token that is wrong:
        403. Neither a bearer token nor a valid cookie: 401.
        """
        if not self.enabled:
            raise NotFound("not found")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                if self.token_matches(value.strip()):
                    return
                raise Forbidden("wrong admin token", code="ADMIN_TOKEN_INVALID")
        if cookie and self.cookie_valid(cookie):
            return
        raise Unauthenticated("admin token required", code="ADMIN_AUTH_REQUIRED")
