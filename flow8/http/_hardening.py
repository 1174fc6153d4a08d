"""Protections every response gets: body limit before parsing, security headers, error shape."""

from __future__ import annotations

import logging

from quart import Response, has_request_context, request
from werkzeug.exceptions import HTTPException

from flow8.domain import FlowValidationError
from flow8.engine import FlowNotFound, KvError, PlayNotFound, PlayStateError
from flow8.services.identity import IdentityError
from flow8.store import StoreError

from ._context import Flow8App
from ._errors_map import from_engine, from_identity, from_store
from ._responses import error_response, json_response
from .exceptions import ApiError, PayloadTooLarge

log = logging.getLogger("flow8.http")

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


def install(app: Flow8App) -> None:
    limit = app.deps.settings.max_body_bytes
    # Quart enforces this while streaming bodies without a Content-Length.
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_MEMORY_SIZE"] = limit

    @app.before_request
    async def _body_limit() -> None:
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")

    @app.after_request
    async def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.path.startswith("/api/"):
            # API answers are per-user and may be sensitive: never kept by shared caches.
            headers.setdefault("Cache-Control", "no-store")
        html = (response.mimetype or "") == "text/html"
        headers.setdefault("Content-Security-Policy", _HTML_CSP if html else _API_CSP)
        if app.deps.settings.secure_cookies:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(IdentityError)
    async def _identity_error(error: IdentityError) -> Response:
        return error_response(from_identity(error))

    @app.errorhandler(FlowValidationError)
    @app.errorhandler(FlowNotFound)
    @app.errorhandler(PlayNotFound)
    @app.errorhandler(PlayStateError)
    @app.errorhandler(KvError)
    async def _engine_error(error: Exception) -> Response:
        return error_response(from_engine(error))

    @app.errorhandler(StoreError)
    async def _store_error(error: StoreError) -> Response:
        api_error = from_store(error)
        if api_error.status == 500:
            log.error("store error on %s", request.path, exc_info=error)
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
        log.error("unhandled error on %s", where, exc_info=error)
        return json_response(
            {"error": "INTERNAL_ERROR", "message": "internal server error", "statusCode": 500},
            status=500,
        )
