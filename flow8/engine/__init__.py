"""The flow engine: compiled plans, play execution, the dispatcher, KV as plays see it.

Expressions live in ``flow8.expressions`` and the event bus in ``flow8.events``, both below
the engine. Flows and KV entries are stored by the services above it: the engine reads them
through the protocols it declares (:class:`FlowSource`, :class:`KvStorage`). See README.md in
this package for how the pieces are wired (``events_child``, ``engine_child``).
"""

from __future__ import annotations

from ._engine import Engine
from ._kv import KvError, scope_key
from ._plan import PlanCache, check_definition, validate_definition
from ._records import flow_definition_doc, flow_from_doc
from ._redact import MASK
from ._settings import EngineSettings
from ._sources import BudgetSource, ComponentSource, CredentialSource, FlowSource, KvStorage
from ._wiring import engine_child, events_child
from .exceptions import (
    BudgetExceeded,
    EngineError,
    FlowDisabled,
    FlowNotFound,
    IdempotencyKeyReused,
    Interrupted,
    InvalidInput,
    OutputTooLarge,
    PlayLimitReached,
    PlayNotFound,
    PlayStateError,
    StartTimedOut,
    StepError,
    StepTimeout,
)

__all__ = [
    "MASK",
    "BudgetExceeded",
    "BudgetSource",
    "ComponentSource",
    "CredentialSource",
    "Engine",
    "EngineError",
    "EngineSettings",
    "FlowDisabled",
    "FlowNotFound",
    "FlowSource",
    "IdempotencyKeyReused",
    "Interrupted",
    "InvalidInput",
    "KvError",
    "KvStorage",
    "OutputTooLarge",
    "PlanCache",
    "PlayLimitReached",
    "PlayNotFound",
    "PlayStateError",
    "StartTimedOut",
    "StepError",
    "StepTimeout",
    "check_definition",
    "engine_child",
    "events_child",
    "flow_definition_doc",
    "flow_from_doc",
    "scope_key",
    "validate_definition",
]
