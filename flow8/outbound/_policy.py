"""``OutboundPolicy``: where a component may send requests, and how long and large they may be."""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Iterable

import attrs
import httpx

from ._addresses import IPAddress, IPNetwork, normalize_name

_MB = 1024 * 1024
_NAME = re.compile(r"(?:\*\.)?[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")


def _hosts(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("allowed_hosts: expected a list of host names, got one string")
    hosts = []
    for entry in value:
        name = normalize_name(entry.strip())
        if not name.isascii() or not _NAME.fullmatch(name):
            raise ValueError(
                f"allowed_hosts: {entry!r} is not a host name or '*.domain' "
                "(write international names in their xn-- form)"
            )
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            pass
        else:
            raise ValueError(f"allowed_hosts: {entry!r} is an address: put it in allowed_cidrs")
        hosts.append(name)
    return tuple(hosts)


def _cidrs(value: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    if isinstance(value, str):
        raise TypeError("allowed_cidrs: expected a list of networks, got one string")
    networks = []
    for entry in value:
        try:
            # strict: "10.0.0.1/8" is a typo for one address or for 10.0.0.0/8; say so.
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as error:
            raise ValueError(f"allowed_cidrs: {entry!r}: {error}") from None
    return tuple(networks)


def _proxy(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as error:
        raise ValueError(f"proxy: not a URL: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("proxy: expected http://host:port or https://host:port")
    return value


@attrs.frozen
class OutboundPolicy:
    """What the guard lets through. The defaults refuse every internal address.

    * ``allowed_hosts``: names (``crm.corp.example``) or ``*.domain`` wildcards (any name
      *below* the domain, not the domain itself) whose addresses are allowed whatever they
      are: a company reaching its own internal services on purpose. Compared in lower case,
      IDNA names in their ``xn--`` form. Matching a name allows the addresses it resolves to,
      so allow only names whose DNS you control.
    * ``allowed_cidrs``: networks (``10.1.2.0/24``, ``fd00::/64``, ``127.0.0.1/32``) whose
      addresses are allowed, whatever name led there.
    * ``timeout_seconds``: the whole request, redirects and body included.
    * ``max_response_bytes``: the body as the caller gets it (after decompression).
    * ``max_redirects``: redirects followed; one more is an ``OUTBOUND_LIMIT``.
    * ``verify_tls``: check the server's certificate (against ``ca_bundle``, PEM text of
      the certificates to trust, when given; else the certifi bundle). Text, not a file
      name: a policy comes from a tenant's config, which must not name the server's files.
    * ``proxy``: ``http://host:port`` of a forward proxy every request goes through. The
      proxy is checked like any host (an internal proxy needs an allow-list entry), and so
      is every target; the proxy then resolves the target again itself, so pinning the
      target's address is the proxy's job. See the package README.
    """

    allowed_hosts: tuple[str, ...] = attrs.field(default=(), converter=_hosts)
    allowed_cidrs: tuple[IPNetwork, ...] = attrs.field(default=(), converter=_cidrs)
    timeout_seconds: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    max_response_bytes: int = attrs.field(default=10 * _MB, validator=attrs.validators.gt(0))
    max_redirects: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    verify_tls: bool = True
    ca_bundle: str | None = None
    proxy: str | None = attrs.field(default=None, converter=_proxy)

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` (a name) is on the allow-list, exactly or below a wildcard."""
        name = normalize_name(host)
        for entry in self.allowed_hosts:
            if entry.startswith("*."):
                if name.endswith(entry[1:]):  # ".example.com": one label or more below
                    return True
            elif name == entry:
                return True
        return False

    def allows_address(self, address: IPAddress) -> bool:
        """Whether ``address`` is inside one of ``allowed_cidrs`` (an IPv4-mapped IPv6
        address counts as its IPv4 address)."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.allowed_cidrs
        )

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS client context requests use (and a TLS proxy)."""
        if not self.verify_tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.ca_bundle is not None:
            return ssl.create_default_context(cadata=self.ca_bundle)
        # httpx's default: the certifi bundle (not SSL_CERT_FILE: the policy decides).
        return httpx.create_ssl_context(verify=True, trust_env=False)
