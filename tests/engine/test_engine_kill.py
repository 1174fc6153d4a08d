"""SIGKILL a process running 100 plays at random points, restart it, and check that every
play ends, no idempotent effect is lost and no non-idempotent step ran twice."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from flow8.store import open_store

WORKER = Path(__file__).with_name("kill_worker.py")
ROOT = Path(__file__).resolve().parents[2]
# The worker imports the tests' helpers as the tests do (pytest's pythonpath).
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])
    ),
}


async def _spawn(*args: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, str(WORKER), *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait(proc: trio.Process, timeout: float) -> int:
    with trio.fail_after(timeout):
        return await proc.wait()


@pytest.mark.slow
@pytest.mark.wall_clock  # real processes, killed at random points in real time
async def test_sigkill_at_random_points_loses_nothing_and_repeats_no_side_effect(
    tmp_path: Path,
) -> None:
    rng = random.Random(8)
    assert await _wait(await _spawn("seed", str(tmp_path), "100"), 60) == 0
    kills = 0
    for _ in range(6):
        proc = await _spawn("run", str(tmp_path))
        await trio.sleep(rng.uniform(0.8, 1.8))  # a random point of its run: the test's design
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        await _wait(proc, 30)
    assert kills >= 3
    assert await _wait(await _spawn("run", str(tmp_path)), 120) == 0

    async with open_store(
        f"sqlite:///{tmp_path / 'flow8.db'}", data_dir=tmp_path, durability="normal"
    ) as store:
        scope = store.tenant("kill")
        plays = await scope.collection("plays").find({})
        marks = {d["key"] for d in await scope.collection("kv").find({"scope": "global"})}
    assert len(plays) == 100
    states = collections.Counter(p["status"] for p in plays)
    assert set(states) <= {"DONE", "FAIL"}, states
    log = tmp_path / "effects.log"
    effects = collections.Counter(log.read_text().split()) if log.exists() else {}
    assert all(n == 1 for n in effects.values()), "a non-idempotent step ran twice"
    for p in plays:
        key = f"{p['_id']}:effect"
        if p["status"] == "DONE":
            assert effects.get(key) == 1
            assert f"done-{p['_id']}" in marks  # the idempotent effect was not lost
            assert p["output"] == p["input"]["n"] * 2
        else:
            assert "interrupted" in (p["error"] or "")
