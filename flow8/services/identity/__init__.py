"""Identity: users, companies, memberships with roles, sessions, API keys and the RBAC table."""

from ._bootstrap import init_owner, install_instructions, needs_install
from ._models import (
    SCOPES,
    ApiKey,
    Company,
    CreatedApiKey,
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
    "Company",
    "Conflict",
    "CreatedApiKey",
    "IdentityError",
    "IdentityService",
    "InvalidCredentials",
    "InvalidInput",
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
    "User",
    "address_key",
    "allowed",
    "init_owner",
    "install_instructions",
    "needs_install",
    "normalize_email",
]
