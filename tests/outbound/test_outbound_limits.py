"""Size and time limits, against real servers that send too much or too slowly."""

from __future__ import annotations

import gzip
import zlib

import pytest
import trio
from support.local_http import LocalServer, Seen, Start, reply

from flow8.outbound import (
    OutboundClient,
    OutboundFailed,
    OutboundLimitExceeded,
    OutboundPolicy,
)

LOCAL = {"allowed_cidrs": ["127.0.0.1/32"]}
KB = 1024
MB = 1024 * KB


def policy(**changes: object) -> OutboundPolicy:
    return OutboundPolicy(**{**LOCAL, **changes})  # type: ignore[arg-type]


async def stream_forever(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
    """A body without a length, 64 MB of it, as fast as the client reads."""
    await stream.send_all(b"HTTP/1.1 200 X\r\nConnection: close\r\n\r\n")
    chunk = b"x" * (64 * KB)
    for _ in range(1024):
        await stream.send_all(chunk)
        server.sent += len(chunk)


async def test_a_declared_length_over_the_limit_is_refused_before_reading(start: Start) -> None:
    async def big(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        await reply(stream, 200, b"y" * (2 * MB))

    server = await start(big)
    async with OutboundClient(policy(max_response_bytes=1 * MB)) as client:
        with pytest.raises(OutboundLimitExceeded) as caught:
            await client.request("GET", f"http://127.0.0.1:{server.port}/big")
    assert caught.value.code == "OUTBOUND_LIMIT"
    assert caught.value.limit == "size"
    assert str(caught.value) == (
        f"OUTBOUND_LIMIT: the response is larger than {MB} bytes; "
        f"url http://127.0.0.1:{server.port}/big"
    )


async def test_a_streamed_body_is_cut_at_the_limit(start: Start) -> None:
    server = await start(stream_forever)
    async with OutboundClient(policy(max_response_bytes=1 * MB)) as client:
        with pytest.raises(OutboundLimitExceeded) as caught:
            await client.request("GET", f"http://127.0.0.1:{server.port}/")
        assert caught.value.limit == "size"
    with trio.fail_after(10):
        await server.handled.wait()
    # The client stopped reading and closed: the server could not send the rest.
    assert server.sent < 64 * MB


async def test_a_body_at_the_limit_is_read(start: Start) -> None:
    async def exact(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        await stream.send_all(b"HTTP/1.1 200 X\r\nConnection: close\r\n\r\n" + b"z" * 1000)

    server = await start(exact)
    async with OutboundClient(policy(max_response_bytes=1000)) as client:
        response = await client.request("GET", f"http://127.0.0.1:{server.port}/")
    assert response.content == b"z" * 1000


async def test_compressed_bodies_are_decoded_and_counted_decoded(start: Start) -> None:
    text = b"flow8 " * 20_000  # 120 kB
    bodies = {
        "/gzip": ("gzip", gzip.compress(text)),
        "/deflate": ("deflate", zlib.compress(text)),
        "/raw-deflate": ("deflate", zlib.compress(text, wbits=-zlib.MAX_WBITS)),
    }

    async def compressed(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        encoding, body = bodies[request.target]
        await reply(stream, 200, body, headers=[("Content-Encoding", encoding)])

    server = await start(compressed)
    async with OutboundClient(policy()) as client:
        for path in bodies:
            response = await client.request("GET", f"http://127.0.0.1:{server.port}{path}")
            assert response.content == text, path
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"
    async with OutboundClient(policy(max_response_bytes=100 * KB)) as client:
        for path in bodies:
            with pytest.raises(OutboundLimitExceeded):
                await client.request("GET", f"http://127.0.0.1:{server.port}{path}")


async def test_a_decompression_bomb_stops_at_the_limit(start: Start) -> None:
    bomb = gzip.compress(b"\0" * (200 * MB), compresslevel=9)  # about 200 kB
    assert len(bomb) < 1 * MB

    async def send_bomb(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        await reply(stream, 200, bomb, headers=[("Content-Encoding", "gzip")])

    server = await start(send_bomb)
    async with OutboundClient(policy(max_response_bytes=1 * MB)) as client:
        with pytest.raises(OutboundLimitExceeded) as caught:
            await client.request("GET", f"http://127.0.0.1:{server.port}/")
    assert caught.value.limit == "size"


async def test_a_corrupt_encoding_fails(start: Start) -> None:
    async def corrupt(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        await reply(stream, 200, b"not gzip at all", headers=[("Content-Encoding", "gzip")])

    server = await start(corrupt)
    async with OutboundClient(policy()) as client:
        with pytest.raises(OutboundFailed, match="content encoding is corrupt"):
            await client.request("GET", f"http://127.0.0.1:{server.port}/")


async def test_a_server_that_never_answers_times_out(start: Start) -> None:
    async def silent(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        await trio.sleep_forever()

    server = await start(silent)
    async with OutboundClient(policy(timeout_seconds=0.5)) as client:
        began = trio.current_time()
        with pytest.raises(OutboundLimitExceeded) as caught:
            await client.request("GET", f"http://127.0.0.1:{server.port}/slow")
        took = trio.current_time() - began
    assert caught.value.limit == "time"
    assert str(caught.value) == (
        f"OUTBOUND_LIMIT: no complete answer within 0.5 s; url http://127.0.0.1:{server.port}/slow"
    )
    assert 0.4 < took < 3


async def test_the_deadline_covers_the_whole_body(start: Start) -> None:
    """A server that keeps every single read fast but never finishes: the overall deadline
    ends it, not a per-read timeout."""

    async def dribble(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        await stream.send_all(b"HTTP/1.1 200 X\r\nContent-Length: 1000000\r\n\r\n")
        while True:
            await stream.send_all(b"x")
            await trio.sleep(0.02)

    server = await start(dribble)
    async with OutboundClient(policy(timeout_seconds=0.5)) as client:
        began = trio.current_time()
        with pytest.raises(OutboundLimitExceeded) as caught:
            await client.request("GET", f"http://127.0.0.1:{server.port}/")
        took = trio.current_time() - began
    assert caught.value.limit == "time"
    assert took < 3


async def test_a_refused_connection_fails_cleanly(start: Start) -> None:
    server = await start()
    async with OutboundClient(policy()) as client:
        with pytest.raises(OutboundFailed) as caught:
            await client.request("GET", "http://127.0.0.1:1/")  # nobody listens on port 1
        assert caught.value.code == "OUTBOUND_FAILED"
        assert "ConnectError" in str(caught.value)
        response = await client.request("GET", f"http://127.0.0.1:{server.port}/")
        assert response.status_code == 200
