"""Real object-storage servers on loopback for the component tests: moto's S3 server, the GCS
emulator, a token endpoint for service-account keys, and a port that listens but never
answers (to show that no request was sent)."""

from __future__ import annotations

import itertools
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import attrs
import boto3
from botocore.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gcp_storage_emulator.server import create_server
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from moto.server import ThreadedMotoServer

_names = itertools.count(1)


def bucket_name(prefix: str = "flow8") -> str:
    """A bucket name no other test of this run uses (S3 rules: 3-63, lower case)."""
    return f"{prefix}-test-{next(_names)}"


@attrs.define
class S3Server:
    endpoint: str
    region: str = "us-east-1"

    def client(self) -> Any:
        return boto3.session.Session(
            aws_access_key_id="test-admin", aws_secret_access_key="test-admin-secret"
        ).client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def new_bucket(self) -> str:
        name = bucket_name()
        self.client().create_bucket(Bucket=name)
        return name


@attrs.define
class GcsServer:
    endpoint: str

    def client(self) -> storage.Client:
        return storage.Client(
            project="flow8-test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )

    def new_bucket(self) -> str:
        name = bucket_name()
        self.client().create_bucket(name)
        return name


@contextmanager
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@contextmanager
def gcs_server() -> Iterator[GcsServer]:
    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        port = server._api._httpd.server_port
        yield GcsServer(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@attrs.define
class TokenServer:
    """An OAuth token endpoint that grants any signed assertion a token (it counts them)."""

    uri: str
    grants: list[str] = attrs.Factory(list)


@contextmanager
def token_server() -> Iterator[TokenServer]:
    tokens = TokenServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            tokens.grants.append(self.path)
            body = json.dumps(
                {"access_token": "test-token", "expires_in": 3600, "token_type": "Bearer"}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    tokens.uri = f"http://127.0.0.1:{httpd.server_port}/token"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield tokens
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def redirecting_server(location: str) -> Iterator[tuple[str, list[str]]]:
    """(an endpoint that answers every request with a redirect to ``location``, the paths
    it was asked for)."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _redirect(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            asked.append(self.path)
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _redirect

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", asked
    finally:
        httpd.shutdown()
        httpd.server_close()


def service_account_json(token_uri: str, *, key_id: str = "test-key") -> tuple[str, str]:
    """(a service account key as JSON, its private key's PEM): a fresh RSA key, so the PEM's
    body is a secret no one else has."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "flow8-test",
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": "flow8@flow8-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    return json.dumps(info), pem


@contextmanager
def silent_port() -> Iterator[tuple[str, socket.socket]]:
    """An endpoint that listens on loopback but never accepts: after a test, whether any
    connection was attempted is whether one is waiting (``connection_attempted``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", sock
    finally:
        sock.close()


def connection_attempted(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def closed_port() -> str:
    """An endpoint where nothing listens (a port just released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
