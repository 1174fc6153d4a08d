"""Numeric spellings of hosts, the address table, the policy's allow-lists and
``resolve_checked``: pure parts of the guard, checked directly."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.local_http import MapResolver, RebindingResolver

from flow8.outbound import (
    OutboundFailed,
    OutboundPolicy,
    OutboundRefused,
    parse_ip_host,
    refusal_reason,
    resolve_checked,
)

SPELLINGS = {
    "127.0.0.1": "127.0.0.1",
    "2130706433": "127.0.0.1",
    "0177.0.0.1": "127.0.0.1",
    "0177.0.0.01": "127.0.0.1",
    "0x7f000001": "127.0.0.1",
    "0X7F000001": "127.0.0.1",
    "0x7f.1": "127.0.0.1",
    "0x7f.0x0.0x0.0x1": "127.0.0.1",
    "127.1": "127.0.0.1",
    "127.0.1": "127.0.0.1",
    "127.0.0.1.": "127.0.0.1",
    "017700000001": "127.0.0.1",
    "0": "0.0.0.0",
    "0x": "0.0.0.0",
    "00": "0.0.0.0",
    "169.254.43518": "169.254.169.254",
    "2852039166": "169.254.169.254",
    "0xa9fea9fe": "169.254.169.254",
    "10.1": "10.0.0.1",
    "[::1]": "::1",
    "::1": "::1",
    "[::ffff:127.0.0.1]": "::ffff:7f00:1",
    "[::FFFF:7F00:1]": "::ffff:7f00:1",
    "8.8.8.8": "8.8.8.8",
}

NOT_ADDRESSES = [
    "example.com",
    "localhost",
    "1.example",
    "0x7f.example",
    "a-b.c_d.e",
    "xn--bcher-kva.de",
]

INVALID_HOSTS = {
    "1.2.3.4.5": "looks like an IPv4 address but is not one",
    "256.0.0.1": "looks like an IPv4 address but is not one",
    "1.2.3.256": "looks like an IPv4 address but is not one",
    "4294967296": "looks like an IPv4 address but is not one",
    "08": "looks like an IPv4 address but is not one",
    "1..1": "looks like an IPv4 address but is not one",
    "[fe80::1%eth0]": "is an IPv6 address with a zone id",
    "[::1::2]": "is not a valid IPv6 address",
    "a%20b": "is not a valid host name",
    "-a.example": "is not a valid host name",
    "": "is not a valid host name",
    "a" * 64 + ".example": "is not a valid host name",
}

REASONS = {
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "169.254.169.254": "link-local",
    "10.0.0.1": "private",
    "172.16.0.1": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "CGNAT",
    "100.127.255.255": "CGNAT",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "255.255.255.255": "broadcast",
    "240.0.0.1": "reserved",
    "192.0.2.1": "reserved",
    "198.18.0.1": "reserved",
    "::": "unspecified",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd00:ec2::254": "private",
    "fec0::1": "private",
    "ff02::1": "multicast",
    "2001:db8::1": "reserved",
    "100::1": "reserved",
    "::ffff:127.0.0.1": "IPv4-mapped 127.0.0.1: loopback",
    "::ffff:169.254.169.254": "IPv4-mapped 169.254.169.254: link-local",
    "::127.0.0.1": "IPv4-compatible embedding of 127.0.0.1: loopback",
    "::ffff:0:10.0.0.1": "IPv4-translated embedding of 10.0.0.1: private",
    "2002:7f00:1::": "6to4 embedding of 127.0.0.1: loopback",
    "2002:a9fe:a9fe::1": "6to4 embedding of 169.254.169.254: link-local",
    "64:ff9b::7f00:1": "NAT64 embedding of 127.0.0.1: loopback",
    "64:ff9b::a00:1": "NAT64 embedding of 10.0.0.1: private",
    "64:ff9b:1::a00:1": "NAT64 embedding of 10.0.0.1: private",
    "64:ff9b:1::808:808": "private",
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo embedding of 127.0.0.1: loopback",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7": "reserved",  # Teredo, client 8.8.8.8
}

PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
          "64:ff9b::808:808", "2002:808:808::1"]  # fmt: skip


@pytest.mark.parametrize(("host", "address"), SPELLINGS.items())
def test_numeric_spellings_are_normalized(host: str, address: str) -> None:
    assert parse_ip_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", NOT_ADDRESSES)
def test_names_are_not_addresses(host: str) -> None:
    assert parse_ip_host(host) is None


@pytest.mark.parametrize(("host", "reason"), INVALID_HOSTS.items())
def test_malformed_hosts_are_refused(host: str, reason: str) -> None:
    with pytest.raises(OutboundRefused) as caught:
        parse_ip_host(host)
    assert caught.value.reason == reason


@pytest.mark.parametrize(("address", "reason"), REASONS.items())
def test_refused_addresses(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from(["d", "x", "o", "2", "3"]))
def test_every_spelling_inet_aton_accepts_means_the_same_address(value: int, form: str) -> None:
    """Whatever the C library would connect to, the guard classifies."""
    octets = value.to_bytes(4, "big")
    if form == "d":
        host = str(value)
    elif form == "x":
        host = hex(value)
    elif form == "o":
        host = ".".join(f"0{octet:o}" for octet in octets)
    elif form == "2":
        host = f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}"
    else:
        host = f"{octets[0]}.{octets[1]}.{int.from_bytes(octets[2:], 'big')}"
    expected = ipaddress.IPv4Address(value)
    assert ipaddress.IPv4Address(socket.inet_aton(host)) == expected
    assert parse_ip_host(host) == expected


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="put it in allowed_cidrs"):
        OutboundPolicy(allowed_hosts=["127.0.0.1"])
    with pytest.raises(ValueError, match="not a host name"):
        OutboundPolicy(allowed_hosts=["http://x.example"])
    with pytest.raises(ValueError, match="xn--"):
        OutboundPolicy(allowed_hosts=["bücher.de"])
    with pytest.raises(TypeError):
        OutboundPolicy(allowed_hosts="x.example")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has host bits set"):
        OutboundPolicy(allowed_cidrs=["10.0.0.1/8"])
    with pytest.raises(ValueError, match="proxy"):
        OutboundPolicy(proxy="socks5://127.0.0.1:1080")
    with pytest.raises(ValueError, match="timeout_seconds"):
        OutboundPolicy(timeout_seconds=0)
    policy = OutboundPolicy(allowed_hosts=["CRM.Example.", "*.corp.example"])
    assert policy.allowed_hosts == ("crm.example", "*.corp.example")
    assert policy.allows_host("crm.example.")
    assert policy.allows_host("a.b.corp.example")
    assert not policy.allows_host("corp.example")
    assert not policy.allows_host("evilcorp.example")
    cidrs = OutboundPolicy(allowed_cidrs=["10.1.0.0/16", "fd00::/8", "127.0.0.1"])
    assert cidrs.allows_address(ipaddress.ip_address("10.1.2.3"))
    assert cidrs.allows_address(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert cidrs.allows_address(ipaddress.ip_address("fd12::1"))
    assert cidrs.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert not cidrs.allows_address(ipaddress.ip_address("10.2.0.1"))


async def test_resolve_checked() -> None:
    policy = OutboundPolicy()
    resolver = MapResolver(
        {
            "public.example": ["93.184.216.34", "2606:2800:220:1::", "93.184.216.34"],
            "mixed.example": ["93.184.216.34", "10.0.0.1"],
            "empty.example": [],
        }
    )
    addresses = await resolve_checked("public.example", 443, policy, resolver)
    assert addresses == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1::"),
    ]
    with pytest.raises(OutboundRefused, match=r"resolves to 10\.0\.0\.1 \(private\)"):
        await resolve_checked("mixed.example", 443, policy, resolver)
    with pytest.raises(OutboundFailed, match="resolves to no address"):
        await resolve_checked("empty.example", 443, policy, resolver)
    with pytest.raises(OutboundFailed, match="does not resolve"):
        await resolve_checked("unknown.example", 443, policy, resolver)
    # Literals are never handed to the resolver.
    assert await resolve_checked("8.8.8.8", 53, policy, resolver) == [
        ipaddress.ip_address("8.8.8.8")
    ]
    assert "8.8.8.8" not in resolver.calls


async def test_resolve_checked_asks_once_and_returns_what_it_checked() -> None:
    resolver = RebindingResolver(["93.184.216.34"], ["127.0.0.1"])
    addresses = await resolve_checked("rebind.example", 80, OutboundPolicy(), resolver)
    assert addresses == [ipaddress.ip_address("93.184.216.34")]
    assert resolver.calls == 1
    with pytest.raises(OutboundRefused):
        await resolve_checked("rebind.example", 80, OutboundPolicy(), resolver)


async def test_an_allowed_name_may_resolve_inside() -> None:
    resolver = MapResolver({"db.corp.example": ["10.0.0.7"]})
    policy = OutboundPolicy(allowed_hosts=["db.corp.example"])
    assert await resolve_checked("db.corp.example", 80, policy, resolver) == [
        ipaddress.ip_address("10.0.0.7")
    ]
