"""Scale benchmark: 1-step HTTP-triggered plays with 1, 2 (and N) workers of one `flow8 serve`.

Run: .venv/bin/python scripts/bench/scale.py [--workers 1,2] [--seconds 10] [--warmup 3]
     [--conns 64] [--durability full|normal] [--rounds 1]

For each worker count it starts a real `flow8 serve --workers K` (its own data dir, embedded
SQLite store, durability `full` unless told), installs a company, an API key and a 1-step
`noop` flow, then drives it with the shared load generator (`../shared/bench/loadgen.py`, a
separate process, the one the peer comparison uses):

  bare   GET /healthz: the same server's cheapest route, the baseline of the same run
  plays  POST /api/flows/{id}/run?wait=10: start a play, run it, answer when it has ended
         (200 with the play DONE), every play durable before it is answered

and prints plays/s, p50 and p99 at `--conns` connections beside the bare route, the CPU the
server's processes used (cores busy), and a durability check: the plays the store holds
against the answers the load generator counted. Default worker counts: 1 and 2, and the
number of cores where the machine has more.

Targets (issue "Instances and workers"): on a 2-core machine at least 1,000 plays/s with 2
workers and p99 under 100 ms at 64 connections, durability full; with more cores, throughput
that never falls as workers are added up to the number of cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
LOADGEN = ROOT.parent / "shared" / "bench" / "loadgen.py"
OWNER = {"company": "Bench", "email": "bench@example.com", "password": "a-long-password"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children still alive (from /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Server:
    """A `flow8 serve --workers K` with a company, an API key and a 1-step flow."""

    def __init__(self, workers: int, durability: str, workdir: Path) -> None:
        self.port, channel = _free_port(), _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
        env.update(
            SERVER_PORT=str(self.port),
            MCP_PORT=str(_free_port()),
            CHANNEL_PORT_RANGE=f"{channel}-{channel}",  # no channel here: one port will do
            FLOW8_DATA_DIR=str(workdir / "data"),
            FLOW8_STORE_DURABILITY=durability,
            FLOW8_COMPANY_PLAYS_PER_SECOND="0",
            FLOW8_CONFIG=str(ROOT / "conf" / "config.yml"),
            LOG_LEVEL="warning",
        )
        self.log = (workdir / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flow8", "serve", "--workers", str(workers)],
            env=env, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_healthy()
        with httpx.Client(base_url=self.base, timeout=30) as client:
            client.post("/api/install", json=OWNER)
            login = client.post(
                "/api/auth/login", json={"email": OWNER["email"], "password": OWNER["password"]}
            )
            csrf = {"X-CSRF-Token": login.json()["csrfToken"]}
            key = client.post("/api/auth/api-keys", json={"name": "bench", "scopes": ["api"]},
                              headers=csrf)  # fmt: skip
            self.key = key.json()["key"]
            flow = {"name": "one-step", "flowlets": [{"ref": "a", "appId": "noop"}]}
            self.flow_id = client.post("/api/flows", json=flow, headers=csrf).json()["id"]
        # Every worker up (each answers /api/instances from the shared registry).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(self.get("/api/instances")["items"]) == workers:
                break
            time.sleep(0.2)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"flow8 serve did not come up (see {self.log.name})")

    def get(self, path: str) -> Any:
        answer = httpx.get(
            f"{self.base}{path}", headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def _load(url: str, args: argparse.Namespace, method: str = "GET", key: str = "") -> dict[str, Any]:
    command = [
        sys.executable, str(args.loadgen), "--url", url, "--method", method,
        "--concurrency", str(args.conns), "--duration", str(args.seconds),
        "--warmup", str(args.warmup),
    ]  # fmt: skip
    if method == "POST":
        command += ["--body", "{}"]
    if key:
        command += ["--header", f"Authorization: Bearer {key}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flow8-scale-") as tmp:
        server = Server(workers, args.durability, Path(tmp))
        try:
            bare = _load(f"{server.base}/healthz", args)
            before = server.get(f"/api/plays?flowId={server.flow_id}&size=1")["total"]
            cpu0, wall0 = _cpu_seconds(server.process.pid), time.monotonic()
            plays = _load(
                f"{server.base}/api/flows/{server.flow_id}/run?wait=10", args, "POST", server.key
            )
            cores = (_cpu_seconds(server.process.pid) - cpu0) / (time.monotonic() - wall0)
            stored = server.get(f"/api/plays?flowId={server.flow_id}&size=1")["total"] - before
        finally:
            server.stop()
    return {"workers": workers, "bare": bare, "plays": plays, "cores": cores, "stored": stored}


def _calibration_ms() -> float:
    """Milliseconds this machine's Python takes for a fixed loop (best of 5): the scale of
    its absolute figures, to compare runs on different machines (ratios need no scale)."""
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - began)
    return best * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cores = len(os.sched_getaffinity(0))
    default = "1,2" + (f",{cores}" if cores > 2 else "")
    parser.add_argument("--workers", default=default, help=f"worker counts (default {default})")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--durability", choices=("full", "normal"), default="full")
    parser.add_argument("--loadgen", type=Path, default=LOADGEN)
    args = parser.parse_args()
    if not args.loadgen.exists():
        raise SystemExit(f"the shared load generator is not at {args.loadgen} (--loadgen)")
    counts = [int(n) for n in args.workers.split(",")]
    print(
        f"flow8 scale benchmark: {platform.python_version()} on {cores} cores, "
        f"durability {args.durability}, {args.conns} connections, {args.seconds:g} s "
        f"(+{args.warmup:g} s warm-up) per case; load generator {args.loadgen}"
    )
    before = _calibration_ms()
    rows = [measure(n, args) for n in counts]
    print(f"calibration: a 1M-iteration Python loop took {before:.0f} ms before the runs, "
          f"{_calibration_ms():.0f} ms after")  # fmt: skip
    print()
    print(
        f"{'workers':>7}  {'plays/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}  "
        f"{'bare req/s':>10}  {'bare p99':>8}  {'plays/bare':>10}  {'cores busy':>10}  "
        f"{'stored/answered':>15}"
    )
    for row in rows:
        plays, bare = row["plays"], row["bare"]
        errors = sum(plays["errors"].values())
        print(
            f"{row['workers']:>7}  {plays['rps']:>8.0f}  {plays['p50_ms']:>7.1f}  "
            f"{plays['p99_ms']:>7.1f}  {errors:>6}  {bare['rps']:>10.0f}  "
            f"{bare['p99_ms']:>8.1f}  {plays['rps'] / bare['rps']:>10.2f}  "
            f"{row['cores']:>10.2f}  {row['stored']:>7}/{plays['requests_sent_total']:<7}"
        )
        if plays["first_error"]:
            print(f"         first error: {plays['first_error']}")
    first = rows[0]
    for row in rows[1:]:
        ratio = row["plays"]["rps"] / first["plays"]["rps"]
        print(f"{row['workers']} workers: {ratio:.2f}x the plays/s of {first['workers']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
