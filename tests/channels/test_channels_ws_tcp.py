"""The ws and tcp listeners as their clients see them: trio-websocket and raw sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio_websocket
from channel_fixtures import TOKEN, ChannelEnv, channel, route
from support.waits import wait_until

from flow8.services.channels import AuthMode, ChannelKind


async def _ws_channel(env: ChannelEnv, cid: str = "w1", **kw: Any) -> str:
    routes = kw.pop("routes", None) or [
        route("echo", [env.flows["echo"]]),
        route("two", [env.flows["two"]]),
        route("fail", [env.flows["fail"]]),
        route("slow", [env.flows["slow"]]),
    ]
    ch = env.source.put(channel(cid, ChannelKind.WS, routes, **kw))
    await env.settle()
    return f"ws://127.0.0.1:{ch.port}/"


@asynccontextmanager
async def ws_connect(
    url: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    message_queue_size: int = 1,
    receive_buffer: int | None = None,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A client connection over a socket this test owns and always closes (the library's own
    ``open_websocket_url`` leaves its socket to the garbage collector after a refused or
    server-closed handshake). ``receive_buffer`` shrinks the socket's kernel buffer before it
    connects (the TCP window is agreed then), so a client that stops reading pushes back on
    the server after a few kilobytes rather than after the megabytes loopback allows."""
    port = int(url.rsplit(":", 1)[1].strip("/"))
    if receive_buffer is None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    else:
        sock = trio.socket.socket()
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, receive_buffer)
        await sock.connect(("127.0.0.1", port))
        stream = trio.SocketStream(sock)
    rejected: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery,
                stream,
                "127.0.0.1",
                "/",
                extra_headers=headers,
                message_queue_size=message_queue_size,
            )
            try:
                yield ws
            finally:
                with trio.move_on_after(1):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    except* trio_websocket.ConnectionRejected as group:
        rejected.extend(group.exceptions)
    finally:
        await trio.aclose_forcefully(stream)
    if rejected:
        raise rejected[0]


async def _until_done(
    ws: trio_websocket.WebSocketConnection, ids: set[Any]
) -> list[dict[str, Any]]:
    """Every message until each id in ``ids`` has its result or error."""
    got, pending = [], set(ids)
    with trio.fail_after(10):
        while pending:
            msg = json.loads(await ws.get_message())
            got.append(msg)
            if "result" in msg or "error" in msg:
                pending.discard(msg["id"])
    return got


async def test_ws_message_gets_its_events_then_its_result(env: ChannelEnv) -> None:
    url = await _ws_channel(env)
    async with trio_websocket.open_websocket_url(url) as ws:
        await ws.send_message(json.dumps({"id": "m1", "route": "two", "args": {"hello": "ws"}}))
        got = await _until_done(ws, {"m1"})
    assert got[-1]["result"] == {"hello": "ws"}
    play_id = got[-1]["playId"]
    types = [m["event"]["type"] for m in got[:-1]]
    # The first event is the play's start: nothing is lost to the start racing the
    # subscription.
    assert types[0] == "play:started"
    assert types[-1] == "play:completed"
    assert types.count("play:layer:completed") == 2
    assert all(m["id"] == "m1" and m["playId"] == play_id for m in got)
    assert all(m["event"]["playId"] == play_id for m in got[:-1])


async def test_ws_several_plays_in_flight_and_errors(env: ChannelEnv) -> None:
    url = await _ws_channel(env)
    async with trio_websocket.open_websocket_url(url) as ws:
        await ws.send_message(json.dumps({"id": 1, "route": "slow", "args": {}}))
        await ws.send_message(json.dumps({"id": 2, "route": "echo", "args": [1, 2]}))
        await ws.send_message(json.dumps({"id": 3, "route": "fail", "args": {}}))
        await ws.send_message(json.dumps({"id": 4, "route": "nope", "args": {}}))
        await ws.send_message("not json")
        got = await _until_done(ws, {1, 2, 3, 4, None})
    ends = {m["id"]: m for m in got if "result" in m or "error" in m}
    assert ends[2]["result"] == [1, 2]
    assert ends[1]["result"] == "late"
    assert "boom" in ends[3]["error"]
    assert ends[4]["error"] == "ROUTE_NOT_FOUND"
    assert ends[None]["error"] == "BAD_MESSAGE"
    order = [m["id"] for m in got if "result" in m]
    assert order.index(2) < order.index(1)  # the quick play did not wait for the slow one


async def test_ws_origin_and_token_checked_at_the_handshake(env: ChannelEnv) -> None:
    url = await _ws_channel(env, auth=AuthMode.HEADER_TOKEN)
    bearer = (b"authorization", f"Bearer {TOKEN}".encode())
    for headers, status in (
        ([bearer, (b"origin", b"https://evil.example")], 403),
        ([(b"origin", b"https://app.example")], 401),
        ([(b"authorization", b"Bearer wrong")], 401),
    ):
        with pytest.raises(trio_websocket.ConnectionRejected) as refused:
            async with ws_connect(url, headers):
                pass
        assert refused.value.status_code == status
    for headers in ([bearer], [bearer, (b"origin", b"https://app.example")]):
        async with ws_connect(url, headers) as ws:
            await ws.send_message(json.dumps({"id": "a", "route": "echo", "args": 7}))
            assert (await _until_done(ws, {"a"}))[-1]["result"] == 7
    text = json.dumps([e.to_doc() for e in env.audit], default=str)
    assert TOKEN not in text
    assert [e.status for e in env.audit if e.status in (401, 403)] == [403, 401, 401]


async def test_100_concurrent_ws_clients_each_get_exactly_their_own(env: ChannelEnv) -> None:
    url = await _ws_channel(env)
    results: dict[int, list[dict[str, Any]]] = {}

    async def client(n: int) -> None:
        async with trio_websocket.open_websocket_url(url) as ws:
            await ws.send_message(json.dumps({"id": f"c{n}", "route": "two", "args": {"n": n}}))
            results[n] = await _until_done(ws, {f"c{n}"})

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for n in range(100):
                nursery.start_soon(client, n)
    play_ids = set()
    sequences: set[tuple[str, ...]] = set()
    for n, got in results.items():
        assert got[-1] == {"id": f"c{n}", "playId": got[-1]["playId"], "result": {"n": n}}
        play_id = got[-1]["playId"]
        play_ids.add(play_id)
        assert {m["id"] for m in got} == {f"c{n}"}
        assert {m["event"]["playId"] for m in got[:-1]} == {play_id}
        types = [m["event"]["type"] for m in got[:-1]]
        assert (types[0], types[-1]) == ("play:started", "play:completed")
        assert types.count("play:layer:completed") == 2
        sequences.add(tuple(types))
    assert len(sequences) == 1, sequences  # every client saw its play's whole story
    assert len(results) == 100
    assert len(play_ids) == 100


def _slow_client_limits() -> Any:
    from flow8.channels import Limits

    return Limits(max_body_bytes=4096, send_queue=4, max_pending=64)


async def _flood(ws: trio_websocket.WebSocketConnection) -> None:
    """Many plays, each several events carrying a payload, and the client reads nothing:
    more than the kernel's buffers hold, so the server's queue of 4 must overflow."""
    for i in range(40):
        args = {"i": i, "pad": "x" * 2000}
        await ws.send_message(json.dumps({"id": i, "route": "two", "args": args}))


async def test_ws_slow_client_is_dropped_and_plays_go_on(store: Any) -> None:
    from channel_fixtures import open_channel_env

    async with open_channel_env(store, limits=_slow_client_limits()) as env:
        url = await _ws_channel(env)
        async with ws_connect(url, message_queue_size=0, receive_buffer=4096) as ws:
            await _flood(ws)
            with trio.fail_after(10):
                while not ws.closed:
                    await trio.sleep(0.05)
                    try:
                        await ws.get_message()  # drains what was sent before the close
                    except trio_websocket.ConnectionClosed:
                        break
            assert ws.closed is not None
            assert ws.closed.code == 1013
        stats = env.manager.stats("w1")
        assert stats is not None
        assert stats.dropped_slow == 1
        # The plays it started all finish: none waited for the client.
        with trio.fail_after(10):
            while True:
                ids = [pid for e in env.audit for pid in e.details.get("playIds", [])]
                plays = [await env.plays.get("company-a", pid) for pid in ids]
                if plays and all(p.state.value == "DONE" for p in plays):
                    break
                await trio.sleep(0.05)


async def test_ws_client_dropped_mid_frame_reads_the_frame_whole_then_1013(store: Any) -> None:
    """Dropped while a frame to it is half written (it read nothing, its buffers are full),
    a client that reads again within the server's 1 s grace gets that frame whole, then
    the close with 1013. A close frame written after a cut frame would be read as the rest
    of it (seen in CI: 1007, invalid UTF-8)."""
    from channel_fixtures import open_channel_env

    async with open_channel_env(store, limits=_slow_client_limits()) as env:
        url = await _ws_channel(env)
        async with ws_connect(url, message_queue_size=0, receive_buffer=4096) as ws:
            await _flood(ws)
            await trio.sleep(0.5)  # the server drops it meanwhile, a frame half written
            received = []
            with trio.fail_after(10):
                while True:
                    try:
                        received.append(json.loads(await ws.get_message()))
                    except trio_websocket.ConnectionClosed:
                        break
            assert ws.closed is not None
            assert ws.closed.code == 1013, ws.closed
            assert received
            assert all("id" in m for m in received)
        stats = env.manager.stats("w1")
        assert stats is not None
        assert stats.dropped_slow == 1


async def _tcp_channel(env: ChannelEnv, cid: str = "t1", **kw: Any) -> int:
    routes = [route("echo", [env.flows["echo"]]), route("two", [env.flows["two"]])]
    ch = env.source.put(channel(cid, ChannelKind.TCP, routes, **kw))
    await env.settle()
    assert ch.port is not None
    return ch.port


class Lines:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream, self.buffer = stream, b""

    async def read(self) -> dict[str, Any] | None:
        with trio.fail_after(10):
            while b"\n" not in self.buffer:
                data = await self.stream.receive_some(65536)
                if not data:
                    return None
                self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        out: dict[str, Any] = json.loads(line)
        return out

    async def send(self, message: Any) -> None:
        await self.stream.send_all(json.dumps(message).encode() + b"\n")


async def test_tcp_newline_json_events_then_result(env: ChannelEnv) -> None:
    port = await _tcp_channel(env)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        lines = Lines(stream)
        await lines.send({"id": "x", "route": "two", "args": {"via": "tcp"}})
        await lines.send({"id": "y", "route": "echo", "args": 5})
        got: list[dict[str, Any]] = []
        while sum(1 for m in got if "result" in m) < 2:
            msg = await lines.read()
            assert msg is not None
            got.append(msg)
    x = [m for m in got if m["id"] == "x"]
    assert x[-1]["result"] == {"via": "tcp"}
    assert x[0]["event"]["type"] == "play:started"
    assert [m for m in got if m["id"] == "y"][-1]["result"] == 5


async def test_tcp_half_close_still_gets_the_answers(env: ChannelEnv) -> None:
    port = await _tcp_channel(env)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b'{"id": 1, "route": "echo", "args": "bye"}\n')
        await stream.send_eof()
        lines = Lines(stream)
        got = []
        while (msg := await lines.read()) is not None:
            got.append(msg)
    assert got[-1]["result"] == "bye"


async def test_tcp_line_too_long_ends_the_connection(env: ChannelEnv) -> None:
    port = await _tcp_channel(env)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b'{"id": 1, "route": "echo", "args": "' + b"x" * 5000)
        lines = Lines(stream)
        assert await lines.read() == {"error": "LINE_TOO_LONG"}
        assert await lines.read() is None


async def test_tcp_token_in_the_first_line(env: ChannelEnv) -> None:
    port = await _tcp_channel(env, auth=AuthMode.HEADER_TOKEN)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        lines = Lines(stream)
        await lines.send({"auth": "wrong"})
        assert await lines.read() == {"error": "UNAUTHORIZED"}
        assert await lines.read() is None
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        lines = Lines(stream)
        await lines.send({"id": 1, "route": "echo", "args": 1})  # no auth line first
        assert await lines.read() == {"error": "UNAUTHORIZED"}
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        lines = Lines(stream)
        await lines.send({"auth": TOKEN})
        assert await lines.read() == {"auth": "ok"}
        await lines.send({"id": 1, "route": "echo", "args": "in"})
        while "result" not in (msg := await lines.read() or {}):
            pass
        assert msg["result"] == "in"


async def test_tcp_messages_are_rate_limited_per_client_and_audited(env: ChannelEnv) -> None:
    port = await _tcp_channel(env, rate_per_second=2.0)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        lines = Lines(stream)
        for i in range(8):
            await lines.send({"id": i, "route": "echo", "args": i})
        ends: dict[int, dict[str, Any]] = {}
        while len(ends) < 8:
            msg = await lines.read()
            assert msg is not None
            if "result" in msg or "error" in msg:
                ends[msg["id"]] = msg
    assert [ends[i].get("result") for i in range(4)] == [0, 1, 2, 3]  # a burst of 2 x rate
    assert {ends[i].get("error") for i in range(4, 8)} == {"RATE_LIMITED"}
    statuses = [e.status for e in env.audit if e.action == "channel_request"]
    assert sorted(statuses) == [202] * 4 + [429] * 4


async def test_ws_silent_client_is_closed_after_the_handshake_time(
    env: ChannelEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flow8.channels._ws.HANDSHAKE_SECONDS", 0.2)
    url = await _ws_channel(env)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        with trio.fail_after(2):
            assert await stream.receive_some(100) == b""  # closed: it said nothing
    stats = env.manager.stats("w1")
    assert stats is not None
    await wait_until(lambda: stats.connections == 0, timeout=1, what="the slot freed")
