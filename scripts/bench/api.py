"""HTTP API benchmark: the full flow8 stack beside a bare Quart-Trio route on the same server.

Run: .venv/bin/python scripts/bench/api.py [--seconds 4] [--rounds 3] [--durability full|normal]
     [--metrics on|off]

Setup: the load generator is `wrk` (Debian: `apt-get install wrk`), run as a separate process
so it does not share the server's event loop; without wrk the script falls back to an
httpx-based generator in a subprocess (slower: it then measures the generator as much as the
server, and says so).

Measures requests/s and p99 latency at 1, 16 and 64 concurrent connections for:
  bare   GET /bare/ok - a bare Quart-Trio JSON route (no auth, audit, headers), mounted on the
         same Hypercorn server through TrioDispatcherMiddleware: the baseline
  me     GET /api/auth/me - the middleware alone: API key auth (cached), RBAC, request audit,
         security headers, correlation id, JSON rendering; no store read
  get    GET /api/plays/{id} - the same plus one store read of the play
  run    POST /api/flows/{id}/run - the same plus starting and persisting a 1-step play
  quiet  GET /api/plays/{id} again, on a second flow8 app (its own port, same process and
         store) whose request audit trail is switched off: what `get` would serve if
         auditing cost nothing, shown for attribution only (the audit is required)

Honesty: every case is warmed up first; then each round measures every case at every
connection count, interleaved (bare, me, get, run at 1, then at 16, ...) so a change in machine
load during the run hits all cases alike; the table shows the median of the rounds (and the
spread of req/s), and the ratios compare medians measured in this same run.

The apps count their metrics (`GET /metrics`), as a server with FLOW8_ADMIN_TOKEN set does;
`--metrics off` measures them without, to see what counting costs.

Targets: the full middleware stack costs under 30% of the bare route's throughput,
judged on `get`, with `me` shown as the pure-middleware figure; `run`
>= 600 runs/s with p99 < 100 ms at 64 connections.

Before the load, "where the time goes" times the pieces of the `get` path in-process (CPU
microseconds per call, no network), so a miss can be attributed to the layer that owns it.
"""

from __future__ import annotations

# ruff: noqa: E402  (imports follow the sys.path fix below)
import argparse
import json
import logging
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

# This directory holds a script named actors.py, which would shadow the actors package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import attrs
import structlog
import trio
from hypercorn.middleware.dispatcher import TrioDispatcherMiddleware
from hypercorn.trio import serve
from quart import Response
from quart_trio import QuartTrio

from flow8.domain import api
from flow8.engine import Engine
from flow8.events import EventBus
from flow8.http import HttpDeps, HttpSettings, create_app
from flow8.http._engine_models import PlayOut
from flow8.http._responses import json_response
from flow8.http._serve import hypercorn_config
from flow8.interpreter import settle_after_startup
from flow8.modules import default_registry
from flow8.services.audit import AuditLog, AuditQueries, StoreAuditSink
from flow8.services.events import EventService
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.identity import IdentityService
from flow8.services.kv import KvService, KvStore
from flow8.services.metrics import Metrics
from flow8.services.modules import ModuleCatalog
from flow8.services.plays import PlayService
from flow8.store import Keyring, Store, open_store

CONCURRENCY = (1, 16, 64)
CASES = ("bare", "me", "get", "quiet", "run")
FLOW = {"name": "bench", "flowlets": [{"ref": "a", "appId": "noop", "args": {"value": 1}}]}

LOADGEN = textwrap.dedent(
    """
    import sys, time, json, trio, httpx
    url, method, body, conns, seconds, auth = sys.argv[1:7]
    conns, seconds = int(conns), float(seconds)
    lat = []
    async def worker(client, stop):
        while trio.current_time() < stop:
            t = time.perf_counter()
            if method == "GET":
                await client.get(url)
            else:
                await client.post(url, content=body)
            lat.append(time.perf_counter() - t)
    async def main():
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
            stop = trio.current_time() + seconds
            async with trio.open_nursery() as n:
                for _ in range(conns):
                    n.start_soon(worker, client, stop)
    trio.run(main)
    lat.sort()
    print(json.dumps({"rps": len(lat) / seconds, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000}))
    """
)

Result = dict[str, float]
Generator = Callable[[str, str, str, int, float, str], Awaitable[Result]]


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if m is None:
        raise ValueError(f"unparsable wrk latency {value!r}")
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return float(m.group(1)) * factor


async def _wrk(url: str, method: str, body: str, conns: int, seconds: float, auth: str) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "{method}"\n')
        script.write(f"wrk.body = {json.dumps(body)}\n")
        script.write('wrk.headers["Content-Type"] = "application/json"\n')
        if auth:
            script.write(f'wrk.headers["Authorization"] = "{auth}"\n')
    duration = f"-d{max(1, round(seconds))}s"
    cmd = ["wrk", "-t1", f"-c{conns}", duration, "--latency", "-s", script.name, url]
    try:
        proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)
    finally:
        os.unlink(script.name)
    out = proc.stdout.decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # The distribution line, not a "+/- Stdev" column that happens to end in 99%.
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    return {"rps": rps, "p99_ms": p99, "errors": errors}


async def _httpx(url: str, method: str, body: str, conns: int, seconds: float, auth: str) -> Result:
    cmd = [sys.executable, "-c", LOADGEN, url, method, body, str(conns), str(seconds), auth]
    proc = await trio.run_process(cmd, capture_stdout=True)
    result: Result = json.loads(proc.stdout)
    result["errors"] = 0
    return result


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
        f"machine: {os.cpu_count()} cores ({model}); Python {platform.python_version()} "
        f"({platform.python_implementation()}); {platform.system()} {platform.release()}; "
        f"load average at start {load}"
    )


async def _per_call(fn: Callable[[], Awaitable[Any]], n: int = 2000) -> float:
    """Median over 3 runs of the CPU microseconds one call costs (all threads counted)."""
    runs = []
    for _ in range(3):
        start = time.process_time()
        for _ in range(n):
            await fn()
        runs.append((time.process_time() - start) / n * 1e6)
    return statistics.median(runs)


async def _breakdown(store: Store, plays: PlayService, company: str, play_id: str) -> None:
    coll = store.tenant(company).collection("plays")
    play = await plays.get(company, play_id)

    async def hop() -> None:
        await trio.to_thread.run_sync(int)

    async def find_one() -> None:
        await coll.find_one({"_id": play_id})

    async def get_play() -> None:
        await plays.get(company, play_id)

    async def render() -> None:
        json_response(api.unstructure(PlayOut.of(play)))

    print("where the time goes on the get path (in-process, CPU us per call, median of 3):")
    figures = [
        ("worker-thread hop, no work (point reads skip it)", await _per_call(hop)),
        ("store find_one of the play (store)", await _per_call(find_one)),
        ("PlayService.get = find_one + play_from_doc (engine)", await _per_call(get_play)),
        ("PlayOut + api.unstructure + json_response (http)", await _per_call(render)),
    ]
    for label, value in figures:
        print(f"  {label:<54}{value:>8.1f}")
    print()


async def _asgi_call(app: Any, method: str, path: str, auth: str, body: bytes) -> int:
    """One request straight into the ASGI app: no socket, no HTTP parsing."""
    headers = [(b"host", b"bench"), (b"content-type", b"application/json")]
    if auth:
        headers.append((b"authorization", auth.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
        "extensions": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _in_process(app: Any, urls: dict[str, tuple[str, str, str, str]]) -> None:
    print("the same routes called in-process (ASGI, no socket; CPU us per request, median of 3):")
    bare_cost = 0.0
    for name in ("bare", "me", "get"):
        method, path, body, auth = urls[name]

        async def call(
            method: str = method, path: str = path, auth: str = auth, body: str = body
        ) -> None:
            status = await _asgi_call(app, method, path, auth, body.encode())
            assert status == 200, (path, status)

        cost = await _per_call(call)
        bare_cost = cost if name == "bare" else bare_cost
        extra = f"  (+{cost - bare_cost:.1f} over bare)" if name != "bare" else ""
        print(f"  {name:<6}{cost:>8.1f}{extra}")
    print()


def _median(rows: list[Result], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _report(
    results: dict[tuple[str, int], list[Result]], cases: list[str], conc: list[int]
) -> None:
    print(f"medians of {len(next(iter(results.values())))} rounds")
    print(f"{'case':<6}{'conns':>6}{'req/s':>10}{'(min-max)':>16}{'p99 ms':>10}{'non-2xx':>9}")
    for name in cases:
        for conns in conc:
            rows = results[(name, conns)]
            low, high = min(r["rps"] for r in rows), max(r["rps"] for r in rows)
            errors = int(sum(r["errors"] for r in rows))
            print(
                f"{name:<6}{conns:>6}{_median(rows, 'rps'):>10.0f}"
                f"{f'({low:.0f}-{high:.0f})':>16}{_median(rows, 'p99_ms'):>10.1f}{errors:>9}"
            )
    print()
    if "bare" in cases:
        for name, label in (
            ("get", "full stack + one store read: the 30% target is judged here"),
            ("me", "pure middleware, no store read: shown for attribution"),
            ("quiet", "get with the request audit switched off: shown for attribution"),
        ):
            if name not in cases:
                continue
            print(f"{name} vs bare ({label}):")
            for conns in conc:
                share = _median(results[(name, conns)], "rps") / _median(
                    results[("bare", conns)], "rps"
                )
                verdict = "meets" if share >= 0.70 else "MISSES"
                print(
                    f"  at {conns:>2} conns: {share:.0%} of bare throughput, cost {1 - share:.0%} "
                    f"({verdict} target < 30%)"
                )
    if ("run", 64) in results:
        rps, p99 = _median(results[("run", 64)], "rps"), _median(results[("run", 64)], "p99_ms")
        verdict = "meets" if rps >= 600 and p99 < 100 else "MISSES"
        print(
            f"run at 64 conns: {rps:.0f} runs/s, p99 {p99:.1f} ms "
            f"({verdict} target >= 600 runs/s with p99 < 100 ms)"
        )


async def bench(
    seconds: float, rounds: int, durability: str, cases: list[str], conc: list[int], metered: bool
) -> None:
    print(_machine())
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            open_store(
                f"sqlite:///{Path(tmp) / 'flow8.db'}",
                data_dir=tmp,
                durability=durability,  # type: ignore[arg-type]
                encryption=Keyring.generate(),
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
            await _breakdown(store, plays, company, play.id)
            deps = HttpDeps(
                settings=HttpSettings(),
                identity=identity,
                flows=flows,
                plays=plays,
                kv=KvService(kv),
                events=EventService(bus),
                modules=ModuleCatalog(registry),
                audit=audit.record,
                audit_queries=AuditQueries(store),
                metrics=Metrics.of(engine, bus, store) if metered else None,
            )
            app = create_app(deps)
            bare = QuartTrio("bare")

            async def ok() -> Response:
                return Response(b'{"ok":true}', content_type="application/json")

            bare.add_url_rule("/ok", view_func=ok, methods=["GET"])
            config = hypercorn_config("127.0.0.1", 0, graceful_timeout=1.0)  # as served
            config.errorlog = None
            both = TrioDispatcherMiddleware({"/bare": bare, "": app})
            binds = await nursery.start(partial(serve, both, config))
            # Behind a dispatcher too, so the only difference from `get` is the audit trail.
            unaudited = create_app(attrs.evolve(deps, audit=lambda _entry: None))
            quiet = TrioDispatcherMiddleware({"": unaudited})
            quiet_binds = await nursery.start(partial(serve, quiet, config))
            settle_after_startup()  # as `flow8 serve` does once it is up
            base = binds[0]
            generator: Generator = _wrk if shutil.which("wrk") else _httpx
            print(f"load generator: {'wrk' if generator is _wrk else 'httpx subprocess (no wrk)'}")
            print(
                f"store durability: {durability}; {seconds:g}s per measurement; "
                f"{rounds} rounds after a warm-up; metrics {'on' if metered else 'off'}"
            )
            auth = f"Bearer {key}"
            urls = {
                "bare": ("GET", f"{base}/bare/ok", "", ""),
                "me": ("GET", f"{base}/api/auth/me", "", auth),
                "get": ("GET", f"{base}/api/plays/{play.id}", "", auth),
                "run": ("POST", f"{base}/api/flows/{flow.id}/run", '{"n":1}', auth),
                "quiet": ("GET", f"{quiet_binds[0]}/api/plays/{play.id}", "", auth),
            }
            await _in_process(
                both, {k: (m, u.removeprefix(base), b, a) for k, (m, u, b, a) in urls.items()}
            )
            for name in cases:  # warm-up: code paths, caches, connections
                method, url, body, case_auth = urls[name]
                await generator(url, method, body, 16, 1.0, case_auth)
            results: dict[tuple[str, int], list[Result]] = {}
            for round_no in range(1, rounds + 1):
                print(f"round {round_no}/{rounds} ...", flush=True)
                for conns in conc:
                    for name in cases:
                        method, url, body, case_auth = urls[name]
                        r = await generator(url, method, body, conns, seconds, case_auth)
                        results.setdefault((name, conns), []).append(r)
            print()
            _report(results, cases, conc)
            await audit.wait_idle()
            print(f"audit entries written: {audit.written}, dropped: {audit.dropped}")
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    parser.add_argument("--only", default="", help="comma list of cases: bare,me,get,quiet,run")
    parser.add_argument("--conns", default="1,16,64", help="comma list of connection counts")
    parser.add_argument("--metrics", choices=["on", "off"], default="on")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c in args.only.split(",")]
    conc = [int(c) for c in args.conns.split(",")]
    # The store logs its opening; keep log lines out of the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.disable(logging.INFO)
    metered = args.metrics == "on"
    trio.run(bench, args.seconds, max(1, args.rounds), args.durability, cases, conc, metered)


if __name__ == "__main__":
    main()
