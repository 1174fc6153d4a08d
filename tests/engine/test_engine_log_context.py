"""Every line a play logs says which play it is and which request started it: in its steps
(their tasks and worker threads too), in its subflows' children, and after it was stored and
taken up again by another task or instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio
from engine_testkit import COMPANY, make_flow, new_engine, spec
from support.log_lines import captured_logs

from flow8.domain import PlayState, PlayTrace
from flow8.engine import Engine
from flow8.logs import get_logger, log_context
from flow8.modules import ModuleContext
from flow8.store import Store

TRACE = PlayTrace("req-7", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
log = get_logger("flow8.test")


async def _logs(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
    log.info("step_logged", ref=ctx.ref)
    await trio.to_thread.run_sync(lambda: log.info("thread_logged", ref=ctx.ref))
    return ctx.play_id


def _fields(line: Mapping[str, Any]) -> tuple[Any, ...]:
    keys = ("play_id", "company_id", "flow_id", "correlation_id", "trace_id")
    return tuple(line.get(k) for k in keys)


async def test_a_plays_step_logs_carry_its_ids_and_its_requests(engine: Engine) -> None:
    engine.registry.register(spec("logs", _logs))
    flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "logs"}]})
    with captured_logs() as lines:
        play = await engine.start_play(COMPANY, flow.id, trace=TRACE)
        done = await engine.wait_play(COMPANY, play.id, timeout=10)
        assert done.state is PlayState.DONE, done.error
        log.info("caller_logged")
    expected = (play.id, COMPANY, flow.id, "req-7", TRACE.trace_id)
    assert [_fields(line) for line in lines.named("step_logged")] == [expected]
    assert [_fields(line) for line in lines.named("thread_logged")] == [expected]
    # the play's ids are its own task's: the task that started it logs none of them
    (caller,) = lines.named("caller_logged")
    assert _fields(caller) == (None,) * 5


async def test_a_play_without_a_request_logs_no_one_elses(engine: Engine) -> None:
    """Started in a task that was handling a request (as a play claimed at birth starts in
    its caller's task), a play that does not keep that request logs none of its ids."""
    engine.registry.register(spec("logs", _logs))
    flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "logs"}]})
    with captured_logs() as lines:
        with log_context(correlation_id="someone-else", trace_id="f" * 32):
            play = await engine.start_play(COMPANY, flow.id)
            await engine.wait_play(COMPANY, play.id, timeout=10)
            log.info("caller_logged")
        log.info("after")
    (step,) = lines.named("step_logged")
    assert _fields(step) == (play.id, COMPANY, flow.id, None, None)
    (caller,) = lines.named("caller_logged")
    assert (caller["correlation_id"], "play_id" in caller) == ("someone-else", False)
    (after,) = lines.named("after")
    assert "correlation_id" not in after


async def test_a_parked_play_taken_up_later_still_logs_its_request(engine: Engine) -> None:
    engine.registry.register(spec("logs", _logs))
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "wait", "appId": "delay", "args": {"ms": 1500}},
                {"ref": "after", "appId": "logs"},
            ]
        },
    )
    with captured_logs() as lines:
        play = await engine.start_play(COMPANY, flow.id, trace=TRACE)
        done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE, done.error
    assert done.trace == TRACE
    (step,) = lines.named("step_logged")
    assert _fields(step) == (play.id, COMPANY, flow.id, "req-7", TRACE.trace_id)


async def test_a_play_stored_by_one_instance_and_run_by_another_logs_its_request(
    engine: Engine, store: Store
) -> None:
    """The starting instance runs no plays: the play is stored, and the running engine's
    dispatcher claims and runs it, knowing only what its document says."""
    engine.registry.register(spec("logs", _logs))
    flow = await make_flow(engine, {"flowlets": [{"ref": "a", "appId": "logs"}]})
    front = new_engine(store, registry=engine.registry)
    with captured_logs() as lines:
        play = await front.start_play(COMPANY, flow.id, trace=TRACE)
        assert play.state is PlayState.NEW
        done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE, done.error
    (step,) = lines.named("step_logged")
    assert _fields(step) == (play.id, COMPANY, flow.id, "req-7", TRACE.trace_id)


async def test_a_subflows_child_logs_its_own_id_and_its_parents_request(engine: Engine) -> None:
    engine.registry.register(spec("logs", _logs))
    child = await make_flow(engine, {"flowlets": [{"ref": "c", "appId": "logs"}]})
    parent = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "sub", "appId": "subflow", "args": {"flowId": child.id}},
                {"ref": "p", "appId": "logs"},
            ]
        },
    )
    with captured_logs() as lines:
        play = await engine.start_play(COMPANY, parent.id, trace=TRACE)
        done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE, done.error
    by_ref = {line["ref"]: line for line in lines.named("step_logged")}
    child_id = by_ref["c"]["play_id"]
    assert child_id != play.id
    assert (await engine.get_play(COMPANY, child_id)).trace == TRACE
    assert _fields(by_ref["c"]) == (child_id, COMPANY, child.id, "req-7", TRACE.trace_id)
    assert _fields(by_ref["p"]) == (play.id, COMPANY, parent.id, "req-7", TRACE.trace_id)
