"""Declaring pages: one decorator states method, path and the RBAC action, like the API's
`Routes`. The wrapper does what every page needs, in one place: the install gate, the session
cookie (no API keys: pages are for browsers), the role check, the CSRF token on every form
post, the audit trail's caller, and service errors shown as pages instead of JSON."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import attrs
from quart import Quart, Response, request
from quart.globals import request_ctx
from werkzeug.datastructures import Headers, MultiDict

from flow8.logs import get_logger
from flow8.services.identity import Action, IdentityService, Principal
from flow8.services.identity import NotAuthenticated as IdentityUnauthenticated

from .._api import SAFE_METHODS, SESSION_COOKIE, Req
from .._context import app
from .._errors_map import api_error_of
from .._request_audit import trail_of
from ..exceptions import ApiError, Forbidden, NotFound, ValidationFailed
from ._render import html, render_text

log = get_logger("flow8.ui")

CSRF_FIELD = "csrf_token"
_LOGIN = "/login"
_SETUP = "/setup"


@attrs.frozen
class PageReq:
    """What a page handler gets: the signed-in caller (None on public pages), the form of a
    post, the query string, and the request facts the audit trail records."""

    principal: Principal | None
    form: MultiDict[str, str]
    args: MultiDict[str, str]
    ip: str
    user_agent: str
    correlation_id: str
    headers: Headers
    path: str
    htmx: bool  # asked by htmx for a fragment (HX-Request), not by the browser for a page
    companies: tuple[tuple[str, str], ...] = ()  # (id, name) for the company switcher

    @property
    def user(self) -> Principal:
        assert self.principal is not None, "a public page has no caller"
        return self.principal

    @property
    def company_id(self) -> str:
        company = self.user.company_id
        assert company is not None  # the wrapper shows the no-company page first
        return company

    def may(self, action: Action) -> bool:
        return self.principal is not None and self.principal.may(action)

    def as_req(self) -> Req:
        """The API's request record, for the helpers both share (`audit_change`)."""
        return Req(
            self.principal, None, None, self.ip, self.user_agent, self.correlation_id, self.headers
        )


Page = Callable[..., Awaitable[Response | str]]


def identity() -> IdentityService:
    service = app().deps.identity
    if service is None:
        raise NotFound("identity is not configured")
    return service


def render(page: PageReq, template: str, *, status: int = 200, **context: Any) -> Response:
    """A whole page (or, for an htmx request, whatever the template renders) with the caller,
    the CSRF token and the role check available to every template."""
    principal = page.principal
    base = {
        "principal": principal,
        "csrf_token": (principal.csrf_token or "") if principal is not None else "",
        "may": page.may,
        "Action": Action,
        "path": page.path,
        "htmx": page.htmx,
        "args": page.args,
        "companies": page.companies,
    }
    return html(render_text(template, {**base, **context}), status=status)


def redirect(page: PageReq, location: str, *, status: int = 303) -> Response:
    """A redirect a browser follows after a form post (303: the next request is a GET), and
    htmx follows as a whole page (HX-Redirect), not as a fragment swapped into the page."""
    if page.htmx:
        return Response("", status=200, headers={"HX-Redirect": location})
    return Response("", status=status, headers={"Location": location})


def field_errors(error: ValidationFailed) -> dict[str, str]:
    """A 422's problems by field name, for a form that shows each beside its input."""
    return {f["field"]: f["message"] for f in error.fields}


@attrs.frozen
class PageSpec:
    method: str
    path: str
    action: Action
    handler: Page


class Pages:
    """A group of pages (one module's worth), mounted into the app by `install`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.specs: list[PageSpec] = []

    def get(self, path: str, *, action: Action) -> Callable[[Page], Page]:
        return self._declare("GET", path, action)

    def post(self, path: str, *, action: Action) -> Callable[[Page], Page]:
        return self._declare("POST", path, action)

    def _declare(self, method: str, path: str, action: Action) -> Callable[[Page], Page]:
        def decorate(handler: Page) -> Page:
            self.specs.append(PageSpec(method, path, action, handler))
            return handler

        return decorate

    def mount(self, application: Quart) -> None:
        for spec in self.specs:

            async def view(_spec: PageSpec = spec, **params: str) -> Response:
                return await _serve(_spec, params)

            application.add_url_rule(
                spec.path,
                endpoint=f"ui.{self.name}:{spec.handler.__name__}",
                view_func=view,
                methods=[spec.method],
            )


async def _serve(spec: PageSpec, params: Mapping[str, str]) -> Response:
    current = request_ctx.request
    opened = trail_of(current.scope)
    htmx = current.headers.get("HX-Request") == "true"
    form: MultiDict[str, str] = MultiDict()
    page = PageReq(
        None,
        form,
        current.args,
        (opened.ip if opened is not None else current.remote_addr) or "unknown",
        opened.user_agent if opened is not None else current.headers.get("User-Agent", "")[:500],
        opened.correlation_id if opened is not None else "",
        current.headers,
        current.full_path.rstrip("?"),
        htmx,
    )
    try:
        gate = await _gate(spec, page)
        if gate is not None:
            return gate
        if current.method not in SAFE_METHODS:
            form = await request.form
            page = attrs.evolve(page, form=form)
        if spec.action is not Action.PUBLIC:
            page = attrs.evolve(page, principal=await _caller(page))
            if not htmx and current.method == "GET":
                mine = await identity().my_companies(page.user.user.id)
                page = attrs.evolve(page, companies=tuple((c.id, c.name) for c, _ in mine))
            if opened is not None:
                opened.principal = page.principal  # the request's audit entry names the caller
            refused = _refused(spec, page)
            if refused is not None:
                return refused
        result = await spec.handler(page, **params)
        return html(result) if isinstance(result, str) else result
    except _SignInFirst:
        return redirect(page, f"{_LOGIN}?next={quote(page.path, safe='/')}", status=302)
    except Exception as error:
        api_error = api_error_of(error)
        if api_error is None:
            log.error("ui.unhandled_error", path=current.path, exc_info=error)
            api_error = ApiError("internal server error")
        return error_page(page, api_error)


async def serve_page(spec: PageSpec, **params: str) -> Response:
    """Serve a page from a view that owns its URL for other callers too (the admin
    blueprint's `/admin/actors` hands a browser with only a session to its UI page), with
    the same gate, session, role check and error pages as a mounted page."""
    return await _serve(spec, params)


class _SignInFirst(Exception):
    """No valid session: the browser is sent to the login page, and back afterwards."""


async def _gate(spec: PageSpec, page: PageReq) -> Response | None:
    """A fresh instance shows the setup page in place of every other page."""
    if spec.path == _SETUP:
        return None
    application = app()
    if getattr(application, "ui_installed", False):
        return None  # installed stays installed: asked once per process
    if await identity().installed():
        application.ui_installed = True  # type: ignore[attr-defined]
        return None
    return redirect(page, _SETUP, status=302)


async def _caller(page: PageReq) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _SignInFirst
    try:
        principal = await identity().session_principal(token)
    except IdentityUnauthenticated:
        raise _SignInFirst from None
    if request.method not in SAFE_METHODS:
        # Every form carries the session's CSRF token; htmx and scripts send it as a header.
        sent = page.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token", "")
        expected = principal.csrf_token or ""
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Forbidden(
                "this form was not sent by a flow8 page (missing or wrong CSRF token); "
                "reload the page and try again",
                code="CSRF_INVALID",
            )
    return principal


def _refused(spec: PageSpec, page: PageReq) -> Response | None:
    principal = page.user
    if spec.action is Action.SIGNED_IN:
        return None
    if principal.company_id is None:
        return render(page, "no_company.html", status=403)
    if not principal.may(spec.action):
        error = Forbidden(
            f"your role ({principal.role}) may not {spec.action.value}", code="PERMISSION_DENIED"
        )
        return error_page(page, error)
    return None


def error_page(page: PageReq, error: ApiError) -> Response:
    """The error as a page (or, for htmx, as a message it swaps into the page's alert
    area): the same code and words the API answers, never a traceback or data."""
    template = "_alert.html" if page.htmx else "error.html"
    answer = render(
        page, template, status=error.status, error=error, fields=getattr(error, "fields", [])
    )
    if page.htmx:
        answer.headers["HX-Retarget"] = "#alerts"
        answer.headers["HX-Reswap"] = "innerHTML"
    return answer
