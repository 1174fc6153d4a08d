"""Heavy work beside the event loop: while it runs, the loop gets the GIL back sooner."""

from __future__ import annotations

import sys

import trio

from flow8.expressions._background import BUSY_SWITCH_INTERVAL, Background


async def test_the_switch_interval_is_short_only_while_background_work_runs() -> None:
    background = Background(threads=2)
    idle = sys.getswitchinterval()
    assert idle > BUSY_SWITCH_INTERVAL
    seen: list[float] = []
    release = trio.Event()

    def work(n: int) -> int:
        seen.append(sys.getswitchinterval())
        return n * 2

    results: list[int] = []

    async def one(n: int) -> None:
        results.append(await background.run(work, n))
        if len(results) == 2:
            release.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, 1)
            nursery.start_soon(one, 2)
            await release.wait()
        assert sorted(results) == [2, 4]
        assert seen == [BUSY_SWITCH_INTERVAL, BUSY_SWITCH_INTERVAL]
        assert sys.getswitchinterval() == idle  # given back once both ended
    finally:
        background.shutdown()
        sys.setswitchinterval(idle)
