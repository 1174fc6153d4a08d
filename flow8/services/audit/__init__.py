"""The audit trail: entries for requests, changes (before/after) and auth events, masked and
written in batches by one long-lived writer task."""

from ._child import audit_child
from ._cli import CLI_USER_AGENT, cli_entry, os_user, write_now
from ._entry import AuditEntry
from ._filters import AuditFilterCache, AuditFilterValues
from ._log import AuditLog, AuditSink
from ._mask import MASK, is_secret_key, mask
from ._store import SYSTEM_COLLECTION, AuditFilter, AuditQueries, StoreAuditSink

__all__ = [
    "CLI_USER_AGENT",
    "MASK",
    "SYSTEM_COLLECTION",
    "AuditEntry",
    "AuditFilter",
    "AuditFilterCache",
    "AuditFilterValues",
    "AuditLog",
    "AuditQueries",
    "AuditSink",
    "StoreAuditSink",
    "audit_child",
    "cli_entry",
    "is_secret_key",
    "mask",
    "os_user",
    "write_now",
]
