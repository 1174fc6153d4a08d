"""Retention benchmark: GET /api/plays/{id} latency while the retention job deletes 100,000
old plays, beside the same measurement without cleanup, in one run on one server.

Run: .venv/bin/python scripts/bench/jobs.py [--plays 100000] [--layers 2] [--seconds 6]
     [--conns 16] [--batch 500]

Setup: a sqlite store (durability full, as shipped), one company with an API key, a flow and
one real play (the one read); then ``--plays`` finished plays of that flow, each with
``--layers`` layers, created 200 days ago (past the default 90-day policy), written straight
into the store. The app is served by Hypercorn on a socket as `flow8 serve` does; `wrk` (a
separate process; without it an httpx subprocess) reads the play at ``--conns`` connections.

1. without cleanup: wrk for ``--seconds``.
2. during cleanup: the retention job runs (run after run, as its interval would, back to back)
   while wrk reads for ``--seconds`` starting with it; then the job runs until nothing is left.

Printed: both p99s and req/s, how many runs and how long the cleanup took, what is left.
Target: p99 under 50 ms during cleanup; every old play and layer gone within a few runs.
"""

from __future__ import annotations

# ruff: noqa: E402  (imports follow the sys.path fix below)
import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import textwrap
import time
from functools import partial
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import structlog
import trio
from hypercorn.trio import serve

from flow8.engine import Engine
from flow8.events import EventBus
from flow8.http import HttpDeps, HttpSettings, create_app
from flow8.http._serve import hypercorn_config
from flow8.interpreter import settle_after_startup
from flow8.jobs import Retention
from flow8.modules import default_registry
from flow8.services.audit import AuditLog, AuditQueries, StoreAuditSink
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.identity import IdentityService
from flow8.services.kv import KvStore
from flow8.services.plays import PlayService
from flow8.services.retention import RetentionPolicies
from flow8.store import Keyring, Store, new_id, open_store

FLOW = {"name": "bench", "flowlets": [{"ref": "a", "appId": "noop", "args": {"value": 1}}]}

LOADGEN = textwrap.dedent(
    """
    import sys, time, json, trio, httpx
    url, conns, seconds, auth = sys.argv[1:5]
    conns, seconds = int(conns), float(seconds)
    lat = []
    async def worker(client, stop):
        while trio.current_time() < stop:
            t = time.perf_counter()
            await client.get(url)
            lat.append(time.perf_counter() - t)
    async def main():
        limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
        async with httpx.AsyncClient(headers={"Authorization": auth}, limits=limits,
                                     timeout=30) as client:
            stop = trio.current_time() + seconds
            async with trio.open_nursery() as n:
                for _ in range(conns):
                    n.start_soon(worker, client, stop)
    trio.run(main)
    lat.sort()
    print(json.dumps({"rps": len(lat) / seconds, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000}))
    """
)


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if m is None:
        raise ValueError(f"unparsable wrk latency {value!r}")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


async def _load(url: str, conns: int, seconds: float, auth: str) -> dict[str, float]:
    if shutil.which("wrk") is None:
        cmd = [sys.executable, "-c", LOADGEN, url, str(conns), str(seconds), auth]
        proc = await trio.run_process(cmd, capture_stdout=True)
        out: dict[str, float] = json.loads(proc.stdout)
        out["errors"] = 0
        return out
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.headers["Authorization"] = "{auth}"\n')
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency",
           "-s", script.name, url]  # fmt: skip
    try:
        proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)
    finally:
        os.unlink(script.name)
    text = proc.stdout.decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": rps, "p99_ms": p99, "errors": int(non2xx.group(1)) if non2xx else 0}


async def _seed(store: Store, company: str, flow_id: str, n: int, layers: int) -> None:
    t = store.tenant(company)
    plays, steps = t.collection("plays"), t.collection("play_layers")
    old = time.time() - 200 * 86_400
    chunk = 2000
    for start in range(0, n, chunk):
        ids = [new_id() for _ in range(min(chunk, n - start))]
        await plays.insert_many(
            [{"_id": p, "flow_id": flow_id, "flow_version": 1, "status": "DONE",
              "created_at": old + start + i, "finished_at": old + start + i + 1,
              "input": {"n": start + i}, "output": {"ok": True},
              "idempotency_key": f"play:{p}"} for i, p in enumerate(ids)]
        )  # fmt: skip
        await steps.insert_many(
            [{"_id": f"{p}:s{s}", "play_id": p, "layer_id": f"s{s}", "seq": s, "ref": f"s{s}",
              "state": "DONE", "app_id": "noop", "args": {"value": s}, "output": {"value": s}}
             for p in ids for s in range(layers)]
        )  # fmt: skip


async def bench(n: int, layers: int, seconds: float, conns: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            open_store(
                f"sqlite:///{Path(tmp) / 'flow8.db'}", data_dir=tmp, encryption=Keyring.generate()
            ) as store,
            trio.open_nursery() as nursery,
        ):
            audit = AuditLog(StoreAuditSink(store))
            await nursery.start(audit.serve)
            bus = EventBus()
            registry = default_registry()
            repository, kv = FlowRepository(store, registry), KvStore(store)
            engine = Engine(store, bus, None, registry, flows=repository, kv=kv)
            await nursery.start(bus.serve)
            await nursery.start(engine.serve)
            identity = IdentityService(store, audit=audit.record)
            await identity.install("Bench", "bench@example.com", "bench-password-1")
            login = await identity.login(
                "bench@example.com", "bench-password-1", ip="bench", user_agent="bench"
            )
            key = (await identity.create_api_key(login.principal, "bench", ["api"])).key
            company = login.principal.company_id
            assert company is not None
            flows, plays = FlowService(repository), PlayService(engine)
            flow = await flows.create(company, FLOW)
            play = await plays.run(company, flow.id, {"n": 0}, timeout=10)
            t0 = time.perf_counter()
            await _seed(store, company, flow.id, n, layers)
            coll = store.tenant(company).collection
            print(f"seeded {n:,} plays 200 days old with {n * layers:,} layers "
                  f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
            deps = HttpDeps(
                settings=HttpSettings(),
                identity=identity,
                flows=flows,
                plays=plays,
                audit=audit.record,
                audit_queries=AuditQueries(store),
            )
            config = hypercorn_config("127.0.0.1", 0, graceful_timeout=1.0)
            config.errorlog = None
            binds = await nursery.start(partial(serve, create_app(deps), config))
            settle_after_startup()
            url, auth = f"{binds[0]}/api/plays/{play.id}", f"Bearer {key}"
            print(f"load generator: {'wrk' if shutil.which('wrk') else 'httpx subprocess'}; "
                  f"GET /api/plays/{{id}} at {conns} connections, {seconds:g}s each; "
                  f"batch size {batch}")  # fmt: skip
            await _load(url, conns, 1.0, auth)  # warm-up
            quiet = await _load(url, conns, seconds, auth)
            retention = Retention(store, RetentionPolicies(store), audit.record, batch_size=batch)
            runs: list[dict[str, int]] = []
            done = trio.Event()
            cleanup_seconds = 0.0

            async def clean() -> None:
                nonlocal cleanup_seconds
                start = time.perf_counter()
                while True:
                    removed = await retention.run_once()
                    runs.append(removed)
                    if removed["plays"] == 0:
                        break
                cleanup_seconds = time.perf_counter() - start
                done.set()

            nursery.start_soon(clean)
            busy = await _load(url, conns, seconds, auth)
            still_running = not done.is_set()
            await done.wait()
            left_plays = await coll("plays").count({})
            left_layers = await coll("play_layers").count({})
            print()
            print(f"{'':24}{'req/s':>10}{'p99 ms':>10}{'non-2xx':>9}")
            print(f"{'without cleanup':24}{quiet['rps']:>10.0f}{quiet['p99_ms']:>10.2f}"
                  f"{quiet['errors']:>9.0f}")  # fmt: skip
            print(f"{'during cleanup':24}{busy['rps']:>10.0f}{busy['p99_ms']:>10.2f}"
                  f"{busy['errors']:>9.0f}")  # fmt: skip
            print()
            removed_plays = sum(r["plays"] for r in runs)
            removed_layers = sum(r["layers"] for r in runs)
            print(f"cleanup: {removed_plays:,} plays and {removed_layers:,} layers removed in "
                  f"{len([r for r in runs if r['plays']])} run(s) (+1 finding nothing), "
                  f"{cleanup_seconds:.1f}s; still running when the measurement ended: "
                  f"{still_running}")  # fmt: skip
            print(f"left: {left_plays} play(s) (the newest 100, which minEntries keeps; the one "
                  f"read among them), {left_layers} layer(s)")  # fmt: skip
            verdict = "met" if busy["p99_ms"] < 50 else "MISSED"
            print(f"target p99 < 50 ms during cleanup: {verdict}")
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--plays", type=int, default=100_000)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.disable(logging.INFO)
    trio.run(bench, args.plays, args.layers, args.seconds, args.conns, args.batch)


if __name__ == "__main__":
    main()
