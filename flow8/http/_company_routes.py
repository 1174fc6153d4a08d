"""Companies the caller belongs to, their members, and invitations to join them."""

from __future__ import annotations

from flow8.services.identity import Action, IdentityService, Role

from ._api import Req, Routes
from ._context import app
from ._identity_models import (
    CompanyCreate,
    CompanyOut,
    CompanyUpdate,
    InvitationCreated,
    InvitationOut,
    MemberAdd,
    MemberOut,
    MemberUpdate,
)
from ._page import PageQuery, page_of, slice_page
from .exceptions import Forbidden

routes = Routes("companies", "companies")


def _identity() -> IdentityService:
    identity = app().deps.identity
    assert identity is not None
    return identity


@routes.route(
    "GET",
    "/api/companies",
    action=Action.SIGNED_IN,
    summary="Companies I belong to",
    query=PageQuery,
    response=page_of(CompanyOut),
)
async def list_companies(req: Req) -> object:
    rows = await _identity().my_companies(req.user.user.id)
    return slice_page(CompanyOut, [CompanyOut.of(c, r) for c, r in rows], req.query)


@routes.route(
    "POST",
    "/api/companies",
    action=Action.SIGNED_IN,
    summary="Create a company; the caller becomes its owner",
    body=CompanyCreate,
    response=CompanyOut,
    status=201,
)
async def create_company(req: Req) -> CompanyOut:
    if req.user.via == "api_key":
        # A key is bound to one company; new tenants are created by people.
        raise Forbidden("API keys cannot create companies", code="PERMISSION_DENIED")
    body: CompanyCreate = req.body
    company = await _identity().create_company(req.user, body.name)
    return CompanyOut.of(company, Role.OWNER)


@routes.route(
    "GET",
    "/api/companies/{companyId}",
    action=Action.READ,
    summary="One of my companies",
    response=CompanyOut,
    errors=(404,),
    company_param="companyId",
)
async def get_company(req: Req, companyId: str) -> CompanyOut:
    return CompanyOut.of(await _identity().get_company(companyId), req.user.role)


@routes.route(
    "PUT",
    "/api/companies/{companyId}",
    action=Action.COMPANY_MANAGE,
    summary="Rename a company (owners)",
    body=CompanyUpdate,
    response=CompanyOut,
    errors=(404,),
    company_param="companyId",
)
async def update_company(req: Req, companyId: str) -> CompanyOut:
    body: CompanyUpdate = req.body
    company = await _identity().rename_company(req.user, companyId, body.name)
    return CompanyOut.of(company, req.user.role)


@routes.route(
    "GET",
    "/api/companies/{companyId}/members",
    action=Action.READ,
    summary="Members of a company",
    query=PageQuery,
    response=page_of(MemberOut),
    errors=(404,),
    company_param="companyId",
)
async def list_members(req: Req, companyId: str) -> object:
    members = await _identity().list_members(companyId)
    return slice_page(MemberOut, [MemberOut.of(m) for m in members], req.query)


@routes.route(
    "POST",
    "/api/companies/{companyId}/members",
    action=Action.MEMBER_MANAGE,
    summary=(
        "Invite a person by email to join with a role (at most your own); answers the "
        "invitation's one-time token, once"
    ),
    body=MemberAdd,
    response=InvitationCreated,
    status=201,
    errors=(404, 409),
    company_param="companyId",
)
async def add_member(req: Req, companyId: str) -> InvitationCreated:
    body: MemberAdd = req.body
    return InvitationCreated.of(await _identity().invite(req.user, body.email, body.role))


@routes.route(
    "GET",
    "/api/companies/{companyId}/invitations",
    action=Action.MEMBER_MANAGE,
    summary="Pending invitations of a company (never their tokens)",
    query=PageQuery,
    response=page_of(InvitationOut),
    errors=(404,),
    company_param="companyId",
)
async def list_invitations(req: Req, companyId: str) -> object:
    invitations = await _identity().list_invitations(companyId)
    return slice_page(InvitationOut, [InvitationOut.of(i) for i in invitations], req.query)


@routes.route(
    "DELETE",
    "/api/companies/{companyId}/invitations/{invitationId}",
    action=Action.MEMBER_MANAGE,
    summary="Revoke a pending invitation (its token stops working)",
    status=204,
    errors=(404,),
    company_param="companyId",
)
async def revoke_invitation(req: Req, companyId: str, invitationId: str) -> None:
    await _identity().revoke_invitation(req.user, invitationId)


@routes.route(
    "PUT",
    "/api/companies/{companyId}/members/{userId}",
    action=Action.MEMBER_MANAGE,
    summary="Change a member's role",
    body=MemberUpdate,
    response=MemberOut,
    errors=(404, 409),
    company_param="companyId",
)
async def update_member(req: Req, companyId: str, userId: str) -> MemberOut:
    body: MemberUpdate = req.body
    return MemberOut.of(await _identity().update_member(req.user, userId, body.role))


@routes.route(
    "DELETE",
    "/api/companies/{companyId}/members/{userId}",
    action=Action.MEMBER_MANAGE,
    summary="Remove a member from a company",
    status=204,
    errors=(404, 409),
    company_param="companyId",
)
async def remove_member(req: Req, companyId: str, userId: str) -> None:
    await _identity().remove_member(req.user, userId)
