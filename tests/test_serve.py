"""`flow8 serve` as a user runs it: a real process, real ports, real signals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flow8.admin_client import render_tree

TOKEN = "test-admin-token-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _flow8(*args: str) -> list[str]:
    return [sys.executable, "-m", "flow8.cli", *args]


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
    env.update(
        SERVER_PORT=str(_free_port()),
        MCP_PORT=str(_free_port()),
        FLOW8_DATA_DIR=str(tmp_path / "data"),
        FLOW8_ADMIN_TOKEN=TOKEN,
        SHUTDOWN_GRACE_SECONDS="5",
        FLOW8_CONFIG=str(Path(__file__).parents[1] / "conf" / "config.yml"),
    )
    return env


@contextlib.contextmanager
def running(env: dict[str, str], cwd: Path) -> Iterator[str]:
    """A `flow8 serve` that is up (answers /healthz); stopped with SIGINT, which must exit 0."""
    process = subprocess.Popen(
        _flow8("serve"), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{env['SERVER_PORT']}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
    assert process.returncode == 0


@pytest.fixture
def server(
    server_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        _flow8("serve"),
        env=server_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{server_env['SERVER_PORT']}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"flow8 serve did not come up:\n{out}\n{err}")
        time.sleep(0.1)
    yield process, base
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_serve_answers_health_and_admin_tree_then_stops_on_sigterm(
    server: tuple[subprocess.Popen[str], str],
) -> None:
    process, base = server
    health = httpx.get(f"{base}/healthz")
    assert health.json() == {"status": "ok"}

    assert httpx.get(f"{base}/admin/actors").status_code == 401
    wrong = httpx.get(f"{base}/admin/actors", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    tree = httpx.get(f"{base}/admin/actors", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert tree["name"] == "root"
    assert tree["strategy"] == "rest_for_one"
    names = [child["name"] for child in tree["children"]]
    assert names == [
        "store",
        "instance",
        "events",
        "audit",
        "engine",
        "jobs",
        "channels",
        "http",
        "mcp",
    ]
    instance = next(child for child in tree["children"] if child["name"] == "instance")
    assert instance["info"]["index"] == 1  # the only instance on its data dir
    assert [i["pid"] for i in instance["info"]["instances"]] == [process.pid]
    engine = next(child for child in tree["children"] if child["name"] == "engine")
    assert {c["name"] for c in engine["children"]} == {"plays", "dispatcher"}
    channels = next(child for child in tree["children"] if child["name"] == "channels")
    assert {c["name"] for c in channels["children"]} == {"listeners", "manager"}
    for node in [tree, *tree["children"]]:
        assert node["state"] == "running"
        assert {"name", "kind", "strategy", "state", "restarts", "mailbox", "children"} <= set(node)

    html = httpx.get(
        f"{base}/admin/actors",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "text/html,*/*;q=0.8"},
    )
    assert html.headers["content-type"].startswith("text/html")
    assert "dispatcher" in html.text

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert time.monotonic() - started < 5 + 2
    assert '"event": "flow8_stopped"' in err
    for line in err.splitlines():  # every log line, Hypercorn's included, is one JSON object
        assert json.loads(line)["level"], line
    assert "flow8 init" in out  # a fresh data dir tells the user how to create the owner


def test_flow8_actors_prints_the_live_tree(
    server: tuple[subprocess.Popen[str], str], server_env: dict[str, str], tmp_path: Path
) -> None:
    process, _ = server
    result = subprocess.run(
        _flow8("actors"), env=server_env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("root  [supervisor rest_for_one]  running")
    assert any(line.startswith("├── http") for line in lines)
    assert any(line.startswith("└── mcp") for line in lines)
    assert any("│   ├── plays" in line or "│   └── plays" in line for line in lines)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=15)
    assert process.returncode == 0


def test_without_admin_token_the_admin_endpoint_is_off(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    server_env.pop("FLOW8_ADMIN_TOKEN")
    with running(server_env, tmp_path) as base:
        response = httpx.get(f"{base}/admin/actors", headers={"Authorization": "Bearer x"})
        assert response.status_code == 404
        assert (
            httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer x"}).status_code == 404
        )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SERVER_PORT", "http", "flow8: config error: server.port (SERVER_PORT): expected a TCP"),
        ("FLOW8_STORE_DURABILITY", "sometimes", "store.durability (FLOW8_STORE_DURABILITY)"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL must be one of"),
    ],
)
def test_bad_config_fails_start_with_one_line(
    server_env: dict[str, str], tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    server_env[variable] = value
    result = subprocess.run(
        _flow8("serve"), env=server_env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_fails_start_with_one_line(server_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(server_env["SERVER_PORT"])))
        taken.listen()
        result = subprocess.run(
            _flow8("serve"), env=server_env, cwd=tmp_path, capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("flow8: ")
    assert f"cannot listen on 127.0.0.1:{server_env['SERVER_PORT']}" in last
    assert "Traceback" not in result.stderr


def test_dotenv_is_loaded_but_environment_wins(server_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SERVER_PORT=notaport\nMCP_PORT=99999\n")
    server_env.pop("SERVER_PORT")
    result = subprocess.run(
        _flow8("serve"), env=server_env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "server.port (SERVER_PORT)" in result.stderr  # came from .env
    server_env["SERVER_PORT"] = "notaport-either"
    result = subprocess.run(
        _flow8("serve"), env=server_env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert "'notaport-either'" in result.stderr  # the environment beat .env


def test_render_tree_draws_nested_children() -> None:
    tree = {
        "name": "root", "kind": "supervisor", "strategy": "rest_for_one", "state": "running",
        "restarts": 0, "mailbox": {"depth": 0, "capacity": 0},
        "children": [
            {"name": "store", "kind": "actor", "state": "running", "restarts": 2,
             "mailbox": {"depth": 3, "capacity": 64}, "children": []},
            {"name": "engine", "kind": "supervisor", "strategy": "one_for_one",
             "state": "restarting", "restarts": 0, "children": [
                 {"name": "plays", "kind": "dynamic_supervisor", "state": "running",
                  "children": []}]},
        ],
    }  # fmt: skip
    assert render_tree(tree).splitlines() == [
        "root  [supervisor rest_for_one]  running",
        "├── store  [actor]  running  restarts=2  mailbox=3/64",
        "└── engine  [supervisor one_for_one]  restarting",
        "    └── plays  [dynamic_supervisor]  running",
    ]


def test_served_api_runs_a_flow_end_to_end(server: tuple[subprocess.Popen[str], str]) -> None:
    """The composition root wires identity, flows, plays and the engine into the real server."""
    process, base = server
    with httpx.Client(base_url=base, timeout=10) as client:
        owner = {"company": "Acme", "email": "ops@example.com", "password": "a-long-password"}
        assert client.post("/api/install", json=owner).status_code in (200, 201)
        assert client.post("/api/install", json=owner).status_code == 409
        login = client.post("/api/auth/login", json={k: owner[k] for k in ("email", "password")})
        csrf = {"X-CSRF-Token": login.json()["csrfToken"]}
        flow = {
            "name": "hello",
            "flowlets": [{"ref": "greet", "appId": "template",
                          "args": {"text": "Hello {{ $prev.args.name }}!"}}],
        }  # fmt: skip
        created = client.post("/api/flows", json=flow, headers=csrf)
        assert created.status_code == 201, created.text
        run = client.post(
            f"/api/flows/{created.json()['id']}/run?wait=10", json={"name": "Ada"}, headers=csrf
        )
        assert run.json()["state"] == "DONE", run.text
        assert run.json()["out"] == {"text": "Hello Ada!"}
        layers = client.get(f"/api/plays/{run.json()['id']}/layers").json()["data"]
        assert [(layer["ref"], layer["state"]) for layer in layers] == [("greet", "DONE")]
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200, scraped.text
    samples = [s for f in text_string_to_metric_families(scraped.text) for s in f.samples]

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value for s in samples if s.name == name and labels.items() <= s.labels.items()
        )

    # The metrics of the served process: the bus, the tree and the sqlite store are wired in.
    assert value("flow8_plays_finished_total", state="DONE", trigger="api") == 1
    assert value("flow8_step_duration_seconds_count", module="template", state="DONE") == 1
    actors = {s.labels["actor"] for s in samples if s.name == "flow8_actor_restarts_total"}
    assert any(a.endswith("engine/dispatcher") for a in actors), actors
    assert not any("play-" in a for a in actors)
    assert value("flow8_store_commit_batch_size_count") > 0
    assert value("flow8_store_commit_duration_seconds_count") > 0
    ages = [s for s in samples if s.name == "flow8_instance_heartbeat_age_seconds"]
    assert [s.labels["index"] for s in ages] == ["1"]
    assert 0 <= ages[0].value < 30
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=15)
    assert process.returncode == 0


def test_secure_cookies_setting_reaches_the_served_app(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    server_env["SECURE_COOKIES"] = "true"  # as behind a TLS-terminating proxy
    with running(server_env, tmp_path) as base:
        owner = {"company": "Acme", "email": "ops@example.com", "password": "a-long-password"}
        httpx.post(f"{base}/api/install", json=owner)
        credentials = {k: owner[k] for k in ("email", "password")}
        login = httpx.post(f"{base}/api/auth/login", json=credentials)
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "Secure" in cookie
        assert "strict-transport-security" in login.headers
