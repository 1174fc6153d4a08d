"""Credentials ("links"): API keys, basic and bearer auth, OAuth2 clients and generic secret
maps of a company, stored encrypted. Interfaces see names and field names only; modules and
components get the data through `CredentialService.reveal`."""

from ._models import Credential, CredentialChange
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
    Problem,
)

__all__ = [
    "DESCRIPTION_MAX",
    "KEEP",
    "MAX_DATA_CHARS",
    "NAME_MAX",
    "RULES",
    "TYPES",
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
    "Problem",
    "data_schema",
    "patch_schema",
]
