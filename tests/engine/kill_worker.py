"""Subprocess for the SIGKILL test: ``seed DB_DIR N`` queues N plays; ``run DB_DIR`` runs
plays until none is left unfinished. Registers a test-only non-idempotent module that
appends ``<play>:<ref>`` lines to ``effects.log`` in DB_DIR."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio
from engine_testkit import new_engine

from flow8.domain import parse_flow_definition
from flow8.engine import Engine, EngineSettings
from flow8.events import EventBus
from flow8.modules import ModuleContext, ModuleSpec
from flow8.store import open_store

COMPANY = "kill"
FLOW = {
    "name": "kill-test",
    "flowlets": [
        {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.n }}"}},
        {"ref": "wait", "appId": "delay", "args": {"ms": "{{ 300 + $prev.args.n % 10 * 120 }}"}},
        {"ref": "effect", "appId": "append-file", "args": {}},
        {
            "ref": "mark",
            "appId": "kv-set",
            "args": {"key": "{{ 'done-' & $playId }}", "value": "{{ $prev.a }}", "scope": "global"},
        },
        {"ref": "linger", "appId": "delay", "args": {"ms": "{{ 300 + $prev.args.n % 7 * 150 }}"}},
        {"ref": "out", "appId": "set", "args": {"value": "{{ $prev.a * 2 }}"}},
    ],
}


def register(engine: Engine, log: Path) -> None:
    async def append(ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{ctx.play_id}:{ctx.ref}\n".encode())
        finally:
            os.close(fd)
        await trio.sleep(0.01)
        return {"appended": True}

    engine.registry.register(
        ModuleSpec(
            "append-file",
            "test",
            "append a line (not idempotent)",
            {"type": "object"},
            {},
            False,
            append,
        )
    )


async def main(mode: str, directory: str, count: int) -> None:
    d = Path(directory)
    settings = EngineSettings(lease_seconds=1.0, poll_interval=0.05, hold_delay_seconds=5)
    async with open_store(f"sqlite:///{d / 'flow8.db'}", data_dir=d, durability="normal") as store:
        engine = new_engine(store, EventBus(), settings)
        register(engine, d / "effects.log")
        if mode == "seed":
            flow = await engine.flows.create(COMPANY, parse_flow_definition(FLOW), flow_id="kf")
            for n in range(count):
                await engine.start_play(COMPANY, flow.id, {"n": n})
            return
        plays = store.tenant(COMPANY).collection("plays")
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.serve)
            while True:  # the store is polled: other processes may change it
                if not await plays.count({"status": {"$nin": ["DONE", "FAIL", "CANCEL"]}}):
                    break
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
