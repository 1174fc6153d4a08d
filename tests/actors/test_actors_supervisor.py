"""Static supervisors: strategies, restart types, intensity, start failure, ordered stop."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from actors_testkit import Boom, Log, Worker, live_incarnations, settle, worker

import actors

P, T, TMP = actors.Restart.PERMANENT, actors.Restart.TRANSIENT, actors.Restart.TEMPORARY


def spec_of(
    log: Log, strategy: actors.Strategy, intensity: int = 10, **restarts: actors.Restart
) -> actors.SupervisorSpec:
    names = ["a", "b", "c"]
    children = [worker(log, n, restart=restarts.get(n, P)) for n in names]
    return actors.SupervisorSpec(children, strategy=strategy, intensity=intensity)


async def crash(rt: actors.Runtime, path: str) -> None:
    rt.actor(path).send_nowait("crash")
    await settle()


def restarts(rt: actors.Runtime) -> dict[str, int]:
    return {c.name: c.restarts for c in rt.stats().children}


async def test_one_for_one_restarts_only_the_failed_child(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    async with actors.open_runtime(spec_of(log, actors.Strategy.ONE_FOR_ONE)) as rt:
        assert log.of("start") == ["a", "b", "c"]
        log.clear()
        await crash(rt, "b")
        assert log.events == [("crash", "b"), ("stop", "b"), ("start", "b")]
        assert restarts(rt) == {"a": 0, "b": 1, "c": 0}


async def test_one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(spec_of(log, actors.Strategy.ONE_FOR_ALL)) as rt:
        log.clear()
        await crash(rt, "b")
        assert log.events == [
            ("crash", "b"),
            ("stop", "b"),  # on_stop after its own crash
            ("stop", "c"),
            ("stop", "a"),
            ("start", "a"),
            ("start", "b"),
            ("start", "c"),
        ]
        assert restarts(rt) == {"a": 1, "b": 1, "c": 1}


async def test_rest_for_one_restarts_the_failed_child_and_those_after_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(spec_of(log, actors.Strategy.REST_FOR_ONE)) as rt:
        log.clear()
        await crash(rt, "b")
        assert log.events == [
            ("crash", "b"),
            ("stop", "b"),
            ("stop", "c"),
            ("start", "b"),
            ("start", "c"),
        ]
        assert restarts(rt) == {"a": 0, "b": 1, "c": 1}


async def test_transient_is_restarted_after_a_crash_but_not_after_a_normal_exit(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(spec_of(log, actors.Strategy.ONE_FOR_ONE, b=T)) as rt:
        await crash(rt, "b")
        assert restarts(rt)["b"] == 1
        await rt.actor("b").call("exit")
        await settle()
        assert restarts(rt)["b"] == 1
        assert rt.stats().children[1].state is actors.State.STOPPED
        assert rt.actor("b").alive is False


async def test_temporary_is_never_restarted_and_leaves_the_restart_window_alone(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = spec_of(log, actors.Strategy.ONE_FOR_ONE, intensity=0, b=TMP)
    async with actors.open_runtime(spec) as rt:
        await crash(rt, "b")
        assert log.of("start") == ["a", "b", "c"]
        states = {c.name: c.state for c in rt.stats().children}
        assert states == {
            "a": actors.State.RUNNING,
            "b": actors.State.FAILED,
            "c": actors.State.RUNNING,
        }


async def test_temporary_child_stopped_by_a_siblings_failure_is_not_restarted(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = spec_of(log, actors.Strategy.ONE_FOR_ALL, c=TMP)
    async with actors.open_runtime(spec) as rt:
        log.clear()
        await crash(rt, "a")
        assert log.of("start") == ["a", "b"]
        assert restarts(rt) == {"a": 1, "b": 1, "c": 0}
        assert rt.actor("c").alive is False
        with pytest.raises(actors.ActorStopped):
            await rt.actor("c").call("ping")


async def test_exceeding_intensity_stops_children_in_reverse_and_fails_chained(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = spec_of(log, actors.Strategy.ONE_FOR_ONE, intensity=1)

    async def scenario() -> None:
        async with actors.open_runtime(spec) as rt:
            await crash(rt, "b")  # first restart: allowed
            await trio.sleep(4.9)
            log.clear()
            await crash(rt, "a")  # second within 5 s: too many
            pytest.fail("the block should have been cancelled")

    with pytest.raises(actors.RuntimeFailed) as info:
        await scenario()
    assert log.events == [("crash", "a"), ("stop", "a"), ("stop", "c"), ("stop", "b")]
    failed = info.value.__cause__
    assert isinstance(failed, actors.SupervisorFailed)
    assert "child 'a' crashed" in str(failed)
    assert isinstance(failed.__cause__, Boom)
    assert live_incarnations() == 0


async def test_restarts_spread_beyond_the_period_do_not_escalate(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(spec_of(log, actors.Strategy.ONE_FOR_ONE, intensity=1)) as rt:
        for _ in range(4):
            await crash(rt, "b")
            await trio.sleep(5)
        assert restarts(rt)["b"] == 4


async def test_nested_supervisor_escalates_to_its_parent_which_restarts_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    inner = actors.supervisor(
        "inner", [worker(log, "x"), worker(log, "y", registered="y")], intensity=0
    )
    spec = actors.SupervisorSpec([worker(log, "a"), inner], intensity=3)
    async with actors.open_runtime(spec) as rt:
        y = rt.actor("inner/y")
        assert rt.whereis("y") is y
        log.clear()
        await crash(rt, "inner/x")
        assert log.events == [
            ("crash", "x"),
            ("stop", "x"),
            ("stop", "y"),
            ("start", "x"),
            ("start", "y"),
        ]
        inner_stats = rt.stats().children[1]
        assert inner_stats.restarts == 1
        assert [c.restarts for c in inner_stats.children] == [0, 0]
        # Refs and registered names stay valid across the parent's restart of the subtree.
        assert await y.call("hi") == "hi"
        assert rt.whereis("y") is y


async def test_a_child_that_fails_to_start_stops_the_started_ones_in_reverse(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    children = [worker(log, "a"), worker(log, "b"), worker(log, "c", fail_start=True)]
    with pytest.raises(actors.RuntimeFailed) as info:
        async with actors.open_runtime(actors.SupervisorSpec(children)):
            pytest.fail("must not start")
    assert log.events == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]
    start_failed = info.value.__cause__
    assert isinstance(start_failed, actors.ChildStartFailed)
    assert "child 'c' of supervisor 'root'" in str(start_failed)
    assert str(start_failed).endswith("failed to start: Boom: c cannot start")
    assert isinstance(start_failed.__cause__, Boom)


def test_errors_are_described_by_their_cause_not_their_wrapping() -> None:
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [OSError(98, "Address in use")])])
    assert actors.describe(nested) == "OSError: [Errno 98] Address in use"
    both = ExceptionGroup("two", [Boom("first"), KeyError("k")])
    assert actors.describe(both) == "Boom: first; KeyError: 'k'"
    assert actors.describe(Boom()) == "Boom"


async def test_a_failed_restart_counts_as_another_crash(autojump_clock: trio.abc.Clock) -> None:
    attempts: list[float] = []

    async def flaky(task_status: trio.TaskStatus[Any]) -> None:
        attempts.append(trio.current_time())
        if len(attempts) > 1:
            raise Boom("cannot start again")
        task_status.started()
        raise Boom("crash after start")

    spec = actors.SupervisorSpec([actors.task("f", flaky)], intensity=3)
    with pytest.raises(actors.RuntimeFailed) as info:
        async with actors.open_runtime(spec):
            await trio.sleep_forever()
    assert len(attempts) == 4  # the start, then 3 restarts allowed by the intensity
    assert "cannot start again" in repr(info.value.__cause__.__cause__)  # type: ignore[union-attr]


async def test_stop_goes_in_reverse_start_order_through_nested_supervisors(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    inner = actors.supervisor("inner", [worker(log, "x"), worker(log, "y")])
    spec = actors.SupervisorSpec([worker(log, "a"), inner, worker(log, "c")])
    async with actors.open_runtime(spec):
        assert log.of("start") == ["a", "x", "y", "c"]
    assert log.of("stop") == ["c", "y", "x", "a"]
    assert live_incarnations() == 0


async def test_a_child_ignoring_the_polite_stop_is_cancelled_after_its_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    ended: dict[str, float] = {}

    def stubborn(name: str) -> Any:
        async def run(task_status: trio.TaskStatus[Any]) -> None:
            actors.stop_requested()  # asks for its stop signal, then ignores it
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                ended[name] = trio.current_time()

        return run

    async def oblivious(task_status: trio.TaskStatus[Any]) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            ended["oblivious"] = trio.current_time()

    async def polite(task_status: trio.TaskStatus[Any]) -> None:
        task_status.started()
        await actors.stop_requested().wait()
        await trio.sleep(1)  # graceful work within the timeout
        ended["polite"] = trio.current_time()

    spec = actors.SupervisorSpec(
        [
            actors.task("s1", stubborn("s1"), shutdown=3),
            actors.task("p", polite, shutdown=10),
            actors.task("o", oblivious, shutdown=10),
            actors.task("s2", stubborn("s2"), shutdown=2),
        ]
    )
    async with actors.open_runtime(spec) as rt:
        start = trio.current_time()
        await rt.stop()
    rel = {k: round(v - start, 6) for k, v in ended.items()}
    # s2 waited 2 s, o was cancelled at once (never asked for its stop signal),
    # p returned after 1 s of graceful work, s1 waited its 3 s: in reverse order.
    assert rel == {"s2": 2, "oblivious": 2, "polite": 3, "s1": 6}


async def test_an_actor_stuck_in_a_handler_is_cancelled_after_its_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = actors.SupervisorSpec([worker(log, "w", shutdown=4)])
    async with actors.open_runtime(spec) as rt:
        rt.actor("w").send_nowait("block")
        await settle()
        start = trio.current_time()
        await rt.stop()
        assert trio.current_time() - start == pytest.approx(4)
    assert log.of("stop") == []  # cancelled: on_stop does not run


async def test_outside_cancellation_is_not_a_crash_and_not_restarted(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    children = [
        worker(log, "a"),
        actors.supervisor("s", [worker(log, "x")]),
        actors.dynamic_supervisor("d"),
    ]
    spec = actors.SupervisorSpec(children, intensity=0)
    with trio.CancelScope() as outer:
        async with actors.open_runtime(spec) as rt:
            dyn = await rt.dynamic_supervisor("d").start_actor(
                "p", lambda: Worker(log, "p"), name="p"
            )
            outer.cancel()
            await trio.sleep(1)
    assert outer.cancelled_caught
    # Everything was cancelled, not stopped politely, yet nothing is left open.
    assert not dyn.alive
    assert not rt.actor("a").alive
    assert rt.whereis("p") is None
    assert log.of("start") == ["a", "x", "p"]
    assert log.of("crash") == []
    assert [c.restarts for c in rt.stats().children] == [0, 0, 0]
    assert live_incarnations() == 0


async def test_task_child_started_value_and_clean_return(autojump_clock: trio.abc.Clock) -> None:
    async def once(task_status: trio.TaskStatus[Any]) -> None:
        task_status.started("ready")
        await trio.sleep(1)

    spec = actors.SupervisorSpec([actors.task("t", once, restart=T)])
    async with actors.open_runtime(spec) as rt:
        assert rt.stats().children[0].state is actors.State.RUNNING
        await trio.sleep(2)
        stats = rt.stats().children[0]
        assert (stats.state, stats.restarts) == (actors.State.STOPPED, 0)


async def test_stop_requested_outside_a_task_child_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="outside a task child"):
        actors.stop_requested()


async def test_body_exception_propagates_unwrapped_after_an_ordered_stop(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    with pytest.raises(KeyError):
        async with actors.open_runtime(actors.SupervisorSpec([worker(log, "a")])):
            raise KeyError("body")
    assert log.events == [("start", "a"), ("stop", "a")]


async def test_an_exception_group_from_a_child_is_a_crash(autojump_clock: trio.abc.Clock) -> None:
    runs: list[int] = []

    async def fan_out(task_status: trio.TaskStatus[Any]) -> None:
        runs.append(len(runs))
        task_status.started()
        if len(runs) == 1:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                raise Boom("inside a nursery")
        await trio.sleep_forever()

    spec = actors.SupervisorSpec([actors.task("t", fan_out, restart=T)])
    async with actors.open_runtime(spec) as rt:
        await settle()
        assert runs == [0, 1]
        assert rt.stats().children[0].restarts == 1
        assert rt.stats().children[0].state is actors.State.RUNNING


async def test_start_refuses_a_second_started_call(autojump_clock: trio.abc.Clock) -> None:
    async def twice(task_status: trio.TaskStatus[Any]) -> None:
        task_status.started()
        task_status.started()

    spec = actors.SupervisorSpec([actors.task("t", twice, restart=TMP)])
    async with actors.open_runtime(spec) as rt:
        await settle()
        assert rt.stats().children[0].state is actors.State.FAILED


async def test_crashes_and_escalations_are_logged(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    log = Log()
    caplog.set_level("WARNING", logger="actors")
    spec = spec_of(log, actors.Strategy.ONE_FOR_ONE, intensity=0)
    with pytest.raises(actors.RuntimeFailed):
        async with actors.open_runtime(spec) as rt:
            await crash(rt, "a")
    crash_record, escalation_record = caplog.records
    assert crash_record.levelname == "WARNING"
    assert "root/a crashed with Boom" in crash_record.getMessage()
    assert crash_record.exc_info is not None
    assert escalation_record.levelname == "ERROR"
    assert "gave up" in escalation_record.getMessage()


async def test_runtime_stop_with_a_timeout_cancels_what_is_left(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = actors.SupervisorSpec([worker(log, "a"), worker(log, "stuck", shutdown=100)])
    async with actors.open_runtime(spec) as rt:
        rt.actor("stuck").send_nowait("block")
        await settle()
        start = trio.current_time()
        with trio.move_on_after(1):
            await rt.stop()  # an outer bound gives up first; the tree keeps stopping
        await rt.stop(timeout=2)  # a second, bounded stop cancels the rest
        assert trio.current_time() - start == pytest.approx(3)
        assert live_incarnations() == 0
        assert rt.tree()["state"] == "stopped"
    assert log.of("stop") == []  # "stuck" was cancelled, so "a" never got its turn politely


async def test_open_runtime_shutdown_bounds_the_stop_at_exit(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = actors.SupervisorSpec([worker(log, "stuck", shutdown=None)])
    async with actors.open_runtime(spec, shutdown=5) as rt:
        rt.actor("stuck").send_nowait("block")
        await settle()
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(5)
    assert live_incarnations() == 0


class Abort(BaseException):
    """Stands in for KeyboardInterrupt / SystemExit raised by the block."""


async def test_a_base_exception_from_the_block_tears_down_at_once_and_propagates_unwrapped(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = actors.SupervisorSpec([worker(log, "a", stop_delay=10)])

    async def scenario() -> None:
        async with actors.open_runtime(spec):
            raise Abort

    start = trio.current_time()
    with pytest.raises(Abort):
        await scenario()
    assert trio.current_time() == start  # cancelled, not a 10 s polite stop
    assert log.of("stop") == []
    assert live_incarnations() == 0
