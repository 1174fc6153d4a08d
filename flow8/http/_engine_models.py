"""API bodies of the flow, play, KV and module routes.

Flow bodies are the flow JSON of the design (the domain's `FlowDefinition`, camelCase); the
schema is generated from those same domain classes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import attrs

from flow8.domain import (
    AiUsage,
    Flow,
    FlowDefinition,
    JsonData,
    LayerState,
    Play,
    PlayLayer,
    PlayState,
    UsageTotals,
    field,
)


def _when(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _flow_out_class() -> type:
    """FlowOut = every FlowDefinition field plus id, version and timestamps."""
    extra = {
        "id": attrs.field(type=str),
        "version": attrs.field(type=int),
        "created_at": attrs.field(type=datetime),
        "updated_at": attrs.field(type=datetime),
    }
    own: dict[str, Any] = {}
    for a in attrs.fields(FlowDefinition):
        kwargs: dict[str, Any] = {"type": a.type, "metadata": a.metadata}
        if a.default is not attrs.NOTHING:
            kwargs["default"] = a.default
        own[a.name] = attrs.field(**kwargs)
    # Required attributes first (attrs wants defaults last).
    ordered = {**extra, **own}
    cls = attrs.make_class("FlowOut", ordered, frozen=True)
    cls.__module__ = "flow8.domain._flow"  # resolve annotations against the domain module
    return cls


FlowOut = _flow_out_class()


def flow_out(flow: Flow) -> Any:
    values = {a.name: getattr(flow.definition, a.name) for a in attrs.fields(FlowDefinition)}
    created = _when(flow.created_at)
    updated = _when(flow.updated_at)
    return FlowOut(
        id=flow.id, version=flow.version, created_at=created, updated_at=updated, **values
    )


@attrs.frozen
class PlayOut:
    id: str
    flow_id: str
    flow_version: int
    state: PlayState
    input: JsonData
    out: JsonData
    error: str | None
    trigger: str
    created_at: datetime | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    trigger_source: str | None = None
    parent_play_id: str | None = None
    wait_reason: str | None = None
    wait_ref: str | None = None
    retry_of: str | None = None
    resume_from: str | None = None
    # What its AI steps spent: {calls, inputTokens, outputTokens, cost}; null when none ran.
    usage: JsonData | None = None
    # The request that started it (its X-Request-Id, on the play's log lines) and the W3C
    # trace id that request carried (passed on by its outbound requests); null when none.
    correlation_id: str | None = None
    trace_id: str | None = None

    @classmethod
    def of(cls, p: Play) -> PlayOut:
        return cls(
            id=p.id,
            flow_id=p.flow_id,
            flow_version=p.flow_version,
            state=p.state,
            input=p.input,
            out=p.output,
            error=p.error,
            trigger=p.trigger.kind.value,
            created_at=_when(p.created_at),
            started_at=_when(p.started_at),
            finished_at=_when(p.finished_at),
            trigger_source=p.trigger.source,
            parent_play_id=p.parent_play_id,
            wait_reason=p.wait_reason.value if p.wait_reason else None,
            wait_ref=p.wait_ref,
            retry_of=p.retry_of,
            resume_from=p.resume_from,
            usage=JsonData(_usage_totals(p.usage)) if p.usage is not None else None,
            correlation_id=p.trace.correlation_id if p.trace is not None else None,
            trace_id=p.trace.trace_id if p.trace is not None else None,
        )


@attrs.frozen
class AttemptOut:
    number: int
    started_at: datetime | None
    finished_at: datetime | None = None
    error: str | None = None


@attrs.frozen
class LayerOut:
    id: str
    ref: str
    state: LayerState
    iteration: list[int]
    app_id: str
    args: JsonData
    output: JsonData
    error: str | None
    attempts: list[AttemptOut]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seq: int = 0
    # Its AI calls, every attempt's: [{provider, model, inputTokens, outputTokens, cost}].
    usage: JsonData | None = None

    @classmethod
    def of(cls, la: PlayLayer) -> LayerOut:
        return cls(
            id=la.key,
            ref=la.ref,
            state=la.state,
            iteration=list(la.iteration),
            app_id=la.app_id,
            args=la.args,
            output=la.output,
            error=la.error,
            attempts=[
                AttemptOut(
                    number=a.number,
                    started_at=_when(a.started_at),
                    finished_at=_when(a.finished_at),
                    error=a.error,
                )
                for a in la.attempts
            ],
            started_at=_when(la.started_at),
            finished_at=_when(la.finished_at),
            seq=la.seq,
            usage=JsonData([_usage_call(u) for u in la.usage]) if la.usage else None,
        )


@attrs.frozen
class RunQuery:
    wait: float | None = field(
        default=None,
        minimum=0,
        maximum=300,
        description="seconds to wait for the end; 200 with the finished play, else 202",
    )
    force: bool = field(
        default=False, description="start the flow even if it is disabled (409 otherwise)"
    )


@attrs.frozen
class FlowListQuery:
    page: int = field(default=0, minimum=0, maximum=1_000_000)
    size: int = field(default=25, minimum=1, maximum=100)
    q: str | None = field(
        default=None, max_length=200, description="the name starts with this (case counts)"
    )
    group: str | None = field(default=None, max_length=200)
    tag: str | None = field(default=None, max_length=40, description="flows with this tag")
    enabled: bool | None = field(
        default=None, description="true: enabled flows only; false: disabled ones only"
    )


@attrs.frozen
class PlayListQuery:
    page: int = field(default=0, minimum=0, maximum=1_000_000)
    size: int = field(default=25, minimum=1, maximum=100)
    flow_id: str | None = field(default=None, max_length=64)
    state: PlayState | None = None
    # Creation time window, as on /api/audit: since inclusive, until exclusive.
    since: datetime | None = None
    until: datetime | None = None


@attrs.frozen
class RetryRequest:
    from_ref: str = field(min_length=1, max_length=200)


KvScope = Literal["global", "flow", "flow_group"]


@attrs.frozen
class KvQuery:
    page: int = field(default=0, minimum=0, maximum=1_000_000)
    size: int = field(default=25, minimum=1, maximum=100)
    scope: KvScope = "global"
    scope_key: str | None = field(default=None, max_length=200)


@attrs.frozen
class KvScopeQuery:
    scope: KvScope = "global"
    scope_key: str | None = field(default=None, max_length=200)


@attrs.frozen
class KvSet:
    key: str = field(min_length=1, max_length=256)
    value: Any = None
    scope: KvScope = "global"
    scope_key: str | None = field(default=None, max_length=200)
    ttl_seconds: float | None = field(default=None, minimum=1, maximum=10 * 365 * 86400)
    secret: bool | None = field(
        default=None,
        description="true: never shown again, masked (***) in plays' records; "
        "false: an ordinary entry; left out: as it is (a new entry is not secret)",
    )

    __json_schema_extra__: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"scope": {"enum": ["flow", "flow_group"]}}, "required": ["scope"]},
        "then": {
            "required": ["scopeKey"],
            "properties": {"scopeKey": {"type": "string", "minLength": 1}},
        },
    }


@attrs.frozen
class KvEntryOut:
    key: str
    value: JsonData  # "***" for a secret entry
    scope: str
    scope_key: str | None = None
    expires_at: datetime | None = None
    secret: bool = False


@attrs.frozen
class ModuleOut:
    app_id: str
    category: str
    description: str
    idempotent: bool
    args_schema: dict[str, Any]
    output_schema: dict[str, Any]


def _usage_totals(t: UsageTotals) -> dict[str, Any]:
    return {
        "calls": t.calls,
        "inputTokens": t.input_tokens,
        "outputTokens": t.output_tokens,
        "cost": t.cost,
    }


def _usage_call(u: AiUsage) -> dict[str, Any]:
    return {
        "provider": u.provider,
        "model": u.model,
        "inputTokens": u.input_tokens,
        "outputTokens": u.output_tokens,
        "cost": u.cost,
    }
