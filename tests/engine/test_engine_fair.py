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


async def test_a_crowded_key_holds_callers_back_until_its_queue_has_room() -> None:
    """With ``crowd`` starts of a key waiting, its callers of ``hold_back`` wait, in arrival
    order, one let go per waiter let through below ``crowd``; another key is not held back."""
    gate = FairGate(1, crowd=2)
    release = trio.Event()
    let_go: list[str] = []

    async def holder() -> None:
        async with gate.hold("a"):
            await release.wait()

    async def start(n: int) -> None:
        async with gate.hold("a"):
            await trio.lowlevel.checkpoint()

    async def play(name: str, key: str) -> None:
        await gate.hold_back(key)
        let_go.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(play, "early", "a")  # not crowded yet: goes on at once
        await trio.testing.wait_all_tasks_blocked()
        assert let_go == ["early"]
        for n in range(3):
            nursery.start_soon(start, n)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.crowded("a")
        assert not gate.crowded("b")
        for name in ("p1", "p2", "p3", "p4"):
            nursery.start_soon(play, name, "a")
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(play, "other company", "b")
        await trio.testing.wait_all_tasks_blocked()
        assert let_go == ["early", "other company"]
        assert gate.held_back == 4
        release.set()  # the three queued starts go through one by one
    # below the crowd after the 2nd and 3rd went in: p1, then p2; nothing of "a" left in
    # the gate: all the others at once (trio runs one batch of tasks in any order)
    assert let_go[:4] == ["early", "other company", "p1", "p2"]
    assert sorted(let_go[4:]) == ["p3", "p4"]
    assert (gate.held, gate.waiting, gate.held_back) == (0, 0, 0)


async def test_held_back_callers_are_let_go_one_per_start_let_through() -> None:
    """While the key still has starts in the gate, each one let through below ``crowd``
    lets exactly one held-back caller go: a tree of plays grows as fast as its starts go."""
    gate = FairGate(1, crowd=1)
    release = [trio.Event() for _ in range(3)]
    let_go: list[int] = []

    async def start(n: int) -> None:
        async with gate.hold("a"):
            await release[n].wait()

    async def play(n: int) -> None:
        await gate.hold_back("a")
        let_go.append(n)

    async with trio.open_nursery() as nursery:
        for n in range(3):  # one holds the slot, two wait: crowded
            nursery.start_soon(start, n)
            await trio.testing.wait_all_tasks_blocked()
        for n in range(5):
            nursery.start_soon(play, n)
            await trio.testing.wait_all_tasks_blocked()
        assert let_go == []
        assert gate.held_back == 5
        release[0].set()  # start 1 goes in, one still waits: still crowded (crowd=1)
        await trio.testing.wait_all_tasks_blocked()
        assert let_go == []
        release[1].set()  # start 2 goes in, none waits: one caller goes
        await trio.testing.wait_all_tasks_blocked()
        assert let_go == [0]
        release[2].set()  # nothing of "a" in the gate any more: everyone goes
    assert let_go[0] == 0
    assert sorted(let_go) == [0, 1, 2, 3, 4]
    assert (gate.held, gate.waiting, gate.held_back) == (0, 0, 0)


async def test_cancelled_callers_held_back_or_waiting_leave_nothing_behind() -> None:
    """A held-back caller cancelled leaves the line; a waiter cancelled leaves the queue,
    and if that brings it below ``crowd``, a held-back caller goes."""
    gate = FairGate(1, crowd=2)
    release = trio.Event()
    let_go: list[str] = []

    async def holder() -> None:
        async with gate.hold("a"):
            await release.wait()

    async def start() -> None:
        async with gate.hold("a"):
            pass

    async def play(name: str) -> None:
        await gate.hold_back("a")
        let_go.append(name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(start)  # one waiter: below the crowd
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as doomed:
            doomed.start_soon(start)  # two: crowded
            await trio.testing.wait_all_tasks_blocked()
            async with trio.open_nursery() as doomed_play:
                doomed_play.start_soon(play, "cancelled")
                await trio.testing.wait_all_tasks_blocked()
                assert gate.held_back == 1
                doomed_play.cancel_scope.cancel()
            assert (let_go, gate.waiting, gate.held_back) == ([], 2, 0)
            nursery.start_soon(play, "kept")
            await trio.testing.wait_all_tasks_blocked()
            assert gate.held_back == 1
            doomed.cancel_scope.cancel()  # a waiter leaves: below the crowd, one goes
        await trio.testing.wait_all_tasks_blocked()
        assert let_go == ["kept"]
        assert (gate.waiting, gate.held_back) == (1, 0)
        release.set()
    assert (gate.held, gate.waiting, gate.held_back) == (0, 0, 0)
