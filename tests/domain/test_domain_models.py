"""Domain models: parsing flow JSON, converters, ordering, the play state machine."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flow8.domain import (
    Flowlet,
    FlowValidationError,
    InvalidTransition,
    Play,
    PlayState,
    RetryPolicy,
    api,
    check_play_transition,
    execution_groups,
    flow_definition_to_api,
    parse_flow_definition,
    prev_refs,
    storage,
)

DOC = {
    "name": "invoice",
    "inputSchema": {"type": "object"},
    "execution": {"timeoutSeconds": 300, "maxConcurrent": 2},
    "kvInherit": True,
    "kvConflict": "parent",
    "flowlets": [
        {
            "ref": "parse",
            "name": "Parse",
            "appId": "json-parse",
            "args": {"text": "{{ $prev.args.body }}"},
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
            "needsApproval": False,
            "componentConfigIds": {"ai": "mistral-production"},
        }
    ],
}


def test_parse_and_render_round_trip() -> None:
    definition = parse_flow_definition(DOC)
    assert definition.flowlets[0].retry.count == 3
    assert definition.execution.max_concurrent == 2
    rendered = flow_definition_to_api(definition)
    assert rendered["flowlets"][0]["componentConfigIds"] == {"ai": "mistral-production"}
    assert rendered["kvConflict"] == "parent"
    assert parse_flow_definition(rendered) == definition
    assert storage.structure(storage.unstructure(definition), type(definition)) == definition


def test_reserved_and_malformed_refs_are_rejected() -> None:
    with pytest.raises(FlowValidationError) as info:
        parse_flow_definition(
            {
                "name": "x",
                "flowlets": [{"ref": "args", "appId": "noop"}, {"ref": "a b", "appId": "noop"}],
            }
        )
    paths = [p.path for p in info.value.problems]
    assert paths == ["flowlets[0].ref", "flowlets[1].ref"]


def test_execution_groups_order_and_parallelism() -> None:
    fs = [
        Flowlet("a", "noop"),
        Flowlet("b", "noop", index=5),
        Flowlet("c", "noop"),
        Flowlet("d", "noop", index=5),
        Flowlet("e", "noop", index=0),
    ]
    assert [[f.ref for f in g] for g in execution_groups(fs)] == [["a", "e"], ["c"], ["b", "d"]]


def test_prev_refs_finds_plain_and_backticked_refs() -> None:
    assert prev_refs("$prev.a.b + $prev.`my-ref`.x + $prev.args.y") == {"a", "my-ref"}


def test_play_state_machine() -> None:
    check_play_transition(PlayState.NEW, PlayState.RUN)
    check_play_transition(PlayState.RUN, PlayState.WAIT)
    check_play_transition(PlayState.WAIT, PlayState.RUN)
    for final in (PlayState.DONE, PlayState.FAIL, PlayState.CANCEL):
        assert final.final
        with pytest.raises(InvalidTransition):
            check_play_transition(final, PlayState.RUN)
    with pytest.raises(InvalidTransition):
        check_play_transition(PlayState.DEFERRED, PlayState.DONE)


def test_api_converter_is_camel_case() -> None:
    play = Play("p", "c", "f", 3, PlayState.DONE, parent_play_id="q", kv_parents=("f0",))
    out = api.unstructure(play)
    assert out["flowVersion"] == 3
    assert out["parentPlayId"] == "q"
    assert out["state"] == "DONE"
    assert api.structure(out, Play) == play


@settings(max_examples=100, deadline=None)
@given(
    count=st.integers(1, 10),
    delay=st.integers(1, 10_000),
    mult=st.floats(1, 5),
    jitter=st.booleans(),
)
def test_retry_delays_grow_and_stay_capped(
    count: int, delay: int, mult: float, jitter: bool
) -> None:
    policy = RetryPolicy(count, delay, mult, jitter, max_delay_ms=60_000)
    rng = random.Random(1)
    delays = [policy.delay_seconds(n, rng) for n in range(1, count + 1)]
    for n, d in enumerate(delays, start=1):
        full = min(delay * mult ** (n - 1), 60_000) / 1000
        assert (full / 2 <= d <= full) if jitter else d == pytest.approx(full)
