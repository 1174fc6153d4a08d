"""Which addresses a request may go to, and what a host that is written as a number means.

Two questions, both pure:

* ``parse_ip_host(host)``: is this host an IP address, however it is spelled? URL parsers,
  ``inet_aton`` and resolvers accept far more than ``a.b.c.d`` for IPv4 (``2130706433``,
  ``0177.0.0.1``, ``0x7f.1``, ``127.1``, ``0``): each of those reaches 127.0.0.1 or 0.0.0.0
  somewhere. A host is normalized to the address it means *before* it is classified, so no
  spelling slips past the table below.
* ``refusal_reason(address)``: why a request may not go there (``None``: it may). The answer
  depends on the address only; the allow-list of a policy is applied by the caller.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from .exceptions import OutboundRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_v4 = ipaddress.IPv4Network
_v6 = ipaddress.IPv6Network

# IPv4, first match wins. Each row is a place a request from the server must not reach
# unless a policy allows it by name or CIDR.
_IPV4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    # "This network": connecting to 0.0.0.0 (or 0.x) reaches the server itself on Linux.
    (_v4("0.0.0.0/8"), "unspecified"),
    # The server itself: its admin ports, its database, flow8's own API.
    (_v4("127.0.0.0/8"), "loopback"),
    # Link-local: 169.254.169.254 is the cloud metadata service (credentials of the host).
    (_v4("169.254.0.0/16"), "link-local"),
    # RFC 1918: the internal network the server sits in.
    (_v4("10.0.0.0/8"), "private"),
    (_v4("172.16.0.0/12"), "private"),
    (_v4("192.168.0.0/16"), "private"),
    # Shared address space (RFC 6598): carrier NAT and some clouds' internal networks.
    (_v4("100.64.0.0/10"), "CGNAT"),
    # Multicast and broadcast: not one server, and TCP to them is meaningless.
    (_v4("224.0.0.0/4"), "multicast"),
    (_v4("255.255.255.255/32"), "broadcast"),
    # Reserved or special purpose (RFC 6890): future use, protocol assignments, the 6to4
    # relay, benchmarking and documentation ranges. Nothing public lives there.
    (_v4("240.0.0.0/4"), "reserved"),
    (_v4("192.0.0.0/24"), "reserved"),
    (_v4("192.0.2.0/24"), "reserved"),
    (_v4("192.88.99.0/24"), "reserved"),
    (_v4("198.18.0.0/15"), "reserved"),
    (_v4("198.51.100.0/24"), "reserved"),
    (_v4("203.0.113.0/24"), "reserved"),
)

# IPv6, first match wins (after the IPv4 embeddings below have been looked through).
_IPV6_REFUSED: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_v6("::/128"), "unspecified"),  # like 0.0.0.0: the server itself
    (_v6("::1/128"), "loopback"),
    (_v6("fe80::/10"), "link-local"),  # the local link (cloud metadata over IPv6 too)
    (_v6("fc00::/7"), "private"),  # unique local: the internal network (AWS metadata fd00:ec2::254)
    (_v6("fec0::/10"), "private"),  # site-local (deprecated): internal by definition
    (_v6("64:ff9b:1::/48"), "private"),  # local-use NAT64 (RFC 8215): a local gateway
    (_v6("ff00::/8"), "multicast"),
    (_v6("::/96"), "reserved"),  # IPv4-compatible (deprecated)
    (_v6("::ffff:0:0:0/96"), "reserved"),  # IPv4-translated (SIIT, deprecated)
    (_v6("100::/64"), "reserved"),  # discard-only
    (_v6("2001::/23"), "reserved"),  # IETF protocol assignments, Teredo among them
    (_v6("2001:db8::/32"), "reserved"),  # documentation
    (_v6("::/8"), "reserved"),  # reserved by the IETF (the NAT64 prefix is judged above)
)

# IPv6 ranges whose addresses carry an IPv4 address that a gateway or the kernel will talk
# to: a refused IPv4 address must not be reachable by writing it inside an IPv6 one.
_NAT64 = _v6("64:ff9b::/96")
_NAT64_LOCAL = _v6("64:ff9b:1::/48")
_COMPATIBLE = _v6("::/96")
_TRANSLATED = _v6("::ffff:0:0:0/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for, with the name of the embedding."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address.teredo is not None:
        # (server, client): the client is the host that traffic reaches.
        return "Teredo", address.teredo[1]
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64 or address in _NAT64_LOCAL:
        return "NAT64", low
    if address in _TRANSLATED:
        return "IPv4-translated", low
    if address in _COMPATIBLE and int(address) > 1:
        return "IPv4-compatible", low
    return None


def _ipv4_reason(address: ipaddress.IPv4Address) -> str | None:
    for network, reason in _IPV4_REFUSED:
        if address in network:
            return reason
    # Anything else Python does not call globally routable (ranges added after this table).
    return None if address.is_global else "not globally routable"


def refusal_reason(address: IPAddress) -> str | None:
    """Why a request may not go to ``address`` (``"loopback"``, ``"6to4 embedding of
    127.0.0.1: loopback"``, ...), or ``None`` when it may."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_reason(address)
    embedded = embedded_ipv4(address)
    if embedded is not None:
        kind, inner = embedded
        inner_reason = _ipv4_reason(inner)
        if kind == "IPv4-mapped":
            # ::ffff:a.b.c.d *is* a.b.c.d to a dual-stack socket: judge it as such.
            return None if inner_reason is None else f"{kind} {inner}: {inner_reason}"
        if inner_reason is not None:
            return f"{kind} embedding of {inner}: {inner_reason}"
        if address in _NAT64:
            # The well-known NAT64 prefix of IPv6-only networks (DNS64 answers it for every
            # IPv4-only site): the public IPv4 address inside is where it goes.
            return None
    for network, reason in _IPV6_REFUSED:
        if address in network:
            return reason
    return None if address.is_global else "not globally routable"


# --- hosts written as numbers -----------------------------------------------------------

_HEX_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*")
_DECIMAL_NUMBER = re.compile(r"[0-9]+")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def _ends_in_number(labels: list[str]) -> bool:
    # The WHATWG URL rule: a host whose last label is a number is an IPv4 address, or invalid.
    last = labels[-1]
    return bool(_DECIMAL_NUMBER.fullmatch(last) or _HEX_NUMBER.fullmatch(last))


def _ipv4_number(part: str) -> int | None:
    if _HEX_NUMBER.fullmatch(part):
        return int(part[2:] or "0", 16)
    if not _DECIMAL_NUMBER.fullmatch(part):
        return None
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8) if all(c in "01234567" for c in part) else None
    return int(part)


def _parse_ipv4(labels: list[str]) -> ipaddress.IPv4Address | None:
    """``inet_aton``'s (and WHATWG's) reading: 1 to 4 parts, each decimal, 0-octal or
    0x-hex; the last part fills the bytes the others left (``127.1`` = ``127.0.0.1``)."""
    if not 1 <= len(labels) <= 4:
        return None
    numbers = [_ipv4_number(label) for label in labels]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(values)):
        return None
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_ip_host(host: str) -> IPAddress | None:
    """The IP address ``host`` denotes, whatever its spelling, or ``None`` for a name.

    ``host`` is a URL's host: an IPv6 literal with or without its brackets, a name or an
    IPv4 address in any form ``inet_aton`` knows. Raises ``OutboundRefused`` for a host that
    is neither (``1.2.3.4.5``, ``[::1%eth0]``, ``a b``), rather than let a resolver guess.
    """
    text = host.lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        if "%" in text:
            # A zone id picks an interface: only meaningful for link-local, which is refused.
            raise OutboundRefused("is an IPv6 address with a zone id", host=host)
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            raise OutboundRefused("is not a valid IPv6 address", host=host) from None
    labels = text.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot: the root, "127.0.0.1." is 127.0.0.1
    if _ends_in_number(labels):
        address = _parse_ipv4(labels)
        if address is None:
            raise OutboundRefused("looks like an IPv4 address but is not one", host=host)
        return address
    try:
        # Whatever else the C library calls an address (it is the one resolvers use).
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        pass
    if not text or len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise OutboundRefused("is not a valid host name", host=host)
    return None


def normalize_name(host: str) -> str:
    """A host name as compared with allow-lists: lower case, without the root's dot."""
    name = host.lower()
    return name[:-1] if name.endswith(".") else name
