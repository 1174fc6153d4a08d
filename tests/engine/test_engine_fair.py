"""FairGate: at most N through at once; waiters are served company by company in turn."""

from __future__ import annotations

import trio
import trio.testing

from flow8.engine._fair import FairGate


async def test_waiters_are_served_round_robin_across_keys() -> None:
    gate = FairGate(1)
    order: list[str] = []
    release = trio.Event()

    async def holder() -> None:
        async with gate.hold("first"):
            await release.wait()

    async def start(key: str, n: int) -> None:
        async with gate.hold(key):
            order.append(f"{key}{n}")
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
        await trio.testing.wait_all_tasks_blocked()
        for n in range(5):  # a company queues five starts...
            nursery.start_soon(start, "a", n)
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(start, "b", 0)  # ...then another company one
        await trio.testing.wait_all_tasks_blocked()
        assert (gate.held, gate.waiting) == (1, 6)
        release.set()
    assert order == ["a0", "b0", "a1", "a2", "a3", "a4"]
    assert (gate.held, gate.waiting) == (0, 0)


async def test_capacity_and_cancelled_waiters_leave_no_slot_behind() -> None:
    gate = FairGate(2)
    inside = 0
    most = 0

    async def start(key: str) -> None:
        nonlocal inside, most
        async with gate.hold(key):
            inside += 1
            most = max(most, inside)
            try:
                await trio.sleep(0.01)
            finally:
                inside -= 1

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(start, f"k{i % 3}")
        with trio.move_on_after(0.015):  # some waiters are cancelled while they wait
            async with trio.open_nursery() as doomed:
                for _ in range(5):
                    doomed.start_soon(start, "doomed")
                await trio.sleep_forever()
    assert most == 2
    assert (gate.held, gate.waiting) == (0, 0)
    async with gate.hold("after"):  # and the gate still works
        assert gate.held == 1
