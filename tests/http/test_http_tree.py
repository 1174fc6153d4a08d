"""The HTTP server and the audit writer as children of a real supervision tree."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import trio

import actors
from flow8.http import HttpDeps, HttpSettings, create_app, http_child
from flow8.services.audit import AuditEntry, AuditLog, audit_child

# The HTTP child of a real supervision tree, on a real port and the real clock.
pytestmark = pytest.mark.wall_clock


class MemorySink:
    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    async def write(self, company_id: str | None, docs: Sequence[dict[str, Any]]) -> None:
        self.docs.extend(docs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_tree_serves_admin_and_flushes_audit_on_stop() -> None:
    sink = MemorySink()
    log = AuditLog(sink)
    runtime_ref: list[actors.Runtime] = []
    deps = HttpDeps(
        settings=HttpSettings(admin_token="tok-123456"),
        actor_tree=lambda: runtime_ref[0].tree(),
        audit=log.record,
    )
    app = create_app(deps)
    port = _free_port()
    root = actors.SupervisorSpec(
        [audit_child(log), http_child(app, "127.0.0.1", port, graceful_timeout=1)],
        strategy=actors.Strategy.REST_FOR_ONE,
    )
    with trio.fail_after(20):
        async with actors.open_runtime(root) as runtime:
            runtime_ref.append(runtime)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                r = await client.get(
                    "/admin/actors", headers={"Authorization": "Bearer tok-123456"}
                )
                assert r.status_code == 200
                tree = r.json()
                assert [c["name"] for c in tree["children"]] == ["audit", "http"]
                assert all(c["state"] == "running" for c in tree["children"])
            # Recorded just before the tree stops: the writer must still flush it.
            log.record(AuditEntry("last_words", company_id="c"))
    assert "last_words" in [d["action"] for d in sink.docs]
    assert any(d.get("path") == "/admin/actors" for d in sink.docs)
