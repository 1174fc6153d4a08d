"""The attack suite's target: a real `flow8 serve` process, two companies, and a bystander
(the `target` fixture in conftest.py gives each test its own).

Every test here attacks the server the way a malicious tenant (company "Attacker", whose owner
holds an API key) or an outsider would, through HTTP only, and then checks three things:

1. the attack was refused or limited, with a clear answer;
2. everybody else kept being served while it ran: `bystander()` runs `probe.py` in its own
   process, which asks for `/healthz`, reads company "Victim"'s flows and runs one of its flows
   to the end, in turn, and fails the test if any answer failed or took longer than 100 ms
   (one answer in 50 may take up to 250 ms: see SPARE_EVERY; `strict=True` allows none;
   on a machine slower than the one the bounds were set on, stretched: see slowness());
3. nothing was lost or half-written: the test reads back what the attack touched and what the
   bystander did.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from hostwatch import HostWatch

OWNER_EMAIL = "owner@attacker.example"
OWNER_PASSWORD = "owner-password-attacker-1"


def _loop_ms() -> float:
    """Best of 5 of a fixed 1M-iteration Python loop: how fast this machine runs Python."""
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - began)
    return best * 1000


# The bounds below were set on the 2-core development box, where the loop above takes about
# 40 ms. The same box has been seen running it in 77-114 ms on other days (every figure of
# the benchmarks about half as fast), and changing speed within one test run: there every
# bound stretches by the same factor, measured around the attack it applies to, so a test still
# catches what holds the event loop or runs super-linearly, not a slow machine.
REFERENCE_LOOP_MS = 40.0


def slowness() -> float:
    """How much slower than the reference this machine runs Python now (1.0 at most as fast)."""
    return max(1.0, _loop_ms() / REFERENCE_LOOP_MS)


def responsive_ms() -> float:
    """The bystander's bound now: 100 ms on the reference machine."""
    return round(100.0 * slowness(), 1)


# The server's FLOW8_EXPRESSION_TIMEOUT_MS (250 ms as shipped), set once for the whole run:
# servers read it at start-up.
EXPRESSION_TIMEOUT_MS = round(250 * slowness())
# One answer in 50 (at least one) may take up to 2.5 times the bound: the server, the
# attacking client and the bystander share two cores, and one descheduling of the server's
# thread at the wrong moment costs an answer tens of ms whatever the server does (seen: a
# single 125 ms answer among 70 under 25 ms). A test that asks for the bound without this
# spare (``strict=True``) is the bound as README.md ("Security and limits") states it.
SPARE_EVERY = 50
SPARE_FACTOR = 2.5
_PROBE = Path(__file__).with_name("probe.py")
_CONFIG = Path(__file__).parents[2] / "conf" / "config.yml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.define
class Tenant:
    """A company, reached with its owner's API key."""

    name: str
    company_id: str
    key: str
    client: httpx.Client

    def flow(self, flowlets: list[dict[str, Any]], name: str = "attack") -> str:
        """Store a flow; returns its id."""
        r = self.client.post("/api/flows", json={"name": name, "flowlets": flowlets})
        assert r.status_code == 201, r.text
        flow_id: str = r.json()["id"]
        return flow_id

    def run(self, flow_id: str, body: Any = None, *, wait: float = 10) -> httpx.Response:
        return self.client.post(f"/api/flows/{flow_id}/run?wait={wait}", json=body)

    def run_done(self, flow_id: str, body: Any = None) -> dict[str, Any]:
        """Run a flow to its end and require it to be DONE; returns the play."""
        r = self.run(flow_id, body)
        assert r.status_code == 200, r.text
        play: dict[str, Any] = r.json()
        assert play["state"] == "DONE", play
        return play

    def play(self, play_id: str) -> dict[str, Any]:
        r = self.client.get(f"/api/plays/{play_id}")
        assert r.status_code == 200, r.text
        play: dict[str, Any] = r.json()
        return play

    def layers(self, play_id: str) -> list[dict[str, Any]]:
        r = self.client.get(f"/api/plays/{play_id}/layers?size=100")
        assert r.status_code == 200, r.text
        layers: list[dict[str, Any]] = r.json()["data"]
        return layers

    def wait_play(self, play_id: str, timeout: float = 30) -> dict[str, Any]:
        """The play once it is finished (fails the test after `timeout` seconds).

        Polls gently, with back-off up to 0.25 s: the attacking client runs on the same two
        cores as the server and the bystander, and fetching a play with a large input 20
        times a second would tax the machine rather than the server under test."""
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            play = self.play(play_id)
            if play["state"] in ("DONE", "FAIL", "CANCEL"):
                return play
            if time.monotonic() > deadline:
                pytest.fail(f"play {play_id} still {play['state']} after {timeout} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


@attrs.define
class Bystander:
    """What `probe.py` saw while the attack ran."""

    count: int = 0
    max_ms: float = 0.0
    p50_ms: float = 0.0
    worst: list[str] = attrs.Factory(list)
    worst_ms: list[float] = attrs.Factory(list)
    failures: list[str] = attrs.Factory(list)
    excused: list[str] = attrs.Factory(list)  # timed while the probe itself was stalled


@attrs.define
class Target:
    """A running `flow8 serve` with the two companies installed."""

    base: str
    process: subprocess.Popen[str]
    data_dir: Path
    attacker: Tenant
    victim: Tenant
    victim_flow: str
    owner: httpx.Client  # the attacker company's owner, signed in (session cookie + CSRF)
    admin_token: str | None = None  # set only where a test starts the server with one

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @contextlib.contextmanager
    def bystander(
        self, *, limit_ms: float | None = None, strict: bool = False
    ) -> Iterator[Bystander]:
        """Probe the server from another process for the duration of the block, then
        fail the test unless every probe was answered correctly within `limit_ms` (by
        default `responsive_ms()` as measured just before and just after the block, the
        larger; but one in SPARE_EVERY within SPARE_FACTOR times that, unless `strict`)."""
        calibrated = limit_ms is None
        if limit_ms is None:
            limit_ms = responsive_ms()
        probe = subprocess.Popen(
            [sys.executable, str(_PROBE), self.base, self.victim.key, self.victim_flow],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert probe.stdout is not None
        assert probe.stdin is not None
        assert probe.stdout.readline().strip() == "ready"
        seen = Bystander()
        host = HostWatch(self.base, self.process.pid, self.admin_token)
        before = host.snapshot()
        try:
            time.sleep(0.3)  # a few probes before the attack: a baseline in the same report
            yield seen
            time.sleep(0.3)
        finally:
            after = host.snapshot()
            out, _ = probe.communicate(input="", timeout=30)
        if calibrated:  # a machine that slowed down during the attack shows it now
            limit_ms = max(limit_ms, responsive_ms())
        report = json.loads(out.strip().splitlines()[-1])
        seen.count = report["count"]
        seen.max_ms = report["max_ms"] or 0.0
        seen.p50_ms = report["p50_ms"] or 0.0
        seen.worst = report["worst"]
        seen.worst_ms = report["worst_ms"]
        seen.failures = report["failures"]
        seen.excused = report["excused"]
        print(
            f"bystander: {seen.count} answers, p50 {seen.p50_ms:.1f} ms, max {seen.max_ms:.1f}"
            f" ms (limit {limit_ms} ms), slowest {seen.worst}"
        )
        print(host.report(before, after, ours={os.getpid(), probe.pid}))
        if seen.excused:
            print(f"bystander answers excused (the probe was stalled): {seen.excused}")
        assert not seen.failures, f"the bystander was refused during the attack: {seen.failures}"
        assert seen.count >= 10, f"the bystander got only {seen.count} answers"
        assert len(seen.excused) <= max(2, seen.count // 20), (
            f"the probe itself was stalled too often to measure anything: {seen.excused}"
        )
        spare = 0 if strict else max(1, seen.count // SPARE_EVERY)
        late = [ms for ms in seen.worst_ms if ms >= limit_ms]
        why = (
            f"the bystander waited {seen.max_ms:.1f} ms (limit {limit_ms} ms, "
            f"{spare} of {seen.count} answers up to {SPARE_FACTOR}x that): {seen.worst}"
        )
        assert len(late) <= spare, why
        assert seen.max_ms < limit_ms * (SPARE_FACTOR if spare else 1), why

    def logs(self) -> str:
        """Stop the server (SIGINT; it must exit 0) and return what it logged to stderr."""
        for client in (self.owner, self.attacker.client, self.victim.client):
            client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            pytest.fail("flow8 serve did not stop within 30 s of SIGINT")
        assert self.process.returncode == 0, err[-4000:]
        return err


def _die_with_parent() -> None:
    """In the server process before it starts: SIGTERM it when the test process dies, so a
    test run that is killed leaves no server behind (Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _start(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "flow8.cli", "serve"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_parent,
    )
    base = f"http://127.0.0.1:{env['SERVER_PORT']}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, err = process.communicate()
            pytest.fail(f"flow8 serve did not come up:\n{err[-4000:]}")
        time.sleep(0.1)


def _owner_session(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    r = client.post("/api/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrfToken"]
    return client


def _tenant(base: str, owner: httpx.Client, name: str, company_id: str) -> Tenant:
    r = owner.post("/api/auth/company", json={"companyId": company_id})
    assert r.status_code == 200, r.text
    r = owner.post("/api/auth/api-keys", json={"name": f"{name} key", "scopes": ["api"]})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    client = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"})
    return Tenant(name, company_id, key, client)


def launch(tmp_path: Path, env_overrides: dict[str, str] | None = None) -> Target:
    """Start `flow8 serve` on a fresh data dir and install the two companies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
    env.update(
        SERVER_PORT=str(_free_port()),
        MCP_PORT=str(_free_port()),
        FLOW8_DATA_DIR=str(tmp_path / "data"),
        FLOW8_CONFIG=str(_CONFIG),
        SHUTDOWN_GRACE_SECONDS="5",
        LOG_LEVEL="info",
        FLOW8_EXPRESSION_TIMEOUT_MS=str(EXPRESSION_TIMEOUT_MS),
    )
    env.update(env_overrides or {})
    process, base = _start(env, tmp_path)
    r = httpx.post(
        f"{base}/api/install",
        json={"company": "Attacker", "email": OWNER_EMAIL, "password": OWNER_PASSWORD},
    )
    assert r.status_code == 201, r.text
    owner = _owner_session(base)
    attacker_id = owner.get("/api/auth/me").json()["companyId"]
    r = owner.post("/api/companies", json={"name": "Victim"})
    assert r.status_code == 201, r.text
    victim_id = r.json()["id"]
    victim = _tenant(base, owner, "Victim", victim_id)
    attacker = _tenant(base, owner, "Attacker", attacker_id)
    victim_flow = victim.flow(
        [{"ref": "echo", "appId": "set", "args": {"value": "{{ $prev.args }}"}}], name="probe"
    )
    return Target(
        base,
        process,
        tmp_path / "data",
        attacker,
        victim,
        victim_flow,
        owner,
        admin_token=env.get("FLOW8_ADMIN_TOKEN") or None,
    )
