"""Flow definitions: flows, their versions and flowlets (steps)."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from typing import Any

import attrs


class FilterOperator(enum.StrEnum):
    EQ = "eq"
    NEQ = "neq"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    IS_EMPTY = "is_empty"
    NOT_EMPTY = "not_empty"
    REGEX = "regex"


class Cast(enum.StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"


class FilterMode(enum.StrEnum):
    AND = "and"
    OR = "or"


class KvConflict(enum.StrEnum):
    """Which value a subflow sees when it and its parent flow both hold a key."""

    CHILD = "child"
    PARENT = "parent"


@attrs.frozen
class FilterSpec:
    """One condition gating a flowlet; ``mode`` joins it to the conditions before it."""

    left_value: Any
    operator: FilterOperator
    right_value: Any = None
    cast: Cast | None = None
    mode: FilterMode = FilterMode.AND


@attrs.frozen
class RetryPolicy:
    """How often and how patiently a failed step is attempted again."""

    count: int = 0
    delay_ms: int = 1000
    backoff_multiplier: float = 2.0
    jitter: bool = False
    max_delay_ms: int = 300_000

    def delay_seconds(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Delay before retry ``retry_number`` (1-based): exponential, capped, optionally
        jittered ("full jitter" between half and the whole delay keeps retries spread out)."""
        try:
            base = self.delay_ms * (self.backoff_multiplier ** (retry_number - 1))
        except OverflowError:  # a policy saved before `_limits` bounded it: capped below
            base = math.inf
        delay = min(base, float(self.max_delay_ms)) / 1000.0
        if self.jitter:
            delay *= 0.5 + 0.5 * (rng or random).random()
        return delay


COMPONENT_KINDS = ("request", "storage", "db", "email", "console", "ai")
"""What a step's ``componentConfigIds`` may name a config for: the kinds of component a
module can be pointed at (one config id each)."""


@attrs.frozen
class Flowlet:
    """One step of a flow: a module call with (possibly templated) arguments.

    ``component_config_ids`` maps a component kind (:data:`COMPONENT_KINDS`) to the id of
    the company's config the step uses for it.
    """

    ref: str
    app_id: str
    name: str = ""
    index: int | None = None
    args: Mapping[str, Any] = attrs.field(factory=dict)
    timeout: float | None = None
    retry: RetryPolicy = RetryPolicy()
    filters: tuple[FilterSpec, ...] = ()
    needs_approval: bool = False
    component_config_ids: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class ExecutionSettings:
    """Per-flow execution limits. ``max_concurrent`` 0 means unlimited."""

    timeout_seconds: float | None = None
    max_concurrent: int = 0


@attrs.frozen
class FlowDefinition:
    """What a user edits: everything about a flow except identity and version bookkeeping."""

    name: str
    flowlets: tuple[Flowlet, ...] = ()
    description: str = ""
    input_schema: Mapping[str, Any] | None = None
    execution: ExecutionSettings = ExecutionSettings()
    kv_inherit: bool = True
    kv_conflict: KvConflict = KvConflict.CHILD
    group: str | None = None

    def flowlet(self, ref: str) -> Flowlet | None:
        for f in self.flowlets:
            if f.ref == ref:
                return f
        return None


@attrs.frozen
class Flow:
    """One immutable version of a company's flow. Every change produces a new version."""

    id: str
    company_id: str
    version: int
    definition: FlowDefinition
    created_at: float
    updated_at: float
