"""Randomly shaped (valid) flows always end in a final state with a layer per reached step,
and never take the engine down."""

from __future__ import annotations

import random
from typing import Any

from engine_testkit import COMPANY, run

from flow8.domain import FlowValidationError, LayerState, PlayState, parse_flow_definition
from flow8.engine import Engine, validate_definition

VALUES = [
    "{{ $prev.args.n }}",
    "{{ $prev.args.n * 2 }}",
    "{{ $prev.args.missing }}",
    "{{ $prev.args.n / 0 }}",
    "{{ $prev.args.s + 1 }}",
    "text {{ $prev.args.s }}",
    {"k": "{{ $prev.args.n }}"},
    [1, "{{ $prev.args.s }}"],
    42,
]


def random_flow(rng: random.Random, size: int) -> dict[str, Any]:
    flowlets: list[dict[str, Any]] = []
    for i in range(size):
        ref = f"s{i}"
        earlier = [f["ref"] for f in flowlets]
        kind = rng.choice(["set", "set", "noop", "fail", "router", "enumeration", "json-parse"])
        value: Any = rng.choice(VALUES)
        if earlier and rng.random() < 0.4:
            value = f"{{{{ $prev.{rng.choice(earlier)} }}}}"
        args: dict[str, Any] = {
            "set": {"value": value},
            "noop": {},
            "fail": {"message": "planned"},
            "router": {
                "routes": [{"condition": "{{ $prev.args.n > 2 }}", "label": "big"}],
                "default": "small",
            },
            "enumeration": {"from": 0, "to": rng.randint(0, 3)},
            "json-parse": {"text": rng.choice(['{"a": 1}', "{{ $prev.args.s }}"])},
        }[kind]
        flowlet: dict[str, Any] = {"ref": ref, "appId": kind, "args": args}
        if rng.random() < 0.3:
            flowlet["index"] = rng.randint(0, size)
        if rng.random() < 0.3:
            flowlet["filters"] = [
                {
                    "leftValue": "{{ $prev.args.n }}",
                    "operator": rng.choice(["gt", "lt", "eq"]),
                    "rightValue": rng.randint(0, 5),
                    "mode": rng.choice(["and", "or"]),
                }
            ]
        if rng.random() < 0.2:
            flowlet["retry"] = {"count": 1, "delayMs": 1}
        flowlets.append(flowlet)
    return {"name": "fuzz", "flowlets": flowlets}


async def test_random_flows_always_end(engine: Engine) -> None:
    rng = random.Random(1234)
    ran = 0
    for _ in range(60):
        data = random_flow(rng, rng.randint(1, 6))
        try:
            definition = parse_flow_definition(data)
        except FlowValidationError:
            continue
        if validate_definition(definition, engine.registry):
            continue  # e.g. a reference to a step that does not run earlier
        flow = await engine.flows.create(COMPANY, definition)
        play = await run(engine, flow, {"n": rng.randint(0, 5), "s": rng.choice(["x", "[1"])})
        ran += 1
        assert play.state in (PlayState.DONE, PlayState.FAIL), play
        layers = await engine.get_layers(COMPANY, play.id)
        assert {la.ref for la in layers} == {f.ref for f in definition.flowlets}
        assert all(la.state.final for la in layers)
        if play.state is PlayState.FAIL:
            assert play.error
            assert any(la.state is LayerState.FAIL for la in layers)
    assert ran >= 20
