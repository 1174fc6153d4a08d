"""Flow definition checks found by using flow8 as a new user: what a flow names must exist
(component kinds) and what a step asks for must be possible in its flow (a flow group)."""

from __future__ import annotations

from typing import Any

import pytest

from flow8.domain import FlowValidationError, no_flow_group, parse_flow_definition
from flow8.engine import validate_definition
from flow8.modules import default_registry


def _structural(flowlet: dict[str, Any]) -> dict[str, str]:
    """parse_flow_definition's problems for a flow of this one step, by path."""
    with pytest.raises(FlowValidationError) as info:
        parse_flow_definition({"name": "f", "flowlets": [flowlet]})
    return {p.path: p.message for p in info.value.problems}


def _semantic(flow: dict[str, Any]) -> dict[str, str]:
    """validate_definition's problems (the checks on save), by path."""
    problems = validate_definition(parse_flow_definition(flow), default_registry())
    return {p.path: p.message for p in problems}


def test_component_config_ids_accept_every_known_kind() -> None:
    ids = {kind: f"{kind}-main" for kind in ("request", "storage", "db", "email", "console", "ai")}
    step = {"ref": "a", "appId": "noop", "componentConfigIds": ids}
    definition = parse_flow_definition({"name": "f", "flowlets": [step]})
    assert definition.flowlets[0].component_config_ids == ids


def test_component_config_ids_list_each_problem_with_its_path() -> None:
    found = _structural(
        {
            "ref": "a",
            "appId": "noop",
            "componentConfigIds": {
                "reqest": "main",  # a typo: it would silently configure nothing
                "ai": "",
                "db": 7,
                "email": "x" * 201,
                "storage": "   ",
                "console": "ok",
            },
        }
    )
    assert found == {
        "flowlets[0].componentConfigIds.reqest": (
            "is not a component kind (one of: request, storage, db, email, console, ai)"
        ),
        "flowlets[0].componentConfigIds.ai": "must not be empty",
        "flowlets[0].componentConfigIds.db": "must be a string",
        "flowlets[0].componentConfigIds.email": "must be at most 200 characters",
        "flowlets[0].componentConfigIds.storage": "must not be blank",
    }


def test_component_config_ids_must_be_an_object_of_bounded_size() -> None:
    assert _structural({"ref": "a", "appId": "noop", "componentConfigIds": ["ai"]}) == {
        "flowlets[0].componentConfigIds": "must be an object"
    }
    many = {f"k{i}": "x" for i in range(21)}
    assert _structural({"ref": "a", "appId": "noop", "componentConfigIds": many}) == {
        "flowlets[0].componentConfigIds": "must have at most 20 entries"
    }
    # An unknown kind of any length is named briefly, under a path of bounded length.
    [(path, message)] = _structural(
        {"ref": "a", "appId": "noop", "componentConfigIds": {"k" * 100_000: "x"}}
    ).items()
    assert path.startswith("flowlets[0].componentConfigIds.kkk")
    assert len(path) < 120
    assert message.startswith("is not a component kind")


@pytest.mark.parametrize("app_id", ["kv-set", "kv-get", "kv-append", "kv-delete"])
def test_kv_scope_flow_group_is_refused_in_a_flow_without_group(app_id: str) -> None:
    args: dict[str, Any] = {"key": "k", "scope": "flow_group"}
    if app_id in ("kv-set", "kv-append"):
        args["value"] = 1
    flow = {
        "name": "f",
        "flowlets": [
            {"ref": "first", "appId": "noop"},
            {"ref": "remember", "appId": app_id, "args": args},
        ],
    }
    assert _semantic(flow) == {"flowlets[1].args.scope": no_flow_group("remember")}
    assert "remember" in no_flow_group("remember")
    assert _semantic({**flow, "group": "billing"}) == {}


def test_other_kv_scopes_and_expressions_need_no_group() -> None:
    steps = [
        {"ref": "a", "appId": "kv-set", "args": {"key": "k", "value": 1}},
        {"ref": "b", "appId": "kv-set", "args": {"key": "k", "value": 1, "scope": "flow"}},
        {"ref": "c", "appId": "kv-get", "args": {"key": "k", "scope": "global"}},
        # Known only when the step runs, which then refuses it (see the module tests).
        {"ref": "d", "appId": "kv-get", "args": {"key": "k", "scope": "{{ $prev.args.s }}"}},
    ]
    assert _semantic({"name": "f", "flowlets": steps}) == {}


def test_delay_with_both_ms_and_seconds_is_refused_on_save() -> None:
    flow = {
        "name": "f",
        "flowlets": [{"ref": "wait", "appId": "delay", "args": {"ms": 5, "seconds": 1}}],
    }
    assert _semantic(flow) == {"flowlets[0].args": "give either 'ms' or 'seconds', not both"}
