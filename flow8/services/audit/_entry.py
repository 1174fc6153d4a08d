"""One audit record: a request, a change with before/after state, or an auth event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from ._mask import mask


@attrs.frozen
class AuditEntry:
    """`action` is `http_request`, `<thing>_created|updated|deleted`, or `auth_*`.

    `company_id` None marks events outside any company (a failed login for an unknown account,
    the install); they go to the system audit trail.
    """

    action: str
    company_id: str | None = None
    user_id: str | None = None
    user_email: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    correlation_id: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    duration_ms: float | None = None
    target_type: str | None = None
    target_id: str | None = None
    before: Any = None
    after: Any = None
    details: Any = None
    created_at: datetime = attrs.field(factory=lambda: _now_ms())

    def to_doc(self) -> dict[str, Any]:
        """The stored form; every free-form part is masked here, so nothing unmasked is
        ever handed to the store. Unset (None) fields are left out."""
        doc: dict[str, Any] = {"action": self.action}
        for name in _PLAIN:
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        for name in _FREE_FORM:
            value = getattr(self, name)
            if value is not None:
                doc[name] = mask(value)
        doc["created_at"] = self.created_at
        return doc


def _now_ms() -> datetime:
    # Stored times keep milliseconds (as MongoDB does); truncated here, the store need not.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# Fields stored as given, and free-form ones that may carry secrets (masked); `company_id`
# is not stored in the document: the tenant scope adds it.
_PLAIN = (
    "user_id",
    "user_email",
    "ip",
    "user_agent",
    "correlation_id",
    "method",
    "status",
    "duration_ms",
    "target_type",
    "target_id",
)
_FREE_FORM = ("path", "before", "after", "details")
