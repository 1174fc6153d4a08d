"""Signing in and out: the setup page of a fresh instance, login, logout, the company
switcher, and the company's home page."""

from __future__ import annotations

from quart import Response, request

from flow8.services.identity import Action, LoginResult

from .._api import SESSION_COOKIE, session_cookie
from .._context import flow_service, play_service
from .._errors_map import api_error_of
from ..exceptions import Unauthenticated, ValidationFailed
from ._pages import PageReq, Pages, field_errors, identity, redirect, render

pages = Pages("session")

HOME_ROWS = 10


def _safe_next(value: str | None) -> str:
    """Only a path on this site: anything else would make login an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def _signed_in(page: PageReq, result: LoginResult, next_path: str) -> Response:
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        await identity().end_session(previous)  # a new session replaces the browser's old one
    answer = redirect(page, _safe_next(next_path))
    ttl = int(identity().session_ttl.total_seconds())
    answer.headers["Set-Cookie"] = session_cookie(result.token, ttl)
    return answer


@pages.get("/setup", action=Action.PUBLIC)
async def setup_form(page: PageReq) -> Response:
    if await identity().installed():
        return redirect(page, "/login", status=302)
    return render(page, "setup.html", values={}, errors={})


@pages.post("/setup", action=Action.PUBLIC)
async def setup(page: PageReq) -> Response:
    values = {k: page.form.get(k, "") for k in ("company", "email")}
    password = page.form.get("password", "")
    if password != page.form.get("confirm", ""):
        errors = {"confirm": "the two passwords differ"}
        return render(page, "setup.html", status=422, values=values, errors=errors)
    try:
        await identity().install(values["company"], values["email"], password)
    except Exception as error:
        mapped = api_error_of(error)
        if not isinstance(mapped, ValidationFailed):
            raise
        return render(page, "setup.html", status=422, values=values, errors=field_errors(mapped))
    result = await identity().login(
        values["email"], password, ip=page.ip, user_agent=page.user_agent
    )
    return await _signed_in(page, result, "/")


@pages.get("/login", action=Action.PUBLIC)
async def login_form(page: PageReq) -> Response:
    return render(page, "login.html", next=_safe_next(page.args.get("next")), email="", error="")


@pages.post("/login", action=Action.PUBLIC)
async def login(page: PageReq) -> Response:
    email = page.form.get("email", "")
    next_path = _safe_next(page.form.get("next"))
    try:
        result = await identity().login(
            email, page.form.get("password", ""), ip=page.ip, user_agent=page.user_agent
        )
    except Exception as error:
        mapped = api_error_of(error)
        if mapped is None or mapped.status not in (401, 422, 429):
            raise
        message = (
            mapped.message
            if not isinstance(mapped, Unauthenticated)
            else ("Wrong email or password.")
        )
        return render(
            page, "login.html", status=mapped.status, next=next_path, email=email, error=message
        )
    return await _signed_in(page, result, next_path)


@pages.post("/logout", action=Action.SIGNED_IN)
async def logout(page: PageReq) -> Response:
    await identity().logout(page.user, ip=page.ip, user_agent=page.user_agent)
    answer = redirect(page, "/login")
    answer.headers["Set-Cookie"] = session_cookie("", 0)
    return answer


@pages.post("/company", action=Action.SIGNED_IN)
async def switch_company(page: PageReq) -> Response:
    await identity().switch_company(page.user, page.form.get("company_id", ""))
    return redirect(page, "/")


@pages.get("/", action=Action.READ)
async def home(page: PageReq) -> Response:
    plays, play_total = await play_service().list(page.company_id, size=HOME_ROWS)
    flows, flow_total = await flow_service().list(page.company_id, size=HOME_ROWS)
    names = {f.id: f.definition.name for f in flows}
    return render(
        page,
        "home.html",
        plays=plays,
        play_total=play_total,
        flows=flows,
        flow_total=flow_total,
        flow_names=names,
    )
