"""Members and invitations of the current company, accepting an invitation, API keys, and the
caller's own password: the same identity service calls as `_company_routes.py` and
`_identity_routes.py` (the identity service records their audit entries itself)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from quart import Response, request

from flow8.services.identity import RANK, SCOPES, Action, Role

from .._errors_map import api_error_of
from ..exceptions import ValidationFailed
from ._pages import PageReq, Pages, field_errors, identity, redirect, render
from ._session_pages import _signed_in

pages = Pages("members")

PAGE_SIZE = 50


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _grantable(page: PageReq) -> list[Role]:
    """The roles the caller may give (at most their own), highest first."""
    own = page.user.role
    assert own is not None
    return sorted((r for r in Role if RANK[r] <= RANK[own]), key=lambda r: -RANK[r])


def _problem(error: Exception) -> tuple[int, dict[str, str], str]:
    """(status, problems by field, message) of a service error a form shows; anything that
    is not the person's to fix goes on to the error page."""
    mapped = api_error_of(error)
    if mapped is None or mapped.status >= 500 or mapped.status == 403:
        raise error
    if isinstance(mapped, ValidationFailed):
        return mapped.status, field_errors(mapped), ""
    return mapped.status, {}, mapped.message


# -- members and invitations ---------------------------------------------------------------


async def _members_page(page: PageReq, *, status: int = 200, **extra: Any) -> Response:
    company = page.company_id
    members = await identity().list_members(company)
    invitations = await identity().list_invitations(company)
    number = _int(page.args.get("page"))
    total = len(members)
    context: dict[str, Any] = {
        "invite_values": {},
        "invite_errors": {},
        "invite_error": "",
        "invited": None,
        "invitation_link": None,
        "notice": page.args.get("notice", ""),
        **extra,
    }
    return render(
        page,
        "workspace/members.html",
        status=status,
        members=members[number * PAGE_SIZE : (number + 1) * PAGE_SIZE],
        total=total,
        number=number,
        pages_count=(total + PAGE_SIZE - 1) // PAGE_SIZE,
        invitations=invitations[:PAGE_SIZE],
        invitation_total=len(invitations),
        roles=_grantable(page),
        rank=RANK,
        **context,
    )


@pages.get("/members", action=Action.MEMBER_MANAGE)
async def members(page: PageReq) -> Response:
    return await _members_page(page)


@pages.post("/members/invite", action=Action.MEMBER_MANAGE)
async def invite(page: PageReq) -> Response:
    email = page.form.get("email", "").strip()
    role_name = page.form.get("role", "")
    values = {"email": email, "role": role_name}
    try:
        role = Role(role_name)
    except ValueError:
        errors = {"role": "choose a role"}
        return await _members_page(page, status=422, invite_values=values, invite_errors=errors)
    try:
        created = await identity().invite(page.user, email, role)
    except Exception as error:
        status, errors, message = _problem(error)
        if message and not errors:
            errors = {"email": message}
        return await _members_page(page, status=status, invite_values=values, invite_errors=errors)
    link = None
    if created.token is not None:
        base = f"{request.scheme}://{request.host}"
        link = f"{base}/invitations/accept?{urlencode({'token': created.token})}"
    return await _members_page(page, invited=created.invitation, invitation_link=link)


@pages.post("/members/<user_id>/role", action=Action.MEMBER_MANAGE)
async def change_role(page: PageReq, user_id: str) -> Response:
    try:
        role = Role(page.form.get("role", ""))
    except ValueError:
        role = None
    if role is None:
        raise ValidationFailed([{"field": "role", "message": "choose a role"}])
    member = await identity().update_member(page.user, user_id, role)
    notice = f"{member.user.email} is now {member.role.value}."
    return redirect(page, "/members?" + urlencode({"notice": notice}))


@pages.post("/members/<user_id>/remove", action=Action.MEMBER_MANAGE)
async def remove_member(page: PageReq, user_id: str) -> Response:
    await identity().remove_member(page.user, user_id)
    return redirect(page, "/members?" + urlencode({"notice": "Member removed."}))


@pages.post("/members/invitations/<invitation_id>/revoke", action=Action.MEMBER_MANAGE)
async def revoke_invitation(page: PageReq, invitation_id: str) -> Response:
    await identity().revoke_invitation(page.user, invitation_id)
    return redirect(page, "/members?" + urlencode({"notice": "Invitation revoked."}))


# -- accepting an invitation (public) ------------------------------------------------------


@pages.get("/invitations/accept", action=Action.PUBLIC)
async def accept_form(page: PageReq) -> Response:
    return render(
        page, "workspace/accept.html", token=page.args.get("token", ""), errors={}, error=""
    )


@pages.post("/invitations/accept", action=Action.PUBLIC)
async def accept(page: PageReq) -> Response:
    token = page.form.get("token", "")
    try:
        result = await identity().accept_invitation(
            token, page.form.get("password", ""), ip=page.ip, user_agent=page.user_agent
        )
    except Exception as error:
        status, errors, message = _problem(error)
        if status == 404:
            message = (
                "This invitation link is not valid: it was used, revoked or replaced, "
                "or it expired."
            )
        elif status == 401:
            message = "Wrong password for the account of this email."
        return render(
            page,
            "workspace/accept.html",
            status=status,
            token=token,
            errors=errors,
            error=message,
        )
    return await _signed_in(page, result, "/")


# -- the caller's password -----------------------------------------------------------------


@pages.get("/account", action=Action.SIGNED_IN)
async def account(page: PageReq) -> Response:
    return render(page, "workspace/account.html", errors={}, error="", changed=None)


_PASSWORD_FIELDS = {"currentPassword": "current", "newPassword": "new"}


@pages.post("/account", action=Action.SIGNED_IN)
async def change_password(page: PageReq) -> Response:
    current = page.form.get("current", "")
    new = page.form.get("new", "")
    if new != page.form.get("confirm", ""):
        errors = {"confirm": "the two new passwords differ"}
        return render(
            page, "workspace/account.html", status=422, errors=errors, error="", changed=None
        )
    try:
        ended = await identity().change_password(
            page.user, current, new, ip=page.ip, user_agent=page.user_agent
        )
    except Exception as error:
        status, problems, message = _problem(error)
        errors = {_PASSWORD_FIELDS.get(k, k): v for k, v in problems.items()}
        return render(
            page,
            "workspace/account.html",
            status=status,
            errors=errors,
            error=message,
            changed=None,
        )
    return render(page, "workspace/account.html", errors={}, error="", changed=ended)


# -- API keys ------------------------------------------------------------------------------


async def _api_keys_page(page: PageReq, *, status: int = 200, **extra: Any) -> Response:
    keys = await identity().list_api_keys(page.company_id)
    number = _int(page.args.get("page"))
    total = len(keys)
    context: dict[str, Any] = {
        "values": {},
        "errors": {},
        "notice": page.args.get("notice", ""),
        **extra,
    }
    return render(
        page,
        "workspace/api_keys.html",
        status=status,
        keys=keys[number * PAGE_SIZE : (number + 1) * PAGE_SIZE],
        total=total,
        number=number,
        pages_count=(total + PAGE_SIZE - 1) // PAGE_SIZE,
        scopes=sorted(SCOPES),
        **context,
    )


@pages.get("/api-keys", action=Action.API_KEY_MANAGE)
async def api_keys(page: PageReq) -> Response:
    return await _api_keys_page(page)


@pages.post("/api-keys", action=Action.API_KEY_MANAGE)
async def create_api_key(page: PageReq) -> Response:
    name = page.form.get("name", "")
    scopes = page.form.getlist("scopes")
    try:
        created = await identity().create_api_key(page.user, name, scopes)
    except Exception as error:
        status, errors, message = _problem(error)
        if message and not errors:
            errors = {"name": message}
        values = {"name": name, "scopes": scopes}
        return await _api_keys_page(page, status=status, values=values, errors=errors)
    return render(page, "workspace/api_key_created.html", created=created)


@pages.post("/api-keys/<key_id>/revoke", action=Action.API_KEY_MANAGE)
async def revoke_api_key(page: PageReq, key_id: str) -> Response:
    await identity().delete_api_key(page.user, key_id)
    return redirect(page, "/api-keys?" + urlencode({"notice": "API key revoked."}))
