"""Identity value rules: emails, passwords, names, slugs."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from flow8.services.audit import AuditEntry

from ._models import Principal
from .exceptions import InvalidInput, PermissionDenied

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_email(email: str) -> str:
    value = unicodedata.normalize("NFKC", email).strip().lower()
    if not _EMAIL.match(value) or "." not in value.rsplit("@", 1)[1]:
        raise InvalidInput("email", "not a valid email address")
    return value


def check_password(password: str, field: str = "password") -> None:
    """The rules a new password meets (`field` names it in the error)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(field, f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(field, f"must be at most {MAX_PASSWORD} characters")


# Whitespace by both Python's and ECMAScript's definition, so the API schema's pattern
# (NON_BLANK) and this check agree exactly on what counts as a blank name.
BLANK = (
    "\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
NON_BLANK = (
    r"[^\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)


def check_name(field: str, name: str) -> str:
    value = name.strip(BLANK)
    if not value or len(value) > 200:
        raise InvalidInput(field, "must be 1 to 200 characters")
    return value


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48] or "company"


def company_of(principal: Principal) -> str:
    if principal.company_id is None:
        raise PermissionDenied("select a company first")
    return principal.company_id


def audit_by(principal: Principal, action: str, **fields: Any) -> AuditEntry:
    """The audit entry of something ``principal`` (a signed-in user or API key) did."""
    return AuditEntry(action, user_id=principal.user.id, user_email=principal.user.email, **fields)
