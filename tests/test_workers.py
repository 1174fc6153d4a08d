"""Instances and workers as an operator runs them: real `flow8 serve` processes on one data dir,
real ports, real signals (SIGKILL under load, SIGTERM to stop)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.serving import CONFIG, free_port

pytestmark = pytest.mark.wall_clock
TOKEN = "workers-admin-token-0123456789"
T = TypeVar("T")
OWNER = {"company": "Acme", "email": "ops@example.com", "password": "a-long-password"}


def _env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
    env.pop("CHANNEL_PORT_RANGE", None)  # the default block layout is what is under test
    env.update(
        SERVER_PORT=str(free_port()),
        MCP_PORT=str(free_port()),
        FLOW8_DATA_DIR=str(data_dir),
        SHUTDOWN_GRACE_SECONDS="5",
        FLOW8_CONFIG=str(CONFIG),
        LOG_LEVEL="warning",
    )
    env.update(settings)
    return env


def _until(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            found = check()
            if found:
                return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def serving(
    workdir: Path, env: dict[str, str], *args: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A `flow8 serve ARGS` that answers /healthz; killed (with its workers) if still up."""
    log = (workdir / f"serve-{env['SERVER_PORT']}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "flow8", "serve", *args],
        env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{env['SERVER_PORT']}"
    try:
        _until(lambda: httpx.get(f"{base}/healthz", timeout=1).status_code == 200, "healthz")
        yield process, base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _owner(base: str) -> httpx.Client:
    """A client signed in as the company's owner (installing the company on first use)."""
    client = httpx.Client(base_url=base, timeout=15)
    client.post("/api/install", json=OWNER)
    login = client.post("/api/auth/login", json={k: OWNER[k] for k in ("email", "password")})
    assert login.status_code == 200, login.text
    client.headers["X-CSRF-Token"] = login.json()["csrfToken"]
    return client


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_two_serve_processes_take_indexes_1_and_2_and_the_channel_blocks_that_go_with_them(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first_env, second_env = _env(data), _env(data)
    with contextlib.ExitStack() as closing, serving(tmp_path, first_env) as (first, first_base):
        with serving(tmp_path, second_env) as (second, second_base):
            one, two = _owner(first_base), _owner(second_base)
            closing.callback(one.close)
            closing.callback(two.close)
            instances = one.get("/api/instances").json()["items"]
            assert sorted((i["index"], i["pid"]) for i in instances) == [
                (1, first.pid),
                (2, second.pid),
            ]
            assert {i["current"] for i in instances if i["pid"] == first.pid} == {True}

            # A channel gets its port from the block of the instance it was created on
            # (7701-7799 for index 1, 7800-7899 for index 2), and that instance serves it.
            made = [
                c.post("/api/channels", json={"name": name, "kind": "http", "authMode": "public"})
                for c, name in ((one, "via-first"), (two, "via-second"))
            ]
            assert [m.status_code for m in made] == [201, 201], [m.text for m in made]
            assert [m.json()["port"] for m in made] == [7701, 7800]
            _until(lambda: _listening(7701) and _listening(7800), "both channel ports")
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
            # The second instance's block went with it; the first still serves its own.
            assert not _listening(7800)
            assert _listening(7701)
            left = one.get("/api/instances").json()["items"]
            assert [(i["index"], i["pid"]) for i in left] == [(1, first.pid)]
        # Released on a clean stop: a new instance takes index 2 again at once.
        with serving(tmp_path, _env(data)) as (third, _):
            items = one.get("/api/instances").json()["items"]
            assert sorted((i["index"], i["pid"]) for i in items) == [(1, first.pid), (2, third.pid)]
            _until(lambda: _listening(7800), "the block of index 2, served again")


def _finished(client: httpx.Client) -> dict[str, float]:
    """Plays finished DONE per worker, from one scrape of /metrics (whichever worker gets it)."""
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200, scraped.text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(scraped.text):
        for sample in family.samples:
            if (
                sample.name == "flow8_process_cpu_seconds_total"
                or sample.name == "process_cpu_seconds_total"
            ):
                counts.setdefault(sample.labels["worker"], 0.0)
            if sample.name == "flow8_plays_finished_total" and sample.labels["state"] == "DONE":
                worker = sample.labels["worker"]
                counts[worker] = counts.get(worker, 0.0) + sample.value
    return counts


def _run(client: httpx.Client, flow_id: str, key: str) -> str:
    """Start a play, retrying with the same Idempotency-Key across a worker's death (what a
    careful client does): the play exists once however often the request was sent."""
    for _ in range(20):
        try:
            answer = client.post(
                f"/api/flows/{flow_id}/run", json={}, headers={"Idempotency-Key": key}
            )
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if answer.status_code in (200, 201, 202):
            play_id: str = answer.json()["id"]
            return play_id
        time.sleep(0.2)
    raise AssertionError(f"the run {key} was never accepted")


def test_workers_share_the_port_a_killed_worker_is_restarted_and_its_plays_finish_elsewhere(
    tmp_path: Path,
) -> None:
    lease = 3.0
    env = _env(
        tmp_path / "data",
        FLOW8_PLAY_LEASE_SECONDS=str(lease),
        FLOW8_HEARTBEAT_SECONDS="1",
        FLOW8_COMPANY_PLAYS_PER_SECOND="0",
        FLOW8_ADMIN_TOKEN=TOKEN,
    )
    with (
        serving(tmp_path, env, "--workers", "3") as (parent, base),
        contextlib.closing(_owner(base)) as client,
    ):
        workers = _until(
            lambda: (items := client.get("/api/instances").json()["items"]) and len(items) == 3
            and items,
            "three workers registered",
        )  # fmt: skip
        assert sorted(w["worker"] for w in workers) == [1, 2, 3]
        assert {w["index"] for w in workers} == {1}  # one host, one group, one block
        assert len({w["pid"] for w in workers}) == 3
        assert _finished(client) == {"1": 0.0, "2": 0.0, "3": 0.0}  # every worker's metrics
        flow = {
            "name": "slow",
            "flowlets": [{"ref": "wait", "appId": "delay", "args": {"ms": 1500}}],
        }
        flow_id = client.post("/api/flows", json=flow).json()["id"]

        # Load: 8 clients start 60 plays; a third of the way in, worker 2 is killed.
        victim = next(w for w in workers if w["worker"] == 2)
        keys = [str(uuid.uuid4()) for _ in range(60)]

        def start(key: str) -> str:
            with httpx.Client(base_url=base, timeout=15, headers=client.headers) as own:
                own.cookies = client.cookies
                return _run(own, flow_id, key)

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(start, k) for k in keys]
            _until(lambda: sum(f.done() for f in futures) >= 20, "a third of the runs accepted")
            os.kill(victim["pid"], signal.SIGKILL)
            play_ids = [f.result() for f in futures]

        def finished() -> list[dict[str, Any]] | None:
            plays = [client.get(f"/api/plays/{p}").json() for p in play_ids]
            return plays if all(p["state"] in ("DONE", "FAIL") for p in plays) else None

        plays = _until(finished, "every play to end", timeout=60)
        assert [p["state"] for p in plays] == ["DONE"] * 60
        # Nothing doubled: one play per run, one layer per play.
        listed = client.get(f"/api/plays?flowId={flow_id}&size=100").json()
        assert listed["total"] == 60
        assert len(set(play_ids)) == 60
        for play_id in play_ids[:60:7]:
            layers = client.get(f"/api/plays/{play_id}/layers").json()["data"]
            assert [(x["ref"], x["state"]) for x in layers] == [("wait", "DONE")]
        # The victim's plays waited for their leases to lapse, then finished on the others.
        took = [
            datetime.fromisoformat(p["finishedAt"]) - datetime.fromisoformat(p["createdAt"])
            for p in plays
        ]
        assert any(t.total_seconds() > lease for t in took), took

        # The parent started a new worker 2 in the victim's place.
        def replaced() -> dict[str, Any] | None:
            items = client.get("/api/instances").json()["items"]
            again = [w for w in items if w["worker"] == 2 and w["pid"] != victim["pid"]]
            return again[0] if again else None

        fresh = _until(replaced, "worker 2 restarted")
        assert fresh["index"] == 1
        # Every worker's counters in one scrape: what the victim counted died with it, so
        # the live workers (the new worker 2 among them, which may have resumed some of the
        # victim's plays) account for most of the 60 but never more.
        finished = _until(lambda: (f := _finished(client)) and len(f) == 3 and f, "3 workers")
        assert sorted(finished) == ["1", "2", "3"]
        assert 0 < sum(finished.values()) <= 60
        pids = {w["pid"] for w in client.get("/api/instances").json()["items"]}

        # SIGTERM stops them all within the grace period (5 s), and the parent exits 0.
        began = time.monotonic()
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=15) == 0
        assert time.monotonic() - began < 5 + 2
        for pid in pids - {victim["pid"]}:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def test_a_taken_port_stops_serve_workers_before_any_worker_starts(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["SERVER_PORT"])))
        taken.listen()
        run = subprocess.run(
            [sys.executable, "-m", "flow8", "serve", "--workers", "2"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{env['SERVER_PORT']} (SERVER_HOST / SERVER_PORT)" in (
        run.stderr
    )
    assert "worker_started" not in run.stderr
