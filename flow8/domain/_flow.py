"""Flow definitions: flows, their versions and flowlets (steps)."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from typing import Any

import attrs

from . import _limits as limits
from ._boundary import (
    MUST_BE_OBJECT,
    MUST_BE_STRING,
    MUST_NOT_BE_BLANK,
    NON_BLANK,
    Invalid,
    field,
    invalid_many,
    is_blank,
    rules,
    too_long,
    too_many_entries,
    too_short,
)


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

    left_value: Any = attrs.field(metadata=rules(required=False))  # left out in the API: null
    operator: FilterOperator
    right_value: Any = None
    cast: Cast | None = None
    mode: FilterMode = FilterMode.AND


@attrs.frozen
class RetryPolicy:
    """How often and how patiently a failed step is attempted again."""

    count: int = field(default=0, minimum=0, maximum=limits.MAX_RETRY_COUNT)
    delay_ms: int = field(default=1000, minimum=0, maximum=limits.MAX_RETRY_DELAY_MS)
    backoff_multiplier: float = field(default=2.0, minimum=1, maximum=limits.MAX_BACKOFF_MULTIPLIER)
    jitter: bool = False
    max_delay_ms: int = field(default=300_000, minimum=0, maximum=limits.MAX_RETRY_DELAY_MS)

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

_NOT_A_KIND = f"is not a component kind (one of: {', '.join(COMPONENT_KINDS)})"


def _component_config_ids(value: Any) -> dict[str, str]:
    """Component kind -> config id. Kinds are a closed set, so a typo (``"reqest"``) is
    refused when the flow is saved instead of being silently ignored when it runs. Every
    entry's problem is listed, under its key."""
    if not isinstance(value, Mapping):
        raise Invalid(MUST_BE_OBJECT)
    if len(value) > limits.MAX_COMPONENT_CHOICES:
        # One problem, not one per entry: the list of problems stays small.
        raise Invalid(too_many_entries(limits.MAX_COMPONENT_CHOICES))
    problems: list[Invalid] = []
    for kind, config_id in value.items():
        if kind not in COMPONENT_KINDS:
            problems.append(Invalid(_NOT_A_KIND, (kind,)))
        elif not isinstance(config_id, str):
            problems.append(Invalid(MUST_BE_STRING, (kind,)))
        elif not config_id:
            problems.append(Invalid(too_short(1), (kind,)))
        elif len(config_id) > limits.MAX_NAME_LENGTH:
            problems.append(Invalid(too_long(limits.MAX_NAME_LENGTH), (kind,)))
        elif is_blank(config_id):
            problems.append(Invalid(MUST_NOT_BE_BLANK, (kind,)))
    if problems:
        raise invalid_many(problems)
    return dict(value)


_COMPONENT_CONFIG_SCHEMA = {
    "type": "object",
    "propertyNames": {"enum": list(COMPONENT_KINDS)},
    "additionalProperties": {
        "type": "string",
        "minLength": 1,
        "maxLength": limits.MAX_NAME_LENGTH,
        "pattern": NON_BLANK,
    },
}


def _ref_problem(ref: str) -> str | None:
    if not ref.replace("_", "a").replace("-", "a").isalnum():
        return "may contain only letters, digits, '_' and '-'"
    if ref == "args":
        return "must not be 'args' (reserved for the play input, $prev.args)"
    return None


def _tags_problem(tags: Any) -> str | None:
    seen: set[str] = set()
    for tag in tags:
        if is_blank(tag):
            return "a tag must not be blank"
        if len(tag) > limits.MAX_TAG_LENGTH:
            return f"a tag has at most {limits.MAX_TAG_LENGTH} characters: {tag[:50]!r}"
        if tag in seen:
            return f"tag {tag!r} is listed twice"
        seen.add(tag)
    return None


def _ref_as_name(flowlet: Any) -> str:
    name: str = flowlet.ref
    return name


def _zero_is_none(value: float | None) -> float | None:
    """No limit is written 0 or null; the model holds None."""
    return value or None


def _empty_is_none(value: str | None) -> str | None:
    return value or None


@attrs.frozen
class Flowlet:
    """One step of a flow: a module call with (possibly templated) arguments.

    ``component_config_ids`` maps a component kind (:data:`COMPONENT_KINDS`) to the id of
    the company's config the step uses for it.
    """

    ref: str = attrs.field(
        metadata=rules(min_length=1, max_length=limits.MAX_REF_LENGTH, check=_ref_problem)
    )
    app_id: str = attrs.field(metadata=rules(min_length=1))
    name: str = field(
        default=attrs.Factory(_ref_as_name, takes_self=True),
        max_length=limits.MAX_NAME_LENGTH,
        null_as_default=True,
        description="defaults to the ref",
    )
    index: int | None = None
    args: Mapping[str, Any] = field(factory=dict, null_as_default=True)
    timeout: float | None = field(default=None, exclusive_minimum=0)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy, metadata=rules(null_as_default=True))
    filters: tuple[FilterSpec, ...] = field(
        default=(), max_items=limits.MAX_FILTERS, null_as_default=True
    )
    needs_approval: bool = False
    component_config_ids: Mapping[str, str] = field(
        factory=dict,
        structure=_component_config_ids,
        schema=_COMPONENT_CONFIG_SCHEMA,
        null_as_default=True,
    )


@attrs.frozen
class ExecutionSettings:
    """Per-flow execution limits. ``max_concurrent`` 0 means unlimited."""

    timeout_seconds: float | None = field(default=None, minimum=0, converter=_zero_is_none)
    max_concurrent: int = field(default=0, minimum=0)
    # Record every component call of every step on its layer (`calls`): what a flow test
    # fixture replays later. Off by default: calls can be large.
    record_calls: bool = False


@attrs.frozen
class FlowDefinition:
    """What a user edits: everything about a flow except identity and version bookkeeping."""

    name: str = attrs.field(
        metadata=rules(min_length=1, max_length=limits.MAX_NAME_LENGTH, not_blank=True)
    )
    flowlets: tuple[Flowlet, ...] = field(default=(), max_items=limits.MAX_FLOWLETS, required=True)
    description: str = field(
        default="", max_length=limits.MAX_DESCRIPTION_LENGTH, null_as_default=True
    )
    input_schema: Mapping[str, Any] | None = None
    execution: ExecutionSettings = attrs.field(
        factory=ExecutionSettings, metadata=rules(null_as_default=True)
    )
    kv_inherit: bool = True
    kv_conflict: KvConflict = KvConflict.CHILD
    group: str | None = field(
        default=None, max_length=limits.MAX_NAME_LENGTH, converter=_empty_is_none
    )
    tags: tuple[str, ...] = field(
        default=(), max_items=limits.MAX_TAGS, check=_tags_problem, null_as_default=True
    )
    # Only an enabled flow is started by its triggers (schedules, channels, MCP, subflow
    # steps); a person or the API may still start a disabled one on purpose (`force`).
    enabled: bool = field(default=True, null_as_default=True)

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
