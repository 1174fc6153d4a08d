"""The tcp listener: the message protocol of ``_session`` as newline-delimited JSON.

A line longer than the channel's body limit ends the connection after an error line
(``{"error": "LINE_TOO_LONG"}``). ``header_token`` channels expect the first line to be
``{"auth": "<token>"}``, answered ``{"auth": "ok"}`` or ``{"error": "UNAUTHORIZED"}`` and
the connection closed; ``hmac`` channels refuse every connection that way (a signature over a
body has no meaning on a stream). A client too slow to read its answers gets a last line
``{"error": "TOO_SLOW"}`` (if its socket takes the line going out and that one within a
second; never after a line cut short) and is closed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import time

import attrs
import trio

from flow8.services.channels import AuthMode

from ._context import ChannelContext
from ._session import SessionEnd, dumps, run_session

READ_SIZE = 65536


class LineTooLong(Exception):
    pass


@attrs.define
class LineReader:
    stream: trio.SocketStream
    limit: int
    buffer: bytearray = attrs.field(factory=bytearray)
    eof: bool = False

    async def line(self) -> bytes | None:
        """The next line without its newline; None at the end of the stream."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                if len(line) > self.limit:
                    raise LineTooLong
                return line.rstrip(b"\r")
            if len(self.buffer) > self.limit:
                raise LineTooLong
            if self.eof:
                if self.buffer:
                    line = bytes(self.buffer)
                    self.buffer.clear()
                    return line
                return None
            data = await self.stream.receive_some(READ_SIZE)
            if not data:
                self.eof = True
            self.buffer += data


async def _last_words(stream: trio.SocketStream, message: dict[str, str]) -> None:
    with trio.move_on_after(1):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(dumps(message).encode() + b"\n")


async def _authenticated(ctx: ChannelContext, reader: LineReader) -> bool:
    mode = ctx.channel.auth_mode
    if mode is AuthMode.PUBLIC:
        return True
    if mode is AuthMode.HMAC:
        return False
    with trio.move_on_after(10):
        line = await reader.line()
        if line is None:
            return False
        try:
            token = json.loads(line).get("auth")
        except (ValueError, AttributeError):
            return False
        expected = ctx.channel.auth_token or ""
        return (
            isinstance(token, str)
            and bool(expected)
            and hmac.compare_digest(token.encode(), expected.encode())
        )
    return False


async def serve_tcp(ctx: ChannelContext, stream: trio.SocketStream, client: str, host: str) -> None:
    started = time.perf_counter()
    reader = LineReader(stream, ctx.limits.max_body_bytes)
    try:
        if not await _authenticated(ctx, reader):
            ctx.stats.rejected_auth += 1
            ctx.audit(client=client, status=401, route=None, play_ids=[], started=started)
            await _last_words(stream, {"error": "UNAUTHORIZED"})
            return
        if ctx.channel.auth_mode is AuthMode.HEADER_TOKEN:
            await stream.send_all(b'{"auth":"ok"}\n')

        async def send(text: str) -> None:
            await stream.send_all(text.encode() + b"\n")

        if await run_session(ctx, client, host, reader.line, send) is SessionEnd.TOO_SLOW:
            await _last_words(stream, {"error": "TOO_SLOW"})  # not after a cut line (CUT)
    except LineTooLong:
        ctx.stats.rejected_size += 1
        ctx.audit(client=client, status=413, route=None, play_ids=[], started=started)
        await _last_words(stream, {"error": "LINE_TOO_LONG"})
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
