"""``OutboundClient``: one guarded request, its redirects, and the policy's limits."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import attrs
import httpx
import trio

from ._addresses import parse_ip_host, refusal_reason
from ._policy import OutboundPolicy
from ._resolve import Resolver
from ._transport import GuardedTransport
from ._urls import host_of_unparsed, redact_url, scrub
from .exceptions import OutboundFailed, OutboundLimitExceeded, OutboundRefused

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Sent again only to the origin that was asked: a redirect must not carry credentials to a
# host the caller did not name.
PRIVATE_HEADERS = ("authorization", "proxy-authorization", "cookie")
# br and zstd are not asked for: gzip and deflate are decoded below within the size limit.
_DEFAULT_HEADERS = {"User-Agent": "flow8", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)


@attrs.frozen(eq=False)
class OutboundResponse:
    """A complete answer: the body is read (and decoded) within the policy's limits."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL  # the URL that answered, after redirects
    redirects: tuple[httpx.URL, ...] = ()  # the URLs that redirected, in order

    @property
    def text(self) -> str:
        match = _CHARSET.search(self.headers.get("content-type", ""))
        charset = match.group(1) if match else "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class OutboundClient:
    """Sends requests through a ``GuardedTransport`` and enforces the policy's limits.

    ``async with OutboundClient(policy) as client: await client.request("GET", url)``.
    No cookie jar, no environment (proxies, ``.netrc``), no automatic redirects: what a
    request sends is what the caller passed.
    """

    def __init__(self, policy: OutboundPolicy | None = None, *, resolver: Resolver | None = None):
        self._transport = GuardedTransport(policy or OutboundPolicy(), resolver)

    @property
    def policy(self) -> OutboundPolicy:
        return self._transport.policy

    async def __aenter__(self) -> OutboundClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        private_headers: Iterable[str] = (),
        follow_redirects: bool = True,
        timeout_seconds: float | None = None,
    ) -> OutboundResponse:
        """Send one request, follow its redirects (each checked again), read the body.

        ``private_headers`` are, like ``Authorization`` and ``Cookie``, dropped when a
        redirect leads to another origin (an API key header, say). Without
        ``follow_redirects`` a redirect is the answer. ``timeout_seconds`` shortens the
        policy's limit for this request (never lengthens it). Raises ``OutboundRefused``,
        ``OutboundLimitExceeded`` or ``OutboundFailed``.
        """
        policy = self.policy
        first = _parse_url(url, policy)
        hop = [first]  # the URL being asked, for the timeout's message
        limit = policy.timeout_seconds
        if timeout_seconds is not None:
            limit = min(limit, timeout_seconds)
        with trio.move_on_after(limit):
            return await self._follow(
                method.upper(),
                first,
                headers,
                content,
                private_headers,
                hop,
                follow_redirects,
                limit,
            )
        raise OutboundLimitExceeded(
            "time",
            f"no complete answer within {limit:g} s",
            url=redact_url(hop[0]),
        )

    async def _follow(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        private_headers: Iterable[str],
        hop: list[httpx.URL],
        follow_redirects: bool,
        timeout: float,
    ) -> OutboundResponse:
        policy = self.policy
        private = {*PRIVATE_HEADERS, *(name.lower() for name in private_headers)}
        sent = httpx.Headers(_DEFAULT_HEADERS)
        sent.update(headers or {})
        extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout}}
        history: list[httpx.URL] = []
        while True:
            hop[0] = url
            request = httpx.Request(method, url, headers=sent, content=content)
            request.extensions = dict(extensions)
            try:
                response = await self._transport.handle_async_request(request)
            except OutboundRefused as error:
                if not history:
                    raise
                raise OutboundRefused(
                    error.reason,
                    host=error.host,
                    url=error.url,
                    redirected_from=redact_url(history[-1]),
                ) from None
            except httpx.HTTPError as error:
                raise _failed(error, url) from None
            try:
                location = response.headers.get("location")
                redirect = response.status_code in _REDIRECTS and location is not None
                if not redirect or not follow_redirects:
                    body = await _read_body(response, policy.max_response_bytes, url)
                    return OutboundResponse(
                        status_code=response.status_code,
                        headers=response.headers,
                        content=body,
                        url=url,
                        redirects=tuple(history),
                    )
                if len(history) >= policy.max_redirects:
                    raise OutboundLimitExceeded(
                        "redirects",
                        f"more than {policy.max_redirects} redirects",
                        url=redact_url(url),
                    )
                try:
                    target = url.join(location)
                except httpx.InvalidURL:
                    raise OutboundRefused(
                        "redirects to an invalid URL", host=url.host, url=redact_url(url)
                    ) from None
            finally:
                await response.aclose()
            # Browsers' (and httpx's) rule: 303, and 301/302 after a POST, become a GET.
            status = response.status_code
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, content = "GET", None
                for name in ("content-length", "content-type", "transfer-encoding"):
                    sent.pop(name, None)
            sent.pop("host", None)  # the new URL's host, not one the caller set
            if _origin(target) != _origin(url):
                for name in private:
                    sent.pop(name, None)
            history.append(url)
            url = target


def _origin(url: httpx.URL) -> tuple[str, bytes, int | None]:
    default = 443 if url.scheme == "https" else 80
    return url.scheme, url.raw_host, url.port or default


def _parse_url(url: str | httpx.URL, policy: OutboundPolicy) -> httpx.URL:
    if isinstance(url, httpx.URL):
        return url
    try:
        return httpx.URL(url)
    except httpx.InvalidURL:
        pass
    # httpx refuses some spellings other software accepts (``0177.0.0.1``): say what the
    # host means, so the refusal is as clear as for the spellings httpx passes on.
    host = host_of_unparsed(url)
    redacted = redact_url(url)
    try:
        address = parse_ip_host(host) if host else None
    except OutboundRefused as error:
        raise OutboundRefused(error.reason, host=host, url=redacted) from None
    if address is not None:
        reason = None if policy.allows_address(address) else refusal_reason(address)
        if reason is not None:
            raise OutboundRefused(f"is {address} ({reason})", host=host, url=redacted)
        raise OutboundRefused(
            f"means {address} in a spelling URLs do not allow: write {address}",
            host=host,
            url=redacted,
        )
    raise OutboundRefused("the URL is not valid", url=redacted)


def _failed(error: httpx.HTTPError, url: httpx.URL) -> OutboundFailed:
    detail = scrub(str(error), url) or "no detail"
    return OutboundFailed(f"{type(error).__name__}: {detail}", url=redact_url(url))


class _TooLarge(Exception):
    pass


class _Inflate:
    """zlib decompression that never produces more than ``limit`` bytes in all: a small
    compressed body can expand a thousandfold (a "zip bomb")."""

    def __init__(self, wbits: int, limit: int, fallback_wbits: int | None = None) -> None:
        self._wbits = wbits
        self._fallback = fallback_wbits
        self._limit = limit
        self._produced = 0
        self._started = False
        self._inflater = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> bytes:
        if not self._started and self._fallback is not None:
            self._started = True
            try:
                return self._feed(data)
            except zlib.error:
                # "deflate" is sent both with and without its zlib header.
                self._inflater = zlib.decompressobj(self._fallback)
                self._produced = 0
        self._started = True
        return self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        pieces = []
        while data:
            piece = self._inflater.decompress(data, self._limit - self._produced + 1)
            self._count(piece)
            pieces.append(piece)
            data = self._inflater.unconsumed_tail
        return b"".join(pieces)

    def flush(self) -> bytes:
        piece = self._inflater.flush()
        self._count(piece)
        return piece

    def _count(self, piece: bytes) -> None:
        self._produced += len(piece)
        if self._produced > self._limit:
            raise _TooLarge


def _decoders(response: httpx.Response, limit: int) -> list[_Inflate] | None:
    encodings = [
        value.strip().lower()
        for value in response.headers.get("content-encoding", "").split(",")
        if value.strip() and value.strip().lower() != "identity"
    ]
    decoders = []
    for encoding in reversed(encodings):  # the last one applied is undone first
        if encoding in ("gzip", "x-gzip"):
            decoders.append(_Inflate(zlib.MAX_WBITS | 16, limit))
        elif encoding == "deflate":
            decoders.append(_Inflate(zlib.MAX_WBITS, limit, fallback_wbits=-zlib.MAX_WBITS))
        else:
            return None  # an encoding not asked for: the body as it came (like httpx)
    return decoders


async def _read_body(response: httpx.Response, limit: int, url: httpx.URL) -> bytes:
    """The body, decoded, refused as soon as it would pass ``limit`` bytes: never more
    than one network read beyond what is kept."""
    too_large = OutboundLimitExceeded(
        "size", f"the response is larger than {limit} bytes", url=redact_url(url)
    )
    decoders = _decoders(response, limit) or []
    length = response.headers.get("content-length", "")
    if not decoders and length.isdigit() and int(length) > limit:
        raise too_large  # said so up front: not one byte read
    pieces: list[bytes] = []
    size = 0
    try:
        assert isinstance(response.stream, httpx.AsyncByteStream)
        async for raw in response.stream:  # (not aiter_raw: see _ResponseStream)
            data = raw
            for decoder in decoders:
                data = decoder.feed(data)
            size += len(data)
            if size > limit:
                raise too_large
            pieces.append(data)
        tail = b""
        for decoder in decoders:
            tail = decoder.feed(tail) + decoder.flush()
        size += len(tail)
        if size > limit:
            raise too_large
        pieces.append(tail)
    except _TooLarge:
        raise too_large from None
    except zlib.error:
        raise OutboundFailed(
            "the response's content encoding is corrupt", url=redact_url(url)
        ) from None
    except httpx.HTTPError as error:
        raise _failed(error, url) from None
    return b"".join(pieces)
