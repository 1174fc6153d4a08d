"""Domain models and pure rules: flows, flowlets, plays, layers; no I/O.

Models are attrs classes (snake_case). ``parse_flow_definition`` reads the camelCase JSON
form; ``api`` / ``storage`` are the cattrs converters for the two boundaries.
"""

from __future__ import annotations

from ._codec import api, flow_definition_to_api, parse_flow_definition, storage
from ._flow import (
    Cast,
    ExecutionSettings,
    FilterMode,
    FilterOperator,
    FilterSpec,
    Flow,
    FlowDefinition,
    Flowlet,
    KvConflict,
    RetryPolicy,
)
from ._limits import (
    MAX_BACKOFF_MULTIPLIER,
    MAX_DESCRIPTION_LENGTH,
    MAX_FILTERS,
    MAX_FLOWLETS,
    MAX_NAME_LENGTH,
    MAX_REF_LENGTH,
    MAX_RETRY_COUNT,
    MAX_RETRY_DELAY_MS,
)
from ._play import (
    Attempt,
    LayerState,
    Play,
    PlayLayer,
    PlayState,
    PlayTransition,
    Trigger,
    TriggerKind,
    WaitReason,
    check_play_transition,
    check_transition_target,
    layer_key,
    play_sources,
    transition_sources,
    transition_targets,
)
from ._rules import (
    KV_MODULES,
    FlowChecks,
    definition_problems,
    execution_groups,
    no_flow_group,
    prev_refs,
    validate_definition,
)
from .exceptions import DomainError, FlowValidationError, InvalidTransition, Problem

__all__ = [
    "KV_MODULES",
    "MAX_BACKOFF_MULTIPLIER",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_FILTERS",
    "MAX_FLOWLETS",
    "MAX_NAME_LENGTH",
    "MAX_REF_LENGTH",
    "MAX_RETRY_COUNT",
    "MAX_RETRY_DELAY_MS",
    "Attempt",
    "Cast",
    "DomainError",
    "ExecutionSettings",
    "FilterMode",
    "FilterOperator",
    "FilterSpec",
    "Flow",
    "FlowChecks",
    "FlowDefinition",
    "FlowValidationError",
    "Flowlet",
    "InvalidTransition",
    "KvConflict",
    "LayerState",
    "Play",
    "PlayLayer",
    "PlayState",
    "PlayTransition",
    "Problem",
    "RetryPolicy",
    "Trigger",
    "TriggerKind",
    "WaitReason",
    "api",
    "check_play_transition",
    "check_transition_target",
    "definition_problems",
    "execution_groups",
    "flow_definition_to_api",
    "layer_key",
    "no_flow_group",
    "parse_flow_definition",
    "play_sources",
    "prev_refs",
    "storage",
    "transition_sources",
    "transition_targets",
    "validate_definition",
]
