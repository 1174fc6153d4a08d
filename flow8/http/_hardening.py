"""Protections every response gets: body limit before parsing, security headers, error shape."""

from __future__ import annotations

import attrs
from quart import Response, has_request_context, request
from werkzeug.exceptions import HTTPException

from flow8.logs import get_logger
from flow8.services.channels import ChannelError
from flow8.services.components import ComponentError, ComponentServiceError
from flow8.services.credentials import CredentialError
from flow8.services.exceptions import EngineError, StoreError
from flow8.services.flows import FlowValidationError
from flow8.services.identity import IdentityError
from flow8.services.kv import KvError

from ._context import Flow8App
from ._deps import HttpSettings
from ._errors_map import (
    from_channels,
    from_components,
    from_credentials,
    from_engine,
    from_identity,
    from_store,
)
from ._responses import error_response, json_response
from .exceptions import ApiError, PayloadTooLarge

log = get_logger("flow8.http")

_API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
_HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_HTTP_CODES = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    400: "BAD_REQUEST",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


_HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def _defaults(*, api: bool, html: bool, hsts: bool) -> tuple[tuple[bytes, bytes], ...]:
    """(lower-case name, value) of every header an answer gets unless it set its own."""
    pairs = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if api:
        # API answers are per-user and may be sensitive: never kept by shared caches.
        pairs.append(("Cache-Control", "no-store"))
    pairs.append(("Content-Security-Policy", _HTML_CSP if html else _API_CSP))
    if hsts:
        pairs.append(_HSTS)
    return tuple((name.lower().encode(), value.encode()) for name, value in pairs)


@attrs.frozen
class Hardening:
    """The body limit (checked before anything reads the body) and the security headers,
    precomputed as ASGI byte pairs per kind of answer (`_middleware` applies both)."""

    limit: int
    _headers: dict[tuple[bool, bool], tuple[tuple[bytes, bytes], ...]]

    @classmethod
    def of(cls, settings: HttpSettings) -> Hardening:
        hsts = settings.secure_cookies
        table = {
            (api, html): _defaults(api=api, html=html, hsts=hsts)
            for api in (False, True)
            for html in (False, True)
        }
        return cls(settings.max_body_bytes, table)

    def too_large(self, content_length: bytes | None) -> PayloadTooLarge | None:
        """The 413 for a declared body over the limit; bodies without a length (chunked) are
        cut off by Quart's MAX_CONTENT_LENGTH while they stream."""
        if content_length is None or not content_length.isdigit():
            return None  # absent, or malformed (the HTTP parser refuses that one)
        if int(content_length) > self.limit:
            return PayloadTooLarge(f"request body exceeds {self.limit} bytes")
        return None

    def headers(self, *, api: bool, html: bool) -> tuple[tuple[bytes, bytes], ...]:
        return self._headers[(api, html)]


def install(app: Flow8App) -> None:
    """The error handlers; the body limit and headers run from `_middleware`."""
    limit = app.deps.settings.max_body_bytes
    # Quart enforces this while streaming bodies without a Content-Length.
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_MEMORY_SIZE"] = limit

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(IdentityError)
    async def _identity_error(error: IdentityError) -> Response:
        return error_response(from_identity(error))

    @app.errorhandler(CredentialError)
    async def _credential_error(error: CredentialError) -> Response:
        return error_response(from_credentials(error))

    @app.errorhandler(ChannelError)
    async def _channel_error(error: ChannelError) -> Response:
        return error_response(from_channels(error))

    @app.errorhandler(ComponentServiceError)
    @app.errorhandler(ComponentError)
    async def _component_error(error: Exception) -> Response:
        return error_response(from_components(error))  # type: ignore[arg-type]

    @app.errorhandler(FlowValidationError)
    @app.errorhandler(EngineError)  # FlowNotFound, PlayNotFound, InvalidInput, ...
    @app.errorhandler(KvError)
    async def _engine_error(error: Exception) -> Response:
        return error_response(from_engine(error))

    @app.errorhandler(StoreError)
    async def _store_error(error: StoreError) -> Response:
        api_error = from_store(error)
        if api_error.status == 500:
            log.error("http.store_error", path=request.path, exc_info=error)
        return error_response(api_error)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_CODES.get(status, f"HTTP_{status}")
        message = error.description or error.name
        return json_response(
            {"error": code, "message": message, "statusCode": status}, status=status
        )

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        # The message of an unexpected error may carry data; the client gets none of it.
        where = f"{request.method} {request.path}" if has_request_context() else "websocket"
        log.error("http.unhandled_error", where=where, exc_info=error)
        return json_response(
            {"error": "INTERNAL_ERROR", "message": "internal server error", "statusCode": 500},
            status=500,
        )
