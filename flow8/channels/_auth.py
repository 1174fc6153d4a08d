"""Checking a channel request's credentials: a bearer token, or an HMAC signature over the
raw body in the GitHub (plain), Stripe or Slack style.

Every comparison is constant-time (``hmac.compare_digest``); a timestamped signature more
than ``MAX_SKEW`` seconds away from now is refused (a replayed request). The result is a bare
yes/no: the caller answers 401 with no detail, so a prober learns nothing about which part
was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from flow8.services.channels import AuthMode, Channel, HmacSettings, HmacStyle

MAX_SKEW = 300.0
SLACK_TIMESTAMP = "x-slack-request-timestamp"
_DEFAULT_HEADERS = {
    HmacStyle.PLAIN: "x-hub-signature-256",
    HmacStyle.STRIPE: "stripe-signature",
    HmacStyle.SLACK: "x-slack-signature",
}


def signature_header(settings: HmacSettings) -> str:
    """The (lower-case) header carrying the signature."""
    return (settings.header or _DEFAULT_HEADERS[settings.style]).lower()


def bearer_ok(channel: Channel, authorization: str | None) -> bool:
    expected = channel.auth_token or ""
    if not expected or authorization is None:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def _digest(settings: HmacSettings, message: bytes) -> str:
    algorithm = settings.algorithm.lower()
    if algorithm not in ("sha256", "sha1"):
        return ""  # an unknown algorithm verifies nothing
    return hmac.new(settings.secret.encode(), message, getattr(hashlib, algorithm)).hexdigest()


def _fresh(timestamp: str, now: float) -> bool:
    try:
        at = float(timestamp)
    except ValueError:
        return False
    return abs(now - at) <= MAX_SKEW


def hmac_ok(
    settings: HmacSettings, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> bool:
    """Whether ``headers`` (lower-case names) carry a valid signature of ``body``."""
    if not settings.secret:
        return False
    now = time.time() if now is None else now
    value = headers.get(signature_header(settings))
    if value is None:
        return False
    if settings.style is HmacStyle.PLAIN:
        expected = settings.prefix + _digest(settings, body)
        return hmac.compare_digest(value.strip().encode(), expected.encode())
    if settings.style is HmacStyle.STRIPE:
        parts: dict[str, list[str]] = {}
        for item in value.split(","):
            key, _, val = item.strip().partition("=")
            parts.setdefault(key, []).append(val)
        stamps, signatures = parts.get("t", []), parts.get("v1", [])
        if len(stamps) != 1 or not signatures or not _fresh(stamps[0], now):
            return False
        expected = _digest(settings, stamps[0].encode() + b"." + body)
        # Every v1 is compared (Stripe sends several while a secret rolls over).
        found = False
        for signature in signatures:
            found |= hmac.compare_digest(signature.encode(), expected.encode())
        return found
    # Slack: "v0=" + hex of "v0:<timestamp>:<body>".
    timestamp = headers.get(SLACK_TIMESTAMP, "")
    if not _fresh(timestamp, now):
        return False
    expected = "v0=" + _digest(settings, b"v0:" + timestamp.encode() + b":" + body)
    return hmac.compare_digest(value.strip().encode(), expected.encode())


def request_ok(channel: Channel, headers: Mapping[str, str], body: bytes) -> bool:
    """The channel's auth mode applied to one http request (lower-case header names)."""
    if channel.auth_mode is AuthMode.PUBLIC:
        return True
    if channel.auth_mode is AuthMode.HEADER_TOKEN:
        return bearer_ok(channel, headers.get("authorization"))
    return channel.hmac is not None and hmac_ok(channel.hmac, headers, body)


def hidden_headers(channel: Channel) -> frozenset[str]:
    """Headers never handed to a flow (nor audited): the credentials."""
    names = {"authorization", "cookie", "proxy-authorization"}
    if channel.hmac is not None:
        names.add(signature_header(channel.hmac))
    return frozenset(names)
