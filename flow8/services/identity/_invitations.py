"""Invitations: how a person joins a company, without any admin choosing or learning their
password.

An admin invites an email to a role; flow8 answers a one-time token (once; only its hash is
stored) that the admin hands to the person, or that an `InvitationSender` delivers. Only the
token's holder can accept it, and only by proving the account: with the password of the
account that already has the invited email, or, when there is none yet, by choosing the new
account's password. So an account exists only once its holder chose its password, an admin
who invited an email learns nothing about whether it has an account (the answer is the same),
and no company's invitation opens an account for another company.

Until invitations are delivered to the invited address (an email component, later), the
admin sees the token and could accept it themselves; that claims an address nobody has
claimed yet, never an account someone else holds (docs/api.md says so).
"""

from __future__ import annotations

import abc
import contextlib
from datetime import timedelta
from typing import Any, Protocol

import trio

from flow8.services.audit import AuditEntry
from flow8.store import DuplicateKey, ReturnDocument

from . import _tokens
from ._models import CreatedInvitation, Invitation, LoginResult, Principal, User
from ._passwords import Passwords
from ._rbac import Role
from ._rules import audit_by, check_password, company_of, normalize_email, utcnow
from ._tenancy import Tenancy
from .exceptions import Conflict, NotFound


class InvitationSender(Protocol):
    """Delivers an invitation's token to the invited address (an email component, later).

    When the service has one, the token goes to it alone: the admin's answer omits it, so the
    admin can no longer accept in the invited person's place."""

    async def send(self, invitation: Invitation, token: str) -> None: ...


def _not_found() -> NotFound:
    # One answer for unknown, expired, revoked, replaced and used tokens.
    return NotFound("invitation not found or expired", "INVITATION_NOT_FOUND")


class Invitations(Tenancy):
    """The invitation half of IdentityService (which supplies the members below)."""

    passwords: Passwords
    invitation_ttl: timedelta
    invitation_sender: InvitationSender | None

    @abc.abstractmethod
    async def _create_user(
        self, email: str, password_hash: str, name: str, *, user_id: str | None = None
    ) -> User: ...

    @abc.abstractmethod
    async def _authenticate_password(
        self,
        account: str,
        password: str,
        *,
        ip: str,
        user_agent: str,
        failure: str = "auth_login_failure",
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def _open_session(
        self, user: User, company_id: str | None, *, ip: str, user_agent: str
    ) -> LoginResult: ...

    # -- inviting --------------------------------------------------------------------------

    async def invite(self, principal: Principal, email: str, role: Role) -> CreatedInvitation:
        """Invite `email` to the caller's company with `role` (at most the caller's own).
        Inviting an email with a pending invitation replaces it (the old token stops
        working). The answer is the same whether the email has an account or not."""
        company_id = company_of(principal)
        self._may_grant(principal, role)
        email = normalize_email(email)
        # Members of this company are listed to its members anyway; the two lookups run
        # for any email, so an account's existence does not show in the time taken either.
        user = await self._c("users").find_one({"email": email}, projection={"_id": 1})
        member = await self._c("memberships").find_one(
            {"company_id": company_id, "user_id": user["_id"] if user else ""},
            projection={"_id": 1},
        )
        if member is not None:
            raise Conflict("already a member of this company", "MEMBER_EXISTS")
        token = _tokens.new_invitation_token()
        now = utcnow()
        doc = await self._c("invitations").find_one_and_update(
            {"company_id": company_id, "email": email},
            {
                "$set": {
                    "token_hash": _tokens.digest(token),
                    "role": role.value,
                    "invited_by": principal.user.id,
                    "created_at": now,
                    "expires_at": now + self.invitation_ttl,
                }
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        invitation = Invitation.from_doc(doc)
        shown: str | None = token
        if self.invitation_sender is not None:
            try:
                await self.invitation_sender.send(invitation, token)
            except BaseException:
                # Not delivered: no invitation nobody can accept. The admin may retry.
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    await self._c("invitations").delete_one(
                        {"_id": invitation.id, "token_hash": doc["token_hash"]}
                    )
                raise
            shown = None
        self.audit(
            audit_by(
                principal,
                "invitation_created",
                company_id=company_id,
                target_type="invitation",
                target_id=invitation.id,
                after={
                    "email": email,
                    "role": role.value,
                    "expiresAt": invitation.expires_at.isoformat(),
                },
            )
        )
        return CreatedInvitation(invitation, shown)

    async def list_invitations(self, company_id: str) -> list[Invitation]:
        """Pending invitations of a company, oldest first (expired ones are not listed)."""
        docs = await self._c("invitations").find(
            {"company_id": company_id, "expires_at": {"$gt": utcnow()}},
            sort=[("created_at", 1), ("_id", 1)],
        )
        return [Invitation.from_doc(d) for d in docs]

    async def revoke_invitation(self, principal: Principal, invitation_id: str) -> None:
        company_id = company_of(principal)
        invitations = self._c("invitations")
        doc = await invitations.find_one({"_id": invitation_id, "company_id": company_id})
        if doc is None:
            raise NotFound("invitation not found", "INVITATION_NOT_FOUND")
        invitation = Invitation.from_doc(doc)
        # Like removing a member: an admin cannot undo what only an owner could do.
        self._may_grant(principal, invitation.role)
        await invitations.delete_one({"_id": invitation_id, "company_id": company_id})
        self.audit(
            audit_by(
                principal,
                "invitation_revoked",
                company_id=company_id,
                target_type="invitation",
                target_id=invitation_id,
                before={"email": invitation.email, "role": invitation.role.value},
            )
        )

    # -- accepting -------------------------------------------------------------------------

    async def accept_invitation(
        self, token: str, password: str, *, ip: str, user_agent: str
    ) -> LoginResult:
        """Join the invitation's company with its role and sign in there.

        If the invited email has an account, `password` must be that account's password
        (checked and throttled like a login); otherwise it becomes the password of the new
        account, created now. `NotFound` for any token that is not a pending one.
        """
        digest = _tokens.digest(token)
        invitations = self._c("invitations")
        doc = await invitations.find_one({"token_hash": digest})
        if doc is None or doc["expires_at"] <= utcnow():
            raise _not_found()
        invitation = Invitation.from_doc(doc)
        existing = await self._c("users").find_one({"email": invitation.email})
        if existing is None:
            check_password(password)
            user = await self._new_account(doc, digest, password)
        else:
            user = await self._existing_account(invitation, password, ip=ip, user_agent=user_agent)
            if await invitations.delete_one({"_id": invitation.id, "token_hash": digest}) != 1:
                raise _not_found()  # revoked, replaced or used meanwhile
        try:
            await self._add_membership(invitation.company_id, user.id, invitation.role)
        except Conflict:
            raise  # a member already: the invitation had nothing left to give
        except BaseException:
            # Not joined (the store failed, or we were cancelled): the token stays usable.
            await self._restore(doc)
            raise
        self.forget_credentials()
        await self._c("users").update_one(
            {"_id": user.id}, {"$set": {"last_company_id": invitation.company_id}}
        )
        result = await self._open_session(user, invitation.company_id, ip=ip, user_agent=user_agent)
        self.audit(
            AuditEntry(
                "invitation_accepted",
                company_id=invitation.company_id,
                user_id=user.id,
                user_email=user.email,
                ip=ip,
                user_agent=user_agent,
                target_type="invitation",
                target_id=invitation.id,
                after={"email": invitation.email, "role": invitation.role.value},
                details={"invitedBy": invitation.invited_by},
            )
        )
        return result

    async def _existing_account(
        self, invitation: Invitation, password: str, *, ip: str, user_agent: str
    ) -> User:
        doc = await self._authenticate_password(
            invitation.email,
            password,
            ip=ip,
            user_agent=user_agent,
            details={"via": "invitation", "invitationId": invitation.id},
        )
        if not doc.get("password_set_by_holder"):
            # Set before invitations existed, when an admin could choose a member's password
            # and so may know it: a new one first, which only its holder can set.
            raise Conflict(
                "this account's password was set before invitations existed and may be known "
                "to an admin: sign in, change it (POST /api/auth/password), then accept",
                "PASSWORD_CHANGE_REQUIRED",
            )
        return User.from_doc(doc)

    async def _new_account(self, doc: dict[str, Any], digest: str, password: str) -> User:
        """Create the invited account with its holder's password, consuming the invitation
        first, so that one token creates one account."""
        password_hash = await self.passwords.hash(password)
        invitations = self._c("invitations")
        if await invitations.delete_one({"_id": doc["_id"], "token_hash": digest}) != 1:
            raise _not_found()
        try:
            return await self._create_user(doc["email"], password_hash, name="")
        except BaseException:
            # Another invitation of this email created the account a moment ago (or this
            # failed): the token stays usable, now to sign in to that account.
            await self._restore(doc)
            raise

    async def _restore(self, doc: dict[str, Any]) -> None:
        """Put back an invitation consumed by an acceptance that did not complete - unless
        the email was invited again meanwhile, which replaced its token anyway."""
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(10),
            contextlib.suppress(DuplicateKey),
        ):
            await self._c("invitations").insert_one(doc)
