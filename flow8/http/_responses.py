"""Response helpers that always give Quart a bytes body (quart-trio crashes on anything else)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from quart import Response

from .exceptions import ApiError, TooManyRequests


def json_bytes(data: Any) -> bytes:
    """Compact UTF-8 JSON. orjson writes it about 10x faster than `json` (every API answer
    pays this); `json` takes over for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json_bytes(data), status=status, headers=headers, content_type="application/json"
    )


def html_response(page: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        page.encode(), status=status, headers=headers, content_type="text/html; charset=utf-8"
    )


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status=status, headers=headers)


def error_response(error: ApiError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(max(1, int(error.retry_after + 0.999)))
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="flow8"'
    return json_response(error.body(), status=error.status, headers=headers)
