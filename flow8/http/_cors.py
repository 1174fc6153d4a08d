"""CORS for the origins the configuration allows, and nothing else.

Credentials (the session cookie) are allowed for those origins, so the allow-list must be exact
origins: no wildcard is ever echoed.
"""

from __future__ import annotations

import attrs
from quart import Response
from quart.wrappers import Request

from ._responses import empty_response

_ALLOWED_HEADERS = "Content-Type, Authorization, X-CSRF-Token, Idempotency-Key, X-Request-Id"
_ALLOWED_METHODS = "GET, POST, PUT, DELETE"


def _headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


@attrs.frozen
class Cors:
    """Runs from `_middleware`: `preflight` before routing, `add_headers` on every answer."""

    allowed: frozenset[str]

    def preflight(self, request: Request) -> Response | None:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        origin = request.headers.get("Origin", "")
        if origin not in self.allowed:
            return empty_response(204, headers={"Vary": "Origin"})
        headers = _headers(origin)
        headers["Access-Control-Allow-Methods"] = _ALLOWED_METHODS
        headers["Access-Control-Allow-Headers"] = _ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = "600"
        return empty_response(204, headers=headers)

    def add_headers(self, request: Request, response: Response) -> None:
        if not self.allowed:
            return  # nothing could match: skip the header lookup
        origin = request.headers.get("Origin")
        if origin and origin in self.allowed:
            for key, value in _headers(origin).items():
                response.headers[key] = value
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"
