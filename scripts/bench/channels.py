"""Channel benchmark: a 1-step flow through an http channel route (sync) beside the REST run
route and a bare route, on one running flow8 instance, with the peer comparison's load
generator.

Run: .venv/bin/python scripts/bench/channels.py [--seconds 6] [--warmup 2] [--rounds 2]
     [--loadgen ../shared/bench/loadgen.py] [--durability full|normal]

Setup: the whole supervision tree as ``flow8 serve`` runs it (``flow8.app.open_platform``:
store with durability ``full`` as shipped, engine, jobs, http on a free port, the channels
supervisor with its listeners), one company with an API key, a flow of one ``noop`` step, an
http channel (public auth) with a sync route ``POST /hook`` to that flow. In the same process
and Trio loop, a bare Quart-Trio JSON route on its own Hypercorn server: the floor a Python
HTTP answer costs here.

Cases, each at 1, 16 and 64 connections (``loadgen.py`` closed loop, keep-alive, a separate
process; it counts only 200 answers):
  bare     GET /ok on the bare server
  rest     POST /api/flows/{id}/run?wait=10 with the API key (session/key lookup, RBAC,
           CSRF rules, request audit, the play started and waited for)
  channel  POST http://127.0.0.1:<channel port>/hook (the channel's route match, auth mode,
           rate limit, audit, the same play started and waited for)

Rounds interleave the cases at each connection count (bare, rest, channel at 1, then at 16,
...) so a change in machine load hits all alike; the table shows the median of the rounds.
Afterwards every play is counted in the store: each 200 answer of rest and channel is a
stored, finished play (``durable``: the store's durability is ``full``, fsync per group commit).

Target: channel plays/s > rest plays/s at every connection count.
"""

from __future__ import annotations

# ruff: noqa: E402  (imports follow the sys.path fix below)
import argparse
import json
import logging
import os
import platform
import socket
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

# This directory holds a script named actors.py, which would shadow the actors package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import httpx
import structlog
import trio
from hypercorn.trio import serve
from quart import Response
from quart_trio import QuartTrio

from flow8.app import open_platform
from flow8.config import load_settings
from flow8.http._serve import hypercorn_config

ROOT = Path(__file__).resolve().parents[2]
FLOW = {"name": "bench", "flowlets": [{"ref": "a", "appId": "noop", "args": {"value": 1}}]}
CONNS = (1, 16, 64)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _free_block(size: int = 4) -> tuple[int, int]:
    """A block of ``size`` consecutive free ports (for CHANNEL_PORT_RANGE)."""
    for _ in range(50):
        first = _free_port()
        if first + size > 65535:
            continue
        try:
            for p in range(first, first + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return first, first + size - 1
    raise RuntimeError("no block of free ports")


def _machine() -> str:
    cpus = os.cpu_count()
    return f"{platform.node()}: {cpus} cpu(s), Python {platform.python_version()}"


async def _load(
    loadgen: Path, url: str, conns: int, seconds: float, warmup: float, method: str,
    body: str = "", headers: tuple[str, ...] = (),
) -> dict[str, Any]:  # fmt: skip
    cmd = [sys.executable, str(loadgen), "--url", url, "--method", method,
           "--concurrency", str(conns), "--duration", str(seconds),
           "--warmup", str(warmup)]  # fmt: skip
    if body:
        cmd += ["--body", body]
    for h in headers:
        cmd += ["--header", h]
    proc = await trio.run_process(cmd, capture_stdout=True)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


async def _setup(base: str, platform_: Any) -> tuple[str, str, int, str]:
    """Company, API key, the flow and an http channel with a sync route; answers
    (auth header, flow id, channel port, company id)."""
    identity = platform_.identity
    await identity.install("Bench", "bench@example.com", "bench-password-1")
    login = await identity.login(
        "bench@example.com", "bench-password-1", ip="bench", user_agent="bench"
    )
    key = (await identity.create_api_key(login.principal, "bench", ["api"])).key
    auth = f"Bearer {key}"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": auth}) as client:
        r = await client.post("/api/flows", json=FLOW)
        r.raise_for_status()
        flow_id = r.json()["id"]
        r = await client.post(
            "/api/channels",
            json={"name": "bench", "kind": "http", "authMode": "public", "ratePerSecond": 100_000},
        )
        r.raise_for_status()
        channel = r.json()
        r = await client.post(
            f"/api/channels/{channel['id']}/routes",
            json={"name": "hook", "httpMethod": "POST", "path": "/hook",
                  "targetFlowIds": [flow_id], "responseMode": "sync", "timeoutSeconds": 10},
        )  # fmt: skip
        r.raise_for_status()
    company: str = login.principal.company_id
    return auth, flow_id, int(channel["port"]), company


async def _wait_listening(port: int) -> None:
    with trio.fail_after(10):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return


async def bench(args: argparse.Namespace) -> None:
    first, last = _free_block()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "FLOW8_DATA_DIR": tmp,
            "SERVER_PORT": str(_free_port()),
            "MCP_PORT": str(_free_port()),
            "CHANNEL_PORT_RANGE": f"{first}-{last}",
            "FLOW8_STORE_DURABILITY": args.durability,
            "FLOW8_COMPANY_PLAYS_PER_SECOND": "0",  # no start-rate limit: measure the path
        }
        settings = load_settings(ROOT / "conf" / "config.yml", env=env)
        async with open_platform(settings) as flow8, trio.open_nursery() as nursery:
            bare = QuartTrio("bare")

            @bare.route("/ok")
            async def ok() -> Response:
                return Response(b'{"ok":true}', content_type="application/json")

            config = hypercorn_config("127.0.0.1", 0, graceful_timeout=1.0)
            config.errorlog = None
            binds = await nursery.start(serve, bare, config)
            base = f"http://127.0.0.1:{settings.server_port}"
            auth, flow_id, port, company = await _setup(base, flow8)
            await _wait_listening(port)
            cases = {
                "bare": (f"{binds[0]}/ok", "GET", "", ()),
                "rest": (f"{base}/api/flows/{flow_id}/run?wait=10", "POST", '{"n": 1}',
                         (f"Authorization: {auth}", "Content-Type: application/json")),
                "channel": (f"http://127.0.0.1:{port}/hook", "POST", '{"n": 1}',
                            ("Content-Type: application/json",)),
            }  # fmt: skip
            print(f"machine: {_machine()}; store durability {args.durability}")
            print(f"load generator: {args.loadgen} (separate process, closed loop, keep-alive); "
                  f"{args.rounds} round(s) x {args.seconds:g}s (+{args.warmup:g}s warm-up) "
                  f"per case and connection count")  # fmt: skip
            rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
            for _ in range(args.rounds):
                for conns in CONNS:
                    for name, (url, method, body, headers) in cases.items():
                        r = await _load(
                            args.loadgen, url, conns, args.seconds, args.warmup, method, body,
                            headers,
                        )  # fmt: skip
                        if r.get("first_error"):
                            print(f"  {name} at {conns}: errors {r['errors']}, first: "
                                  f"{r['first_error']}")  # fmt: skip
                        rows.setdefault((name, conns), []).append(r)
            print()
            print(f"{'case':9}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}  rounds (req/s)")
            medians: dict[tuple[str, int], float] = {}
            for conns in CONNS:
                for name in cases:
                    got = rows[(name, conns)]
                    rps = statistics.median(r["rps"] for r in got)
                    medians[(name, conns)] = rps
                    p50 = statistics.median(r["p50_ms"] for r in got)
                    p99 = statistics.median(r["p99_ms"] for r in got)
                    spread = ", ".join(f"{r['rps']:.0f}" for r in got)
                    print(f"{name:9}{conns:>6}{rps:>10.0f}{p50:>9.2f}{p99:>9.2f}  {spread}")
            print()
            for conns in CONNS:
                ch, rest = medians[("channel", conns)], medians[("rest", conns)]
                verdict = "met" if ch > rest else "MISSED"
                floor = ch / medians[("bare", conns)]
                print(f"{conns:>3} connections: channel/rest = {ch / rest:.2f}x "
                      f"(channel/bare {floor:.2f}x) -> {verdict}")  # fmt: skip
            # Durable: every play answered is in the store, finished.
            plays = flow8.store.tenant(company).collection("plays")
            stored = await plays.count({"status": "DONE"})
            total = await plays.count({})
            sent_ok = sum(r["ok"] for (n, _), rs in rows.items() if n != "bare" for r in rs)
            print(f"\nplays in the store: {total:,} ({stored:,} DONE); 200 answers counted in the "
                  f"measured windows: {sent_ok:,} (warm-ups add more plays) -> every answered "
                  f"play stored: {'met' if stored >= sent_ok else 'MISSED'}")  # fmt: skip
            nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--durability", choices=("full", "normal"), default="full")
    parser.add_argument(
        "--loadgen", type=Path, default=ROOT.parent / "shared" / "bench" / "loadgen.py"
    )
    args = parser.parse_args()
    if not args.loadgen.exists():
        raise SystemExit(f"no load generator at {args.loadgen}: pass --loadgen PATH")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.disable(logging.INFO)
    trio.run(bench, args)


if __name__ == "__main__":
    main()
