"""Errors the HTTP layer turns into `{error, message, statusCode}` responses.

Hierarchy::

    ApiError                      any error with a machine-readable code and an HTTP status
    ├── BadRequest                400 (malformed JSON, bad query parameters)
    │   └── ValidationFailed      422, lists every bad field in `fields`
    ├── Unauthenticated           401 (no or invalid credentials)
    ├── Forbidden                 403 (authenticated, not allowed)
    ├── NotFound                  404 (also for another company's ids)
    ├── Conflict                  409
    ├── PayloadTooLarge           413 (body over the configured limit, refused before parsing)
    ├── UnsupportedMediaType      415 (a JSON route given another content type)
    ├── TooManyRequests           429 (rate limits; carries `retry_after` seconds)
    ├── BadGateway                502 (a server asked on the caller's behalf failed: OAuth2)
    └── ServiceUnavailable        503 (the database cannot be reached)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ApiError(Exception):
    """An error the client may see: a stable code, a human message and an HTTP status."""

    status = 500
    default_code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra: dict[str, Any] = dict(extra)

    def body(self) -> dict[str, Any]:
        body = {"error": self.code, "message": self.message, "statusCode": self.status}
        return {**body, **self.extra}


class BadRequest(ApiError):
    status = 400
    default_code = "BAD_REQUEST"


class ValidationFailed(BadRequest):
    """Every bad field is listed so a client can fix them all in one round trip."""

    status = 422
    default_code = "VALIDATION_FAILED"

    def __init__(self, fields: Sequence[Mapping[str, str]], message: str | None = None) -> None:
        names = ", ".join(f["field"] for f in fields)
        super().__init__(message or f"invalid fields: {names}", fields=[dict(f) for f in fields])
        self.fields = [dict(f) for f in fields]


class Unauthenticated(ApiError):
    status = 401
    default_code = "UNAUTHENTICATED"


class Forbidden(ApiError):
    status = 403
    default_code = "FORBIDDEN"


class NotFound(ApiError):
    status = 404
    default_code = "NOT_FOUND"


class Conflict(ApiError):
    status = 409
    default_code = "CONFLICT"


class PayloadTooLarge(ApiError):
    status = 413
    default_code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    status = 415
    default_code = "UNSUPPORTED_MEDIA_TYPE"


class TooManyRequests(ApiError):
    status = 429
    default_code = "TOO_MANY_REQUESTS"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BadGateway(ApiError):
    """A server flow8 asked on the caller's behalf (an OAuth2 token endpoint) failed."""

    status = 502
    default_code = "BAD_GATEWAY"


class ServiceUnavailable(ApiError):
    status = 503
    default_code = "SERVICE_UNAVAILABLE"
