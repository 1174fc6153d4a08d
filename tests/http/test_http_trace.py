"""Correlation in logs, and W3C trace context: every line logged while a request is handled
carries its correlation id (and no other request's); a run request's `traceparent` reaches
the outbound requests of the play it starts, with a span id of their own."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import httpx
import pytest
import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv, start_app
from support.local_http import LocalServer, ok
from support.log_lines import captured_logs

from flow8.http import HttpSettings
from flow8.logs import get_logger

# Hypercorn on a real socket (a task per request, as deployed) and a real server the plays'
# requests reach on loopback: the real clock (see conftest).
pytestmark = pytest.mark.wall_clock

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
LOOPBACK = {
    "name": "loopback",
    "kind": "request",
    "provider": "http",
    "config": {"allowedCidrs": ["127.0.0.1/32"]},
    "isDefault": True,
}
log = get_logger("flow8.test")


async def test_every_line_a_request_logs_carries_its_correlation_id_and_only_its(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    app, _, _ = await start_app(nursery, store, HttpSettings())
    both_in = trio.Event()
    arrived = 0

    async def logs() -> str:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both_in.set()
        with trio.fail_after(5):
            await both_in.wait()  # the first two requests are in flight together

        async def helper() -> None:
            log.info("helper_logged")

        async with trio.open_nursery() as helpers:  # tasks it starts log it too
            helpers.start_soon(helper)
        await trio.to_thread.run_sync(lambda: log.info("thread_logged"))
        log.info("handler_logged")
        return "ok"

    app.add_url_rule("/api/logs-test", view_func=logs, methods=["GET"])
    url = await serve(app)
    with captured_logs() as lines:
        async with httpx.AsyncClient(base_url=url) as client:
            async with trio.open_nursery() as together:
                for request_id in ("first-1", "second-2"):
                    headers = {"X-Request-Id": request_id}
                    together.start_soon(partial(client.get, "/api/logs-test", headers=headers))
            made = await client.get("/api/logs-test", headers={"traceparent": TRACEPARENT})
            assert made.status_code == 200
        log.info("test_logged")
    made_id = made.headers["x-request-id"]
    for event in ("handler_logged", "helper_logged", "thread_logged"):
        seen = sorted(
            (line.get("correlation_id"), line.get("trace_id")) for line in lines.named(event)
        )
        assert seen == sorted([("first-1", None), ("second-2", None), (made_id, TRACE_ID)]), event
    (after,) = lines.named("test_logged")
    assert "correlation_id" not in after  # nothing outlives a request


async def _flow(client: httpx.AsyncClient, url: str, **step: Any) -> str:
    body = {
        "name": "traced",
        "flowlets": [{"ref": "call", "appId": "curl", "args": {"url": url, **step}}],
    }
    r = await client.post("/api/flows", json=body)
    assert r.status_code == 201, r.text
    flow_id: str = r.json()["id"]
    return flow_id


async def test_a_run_requests_traceparent_goes_on_to_the_plays_requests(
    installed: ApiEnv, nursery: trio.Nursery
) -> None:
    server = LocalServer(ok)
    await nursery.start(server.serve)
    target = f"http://127.0.0.1:{server.port}/hook"
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        assert (await owner.post("/api/components", json=LOOPBACK)).status_code == 201
        flow_id = await _flow(owner, target)
        r = await owner.post(
            f"/api/flows/{flow_id}/run?wait=10",
            json={"n": 1},
            headers={"traceparent": TRACEPARENT, "X-Request-Id": "run-1"},
        )
        assert r.status_code == 200, r.text
        play = r.json()
        assert play["state"] == "DONE", play["error"]
        assert (play["correlationId"], play["traceId"]) == ("run-1", TRACE_ID)
        again = (await owner.get(f"/api/plays/{play['id']}")).json()
        assert (again["correlationId"], again["traceId"]) == ("run-1", TRACE_ID)
        (seen,) = server.requests
        version, trace_id, span_id, flags = seen.headers["traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
        assert re.fullmatch("[0-9a-f]{16}", span_id)
        assert span_id not in (PARENT_ID, "0" * 16)  # a span of its own

        # A step that sets its own traceparent sends that one.
        own = f"00-{'a' * 32}-{'b' * 16}-00"
        flow_id = await _flow(owner, target, headers={"Traceparent": own})
        r = await owner.post(
            f"/api/flows/{flow_id}/run?wait=10", headers={"traceparent": TRACEPARENT}
        )
        assert r.json()["state"] == "DONE", r.text
        assert server.requests[-1].headers["traceparent"] == own


async def test_an_invalid_traceparent_is_ignored(installed: ApiEnv, nursery: trio.Nursery) -> None:
    server = LocalServer(ok)
    await nursery.start(server.serve)
    async with installed.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        assert (await owner.post("/api/components", json=LOOPBACK)).status_code == 201
        flow_id = await _flow(owner, f"http://127.0.0.1:{server.port}/hook")
        for bad in ("garbage", f"00-{'0' * 32}-{PARENT_ID}-01", TRACEPARENT.upper(), ""):
            r = await owner.post(
                f"/api/flows/{flow_id}/run?wait=10",
                headers={"traceparent": bad, "X-Request-Id": "bad-tp"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "DONE", r.text
            assert (r.json()["correlationId"], r.json()["traceId"]) == ("bad-tp", None)
            # flow8 starts no trace of its own: nothing is sent on
            assert "traceparent" not in server.requests[-1].headers
        assert len(server.requests) == 4
