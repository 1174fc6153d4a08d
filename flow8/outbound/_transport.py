"""``GuardedTransport``: an httpx transport that connects only to addresses it has checked.

For each request it checks the scheme, resolves the host once (``resolve_checked``) and
*pins* the checked addresses to that host name in its network backend. httpcore then builds
its connection for the original URL (so the Host header, TLS SNI and certificate checks all
use the name the URL gave), and when it asks the backend to connect to that name, the
backend connects to a pinned address instead of resolving it again: a DNS answer that
changes between the check and the connection (rebinding) is never asked for.

A connection httpcore keeps alive was opened to a checked address, so reusing it for the
same origin is safe. A host name without a pin is never connected to (fail closed).
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Iterable, Iterator

import httpcore
import httpx
import trio

from ._addresses import IPAddress
from ._policy import OutboundPolicy
from ._resolve import Resolver, SystemResolver, resolve_checked
from ._urls import redact_url
from .exceptions import OutboundRefused

ALLOWED_SCHEMES = ("http", "https")  # file:, ftp:, gopher:, dict: ... reach other protocols

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

# httpcore's errors as httpx's (what httpx's own transport does; its mapping is private).
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for source, target in _ERRORS:
            if isinstance(error, source):
                raise target(str(error)) from error
        raise


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's AnyIO backend (Trio underneath), connecting to pinned addresses only."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._pins: dict[str, tuple[IPAddress, ...]] = {}

    def pin(self, host: str, addresses: Iterable[IPAddress]) -> None:
        # Concurrent requests to one name may pin different answers: each was checked.
        self._pins[host] = tuple(addresses)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get(host)
        if not addresses:
            raise OutboundRefused("was not checked before connecting", host=host)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("Unix sockets are not reachable", host=path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    """The body as httpcore streams it, with httpx's errors.

    httpcore's body is a chain of async generators. A reader that stops early (at the size
    limit) would leave them suspended, to be finalized whenever the garbage collector gets
    to them; ``aclose`` closes the connection and then lets them run to their end (the next
    read fails at once), so nothing outlives the response.
    """

    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream
        self._parts: typing.AsyncIterator[bytes] | None = None

    def __aiter__(self) -> typing.AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._parts is None:
            self._parts = self._stream.__aiter__()
        with _httpx_errors():
            return await self._parts.__anext__()

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _httpx_errors():
                await close()
        parts, self._parts = self._parts, None
        if parts is not None:
            with trio.move_on_after(1), contextlib.suppress(Exception):
                async for _ in parts:
                    pass


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that refuses what ``policy`` refuses (``OutboundRefused``) and
    connects only to the addresses it checked.

    It guards one request; it does not follow redirects (an ``httpx.AsyncClient`` with
    ``follow_redirects=True`` would send each hop through it, so each hop is checked too)
    and applies no size or time limit: ``OutboundClient`` adds those.
    """

    def __init__(self, policy: OutboundPolicy, resolver: Resolver | None = None) -> None:
        self._policy = policy
        self._resolver: Resolver = resolver if resolver is not None else SystemResolver()
        self._backend = _PinnedBackend()
        context = policy.ssl_context()
        self._proxy: httpx.URL | None = None
        self._pool: httpcore.AsyncConnectionPool
        if policy.proxy is None:
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=context, network_backend=self._backend
            )
        else:
            proxy = httpx.Proxy(policy.proxy)
            self._proxy = proxy.url
            self._pool = httpcore.AsyncHTTPProxy(
                proxy_url=httpcore.URL(
                    scheme=proxy.url.raw_scheme,
                    host=proxy.url.raw_host,
                    port=proxy.url.port,
                    target=proxy.url.raw_path,
                ),
                proxy_auth=proxy.raw_auth,
                proxy_headers=proxy.headers.raw,
                ssl_context=context,
                proxy_ssl_context=context if proxy.url.scheme == "https" else None,
                network_backend=self._backend,
            )

    @property
    def policy(self) -> OutboundPolicy:
        return self._policy

    async def check(self, url: httpx.URL) -> None:
        """Check ``url`` and pin the addresses its connection may use; raises
        ``OutboundRefused`` (naming the redacted URL) or ``OutboundFailed``."""
        try:
            if url.scheme not in ALLOWED_SCHEMES:
                raise OutboundRefused(f"scheme {url.scheme!r} is not allowed (only http and https)")
            host = url.raw_host.decode("ascii")
            if not host:
                raise OutboundRefused("the URL has no host")
            port = url.port or (443 if url.scheme == "https" else 80)
            addresses = await resolve_checked(host, port, self._policy, self._resolver)
            if self._proxy is None:
                self._backend.pin(host, addresses)
                return
            # Through a proxy: the target is checked above (the proxy connects to it), and
            # the proxy is the only address this process connects to.
            proxy_host = self._proxy.raw_host.decode("ascii")
            proxy_port = self._proxy.port or (443 if self._proxy.scheme == "https" else 80)
            try:
                proxied = await resolve_checked(
                    proxy_host, proxy_port, self._policy, self._resolver
                )
            except OutboundRefused as error:
                raise OutboundRefused(f"(the proxy) {error.reason}", host=error.host) from None
            self._backend.pin(proxy_host, proxied)
        except OutboundRefused as error:
            if error.url is None:
                error = OutboundRefused(error.reason, host=error.host, url=redact_url(url))
            raise error from None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.check(request.url)
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, typing.AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
