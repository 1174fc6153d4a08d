"""Flows: a company's flows and their immutable versions.

:class:`FlowService` is what the interfaces call (create, version, read, list, validate,
delete); :class:`FlowRepository` stores them, and is also the ``flow8.engine.FlowSource`` the
engine reads the versions it runs from.
"""

from flow8.domain import Flow, FlowValidationError, Problem
from flow8.engine import FlowNotFound

from ._repository import FlowRepository
from ._service import FlowService

__all__ = [
    "Flow",
    "FlowNotFound",
    "FlowRepository",
    "FlowService",
    "FlowValidationError",
    "Problem",
]
