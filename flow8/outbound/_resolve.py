"""Resolving a host once and deciding whether every address it has may be reached."""

from __future__ import annotations

import ipaddress
from typing import Protocol

import trio

from ._addresses import IPAddress, normalize_name, parse_ip_host, refusal_reason
from ._policy import OutboundPolicy
from .exceptions import OutboundFailed, OutboundRefused

# More addresses than this from one name is not a service, it is an attempt to make the
# guard do work; the first ones are kept.
MAX_ADDRESSES = 32


class Resolver(Protocol):
    """Turns a host name into IP addresses (as text). Injectable, so tests can answer
    whatever a hostile DNS server would."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (``getaddrinfo``, in a worker thread via Trio)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        answers = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
        return [str(sockaddr[0]) for *_, sockaddr in answers]


async def resolve_checked(
    host: str, port: int, policy: OutboundPolicy, resolver: Resolver
) -> list[IPAddress]:
    """The addresses a request to ``host`` may connect to: resolved once, each checked.

    ``host`` is a URL's host: a name, or an address in any spelling (normalized first, not
    resolved). Raises ``OutboundRefused`` when the host is malformed or *any* address it
    resolves to is refused (one bad answer among good ones is a rebinding attempt, not a
    fallback), ``OutboundFailed`` when the name does not resolve. The caller must connect
    to these addresses and never resolve ``host`` again.
    """
    literal = parse_ip_host(host)
    if literal is not None:
        if not policy.allows_address(literal):
            reason = refusal_reason(literal)
            if reason is not None:
                raise OutboundRefused(f"is {literal} ({reason})", host=host)
        return [literal]
    allowed_by_name = policy.allows_host(host)
    name = normalize_name(host)
    if not allowed_by_name and (name == "localhost" or name.endswith(".localhost")):
        # RFC 6761: these names are the loopback interface, whatever a resolver says.
        raise OutboundRefused("is a loopback name", host=host)
    try:
        answers = await resolver.resolve(host, port)
    except OSError as error:
        raise OutboundFailed(f"host {host!r} does not resolve: {error}") from None
    addresses: list[IPAddress] = []
    for answer in answers[:MAX_ADDRESSES]:
        try:
            address = ipaddress.ip_address(answer)
        except ValueError:
            raise OutboundRefused(
                f"resolves to {answer!r}, which is not an IP address", host=host
            ) from None
        if not allowed_by_name and not policy.allows_address(address):
            reason = refusal_reason(address)
            if reason is not None:
                raise OutboundRefused(f"resolves to {address} ({reason})", host=host)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundFailed(f"host {host!r} resolves to no address")
    return addresses
