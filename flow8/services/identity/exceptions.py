"""Identity errors; the HTTP layer maps each to a status and a machine-readable code.

Hierarchy::

    IdentityError
    ├── AlreadyInstalled        the install gate is closed: a user exists (409)
    ├── InvalidCredentials      login failed; same error for unknown user and wrong password (401)
    ├── RateLimited             too many attempts; carries retry_after seconds (429)
    ├── NotAuthenticated        no, expired or revoked session / API key (401)
    ├── PermissionDenied        the role lacks the action (403)
    ├── NotFound                no such company/member/key in the caller's reach (404)
    ├── Conflict                duplicate email/membership, or removing the last owner (409)
    └── InvalidInput            a value the domain refuses (422); carries `field`
"""

from __future__ import annotations


class IdentityError(Exception):
    code = "IDENTITY_ERROR"


class AlreadyInstalled(IdentityError):
    code = "ALREADY_INSTALLED"


class InvalidCredentials(IdentityError):
    code = "INVALID_CREDENTIALS"


class RateLimited(IdentityError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotAuthenticated(IdentityError):
    code = "UNAUTHENTICATED"


class PermissionDenied(IdentityError):
    code = "FORBIDDEN"


class NotFound(IdentityError):
    code = "NOT_FOUND"

    def __init__(self, message: str, code: str = "NOT_FOUND") -> None:
        super().__init__(message)
        self.code = code


class Conflict(IdentityError):
    code = "CONFLICT"

    def __init__(self, message: str, code: str = "CONFLICT") -> None:
        super().__init__(message)
        self.code = code


class InvalidInput(IdentityError):
    code = "VALIDATION_FAILED"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
