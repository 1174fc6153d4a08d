"""`GET /metrics`: Prometheus text that a scraper parses, counters that move as plays run, and
the admin token in front of it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from http_fixtures import IN_PROCESS_URL, OWNER_EMAIL, OWNER_PASSWORD, ApiEnv, start_app
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from flow8.http import HttpDeps, HttpSettings, create_app
from flow8.store import Store

TOKEN = "metrics-admin-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
RUN_ROUTE = "/api/flows/<flowId>/run"


@pytest.fixture
async def metered(nursery: trio.Nursery, store: Store) -> ApiEnv:
    app, identity, audit = await start_app(
        nursery, store, HttpSettings(admin_token=TOKEN), metrics=True
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    env = ApiEnv(IN_PROCESS_URL, store, identity, audit, app, transport)
    async with env.client() as client:
        install = {"company": "Acme", "email": OWNER_EMAIL, "password": OWNER_PASSWORD}
        assert (await client.post("/api/install", json=install)).status_code == 201
    return env


async def _scrape(client: httpx.AsyncClient) -> list[Sample]:
    r = await client.get("/metrics", headers=BEARER)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert r.headers["cache-control"] == "no-store"
    return [s for family in text_string_to_metric_families(r.text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0: none yet)."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_counters_move_by_what_the_plays_did(metered: ApiEnv) -> None:
    steps = [
        {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.x }}"}},
        {"ref": "b", "appId": "noop"},
    ]
    failing = [{"ref": "f", "appId": "fail", "args": {"message": "no"}}]
    async with metered.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        fid = (await c.post("/api/flows", json={"name": "two", "flowlets": steps})).json()["id"]
        bad = (await c.post("/api/flows", json={"name": "bad", "flowlets": failing})).json()["id"]
        before = await _scrape(c)
        for x in range(3):
            r = await c.post(f"/api/flows/{fid}/run?wait=10", json={"x": x})
            assert r.json()["state"] == "DONE", r.text
        r = await c.post(f"/api/flows/{bad}/run?wait=10", json={})
        assert r.json()["state"] == "FAIL", r.text
        run_status = str(r.status_code)
        after = await _scrape(c)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("flow8_plays_started_total", trigger="api") == 4
    assert moved("flow8_plays_finished_total", state="DONE", trigger="api") == 3
    assert moved("flow8_plays_finished_total", state="FAIL", trigger="api") == 1
    assert moved("flow8_step_duration_seconds_count", module="set", state="DONE") == 3
    assert moved("flow8_step_duration_seconds_count", module="noop", state="DONE") == 3
    assert moved("flow8_step_duration_seconds_count", module="fail", state="FAIL") == 1
    # Every step's duration lies in the +Inf bucket: the histogram is whole.
    assert moved("flow8_step_duration_seconds_bucket", module="set", le="+Inf") == 3
    # Requests by the route's template, never the path (no flow id in any label).
    assert moved("flow8_http_requests_total", route=RUN_ROUTE, method="POST") == 4
    assert moved("flow8_http_requests_total", route=RUN_ROUTE, status=run_status) == 4
    assert moved("flow8_http_request_duration_seconds_count", route=RUN_ROUTE) == 4
    assert _value(after, "flow8_http_requests_total", route="/metrics", status="200") >= 1
    labels = str([s.labels for s in after])
    assert fid not in labels
    assert bad not in labels
    # Read at scrape time: nothing runs or waits now.
    assert _value(after, "flow8_plays_running") == 0
    queue = {s.labels["state"]: s.value for s in after if s.name == "flow8_play_queue_depth"}
    assert queue == {"NEW": 0, "DEFERRED": 0, "WAIT": 0}
    assert _value(after, "process_cpu_seconds_total") > 0


async def test_a_waiting_play_is_queued_and_its_cancel_counted_and_404s_have_no_route(
    metered: ApiEnv,
) -> None:
    wait = [{"ref": "w", "appId": "noop", "needsApproval": True}]
    async with metered.session(OWNER_EMAIL, OWNER_PASSWORD) as c:
        fid = (await c.post("/api/flows", json={"name": "w", "flowlets": wait})).json()["id"]
        play_id = (await c.post(f"/api/flows/{fid}/run", json={})).json()["id"]
        for _ in range(200):
            if (await c.get(f"/api/plays/{play_id}")).json()["state"] == "WAIT":
                break
            await trio.sleep(0.05)
        assert (await c.get("/no/such/place/42")).status_code == 404
        waiting = await _scrape(c)
        # Ended by the cancel command, not by its actor: counted all the same.
        assert (await c.post(f"/api/plays/{play_id}/cancel")).json()["state"] == "CANCEL"
        cancelled = await _scrape(c)
    assert _value(waiting, "flow8_play_queue_depth", state="WAIT") == 1
    assert _value(cancelled, "flow8_play_queue_depth", state="WAIT") == 0
    assert _value(waiting, "flow8_plays_finished_total", state="CANCEL") == 0
    assert _value(cancelled, "flow8_plays_finished_total", state="CANCEL", trigger="api") == 1
    assert _value(waiting, "flow8_http_requests_total", route="<unmatched>", status="404") == 1
    assert not [s for s in waiting if "/no/such" in str(s.labels)]
    assert _value(waiting, "flow8_http_requests_total", route="/api/plays/<playId>") >= 1


async def test_token_required(metered: ApiEnv) -> None:
    async with metered.client() as c:
        missing = await c.get("/metrics")
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await c.get("/metrics", headers=BEARER)
    assert (missing.status_code, missing.json()["error"]) == (401, "ADMIN_AUTH_REQUIRED")
    assert (wrong.status_code, wrong.json()["error"]) == (403, "ADMIN_TOKEN_INVALID")
    assert right.status_code == 200


@pytest.mark.parametrize("token", [None, TOKEN])
async def test_404_without_a_token_or_without_metrics(token: str | None) -> None:
    # No token configured: the endpoint does not exist (as /admin/actors). A token but no
    # metrics wired (an app of one area): neither.
    app: Any = create_app(HttpDeps(settings=HttpSettings(admin_token=token)))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(base_url=IN_PROCESS_URL, transport=transport) as c:
        r = await c.get("/metrics", headers=BEARER)
    assert r.status_code == 404
