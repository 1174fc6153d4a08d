"""Connecting to the checked address keeps the URL's name for TLS (SNI, certificate) and the
Host header; a forward proxy is checked like any host."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from support.local_http import MapResolver, Start, self_signed

from flow8.outbound import OutboundClient, OutboundFailed, OutboundPolicy, OutboundRefused

pytest.importorskip("cryptography")


def server_context(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    cert, key = self_signed(tmp_path, ["svc.corp.example"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


async def test_tls_uses_the_url_name_for_sni_and_the_certificate(
    start: Start, tmp_path: Path
) -> None:
    context, cert = server_context(tmp_path)
    server = await start(tls=context, name="tls")
    resolver = MapResolver({"svc.corp.example": ["127.0.0.1"], "other.corp.example": ["127.0.0.1"]})
    policy = OutboundPolicy(allowed_hosts=["*.corp.example"], ca_bundle=cert.read_text())
    async with OutboundClient(policy, resolver=resolver) as client:
        response = await client.request("GET", f"https://svc.corp.example:{server.port}/")
        assert response.content == b"hello from tls"
        # Same address, another name: the certificate is checked against the URL's name.
        with pytest.raises(OutboundFailed) as caught:
            await client.request("GET", f"https://other.corp.example:{server.port}/")
        assert "ConnectError" in str(caught.value)
        assert "certificate" in str(caught.value).lower()
    assert server.server_names == ["svc.corp.example", "other.corp.example"]
    assert server.requests[0].headers["host"] == f"svc.corp.example:{server.port}"


async def test_an_unknown_certificate_fails_unless_verification_is_off(
    start: Start, tmp_path: Path
) -> None:
    context, _ = server_context(tmp_path)
    server = await start(tls=context, name="tls")
    resolver = MapResolver({"svc.corp.example": ["127.0.0.1"]})
    url = f"https://svc.corp.example:{server.port}/"
    async with OutboundClient(
        OutboundPolicy(allowed_hosts=["svc.corp.example"]), resolver=resolver
    ) as client:
        with pytest.raises(OutboundFailed):
            await client.request("GET", url)
    async with OutboundClient(
        OutboundPolicy(allowed_hosts=["svc.corp.example"], verify_tls=False), resolver=resolver
    ) as client:
        assert (await client.request("GET", url)).content == b"hello from tls"


async def test_a_proxy_gets_the_checked_requests(start: Start) -> None:
    proxy = await start(name="proxy")
    resolver = MapResolver(
        {
            "proxy.corp.example": ["127.0.0.1"],
            "api.public.example": ["93.184.216.34"],
            "internal.public.example": ["10.0.0.5"],
        }
    )
    policy = OutboundPolicy(
        proxy=f"http://proxy.corp.example:{proxy.port}", allowed_hosts=["proxy.corp.example"]
    )
    async with OutboundClient(policy, resolver=resolver) as client:
        response = await client.request("GET", "http://api.public.example/v1?q=1")
        assert response.content == b"hello from proxy"
        # The targets are checked here, before the proxy is asked.
        for url in ("http://127.0.0.1/", "http://internal.public.example/", "http://0x7f.1/"):
            with pytest.raises(OutboundRefused):
                await client.request("GET", url)
    assert proxy.connections == 1
    assert proxy.requests[0].target == "http://api.public.example/v1?q=1"
    assert proxy.requests[0].headers["host"] == "api.public.example"


async def test_a_proxy_the_policy_refuses_is_not_used(start: Start) -> None:
    proxy = await start(name="proxy")
    resolver = MapResolver({"api.public.example": ["93.184.216.34"]})
    policy = OutboundPolicy(proxy=f"http://127.0.0.1:{proxy.port}")
    async with OutboundClient(policy, resolver=resolver) as client:
        with pytest.raises(OutboundRefused) as caught:
            await client.request("GET", "http://api.public.example/")
    assert caught.value.host == "127.0.0.1"
    assert "(the proxy)" in caught.value.reason
    assert proxy.connections == 0
