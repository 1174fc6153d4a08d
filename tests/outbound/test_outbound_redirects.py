"""Redirects are followed by hand: each hop checked again, credentials kept to their origin."""

from __future__ import annotations

import pytest
import trio
from support.local_http import LocalServer, MapResolver, Seen, Start, reply

from flow8.outbound import OutboundClient, OutboundLimitExceeded, OutboundPolicy

NAMES = MapResolver({"a.corp.example": ["127.0.0.1"], "b.corp.example": ["127.0.0.1"]})
POLICY = OutboundPolicy(allowed_hosts=["*.corp.example"])


def redirecting(routes: dict[str, tuple[int, str]]):  # type: ignore[no-untyped-def]
    """A handler answering ``routes[path] = (status, location)``, else 200 and the path."""

    async def handler(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        path = request.target.split("?")[0]
        if path in routes:
            status, location = routes[path]
            await reply(stream, status, headers=[("Location", location)])
        else:
            await reply(stream, 200, f"{request.method} {request.target}".encode())

    return handler


async def test_relative_and_absolute_redirects_are_followed(start: Start) -> None:
    b = await start(redirecting({}), name="b")
    a = await start(
        redirecting(
            {
                "/start": (301, "next?x=1"),
                "/next": (302, f"http://b.corp.example:{b.port}/end"),
            }
        ),
        name="a",
    )
    async with OutboundClient(POLICY, resolver=NAMES) as client:
        response = await client.request("GET", f"http://a.corp.example:{a.port}/start")
    assert response.content == b"GET /end"
    assert str(response.url) == f"http://b.corp.example:{b.port}/end"
    assert [str(url) for url in response.redirects] == [
        f"http://a.corp.example:{a.port}/start",
        f"http://a.corp.example:{a.port}/next?x=1",
    ]
    assert b.requests[0].headers["host"] == f"b.corp.example:{b.port}"


async def test_credentials_do_not_follow_a_redirect_to_another_origin(start: Start) -> None:
    b = await start(redirecting({}), name="b")
    a = await start(
        redirecting(
            {
                "/same": (307, "/landed"),
                "/other": (307, f"http://b.corp.example:{b.port}/landed"),
            }
        ),
        name="a",
    )
    headers = {
        "Authorization": "Bearer t0ken",
        "Cookie": "session=abc",
        "X-Api-Key": "k3y",
        "X-Trace": "keep-me",
    }
    async with OutboundClient(POLICY, resolver=NAMES) as client:
        await client.request(
            "GET",
            f"http://a.corp.example:{a.port}/same",
            headers=headers,
            private_headers=["X-Api-Key"],
        )
        await client.request(
            "GET",
            f"http://a.corp.example:{a.port}/other",
            headers=headers,
            private_headers=["X-Api-Key"],
        )
    same = a.requests[1]
    assert same.target == "/landed"
    assert same.headers["authorization"] == "Bearer t0ken"
    assert same.headers["cookie"] == "session=abc"
    assert same.headers["x-api-key"] == "k3y"
    other = b.requests[0]
    assert "authorization" not in other.headers
    assert "cookie" not in other.headers
    assert "x-api-key" not in other.headers
    assert other.headers["x-trace"] == "keep-me"


async def test_methods_and_bodies_follow_the_status(start: Start) -> None:
    server = await start(
        redirecting({"/303": (303, "/done"), "/302": (302, "/done"), "/307": (307, "/done")})
    )
    url = f"http://a.corp.example:{server.port}"
    async with OutboundClient(POLICY, resolver=NAMES) as client:
        assert (await client.request("POST", f"{url}/303", content=b"{}")).content == b"GET /done"
        assert (await client.request("POST", f"{url}/302", content=b"{}")).content == b"GET /done"
        response = await client.request(
            "POST", f"{url}/307", content=b'{"a": 1}', headers={"Content-Type": "x/y"}
        )
        assert response.content == b"POST /done"
        assert (await client.request("PUT", f"{url}/302", content=b"{}")).content == b"PUT /done"
    by_target = [(seen.method, seen.target, seen.body) for seen in server.requests]
    assert ("GET", "/done", b"") in by_target
    assert ("POST", "/done", b'{"a": 1}') in by_target
    assert server.requests[5].headers["content-type"] == "x/y"
    assert "content-length" not in server.requests[1].headers


async def test_too_many_redirects(start: Start) -> None:
    server = await start(redirecting({"/loop": (302, "/loop")}))
    policy = OutboundPolicy(allowed_hosts=["a.corp.example"], max_redirects=3)
    async with OutboundClient(policy, resolver=NAMES) as client:
        with pytest.raises(OutboundLimitExceeded) as caught:
            await client.request("GET", f"http://a.corp.example:{server.port}/loop")
    assert caught.value.limit == "redirects"
    assert "more than 3 redirects" in str(caught.value)
    assert len(server.requests) == 4


async def test_no_redirects_allowed(start: Start) -> None:
    server = await start(redirecting({"/r": (302, "/x")}))
    policy = OutboundPolicy(allowed_hosts=["a.corp.example"], max_redirects=0)
    async with OutboundClient(policy, resolver=NAMES) as client:
        with pytest.raises(OutboundLimitExceeded):
            await client.request("GET", f"http://a.corp.example:{server.port}/r")
    assert len(server.requests) == 1


async def test_a_3xx_without_location_is_an_answer(start: Start) -> None:
    async def not_modified(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
        await reply(stream, 304)

    server = await start(not_modified)
    async with OutboundClient(POLICY, resolver=NAMES) as client:
        response = await client.request("GET", f"http://a.corp.example:{server.port}/")
    assert response.status_code == 304
