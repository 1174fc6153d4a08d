"""The SSRF matrix: every way of naming the server itself, or the internal network, is
refused before a single connection is made; an allow-list entry opens exactly what it
names. The servers are real and count TCP connections."""

from __future__ import annotations

import httpx
import pytest
from support.local_http import (
    LocalServer,
    MapResolver,
    RebindingResolver,
    Seen,
    Start,
    ipv6_loopback_available,
    reply,
)

from flow8.outbound import (
    GuardedTransport,
    OutboundClient,
    OutboundFailed,
    OutboundPolicy,
    OutboundRefused,
    SystemResolver,
)

HAS_IPV6 = ipv6_loopback_available()

# Written with {p} for the IPv4 server's port, {p6} for the IPv6 server's (or {p}).
REFUSED_URLS = [
    "http://127.0.0.1:{p}/",
    "http://localhost:{p}/",
    "http://LOCALHOST.:{p}/",
    "http://2130706433:{p}/",
    "http://0177.0.0.1:{p}/",
    "http://0177.1:{p}/",
    "http://0x7f000001:{p}/",
    "http://0x7f.1:{p}/",
    "http://0x7F.0.0.1:{p}/",
    "http://127.1:{p}/",
    "http://127.0.1:{p}/",
    "http://127.0.0.1.:{p}/",
    "http://127.254.0.9:{p}/",
    "http://0:{p}/",
    "http://0.0.0.0:{p}/",
    "http://0x0:{p}/",
    "http://[::1]:{p6}/",
    "http://[0:0:0:0:0:0:0:1]:{p6}/",
    "http://[::]:{p6}/",
    "http://[::ffff:127.0.0.1]:{p}/",
    "http://[::ffff:7f00:1]:{p}/",
    "http://[::ffff:0.0.0.0]:{p}/",
    "http://[::127.0.0.1]:{p}/",  # IPv4-compatible
    "http://[2002:7f00:1::1]:{p}/",  # 6to4
    "http://[64:ff9b::7f00:1]:{p}/",  # NAT64
    "http://[64:ff9b::a9fe:a9fe]:{p}/",  # NAT64 of the metadata service
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{p}/",  # Teredo, client 127.0.0.1
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254:{p}/",
    "http://2852039166/",  # 169.254.169.254
    "http://10.0.0.1:{p}/",
    "http://10.255.255.255/",
    "http://172.16.0.1:{p}/",
    "http://172.31.255.254/",
    "http://192.168.0.1:{p}/",
    "http://100.64.0.1:{p}/",
    "http://100.127.255.254/",
    "http://224.0.0.1:{p}/",
    "http://239.255.255.250:1900/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://[fe80::1]:{p6}/",
    "http://[fe80::1%25lo]:{p6}/",
    "http://[fc00::1]:{p6}/",
    "http://[fd00:ec2::254]/",
    "http://[ff02::1]/",
    "https://127.0.0.1:{p}/",
    "file:///etc/passwd",
    "file://127.0.0.1/etc/passwd",
    "ftp://127.0.0.1:{p}/",
    "gopher://127.0.0.1:{p}/_GET%20/",
    "dict://127.0.0.1:{p}/info",
    "ws://127.0.0.1:{p}/",
    "http://1.2.3.4.5/",
    "http:///nohost",
]

# Public-looking names whose (hostile) DNS answers point inside.
HOSTILE_DNS = {
    "public.example": ["127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "v6.example": ["::1"],
    "mixed.example": ["93.184.216.34", "127.0.0.1"],  # one bad answer refuses the host
    "private.example": ["10.1.2.3"],
    "cgnat.example": ["100.100.100.200"],  # Alibaba Cloud's metadata service
    "zero.example": ["0.0.0.0"],
    "garbage.example": ["not-an-address"],
}


async def servers(start: Start) -> tuple[LocalServer, LocalServer | None]:
    v4 = await start(name="v4")
    v6 = await start(name="v6", host="::1") if HAS_IPV6 else None
    return v4, v6


def urls_for(v4: LocalServer, v6: LocalServer | None) -> list[str]:
    p6 = v6.port if v6 is not None else v4.port
    return [url.format(p=v4.port, p6=p6) for url in REFUSED_URLS]


async def test_every_internal_spelling_is_refused_without_a_connection(start: Start) -> None:
    v4, v6 = await servers(start)
    resolver = MapResolver(HOSTILE_DNS)
    async with OutboundClient(OutboundPolicy(timeout_seconds=5)) as client:
        for url in urls_for(v4, v6):
            with pytest.raises(OutboundRefused) as caught:
                await client.request("GET", url)
            assert caught.value.code == "OUTBOUND_REFUSED", url
            assert str(caught.value).startswith("OUTBOUND_REFUSED: "), url
    async with OutboundClient(OutboundPolicy(timeout_seconds=5), resolver=resolver) as client:
        for name in HOSTILE_DNS:
            with pytest.raises(OutboundRefused) as caught:
                await client.request("GET", f"http://{name}:{v4.port}/")
            assert caught.value.host == name
    assert v4.connections == 0
    assert v6 is None or v6.connections == 0


async def test_refusals_name_the_host_and_the_reason(start: Start) -> None:
    resolver = MapResolver(HOSTILE_DNS)
    async with OutboundClient(resolver=resolver) as client:
        with pytest.raises(OutboundRefused) as caught:
            await client.request("GET", "http://metadata.example/latest/meta-data/")
        assert caught.value.host == "metadata.example"
        assert caught.value.reason == "resolves to 169.254.169.254 (link-local)"
        assert str(caught.value) == (
            "OUTBOUND_REFUSED: host 'metadata.example' resolves to 169.254.169.254 "
            "(link-local); url http://metadata.example/latest/meta-data/"
        )
        expectations = {
            "http://2130706433/": "is 127.0.0.1 (loopback)",
            "http://0177.0.0.1/": "is 127.0.0.1 (loopback)",
            "http://0/": "is 0.0.0.0 (unspecified)",
            "http://100.64.0.1/": "is 100.64.0.1 (CGNAT)",
            "http://[::ffff:7f00:1]/": "is ::ffff:7f00:1 (IPv4-mapped 127.0.0.1: loopback)",
            "http://[2002:a00:1::]/": "is 2002:a00:1:: (6to4 embedding of 10.0.0.1: private)",
            "http://[fe80::1%25eth0]/": "is an IPv6 address with a zone id",
            "http://mixed.example/": "resolves to 127.0.0.1 (loopback)",
            "ftp://example.com/": "scheme 'ftp' is not allowed (only http and https)",
        }
        for url, reason in expectations.items():
            with pytest.raises(OutboundRefused) as caught:
                await client.request("GET", url)
            assert caught.value.reason == reason, url


async def test_an_allowed_cidr_reaches_the_server(start: Start) -> None:
    v4 = await start(name="v4")
    policy = OutboundPolicy(allowed_cidrs=["127.0.0.1/32"])
    async with OutboundClient(policy) as client:
        for host in ("127.0.0.1", "2130706433", "127.1", "[::ffff:127.0.0.1]"):
            response = await client.request("GET", f"http://{host}:{v4.port}/x")
            assert response.status_code == 200
            assert response.content == b"hello from v4"
        # The rest of 127/8 is still refused.
        with pytest.raises(OutboundRefused):
            await client.request("GET", f"http://127.0.0.2:{v4.port}/")
    assert v4.connections == 4


async def test_an_allowed_name_reaches_the_server_with_its_host_header(start: Start) -> None:
    v4 = await start(name="v4")
    resolver = MapResolver({"crm.corp.example": ["127.0.0.1"], "x.corp.example": ["127.0.0.1"]})
    policy = OutboundPolicy(allowed_hosts=["crm.corp.example"])
    async with OutboundClient(policy, resolver=resolver) as client:
        response = await client.request("GET", f"http://CRM.corp.example:{v4.port}/api")
        assert response.text == "hello from v4"
        with pytest.raises(OutboundRefused):  # another name to the same address
            await client.request("GET", f"http://x.corp.example:{v4.port}/api")
    assert v4.requests[0].headers["host"] == f"crm.corp.example:{v4.port}"
    assert v4.requests[0].target == "/api"
    assert v4.connections == 1


async def test_a_wildcard_allows_names_below_the_domain(start: Start) -> None:
    v4 = await start(name="v4")
    resolver = MapResolver({"a.corp.example": ["127.0.0.1"], "corp.example": ["127.0.0.1"]})
    policy = OutboundPolicy(allowed_hosts=["*.corp.example"])
    async with OutboundClient(policy, resolver=resolver) as client:
        assert (await client.request("GET", f"http://a.corp.example:{v4.port}/")).status_code == 200
        with pytest.raises(OutboundRefused):
            await client.request("GET", f"http://corp.example:{v4.port}/")
    assert v4.connections == 1


async def test_dns_rebinding_connects_to_the_checked_address_only(start: Start) -> None:
    """The first answer is checked (and allowed); the name is never resolved again for
    that request, so the second answer (a server the policy refuses) gets nothing."""
    checked = await start(name="checked", host="127.0.0.1")
    rebound = await start(name="rebound", host="127.0.0.2", port=checked.port)
    resolver = RebindingResolver(["127.0.0.1"], ["127.0.0.2"])
    policy = OutboundPolicy(allowed_cidrs=["127.0.0.1/32"])
    async with OutboundClient(policy, resolver=resolver) as client:
        response = await client.request("GET", f"http://rebind.example:{checked.port}/")
        assert response.content == b"hello from checked"
        assert resolver.calls == 1
        # The next request resolves again, and is checked again.
        with pytest.raises(OutboundRefused) as caught:
            await client.request("GET", f"http://rebind.example:{checked.port}/")
        assert caught.value.reason == "resolves to 127.0.0.2 (loopback)"
    assert checked.connections == 1
    assert rebound.connections == 0


async def test_a_redirect_to_an_internal_address_is_refused(start: Start) -> None:
    target = await start(name="target")
    locations = [
        f"http://127.0.0.1:{target.port}/secret",
        f"http://localhost:{target.port}/secret",
        f"http://2130706433:{target.port}/secret",
        f"http://[::ffff:127.0.0.1]:{target.port}/secret",
        f"//127.0.0.1:{target.port}/secret",  # scheme-relative
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.example/",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{target.port}/",
    ]

    async def redirect(request: Seen, stream: object, server: LocalServer) -> None:
        index = int(request.target.rsplit("/", 1)[1])
        await reply(stream, 302, headers=[("Location", locations[index])])  # type: ignore[arg-type]

    redirector = await start(redirect, name="redirector")
    resolver = MapResolver({"public.example": ["127.0.0.1"], **HOSTILE_DNS})
    policy = OutboundPolicy(allowed_hosts=["public.example"])
    async with OutboundClient(policy, resolver=resolver) as client:
        for index in range(len(locations)):
            with pytest.raises(OutboundRefused) as caught:
                await client.request("GET", f"http://public.example:{redirector.port}/{index}")
            assert caught.value.redirected_from == (
                f"http://public.example:{redirector.port}/{index}"
            )
            assert "redirected from" in str(caught.value)
    assert redirector.connections == len(locations)
    assert target.connections == 0


async def test_the_system_resolver(start: Start) -> None:
    v4 = await start(name="v4")
    answers = await SystemResolver().resolve("localhost", v4.port)
    assert "127.0.0.1" in answers
    async with OutboundClient(resolver=SystemResolver()) as client:
        with pytest.raises(OutboundRefused) as caught:
            await client.request("GET", f"http://localhost:{v4.port}/")
        assert caught.value.reason == "is a loopback name"
        with pytest.raises(OutboundFailed):
            await client.request("GET", "http://does-not-exist.invalid/")
    assert v4.connections == 0
    # Allowed by name: each address it resolves to is tried in turn (::1 may come first).
    async with OutboundClient(OutboundPolicy(allowed_hosts=["localhost"])) as client:
        response = await client.request("GET", f"http://localhost:{v4.port}/")
        assert response.content == b"hello from v4"
    assert v4.requests[0].headers["host"] == f"localhost:{v4.port}"


async def test_the_transport_guards_an_httpx_client_that_follows_redirects(start: Start) -> None:
    """Used on its own, under ``httpx.AsyncClient(follow_redirects=True)``: every hop
    goes through the transport, so every hop is checked."""
    target = await start(name="target")

    async def redirect(request: Seen, stream: object, server: LocalServer) -> None:
        location = f"http://127.0.0.1:{target.port}/"
        await reply(stream, 302, headers=[("Location", location)])  # type: ignore[arg-type]

    redirector = await start(redirect, name="redirector")
    resolver = MapResolver({"public.example": ["127.0.0.1"]})
    transport = GuardedTransport(OutboundPolicy(allowed_hosts=["public.example"]), resolver)
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
        with pytest.raises(OutboundRefused):
            await client.get(f"http://public.example:{redirector.port}/")
        with pytest.raises(OutboundRefused):
            await client.get(f"http://127.0.0.1:{target.port}/")
    assert redirector.connections == 1
    assert target.connections == 0
