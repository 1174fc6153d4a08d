"""Plays end to end on a real sqlite store: order, parallelism, control modules, faults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio
from engine_testkit import COMPANY, layers_by_ref, make_flow, run, spec

from flow8.domain import LayerState, PlayState
from flow8.engine import Engine
from flow8.events import EventFilter
from flow8.modules import ModuleContext, ModuleFailure


async def test_sequential_steps_and_output_is_last_step(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.n + 1 }}"}},
                {"ref": "b", "appId": "set", "args": {"value": {"twice": "{{ $prev.a * 2 }}"}}},
            ]
        },
    )
    play = await run(engine, flow, {"n": 1})
    assert play.state is PlayState.DONE
    assert play.output == {"twice": 4}
    layers = await layers_by_ref(engine, play)
    assert layers["a"].output == 2
    assert layers["a"].args == {"value": 2}
    assert [a.error for a in layers["b"].attempts] == [None]


async def test_index_groups_run_in_parallel_and_in_order(engine: Engine) -> None:
    order: list[str] = []

    async def slow(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        order.append(f"start {ctx.ref}")
        await trio.sleep(0.2)
        order.append(f"end {ctx.ref}")
        return ctx.ref

    engine.registry.register(spec("slow", slow))
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "last", "appId": "set", "index": 9, "args": {"value": "{{ $prev.p1 }}"}},
                {"ref": "p1", "appId": "slow", "index": 3},
                {"ref": "p2", "appId": "slow", "index": 3},
            ]
        },
    )
    started = trio.current_time()
    play = await run(engine, flow)
    assert play.state is PlayState.DONE
    assert sorted(order[:2]) == ["start p1", "start p2"]  # both started before either ended
    assert trio.current_time() - started < 0.4  # (virtual time) not one 0.2 s step after another
    assert play.output == "p1"


async def test_parallel_group_output_is_keyed_by_ref(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "x", "appId": "set", "index": 1, "args": {"value": 1}},
                {"ref": "y", "appId": "set", "index": 1, "args": {"value": 2}},
            ]
        },
    )
    play = await run(engine, flow)
    assert play.output == {"x": 1, "y": 2}


async def test_failing_parallel_step_cancels_unfinished_siblings(engine: Engine) -> None:
    finished: list[str] = []

    async def slow(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        await trio.sleep(float(args.get("s", 5)))
        finished.append(ctx.ref)
        return ctx.ref

    async def late_failure(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        # After its siblings had their turn: the quick one has finished by then (a failure
        # at once could beat it when the lane yields the loop between its steps).
        await trio.sleep(0.5)
        raise ModuleFailure(args["message"])

    engine.registry.register(spec("sleepy", slow))
    engine.registry.register(spec("late_fail", late_failure))
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "quick", "appId": "set", "index": 1, "args": {"value": 1}},
                {"ref": "long", "appId": "sleepy", "index": 1, "args": {"s": 30}},
                {"ref": "boom", "appId": "late_fail", "index": 1, "args": {"message": "kaput"}},
                {"ref": "after", "appId": "noop"},
            ]
        },
    )
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    assert "kaput" in (play.error or "")
    layers = await layers_by_ref(engine, play)
    assert layers["quick"].state is LayerState.DONE
    assert layers["long"].state is LayerState.FAIL
    assert "sibling 'boom'" in (layers["long"].error or "")
    assert layers["after"].state is LayerState.SKIP  # not reached
    assert finished == []


async def test_filters_mark_layers_filtered(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {
                    "ref": "only_invoices",
                    "appId": "set",
                    "args": {"value": "yes"},
                    "filters": [
                        {
                            "leftValue": "{{ $prev.args.kind }}",
                            "operator": "eq",
                            "rightValue": "invoice",
                        }
                    ],
                },
                {"ref": "always", "appId": "set", "args": {"value": "{{ $prev.only_invoices }}"}},
            ]
        },
    )
    skipped = await run(engine, flow, {"kind": "receipt"})
    layers = await layers_by_ref(engine, skipped)
    assert layers["only_invoices"].state is LayerState.FILTERED
    assert skipped.output is None
    taken = await run(engine, flow, {"kind": "invoice"})
    assert taken.output == "yes"


async def test_router_labels_routes_and_later_steps_filter_on_them(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {
                    "ref": "route",
                    "appId": "router",
                    "args": {
                        "routes": [
                            {"condition": "{{ $prev.args.amount > 1000 }}", "label": "big"},
                            {"condition": "{{ $prev.args.amount > 0 }}", "label": "small"},
                        ],
                        "default": "zero",
                    },
                },
                {
                    "ref": "big",
                    "appId": "set",
                    "args": {"value": "approve manually"},
                    "filters": [
                        {
                            "leftValue": "{{ $prev.route.route }}",
                            "operator": "eq",
                            "rightValue": "big",
                        }
                    ],
                },
                {
                    "ref": "small",
                    "appId": "set",
                    "args": {"value": "auto"},
                    "filters": [
                        {
                            "leftValue": "{{ $prev.route.route }}",
                            "operator": "eq",
                            "rightValue": "small",
                        }
                    ],
                },
            ]
        },
    )
    assert (await run(engine, flow, {"amount": 5000})).output == "approve manually"
    assert (await run(engine, flow, {"amount": 5})).output == "auto"
    zero = await run(engine, flow, {"amount": 0})
    layers = await layers_by_ref(engine, zero)
    assert layers["route"].output == {"route": "zero", "routes": ["zero"]}

    all_flow = await make_flow(
        engine,
        {
            "flowlets": [
                {
                    "ref": "r",
                    "appId": "router",
                    "args": {
                        "mode": "all",
                        "routes": [
                            {"condition": True, "label": "a"},
                            {"condition": False, "label": "b"},
                            {"condition": "{{ 1 = 1 }}", "label": "c"},
                        ],
                    },
                }
            ]
        },
    )
    assert (await run(engine, all_flow)).output == {"route": "a", "routes": ["a", "c"]}


async def test_nested_iteration_with_aggregation(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "rows", "appId": "iterator", "args": {"items": "{{ $prev.args.rows }}"}},
                {"ref": "cells", "appId": "iterator", "args": {"items": "{{ $prev.rows.item }}"}},
                {
                    "ref": "sq",
                    "appId": "set",
                    "args": {
                        "value": {
                            "v": "{{ $prev.cells.item * $prev.cells.item }}",
                            "last": "{{ $prev.cells.isLast }}",
                        }
                    },
                },
                {
                    "ref": "inner",
                    "appId": "aggregator",
                    "args": {"sourceRef": "cells", "field": "sq.v"},
                },
                {"ref": "sum", "appId": "set", "args": {"value": "{{ $sum($prev.inner.items) }}"}},
                {"ref": "outer", "appId": "aggregator", "args": {"sourceRef": "rows"}},
            ]
        },
    )
    play = await run(engine, flow, {"rows": [[1, 2], [3], []]})
    assert play.state is PlayState.DONE, play.error
    assert play.output == {"items": [5, 9, 0], "count": 3}
    layers = await layers_by_ref(engine, play)
    assert layers["sq[0, 1]"].output == {"v": 4, "last": True}
    assert layers["inner[1]"].output == {"items": [9], "count": 1}


async def test_iterator_batches(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {
                    "ref": "it",
                    "appId": "iterator",
                    "args": {"items": [1, 2, 3, 4, 5], "batchSize": 2},
                },
                {"ref": "n", "appId": "set", "args": {"value": "{{ $count($prev.it.item) }}"}},
                {"ref": "agg", "appId": "aggregator", "args": {"sourceRef": "it"}},
            ]
        },
    )
    assert (await run(engine, flow)).output == {"items": [2, 2, 1], "count": 3}


async def test_enumeration_and_data_modules(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "e", "appId": "enumeration", "args": {"from": 1, "to": 9, "step": 4}},
                {"ref": "s", "appId": "json-stringify", "args": {"value": "{{ $prev.e }}"}},
                {"ref": "p", "appId": "json-parse", "args": {"text": "{{ $prev.s.text }}"}},
                {
                    "ref": "t",
                    "appId": "template",
                    "args": {"text": "items: {{ $join($map($prev.p.items, $string), ',') }}"},
                },
                {
                    "ref": "x",
                    "appId": "transform",
                    "args": {"expression": "$sum($input.items)", "input": "{{ $prev.p }}"},
                },
                {
                    "ref": "z",
                    "appId": "set",
                    "args": {"value": ["{{ $prev.t.text }}", "{{ $prev.x }}"]},
                },
            ]
        },
    )
    play = await run(engine, flow)
    assert play.output == ["items: 1,5,9", 15]


async def test_expression_failure_fails_the_step_naming_flowlet_and_expression(
    engine: Engine,
) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "calc", "appId": "set", "args": {"value": "{{ $prev.args.s + 1 }}"}}
            ]
        },
    )
    play = await run(engine, flow, {"s": "text"})
    assert play.state is PlayState.FAIL
    assert "calc" in (play.error or "")
    assert "$prev.args.s + 1" in (play.error or "")


async def test_resolved_args_are_checked_against_the_schema(engine: Engine) -> None:
    flow = await make_flow(
        engine, {"flowlets": [{"ref": "d", "appId": "delay", "args": {"ms": "{{ $prev.args.v }}"}}]}
    )
    play = await run(engine, flow, {"v": "soon"})
    assert play.state is PlayState.FAIL
    assert "ms" in (play.error or "")
    assert "integer" in (play.error or "")


async def test_module_exceptions_fail_the_layer_not_the_engine(engine: Engine) -> None:
    async def broken(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        raise ZeroDivisionError("division by zero")

    engine.registry.register(spec("broken", broken))
    flow = await make_flow(engine, {"flowlets": [{"ref": "b", "appId": "broken"}]})
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    assert "division by zero" in (play.error or "")
    # The engine still runs plays afterwards.
    ok = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
    assert (await run(engine, ok)).state is PlayState.DONE


async def test_non_json_outputs_and_oversized_outputs_fail_the_step(engine: Engine) -> None:
    async def weird(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        return {"when": object()}

    engine.registry.register(spec("weird", weird))
    flow = await make_flow(engine, {"flowlets": [{"ref": "w", "appId": "weird"}]})
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    assert "JSON" in (play.error or "")

    big = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "big", "appId": "set", "args": {"value": "{{ $pad('', 1100000, 'x') }}"}}
            ]
        },
    )
    play = await run(engine, big)
    assert play.state is PlayState.FAIL
    assert "larger than" in (play.error or "")


async def test_data_from_input_is_not_evaluated(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "echo", "appId": "template", "args": {"text": "got {{ $prev.args.t }}"}},
                {"ref": "out", "appId": "set", "args": {"value": "{{ $prev.echo.text }}"}},
            ]
        },
    )
    play = await run(engine, flow, {"t": "{{ $playId }}"})
    assert play.output == "got {{ $playId }}"


async def test_step_timeout(engine: Engine) -> None:
    flow = await make_flow(
        engine, {"flowlets": [{"ref": "d", "appId": "delay", "args": {"ms": 250}, "timeout": 0.05}]}
    )
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    assert "timed out" in (play.error or "")


async def test_a_step_timeout_ends_a_wait_long_enough_to_park(engine: Engine) -> None:
    """A delay beyond the hold delay (0.3 s here) would park the play, where no timeout
    runs: a shorter step timeout keeps the wait in the actor, and ends the step on time."""
    flow = await make_flow(
        engine, {"flowlets": [{"ref": "d", "appId": "delay", "args": {"ms": 5000}, "timeout": 0.5}]}
    )
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    assert play.error == "step 'd': timed out after 0.5 s"  # parked, it would be DONE at 5 s


async def test_play_timeout(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "execution": {"timeoutSeconds": 0.2},
            "flowlets": [
                {"ref": "d", "appId": "delay", "args": {"ms": 280}},
                {"ref": "e", "appId": "delay", "args": {"ms": 280}},
            ],
        },
    )
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    assert "play timed out" in (play.error or "")


async def test_retries_with_backoff_record_every_attempt(engine: Engine) -> None:
    calls: list[float] = []

    async def flaky(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        calls.append(trio.current_time())
        if len(calls) < 3:
            raise RuntimeError(f"flake {len(calls)}")
        return "ok"

    engine.registry.register(spec("flaky", flaky))
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {
                    "ref": "f",
                    "appId": "flaky",
                    "retry": {"count": 3, "delayMs": 50, "backoffMultiplier": 2},
                }
            ]
        },
    )
    play = await run(engine, flow)
    assert play.state is PlayState.DONE
    layer = (await layers_by_ref(engine, play))["f"]
    assert [a.error for a in layer.attempts] == ["flake 1", "flake 2", None]
    assert calls[1] - calls[0] >= 0.045
    assert calls[2] - calls[1] >= 0.095  # doubled


async def test_retries_exhausted_fail_the_play(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {
                    "ref": "f",
                    "appId": "fail",
                    "args": {"message": "nope"},
                    "retry": {"count": 2, "delayMs": 1, "jitter": True},
                }
            ]
        },
    )
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    layer = (await layers_by_ref(engine, play))["f"]
    assert len(layer.attempts) == 3
    assert layer.state is LayerState.FAIL


async def test_events_are_published_in_order(engine: Engine) -> None:
    flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "noop"}]})
    seen: list[str] = []
    async with engine.events.subscribe(EventFilter(COMPANY, flow_id=flow.id)) as events:
        await run(engine, flow)
        while True:
            with trio.move_on_after(0.2):
                e = await events.receive()
                seen.append(e.type)
                continue
            break
    assert seen == ["play:started", "play:layer:started", "play:layer:completed", "play:completed"]


async def test_input_is_checked_against_the_input_schema(engine: Engine) -> None:
    import pytest

    from flow8.engine import InvalidInput

    flow = await make_flow(
        engine,
        {
            "inputSchema": {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "required": ["n"],
            },
            "flowlets": [{"ref": "a", "appId": "noop"}],
        },
    )
    with pytest.raises(InvalidInput, match='"n" is a required property'):
        await engine.start_play(COMPANY, flow.id, {"m": 1})
    assert (await run(engine, flow, {"n": 1})).state is PlayState.DONE


async def test_loops_without_an_aggregator_run_to_the_end(engine: Engine) -> None:
    tail = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "it", "appId": "iterator", "args": {"items": ["a", "b"]}},
                {"ref": "up", "appId": "set", "args": {"value": "{{ $uppercase($prev.it.item) }}"}},
            ]
        },
    )
    play = await run(engine, tail)
    assert play.state is PlayState.DONE
    assert play.output == "B"  # the last executed step: the last iteration's
    alone = await make_flow(
        engine, {"flowlets": [{"ref": "it", "appId": "iterator", "args": {"items": [1]}}]}
    )
    play = await run(engine, alone)
    assert play.output == {"items": [1], "total": 1}


async def test_a_missing_subflow_fails_the_step(engine: Engine) -> None:
    flow = await make_flow(
        engine, {"flowlets": [{"ref": "s", "appId": "subflow", "args": {"flowId": "nope"}}]}
    )
    play = await run(engine, flow)
    assert play.state is PlayState.FAIL
    assert "flow 'nope' not found" in (play.error or "")
