"""Credentials of the current company. Answers and audit entries carry the names of the data
fields, never their values; nothing here reveals a credential's data."""

from __future__ import annotations

from flow8.services.credentials import KEEP
from flow8.services.identity import Action

from ._api import Req, Routes, audit_change
from ._context import credential_service
from ._credential_models import CredentialCreate, CredentialOut, CredentialQuery, CredentialUpdate
from ._page import PageQuery, make_page, page_of

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
