"""Retention policies of each company (the retention job in ``flow8.jobs`` applies them)."""

from ._policies import (
    COLLECTION,
    SCOPES,
    TARGETS,
    InvalidPolicy,
    Policy,
    PolicyConflict,
    PolicyNotFound,
    RetentionDefaults,
    RetentionError,
    RetentionPolicies,
    resolve,
)

__all__ = [
    "COLLECTION",
    "SCOPES",
    "TARGETS",
    "InvalidPolicy",
    "Policy",
    "PolicyConflict",
    "PolicyNotFound",
    "RetentionDefaults",
    "RetentionError",
    "RetentionPolicies",
    "resolve",
]
