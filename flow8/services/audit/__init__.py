"""The audit trail: entries for requests, changes (before/after) and auth events, masked and
written in batches by one long-lived writer task."""

from ._entry import AuditEntry
from ._log import AuditLog, AuditSink
from ._mask import MASK, is_secret_key, mask

__all__ = ["MASK", "AuditEntry", "AuditLog", "AuditSink", "is_secret_key", "mask"]
