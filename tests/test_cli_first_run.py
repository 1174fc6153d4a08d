"""A new user's first steps: the `flow8 init` hint `flow8 serve` prints, and `flow8 actors`,
both on the server's own configuration."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flow8.admin_client import server_url
from flow8.config import load_settings

TOKEN = "first-run-admin-token-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}


def _stdout_until(process: subprocess.Popen[bytes], marker: str, timeout: float = 60) -> str:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            pytest.fail(f"no {marker!r} on stdout: {seen.decode(errors='replace')}")
        seen += chunk
    return seen.decode()


def test_the_init_hint_runs_as_printed_and_actors_finds_the_configured_port(
    tmp_path: Path,
) -> None:
    port = _free_port()
    (tmp_path / "conf").mkdir()
    # The port only in config.yml: `flow8 actors` must read it there, as serve does.
    (tmp_path / "conf" / "config.yml").write_text(
        f"server:\n  port: {port}\nmcp:\n  port: {_free_port()}\n"
    )
    data = tmp_path / "server-data"
    server_env = {**_clean_env(), "FLOW8_DATA_DIR": str(data), "FLOW8_ADMIN_TOKEN": TOKEN,
                  "SHUTDOWN_GRACE_SECONDS": "5"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "flow8.cli", "serve"],
        env=server_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        hint = _stdout_until(server, "<10+ chars>'\n")
        assert f"data dir {data}" in hint
        init = next(line.strip() for line in hint.splitlines() if " init --company " in line)
        # The venv's flow8, by a path that works from anywhere (not a bare `flow8`)
        flow8 = str(Path(sys.executable).parent / "flow8")
        assert flow8 in init
        # Run as printed, from a shell that knows nothing of the server's FLOW8_DATA_DIR.
        created = subprocess.run(
            init.replace("'<10+ chars>'", "'correct horse battery'"), shell=True,
            env=_clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["store"] == f"sqlite:///{data / 'flow8.db'}"
        owner = {"company": "Other", "email": "x@example.com", "password": "another password"}
        installed = httpx.post(f"http://127.0.0.1:{port}/api/install", json=owner, timeout=10)
        assert installed.status_code == 409  # the server sees the owner init created

        actors = subprocess.run(
            [sys.executable, "-m", "flow8.cli", "actors"],
            env={**_clean_env(), "FLOW8_ADMIN_TOKEN": TOKEN}, cwd=tmp_path,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert actors.returncode == 0, actors.stderr
        assert actors.stdout.startswith("root  [supervisor rest_for_one]  running")
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:5000"),
        ("::", "http://[::1]:5000"),
        ("::1", "http://[::1]:5000"),
        ("10.1.2.3", "http://10.1.2.3:5000"),
    ],
)
def test_the_server_url_is_where_serve_listens(host: str, url: str, tmp_path: Path) -> None:
    empty = tmp_path / "config.yml"
    empty.write_text("")
    settings = load_settings(
        empty,
        {"SERVER_HOST": host, "SERVER_PORT": "5000", "FLOW8_DATA_DIR": str(tmp_path)},
    )
    assert server_url(settings) == url
