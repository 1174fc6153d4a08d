"""The audit trail: entries for requests, changes (before/after) and auth events, masked and
written in batches by one long-lived writer task."""

from ._child import audit_child
from ._entry import AuditEntry
from ._log import AuditLog, AuditSink
from ._mask import MASK, is_secret_key, mask
from ._store import SYSTEM_COLLECTION, AuditFilter, AuditQueries, StoreAuditSink

__all__ = [
    "MASK",
    "SYSTEM_COLLECTION",
    "AuditEntry",
    "AuditFilter",
    "AuditLog",
    "AuditQueries",
    "AuditSink",
    "StoreAuditSink",
    "audit_child",
    "is_secret_key",
    "mask",
]
