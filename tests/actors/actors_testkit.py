"""Shared probes for the actors tests: actors and tasks that record what happens to them."""

from __future__ import annotations

from typing import Any

import trio

import actors


class Boom(Exception):
    """The crash the probes raise on purpose."""


class Log:
    """An ordered record of ("start"|"stop"|"crash", name) events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def add(self, kind: str, name: str) -> None:
        self.events.append((kind, name))

    def of(self, kind: str) -> list[str]:
        return [name for k, name in self.events if k == kind]

    def clear(self) -> None:
        self.events.clear()


class Worker(actors.Actor[str, Any]):
    """Commands: "ping" -> the incarnation's start time; "crash" -> raises Boom;
    "exit" -> ends normally; "sleep:N" -> sleeps N seconds; "block" -> waits forever."""

    def __init__(self, log: Log, name: str, *, fail_start: bool = False, stop_delay: float = 0):
        self.log = log
        self.name = name
        self.fail_start = fail_start
        self.stop_delay = stop_delay
        self.ctx: actors.ActorContext[str, Any] | None = None
        self.born = trio.current_time()

    async def on_start(self, ctx: actors.ActorContext[str, Any]) -> None:
        if self.fail_start:
            raise Boom(f"{self.name} cannot start")
        self.ctx = ctx
        self.log.add("start", self.name)

    async def handle(self, msg: str) -> Any:
        if msg == "ping":
            return self.born
        if msg == "crash":
            self.log.add("crash", self.name)
            raise Boom(f"{self.name} crashed")
        if msg == "exit":
            assert self.ctx is not None
            self.ctx.stop()
            return None
        if msg.startswith("sleep:"):
            await trio.sleep(float(msg.removeprefix("sleep:")))
            return msg
        if msg == "block":
            await trio.sleep_forever()
        return msg

    async def on_stop(self) -> None:
        if self.stop_delay:
            await trio.sleep(self.stop_delay)
        self.log.add("stop", self.name)


def worker(
    log: Log,
    name: str,
    *,
    restart: actors.Restart = actors.Restart.PERMANENT,
    fail_start: bool = False,
    stop_delay: float = 0,
    shutdown: float | None = 5.0,
    capacity: int = 16,
    registered: str | None = None,
) -> actors.ChildSpec:
    return actors.actor(
        name,
        lambda: Worker(log, name, fail_start=fail_start, stop_delay=stop_delay),
        restart=restart,
        shutdown=shutdown,
        capacity=capacity,
        name=registered,
    )


async def settle() -> None:
    """Let every task run until all are blocked (restarts and stops complete)."""
    await trio.testing.wait_all_tasks_blocked()


def node(tree: dict[str, Any], path: str) -> dict[str, Any]:
    """The JSON node at ``path`` (child names joined by '/', root excluded)."""
    current = tree
    for part in [p for p in path.split("/") if p]:
        matches = [c for c in current["children"] if c["name"] == part]
        assert matches, f"no child {part!r} under {current['name']!r}"
        current = matches[0]
    return current


def live_incarnations() -> int:
    """How many child incarnation tasks are alive anywhere in the trio task tree."""
    from actors._slot import Slot

    code = Slot.run.__code__
    count = 0
    root = trio.lowlevel.current_root_task()
    assert root is not None
    stack = [root]
    while stack:
        t = stack.pop()
        if getattr(t.coro, "cr_code", None) is code:
            count += 1
        for nursery in t.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count
