"""The flow engine: expressions, compiled plans, play execution, dispatcher and events.

See README.md in this package for how the pieces are wired (``events_child``,
``engine_child``, ``module_catalog``).
"""

from __future__ import annotations

from ._engine import Engine
from ._events import (
    LAYER_COMPLETED,
    LAYER_FAILED,
    LAYER_STARTED,
    PLAY_COMPLETED,
    PLAY_FAILED,
    PLAY_STARTED,
    PLAY_WAITING,
    SUBSCRIBER_DROPPED,
    Event,
    EventBus,
    EventFilter,
)
from ._exceptions import (
    EngineError,
    ExpressionError,
    ExpressionLimit,
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
from ._expressions import Expression, split_template
from ._filters import FilterError, apply_operator, cast_value, filters_pass_async
from ._flows import FlowRepository
from ._kv import KvError, KvStore, PlayKv, scope_key
from ._limits import ExpressionLimits, configure_expressions, expression_limits
from ._plan import Plan, PlanCache, check_definition, compile_plan, validate_definition
from ._redact import MASK, Redactor
from ._settings import EngineSettings
from ._templates import CompiledValue, compile_value
from ._wiring import engine_child, events_child, module_catalog

__all__ = [
    "LAYER_COMPLETED",
    "LAYER_FAILED",
    "LAYER_STARTED",
    "MASK",
    "PLAY_COMPLETED",
    "PLAY_FAILED",
    "PLAY_STARTED",
    "PLAY_WAITING",
    "SUBSCRIBER_DROPPED",
    "CompiledValue",
    "Engine",
    "EngineError",
    "EngineSettings",
    "Event",
    "EventBus",
    "EventFilter",
    "Expression",
    "ExpressionError",
    "ExpressionLimit",
    "ExpressionLimits",
    "FilterError",
    "FlowNotFound",
    "FlowRepository",
    "IdempotencyKeyReused",
    "Interrupted",
    "InvalidInput",
    "KvError",
    "KvStore",
    "OutputTooLarge",
    "Plan",
    "PlanCache",
    "PlayKv",
    "PlayLimitReached",
    "PlayNotFound",
    "PlayStateError",
    "Redactor",
    "StartTimedOut",
    "StepError",
    "StepTimeout",
    "apply_operator",
    "cast_value",
    "check_definition",
    "compile_plan",
    "compile_value",
    "configure_expressions",
    "engine_child",
    "events_child",
    "expression_limits",
    "filters_pass_async",
    "module_catalog",
    "scope_key",
    "split_template",
    "validate_definition",
]
