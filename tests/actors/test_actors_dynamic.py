"""The dynamic supervisor: cap, start failure, restarts, terminate, parallel stop."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
import trio.testing
from actors_testkit import Boom, Log, Worker, live_incarnations, settle

import actors


def tree(max_children: int | None = None, intensity: int = 5) -> actors.SupervisorSpec:
    return actors.SupervisorSpec(
        [actors.dynamic_supervisor("d", max_children=max_children, intensity=intensity)]
    )


async def test_cap_is_enforced_and_freed_by_terminate(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    async with actors.open_runtime(tree(max_children=3)) as rt:
        d = rt.dynamic_supervisor("d")
        refs = [
            await d.start_actor(f"p{i}", functools.partial(Worker, log, f"p{i}")) for i in range(3)
        ]
        assert d.count() == 3
        with pytest.raises(actors.TooManyChildren, match="cap of 3"):
            await d.start_actor("p3", lambda: Worker(log, "p3"))
        assert d.count() == 3
        await d.terminate_child("p1")
        assert d.count() == 2
        assert not refs[1].alive
        with pytest.raises(actors.ActorStopped):
            refs[1].send_nowait("x")
        await d.start_actor("p3", lambda: Worker(log, "p3"))
        assert sorted(r.id for r in d.children()) == ["p0", "p2", "p3"]
        assert await refs[0].call("hi") == "hi"
        with pytest.raises(actors.ChildNotFound):
            await d.terminate_child("p1")


async def test_duplicate_ids_and_start_failures_are_refused_cleanly(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(tree()) as rt:
        d = rt.dynamic_supervisor("d")
        await d.start_actor("p", lambda: Worker(log, "p"))
        with pytest.raises(actors.DuplicateChild, match="'p'"):
            await d.start_actor("p", lambda: Worker(log, "p"))
        with pytest.raises(actors.ChildStartFailed) as info:
            await d.start_actor("bad", lambda: Worker(log, "bad", fail_start=True))
        assert isinstance(info.value.__cause__, Boom)
        assert d.count() == 1
        with pytest.raises(actors.ChildNotFound):
            d.child("bad")


async def test_children_restart_per_their_restart_type(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    async with actors.open_runtime(tree()) as rt:
        d = rt.dynamic_supervisor("d")
        perm = await d.start_actor(
            "perm", lambda: Worker(log, "perm"), restart=actors.Restart.PERMANENT
        )
        temp = await d.start_actor("temp", lambda: Worker(log, "temp"))
        trans = await d.start_actor(
            "trans", lambda: Worker(log, "trans"), restart=actors.Restart.TRANSIENT
        )
        perm.send_nowait("crash")
        temp.send_nowait("crash")
        await trans.call("exit")
        await settle()
        assert d.count() == 1
        assert perm.stats().restarts == 1
        assert await perm.call("still") == "still"
        assert not temp.alive
        assert not trans.alive


async def test_children_stop_in_parallel(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    async with actors.open_runtime(tree()) as rt:
        d = rt.dynamic_supervisor("d")
        for i in range(5):
            await d.start_actor(f"p{i}", functools.partial(Worker, log, f"p{i}", stop_delay=2))
        start = trio.current_time()
        await rt.stop()
        # Five polite stops of 2 s each: in parallel they take 2 s, not 10 s.
        assert trio.current_time() - start == pytest.approx(2)
    assert sorted(log.of("stop")) == [f"p{i}" for i in range(5)]
    assert live_incarnations() == 0


async def test_children_are_not_carried_over_a_restart_of_the_supervisor(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(tree(intensity=0)) as rt:
        d = rt.dynamic_supervisor("d")
        ref = await d.start_actor("p", lambda: Worker(log, "p"), restart=actors.Restart.PERMANENT)
        ref.send_nowait("crash")  # intensity 0: the dynamic supervisor gives up
        await settle()
        assert rt.stats().children[0].restarts == 1  # the root restarted it
        assert d.count() == 0
        assert not ref.alive
        await d.start_actor("q", lambda: Worker(log, "q"))  # the same ref still works
        assert d.count() == 1


async def test_start_child_when_not_running_is_refused(autojump_clock: trio.abc.Clock) -> None:
    async with actors.open_runtime(tree()) as rt:
        d = rt.dynamic_supervisor("d")
    with pytest.raises(actors.ActorStopped):
        await d.start_child(actors.actor("p", lambda: Worker(Log(), "p")))
    assert d.count() == 0


async def test_task_children_and_terminate_of_a_task(autojump_clock: trio.abc.Clock) -> None:
    stopped: list[float] = []

    async def job(task_status: trio.TaskStatus[Any]) -> None:
        task_status.started()
        await actors.stop_requested().wait()
        stopped.append(trio.current_time())

    async with actors.open_runtime(tree()) as rt:
        d = rt.dynamic_supervisor("d")
        ref = await d.start_task("job", job)
        assert isinstance(ref, actors.TaskRef)
        assert ref.stats().kind is actors.NodeKind.TASK
        await d.terminate_child("job")
        assert len(stopped) == 1
        assert d.count() == 0


class SlowStart(Worker):
    async def on_start(self, ctx: actors.ActorContext[str, Any]) -> None:
        await trio.sleep(2)
        await super().on_start(ctx)


async def test_a_child_starting_while_the_supervisor_stops_is_not_left_behind(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    outcome: list[BaseException] = []
    async with actors.open_runtime(tree()) as rt:
        d = rt.dynamic_supervisor("d")

        async def starter() -> None:
            try:
                await d.start_actor("slow", lambda: SlowStart(log, "slow"))
            except actors.ActorError as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(starter)
            await trio.sleep(1)
            await rt.stop()
    assert len(outcome) == 1
    assert isinstance(outcome[0], actors.ActorNotRunning)
    assert live_incarnations() == 0
    assert rt.whereis("slow") is None


async def test_a_child_started_by_a_task_does_not_inherit_its_stop_signal(
    autojump_clock: trio.abc.Clock,
) -> None:
    seen: list[str] = []

    class Probe(actors.Actor[str, str]):
        async def handle(self, msg: str) -> str:
            try:
                actors.stop_requested()
            except RuntimeError:
                seen.append("refused")
            return msg

    runtimes: list[actors.Runtime] = []
    ready = trio.Event()

    async def starter(task_status: trio.TaskStatus[Any]) -> None:
        stop = actors.stop_requested()
        task_status.started()
        await ready.wait()
        ref = await runtimes[0].dynamic_supervisor("d").start_actor("probe", Probe)
        await ref.call("x")
        await stop.wait()

    temporary = actors.Restart.TEMPORARY
    spec = actors.SupervisorSpec(
        [actors.dynamic_supervisor("d"), actors.task("starter", starter, restart=temporary)]
    )
    async with actors.open_runtime(spec) as rt:
        runtimes.append(rt)
        ready.set()
        await settle()
        assert seen == ["refused"]
