"""The MCP server's ASGI app: the official SDK's Streamable HTTP transport behind flow8's own
gate (Origin, Host, bearer credential), at ``/mcp`` and at ``/``.

Every HTTP request is authenticated on its own (an API key with the ``mcp`` scope, or a JWT,
see ``_auth``) before the SDK sees it; the principal rides in the ASGI scope, and the tool
handlers read it from the request that carried each message: tools are listed and called
with that caller's company and role, as they are at that moment (a role changed or a member
removed takes effect at the next request).

Sessions are **stateful** (the SDK's session manager, ``Mcp-Session-Id`` = 128 random bits)
and bound to the credential that opened them: the SDK compares the principal (client id =
the API key's id, or the company for a JWT; issuer; subject = the user) of every request with
the session's, and answers another caller's request for that session 404 as if it did not
exist. Clients on the 2026-07-28 protocol use its per-request envelope instead (no session);
both eras are served by the same handlers.

Each tool call is handled under a correlation id (the ``X-Request-Id`` of the HTTP request
carrying it when well formed, else a fresh one) and the W3C ``traceparent`` that request
carried: on every log line of the call, and kept by the plays it starts
(``flow8.services.tracing``). Bound around the call only: a session's tasks are started by
the request that opened it, and would keep its ids for the session's life otherwise.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import attrs
import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.authentication import AuthCredentials
from starlette.types import Receive, Scope, Send

from flow8.logs import get_logger
from flow8.services.identity import IdentityService, Principal
from flow8.services.tracing import correlation_id, request_scope

from ._auth import Authenticator, AuthFailed, origin_allowed, origin_of, via_of
from ._tools import McpDeps, Toolbox

log = get_logger("flow8.mcp")

PRINCIPAL_KEY = "flow8.mcp.principal"
PATHS = frozenset({"/", "/mcp", "/mcp/"})
MAX_BODY_BYTES = 4 * 1024 * 1024
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@attrs.frozen
class McpSettings:
    """``public_url``: the endpoint's URL as agents reach it (the JWTs' audience; its origin
    is always allowed); ``allowed_origins``: browser origins also allowed (``*`` = any)."""

    public_url: str
    allowed_origins: tuple[str, ...] = ()
    jwt_secret: str | None = attrs.field(default=None, repr=False)
    jwt_issuer: str = "flow8"
    bind_host: str = "127.0.0.1"

    @classmethod
    def of(
        cls,
        *,
        port: int,
        public_url: str = "",
        allowed_origins: tuple[str, ...] = (),
        jwt_secret: str | None = None,
        jwt_issuer: str = "flow8",
        bind_host: str = "127.0.0.1",
    ) -> McpSettings:
        """From the instance settings: an empty ``public_url`` is http://localhost:<port>/mcp."""
        return cls(
            public_url=public_url or f"http://localhost:{port}/mcp",
            allowed_origins=allowed_origins,
            jwt_secret=jwt_secret,
            jwt_issuer=jwt_issuer,
            bind_host=bind_host,
        )


class McpApp:
    """The ASGI app. ``run()`` must be entered around serving it (it runs the SDK's session
    manager; a fresh one each time, so a restarted server starts clean)."""

    def __init__(self, settings: McpSettings, identity: IdentityService, deps: McpDeps) -> None:
        self.settings = settings
        self.toolbox = Toolbox(deps)
        self.auth = Authenticator(
            identity,
            jwt_secret=settings.jwt_secret,
            jwt_issuer=settings.jwt_issuer,
            audience=settings.public_url,
        )
        self._any_origin = "*" in settings.allowed_origins
        own = origin_of(settings.public_url)
        self._origins = frozenset(
            {own, *(origin_of(o) for o in settings.allowed_origins if o != "*")}
        )
        public = urlsplit(settings.public_url)
        self._public_host = public.netloc.lower()
        self._resource_metadata = (
            f"{public.scheme}://{public.netloc}/.well-known/oauth-protected-resource"
            f"{public.path.rstrip('/')}"
        )
        self.server = self._build_server()
        self._manager: StreamableHTTPSessionManager | None = None

    def _build_server(self) -> Server[Any]:
        toolbox = self.toolbox

        async def list_tools(
            ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return types.ListToolsResult(tools=await toolbox.list_tools(_principal(ctx)))

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            session = ctx.session

            async def progress(done: float, total: float | None, message: str | None) -> None:
                await session.report_progress(done, total, message)  # no-op without a token

            principal = _principal(ctx)
            scope = _scope(ctx)
            with request_scope(
                correlation_id(_header(scope, b"x-request-id")), _header(scope, b"traceparent")
            ):
                return await toolbox.call(principal, params.name, params.arguments, progress)

        return Server(
            "flow8",
            version=_version(),
            instructions="flow8 workflows: list_flows, run_flow and the flow tools of your "
            "company's MCP channels; get_play follows a play that is still running.",
            on_list_tools=list_tools,
            on_call_tool=call_tool,
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        manager = StreamableHTTPSessionManager(
            app=self.server,
            json_response=False,
            stateless=False,
            # Host and Origin are checked here (`_gate`), before any credential is read.
            security_settings=None,
            max_request_body_size=MAX_BODY_BYTES,
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    def close_sessions(self) -> None:
        """End every open session (the server is stopping); new requests get 503."""
        manager, self._manager = self._manager, None
        group = getattr(manager, "_task_group", None)  # the SDK keeps its sessions' tasks there
        if group is not None:
            group.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] not in PATHS:
            await _plain(send, 404, {"error": "not_found"})
            return
        refusal = self._gate(scope)
        if refusal is not None:
            await _plain(send, refusal[0], {"error": refusal[1]})
            return
        try:
            principal = await self.auth.principal(_header(scope, b"authorization"))
        except AuthFailed as e:
            await self._refuse(send, e)
            return
        if principal.company_id is None:
            await self._refuse(send, AuthFailed(403, "insufficient_scope", "no company"))
            return
        manager = self._manager
        if manager is None:
            await _plain(send, 503, {"error": "starting"})
            return
        inner = dict(scope)
        inner[PRINCIPAL_KEY] = principal
        # The SDK binds a session to (client id, issuer, subject) of the user it carries.
        inner["user"] = AuthenticatedUser(_access(principal))
        inner["auth"] = AuthCredentials(sorted(principal.scopes))
        await manager.handle_request(inner, receive, send)

    def _gate(self, scope: Scope) -> tuple[int, str] | None:
        """Origin (a browser's request from a page not allowed: 403) and, bound to a loopback
        address, Host (DNS rebinding: 421)."""
        origin = _header(scope, b"origin")
        if not self._any_origin and not origin_allowed(origin, self._origins):
            log.warning("mcp_origin_refused", origin=(origin or "")[:200])
            return 403, "origin_not_allowed"
        if self.settings.bind_host in _LOOPBACK:
            host = (_header(scope, b"host") or "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if host != self._public_host and name not in ("127.0.0.1", "localhost", "[::1]"):
                return 421, "host_not_allowed"
        return None

    async def _refuse(self, send: Send, e: AuthFailed) -> None:
        challenge = (
            f'Bearer realm="flow8-mcp", error="{e.error}", '
            f'error_description="{e.description}", '
            f'resource_metadata="{self._resource_metadata}"'
        )
        await _plain(
            send,
            e.status,
            {"error": e.error, "error_description": e.description},
            [(b"www-authenticate", challenge.encode())],
        )


def _access(principal: Principal) -> AccessToken:
    # Identifies the caller without holding its secret: `token` is a label, not the token.
    if via_of(principal) == "api_key":
        client_id, issuer = f"api_key:{principal.api_key_id}", "flow8:api_key"
    else:
        client_id, issuer = f"jwt:{principal.company_id}", "flow8:jwt"
    return AccessToken(
        token=client_id,
        client_id=client_id,
        scopes=sorted(principal.scopes),
        subject=principal.user.id,
        claims={"iss": issuer, "company_id": principal.company_id},
    )


def _scope(ctx: ServerRequestContext[Any, Any]) -> dict[str, Any]:
    """The ASGI scope of the HTTP request that carried the message (empty without one)."""
    scope = getattr(ctx.request, "scope", None)
    return scope if isinstance(scope, dict) else {}


def _principal(ctx: ServerRequestContext[Any, Any]) -> Principal:
    principal = _scope(ctx).get(PRINCIPAL_KEY)
    if not isinstance(principal, Principal):
        # Every request passed the gate; a message without one is not served.
        raise PermissionError("unauthenticated MCP message")
    return principal


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _plain(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _lifespan(receive: Receive, send: Send) -> None:
    # The session manager is run by the server task (`McpApp.run`), not by the lifespan.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flow8")
    except PackageNotFoundError:
        return "0"
