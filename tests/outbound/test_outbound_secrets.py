"""Errors name the URL without its secrets: no userinfo, no query values, no fragment."""

from __future__ import annotations

import pytest
import trio
from support.local_http import LocalServer, MapResolver, Seen, Start, reply

from flow8.outbound import OutboundClient, OutboundError, OutboundPolicy, redact_url

SECRETS = ("hunter2", "s3cr3t", "fr4g", "alice")


def assert_no_secret(error: OutboundError) -> None:
    text = str(error)
    for secret in SECRETS:
        assert secret not in text, text
    for value in vars(error).values():
        for secret in SECRETS:
            assert secret not in str(value), value


async def test_refusals_do_not_show_userinfo_or_query_values(start: Start) -> None:
    server = await start()
    resolver = MapResolver({"meta.example": ["169.254.169.254"]})
    urls = [
        f"http://alice:hunter2@127.0.0.1:{server.port}/path?token=s3cr3t&x=1#fr4g",
        "http://alice:hunter2@0177.0.0.1/?token=s3cr3t",  # a URL httpx itself refuses
        "http://alice:hunter2@meta.example/?token=s3cr3t",
        "ftp://alice:hunter2@files.example/?token=s3cr3t",
        "http://alice:hunter2@[::1%25eth0]/?token=s3cr3t",
    ]
    async with OutboundClient(resolver=resolver) as client:
        for url in urls:
            with pytest.raises(OutboundError) as caught:
                await client.request("GET", url)
            assert caught.value.code == "OUTBOUND_REFUSED"
            assert_no_secret(caught.value)
    refused = f"http://127.0.0.1:{server.port}/path?token=…&x=…"
    assert redact_url(urls[0]) == refused
    assert server.connections == 0


async def test_failures_and_limits_do_not_show_them_either(start: Start) -> None:
    async def silent(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        await trio.sleep_forever()

    async def to_metadata(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        location = "http://169.254.169.254/?token=s3cr3t"
        await reply(stream, 302, headers=[("Location", location)])

    slow = await start(silent)
    redirector = await start(to_metadata)
    policy = OutboundPolicy(allowed_cidrs=["127.0.0.1/32"], timeout_seconds=0.3)
    async with OutboundClient(policy) as client:
        for url in (
            "http://alice:hunter2@127.0.0.1:1/?token=s3cr3t",  # connection refused
            f"http://alice:hunter2@127.0.0.1:{slow.port}/?token=s3cr3t",  # too slow
            f"http://alice:hunter2@127.0.0.1:{redirector.port}/?token=s3cr3t",  # redirect
        ):
            with pytest.raises(OutboundError) as caught:
                await client.request("GET", url)
            assert_no_secret(caught.value)
    # Userinfo is never sent as credentials: headers are what the caller passes.
    assert "authorization" not in redirector.requests[0].headers
