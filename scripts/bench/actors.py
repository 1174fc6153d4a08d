"""Benchmark of the actors runtime, each figure beside a raw Trio baseline from the same run.

Run: .venv/bin/python scripts/bench/actors.py [--quick]

Measures (real wall-clock Trio, not the autojump clock):
  1. messages/s through one actor with ``send`` vs a bare memory channel (nowait + fallback);
  2. ``call`` round trips/s vs a bare memory-channel request/reply round trip (target <= 3x);
  3. cost of spawning a child under a dynamic supervisor vs a bare ``nursery.start_soon``;
  4. restart latency (crash -> answering again) vs a bare task spawn;
  5. RSS growth for 10,000 children under one dynamic supervisor (target < 100 MB) vs
     10,000 bare tasks, each in a fresh interpreter so freed memory is not reused.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import trio.lowlevel

import actors


class Sink(actors.Actor[int, int]):
    def __init__(self) -> None:
        self.total = 0

    async def handle(self, msg: int) -> int:
        if msg < 0:
            raise RuntimeError("crash on purpose")
        self.total += msg
        return msg


def _best(values: list[float]) -> float:
    return min(values)


# -- 1 and 2: throughput -------------------------------------------------------------------------


async def bare_send(n: int) -> float:
    send, receive = trio.open_memory_channel[int](64)
    done = trio.Event()

    async def consumer() -> None:
        total = 0
        while True:
            try:
                item = receive.receive_nowait()
            except trio.WouldBlock:
                item = await receive.receive()
            if item < 0:
                break
            total += item
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.lowlevel.checkpoint()
        start = time.perf_counter()
        for i in range(n):
            try:
                send.send_nowait(i)
            except trio.WouldBlock:
                await send.send(i)
        await send.send(-1)
        await done.wait()
        return n / (time.perf_counter() - start)


async def actor_send(n: int) -> float:
    spec = actors.SupervisorSpec([actors.actor("sink", Sink, capacity=64)])
    async with actors.open_runtime(spec) as rt:
        ref: actors.ActorRef[int, int] = rt.actor("sink")
        start = time.perf_counter()
        for i in range(n):
            await ref.send(i)
        await ref.call(0)  # everything before it has been handled
        return n / (time.perf_counter() - start)


async def bare_round_trip(n: int) -> float:
    requests, server_in = trio.open_memory_channel[int](64)
    server_out, replies = trio.open_memory_channel[int](1)

    async def server() -> None:
        while True:
            try:
                item = server_in.receive_nowait()
            except trio.WouldBlock:
                try:
                    item = await server_in.receive()
                except trio.EndOfChannel:
                    return
            server_out.send_nowait(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        await trio.lowlevel.checkpoint()
        start = time.perf_counter()
        for i in range(n):
            requests.send_nowait(i)
            try:
                replies.receive_nowait()
            except trio.WouldBlock:
                await replies.receive()
        elapsed = time.perf_counter() - start
        await requests.aclose()
        return n / elapsed


async def actor_round_trip(n: int, timeout: float | None) -> float:
    spec = actors.SupervisorSpec([actors.actor("sink", Sink, capacity=64)])
    async with actors.open_runtime(spec) as rt:
        ref: actors.ActorRef[int, int] = rt.actor("sink")
        start = time.perf_counter()
        for i in range(n):
            await ref.call(i, timeout=timeout)
        return n / (time.perf_counter() - start)


# -- 3: spawning ---------------------------------------------------------------------------------


async def bare_spawn(n: int) -> float:
    async with trio.open_nursery() as nursery:
        start = time.perf_counter()
        for _ in range(n):
            nursery.start_soon(trio.sleep_forever)
        await trio.lowlevel.checkpoint()  # let them all reach their first block
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed / n


async def bare_start(n: int) -> float:
    async def child(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        _send, receive = trio.open_memory_channel[object](64)
        task_status.started()
        async for _ in receive:
            pass

    async with trio.open_nursery() as nursery:
        start = time.perf_counter()
        for _ in range(n):
            await nursery.start(child)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed / n


async def dynamic_spawn(n: int) -> float:
    spec = actors.SupervisorSpec([actors.dynamic_supervisor("d")])
    async with actors.open_runtime(spec) as rt:
        d = rt.dynamic_supervisor("d")
        start = time.perf_counter()
        for i in range(n):
            await d.start_actor(f"c{i}", Sink)
        return (time.perf_counter() - start) / n


# -- 4: restarts ---------------------------------------------------------------------------------


async def bare_respawn(n: int) -> float:
    async with trio.open_nursery() as nursery:
        start = time.perf_counter()
        for _ in range(n):
            started = trio.Event()

            async def child(started: trio.Event = started) -> None:
                started.set()

            nursery.start_soon(child)
            await started.wait()
        return (time.perf_counter() - start) / n


async def restart_latency(n: int) -> float:
    spec = actors.SupervisorSpec([actors.actor("w", Sink)], intensity=n + 1, period=3600)
    async with actors.open_runtime(spec) as rt:
        ref: actors.ActorRef[int, int] = rt.actor("w")
        await ref.call(0)
        start = time.perf_counter()
        for _ in range(n):
            with contextlib.suppress(actors.CallFailed):
                await ref.call(-1)
            await ref.call(0)  # answered by the new incarnation
        elapsed = (time.perf_counter() - start) / n
        assert ref.stats().restarts == n
        return elapsed


async def round_trip_only(n: int) -> float:
    spec = actors.SupervisorSpec([actors.actor("w", Sink)])
    async with actors.open_runtime(spec) as rt:
        ref: actors.ActorRef[int, int] = rt.actor("w")
        start = time.perf_counter()
        for _ in range(n):
            await ref.call(0)
            await ref.call(0)
        return (time.perf_counter() - start) / n


# -- 5: memory -----------------------------------------------------------------------------------


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def rss_child(mode: str, n: int) -> dict[str, Any]:
    if mode == "bare":
        gc.collect()
        before = rss_bytes()
        async with trio.open_nursery() as nursery:
            channels = []
            for _ in range(n):
                send, receive = trio.open_memory_channel[object](64)
                channels.append(send)

                async def loop(receive: trio.MemoryReceiveChannel[object] = receive) -> None:
                    async for _ in receive:
                        pass

                nursery.start_soon(loop)
            await trio.sleep(0.1)
            gc.collect()
            after = rss_bytes()
            nursery.cancel_scope.cancel()
        return {"mode": mode, "n": n, "growth": after - before}
    spec = actors.SupervisorSpec([actors.dynamic_supervisor("d", max_children=n)])
    async with actors.open_runtime(spec) as rt:
        d = rt.dynamic_supervisor("d")
        gc.collect()
        before = rss_bytes()
        for i in range(n):
            await d.start_actor(f"c{i}", Sink)
        await trio.sleep(0.1)
        gc.collect()
        after = rss_bytes()
        assert d.count() == n
        stop_start = time.perf_counter()
        await rt.stop()
        stop = time.perf_counter() - stop_start
    return {"mode": mode, "n": n, "growth": after - before, "stop": stop}


def rss_in_subprocess(mode: str, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", mode, str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- driver --------------------------------------------------------------------------------------


def row(label: str, ours: str, base: str, ratio: str) -> None:
    print(f"{label:<44} {ours:>16} {base:>16} {ratio:>8}")


async def main(quick: bool) -> None:
    # The restart benchmark crashes thousands of times on purpose; logging each traceback
    # would measure the log handler, not the runtime.
    logging.getLogger("actors").disabled = True
    scale = 0.2 if quick else 1.0
    n_msg = int(200_000 * scale)
    n_call = int(50_000 * scale)
    n_spawn = int(5_000 * scale)
    n_restart = int(2_000 * scale)
    repeats = 3

    print(
        f"actors benchmark: python {sys.version.split()[0]}, trio {trio.__version__}, "
        f"{os.cpu_count()} cpu(s), best of {repeats}"
    )
    row("measure", "actors", "bare trio", "ratio")
    print("-" * 88)

    bs = _best([-(await bare_send(n_msg)) for _ in range(repeats)]) * -1
    ours = _best([-(await actor_send(n_msg)) for _ in range(repeats)]) * -1
    row("send: messages/s through one actor", f"{ours:,.0f}", f"{bs:,.0f}", f"{bs / ours:.2f}x")

    br = _best([-(await bare_round_trip(n_call)) for _ in range(repeats)]) * -1
    ct = _best([-(await actor_round_trip(n_call, 5.0)) for _ in range(repeats)]) * -1
    cn = _best([-(await actor_round_trip(n_call, None)) for _ in range(repeats)]) * -1
    row("call round trips/s (timeout=5 s)", f"{ct:,.0f}", f"{br:,.0f}", f"{br / ct:.2f}x")
    row("call round trips/s (timeout=None)", f"{cn:,.0f}", f"{br:,.0f}", f"{br / cn:.2f}x")

    bsp = _best([await bare_spawn(n_spawn) for _ in range(repeats)])
    bst = _best([await bare_start(n_spawn) for _ in range(repeats)])
    dsp = _best([await dynamic_spawn(n_spawn) for _ in range(repeats)])
    row(
        "spawn: µs per child vs start_soon",
        f"{dsp * 1e6:,.1f}",
        f"{bsp * 1e6:,.1f}",
        f"{dsp / bsp:.1f}x",
    )
    row(
        "spawn: µs per child vs nursery.start + channel",
        f"{dsp * 1e6:,.1f}",
        f"{bst * 1e6:,.1f}",
        f"{dsp / bst:.1f}x",
    )

    brs = _best([await bare_respawn(n_restart) for _ in range(repeats)])
    rl = _best([await restart_latency(n_restart) for _ in range(repeats)])
    rt = _best([await round_trip_only(n_restart) for _ in range(repeats)])
    row(
        "restart: µs crash -> answering again",
        f"{rl * 1e6:,.1f}",
        f"{brs * 1e6:,.1f}",
        f"{rl / brs:.1f}x",
    )
    row("  of which the two calls themselves", f"{rt * 1e6:,.1f}", "", "")

    n_rss = 10_000
    ours_rss = rss_in_subprocess("actors", n_rss)
    bare_rss = rss_in_subprocess("bare", n_rss)
    mb = 1024 * 1024
    row(
        f"RSS growth, {n_rss:,} children (MB)",
        f"{ours_rss['growth'] / mb:,.1f}",
        f"{bare_rss['growth'] / mb:,.1f}",
        f"{ours_rss['growth'] / max(bare_rss['growth'], 1):.1f}x",
    )
    row(
        "  per child (KiB)",
        f"{ours_rss['growth'] / n_rss / 1024:,.1f}",
        f"{bare_rss['growth'] / n_rss / 1024:,.1f}",
        "",
    )
    row(f"  parallel stop of {n_rss:,} children (ms)", f"{ours_rss['stop'] * 1e3:,.0f}", "", "")
    print("-" * 88)
    ratio = br / ct
    print(
        f"targets: call within 3x of bare round trip -> {ratio:.2f}x "
        f"{'OK' if ratio <= 3 else 'MISSED'}; "
        f"10,000 children < 100 MB -> {ours_rss['growth'] / mb:.1f} MB "
        f"{'OK' if ours_rss['growth'] < 100 * mb else 'MISSED'}"
    )
    assert not math.isnan(ratio)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--rss-child":
        result = trio.run(rss_child, sys.argv[2], int(sys.argv[3]))
        print(json.dumps(result))
    else:
        trio.run(main, "--quick" in sys.argv)
