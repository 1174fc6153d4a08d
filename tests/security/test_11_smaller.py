"""Attack 11: the smaller ones.

* Files: the data directory and the database were created world-readable (0755 / 0644, by the
  process umask; only the generated key file was 0600), so any local user could copy every
  tenant's data. Now the directory is 0700 and every file in it 0600, whatever the umask, and
  a database an earlier version left readable is made private when the server opens it
  (and an existing data directory readable by others is made private).
* Names: a step's `ref`, flow and step names and descriptions had no length limit (a
  100,000-character ref was stored, and repeated in every layer id and event). Now a flow
  asking for more is refused with 422 naming each field (`ref` 100, names 200, description
  10,000 characters), on create, update and when a step is added or replaced, and nothing
  is stored; `componentConfigIds` are bounded too.
* Stalls: while the database stalled, `/run` answered `503 retry` although the play had been
  created and later ran, so a client retrying without an `Idempotency-Key` ran it twice. Now
  once a play exists its id is the answer (202), never a retryable error. Here the database's
  write lock is held from another process (as a stalled disk or a backup tool would): a stall
  the store outlasts answers 202 and the play runs once; one it gives up on (its 5 s busy
  timeout) answers 503, and then nothing was created, so the client's retry runs it once.
  Reads need no write lock: `/healthz` and the victim's reads are answered in milliseconds
  throughout (the victim's runs cannot be: the whole database is stalled, not by a tenant).
  The case between (a start still pending at the run route's 30 s deadline, answered 202 with
  the play handed to the store) is covered in tests/engine/test_engine_limits.py: the route's
  deadline is not configurable, and a 30 s stall is too slow for this suite.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from attack_kit import Target, Tenant, launch

LONG = "x" * 100_000


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _private(data_dir: Path) -> dict[str, str]:
    """Whatever in the data directory group or others could reach: {path: mode}."""
    exposed = {}
    for path in [data_dir, *data_dir.rglob("*")]:
        if _mode(path) & 0o077:
            exposed[str(path.relative_to(data_dir.parent))] = oct(_mode(path))
    return exposed


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _stop(target: Target) -> None:
    target.logs()  # SIGINT; required to exit 0


def test_the_data_directory_and_its_files_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    # The server is started with umask 000: nothing it creates may rely on the umask.
    with _umask(0):
        target = launch(tmp_path)
    try:
        with target.bystander():
            flow = target.attacker.flow([{"ref": "a", "appId": "set", "args": {"value": 1}}])
            for i in range(20):
                target.attacker.run_done(flow, {"i": i})  # the WAL and its index exist now
            data = target.data_dir
            assert _mode(data) == 0o700
            assert _mode(data / "flow8.db") == 0o600
            assert _mode(data / "encryption.key") == 0o600
            for name in ("flow8.db-wal", "flow8.db-shm"):
                if (data / name).exists():
                    assert _mode(data / name) == 0o600, name
            assert _private(data) == {}
    finally:
        _stop(target)
    assert _private(target.data_dir) == {}  # and after it stopped


def test_a_database_an_earlier_version_left_readable_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    sqlite3.connect(data / "flow8.db").close()
    (data / "flow8.db").chmod(0o644)
    target = launch(tmp_path)
    try:
        with target.bystander():
            target.attacker.run_done(
                target.attacker.flow([{"ref": "a", "appId": "set", "args": {"value": 1}}])
            )
            assert _mode(data / "flow8.db") == 0o600
            for name in ("flow8.db-wal", "flow8.db-shm"):
                if (data / name).exists():
                    assert _mode(data / name) == 0o600, name
    finally:
        _stop(target)


def test_a_data_directory_an_earlier_version_left_open_is_made_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    target = launch(tmp_path)
    try:
        assert _private(data) == {}
    finally:
        _stop(target)


def _refused(tenant: Tenant, method: str, path: str, body: Any) -> list[dict[str, str]]:
    r = tenant.client.request(method, path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "VALIDATION_FAILED"
    fields: list[dict[str, str]] = r.json()["fields"]
    return fields


REF = {"field": "flowlets[0].ref", "message": "must be at most 100 characters"}


def test_names_longer_than_their_limits_are_refused_and_nothing_is_stored(
    target: Target,
) -> None:
    a = target.attacker
    step = {"ref": "a", "appId": "noop", "args": {"value": 1}}
    with target.bystander():
        for body, fields in [
            (
                {"name": "n", "flowlets": [{**step, "ref": "r" * 101}]},
                [REF],
            ),
            (
                {"name": "n", "flowlets": [{**step, "ref": LONG, "name": "a"}]},
                [REF],
            ),
            (
                {"name": "n" * 201, "flowlets": [step]},
                [{"field": "name", "message": "must be at most 200 characters"}],
            ),
            (
                {"name": "n", "flowlets": [{**step, "name": "s" * 201}]},
                [{"field": "flowlets[0].name", "message": "must be at most 200 characters"}],
            ),
            (
                {"name": "n", "description": "d" * 10_001, "flowlets": [step]},
                [{"field": "description", "message": "must be at most 10000 characters"}],
            ),
            (
                {"name": "n", "group": "g" * 201, "flowlets": [step]},
                [{"field": "group", "message": "must be at most 200 characters"}],
            ),
            (
                {
                    "name": LONG,
                    "description": LONG,
                    "group": LONG,
                    "flowlets": [{**step, "ref": LONG, "name": LONG}],
                },
                [  # in the order of the model's fields
                    {"field": "name", "message": "must be at most 200 characters"},
                    REF,
                    {"field": "flowlets[0].name", "message": "must be at most 200 characters"},
                    {"field": "description", "message": "must be at most 10000 characters"},
                    {"field": "group", "message": "must be at most 200 characters"},
                ],
            ),
        ]:
            assert _refused(a, "POST", "/api/flows", body) == fields, body.keys()
        # At the limits, a flow is stored.
        at_limits = {
            "name": "n" * 200,
            "description": "d" * 10_000,
            "group": "g" * 200,
            "flowlets": [{**step, "ref": "r" * 100, "name": "s" * 200}],
        }
        r = a.client.post("/api/flows", json=at_limits)
        assert r.status_code == 201, r.text
        flow_id = r.json()["id"]
        before = a.client.get(f"/api/flows/{flow_id}").json()
        # An existing flow cannot be given them either: updated, a step added or replaced.
        long_step = {**step, "ref": LONG, "name": "a"}
        assert _refused(a, "PUT", f"/api/flows/{flow_id}", {**at_limits, "name": LONG}) == [
            {"field": "name", "message": "must be at most 200 characters"}
        ]
        # A layer's body is a flowlet: its fields are named as in the body.
        assert _refused(a, "POST", f"/api/flows/{flow_id}/layers", long_step) == [
            {"field": "ref", "message": "must be at most 100 characters"}
        ]
        assert _refused(
            a, "PUT", f"/api/flows/{flow_id}/layers/{'r' * 100}", {**step, "name": LONG}
        ) == [{"field": "name", "message": "must be at most 200 characters"}]
        # The flow at the limits runs; its layer ids carry the 100-character ref.
        play = a.run_done(flow_id)
        assert [la["id"] for la in a.layers(play["id"])] == [f"{play['id']}:{'r' * 100}:"]
    # Nothing half-stored: one flow, at its first version, as it was.
    assert a.client.get(f"/api/flows/{flow_id}").json() == before
    assert a.client.get(f"/api/flows/{flow_id}/versions").json()["total"] == 1
    assert a.client.get("/api/flows?size=100").json()["total"] == 1


def test_a_long_ref_is_reported_once(target: Target) -> None:
    with target.bystander():
        fields = _refused(
            target.attacker,
            "POST",
            "/api/flows",
            {"name": "n", "flowlets": [{"ref": LONG, "appId": "noop"}]},
        )
    assert fields == [REF]


def test_component_config_ids_are_bounded(target: Target) -> None:
    with target.bystander():
        r = target.attacker.client.post(
            "/api/flows",
            json={
                "name": "n",
                "flowlets": [{"ref": "a", "appId": "noop", "componentConfigIds": {LONG: LONG}}],
            },
        )
    assert r.status_code == 422, r.text[:300]
    assert r.json()["fields"][0]["field"].startswith("flowlets[0].componentConfig")


# -- a stalled database ---------------------------------------------------------------------

BUSY_TIMEOUT = 5.0  # the store's sqlite busy_timeout: how long a write waits for the lock
READS_MS = 250.0


class _Stall:
    """The database's write lock, held from another connection (as a stalled disk or a
    backup tool would) until `release()` or at most `seconds`."""

    def __init__(self, target: Target, seconds: float) -> None:
        self._con = sqlite3.connect(
            target.data_dir / "flow8.db", timeout=10, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        self._con.execute("BEGIN IMMEDIATE")
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.release)
        self._timer.start()

    def release(self) -> None:
        with self._lock:
            if self._con.in_transaction:
                self._con.rollback()

    def close(self) -> None:
        self._timer.cancel()
        self.release()
        self._con.close()


@contextlib.contextmanager
def _stalled(target: Target, seconds: float, slow: list[str]) -> Iterator[_Stall]:
    """A stall of the database while reads (which need no write lock) are watched: /healthz
    and the victim's flows and plays must keep answering, in milliseconds rather than the
    seconds a write waits (READS_MS: watched from this test's own process, which shares the
    two cores with the server, so with more margin than the bystander's 100 ms)."""
    stall = _Stall(target, seconds)
    stop = threading.Event()
    reads = threading.Thread(target=_reads_answer_quickly, args=(target, stop, slow))
    reads.start()
    try:
        yield stall
    finally:
        stop.set()
        reads.join()
        stall.close()


def _reads_answer_quickly(target: Target, stop: threading.Event, slow: list[str]) -> None:
    headers = {"Authorization": f"Bearer {target.victim.key}"}
    with httpx.Client(base_url=target.base, headers=headers, timeout=10) as client:
        while not stop.is_set():
            for path in ("/healthz", "/api/flows?size=5", "/api/plays?size=5"):
                started = time.perf_counter()
                r = client.get(path)
                ms = (time.perf_counter() - started) * 1000
                if r.status_code != 200 or ms > READS_MS:
                    slow.append(f"{path}: {r.status_code} in {ms:.0f} ms")
            time.sleep(0.02)


def _appended(tenant: Tenant) -> Any:
    r = tenant.client.get("/api/kv?scope=global")
    assert r.status_code == 200, r.text
    return {e["key"]: e["value"] for e in r.json()["data"]}.get("runs")


def _plays(tenant: Tenant, flow_id: str) -> list[dict[str, Any]]:
    r = tenant.client.get(f"/api/plays?flowId={flow_id}&size=100")
    assert r.status_code == 200, r.text
    plays: list[dict[str, Any]] = r.json()["data"]
    return plays


def test_a_stalled_start_answers_the_play_or_a_retry_that_is_safe(target: Target) -> None:
    """A flow whose step is not idempotent (kv-append: running it twice appends twice) is
    started without an Idempotency-Key while the database's write lock is held."""
    a = target.attacker
    append = {"key": "runs", "value": 1, "scope": "global"}
    flow = a.flow([{"ref": "count", "appId": "kv-append", "args": append}])
    slow: list[str] = []
    # A stall the store outlasts: the start is answered with the play once the lock is free.
    with _stalled(target, BUSY_TIMEOUT - 2.5, slow):
        r = a.client.post(f"/api/flows/{flow}/run", json={"attempt": 1})
    assert r.status_code == 202, r.text
    first = r.json()["id"]
    assert a.wait_play(first)["state"] == "DONE"
    assert _appended(a) == [1]
    # A stall it gives up on: 503, and nothing was created, so retrying is safe. (Held up to
    # two busy timeouts: a batch already waiting for the lock, e.g. the audit trail's, may
    # fail first, and the one holding the start waits its own five seconds after it.)
    with _stalled(target, 2 * BUSY_TIMEOUT + 2, slow) as stall:
        started = time.monotonic()
        r = a.client.post(f"/api/flows/{flow}/run", json={"attempt": 2})
        waited = time.monotonic() - started
        stall.release()
    assert r.status_code == 503, r.text
    assert r.json() == {
        "error": "SERVICE_UNAVAILABLE",
        "message": "the database is unavailable; retry shortly",
        "statusCode": 503,
    }
    assert BUSY_TIMEOUT - 0.5 < waited < 2 * BUSY_TIMEOUT + 2
    assert [p["id"] for p in _plays(a, flow)] == [first]
    # The client retries, once the database is back: one more run, not two.
    with target.bystander():
        retried = a.run_done(flow, {"attempt": 2})
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # nothing else turns up later either
        assert sorted(p["id"] for p in _plays(a, flow)) == sorted([first, retried["id"]])
        time.sleep(0.25)
    assert _appended(a) == [1, 1]
    assert slow == [], slow
