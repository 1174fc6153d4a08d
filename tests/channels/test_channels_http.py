"""The http listener as a webhook sender sees it: httpx against a real socket."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
import trio
from channel_fixtures import (
    COMPANY,
    HMAC_SECRET,
    TOKEN,
    ChannelEnv,
    channel,
    open_channel_env,
    route,
)
from support.waits import wait_until

from flow8.channels import Limits
from flow8.domain import PlayTrace
from flow8.services.channels import (
    AuthMode,
    ChannelKind,
    HmacSettings,
    HmacStyle,
    ResponseMode,
)
from flow8.store import Store


def _client(env: ChannelEnv, cid: str) -> httpx.AsyncClient:
    port = env.source.channels[cid].port
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)


async def _http(env: ChannelEnv, cid: str = "h1", **kw: Any) -> None:
    env.source.put(channel(cid, ChannelKind.HTTP, kw.pop("routes"), **kw))
    await env.settle()


async def test_sync_route_answers_the_plays_output_with_the_request_as_input(
    env: ChannelEnv,
) -> None:
    await _http(env, routes=[route("orders", [env.flows["echo"]], path="/orders/{id}/items")])
    async with _client(env, "h1") as client:
        r = await client.post(
            "/orders/42/items?x=1&y=two",
            json={"qty": 3},
            headers={"X-Custom": "yes", "Cookie": "session=secret"},
        )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["body"] == {"qty": 3}
    assert got["params"] == {"id": "42"}
    assert got["query"] == {"x": "1", "y": "two"}
    assert got["method"] == "POST"
    assert got["path"] == "/orders/42/items"
    assert got["headers"]["x-custom"] == "yes"
    assert "cookie" not in got["headers"]
    assert got["headers"]["content-type"] == "application/json"


async def test_text_body_stays_text_and_keep_alive_serves_many_requests(env: ChannelEnv) -> None:
    await _http(env, routes=[route("t", [env.flows["echo"]], path="/t")])
    async with _client(env, "h1") as client:
        for i in range(20):
            r = await client.post("/t", content=f"line {i}", headers={"Content-Type": "text/plain"})
            assert r.status_code == 200
            assert r.json()["body"] == f"line {i}"
    stats = env.manager.stats("h1")
    assert stats is not None
    assert stats.requests == 20
    assert stats.connections_total == 1  # one keep-alive connection served them all
    assert stats.plays_started == 20


async def test_async_route_answers_202_queued_and_the_play_runs(env: ChannelEnv) -> None:
    await _http(env, routes=[route("a", [env.flows["echo"]], path="/a", mode=ResponseMode.ASYNC)])
    async with _client(env, "h1") as client:
        r = await client.post("/a", json={"n": 1})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued"
    play = await env.plays.wait("company-a", body["playId"], timeout=10)
    assert play.output["body"] == {"n": 1}
    assert play.trigger.source == "h1"


async def test_several_targets_answer_a_list_of_plays(env: ChannelEnv) -> None:
    await _http(env, routes=[route("m", [env.flows["echo"], env.flows["fail"]], path="/m")])
    async with _client(env, "h1") as client:
        r = await client.post("/m", json={"k": "v"})
    assert r.status_code == 200
    plays = r.json()["plays"]
    assert [p["state"] for p in plays] == ["DONE", "FAIL"]
    assert plays[0]["output"]["body"] == {"k": "v"}
    assert "boom" in plays[1]["error"]


async def test_respond_step_shapes_status_headers_and_body(env: ChannelEnv) -> None:
    await _http(env, routes=[route("r", [env.flows["respond"]], path="/orders/{id}")])
    async with _client(env, "h1") as client:
        r = await client.post("/orders/A-17", json={})
    assert r.status_code == 201
    assert r.headers["x-order"] == "A-17"
    assert r.json() == {"order": "A-17", "created": True}


async def test_failed_play_answers_502_and_slow_play_202_with_its_id(env: ChannelEnv) -> None:
    await _http(
        env,
        routes=[
            route("f", [env.flows["fail"]], path="/fail"),
            route("s", [env.flows["slow"]], path="/slow", timeout=0.2),
        ],
    )
    async with _client(env, "h1") as client:
        r = await client.post("/fail", json={})
        assert r.status_code == 502
        assert set(r.json()) == {"playId", "error"}
        assert "boom" in r.json()["error"]
        r = await client.post("/slow", json={})
    assert r.status_code == 202
    assert r.json()["status"] == "running"
    play = await env.plays.wait("company-a", r.json()["playId"], timeout=10)
    assert play.output == "late"


async def test_unknown_route_404_wrong_method_405_bad_json_400(env: ChannelEnv) -> None:
    await _http(env, routes=[route("g", [env.flows["echo"]], method="GET", path="/only-get")])
    async with _client(env, "h1") as client:
        assert (await client.get("/nope")).status_code == 404
        r = await client.post("/only-get", json={})
        assert r.status_code == 405
        r = await client.get("/only-get")
        assert r.status_code == 200
        assert r.json()["method"] == "GET"
    await _http(env, "h2", routes=[route("p", [env.flows["echo"]], path="/p")])
    async with _client(env, "h2") as client:
        r = await client.post(
            "/p", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["error"] == "INVALID_JSON"


async def test_a_route_to_a_disabled_flow_answers_409_and_starts_nothing(env: ChannelEnv) -> None:
    await _http(env, routes=[route("off", [env.flows["paused"]], path="/off")])
    async with _client(env, "h1") as client:
        r = await client.post("/off", json={"x": 1})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "FLOW_DISABLED"
    plays, total = await env.plays.list(COMPANY, flow_id=env.flows["paused"])
    assert (plays, total) == ([], 0)


async def test_bearer_token_checked(env: ChannelEnv) -> None:
    await _http(
        env, auth=AuthMode.HEADER_TOKEN, routes=[route("p", [env.flows["echo"]], path="/p")]
    )
    async with _client(env, "h1") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = await client.post("/p", json={}, headers=headers)
            assert r.status_code == 401
            assert r.json() == {"error": "UNAUTHORIZED"}
        r = await client.post("/p", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert "authorization" not in r.json()["headers"]


def _sign(message: bytes, algorithm: str = "sha256", secret: str = HMAC_SECRET) -> str:
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).hexdigest()


@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
async def test_hmac_plain_github_style(env: ChannelEnv, algorithm: str) -> None:
    header = "X-Hub-Signature-256" if algorithm == "sha256" else "X-Hub-Signature"
    settings = HmacSettings(header, algorithm, f"{algorithm}=", HmacStyle.PLAIN, HMAC_SECRET)
    await _http(
        env, auth=AuthMode.HMAC, hmac=settings, routes=[route("p", [env.flows["echo"]], path="/p")]
    )
    body = json.dumps({"action": "opened"}).encode()
    good = f"{algorithm}={_sign(body, algorithm)}"
    async with _client(env, "h1") as client:

        async def post(sig: str) -> httpx.Response:
            headers = {"Content-Type": "application/json", header: sig}
            return await client.post("/p", content=body, headers=headers)

        for bad in (
            good[:-1] + "0" if not good.endswith("0") else good[:-1] + "1",
            _sign(body, algorithm),
            f"{algorithm}={_sign(body + b' ', algorithm)}",
        ):
            r = await post(bad)
            assert r.status_code == 401
            assert r.json() == {"error": "UNAUTHORIZED"}
        r = await client.post("/p", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 401
        r = await post(good)
    assert r.status_code == 200, r.text
    assert r.json()["body"] == {"action": "opened"}
    assert header.lower() not in r.json()["headers"]


async def test_hmac_stripe_style_with_timestamp(env: ChannelEnv) -> None:
    settings = HmacSettings("Stripe-Signature", "sha256", "", HmacStyle.STRIPE, HMAC_SECRET)
    await _http(
        env, auth=AuthMode.HMAC, hmac=settings, routes=[route("p", [env.flows["echo"]], path="/p")]
    )
    body = b'{"type":"charge.succeeded"}'

    def header(t: int, secret: str = HMAC_SECRET) -> str:
        return f"t={t},v1={_sign(f'{t}.'.encode() + body, secret=secret)}"

    now = int(time.time())
    async with _client(env, "h1") as client:

        async def post(sig: str) -> httpx.Response:
            return await client.post(
                "/p",
                content=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": sig},
            )

        assert (await post(header(now - 600))).status_code == 401  # too old: a replay
        assert (await post(header(now, "other-secret"))).status_code == 401
        assert (await post(f"t={now},v1=" + "0" * 64)).status_code == 401
        assert (await post(f"v1={_sign(body)}")).status_code == 401  # no timestamp
        r = await post(header(now))
        assert r.status_code == 200, r.text
        r = await post(f"t={now},v1={'0' * 64},v1={_sign(f'{now}.'.encode() + body)}")
        assert r.status_code == 200  # a rolled secret: any v1 may match


async def test_hmac_slack_style_with_timestamp(env: ChannelEnv) -> None:
    settings = HmacSettings("X-Slack-Signature", "sha256", "", HmacStyle.SLACK, HMAC_SECRET)
    await _http(
        env, auth=AuthMode.HMAC, hmac=settings, routes=[route("p", [env.flows["echo"]], path="/p")]
    )
    body = b"token=x&team_id=T1&command=%2Fdeploy"

    def headers(ts: int, sig_ts: int | None = None) -> dict[str, str]:
        base = f"v0:{sig_ts if sig_ts is not None else ts}:".encode() + body
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": "v0=" + _sign(base),
        }

    now = int(time.time())
    async with _client(env, "h1") as client:
        assert (
            await client.post("/p", content=body, headers=headers(now - 301))
        ).status_code == 401
        assert (
            await client.post("/p", content=body, headers=headers(now, now - 1))
        ).status_code == 401
        r = await client.post("/p", content=body, headers=headers(now))
    assert r.status_code == 200, r.text
    assert r.json()["body"] == body.decode()


async def test_body_over_the_limit_is_413_before_it_is_read(env: ChannelEnv) -> None:
    await _http(env, routes=[route("p", [env.flows["echo"]], path="/p")])
    async with _client(env, "h1") as client:
        r = await client.post("/p", content=b"x" * 5000)  # the env's limit is 4096
        assert r.status_code == 413

        r = await client.post("/p", content=b"z" * 4000)
        assert r.status_code == 200
    port = env.source.channels["h1"].port
    # Raw: a declared size past the limit is refused with nothing read.
    head = await _raw(port, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in head.lower()
    # Chunked (no declared size): refused once the chunks pass the limit.
    chunk = b"3e8\r\n" + b"y" * 1000 + b"\r\n"
    head = await _raw(
        port,
        b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 5,
    )
    assert head.startswith(b"HTTP/1.1 413")


async def _raw(port: int | None, request: bytes) -> bytes:
    """What the server answers a raw request, up to the end of its head."""
    assert port is not None
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(4096)
    return data


async def test_rate_limit_per_client_answers_429(env: ChannelEnv) -> None:
    await _http(
        env,
        rate_per_second=5.0,
        routes=[route("a", [env.flows["echo"]], path="/a", mode=ResponseMode.ASYNC)],
    )
    async with _client(env, "h1") as client:
        statuses = [(await client.post("/a", json={})).status_code for _ in range(15)]
        assert statuses[:10] == [202] * 10  # a burst of twice the rate
        assert 429 in statuses[10:]
        await trio.sleep(0.5)  # refilled: 2.5 tokens
        assert (await client.post("/a", json={})).status_code == 202


async def test_idempotency_key_answers_the_same_play(env: ChannelEnv) -> None:
    await _http(env, routes=[route("a", [env.flows["echo"]], path="/a", mode=ResponseMode.ASYNC)])
    async with _client(env, "h1") as client:
        one = await client.post("/a", json={"x": 1}, headers={"Idempotency-Key": "k-1"})
        two = await client.post("/a", json={"x": 1}, headers={"Idempotency-Key": "k-1"})
        other = await client.post("/a", json={"x": 1}, headers={"Idempotency-Key": "k-2"})
        reused = await client.post("/a", json={"x": 2}, headers={"Idempotency-Key": "k-1"})
    assert one.json()["playId"] == two.json()["playId"]
    assert other.json()["playId"] != one.json()["playId"]
    assert reused.status_code == 409


async def test_connections_past_the_limit_are_closed(env: ChannelEnv) -> None:
    await _http(env, max_connections=2, routes=[route("a", [env.flows["echo"]], path="/a")])
    port = env.source.channels["h1"].port
    assert port is not None
    held = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(2)]
    stats = env.manager.stats("h1")
    assert stats is not None
    await wait_until(lambda: stats.connections == 2, timeout=2, what="2 connections")
    extra = await trio.open_tcp_stream("127.0.0.1", port)
    with trio.fail_after(2):
        await extra.send_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await extra.receive_some(100) == b""  # closed without an answer
    assert stats.rejected_connections == 1
    for s in held:
        await s.aclose()
    await wait_until(lambda: stats.connections == 0, timeout=2, what="connections closed")
    async with _client(env, "h1") as client:
        assert (await client.post("/a", json={})).status_code == 200
    await extra.aclose()


async def test_every_request_audited_once_without_secrets(env: ChannelEnv) -> None:
    await _http(
        env, auth=AuthMode.HEADER_TOKEN, routes=[route("p", [env.flows["echo"]], path="/p")]
    )
    async with _client(env, "h1") as client:
        ok = await client.post("/p", json={"a": 1}, headers={"Authorization": f"Bearer {TOKEN}"})
        bad = await client.post("/p", json={}, headers={"Authorization": "Bearer guess"})
        missing = await client.post("/nowhere", json={})
    assert (ok.status_code, bad.status_code, missing.status_code) == (200, 401, 404)
    entries = [e for e in env.audit if e.action == "channel_request"]
    assert [e.status for e in entries] == [200, 401, 404]
    first = entries[0]
    assert first.company_id == "company-a"
    assert (first.target_type, first.target_id) == ("channel", "h1")
    assert first.details["route"] == "p"
    (play_id,) = first.details["playIds"]
    assert (await env.plays.get("company-a", play_id)).trigger.source == "h1"
    assert entries[1].details["playIds"] == []
    assert entries[2].details["route"] is None
    assert first.details["client"].startswith("127.0.0.1:")
    assert first.path == "/p"
    assert first.method == "POST"
    text = json.dumps([e.to_doc() for e in env.audit], default=str)
    assert TOKEN not in text
    assert "guess" not in text


async def test_text_that_is_not_unicode_is_refused_at_the_boundary(env: ChannelEnv) -> None:
    await _http(env, routes=[route("p", [env.flows["echo"]], path="/p")])
    async with _client(env, "h1") as client:
        r = await client.post("/p", content=b"\xff\xfe bad", headers={"Content-Type": "text/plain"})
        assert (r.status_code, r.json()["error"]) == (400, "INVALID_TEXT")
        lone = b'{"a": "\\ud800"}'
        r = await client.post("/p", content=lone, headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]) == (400, "INVALID_TEXT")
        assert (await client.post("/p", json={"a": "caf\u00e9 \U0001f600"})).status_code == 200


async def test_a_body_sent_too_slowly_is_answered_408_and_closed(store: Store) -> None:
    limits = Limits(max_body_bytes=4096, body_seconds=0.3)
    async with open_channel_env(store, limits=limits) as env:
        await _http(env, routes=[route("p", [env.flows["echo"]], path="/p")])
        port = env.source.channels["h1"].port
        head = await _raw(
            port, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
        )
        assert head.startswith(b"HTTP/1.1 408")


async def test_a_request_id_and_traceparent_reach_the_answer_the_audit_and_the_plays(
    env: ChannelEnv,
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    await _http(
        env,
        routes=[
            route("p", [env.flows["echo"]], path="/p"),
            route("r", [env.flows["respond"]], path="/orders/{id}"),
        ],
    )
    async with _client(env, "h1") as client:
        sent = await client.post(
            "/p",
            json={},
            headers={"X-Request-Id": "hook-1", "traceparent": f"00-{trace_id}-{'b' * 16}-01"},
        )
        made = await client.post("/p", json={}, headers={"traceparent": "not-a-trace"})
        shaped = await client.post("/orders/A-1", json={})  # a respond step's answer too
    assert (sent.status_code, made.status_code, shaped.status_code) == (200, 200, 201)
    assert sent.headers["x-request-id"] == "hook-1"
    made_id = made.headers["x-request-id"]
    assert made_id not in ("hook-1", shaped.headers["x-request-id"])
    entries = [e for e in env.audit if e.action == "channel_request"]
    assert [e.correlation_id for e in entries] == [
        "hook-1",
        made_id,
        shaped.headers["x-request-id"],
    ]
    traces = []
    for entry in entries[:2]:
        (play_id,) = entry.details["playIds"]
        play = await env.plays.get(COMPANY, play_id)
        traces.append(play.trace)
    assert traces[0] == PlayTrace("hook-1", trace_id, "01")
    assert traces[1] == PlayTrace(made_id)  # an invalid traceparent is no trace
