"""Install gate, login/logout, accepting invitations, password change, the current caller,
company switch and API keys."""

from __future__ import annotations

from quart import Response, request

from flow8.domain import api
from flow8.services.identity import Action, IdentityService, LoginResult, Role

from ._api import SESSION_COOKIE, Req, Routes, session_cookie
from ._context import app
from ._identity_models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    CompanyOut,
    InstallRequest,
    InstallResponse,
    InstallStatus,
    InvitationAccept,
    LoginRequest,
    PasswordChange,
    SessionOut,
    SwitchCompanyRequest,
    UserOut,
)
from ._page import PageQuery, page_of, slice_page
from ._responses import empty_response, json_response

routes = Routes("identity", "auth")


def _identity() -> IdentityService:
    identity = app().deps.identity
    assert identity is not None  # authenticate() answered 404 already when unset
    return identity


@routes.route(
    "GET",
    "/api/install",
    action=Action.PUBLIC,
    summary="Whether flow8 has been installed",
    response=InstallStatus,
)
async def install_status(req: Req) -> InstallStatus:
    return InstallStatus(installed=await _identity().installed())


@routes.route(
    "POST",
    "/api/install",
    action=Action.PUBLIC,
    summary="Create the first company and its owner (only while no user exists)",
    body=InstallRequest,
    response=InstallResponse,
    status=201,
    errors=(409,),
)
async def install(req: Req) -> InstallResponse:
    body: InstallRequest = req.body
    user, company = await _identity().install(body.company, body.email, body.password)
    return InstallResponse(user=UserOut.of(user), company=CompanyOut.of(company, Role.OWNER))


@routes.route(
    "POST",
    "/api/auth/login",
    action=Action.PUBLIC,
    summary="Sign in; sets the session cookie and returns the CSRF token",
    body=LoginRequest,
    response=SessionOut,
)
async def login(req: Req) -> Response:
    body: LoginRequest = req.body
    result = await _identity().login(
        body.email, body.password, ip=req.ip, user_agent=req.user_agent
    )
    return await _signed_in(result)


async def _signed_in(result: LoginResult) -> Response:
    """The answer that starts a session: its cookie, and the caller with the CSRF token."""
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        # A new session replaces the browser's old one rather than leaving it alive.
        await _identity().end_session(previous)
    ttl = int(_identity().session_ttl.total_seconds())
    out = SessionOut.of(result.principal, result.expires_at)
    return json_response(
        api.unstructure(out),
        headers={"Set-Cookie": session_cookie(result.token, ttl), "Cache-Control": "no-store"},
    )


@routes.route(
    "POST",
    "/api/invitations/accept",
    action=Action.PUBLIC,
    summary=(
        "Accept an invitation with its token: with your account's password, or the password "
        "of your new account; joins the company and signs in there (sets the session cookie)"
    ),
    body=InvitationAccept,
    response=SessionOut,
    errors=(401, 404, 409, 429),
)
async def accept_invitation(req: Req) -> Response:
    body: InvitationAccept = req.body
    result = await _identity().accept_invitation(
        body.token, body.password, ip=req.ip, user_agent=req.user_agent
    )
    return await _signed_in(result)


@routes.route(
    "POST",
    "/api/auth/password",
    action=Action.SIGNED_IN,
    summary=(
        "Change your password (the current one is required); ends your other sessions and "
        "keeps this one"
    ),
    body=PasswordChange,
    status=204,
    errors=(429,),
)
async def change_password(req: Req) -> None:
    body: PasswordChange = req.body
    await _identity().change_password(
        req.user, body.current_password, body.new_password, ip=req.ip, user_agent=req.user_agent
    )


@routes.route(
    "POST",
    "/api/auth/logout",
    action=Action.SIGNED_IN,
    summary="End the session (clears the cookie)",
    status=204,
)
async def logout(req: Req) -> Response:
    await _identity().logout(req.user, ip=req.ip, user_agent=req.user_agent)
    return empty_response(204, headers={"Set-Cookie": session_cookie("", 0)})


@routes.route(
    "GET",
    "/api/auth/me",
    action=Action.SIGNED_IN,
    summary="The caller: user, current company, role",
    response=SessionOut,
)
async def me(req: Req) -> SessionOut:
    return SessionOut.of(req.user)


@routes.route(
    "POST",
    "/api/auth/company",
    action=Action.SIGNED_IN,
    summary="Switch the session's current company",
    body=SwitchCompanyRequest,
    response=SessionOut,
    errors=(404,),
)
async def switch_company(req: Req) -> SessionOut:
    body: SwitchCompanyRequest = req.body
    return SessionOut.of(await _identity().switch_company(req.user, body.company_id))


@routes.route(
    "POST",
    "/api/auth/api-keys",
    action=Action.API_KEY_MANAGE,
    summary="Create an API key for the current company; the key is shown once",
    body=ApiKeyCreate,
    response=ApiKeyCreated,
    status=201,
)
async def create_api_key(req: Req) -> ApiKeyCreated:
    body: ApiKeyCreate = req.body
    created = await _identity().create_api_key(req.user, body.name, body.scopes)
    k = created.api_key
    return ApiKeyCreated(
        id=k.id,
        key=created.key,
        prefix=k.prefix,
        scopes=list(k.scopes),
        name=k.name,
        created_at=k.created_at,
    )


@routes.route(
    "GET",
    "/api/auth/api-keys",
    action=Action.API_KEY_MANAGE,
    summary="API keys of the current company (never the keys themselves)",
    query=PageQuery,
    response=page_of(ApiKeyOut),
)
async def list_api_keys(req: Req) -> object:
    keys = await _identity().list_api_keys(req.company_id)
    return slice_page(ApiKeyOut, [ApiKeyOut.of(k) for k in keys], req.query)


@routes.route(
    "DELETE",
    "/api/auth/api-keys/{keyId}",
    action=Action.API_KEY_MANAGE,
    summary="Revoke an API key",
    status=204,
    errors=(404,),
)
async def delete_api_key(req: Req, keyId: str) -> None:
    await _identity().delete_api_key(req.user, keyId)
