"""The client's address: the socket peer, or what trusted reverse proxies say it was.

Behind a reverse proxy every connection comes from the proxy, so the per-IP sign-in limits
and the audit trail would see one address for everybody. A proxy reports the address it saw
by appending it to ``X-Forwarded-For``; but any client can send that header too, so it is read
only when the connection itself comes from a configured trusted proxy, and only as far back
as the chain of trusted proxies goes: walking from the right, each hop was appended by the
proxy to its right, and the first hop that is not a trusted proxy is the client. Everything
left of it was written by that client and is worth nothing.

``Forwarded`` (RFC 7239) and ``X-Real-IP`` are not read: proxies differ in whether they
overwrite or pass them on, and honouring two sources would let a client pick the one its proxy
does not sanitise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from werkzeug.datastructures import Headers

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

FORWARDED_FOR = "X-Forwarded-For"


def trusted_networks(entries: Iterable[str | IPNetwork] | str) -> tuple[IPNetwork, ...]:
    """Parse trusted proxies once (``HttpSettings`` converts its field with this).

    Accepts networks, address or CIDR strings, or one comma-separated string. A network with
    host bits set (``10.0.0.1/8``) is refused rather than guessed at.
    """
    items = entries.split(",") if isinstance(entries, str) else entries
    networks: list[IPNetwork] = []
    for item in items:
        if isinstance(item, IPv4Network | IPv6Network):
            networks.append(item)
            continue
        text = item.strip()
        if text:
            networks.append(ipaddress.ip_network(text))
    return tuple(networks)


def client_address(
    peer: str | None, headers: Headers, trusted: tuple[IPNetwork, ...]
) -> str | None:
    """The address to rate-limit and audit a request (or WebSocket handshake) by.

    ``peer`` is the socket's remote address. Unless it is one of ``trusted``, it is the
    answer and no header is looked at. Otherwise the ``X-Forwarded-For`` headers (several
    are joined in order) are walked from the right past trusted proxies; the first hop that
    is not one is the client; when every hop is trusted, the left-most is. A hop that is not
    an IP address ends the walk at the last good hop, so the answer is always an address
    some trusted party vouched for, never client-chosen text.
    """
    if not trusted or peer is None:
        return peer  # the common case: no proxies configured costs this one check
    peer_address = _parse(peer)
    if peer_address is None or not _is_trusted(peer_address, trusted):
        return peer
    values = headers.getlist(FORWARDED_FOR)
    if not values:
        return peer
    hops = ",".join(values).split(",")
    found: IPAddress | None = None
    for hop in reversed(hops):
        address = _hop(hop)
        if address is None:
            break
        found = address
        if not _is_trusted(address, trusted):
            break
    return peer if found is None else str(found)


def _is_trusted(address: IPAddress, trusted: tuple[IPNetwork, ...]) -> bool:
    # `in` is False across IP versions, so v4 and v6 networks can share one tuple.
    return any(address in network for network in trusted)


def _hop(text: str) -> IPAddress | None:
    """One ``X-Forwarded-For`` entry as an address, or None. Ports some proxies add
    (``1.2.3.4:5678``, ``[2001:db8::1]:443``) are dropped; a zone id (``fe80::1%eth0``) is
    refused, as its text is free-form and would reach the audit trail as written."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        port = text[end + 1 :] if end > 0 else ""
        if end < 0 or (port and not _is_port(port)):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _is_port(":" + port):
            return None
        text = host
    if "%" in text:
        return None
    return _parse(text)


def _is_port(text: str) -> bool:
    digits = text[1:]
    return text[:1] == ":" and 0 < len(digits) <= 5 and digits.isascii() and digits.isdigit()


def _parse(text: str) -> IPAddress | None:
    # IPv4-mapped IPv6 (a dual-stack listener's view of an IPv4 peer) becomes IPv4, so it
    # matches IPv4 networks and is recorded the way the client's own stack writes it.
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
