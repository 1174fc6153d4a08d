"""The name registry: unique names, lookups, cleanup when the holder ends."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from actors_testkit import Log, Worker, settle, worker

import actors


async def test_spec_names_are_registered_and_survive_restarts(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = actors.SupervisorSpec([worker(log, "w", registered="billing")], intensity=5)
    async with actors.open_runtime(spec) as rt:
        ref = rt.registry.whereis("billing")
        assert ref is rt.actor("w")
        ref.send_nowait("crash")
        await settle()
        assert rt.registry.whereis("billing") is ref
        assert rt.registry.names() == ["billing"]
    assert rt.registry.whereis("billing") is None


async def test_register_unregister_and_clear_errors(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    spec = actors.SupervisorSpec([worker(log, "a"), worker(log, "b")])
    async with actors.open_runtime(spec) as rt:
        a, b = rt.actor("a"), rt.actor("b")
        rt.registry.register("main", a)
        rt.registry.register("main", a)  # idempotent for the same holder
        with pytest.raises(actors.NameTaken, match=r"'main'.*root/a"):
            rt.registry.register("main", b)
        assert rt.registry.lookup("main") is a
        rt.registry.unregister("main")
        assert rt.registry.whereis("main") is None
        with pytest.raises(actors.NameNotFound):
            rt.registry.unregister("main")
        with pytest.raises(actors.NameNotFound):
            rt.registry.lookup("main")
        with pytest.raises(actors.SpecError):
            rt.registry.register("", a)


async def test_names_are_released_when_the_holder_ends_for_good(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    spec = actors.SupervisorSpec([actors.dynamic_supervisor("d")])
    async with actors.open_runtime(spec) as rt:
        d = rt.dynamic_supervisor("d")
        one = await d.start_actor("p1", lambda: Worker(log, "p1"), name="play-1")
        two = await d.start_actor("p2", lambda: Worker(log, "p2"))
        rt.registry.register("manual", two)
        assert rt.whereis("play-1") is one
        with pytest.raises(actors.ChildStartFailed) as info:
            await d.start_actor("p3", lambda: Worker(log, "p3"), name="play-1")
        assert isinstance(info.value.__cause__, actors.NameTaken)
        one.send_nowait("crash")  # temporary: ends for good
        await d.terminate_child("p2")
        await settle()
        assert rt.whereis("play-1") is None
        assert rt.whereis("manual") is None
        assert rt.registry.names() == []
        # A freed name can be taken again.
        three = await d.start_actor("p3", lambda: Worker(log, "p3"), name="play-1")
        assert rt.whereis("play-1") is three
        with pytest.raises(actors.ActorStopped):
            rt.registry.register("late", one)
