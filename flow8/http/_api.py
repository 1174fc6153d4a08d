"""Declaring API routes: one decorator states method, path, RBAC action, body, query, answer
and errors. The same declarations drive authentication, the permission check, validation,
the response shape and the OpenAPI document, so none of them can drift from the others.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
from quart import Quart, Response, has_websocket_context, request, websocket
from quart.globals import request_ctx
from werkzeug.datastructures import Headers

from flow8.domain import InvalidData, Problem, api, camel
from flow8.services.audit import AuditEntry
from flow8.services.identity import Action, Principal
from flow8.services.identity import NotAuthenticated as IdentityUnauthenticated
from flow8.services.storage import invalid_text_in

from ._client_ip import client_address
from ._context import app
from ._request_audit import Trail, trail_of
from ._responses import empty_response, json_response
from .exceptions import (
    BadRequest,
    Forbidden,
    NotFound,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)

SESSION_COOKIE = "flow8_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PARAM = re.compile(r"{(\w+)}")


def session_cookie(value: str, max_age: int) -> str:
    """The Set-Cookie value of the session cookie (the API's login and the UI's share it)."""
    flags = f"Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    if app().deps.settings.secure_cookies:
        flags += "; Secure"
    return f"{SESSION_COOKIE}={value}; {flags}"


@attrs.frozen
class Req:
    """What a handler gets: the caller, the parsed body and query, and request facts."""

    principal: Principal | None
    body: Any
    query: Any
    ip: str
    user_agent: str
    correlation_id: str
    headers: Headers
    raw_body: Any = None  # the decoded JSON, for services that parse it themselves

    @property
    def user(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated("authentication required")
        return self.principal

    @property
    def company_id(self) -> str:
        company = self.user.company_id
        if company is None:
            raise Forbidden("select a company first", code="NO_COMPANY")
        return company


Handler = Callable[..., Awaitable[Any]]


def audit_change(
    req: Req,
    action: str,
    target_type: str,
    target_id: str,
    *,
    before: Any = None,
    after: Any = None,
    details: Any = None,
) -> None:
    """Record a create/update/delete (or command) with its before and after state; the
    audit entry masks secret fields itself."""
    principal = req.user
    app().deps.audit(
        AuditEntry(
            action,
            company_id=principal.company_id,
            user_id=principal.user.id,
            user_email=principal.user.email,
            ip=req.ip,
            user_agent=req.user_agent,
            correlation_id=req.correlation_id,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
            details=details,
        )
    )


@attrs.frozen
class RouteSpec:
    method: str
    path: str  # OpenAPI form: /api/flows/{flowId}
    action: Action
    summary: str
    tag: str
    body: Any = None  # an attrs class, or Any for free JSON (a play's input)
    query: type | None = None
    response: Any = None  # attrs class, page model, or None for 204
    status: int = 200
    errors: tuple[int, ...] = ()
    company_param: str | None = None  # path parameter naming the company acted on
    handler: Handler | None = None
    also: tuple[int, ...] = ()  # further success statuses with the same body
    body_optional: bool = False

    @property
    def operation_id(self) -> str:
        assert self.handler is not None
        return camel(self.handler.__name__.lstrip("_"))

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def quart_path(self) -> str:
        return _PARAM.sub(r"<\1>", self.path)


class Routes:
    """A group of routes (one module's worth), mounted into the app by `create_app`."""

    def __init__(self, name: str, tag: str) -> None:
        self.name = name
        self.tag = tag
        self.specs: list[RouteSpec] = []
        self._views: list[tuple[RouteSpec, Callable[..., Awaitable[Response]]]] = []

    def mount(self, application: Quart) -> None:
        """Add the group's routes to the app itself, not through a Blueprint: Quart works out
        a request's blueprint chain several times per request, and these routes have no
        blueprint-level hooks or error handlers to find. The endpoint (no dot, so no
        blueprint) keeps the group's name."""
        for spec, view in self._views:
            endpoint = f"{self.name}:{view.__name__}"
            application.add_url_rule(
                spec.quart_path, endpoint=endpoint, view_func=view, methods=[spec.method]
            )

    def route(
        self,
        method: str,
        path: str,
        *,
        action: Action,
        summary: str,
        body: Any = None,
        query: type | None = None,
        response: Any = None,
        status: int = 200,
        errors: tuple[int, ...] = (),
        company_param: str | None = None,
        also: tuple[int, ...] = (),
        body_optional: bool = False,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            spec = RouteSpec(
                method,
                path,
                action,
                summary,
                self.tag,
                body,
                query,
                response,
                status,
                errors,
                company_param,
                handler,
                also,
                body_optional,
            )
            self.specs.append(spec)

            async def view(**params: str) -> Response:
                return await _run(spec, params)

            view.__name__ = handler.__name__
            self._views.append((spec, view))
            return handler

        return decorate


def _incoming() -> Any:
    """The current HTTP request or WebSocket handshake (both carry headers and cookies)."""
    return websocket if has_websocket_context() else request


def trail() -> Trail | None:
    """The audit trail `_middleware` opened for the current HTTP request (None for a
    WebSocket handshake, or an app called without the middleware)."""
    return trail_of(_incoming().scope)


def client_ip(opened: Trail | None = None) -> str:
    """The caller's address for rate limits and the audit trail (see `_client_ip`)."""
    opened = opened or trail()
    if opened is not None:
        return opened.ip or "unknown"  # worked out once, by the middleware
    incoming = _incoming()
    trusted = app().deps.settings.trusted_proxies
    return client_address(incoming.remote_addr, incoming.headers, trusted) or "unknown"


async def authenticate(*, optional: bool, incoming: Any = None) -> Principal | None:
    """The caller of the current request or WebSocket handshake (`incoming`, when the
    caller already holds it: one context lookup fewer on every request)."""
    identity = app().deps.identity
    if identity is None:
        raise NotFound("identity is not configured")
    incoming = incoming if incoming is not None else _incoming()
    auth = incoming.headers.get("Authorization")
    try:
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Unauthenticated("use 'Authorization: Bearer <API key>'")
            return await identity.api_key_principal(value.strip(), scope="api")
        token = incoming.cookies.get(SESSION_COOKIE)
        if not token:
            if optional:
                return None
            raise Unauthenticated("authentication required")
        principal = await identity.session_principal(token)
    except IdentityUnauthenticated:
        if optional and auth is None:
            return None
        raise
    # A WebSocket handshake is a GET; its Origin is checked by the /ws handler instead.
    if incoming.method not in SAFE_METHODS and not has_websocket_context():
        sent = incoming.headers.get("X-CSRF-Token", "")
        expected = principal.csrf_token or ""
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Forbidden("missing or wrong X-CSRF-Token header", code="CSRF_INVALID")
    return principal


async def _scoped(spec: RouteSpec, principal: Principal, params: Mapping[str, str]) -> Principal:
    """For routes acting on a company named in the path, the caller's role is their role
    in *that* company; a company they are not in does not exist for them (404)."""
    assert spec.company_param is not None
    company_id = params[spec.company_param]
    if principal.company_id == company_id:
        return principal
    if principal.via == "api_key":
        raise NotFound("company not found", code="COMPANY_NOT_FOUND")
    identity = app().deps.identity
    assert identity is not None
    role = await identity.role_in(principal.user.id, company_id)
    if role is None:
        raise NotFound("company not found", code="COMPANY_NOT_FOUND")
    return attrs.evolve(principal, company_id=company_id, role=role)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        return True
    return mime.startswith("application/") and mime.endswith("+json")


async def _read_json(*, optional: bool = False) -> Any:
    if optional and not request.headers.get("Content-Type") and not request.content_length:
        return None
    if not _is_json(request.headers.get("Content-Type")):
        raise UnsupportedMediaType("this route accepts application/json bodies only")
    raw = await request.get_data(cache=False, as_text=False)
    if not raw:
        if optional:
            return None
        raise BadRequest("a JSON body is required", code="BODY_REQUIRED")
    try:
        value = json.loads(raw)
    except RecursionError as e:
        raise BadRequest("JSON nested too deeply", code="INVALID_JSON") from e
    except ValueError as e:
        raise BadRequest(f"invalid JSON: {e}", code="INVALID_JSON") from e
    refuse_invalid_text(raw, value)
    return value


# Raw UTF-8 cannot carry a lone surrogate (the decoder refuses it as invalid JSON above); only a
# \uD800-\uDFFF escape can. Bodies without one (nearly all) are not walked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def refuse_invalid_text(raw: bytes | str, value: Any) -> None:
    """422 naming the first field (or key) of a decoded JSON body whose text is not valid
    Unicode: it could not be stored, logged or sent on, and must not get past the door."""
    text = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if _SURROGATE_ESCAPE.search(text) is None:
        return
    found = invalid_text_in(value)
    if found is not None:
        path, problem = found
        field = path or "(body)"
        raise ValidationFailed([{"field": field, "message": problem}], f"{field}: {problem}")


def problem_fields(problems: Sequence[Problem]) -> list[dict[str, str]]:
    """Problems as the API lists them: ``{field, message}``, ``(body)`` for the whole body."""
    return [{"field": p.path or "(body)", "message": p.message} for p in problems]


def parse_body(cls: type, value: Any) -> Any:
    """``value`` (decoded JSON) as ``cls``, or 422 listing every bad field at once."""
    try:
        return api.parse(value, cls)
    except InvalidData as e:
        raise ValidationFailed(problem_fields(e.problems)) from None


def parse_query(cls: type, args: Mapping[str, str]) -> Any:
    """Query parameters as ``cls`` (each read as its field's type), or 422 listing every bad
    parameter, in the same words as a bad body field."""
    try:
        return api.parse_text(args, cls)
    except InvalidData as e:
        raise ValidationFailed(problem_fields(e.problems)) from None


async def _run(spec: RouteSpec, params: dict[str, str]) -> Response:
    public = spec.action is Action.PUBLIC
    # Public routes (install, login) ignore any credentials sent: a browser that still holds
    # a session cookie must be able to log in again without a CSRF token.
    current = request_ctx.request  # the request itself: one context lookup, no proxy after
    principal = None if public else await authenticate(optional=False, incoming=current)
    if principal is not None and spec.company_param is not None:
        principal = await _scoped(spec, principal, params)
    opened = trail_of(current.scope)  # routes serve HTTP requests, never WebSockets
    if opened is not None:
        opened.principal = principal  # the request's audit entry names the caller
    if not public:
        assert principal is not None
        if spec.action is not Action.SIGNED_IN:
            if principal.company_id is None:
                raise Forbidden("select a company first", code="NO_COMPANY")
            if not principal.may(spec.action):
                raise Forbidden(
                    f"your role ({principal.role}) may not {spec.action.value}",
                    code="PERMISSION_DENIED",
                )
    body: Any = None
    raw: Any = None
    if spec.body is not None:
        raw = await _read_json(optional=spec.body_optional)
        body = raw if spec.body is Any else parse_body(spec.body, raw)
    query = parse_query(spec.query, current.args) if spec.query is not None else None
    req = Req(
        principal,
        body,
        query,
        client_ip(opened),
        opened.user_agent if opened is not None else current.headers.get("User-Agent", "")[:500],
        opened.correlation_id if opened is not None else "",
        current.headers,
        raw,
    )
    assert spec.handler is not None
    result = await spec.handler(req, **params)
    if isinstance(result, Response):
        return result
    if spec.response is None:
        return empty_response(spec.status)
    return json_response(api.unstructure(result), status=spec.status)
