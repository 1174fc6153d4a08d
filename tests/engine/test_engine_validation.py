"""Flow validation lists every problem with its path."""

from __future__ import annotations

from typing import Any

import pytest

from flow8.domain import FlowValidationError, parse_flow_definition
from flow8.engine import validate_definition
from flow8.modules import default_registry


def problems(data: dict[str, Any]) -> dict[str, str]:
    try:
        definition = parse_flow_definition(data)
    except FlowValidationError as e:
        return {p.path: p.message for p in e.problems}
    return {p.path: p.message for p in validate_definition(definition, default_registry())}


def test_a_valid_flow_has_no_problems() -> None:
    assert (
        problems(
            {
                "name": "ok",
                "flowlets": [
                    {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.x }}"}},
                    {"ref": "it", "appId": "iterator", "args": {"items": "{{ $prev.a }}"}},
                    {"ref": "sq", "appId": "set", "args": {"value": "{{ $prev.it.item }}"}},
                    {"ref": "agg", "appId": "aggregator", "args": {"sourceRef": "it"}},
                ],
            }
        )
        == {}
    )


def test_every_problem_is_listed_at_once() -> None:
    found = problems(
        {
            "name": "bad",
            "flowlets": [
                {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.later }}"}},
                {"ref": "a", "appId": "set", "args": {"value": 1}},
                {"ref": "u", "appId": "no-such-module"},
                {"ref": "d", "appId": "delay", "args": {"ms": "soon"}},
                {"ref": "p", "appId": "set", "args": {"value": "{{ $prev.( }}"}},
                {"ref": "later", "appId": "noop"},
                {"ref": "agg", "appId": "aggregator", "args": {"sourceRef": "x"}},
                {"ref": "t", "appId": "transform", "args": {"expression": "{{ $prev.args.e }}"}},
            ],
        }
    )
    assert "duplicate ref 'a'" in found["flowlets[1].ref"]
    assert "does not run before" in found["flowlets[0].args.value"]
    assert "unknown module" in found["flowlets[2].appId"]
    assert "integer" in found["flowlets[3].args.ms"]
    assert "does not parse" in found["flowlets[4].args.value"]
    assert "iterator" in found["flowlets[6].args.sourceRef"]
    assert "literal" in found["flowlets[7].args.expression"]


def test_structural_problems_are_all_listed() -> None:
    found = problems(
        {
            "flowlets": [
                {"appId": "set"},
                {"ref": "b"},
                {"ref": "c", "appId": "set", "retry": {"count": -1}, "timeout": "x"},
                {"ref": "d", "appId": "set", "filters": [{"operator": "like"}]},
            ]
        }
    )
    assert set(found) >= {
        "name",
        "flowlets[0].ref",
        "flowlets[1].appId",
        "flowlets[2].retry.count",
        "flowlets[2].timeout",
        "flowlets[3].filters[0].operator",
    }


def test_same_index_refs_are_not_earlier() -> None:
    found = problems(
        {
            "name": "p",
            "flowlets": [
                {"ref": "a", "appId": "noop", "index": 1},
                {"ref": "b", "appId": "set", "index": 1, "args": {"value": "{{ $prev.a }}"}},
            ],
        }
    )
    assert "does not run before" in found["flowlets[1].args.value"]


def test_unknown_refs_and_filter_expressions_are_checked() -> None:
    found = problems(
        {
            "name": "p",
            "flowlets": [
                {
                    "ref": "a",
                    "appId": "noop",
                    "filters": [{"leftValue": "{{ $prev.ghost }}", "operator": "not_empty"}],
                }
            ],
        }
    )
    assert "unknown ref 'ghost'" in found["flowlets[0].filters[0].leftValue"]


def test_aggregator_must_close_the_innermost_iterator() -> None:
    found = problems(
        {
            "name": "p",
            "flowlets": [
                {"ref": "outer", "appId": "iterator", "args": {"items": [1]}},
                {"ref": "inner", "appId": "iterator", "args": {"items": [1]}},
                {"ref": "agg", "appId": "aggregator", "args": {"sourceRef": "outer"}},
            ],
        }
    )
    assert "innermost" in found["flowlets[2].args.sourceRef"]


def test_empty_flow_is_invalid() -> None:
    assert "flowlets" in problems({"name": "x", "flowlets": []})
    with pytest.raises(FlowValidationError):
        parse_flow_definition([1, 2])


def test_input_schema_must_be_a_json_schema() -> None:
    found = problems(
        {"name": "s", "inputSchema": {"type": 12}, "flowlets": [{"ref": "a", "appId": "noop"}]}
    )
    assert "not a valid JSON Schema" in found["inputSchema"]
