"""FairGate: at most N through at once; waiters are served company by company in turn."""

from __future__ import annotations

import pytest
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


async def test_a_key_at_its_own_limit_leaves_the_free_slots_to_the_others() -> None:
    """One company's starts hold at most `per_key` slots: another company's start goes in at
    once, and the first company's next start waits for one of its own, not for the others'."""
    gate = FairGate(4, per_key=2)
    release = {key: trio.Event() for key in ("a0", "a1", "a2", "b0")}
    inside: list[str] = []

    async def start(key: str, n: int) -> None:
        async with gate.hold(key):
            inside.append(f"{key}{n}")
            await release[f"{key}{n}"].wait()
        inside.remove(f"{key}{n}")

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(start, "a", n)
            await trio.testing.wait_all_tasks_blocked()
        assert inside == ["a0", "a1"]  # a2 waits although two slots are free
        assert (gate.held, gate.waiting, gate.held_by("a")) == (2, 1, 2)
        nursery.start_soon(start, "b", 0)
        await trio.testing.wait_all_tasks_blocked()
        assert inside == ["a0", "a1", "b0"]  # b passes a's waiter: it waits for a's own
        release["b0"].set()
        await trio.testing.wait_all_tasks_blocked()
        assert inside == ["a0", "a1"]  # b's slot was not a's to take
        release["a0"].set()
        await trio.testing.wait_all_tasks_blocked()
        assert inside == ["a1", "a2"]
        release["a1"].set()
        release["a2"].set()
    assert (gate.held, gate.waiting, gate.held_by("a")) == (0, 0, 0)


def test_per_key_must_fit_the_capacity() -> None:
    with pytest.raises(ValueError, match="per_key"):
        FairGate(2, per_key=3)
