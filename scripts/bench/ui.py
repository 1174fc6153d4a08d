"""UI benchmark: server-side render time of the busiest pages beside the JSON API for the same
data, in a company with 1,000 flows and 100,000 plays.

Run: .venv/bin/python scripts/bench/ui.py [--plays 100000] [--flows 1000] [--calls 300]

Each request goes straight into the whole ASGI app (middleware, session cookie auth, RBAC,
request audit, the services, the store, rendering) with no socket: the time measured is the
server's own, from the request's arrival to the last byte of its answer. Pairs:

  flows list    GET /flows                 vs GET /api/flows
  editor        GET /flows/{id}            vs GET /api/flows/{id} + GET /api/modules
  play view     GET /plays/{id}            vs GET /api/plays/{id} + GET /api/plays/{id}/layers
  plays list    GET /plays?state=DONE      vs GET /api/plays?state=DONE

(the JSON side of the editor and the play view is the calls a client makes to draw the same
page). Both sides use the same session cookie. The page and its JSON twin are measured
interleaved, call by call, so machine noise hits both alike; the table shows the median and p95
of each and the ratio of medians. Target: every page under 50 ms server-side.

Seeding: the flows through the flow service; 1,000 real plays through the engine; then the
rest as copies of those stored play documents under new ids, spread over flows, states and
a month of creation times (inserted in batches: running 100,000 plays would take minutes and
measure the engine, not the pages).
"""

from __future__ import annotations

# ruff: noqa: E402  (imports follow the sys.path fix below)
import argparse
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# This directory holds a script named actors.py, which would shadow the actors package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import structlog
import trio

from flow8.app import component_env
from flow8.config import load_settings
from flow8.engine import Engine
from flow8.events import EventBus
from flow8.http import HttpDeps, HttpSettings, create_app
from flow8.modules import default_registry
from flow8.services.audit import AuditLog, AuditQueries, StoreAuditSink
from flow8.services.components import ComponentService
from flow8.services.credentials import CredentialService
from flow8.services.events import EventService
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.identity import IdentityService
from flow8.services.kv import KvService, KvStore
from flow8.services.modules import ModuleCatalog
from flow8.services.plays import PlayService
from flow8.store import Keyring, open_store

REAL_PLAYS = 1000
STATES = ("DONE",) * 8 + ("FAIL", "CANCEL")


def _flow(n: int) -> dict[str, Any]:
    """A three-step flow: a template, a transform with an expression, a filtered step."""
    return {
        "name": f"flow {n:04d}",
        "group": f"group {n % 10}",
        "flowlets": [
            {"ref": "greet", "appId": "template", "args": {"text": "Hello {{ $prev.args.n }}"}},
            {"ref": "double", "appId": "noop", "args": {"value": "{{ $prev.args.n * 2 }}"}},
            {
                "ref": "tail",
                "appId": "noop",
                "args": {"value": 1},
                "filters": [{"leftValue": "{{ $prev.args.n }}", "operator": "gt", "rightValue": 0}],
            },
        ],
    }


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores ({model}); Python {platform.python_version()}; "
        f"load average at start {load}"
    )


async def _call(app: Any, path: str, cookie: str) -> tuple[int, float, int]:
    """One GET straight into the ASGI app: (status, seconds to the last byte, body bytes)."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
        "extensions": {},
    }
    status, size, done = 0, 0, False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))

    start = time.perf_counter()
    await app(scope, receive, send)
    return status, time.perf_counter() - start, size


async def _measure(
    app: Any, cookie: str, page: str, twins: list[str], calls: int
) -> tuple[list[float], list[float], int, int]:
    """Interleaved: the page, then its JSON twin(s), `calls` times after a warm-up."""
    for _ in range(10):
        await _call(app, page, cookie)
        for twin in twins:
            await _call(app, twin, cookie)
    page_times: list[float] = []
    json_times: list[float] = []
    page_bytes = json_bytes = 0
    for _ in range(calls):
        status, seconds, page_bytes = await _call(app, page, cookie)
        assert status == 200, (page, status)
        page_times.append(seconds)
        total, json_bytes = 0.0, 0
        for twin in twins:
            status, seconds, size = await _call(app, twin, cookie)
            assert status == 200, (twin, status)
            total += seconds
            json_bytes += size
        json_times.append(total)
    return page_times, json_times, page_bytes, json_bytes


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


async def _seed_plays(
    store: Any, plays: PlayService, company: str, flow_ids: list[str], total: int
) -> str:
    """REAL_PLAYS real plays, then copies of their documents up to `total`; answers the id of
    a real finished play to view."""
    real: list[str] = []
    async with trio.open_nursery() as nursery:
        limiter = trio.CapacityLimiter(32)

        async def run_one(n: int) -> None:
            async with limiter:
                play = await plays.run(company, flow_ids[n % len(flow_ids)], {"n": n + 1})
                real.append(play.id)

        for n in range(min(REAL_PLAYS, total)):
            nursery.start_soon(run_one, n)
    collection = store.tenant(company).collection("plays")
    templates = await collection.find({"_id": {"$in": real[:50]}})
    rng = random.Random(8)
    now = time.time()
    batch: list[dict[str, Any]] = []
    for n in range(total - len(real)):
        doc = dict(templates[n % len(templates)])
        doc.pop("idempotency_key", None)  # unique per company where present
        created = now - rng.uniform(0, 30 * 86400)
        doc.update(
            _id=uuid.uuid4().hex,
            flow_id=flow_ids[rng.randrange(len(flow_ids))],
            status=rng.choice(STATES),
            created_at=created,
            started_at=created,
            finished_at=created + 0.01,
        )
        batch.append(doc)
        if len(batch) == 5000:
            await collection.insert_many(batch)
            batch = []
    if batch:
        await collection.insert_many(batch)
    return real[0]


async def bench(flow_count: int, play_count: int, calls: int) -> None:
    print(_machine())
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            open_store(
                f"sqlite:///{Path(tmp) / 'flow8.db'}",
                data_dir=tmp,
                durability="normal",  # seeding speed only: the measured requests only read
                encryption=Keyring.generate(),
            ) as store,
            trio.open_nursery() as nursery,
        ):
            audit = AuditLog(StoreAuditSink(store))
            await nursery.start(audit.serve)
            bus = EventBus()
            registry = default_registry()
            repository, kv = FlowRepository(store, registry), KvStore(store)
            credentials = CredentialService(store)
            components = ComponentService(store, component_env(settings))
            engine = Engine(
                store,
                bus,
                None,
                registry,
                flows=repository,
                kv=kv,
                components=components,
                credentials=credentials,
            )
            await nursery.start(bus.serve)
            await nursery.start(engine.serve)
            identity = IdentityService(store, audit=audit.record)
            await identity.install("Bench", "bench@example.com", "bench-password-1")
            login = await identity.login(
                "bench@example.com", "bench-password-1", ip="bench", user_agent="bench"
            )
            company = login.principal.company_id
            assert company is not None
            flows = FlowService(repository, components=components, credentials=credentials)
            plays = PlayService(engine)
            started = time.perf_counter()
            flow_ids = [(await flows.create(company, _flow(n))).id for n in range(flow_count)]
            play_id = await _seed_plays(store, plays, company, flow_ids, play_count)
            print(
                f"seeded {flow_count:,} flows and {play_count:,} plays "
                f"({REAL_PLAYS:,} run by the engine) in {time.perf_counter() - started:.1f} s"
            )
            app = create_app(
                HttpDeps(
                    settings=HttpSettings(),
                    identity=identity,
                    flows=flows,
                    plays=plays,
                    kv=KvService(kv),
                    credentials=credentials,
                    components=components,
                    events=EventService(bus),
                    modules=ModuleCatalog(registry),
                    audit=audit.record,
                    audit_queries=AuditQueries(store),
                )
            )
            cookie = f"flow8_session={login.token}"
            flow_id = flow_ids[len(flow_ids) // 2]
            cases = [
                ("flows list", "/flows", ["/api/flows"]),
                ("editor", f"/flows/{flow_id}", [f"/api/flows/{flow_id}", "/api/modules"]),
                (
                    "play view",
                    f"/plays/{play_id}",
                    [f"/api/plays/{play_id}", f"/api/plays/{play_id}/layers"],
                ),
                ("plays list", "/plays?state=DONE", ["/api/plays?state=DONE"]),
            ]
            print(f"{calls} interleaved calls per case after 10 warm-up calls; times in ms")
            print()
            header = (
                f"{'page':<12}{'page p50':>10}{'p95':>8}{'json p50':>10}{'p95':>8}"
                f"{'page/json':>11}{'page KB':>9}{'json KB':>9}"
            )
            print(header)
            print("-" * len(header))
            worst = 0.0
            for name, page, twins in cases:
                page_t, json_t, page_b, json_b = await _measure(app, cookie, page, twins, calls)
                p50, j50 = statistics.median(page_t), statistics.median(json_t)
                worst = max(worst, _p95(page_t))
                print(
                    f"{name:<12}{p50 * 1e3:>10.2f}{_p95(page_t) * 1e3:>8.2f}"
                    f"{j50 * 1e3:>10.2f}{_p95(json_t) * 1e3:>8.2f}{p50 / j50:>10.2f}x"
                    f"{page_b / 1024:>9.1f}{json_b / 1024:>9.1f}"
                )
            print()
            verdict = "met" if worst < 0.050 else "MISSED"
            worst_ms = f"worst p95 {worst * 1e3:.1f} ms"
            print(f"target: every page under 50 ms server-side ({worst_ms}): {verdict}")
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--plays", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.disable(logging.INFO)
    trio.run(bench, args.flows, max(args.plays, REAL_PLAYS), args.calls)


if __name__ == "__main__":
    main()
