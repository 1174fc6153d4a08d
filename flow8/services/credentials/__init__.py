"""Credentials ("links"): API keys, basic and bearer auth, OAuth2 clients and generic secret
maps of a company, stored encrypted. Interfaces see names and field names only; modules and
components get the data through `CredentialService.reveal`."""

from ._models import Credential, CredentialChange, OAuthStatus
from ._oauth import Authorization, OAuthConnections
from ._oauth_providers import PROVIDERS, Provider
from ._service import KEEP, CredentialService, Keep
from ._types import (
    DESCRIPTION_MAX,
    MAX_DATA_CHARS,
    NAME_MAX,
    RULES,
    TYPES,
    CredentialType,
    FieldRule,
    data_schema,
    patch_schema,
)
from .exceptions import (
    CredentialConflict,
    CredentialError,
    CredentialNameTaken,
    CredentialNotFound,
    InvalidCredential,
    OAuthDenied,
    OAuthError,
    OAuthProviderError,
    OAuthReauthNeeded,
    OAuthStateInvalid,
    Problem,
)

__all__ = [
    "DESCRIPTION_MAX",
    "KEEP",
    "MAX_DATA_CHARS",
    "NAME_MAX",
    "PROVIDERS",
    "RULES",
    "TYPES",
    "Authorization",
    "Credential",
    "CredentialChange",
    "CredentialConflict",
    "CredentialError",
    "CredentialNameTaken",
    "CredentialNotFound",
    "CredentialService",
    "CredentialType",
    "FieldRule",
    "InvalidCredential",
    "Keep",
    "OAuthConnections",
    "OAuthDenied",
    "OAuthError",
    "OAuthProviderError",
    "OAuthReauthNeeded",
    "OAuthStateInvalid",
    "OAuthStatus",
    "Problem",
    "Provider",
    "data_schema",
    "patch_schema",
]
