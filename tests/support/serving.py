"""A real `flow8 serve` process on loopback, for tests that drive it from outside (a shell
script, a browser): free ports, the environment it starts with, and a clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

CONFIG = Path(__file__).parents[2] / "conf" / "config.yml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_block(size: int = 4) -> str:
    """A CHANNEL_PORT_RANGE of ``size`` consecutive ports free right now."""
    for _ in range(50):
        first = free_port()
        if first + size > 65535:
            continue
        try:
            for port in range(first, first + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return f"{first}-{first + size - 1}"
    raise RuntimeError("no block of free ports")


@contextlib.contextmanager
def flow8_serve(workdir: Path, **settings: str) -> Iterator[dict[str, str]]:
    """`flow8 serve` with its own data dir and free ports (``settings`` override any
    setting); answers ``{"base", "mcp_port", ...env}`` once /healthz says ok, and stops it
    with SIGINT afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
    env.update(
        SERVER_PORT=str(free_port()),
        MCP_PORT=str(free_port()),
        CHANNEL_PORT_RANGE=free_block(),
        FLOW8_DATA_DIR=str(workdir / "data"),
        SHUTDOWN_GRACE_SECONDS="5",
        FLOW8_CONFIG=str(CONFIG),
    )
    env.update(settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "flow8.cli", "serve"], env=env, cwd=workdir,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{env['SERVER_PORT']}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"flow8 serve did not come up: {process.communicate()[1]}")
            time.sleep(0.1)
        yield {**env, "base": base, "mcp_port": env["MCP_PORT"]}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
