"""Stored documents keep their shape: flows, plays and layers written by the storage converter
(`flow8.domain.storage`) are, key for key, what flow8 has always stored, so existing data
reads back. The expected documents below were produced by the code before the converters
were unified; change them only with a migration."""

from __future__ import annotations

from typing import Any

from flow8.domain import (
    Attempt,
    LayerState,
    Play,
    PlayLayer,
    PlayState,
    Trigger,
    TriggerKind,
    WaitReason,
    parse_flow_definition,
)
from flow8.engine._records import (
    flow_definition_doc,
    flow_from_doc,
    layer_doc,
    layer_from_doc,
    play_doc,
    play_from_doc,
)

FLOW_JSON = {
    "name": "invoice",
    "description": "d",
    "group": "g",
    "inputSchema": {"type": "object"},
    "execution": {"timeoutSeconds": 300, "maxConcurrent": 2},
    "kvInherit": False,
    "kvConflict": "parent",
    "flowlets": [
        {
            "ref": "parse",
            "name": "Parse",
            "appId": "json-parse",
            "index": 3,
            "args": {"text": "{{ $prev.args.body }}", "n": [1, 2, {"a": None}]},
            "timeout": 30,
            "retry": {"count": 3, "delayMs": 200, "backoffMultiplier": 2, "jitter": True},
            "filters": [
                {
                    "leftValue": "{{ $prev.args.kind }}",
                    "operator": "eq",
                    "rightValue": "invoice",
                    "cast": "string",
                    "mode": "and",
                }
            ],
            "needsApproval": True,
            "componentConfigIds": {"ai": "mistral-production"},
        },
        {"ref": "b", "appId": "noop"},
    ],
}

DEFAULT_RETRY = {
    "count": 0,
    "delay_ms": 1000,
    "backoff_multiplier": 2.0,
    "jitter": False,
    "max_delay_ms": 300000,
}
FLOW_DOC: dict[str, Any] = {
    "name": "invoice",
    "flowlets": [
        {
            "ref": "parse",
            "app_id": "json-parse",
            "name": "Parse",
            "index": 3,
            "args": {"text": "{{ $prev.args.body }}", "n": [1, 2, {"a": None}]},
            "timeout": 30.0,
            "retry": {
                "count": 3,
                "delay_ms": 200,
                "backoff_multiplier": 2.0,
                "jitter": True,
                "max_delay_ms": 300000,
            },
            "filters": [
                {
                    "left_value": "{{ $prev.args.kind }}",
                    "operator": "eq",
                    "right_value": "invoice",
                    "cast": "string",
                    "mode": "and",
                }
            ],
            "needs_approval": True,
            "component_config_ids": {"ai": "mistral-production"},
        },
        {
            "ref": "b",
            "app_id": "noop",
            "name": "b",
            "index": None,
            "args": {},
            "timeout": None,
            "retry": DEFAULT_RETRY,
            "filters": [],
            "needs_approval": False,
            "component_config_ids": {},
        },
    ],
    "description": "d",
    "input_schema": {"type": "object"},
    # record_calls: added with components (stored documents without it read as false)
    "execution": {"timeout_seconds": 300.0, "max_concurrent": 2, "record_calls": False},
    "kv_inherit": False,
    "kv_conflict": "parent",
    "group": "g",
    # tags and enabled: added with the UI's flow list (documents without them read as no
    # tags, enabled)
    "tags": [],
    "enabled": True,
}

PLAY = Play(
    "p",
    "c",
    "f",
    3,
    PlayState.WAIT,
    input={"x": [1, 2]},
    output=[1],
    error="e",
    trigger=Trigger(TriggerKind.API, "src"),
    parent_play_id="q",
    root_play_id="r",
    depth=2,
    idempotency_key="k",
    created_at=1.5,
    started_at=2.0,
    wait_reason=WaitReason.APPROVAL,
    wait_ref="parse",
    wake_at=9.0,
    retry_of="o",
    resume_from="parse",
    kv_parents=("f0", "f1"),
)
PLAY_DOC = {
    "_id": "p",
    "company_id": "c",
    "flow_id": "f",
    "flow_version": 3,
    "status": "WAIT",
    "input": {"x": [1, 2]},
    "output": [1],
    "error": "e",
    "trigger": {"kind": "api", "source": "src"},
    "parent_play_id": "q",
    "root_play_id": "r",
    "depth": 2,
    "idempotency_key": "k",
    "created_at": 1.5,
    "started_at": 2.0,
    "finished_at": None,
    "wait_reason": "approval",
    "wait_ref": "parse",
    "wake_at": 9.0,
    "retry_of": "o",
    "resume_from": "parse",
    "kv_parents": ["f0", "f1"],
}

LAYER = PlayLayer(
    "p",
    "c",
    "parse",
    LayerState.DONE,
    (0, 1),
    "json-parse",
    {"a": 1},
    {"b": [2]},
    None,
    (Attempt(1, 1.0, 2.0, "boom"), Attempt(2, 3.0)),
    1.0,
    4.0,
    7,
)
LAYER_DOC = {
    "play_id": "p",
    "company_id": "c",
    "ref": "parse",
    "state": "DONE",
    "iteration": [0, 1],
    "app_id": "json-parse",
    "args": {"a": 1},
    "output": {"b": [2]},
    "error": None,
    "attempts": [
        {"number": 1, "started_at": 1.0, "finished_at": 2.0, "error": "boom"},
        {"number": 2, "started_at": 3.0, "finished_at": None, "error": None},
    ],
    "started_at": 1.0,
    "finished_at": 4.0,
    "seq": 7,
    "_id": "p:parse:0/1",
    "layer_id": "parse:0/1",
}


def _plain(value: Any) -> Any:
    """Tuples as lists: what the store's JSON makes of them."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def test_a_flow_definition_is_stored_as_it_always_was() -> None:
    definition = parse_flow_definition(FLOW_JSON)
    doc = flow_definition_doc(definition)
    assert _plain(doc) == FLOW_DOC
    assert list(doc) == list(FLOW_DOC)  # the same keys, in the same order
    stored = {"_id": "f", "company_id": "c", "version": 1, "definition": FLOW_DOC}
    flow = flow_from_doc({**stored, "created_at": 1.0})
    assert flow.definition == definition
    assert flow.updated_at == 1.0
    older = {k: v for k, v in FLOW_DOC.items() if k not in ("tags", "enabled")}
    before = flow_from_doc({**stored, "definition": older, "created_at": 1.0})
    assert before.definition == definition  # no tags, enabled


def test_a_play_and_a_layer_are_stored_as_they_always_were() -> None:
    assert _plain(play_doc(PLAY)) == PLAY_DOC
    assert play_from_doc(PLAY_DOC) == PLAY
    # The engine's runtime fields beside a play's are not part of it.
    assert play_from_doc({**PLAY_DOC, "lease_owner": "i1", "approvals": []}) == PLAY
    assert _plain(layer_doc(LAYER)) == LAYER_DOC
    assert layer_from_doc(LAYER_DOC) == LAYER
