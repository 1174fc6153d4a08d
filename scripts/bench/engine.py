"""Engine benchmarks on the embedded (sqlite) store, one process. Prints medians.

(a) a 40-step flow of lightweight data steps: per-step overhead under `full` and `normal`
    durability; baseline: evaluating the same 40 expressions without the engine. Then the
    same under `full` with play data encrypted at rest (FLOW8_ENCRYPT_PLAY_DATA), beside the
    unencrypted flow measured again in turn.
(b) plays/s for a 3-step flow with 100 plays in flight; baseline: raw store write rate
    (pipelined inserts of the same count of documents, one sync).
(c) RSS for 10,000 concurrent plays each waiting in a `delay` step (parked: no actor held),
    plus the same with the delay held in-actor (10,000 live PlayActors); baseline: RSS of
    the process before starting them.

Targets: (a) <= 0.3 ms/step under full; (b) >= 1,000 plays/s; (c) < 1 GB RSS.
Usage: .venv/bin/python scripts/bench/engine.py [--quick]
"""

from __future__ import annotations

import base64
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, this directory would come first on sys.path, where the sibling
# benchmark actors.py would shadow the actors package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parents[1]))

import trio  # noqa: E402

from flow8.domain import PlayState, parse_flow_definition  # noqa: E402
from flow8.engine import Engine, EngineSettings  # noqa: E402
from flow8.events import EventBus  # noqa: E402
from flow8.expressions import compile_value  # noqa: E402
from flow8.interpreter import settle_after_startup  # noqa: E402
from flow8.logs import configure_logging  # noqa: E402
from flow8.modules import default_registry  # noqa: E402
from flow8.services.flows import FlowRepository  # noqa: E402
from flow8.services.kv import KvStore  # noqa: E402
from flow8.store import Durability, Keyring, Store, open_store  # noqa: E402

COMPANY = "bench"
KEYS = Keyring.parse("bench:" + base64.b64encode(os.urandom(32)).decode())
QUICK = "--quick" in sys.argv


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def forty_steps() -> dict[str, Any]:
    flowlets: list[dict[str, Any]] = [
        {"ref": "s0", "appId": "set", "args": {"value": {"n": "{{ $prev.args.n }}", "tag": "x"}}}
    ]
    for i in range(1, 40):
        flowlets.append(
            {
                "ref": f"s{i}",
                "appId": "set",
                "args": {"value": {"n": f"{{{{ $prev.s{i - 1}.n + 1 }}}}", "tag": "x"}},
            }
        )
    return {"name": "forty", "flowlets": flowlets}


THREE = {
    "name": "three",
    "flowlets": [
        {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.n }}"}},
        {"ref": "b", "appId": "set", "args": {"value": "{{ $prev.a * 2 }}"}},
        {"ref": "c", "appId": "set", "args": {"value": {"out": "{{ $prev.b + 1 }}"}}},
    ],
}


async def with_engine(
    durability: Durability, fn: Any, settings: EngineSettings | None = None
) -> Any:
    with tempfile.TemporaryDirectory() as d:
        async with open_store(
            f"sqlite:///{Path(d) / 'bench.db'}", data_dir=d, durability=durability, encryption=KEYS
        ) as store:
            # Wired as the server wires it: flows and KV from the services' stores.
            registry = default_registry()
            flows, kv = FlowRepository(store, registry), KvStore(store)
            engine = Engine(
                store, EventBus(), settings or EngineSettings(), registry, flows=flows, kv=kv
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(engine.serve)
                result = await fn(engine, store)
                nursery.cancel_scope.cancel()
            return result


async def bench_a(durability: Durability, *, encrypt: bool = False) -> tuple[float, float]:
    runs = 5 if QUICK else 15

    async def go(engine: Engine, _store: Store) -> tuple[float, float]:
        flow = await engine.flows.create(COMPANY, parse_flow_definition(forty_steps()))
        per_step: list[float] = []
        for i in range(runs + 2):
            t0 = time.perf_counter()
            play = await engine.start_play(COMPANY, flow.id, {"n": i})
            done = await engine.wait_play(COMPANY, play.id)
            elapsed = time.perf_counter() - t0
            if done.state is not PlayState.DONE or done.output["n"] != i + 39:
                raise RuntimeError(f"unexpected play result: {done}")
            if i >= 2:  # warm-up: plan compilation, caches
                per_step.append(elapsed / 40 * 1000)
        return statistics.median(per_step), elapsed * 1000

    settings = EngineSettings(encrypt_play_data=encrypt)
    result: tuple[float, float] = await with_engine(durability, go, settings)
    return result


def baseline_a() -> float:
    steps = forty_steps()["flowlets"]
    compiled = [compile_value(s["args"], s["ref"]) for s in steps]
    samples = []
    for i in range(50):
        outputs: dict[str, Any] = {"args": {"n": i}}
        t0 = time.perf_counter()
        for s, c in zip(steps, compiled, strict=True):
            outputs[s["ref"]] = c.resolve({"prev": outputs})["value"]
        samples.append((time.perf_counter() - t0) / 40 * 1000)
    return statistics.median(samples)


async def baseline_a_async() -> float:
    """The same, through ``resolve_async`` as the engine calls it (on the event loop within
    a slice of the budget)."""
    steps = forty_steps()["flowlets"]
    compiled = [compile_value(s["args"], s["ref"]) for s in steps]
    samples = []
    for i in range(50):
        outputs: dict[str, Any] = {"args": {"n": i}}
        t0 = time.perf_counter()
        for s, c in zip(steps, compiled, strict=True):
            outputs[s["ref"]] = (await c.resolve_async({"prev": outputs}))["value"]
        samples.append((time.perf_counter() - t0) / 40 * 1000)
    return statistics.median(samples)


async def bench_b(durability: Durability) -> float:
    total = 1000 if QUICK else 3000

    async def go(engine: Engine, _store: Store) -> float:
        flow = await engine.flows.create(COMPANY, parse_flow_definition(THREE))
        limiter = trio.Semaphore(100)

        async def one(n: int) -> None:
            async with limiter:
                play = await engine.start_play(COMPANY, flow.id, {"n": n})
                done = await engine.wait_play(COMPANY, play.id)
                if done.state is not PlayState.DONE:
                    raise RuntimeError(f"unexpected play result: {done}")

        t0 = time.perf_counter()
        async with trio.open_nursery() as n:
            for i in range(total):
                n.start_soon(one, i)
        return total / (time.perf_counter() - t0)

    rate: float = await with_engine(durability, go)
    return rate


async def baseline_b(durability: Durability) -> float:
    count = 1000 if QUICK else 3000
    with tempfile.TemporaryDirectory() as d:
        async with open_store(
            f"sqlite:///{Path(d) / 'raw.db'}", data_dir=d, durability=durability, encryption=KEYS
        ) as store:
            coll = store.tenant(COMPANY).collection("play_layers")
            # per play: insert play + 3 layers x2 writes + 1 final update ~ 8 docs; measure docs/s
            t0 = time.perf_counter()
            limiter = trio.Semaphore(100)

            async def one(i: int) -> None:
                async with limiter:
                    await coll.insert_one(
                        {"play_id": f"p{i}", "layer_id": f"x:{i}", "output": {"n": i}}
                    )

            async with trio.open_nursery() as n:
                for i in range(count):
                    n.start_soon(one, i)
            return count / (time.perf_counter() - t0)


async def bench_c(held: bool) -> tuple[float, float, int]:
    count = 2000 if QUICK else 10_000
    # Capacity, not policy: the per-company limits (1,000 running, 2,000 started a second)
    # are off, so that one company can hold all 10,000.
    settings = EngineSettings(
        hold_delay_seconds=3600 if held else 5.0,
        lease_seconds=600,
        max_running_plays=20_000,
        company_running_plays=0,
        company_plays_per_second=0,
    )

    async def go(engine: Engine, store: Store) -> tuple[float, float, int]:
        flow = await engine.flows.create(
            COMPANY,
            parse_flow_definition(
                {
                    "name": "wait",
                    "flowlets": [{"ref": "d", "appId": "delay", "args": {"seconds": 600}}],
                }
            ),
        )
        before = rss_mb()
        limiter = trio.Semaphore(200)

        async def one(n: int) -> None:
            async with limiter:
                await engine.start_play(COMPANY, flow.id, {"n": n})

        async with trio.open_nursery() as n:
            for i in range(count):
                n.start_soon(one, i)
        plays = store.tenant(COMPANY).collection("plays")
        while True:
            waiting = await plays.count({"status": "WAIT"}) if not held else 0
            settled = waiting == count or (held and engine.running == count)
            if settled:
                break
            await trio.sleep(0.2)
        await trio.sleep(0.5)
        return before, rss_mb(), engine.running

    result: tuple[float, float, int] = await with_engine("normal", go, settings)
    return result


async def main() -> None:
    # Figures only: store/engine logs go to stderr, warnings and above.
    configure_logging("warning", "console")
    # The engine runs in `flow8 serve`, which settles the collector once it is up (start-up
    # objects frozen, the youngest generation collected every 10,000 allocations): without
    # it, collections took ~9% of (b)'s time here, walking start-up objects over and over.
    settle_after_startup()
    print(f"engine benchmarks (sqlite, one process){' [quick]' if QUICK else ''}")
    base = baseline_a()
    base_async = await baseline_a_async()
    for durability in ("full", "normal"):
        per_step, last_ms = await bench_a(durability)
        print(
            f"(a) 40-step flow, durability={durability:6}: median {per_step:.3f} ms/step "
            f"({last_ms:.1f} ms/play end to end) | baseline: expressions alone "
            f"{base:.3f} ms/step ({base_async:.3f} async) | target <= 0.3 ms/step under full"
        )
    # FLOW8_ENCRYPT_PLAY_DATA: each layer's arguments and output sealed with AES-GCM; its
    # baseline is the same flow unencrypted, measured again beside it (ratios, not times).
    plain, sealed = [], []
    for _ in range(1 if QUICK else 3):
        plain.append((await bench_a("full"))[0])
        sealed.append((await bench_a("full", encrypt=True))[0])
    cost = statistics.median(sealed) / statistics.median(plain)
    print(
        f"(a) 40-step flow, durability=full, play data encrypted: median "
        f"{statistics.median(sealed):.3f} ms/step | baseline: unencrypted "
        f"{statistics.median(plain):.3f} ms/step (x{cost:.2f})"
    )
    for durability in ("full", "normal"):
        rates = [await bench_b(durability) for _ in range(1 if QUICK else 3)]
        raw = await baseline_b(durability)
        print(
            f"(b) 3-step flow, 100 in flight, durability={durability:6}: median "
            f"{statistics.median(rates):,.0f} plays/s | baseline: raw store "
            f"{raw:,.0f} awaited inserts/s (100 in flight) | target >= 1,000 plays/s"
        )
    for held in (False, True):
        before, after, running = await bench_c(held)
        mode = "held in-actor (live PlayActors)" if held else "parked (no actor held)"
        print(
            f"(c) {10_000 if not QUICK else 2000:,} plays waiting in delay, {mode}: RSS "
            f"{after:,.0f} MB (running actors: {running:,}) | baseline: RSS before "
            f"{before:,.0f} MB | target < 1 GB"
        )


if __name__ == "__main__":
    trio.run(main)
