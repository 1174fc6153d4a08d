"""Actors: send / send_nowait / call, backpressure, timeouts, the crash rule, refs."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing
from actors_testkit import Boom, Log, Worker, settle, worker

import actors


def one(*children: actors.ChildSpec, **kw: object) -> actors.SupervisorSpec:
    return actors.SupervisorSpec(children, intensity=10, **kw)  # type: ignore[arg-type]


async def test_call_returns_the_handler_result_and_sends_are_handled_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(one(worker(log, "w"))) as rt:
        ref = rt.actor("w")
        assert await ref.call("hello") == "hello"
        for i in range(5):
            await ref.send(f"sleep:{i / 10}")
        assert await ref.call("after") == "after"
        assert ref.stats().messages_handled == 7


async def test_send_nowait_raises_mailbox_full_and_send_waits_for_space(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(one(worker(log, "w", capacity=2))) as rt:
        ref = rt.actor("w")
        ref.send_nowait("sleep:10")  # taken by the actor at once: it is now busy for 10 s
        await settle()
        ref.send_nowait("a")
        ref.send_nowait("b")
        stats = ref.stats()
        assert (stats.mailbox_depth, stats.mailbox_capacity) == (2, 2)
        with pytest.raises(actors.MailboxFull, match="root/w"):
            ref.send_nowait("c")

        sent_at: list[float] = []

        async def producer() -> None:
            await ref.send("c")
            sent_at.append(trio.current_time())

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer)
            await settle()
            assert sent_at == []  # blocked: backpressure
        assert sent_at[0] - start == pytest.approx(10)
        assert await ref.call("x") == "x"
        assert ref.stats().mailbox_depth == 0


async def test_call_timeout_raises_and_late_reply_is_dropped(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(one(worker(log, "w"))) as rt:
        ref = rt.actor("w")
        start = trio.current_time()
        with pytest.raises(actors.CallTimeout, match=r"root/w.*1\.5s"):
            await ref.call("sleep:10", timeout=1.5)
        assert trio.current_time() - start == pytest.approx(1.5)
        assert isinstance(actors.CallTimeout("x"), TimeoutError)
        # The actor finishes the abandoned call and keeps serving.
        assert await ref.call("next", timeout=20) == "next"
        assert log.of("crash") == []


async def test_handler_error_fails_the_call_and_crashes_the_actor(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(one(worker(log, "w"))) as rt:
        ref = rt.actor("w")
        first = await ref.call("ping")
        await trio.sleep(1)
        with pytest.raises(actors.CallFailed) as info:
            await ref.call("crash")
        assert isinstance(info.value.__cause__, Boom)
        await settle()
        assert log.of("start") == ["w", "w"]
        assert ref.stats().restarts == 1
        # Same ref, new incarnation.
        assert await ref.call("ping") > first


async def test_mailbox_survives_a_restart(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    async with actors.open_runtime(one(worker(log, "w"))) as rt:
        ref = rt.actor("w")
        ref.send_nowait("crash")
        ref.send_nowait("queued-1")
        ref.send_nowait("queued-2")
        assert await ref.call("ping") is not None  # answered by the second incarnation
        assert ref.stats().messages_handled == 3
        assert ref.stats().restarts == 1


async def test_queued_calls_get_actor_stopped_when_the_actor_ends_for_good(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = one(worker(log, "w", restart=actors.Restart.TEMPORARY))
    async with actors.open_runtime(spec) as rt:
        ref = rt.actor("w")
        ref.send_nowait("crash")
        with pytest.raises(actors.ActorStopped, match="root/w"):
            await ref.call("queued")
        assert not ref.alive
        with pytest.raises(actors.ActorStopped):
            ref.send_nowait("x")
        with pytest.raises(actors.ActorStopped):
            await ref.send("x")
        assert ref.stats().state is actors.State.FAILED


async def test_sender_blocked_on_a_full_mailbox_is_released_when_the_actor_stops(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = one(actors.dynamic_supervisor("d"))
    async with actors.open_runtime(spec) as rt:
        plays = rt.dynamic_supervisor("d")
        ref = await plays.start_actor("w", lambda: Worker(log, "w"), capacity=1)
        ref.send_nowait("block")
        await settle()
        ref.send_nowait("queued")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(plays.terminate_child, "w")
            with pytest.raises(actors.ActorStopped):
                await ref.send("blocked")  # waits for space until the mailbox is closed


async def test_ctx_stop_ends_a_transient_actor_normally(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    spec = one(worker(log, "w", restart=actors.Restart.TRANSIENT))
    async with actors.open_runtime(spec) as rt:
        ref = rt.actor("w")
        await ref.call("exit")
        await settle()
        assert log.events == [("start", "w"), ("stop", "w")]
        assert ref.stats().state is actors.State.STOPPED
        assert ref.stats().restarts == 0
        with pytest.raises(actors.ActorStopped):
            await ref.call("ping")


async def test_permanent_actor_that_ends_normally_is_restarted(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(one(worker(log, "w"))) as rt:
        ref = rt.actor("w")
        await ref.call("exit")
        assert await ref.call("x") == "x"
        assert ref.stats().restarts == 1


async def test_call_waiting_on_an_actor_stopped_mid_call_gets_a_clear_error(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(one(worker(log, "w", shutdown=1))) as rt:
        ref = rt.actor("w")
        async with trio.open_nursery() as nursery:
            errors: list[BaseException] = []

            async def caller() -> None:
                try:
                    await ref.call("block", timeout=None)
                except actors.ActorNotRunning as exc:
                    errors.append(exc)

            nursery.start_soon(caller)
            await settle()
            await rt.stop()
        assert len(errors) == 1
        assert "stopped handling the call" in str(errors[0])


async def noop(task_status: trio.TaskStatus[Any]) -> None:
    task_status.started()


async def test_bad_specs_are_refused_with_clear_errors() -> None:
    with pytest.raises(actors.SpecError, match="capacity"):
        actors.actor("a", lambda: None, capacity=0)  # type: ignore[arg-type,return-value]
    with pytest.raises(actors.SpecError, match="'/'"):
        actors.task("a/b", noop)
    with pytest.raises(actors.SpecError, match="duplicate child id 'x'"):
        actors.SupervisorSpec([actors.task("x", noop), actors.task("x", noop)])
    with pytest.raises(actors.SpecError, match="intensity"):
        actors.SupervisorSpec([], intensity=-1)
    with pytest.raises(actors.SpecError, match="period"):
        actors.SupervisorSpec([], period=math.inf)
    with pytest.raises(actors.SpecError, match="shutdown"):
        actors.task("t", noop, shutdown=-1)
    with pytest.raises(actors.SpecError, match="max_children"):
        actors.dynamic_supervisor("d", max_children=0)
    assert actors.supervisor("s", []).shutdown is None
    assert actors.supervisor("s", []).kind is actors.ChildKind.SUPERVISOR
    assert actors.task("t", noop).kind is actors.ChildKind.WORKER
