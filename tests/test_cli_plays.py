"""`flow8 run` on plays that wait for an approval, `--timeout`, `flow8 plays approve|reject`,
and the audit entry of every play the command starts."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from test_cli import _audit_of, _install, flow8, in_store

from flow8.cli_plays import decide, run_file, run_play
from flow8.domain import Play, PlayState
from flow8.engine import EngineSettings
from flow8.flow_files import FlowFiles
from flow8.services.audit import AuditFilter, AuditQueries, StoreAuditSink, os_user
from flow8.services.flows import FlowService
from flow8.store import Store, open_store

GATED = {"name": "gated", "flowlets": [
    {"ref": "review", "appId": "noop", "needsApproval": True},
    {"ref": "after", "appId": "set", "args": {"value": "approved"}}]}  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOW8_", "SERVER_"))}
    clean["FLOW8_DATA_DIR"] = str(tmp_path / "data")
    return clean


def _import(env: dict[str, str], cwd: Path, company: str, flow: dict[str, Any]) -> str:
    path = cwd / "flow.json"
    path.write_text(json.dumps(flow))
    stored = flow8(env, cwd, "flows", "import", str(path), "--company", company)
    assert stored.returncode == 0, stored.stderr
    flow_id: str = json.loads(stored.stdout)["id"]
    return flow_id


def _stderr_until(process: subprocess.Popen[bytes], marker: str, timeout: float = 60) -> str:
    """What ``process`` wrote to stderr up to ``marker`` (read as it comes, never blocking
    past ``timeout``)."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            pytest.fail(f"no {marker!r} on stderr: {seen.decode(errors='replace')}")
        seen += chunk
    return seen.decode()


def test_run_says_how_to_approve_and_ends_once_approved(
    env: dict[str, str], tmp_path: Path
) -> None:
    company = _install(env, tmp_path)
    flow_id = _import(env, tmp_path, company, GATED)
    run = subprocess.Popen(
        [sys.executable, "-m", "flow8.cli", "run", "--flow", flow_id],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        notice = _stderr_until(run, "stops waiting)")
        assert "waits for approval of step 'review'" in notice
        assert "/api/plays/" in notice
        assert "/approve" in notice
        # The command it names approves the play, from another process: the run resumes it.
        approve = next(line for line in notice.splitlines() if " plays approve " in line)
        decided = subprocess.run(
            approve.strip(), shell=True, env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert decided.returncode == 0, decided.stderr
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, err
    result = json.loads(out)
    assert result["state"] == "DONE"
    assert result["out"] == "approved"
    assert json.loads(decided.stdout) == {"playId": result["playId"], "state": "RUN"}

    # The start and the decision are in the audit trail, the CLI and its user as the actor.
    trail = {row["action"]: row for row in _audit_of(env, tmp_path, company)
             if row.get("target_id") == result["playId"]}  # fmt: skip
    started = trail["play_started"]
    assert started["target_type"] == "play"
    assert started["user_agent"] == "flow8-cli"
    assert started["details"] == {"via": "cli", "osUser": os_user(), "flowId": flow_id}
    assert trail["play_approved"]["after"] == {"state": "RUN"}


def test_run_timeout_leaves_the_play_waiting(env: dict[str, str], tmp_path: Path) -> None:
    company = _install(env, tmp_path)
    flow_id = _import(env, tmp_path, company, GATED)
    timed = flow8(env, tmp_path, "run", "--flow", flow_id, "--timeout", "1.5")
    assert timed.returncode == 124, timed.stderr
    result = json.loads(timed.stdout)
    play_id = result["playId"]
    assert result["state"] == "WAIT"
    assert f"stopped waiting after 1.5 s: play {play_id} is WAIT" in timed.stderr
    assert "waits for approval of step 'review'" in timed.stderr
    stored = in_store(env, tmp_path, """
        doc = await store.tenant(argv[0]).collection("plays").find_one({"_id": argv[1]})
        print(json.dumps([doc["status"], doc["wait_ref"]]))
    """, company, play_id)  # fmt: skip
    assert stored == ["WAIT", "review"]  # left as it was: still waiting, still decidable

    rejected = flow8(env, tmp_path, "plays", "reject", play_id)
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout) == {"playId": play_id, "state": "FAIL"}
    again = flow8(env, tmp_path, "plays", "approve", play_id)
    assert again.returncode == 1
    assert "not waiting for an approval" in again.stderr
    assert "Traceback" not in again.stderr
    actions = {row["action"] for row in _audit_of(env, tmp_path, company)
               if row.get("target_id") == play_id}  # fmt: skip
    assert actions == {"play_started", "play_rejected"}

    for bad in ("0", "-1", "soon", "nan"):
        refused = flow8(env, tmp_path, "run", "--flow", flow_id, "--timeout", bad)
        assert refused.returncode == 2, bad
        assert "--timeout" in refused.stderr


def test_a_flow_file_waiting_for_approval_ends_at_once(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "gated.json"
    path.write_text(json.dumps(GATED))
    started = time.monotonic()
    ran = flow8(env, tmp_path, "run", str(path))
    assert ran.returncode == 1
    assert json.loads(ran.stdout)["state"] == "WAIT"
    assert "waits for approval of step 'review'" in ran.stderr
    assert "throwaway store" in ran.stderr
    assert time.monotonic() - started < 30  # not waiting for what nothing can give


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(
        f"sqlite:///{tmp_path / 'flow8.db'}", data_dir=tmp_path, durability="normal"
    ) as s:
        yield s


async def _gates(store: Store, *refs: str) -> str:
    flowlets = [{"ref": ref, "appId": "noop", "needsApproval": True} for ref in refs]
    files = FlowFiles(FlowService.over(store), "acme", StoreAuditSink(store))
    flow = await files.import_({"name": "gates", "flowlets": flowlets})
    flow_id: str = flow["id"]
    return flow_id


async def test_each_approval_is_told_once_and_another_engine_decides_it(store: Store) -> None:
    flow_id = await _gates(store, "first", "second")
    settings = EngineSettings()
    told: list[str | None] = []
    async with trio.open_nursery() as nursery:

        def approve(play: Play) -> None:
            told.append(play.wait_ref)
            nursery.start_soon(
                partial(decide, store, "acme", play.id, approve=True, settings=settings)
            )

        watched = await run_play(
            store, "acme", flow_id, None, settings=settings, on_approval=approve, timeout=60
        )
    assert told == ["first", "second"]
    assert watched.play.state is PlayState.DONE
    assert not watched.gave_up
    rows, _ = await AuditQueries(store).page(
        "acme", AuditFilter(target_id=watched.play.id), skip=0, limit=10
    )
    assert sorted(row["action"] for row in rows) == [
        "play_approved", "play_approved", "play_started"]  # fmt: skip


async def test_a_timeout_answers_the_play_as_it_stands(store: Store) -> None:
    flow_id = await _gates(store, "gate")
    told: list[Play] = []
    watched = await run_play(
        store, "acme", flow_id, None, settings=EngineSettings(), on_approval=told.append,
        timeout=0.5,
    )  # fmt: skip
    assert watched.gave_up
    assert watched.play.state is PlayState.WAIT
    assert [play.wait_ref for play in told] == ["gate"]
    assert watched.result() == {"playId": watched.play.id, "state": "WAIT", "out": None,
                                "error": None}  # fmt: skip


async def test_a_throwaway_run_stops_at_an_approval() -> None:
    told: list[Play] = []
    with trio.fail_after(30):
        watched = await run_file(
            {"name": "g", "flowlets": [{"ref": "gate", "appId": "noop", "needsApproval": True}]},
            None, settings=EngineSettings(), on_approval=told.append,
        )  # fmt: skip
    assert not watched.gave_up
    assert watched.play.state is PlayState.WAIT
    assert [play.wait_ref for play in told] == ["gate"]
