"""The flow engine: flows and their compiled plans, play execution, the dispatcher, KV.

Expressions live in ``flow8.expressions`` and the event bus in ``flow8.events``, both below
the engine. See README.md in this package for how the pieces are wired (``events_child``,
``engine_child``, ``module_catalog``).
"""

from __future__ import annotations

from ._engine import Engine
from ._flows import FlowRepository
from ._kv import KvError, KvStore, scope_key
from ._plan import PlanCache, validate_definition
from ._redact import MASK
from ._settings import EngineSettings
from ._wiring import engine_child, events_child, module_catalog
from .exceptions import (
    EngineError,
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
    "Engine",
    "EngineError",
    "EngineSettings",
    "FlowNotFound",
    "FlowRepository",
    "IdempotencyKeyReused",
    "Interrupted",
    "InvalidInput",
    "KvError",
    "KvStore",
    "OutputTooLarge",
    "PlanCache",
    "PlayLimitReached",
    "PlayNotFound",
    "PlayStateError",
    "StartTimedOut",
    "StepError",
    "StepTimeout",
    "engine_child",
    "events_child",
    "module_catalog",
    "scope_key",
    "validate_definition",
]
