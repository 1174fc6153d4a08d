"""Credentials of the current company. Answers and audit entries carry the names of the data
fields, never their values; nothing here reveals a credential's data.

OAuth2: `POST .../oauth2/authorize` starts the authorization code flow and answers the
provider URL; the provider sends the person's browser back to `GET /auth/callback`, which
completes it (the same signed-in user, in the same company) and redirects to the UI's
credentials page. `POST .../oauth2/token` gets a token now (client credentials, or a refresh)."""

from __future__ import annotations

from urllib.parse import urlencode

from markupsafe import escape
from quart import Response, request

from flow8.services.credentials import KEEP, OAuthError
from flow8.services.identity import Action

from ._api import Req, Routes, audit_change
from ._context import app, credential_service
from ._credential_models import (
    CredentialCreate,
    CredentialOut,
    CredentialQuery,
    CredentialUpdate,
    OAuthAuthorizeOut,
    OAuthCallbackQuery,
)
from ._errors_map import api_error_of
from ._page import PageQuery, make_page, page_of

CALLBACK_PATH = "/auth/callback"

routes = Routes("credentials", "credentials")


@routes.route(
    "GET",
    "/api/credentials",
    action=Action.READ,
    summary="Credentials of the current company, by name (field names only, never values)",
    query=CredentialQuery,
    response=page_of(CredentialOut),
)
async def list_credentials(req: Req) -> object:
    q: CredentialQuery = req.query
    rows, total = await credential_service().list(
        req.company_id, page=q.page, size=q.size, type=q.type
    )
    items = [CredentialOut.of(c) for c in rows]
    return make_page(CredentialOut, items, total, PageQuery(q.page, q.size))


@routes.route(
    "POST",
    "/api/credentials",
    action=Action.CREDENTIAL_WRITE,
    summary="Store a credential (its data is encrypted and never shown again)",
    body=CredentialCreate,
    response=CredentialOut,
    status=201,
    errors=(409,),
)
async def create_credential(req: Req) -> CredentialOut:
    body: CredentialCreate = req.body
    made = await credential_service().create(
        req.company_id,
        body.name,
        body.type,
        body.data,
        description=body.description,
        created_by=req.user.user.id,
    )
    audit_change(req, "credential_created", "credential", made.id, after=made.summary())
    return CredentialOut.of(made)


@routes.route(
    "GET",
    "/api/credentials/{credentialId}",
    action=Action.READ,
    summary="A credential (field names only, never values)",
    response=CredentialOut,
    errors=(404,),
)
async def get_credential(req: Req, credentialId: str) -> CredentialOut:
    return CredentialOut.of(await credential_service().get(req.company_id, credentialId))


@routes.route(
    "PUT",
    "/api/credentials/{credentialId}",
    action=Action.CREDENTIAL_WRITE,
    summary="Rename, describe or patch a credential's data (null removes a field, an absent "
    "field keeps its value)",
    body=CredentialUpdate,
    response=CredentialOut,
    errors=(404, 409),
)
async def update_credential(req: Req, credentialId: str) -> CredentialOut:
    body: CredentialUpdate = req.body
    # Absent and null differ for the description: absent keeps it, null clears it.
    described = isinstance(req.raw_body, dict) and "description" in req.raw_body
    change = await credential_service().update(
        req.company_id,
        credentialId,
        name=body.name,
        description=body.description if described else KEEP,
        data=body.data,
        updated_by=req.user.user.id,
    )
    if change.changed:
        audit_change(
            req,
            "credential_updated",
            "credential",
            credentialId,
            before=change.before.summary(),
            after=change.after.summary(),
            details={"changedFields": list(change.changed_fields)},
        )
    return CredentialOut.of(change.after)


@routes.route(
    "DELETE",
    "/api/credentials/{credentialId}",
    action=Action.CREDENTIAL_WRITE,
    summary="Delete a credential",
    status=204,
    errors=(404,),
)
async def delete_credential(req: Req, credentialId: str) -> None:
    gone = await credential_service().delete(req.company_id, credentialId)
    audit_change(req, "credential_deleted", "credential", credentialId, before=gone.summary())


def callback_url() -> str:
    """Where the provider sends the person back: this server at PUBLIC_URL, else as this
    request reached it (register exactly this redirect URI with the provider)."""
    base = app().deps.settings.public_url or request.host_url
    return base.rstrip("/") + CALLBACK_PATH


@routes.route(
    "POST",
    "/api/credentials/{credentialId}/oauth2/authorize",
    action=Action.CREDENTIAL_WRITE,
    summary="Start connecting an oauth2 credential (authorization code with PKCE): answers "
    "the provider URL to send the person to; it comes back to GET /auth/callback",
    response=OAuthAuthorizeOut,
    errors=(404,),
)
async def authorize_credential(req: Req, credentialId: str) -> OAuthAuthorizeOut:
    redirect_uri = callback_url()
    started = await credential_service().oauth2_authorize(
        req.company_id, credentialId, req.user.user.id, redirect_uri
    )
    return OAuthAuthorizeOut.of(started, redirect_uri)


@routes.route(
    "POST",
    "/api/credentials/{credentialId}/oauth2/token",
    action=Action.CREDENTIAL_WRITE,
    summary="Get a new access token for an oauth2 credential now: the client credentials "
    "grant, or a refresh",
    response=CredentialOut,
    errors=(404, 409, 502),
)
async def fetch_credential_token(req: Req, credentialId: str) -> CredentialOut:
    try:
        got = await credential_service().oauth2_token(req.company_id, credentialId)
    except OAuthError as error:
        _audit_failure(req, credentialId, error)
        raise
    audit_change(req, "credential_token_fetched", "credential", credentialId, after=got.summary())
    return CredentialOut.of(got)


@routes.route(
    "GET",
    CALLBACK_PATH,
    action=Action.CREDENTIAL_WRITE,
    summary="Where the OAuth2 provider sends the person back: checks `state` (theirs, in "
    "this company, unused, unexpired), exchanges the code and stores the tokens encrypted; "
    "redirects to the credentials page (303). A browser is shown failures as a page",
    query=OAuthCallbackQuery,
    status=303,
    errors=(400, 409, 502),
)
async def oauth_callback(req: Req) -> Response:
    q: OAuthCallbackQuery = req.query
    try:
        connected = await credential_service().oauth2_complete(
            req.company_id, req.user.user.id, q.state, code=q.code, error=q.error
        )
    except OAuthError as error:
        _audit_failure(req, error.credential_id, error)
        if "text/html" not in req.headers.get("Accept", ""):
            raise
        return _failure_page(error)
    audit_change(
        req,
        "credential_connected",
        "credential",
        connected.id,
        after=connected.summary(),
        details={"status": connected.oauth.status if connected.oauth else None},
    )
    location = "/credentials?" + urlencode({"connected": connected.name})
    return Response("", status=303, headers={"Location": location})


def _audit_failure(req: Req, credential_id: str | None, error: OAuthError) -> None:
    if credential_id is None:
        return  # no credential to name: an unknown state (the request's own entry says so)
    audit_change(
        req,
        "credential_connect_failed",
        "credential",
        credential_id,
        details={"error": error.code, "problem": str(error)},
    )


def _failure_page(error: OAuthError) -> Response:
    """A person's browser lands here from the provider: a page, not JSON."""
    mapped = api_error_of(error)
    status = mapped.status if mapped is not None else 400
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Connection failed</title></head><body><main>"
        "<h1>The connection failed</h1>"
        f'<p role="alert">{escape(str(error))}</p>'
        '<p><a href="/credentials">Back to the credentials</a></p>'
        "</main></body></html>"
    )
    return Response(body, status=status, content_type="text/html; charset=utf-8")
