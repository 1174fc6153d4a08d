"""`/admin/*`: the live actor tree for operators, as JSON or as an HTML page.

Operators authenticate with the instance's ADMIN_TOKEN (bearer, or the admin cookie the login
form sets) and see the whole tree. A browser that brings neither but a flow8 session cookie is
served the UI's page instead (`ui._audit_pages`): owners and admins of the session's company
see the tree without other companies' plays and channels, whether or not a token is set."""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Blueprint, Response, request

from flow8.services.identity import address_key

from ._admin_auth import COOKIE_NAME
from ._admin_html import render_login, render_tree
from ._api import SESSION_COOKIE, client_ip
from ._context import app
from ._responses import error_response, html_response, json_response
from .exceptions import ApiError, Forbidden, NotFound, TooManyRequests, Unauthenticated
from .ui._audit_pages import serve_actor_page

blueprint = Blueprint("admin", __name__)

_DEFAULT_NEXT = "/admin/actors"


def _prefers_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _safe_next(value: str | None) -> str:
    # Only same-site admin paths: anything else would make the form an open redirect.
    if not value or not value.startswith("/admin/") or value.startswith("//") or "\\" in value:
        return _DEFAULT_NEXT
    return value


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        # Browsers send Origin on POST; a missing one means a non-browser client, which
        # cannot ride on a victim's cookie anyway (SameSite=Strict).
        return origin is None
    parts = urlsplit(origin)
    own = f"{request.scheme}://{request.host}"
    allowed = app().deps.settings.allowed_origins
    return f"{parts.scheme}://{parts.netloc}" == own or origin in allowed


def _cookie_headers(value: str, max_age: int) -> dict[str, str]:
    flags = f"Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    if app().deps.settings.secure_cookies:
        flags += "; Secure"
    return {"Set-Cookie": f"{COOKIE_NAME}={value}; {flags}", "Cache-Control": "no-store"}


@blueprint.get("/admin/actors")
async def actors() -> Response:
    gate = app().admin_gate
    html = _prefers_html()
    authorization = request.headers.get("Authorization")
    operator = authorization or request.cookies.get(COOKIE_NAME)
    if not operator and request.cookies.get(SESSION_COOKIE):
        # A signed-in person, not an operator: the UI page, under the session's role.
        return await serve_actor_page()
    # A bearer token is a guess at the admin token like the form's: the same limit applies.
    ip = client_ip()
    wait = gate.failures.blocked_for(address_key(ip)) if authorization and gate.enabled else 0.0
    if wait > 0:
        raise TooManyRequests("too many failed admin sign-ins; try later", retry_after=wait)
    try:
        gate.check(authorization, request.cookies.get(COOKIE_NAME))
    except Forbidden:
        gate.failures.hit(address_key(ip))
        raise
    except Unauthenticated as e:
        if html:
            page = render_login(request.full_path.rstrip("?"))
            return html_response(page, status=401, headers={"Cache-Control": "no-store"})
        return error_response(e)
    tree = app().deps.actor_tree()
    headers = {"Cache-Control": "no-store", "Vary": "Accept"}
    if html:
        return html_response(render_tree(tree), headers=headers)
    return json_response(tree, headers=headers)


@blueprint.get("/admin/login")
async def login_form() -> Response:
    if not app().admin_gate.enabled:
        raise NotFound("not found")
    return html_response(render_login(_safe_next(request.args.get("next"))))


@blueprint.post("/admin/login")
async def login() -> Response:
    gate = app().admin_gate
    if not gate.enabled:
        raise NotFound("not found")
    if not _same_origin():
        raise Forbidden("cross-origin admin login refused", code="ORIGIN_REFUSED")
    ip = client_ip()
    wait = gate.failures.blocked_for(address_key(ip))
    if wait > 0:
        raise TooManyRequests("too many failed admin sign-ins; try later", retry_after=wait)
    form = await request.form
    next_path = _safe_next(form.get("next"))
    if not gate.token_matches(form.get("token", "")):
        gate.failures.hit(address_key(ip))
        return html_response(render_login(next_path, "Wrong admin token."), status=403)
    headers = _cookie_headers(gate.issue_cookie(), int(gate.ttl_seconds))
    headers["Location"] = next_path
    return Response(b"", status=303, headers=headers)


@blueprint.post("/admin/logout")
async def logout() -> Response:
    if not app().admin_gate.enabled:
        raise NotFound("not found")
    if not _same_origin():
        raise Forbidden("cross-origin admin logout refused", code="ORIGIN_REFUSED")
    headers = _cookie_headers("", 0)
    headers["Location"] = "/admin/login"
    return Response(b"", status=303, headers=headers)


@blueprint.errorhandler(ApiError)
async def _api_error(error: ApiError) -> Response:
    return error_response(error)
