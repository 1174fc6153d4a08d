"""The ws listener: the message protocol of ``_session`` over WebSocket (trio-websocket).

The handshake checks, before anything is read from the connection:
* Origin: absent is allowed (a program, not a browser: no ambient credentials to abuse); a
  present one must be listed in ``allowed_origins``, else 403.
* Auth: ``header_token`` channels need ``Authorization: Bearer <token>`` (401 otherwise).
  Signatures over a body (``hmac``) have no meaning on a socket: such a channel refuses
  every handshake (401) rather than serve unauthenticated.
A client too slow to read its answers is closed with code 1013 and reason ``client too
slow``, once the message going out to it has gone out whole; one still not taken a second
later is cut, and the connection closed without a close frame (the client sees 1006).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import trio
import trio_websocket

from flow8.services.channels import AuthMode

from ._auth import bearer_ok
from ._context import ChannelContext
from ._session import SessionEnd, run_session

TOO_SLOW = 1013
HANDSHAKE_SECONDS = 10.0
_UNAUTHORIZED = b'{"error":"UNAUTHORIZED"}'
_FORBIDDEN = b'{"error":"ORIGIN_REFUSED"}'
# Copied per use: trio-websocket appends its Content-Length to the list it is given.
_JSON = ((b"content-type", b"application/json"),)


def _origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    if origin is None:
        return True
    parts = urlsplit(origin)
    return origin in allowed or f"{parts.scheme}://{parts.netloc}" in allowed


async def serve_ws(ctx: ChannelContext, stream: trio.SocketStream, client: str, host: str) -> None:
    started = time.perf_counter()
    request: trio_websocket.WebSocketRequest | None = None
    async with trio.open_nursery() as nursery:
        # A client that opens a socket and says nothing holds a connection slot: it gets
        # HANDSHAKE_SECONDS to send its upgrade request.
        with trio.move_on_after(HANDSHAKE_SECONDS):
            request = await trio_websocket.wrap_server_stream(
                nursery, stream, max_message_size=ctx.limits.max_body_bytes
            )
        if request is None:
            nursery.cancel_scope.cancel()
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        refused: tuple[int, bytes] | None = None
        if not _origin_allowed(headers.get("origin"), ctx.limits.allowed_origins):
            refused = (403, _FORBIDDEN)
        elif ctx.channel.auth_mode is AuthMode.HMAC or (
            ctx.channel.auth_mode is AuthMode.HEADER_TOKEN
            and not bearer_ok(ctx.channel, headers.get("authorization"))
        ):
            ctx.stats.rejected_auth += 1
            refused = (401, _UNAUTHORIZED)
        if refused is not None:
            ctx.audit(
                client=client,
                status=refused[0],
                route=None,
                play_ids=[],
                started=started,
                method="GET",
                path=request.path,
            )
            await request.reject(refused[0], extra_headers=list(_JSON), body=refused[1])
            nursery.cancel_scope.cancel()
            return
        ws = await request.accept()

        async def receive() -> str | bytes | None:
            try:
                return await ws.get_message()
            except trio_websocket.ConnectionClosed:
                return None

        async def send(text: str) -> None:
            await ws.send_message(text)

        try:
            end = await run_session(ctx, client, host, receive, send)
        except trio_websocket.ConnectionClosed:
            end = SessionEnd.CLIENT_DONE
        if end is SessionEnd.CUT:  # a close frame now would land inside the cut frame
            await trio.aclose_forcefully(stream)
        else:
            with trio.move_on_after(1):
                if end is SessionEnd.TOO_SLOW:
                    await ws.aclose(TOO_SLOW, "client too slow")
                else:
                    await ws.aclose()
        nursery.cancel_scope.cancel()
