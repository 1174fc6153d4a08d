"""Component benchmarks: what a step's component call costs beside the bare library call, to
the same server, measured in the same run. Prints medians.

(a) `curl` against a plain HTTP server on loopback (a threaded http.server in its own
    process, keep-alive, a 15-byte JSON answer); the request component's config is
    {"allowedCidrs": ["127.0.0.1/32"]}. Baseline: a bare httpx.AsyncClient GET to the same
    URL. Measured two ways:
      module  the curl module's run function, called as the engine calls it, with the step's
              request component resolved by the components service (the real provider: seam,
              outbound guard, response decoding): what the step itself adds, per request;
      flow    a saved flow of 40 curl steps beside a flow of 40 noop steps, each run to its
              end through the engine (sqlite store, durability full): the curl step's
              marginal cost (curl step - noop step), i.e. the step's own cost without the
              engine's per-step bookkeeping that every step pays.
    Target: a curl step adds under 0.5 ms (median) over bare httpx, judged on both.
(b) The outbound guard alone: flow8.outbound.OutboundClient (resolve-once, address check,
    pinned connection, size and time limits) beside a bare httpx.AsyncClient, same server.
(c) `db-query` (SELECT 1) against a throwaway PostgreSQL on loopback (support.sql_servers),
    beside a bare psycopg round trip on one open connection (in this thread, and through
    trio.to_thread as the provider runs it), the provider operation through the seam, and
    the marginal cost of a db-query step in a 40-step flow. The provider's call is one
    transaction: BEGIN + SET LOCAL statement_timeout, the statement (streamed),
    COMMIT: three round trips where the bare baseline makes one. MariaDB is shown beside it
    when its binaries are installed.

Honesty: every case is warmed up first; then rounds interleave the cases (bare, guarded,
module, ... then again), so a change in machine load hits all of them alike; each figure is
the median over the rounds of each round's median per call. The HTTP server runs in its own
process (its GIL is not the client's).

Usage: .venv/bin/python scripts/bench/components.py [--quick]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

# Run as a script, this directory would come first on sys.path, where the sibling
# benchmark actors.py would shadow the actors package.
_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path[:0] = [str(_ROOT), str(_ROOT / "tests"), str(_ROOT / "tests" / "components")]

import attrs  # noqa: E402
import httpx  # noqa: E402
import trio  # noqa: E402
from components_kit import COMPANY, Kit, component_kit  # noqa: E402
from support import sql_servers  # noqa: E402

from flow8.components import ComponentHandle  # noqa: E402
from flow8.domain import PlayState  # noqa: E402
from flow8.logs import configure_logging  # noqa: E402
from flow8.modules import default_registry  # noqa: E402
from flow8.outbound import OutboundClient, OutboundPolicy  # noqa: E402

QUICK = "--quick" in sys.argv
ROUNDS = 3 if QUICK else 7
CALLS = 100 if QUICK else 300  # per case per round
STEPS = 40
FLOW_RUNS = 2 if QUICK else 4  # plays per flow per round

SERVER = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    BODY = b'{"ok": true, "n": 1}'
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one answer, one segment: no delayed-ACK stall
        wbufsize = 1 << 16  # headers and body written together at the end of the request
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)

Call = Callable[[], Awaitable[Any]]


def machine() -> str:
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


async def per_call_ms(fn: Call, n: int) -> float:
    """The median of ``n`` timed calls, in milliseconds."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def interleaved(cases: Mapping[str, Call], n: int = CALLS) -> dict[str, float]:
    """Each case warmed up, then ROUNDS rounds of every case in turn: the median of the
    rounds' medians per case."""
    for fn in cases.values():
        await per_call_ms(fn, max(20, n // 10))
    rounds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            rounds[name].append(await per_call_ms(fn, n))
    return {name: statistics.median(values) for name, values in rounds.items()}


@attrs.define
class StepContext:
    """What the engine hands a module, for calling one directly: its company, and its
    components resolved by the components service (the module's only use here)."""

    kit: Kit
    company_id: str = COMPANY
    flow_id: str = "bench"
    play_id: str = "bench"
    ref: str = "step"
    component_config_ids: Mapping[str, str] = attrs.Factory(dict)

    async def component(self, kind: str) -> ComponentHandle:
        return await self.kit.components.resolve(self.company_id, kind, None)

    async def credential(self, credential_id: str) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def log_line(self, line: Mapping[str, Any]) -> None:
        pass


async def flow_per_step_ms(kit: Kit, flowlets: list[dict[str, Any]]) -> Call:
    """A saved flow of ``flowlets``; the call runs it once and answers ms per step."""
    flow = await kit.flows.create(COMPANY, {"name": "bench", "flowlets": flowlets})

    async def run_once() -> float:
        t0 = time.perf_counter()
        started = await kit.engine.start_play(COMPANY, flow.id, None)
        play = await kit.engine.wait_play(COMPANY, started.id, timeout=120)
        if play.state is not PlayState.DONE:
            raise RuntimeError(f"the benchmark flow failed: {play.error}")
        return (time.perf_counter() - t0) * 1000 / len(flowlets)

    return run_once


UNSAFE_NOOP = "bench-noop-not-idempotent"


def register_unsafe_noop(kit: Kit) -> None:
    """``noop`` declared not idempotent: the engine makes the play's earlier writes durable
    before running such a step (as it does before a db-query), so it is the db step's
    fair engine baseline."""
    noop = kit.engine.registry.get("noop")
    kit.engine.registry.register(attrs.evolve(noop, app_id=UNSAFE_NOOP, idempotent=False))


async def flow_marginal(
    kit: Kit, step: dict[str, Any], noop_app: str = "noop"
) -> tuple[float, float]:
    """(ms per ``step`` in a flow of STEPS of them, ms per ``noop_app`` step in a flow of
    STEPS): medians over rounds, the two flows interleaved."""
    many = await flow_per_step_ms(kit, [{"ref": f"s{i}", **step} for i in range(STEPS)])
    noop = await flow_per_step_ms(
        kit, [{"ref": f"s{i}", "appId": noop_app, "args": {}} for i in range(STEPS)]
    )
    await many()
    await noop()
    steps: list[float] = []
    noops: list[float] = []
    for _ in range(ROUNDS):
        steps.append(statistics.median([await many() for _ in range(FLOW_RUNS)]))
        noops.append(statistics.median([await noop() for _ in range(FLOW_RUNS)]))
    return statistics.median(steps), statistics.median(noops)


def row(label: str, ms: float, note: str = "") -> str:
    return f"  {label:<58} {ms:8.3f} ms  {note}"


async def bench_http(tmp: Path) -> list[str]:
    await trio.Path(tmp).mkdir(parents=True)
    server = await trio.lowlevel.open_process(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        announced = b""
        while not announced.endswith(b"\n"):
            announced += await server.stdout.receive_some(64)
        port = int(announced)
        url = f"http://127.0.0.1:{port}/ok"
        policy = OutboundPolicy(allowed_cidrs=["127.0.0.1/32"])
        async with (
            httpx.AsyncClient() as bare,
            OutboundClient(policy) as guarded,
            component_kit(tmp) as kit,
        ):
            await kit.component("request", "http", {"allowedCidrs": ["127.0.0.1/32"]})
            curl = default_registry().get("curl")
            ctx = StepContext(kit)
            args = {"url": url}

            async def bare_get() -> None:
                response = await bare.get(url)
                assert response.status_code == 200

            async def guarded_get() -> None:
                response = await guarded.request("GET", url)
                assert response.status_code == 200

            async def module_call() -> None:
                output = await curl.run(ctx, args)
                assert output["body"] == {"ok": True, "n": 1}

            figures = await interleaved(
                {"bare": bare_get, "guarded": guarded_get, "module": module_call}
            )
            step, noop = await flow_marginal(kit, {"appId": "curl", "args": args})
    finally:
        server.terminate()
        await server.wait()
    bare_ms, guard_ms, module_ms = figures["bare"], figures["guarded"], figures["module"]
    marginal = step - noop
    added = module_ms - bare_ms
    verdict = "met" if added < 0.5 else "MISSED"
    return [
        "(a) curl step vs bare httpx, GET to a loopback HTTP server (per request, median)",
        row("baseline: bare httpx.AsyncClient", bare_ms),
        row("curl module through the seam (component, guard, decoding)", module_ms,
            f"+{added:.3f} ms over bare: target < 0.5 ms {verdict}"),
        row(f"flow of {STEPS} curl steps, per step (engine)", step),
        row(f"flow of {STEPS} noop steps, per step (engine bookkeeping)", noop),
        row("curl step's own cost in the flow (curl - noop)", marginal,
            f"{marginal - bare_ms:+.3f} ms over bare httpx: target < 0.5 ms "
            f"{'met' if marginal - bare_ms < 0.5 else 'MISSED'}"),
        "(b) the outbound guard alone (per request, median)",
        row("baseline: bare httpx.AsyncClient", bare_ms),
        row("OutboundClient (allowedCidrs 127.0.0.1/32)", guard_ms,
            f"guard costs {guard_ms - bare_ms:+.3f} ms per request"),
    ]  # fmt: skip


async def bench_db(tmp: Path, server: sql_servers.SqlServer, label: str) -> list[str]:
    await trio.Path(tmp).mkdir(parents=True)
    if server.kind == "postgres":
        import psycopg

        conn: Any = psycopg.connect(
            host=server.host, port=server.port, dbname=server.database, user=server.user,
            password=server.password, autocommit=True,
        )  # fmt: skip

        def bare_sync() -> Any:
            return conn.execute("SELECT 1").fetchall()
    else:
        import pymysql

        conn = pymysql.connect(
            host=server.host, port=server.port, database=server.database, user=server.user,
            password=server.password, autocommit=True,
        )  # fmt: skip

        def bare_sync() -> Any:
            with conn.cursor() as c:
                c.execute("SELECT 1")
                return c.fetchall()

    try:
        async with component_kit(tmp) as kit:
            await kit.component("db", server.kind, server.config())
            handle = await kit.components.resolve(COMPANY, "db", None)
            query = default_registry().get("db-query")
            ctx = StepContext(kit)

            async def bare() -> None:
                bare_sync()

            async def bare_thread() -> None:
                await trio.to_thread.run_sync(bare_sync)

            async def provider() -> None:
                await handle.call("query", {"sql": "SELECT 1"})

            async def module_call() -> None:
                await query.run(ctx, {"sql": "SELECT 1"})

            figures = await interleaved(
                {"bare": bare, "thread": bare_thread, "provider": provider, "module": module_call}
            )
            register_unsafe_noop(kit)
            step, noop = await flow_marginal(
                kit, {"appId": "db-query", "args": {"sql": "SELECT 1"}}, UNSAFE_NOOP
            )
    finally:
        conn.close()
    return [
        f"(c) db-query SELECT 1 vs a bare driver round trip, {label} on loopback (median)",
        row("baseline: bare driver, one open connection, this thread", figures["bare"]),
        row("baseline: the same through trio.to_thread", figures["thread"]),
        row("provider query through the seam (pooled, one transaction)", figures["provider"],
            f"+{figures['provider'] - figures['thread']:.3f} ms over the threaded bare call"),
        row("db-query module", figures["module"]),
        row(f"flow of {STEPS} db-query steps, per step (engine)", step),
        row(f"flow of {STEPS} not-idempotent noop steps, per step (engine)", noop,
            "db-query is not idempotent: the engine syncs the store first"),
        row("db-query step's own cost in the flow (db-query - noop)", step - noop,
            f"{step - noop - figures['bare']:+.3f} ms over the bare round trip"),
    ]  # fmt: skip


async def main() -> None:
    configure_logging("warning", "console")
    print(f"component benchmarks{' [quick]' if QUICK else ''}")
    print(machine())
    print(
        f"method: {ROUNDS} rounds interleaving the cases, {CALLS} calls per case per round "
        f"(flows: {FLOW_RUNS} plays of {STEPS} steps per round); medians of round medians"
    )
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        lines += await bench_http(Path(d) / "http")
        for label, start in (
            ("PostgreSQL", sql_servers.running_postgres),
            ("MariaDB", sql_servers.running_mariadb),
        ):
            try:
                with start() as server:
                    lines += await bench_db(Path(d) / label, server, server.product)
            except sql_servers.MissingBinary as e:
                lines.append(f"(c) {label}: skipped: {e}")
    print("\n".join(lines))


if __name__ == "__main__":
    trio.run(main)
