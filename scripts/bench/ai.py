"""AI benchmark: what a `chat` step costs beside the bare SDK call, to the same server,
measured in the same run. Prints medians.

The server: a threaded http.server in its own process (keep-alive, its GIL not the
client's) answering every POST .../chat/completions at once with the same small
`chat.completion` (12 input and 5 output tokens). The component: ai/openai-compatible with
baseUrl http://127.0.0.1:<port>/v1 (loopback opened to components, as an operator would for
a local model server), maxRetries 0.

  bare       the official openai SDK's sync client, `chat.completions.create`, called in
             this thread (what a script calling the SDK pays; it blocks its thread);
  bare+thread  the same call through trio.to_thread (the worker-thread hop every provider
             call makes, so the event loop never waits on the SDK);
  provider   the provider's `chat` operation through the seam (ComponentHandle.call): the
             input checks, the host guard, the worker thread, the answer read and priced;
  module     the `chat` module's run function, called as the engine calls it, its
             component resolved by the components service, its usage recorded;
  flow       a saved flow of 40 chat steps beside a flow of 40 *bare-SDK* steps (a module
             that makes the bare SDK call through trio.to_thread and nothing else: no
             component, no checks, no usage) and one of 40 bare-SDK steps that also report
             the call's usage (so the engine's own accounting, the layer's usage and the
             company's daily counts, shows apart), each run to its end through the engine
             (sqlite store, durability full): what a chat step adds inside a play over a
             step that makes the same call bare (chat - bare-SDK step). Both are declared
             not idempotent and metered alike, so the engine does the same for each (earlier
             writes made durable before the step). A flow of 40 noop steps shows the engine's
             own bookkeeping: a step that lasts a millisecond or more costs the engine more
             than a noop (its start is written while it runs), which is why the flow is
             judged against the bare-SDK step and not against noop.

Target: a chat step adds under 1 ms per call (median) over the bare SDK call, judged on the
module (called directly) and on the chat step against the bare-SDK step in a flow.

Honesty: every case is warmed up first; then rounds interleave the cases, so a change in
machine load hits all of them alike; each figure is the median over the rounds of each
round's median per call.

Usage: .venv/bin/python scripts/bench/ai.py [--quick]
"""

from __future__ import annotations

import json
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
import httpx2  # noqa: E402
import openai  # noqa: E402
import trio  # noqa: E402
from components_kit import COMPANY, Kit, component_kit  # noqa: E402
from support.ai_servers import openai_chat  # noqa: E402

from flow8.components import ComponentHandle  # noqa: E402
from flow8.domain import AiUsage, PlayState  # noqa: E402
from flow8.logs import configure_logging  # noqa: E402
from flow8.modules import default_registry  # noqa: E402

QUICK = "--quick" in sys.argv
ROUNDS = 3 if QUICK else 7
CALLS = 100 if QUICK else 300  # per case per round
STEPS = 40
FLOW_RUNS = 2 if QUICK else 4  # plays per flow per round
TARGET_MS = 1.0

SERVER = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    BODY = sys.argv[1].encode()
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one answer, one segment: no delayed-ACK stall
        wbufsize = 1 << 16  # headers and body written together at the end of the request
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
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
MESSAGES = [{"role": "user", "content": "Say hello."}]


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
        f"openai {openai.__version__}; load average at start {load}"
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
    """What the engine hands a module, for calling one directly: its company, its
    components resolved by the components service, and its usage kept."""

    kit: Kit
    company_id: str = COMPANY
    flow_id: str = "bench"
    play_id: str = "bench"
    ref: str = "step"
    component_config_ids: Mapping[str, str] = attrs.Factory(dict)
    usage: list[AiUsage] = attrs.Factory(list)

    async def component(self, kind: str) -> ComponentHandle:
        return await self.kit.components.resolve(self.company_id, kind, None)

    def record_usage(self, usage: AiUsage) -> None:
        self.usage.append(usage)


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


BARE_STEP = "bench-bare-sdk"
BARE_STEP_USAGE = "bench-bare-sdk-usage"
USAGE = AiUsage("openai-compatible", "bench-model", 12, 5, 0.0)


def register_bare_steps(kit: Kit, bare_sync: Callable[[], str]) -> None:
    """Modules making the bare SDK call in a worker thread, declared as ``chat`` is (not
    idempotent, metered), answering an output of ``chat``'s shape: one does nothing else,
    the other also reports the call's usage (what the engine then writes: the layer's
    usage and the company's daily counts)."""

    def module(report: bool) -> Any:
        async def run(ctx: Any, args: Mapping[str, Any]) -> Any:
            content = await trio.to_thread.run_sync(bare_sync)
            if report:
                ctx.record_usage(USAGE)
            return {
                "response": content,
                "tokens": {"input": 12, "output": 5},
                "model": "bench-model",
                "finishReason": "stop",
            }

        return run

    chat = kit.engine.registry.get("chat")
    for app_id, report in ((BARE_STEP, False), (BARE_STEP_USAGE, True)):
        kit.engine.registry.register(
            attrs.evolve(chat, app_id=app_id, run=module(report), components=())
        )


async def flows(kit: Kit, steps: Mapping[str, dict[str, Any]]) -> dict[str, float]:
    """ms per step in a flow of STEPS of each step: medians over rounds, the flows
    interleaved."""
    runs = {
        name: await flow_per_step_ms(kit, [{"ref": f"s{i}", **step} for i in range(STEPS)])
        for name, step in steps.items()
    }
    for run in runs.values():
        await run()
    rounds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            rounds[name].append(statistics.median([await run() for _ in range(FLOW_RUNS)]))
    return {name: statistics.median(values) for name, values in rounds.items()}


def row(label: str, ms: float, note: str = "") -> str:
    return f"  {label:<58} {ms:8.3f} ms  {note}"


def verdict(added: float) -> str:
    return f"target < {TARGET_MS:g} ms {'met' if added < TARGET_MS else 'MISSED'}"


async def bench_chat(tmp: Path) -> list[str]:
    await trio.Path(tmp).mkdir(parents=True)
    body = json.dumps(openai_chat("Hello!", model="bench-model"))
    server = await trio.lowlevel.open_process(
        [sys.executable, "-c", SERVER, body], stdout=subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        announced = b""
        while not announced.endswith(b"\n"):
            announced += await server.stdout.receive_some(64)
        base = f"http://127.0.0.1:{int(announced)}/v1"
        bare = openai.OpenAI(
            api_key="bench-key",
            base_url=base,
            max_retries=0,
            timeout=30,
            http_client=httpx2.Client(trust_env=False),
        )

        def bare_sync() -> str:
            completion = bare.chat.completions.create(
                model="bench-model",
                messages=MESSAGES,  # type: ignore[arg-type]
                temperature=0.7,
                max_tokens=2048,
                stream=False,
            )
            content = completion.choices[0].message.content
            assert content == "Hello!"
            return content

        async def bare_call() -> None:
            bare_sync()

        async def bare_thread() -> None:
            await trio.to_thread.run_sync(bare_sync)

        async with component_kit(tmp) as kit:
            config = {"model": "bench-model", "apiKey": "bench-key", "baseUrl": base}
            await kit.component("ai", "openai-compatible", {**config, "maxRetries": 0})
            chat = default_registry().get("chat")
            ctx = StepContext(kit)
            handle = await ctx.component("ai")

            async def provider_call() -> None:
                answer = await handle.call("chat", {"messages": MESSAGES})
                assert answer["content"] == "Hello!"

            async def module_call() -> None:
                output = await chat.run(ctx, {"userMessage": "Say hello."})
                assert output["response"] == "Hello!"

            figures = await interleaved(
                {
                    "bare": bare_call,
                    "thread": bare_thread,
                    "provider": provider_call,
                    "module": module_call,
                }
            )
            register_bare_steps(kit, bare_sync)
            args = {"userMessage": "Say hello."}
            per_step = await flows(
                kit,
                {
                    "chat": {"appId": "chat", "args": args},
                    "bare": {"appId": BARE_STEP, "args": args},
                    "usage": {"appId": BARE_STEP_USAGE, "args": args},
                    "noop": {"appId": "noop", "args": {}},
                },
            )
        bare.close()
    finally:
        server.terminate()
        await server.wait()
    bare_ms = figures["bare"]
    added = figures["module"] - bare_ms
    in_flow = per_step["chat"] - per_step["bare"]
    return [
        "(a) chat vs the bare openai SDK call, to a loopback server answering at once "
        "(per call, median)",
        row("baseline: bare SDK sync client, in this thread", bare_ms),
        row("bare SDK call through trio.to_thread (the thread hop)", figures["thread"],
            f"{figures['thread'] - bare_ms:+.3f} ms"),
        row("provider chat operation through the seam", figures["provider"],
            f"{figures['provider'] - bare_ms:+.3f} ms"),
        row("chat module (component resolved, usage recorded)", figures["module"],
            f"+{added:.3f} ms over bare: {verdict(added)}"),
        row(f"flow of {STEPS} chat steps, per step (engine)", per_step["chat"],
            f"+{in_flow:.3f} ms over the bare-SDK step: {verdict(in_flow)}"),
        row(f"flow of {STEPS} bare-SDK steps, per step (engine)", per_step["bare"]),
        row(f"flow of {STEPS} bare-SDK steps reporting usage, per step", per_step["usage"],
            f"the engine's accounting: {per_step['usage'] - per_step['bare']:+.3f} ms; chat "
            f"beyond it: {per_step['chat'] - per_step['usage']:+.3f} ms"),
        row(f"flow of {STEPS} noop steps, per step (engine bookkeeping)", per_step["noop"]),
    ]  # fmt: skip


async def main() -> None:
    configure_logging("warning", "console")
    print(f"AI benchmark{' [quick]' if QUICK else ''}")
    print(machine())
    print(
        f"method: {ROUNDS} rounds interleaving the cases, {CALLS} calls per case per round "
        f"(flows: {FLOW_RUNS} plays of {STEPS} steps per round); medians of round medians"
    )
    with tempfile.TemporaryDirectory() as d:
        lines = await bench_chat(Path(d) / "chat")
    print("\n".join(lines))


if __name__ == "__main__":
    trio.run(main)
