"""HTTP API benchmark: the full flow8 stack beside a bare Quart-Trio route on the same server.

Run: .venv/bin/python scripts/bench/api.py [--seconds 5] [--durability full|normal]

Setup: the load generator is `wrk` (Debian: `apt-get install wrk`), run as a separate process
so it does not share the server's event loop; without wrk the script falls back to an
httpx-based generator in a subprocess (slower: it then measures the generator as much as the
server, and says so).

Measures requests/s and p99 latency at 1, 16 and 64 concurrent connections for:
  bare   GET /bare/ok — a bare Quart-Trio JSON route (no auth, audit, headers), mounted on the
         same Hypercorn server through TrioDispatcherMiddleware
  me     GET /api/auth/me — the middleware alone: API key auth (cached), RBAC, audit entry,
         security headers, no store read
  get    GET /api/plays/{id} — the same plus a store read of the play
  run    POST /api/flows/{id}/run — the same plus starting and persisting a 1-step play
Targets: `get` keeps >= 70% of `bare` throughput (middleware < 30% cost); `run` >= 600/s with
p99 < 100 ms at 64 connections.
"""

from __future__ import annotations

# ruff: noqa: E402  (imports follow the sys.path fix below)
import argparse
import json
import re
import shutil
import sys
import tempfile
import textwrap
from functools import partial
from pathlib import Path

# This directory holds a script named actors.py, which would shadow the actors package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import trio
from hypercorn.config import Config
from hypercorn.middleware.dispatcher import TrioDispatcherMiddleware
from hypercorn.trio import serve
from quart import Response
from quart_trio import QuartTrio

from flow8.engine import Engine, EventBus
from flow8.http import HttpDeps, HttpSettings, create_app
from flow8.services.audit import AuditLog, StoreAuditSink
from flow8.services.flows import FlowService
from flow8.services.identity import IdentityService
from flow8.services.kv import KvService
from flow8.services.plays import PlayService
from flow8.store import Keyring, open_store

CONCURRENCY = (1, 16, 64)
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


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if m is None:
        raise ValueError(f"unparsable wrk latency {value!r}")
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return float(m.group(1)) * factor


async def _wrk(
    url: str, method: str, body: str, conns: int, seconds: float, auth: str
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "{method}"\n')
        script.write(f"wrk.body = {json.dumps(body)}\n")
        script.write('wrk.headers["Content-Type"] = "application/json"\n')
        if auth:
            script.write(f'wrk.headers["Authorization"] = "{auth}"\n')
    duration = f"-d{max(1, round(seconds))}s"
    cmd = ["wrk", "-t1", f"-c{conns}", duration, "--latency", "-s", script.name, url]
    proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True)
    out = proc.stdout.decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    return {"rps": rps, "p99_ms": p99, "errors": errors}


async def _httpx(
    url: str, method: str, body: str, conns: int, seconds: float, auth: str
) -> dict[str, float]:
    cmd = [sys.executable, "-c", LOADGEN, url, method, body, str(conns), str(seconds), auth]
    proc = await trio.run_process(cmd, capture_stdout=True)
    result: dict[str, float] = json.loads(proc.stdout)
    result["errors"] = 0
    return result


async def bench(seconds: float, durability: str, only: set[str], conc: tuple[int, ...]) -> None:
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
            engine = Engine(store, bus)
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
            flows, plays = FlowService(engine), PlayService(engine)
            flow = await flows.create(company, FLOW)
            play = await plays.run(company, flow.id, {"n": 0}, timeout=10)
            app = create_app(
                HttpDeps(
                    settings=HttpSettings(),
                    identity=identity,
                    store=store,
                    flows=flows,
                    plays=plays,
                    kv=KvService(engine.kv),
                    events=bus,
                    modules=engine.registry,
                    audit=audit.record,
                )
            )
            bare = QuartTrio("bare")

            async def ok() -> Response:
                return Response(b'{"ok":true}', content_type="application/json")

            bare.add_url_rule("/ok", view_func=ok, methods=["GET"])
            config = Config()
            config.bind = ["127.0.0.1:0"]
            config.accesslog = None
            config.errorlog = None
            both = TrioDispatcherMiddleware({"/bare": bare, "": app})
            binds = await nursery.start(partial(serve, both, config))
            base = binds[0]
            generator = _wrk if shutil.which("wrk") else _httpx
            print(f"load generator: {'wrk' if generator is _wrk else 'httpx subprocess (no wrk)'}")
            print(f"store durability: {durability}; {seconds:g}s per measurement; 2 shared cores")
            auth = f"Bearer {key}"
            cases = [
                ("bare", "GET", f"{base}/bare/ok", "", ""),
                ("me", "GET", f"{base}/api/auth/me", "", auth),
                ("get", "GET", f"{base}/api/plays/{play.id}", "", auth),
                ("run", "POST", f"{base}/api/flows/{flow.id}/run", '{"n":1}', auth),
            ]
            results: dict[tuple[str, int], dict[str, float]] = {}
            await generator(cases[2][2], "GET", "", 4, 1.0, auth)  # warm-up
            print(f"{'case':<6}{'conns':>6}{'req/s':>10}{'p99 ms':>10}{'non-2xx':>9}")
            for name, method, url, body, case_auth in cases:
                if only and name not in only:
                    continue
                for conns in conc:
                    r = await generator(url, method, body, conns, seconds, case_auth)
                    results[(name, conns)] = r
                    print(
                        f"{name:<6}{conns:>6}{r['rps']:>10.0f}{r['p99_ms']:>10.1f}"
                        f"{int(r['errors']):>9}",
                        flush=True,
                    )
            print()
            complete = not only and conc == CONCURRENCY
            for name in ("me", "get") if complete else ():
                for conns in CONCURRENCY:
                    share = results[(name, conns)]["rps"] / results[("bare", conns)]["rps"]
                    print(
                        f"{name} vs bare at {conns:>2}: {share:.0%} of bare throughput "
                        f"(cost {1 - share:.0%}; target < 30%)"
                    )
            run64 = results.get(("run", 64), {"rps": 0.0, "p99_ms": 0.0})
            verdict = "meets" if run64["rps"] >= 600 and run64["p99_ms"] < 100 else "MISSES"
            print(
                f"run at 64: {run64['rps']:.0f} runs/s, p99 {run64['p99_ms']:.1f} ms "
                f"({verdict} target >= 600 runs/s, p99 < 100 ms)"
            )
            await audit.wait_idle()
            print(f"audit entries written: {audit.written}, dropped: {audit.dropped}")
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    parser.add_argument("--only", default="", help="comma list of cases: bare,get,run")
    parser.add_argument("--conns", default="1,16,64", help="comma list of connection counts")
    args = parser.parse_args()
    only = {c for c in args.only.split(",") if c}
    conc = tuple(int(c) for c in args.conns.split(","))
    trio.run(bench, args.seconds, args.durability, only, conc)


if __name__ == "__main__":
    main()
