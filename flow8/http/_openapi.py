"""The OpenAPI 3.1 document, generated from the route declarations and their attrs models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flow8.domain import api_fields
from flow8.services.identity import Action

from ._api import SESSION_COOKIE, RouteSpec
from ._schema import Components, field_schema, type_schema

_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "machine-readable code, e.g. FLOW_NOT_FOUND"},
        "message": {"type": "string"},
        "statusCode": {"type": "integer"},
    },
    "required": ["error", "message", "statusCode"],
}
_VALIDATION_ERROR = {
    "type": "object",
    "properties": {
        **_ERROR["properties"],  # type: ignore[dict-item]
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["error", "message", "statusCode", "fields"],
}
_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, missing body)",
    401: "Not authenticated, or invalid credentials",
    403: "Authenticated but not allowed (role, scope, CSRF token)",
    404: "Not found (also: belongs to another company)",
    409: "Conflict with the current state",
    413: "Request body over the size limit",
    415: "Body is not application/json",
    422: "Validation failed; every bad field is listed",
    429: "Rate limited; see Retry-After",
    503: "The database is unavailable; retry shortly",
}


def _errors(spec: RouteSpec) -> list[int]:
    codes = {401, 403, 503, *spec.errors}
    if spec.body is not None:
        codes |= {400, 413, 415, 422}
    if spec.query is not None:
        codes.add(422)
    if spec.path == "/api/auth/login":
        codes.add(429)
    return sorted(codes)


def _parameters(spec: RouteSpec, comps: Components) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for p in spec.params
    ]
    if spec.query is not None:
        for f in api_fields(spec.query):
            schema = field_schema(f, comps)
            out.append({"name": f.key, "in": "query", "required": f.required, "schema": schema})
    return out


def _operation(spec: RouteSpec, comps: Components) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": spec.operation_id,
        "summary": spec.summary,
        "tags": [spec.tag],
        "x-flow8-action": spec.action.value,
    }
    if spec.action is not Action.PUBLIC:
        op["security"] = [{"sessionCookie": []}, {"apiKey": []}]
    else:
        op["security"] = [{}]
    params = _parameters(spec, comps)
    if params:
        op["parameters"] = params
    if spec.body is not None:
        schema = {} if spec.body is Any else type_schema(spec.body, comps)
        op["requestBody"] = {
            "required": not spec.body_optional,
            "content": {"application/json": {"schema": schema}},
        }
    responses: dict[str, Any] = {}
    for status in (spec.status, *spec.also):
        if spec.response is None:
            responses[str(status)] = {"description": "Done"}
        else:
            responses[str(status)] = {
                "description": "OK" if status < 300 else "Accepted",
                "content": {"application/json": {"schema": type_schema(spec.response, comps)}},
            }
    for code in _errors(spec):
        name = "ValidationError" if code == 422 else "Error"
        responses[str(code)] = {
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    op["responses"] = responses
    return op


_HEALTH = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok", "starting"]}},
    "required": ["status"],
}


def _plain_routes() -> dict[str, dict[str, Any]]:
    """Routes served outside the API's route table (no auth, no audit): documented by hand.
    `/ws` (a WebSocket), `/admin/*` and `/metrics` (the admin token) are described in
    docs/api.md."""

    def json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    public = {"security": [{}], "x-flow8-action": Action.PUBLIC.value, "tags": ["ops"]}
    return {
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Readiness: 200 once every part of the server runs, 503 before",
                **public,
                "responses": {
                    "200": json_answer("Ready", _HEALTH),
                    "503": json_answer("Starting", _HEALTH),
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                **public,
                "responses": {"200": json_answer("OpenAPI 3.1", {"type": "object"})},
            }
        },
    }


def build_openapi(specs: Iterable[RouteSpec], version: str = "0.1.0") -> dict[str, Any]:
    comps = Components()
    paths: dict[str, dict[str, Any]] = _plain_routes()
    for spec in specs:
        paths.setdefault(spec.path, {})[spec.method.lower()] = _operation(spec, comps)
    schemas = dict(sorted(comps.schemas.items()))
    schemas["Error"] = _ERROR
    schemas["ValidationError"] = _VALIDATION_ERROR
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flow8",
            "version": version,
            "description": "Multi-tenant workflow automation. JSON bodies are camelCase; "
            "lists are paginated with ?page=0&size=25 (size at most 100).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "From POST /api/auth/login; unsafe methods also need the "
                    "X-CSRF-Token header",
                },
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key"},
            },
        },
    }
