"""Identity: users, companies, memberships with roles, invitations, sessions, API keys, sign-in
throttling and the RBAC table."""

from ._bootstrap import flow8_command, init_owner, install_instructions, needs_install
from ._invitations import InvitationSender
from ._models import (
    SCOPES,
    ApiKey,
    Company,
    CreatedApiKey,
    CreatedInvitation,
    Invitation,
    LoginResult,
    Member,
    Principal,
    User,
)
from ._passwords import Argon2Params, Passwords
from ._ratelimit import RateLimiter, address_key
from ._rbac import PERMISSIONS, RANK, Action, Role, allowed
from ._rules import MIN_PASSWORD, NON_BLANK, normalize_email
from ._service import IdentityService
from ._throttle import Backoff, SigninLimits
from .exceptions import (
    AlreadyInstalled,
    Conflict,
    IdentityError,
    InvalidCredentials,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
)

__all__ = [
    "MIN_PASSWORD",
    "NON_BLANK",
    "PERMISSIONS",
    "RANK",
    "SCOPES",
    "Action",
    "AlreadyInstalled",
    "ApiKey",
    "Argon2Params",
    "Backoff",
    "Company",
    "Conflict",
    "CreatedApiKey",
    "CreatedInvitation",
    "IdentityError",
    "IdentityService",
    "InvalidCredentials",
    "InvalidInput",
    "Invitation",
    "InvitationSender",
    "LoginResult",
    "Member",
    "NotAuthenticated",
    "NotFound",
    "Passwords",
    "PermissionDenied",
    "Principal",
    "RateLimited",
    "RateLimiter",
    "Role",
    "SigninLimits",
    "User",
    "address_key",
    "allowed",
    "flow8_command",
    "init_owner",
    "install_instructions",
    "needs_install",
    "normalize_email",
]
