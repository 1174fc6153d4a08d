"""``request/http``: HTTP(S) through the outbound guard (``flow8.outbound``).

Operation ``send`` ``{method, url, headers, content, privateHeaders, followRedirects,
timeoutSeconds}`` -> ``{statusCode, headers, content, url, redirects}``. The policy is the
component's config (``allowedHosts``, ``allowedCidrs``, limits, TLS, proxy); with no config
at all it is the guard's default: public addresses only. One client (and its connection
pool) per live component.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

import httpx

from flow8.outbound import OutboundClient, OutboundPolicy

from ._provider import Operation, ProviderEnv
from .exceptions import ComponentConfigError


class HttpProvider:
    def __init__(self, policy: OutboundPolicy, env: ProviderEnv) -> None:
        self._client = OutboundClient(policy, resolver=env.resolver)
        self.operations: Mapping[str, Operation] = {"send": self._send}

    async def _send(self, input: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._client.request(
            input.get("method", "GET"),
            input["url"],
            headers=input.get("headers") or {},
            content=input.get("content"),
            private_headers=input.get("privateHeaders") or (),
            follow_redirects=input.get("followRedirects", True),
            timeout_seconds=input.get("timeoutSeconds"),
        )
        return {
            "statusCode": response.status_code,
            "headers": _headers(response.headers),
            "content": response.content,
            "url": str(response.url),
            "redirects": [str(u) for u in response.redirects],
        }

    async def check(self) -> str:
        policy = self._client.policy
        hosts = ", ".join(policy.allowed_hosts) or "none"
        return f"ready: public addresses, plus allowed hosts: {hosts}"

    async def aclose(self) -> None:
        await self._client.aclose()


def _headers(headers: httpx.Headers) -> dict[str, str]:
    """Response headers as an object; a repeated header's values joined with ``, `` (as
    HTTP allows), except ``set-cookie``'s, joined with newlines (cookies contain commas)."""
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        if key in out:
            out[key] += ("\n" if key == "set-cookie" else ", ") + value
        else:
            out[key] = value
    return out


def policy_of(config: Mapping[str, Any]) -> OutboundPolicy:
    try:
        return OutboundPolicy(
            allowed_hosts=config.get("allowedHosts") or (),
            allowed_cidrs=config.get("allowedCidrs") or (),
            timeout_seconds=config.get("timeoutSeconds", 30.0),
            max_response_bytes=config.get("maxResponseBytes", 10 * 1024 * 1024),
            verify_tls=config.get("verifyTls", True),
            ca_bundle=config.get("caBundle"),
            proxy=config.get("proxy"),
        )
    except (ValueError, TypeError) as e:
        raise ComponentConfigError(f"request/http: {e}") from None


def open_http(config: Mapping[str, Any], env: ProviderEnv) -> HttpProvider:
    policy = policy_of(config)
    try:
        policy.ssl_context()  # a caBundle that is not PEM certificates is refused when saved
    except (ssl.SSLError, ValueError):
        raise ComponentConfigError("request/http: caBundle holds no PEM certificate") from None
    return HttpProvider(policy, env)
