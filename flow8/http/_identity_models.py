"""Request and response bodies of the install, auth, company, member and invitation routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

from flow8.domain import field
from flow8.services.identity import (
    ApiKey,
    Company,
    CreatedInvitation,
    Invitation,
    Member,
    Principal,
    Role,
    User,
)


@attrs.frozen
class UserOut:
    id: str
    email: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, created_at=user.created_at)


@attrs.frozen
class CompanyOut:
    id: str
    name: str
    slug: str
    created_at: datetime
    updated_at: datetime
    role: Role | None = None

    @classmethod
    def of(cls, company: Company, role: Role | None = None) -> CompanyOut:
        return cls(
            id=company.id,
            name=company.name,
            slug=company.slug,
            created_at=company.created_at,
            updated_at=company.updated_at,
            role=role,
        )


@attrs.frozen
class InstallRequest:
    company: str = field(min_length=1, max_length=200, not_blank=True)
    email: str = field(min_length=3, max_length=320, fmt="email")
    password: str = field(min_length=10, max_length=1024)


@attrs.frozen
class InstallResponse:
    user: UserOut
    company: CompanyOut


@attrs.frozen
class InstallStatus:
    installed: bool


@attrs.frozen
class LoginRequest:
    # No length minimum: a too-short password must fail exactly like a wrong one.
    email: str = field(max_length=320)
    password: str = field(max_length=1024)


@attrs.frozen
class SessionOut:
    """The caller as the API sees them. `csrfToken` is present for cookie sessions only; send
    it back as `X-CSRF-Token` on every unsafe request."""

    user: UserOut
    company_id: str | None
    role: Role | None
    via: Literal["session", "api_key"]
    csrf_token: str | None = None
    expires_at: datetime | None = None
    scopes: list[str] = field(factory=list)  # noqa: RUF009

    @classmethod
    def of(cls, p: Principal, expires_at: datetime | None = None) -> SessionOut:
        return cls(
            user=UserOut.of(p.user),
            company_id=p.company_id,
            role=p.role,
            via=p.via,
            csrf_token=p.csrf_token,
            expires_at=expires_at,
            scopes=sorted(p.scopes),
        )


@attrs.frozen
class SwitchCompanyRequest:
    company_id: str = field(min_length=1, max_length=64)


@attrs.frozen
class ApiKeyCreate:
    name: str = field(min_length=1, max_length=200, not_blank=True)
    scopes: list[Literal["api", "mcp"]] = field(  # noqa: RUF009
        factory=lambda: ["api"], min_items=1, max_items=2
    )


@attrs.frozen
class ApiKeyOut:
    id: str
    name: str
    prefix: str
    scopes: list[str]
    user_id: str
    created_at: datetime
    last_used_at: datetime | None = None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            user_id=key.user_id,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
        )


@attrs.frozen
class ApiKeyCreated:
    """`key` is shown this once; flow8 keeps only its hash."""

    id: str
    key: str
    prefix: str
    scopes: list[str]
    name: str
    created_at: datetime


@attrs.frozen
class CompanyCreate:
    name: str = field(min_length=1, max_length=200, not_blank=True)


@attrs.frozen
class CompanyUpdate:
    name: str = field(min_length=1, max_length=200, not_blank=True)


@attrs.frozen
class MemberOut:
    user_id: str
    email: str
    name: str
    role: Role
    joined_at: datetime

    @classmethod
    def of(cls, m: Member) -> MemberOut:
        return cls(
            user_id=m.user.id,
            email=m.user.email,
            name=m.user.name,
            role=m.role,
            joined_at=m.joined_at,
        )


@attrs.frozen
class MemberAdd:
    """Invite a person: no one but them ever sets their password."""

    email: str = field(min_length=3, max_length=320, fmt="email")
    role: Role = Role.VIEWER


@attrs.frozen
class InvitationOut:
    id: str
    email: str
    role: Role
    company_id: str
    invited_by: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, i: Invitation) -> InvitationOut:
        return cls(
            id=i.id,
            email=i.email,
            role=i.role,
            company_id=i.company_id,
            invited_by=i.invited_by,
            created_at=i.created_at,
            expires_at=i.expires_at,
        )


@attrs.frozen
class InvitationCreated:
    """`token` is shown this once: hand it to the person invited, who accepts with it
    (POST /api/invitations/accept); flow8 keeps only its hash. The answer is the same whether
    the email has an account or not."""

    id: str
    email: str
    role: Role
    company_id: str
    invited_by: str
    created_at: datetime
    expires_at: datetime
    token: str | None

    @classmethod
    def of(cls, created: CreatedInvitation) -> InvitationCreated:
        i = created.invitation
        return cls(
            id=i.id,
            email=i.email,
            role=i.role,
            company_id=i.company_id,
            invited_by=i.invited_by,
            created_at=i.created_at,
            expires_at=i.expires_at,
            token=created.token,
        )


@attrs.frozen
class InvitationAccept:
    """`password` is the invited email's account password when it has an account, else the
    new account's password (10+ characters). No length minimum here: for an existing account
    a too-short password must fail exactly like a wrong one."""

    token: str = field(min_length=1, max_length=200)
    password: str = field(max_length=1024)


@attrs.frozen
class PasswordChange:
    # No length minimum on the current one: a too-short one fails like a wrong one.
    current_password: str = field(max_length=1024)
    new_password: str = field(min_length=10, max_length=1024)


@attrs.frozen
class MemberUpdate:
    role: Role
