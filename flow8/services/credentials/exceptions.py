"""Credential errors; the HTTP layer maps each to a status and a machine-readable code.

No message ever carries a stored or submitted secret value: problems name the field only.

Hierarchy::

    CredentialError
    ├── CredentialNotFound        no such credential in the company (404)
    ├── CredentialNameTaken       another credential of the company has the name (409)
    ├── CredentialConflict        concurrent updates kept colliding; retry (409)
    ├── InvalidCredential         bad name, type or data (422); `problems` lists every one
    └── OAuthError                an OAuth2 connection could not be made or kept
        ├── OAuthStateInvalid     the callback's `state` is unknown, used, expired or not
        │                         this user's (400)
        ├── OAuthDenied           the provider answered the callback with an error (400)
        ├── OAuthReauthNeeded     the provider refused the refresh token or client: connect
        │                         the credential again (409)
        └── OAuthProviderError    the token endpoint failed or answered nonsense (502)

OAuth messages name the provider's error code (``invalid_grant``), never a token, a code or
the client secret: they reach layers of plays and API answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class Problem:
    """One bad field: `field` is its camelCase path (`data.password`), `message` says what is
    wrong without repeating the value."""

    field: str
    message: str


class CredentialError(Exception):
    code = "CREDENTIAL_ERROR"


class CredentialNotFound(CredentialError):
    code = "CREDENTIAL_NOT_FOUND"


class CredentialNameTaken(CredentialError):
    code = "CREDENTIAL_NAME_TAKEN"


class CredentialConflict(CredentialError):
    code = "CREDENTIAL_CONFLICT"


class InvalidCredential(CredentialError):
    code = "VALIDATION_FAILED"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in self.problems))


class OAuthError(CredentialError):
    code = "OAUTH_ERROR"
    # The credential concerned, where one is known (a callback's error names it for the
    # audit trail once its state was found).
    credential_id: str | None = None


class OAuthStateInvalid(OAuthError):
    code = "OAUTH_STATE_INVALID"


class OAuthDenied(OAuthError):
    code = "OAUTH_DENIED"


class OAuthReauthNeeded(OAuthError):
    code = "OAUTH_REAUTH_NEEDED"


class OAuthProviderError(OAuthError):
    code = "OAUTH_PROVIDER_ERROR"
