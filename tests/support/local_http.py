"""Real loopback HTTP(S) servers that count their connections, and scripted resolvers."""

from __future__ import annotations

import contextlib
import datetime
import ssl
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import attrs
import trio


@attrs.define
class Seen:
    """One request a server read."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes


Handler = Callable[[Seen, trio.abc.Stream, "LocalServer"], Awaitable[None]]
# The ``start`` fixture (conftest.py): ``await start(handler, host=..., tls=...)``.
Start = Callable[..., Awaitable["LocalServer"]]


async def reply(
    stream: trio.abc.Stream,
    status: int = 200,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
) -> None:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers]
    await stream.send_all(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


async def ok(request: Seen, stream: trio.abc.Stream, server: LocalServer) -> None:
    await reply(stream, 200, b"hello from " + server.name.encode())


class LocalServer:
    """HTTP/1.1 on a loopback address, one request per connection. ``connections`` counts
    every TCP connection accepted, before anything is read from it."""

    def __init__(
        self,
        handler: Handler = ok,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        name: str = "server",
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.tls = tls
        self.name = name
        self.connections = 0
        self.requests: list[Seen] = []
        self.server_names: list[str | None] = []  # TLS SNI per handshake
        self.sent = 0  # body bytes a streaming handler managed to send
        self.handled = trio.Event()  # set when a handler returns (or fails)
        if tls is not None:
            tls.sni_callback = self._sni

    def _sni(self, sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        try:
            if self.tls is not None:
                stream = trio.SSLStream(stream, self.tls, server_side=True)
                await stream.do_handshake()
            request = await _read_request(stream)
            if request is None:
                return
            self.requests.append(request)
            await self.handler(request, stream, self)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
            pass
        finally:
            self.handled.set()
            with trio.move_on_after(1) as scope:
                scope.shield = True
                with contextlib.suppress(trio.BrokenResourceError, ssl.SSLError):
                    await stream.aclose()


async def _read_request(stream: trio.abc.Stream) -> Seen | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    first, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = first.split(" ", 2)
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        body += chunk
    return Seen(method, target, headers, body)


def ipv6_loopback_available() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class MapResolver:
    """Answers from a table; a name it does not know does not resolve. Records each ask."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return list(self.answers[host])


class RebindingResolver:
    """A hostile DNS server: each ask gets the next answer (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def resolve(self, host: str, port: int) -> list[str]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return list(answer)


def self_signed(directory: Path, names: Sequence[str]) -> tuple[Path, Path]:
    """A certificate for ``names`` (DNS SANs), and its key; the certificate is its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
