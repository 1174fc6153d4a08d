"""Attack 5: a keep-alive connection reused after a request refused before its body was read.

A request refused before its route read the body (403 for a missing CSRF token with a session
cookie, 401, 404 for an unknown route, 405, 415, 413, any error raised before the route reads)
left its connection wedged about one time in two: the next request on it never got an answer,
and once the client gave up, the server's socket sat in CLOSE-WAIT for good. The cause was in
how Hypercorn and quart-trio end an answer (see `flow8/http/_middleware.py`, `_Inflow`): the
close of a connection whose request body had not all arrived ran in the app's task and was
cancelled half-way by quart-trio's teardown; the same cancellation left nearly every
keep-alive connection without its idle timeout.

What holds now: every request on a connection shared by refused and accepted requests is
answered, in time; an answer that starts before the request's body is all in waits for the
rest (up to the body limit and a few seconds) so the connection stays usable, or else says
`Connection: close` and the server closes the connection after it; no server socket is left in
CLOSE-WAIT; everybody else is served meanwhile; every accepted write is there afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import time
from collections.abc import Iterator

import httpx
from attack_kit import Target

ROUNDS = 200
ANSWER_SECONDS = 5.0
MAX_BODY_BYTES = 10 * 1024 * 1024  # the default `server.max_body_bytes` the target runs with


def _close_wait(port: int) -> list[str]:
    """Server-side sockets (local port `port`) in CLOSE-WAIT: the peer closed, we did not."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                local, state = fields[1], fields[3]
                if int(local.rsplit(":", 1)[1], 16) == port and state == "08":
                    found.append(f"{table}: {fields[1]} <- {fields[2]}")
    return found


def _assert_no_close_wait(target: Target) -> None:
    port = int(target.base.rsplit(":", 1)[1])
    deadline = time.monotonic() + 3
    while (left := _close_wait(port)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server may take a moment to see a client's close
    assert not left, f"server sockets left in CLOSE-WAIT: {left}"


def _kv_keys(target: Target) -> set[str]:
    keys: set[str] = set()
    page = 0
    while True:
        r = target.owner.get(f"/api/kv?scope=global&size=100&page={page}")
        assert r.status_code == 200, r.text
        keys.update(entry["key"] for entry in r.json()["data"])
        page += 1
        if page >= r.json()["pages"]:
            return keys


@contextlib.contextmanager
def _one_connection(target: Target) -> Iterator[httpx.Client]:
    """The owner's session (cookie, no CSRF token unless a request adds it) on at most one
    keep-alive connection, so every request below shares it."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(
        base_url=target.base,
        timeout=ANSWER_SECONDS,
        limits=limits,
        cookies=target.owner.cookies,
    ) as client:
        yield client


def test_httpx_refused_and_accepted_requests_alternate_on_one_connection(
    target: Target,
) -> None:
    csrf = {"X-CSRF-Token": target.owner.headers["X-CSRF-Token"]}
    streams: list[tuple[object, int]] = []
    written: set[str] = set()
    with target.bystander(), _one_connection(target) as client:
        for i in range(ROUNDS):
            kind = i % 5
            if kind == 0:  # a session cookie without the CSRF token
                r = client.post("/api/kv", json={"key": f"refused-{i}", "value": 1})
                assert r.status_code == 403, r.text
            elif kind == 1:  # a bad API key
                r = client.post(
                    "/api/kv",
                    json={"key": f"refused-{i}", "value": 1},
                    headers={"Authorization": "Bearer not-a-key"},
                )
                assert r.status_code == 401, r.text
            elif kind == 2:  # no such route, with a body
                r = client.put("/api/nowhere", json={"pad": "x" * 30_000}, headers=csrf)
                assert r.status_code == 404, r.text
            elif i % 50 == 48:  # declared over the body limit
                r = client.post("/api/kv", content=b"x" * (MAX_BODY_BYTES + 1), headers=csrf)
                assert r.status_code == 413, r.text
            else:  # not JSON
                r = client.post("/api/kv", content=b"key=v", headers=csrf)
                assert r.status_code == 415, r.text
            streams.append((r.extensions["network_stream"], r.status_code))
            key = f"k{i}"
            r = client.post("/api/kv", json={"key": key, "value": i}, headers=csrf)
            assert r.status_code == 200, r.text
            written.add(key)
            streams.append((r.extensions["network_stream"], r.status_code))
    # The connection was kept, except after the answers that said they close it (413s).
    for (before, status), (after, _) in itertools.pairwise(streams):
        assert before is after or status == 413, status
    _assert_no_close_wait(target)
    keys = _kv_keys(target)
    assert written <= keys
    assert not any(key.startswith("refused-") for key in keys)


class _Raw:
    """One connection written by hand: a request's body goes some time after its head, as
    it does when a client writes them separately and the server is quick to refuse."""

    def __init__(self, target: Target) -> None:
        host, port = target.base.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=ANSWER_SECONDS)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, path: str, body: bytes, headers: dict[str, str], pause: float) -> int:
        """Send one POST (its body `pause` seconds after its head); the answer's status."""
        lines = [f"POST {path} HTTP/1.1", "Host: flow8.test", "Content-Type: application/json"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        time.sleep(pause)
        self.sock.sendall(body)
        try:
            while b"\r\n\r\n" not in self.buffer:
                self._more()
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            status_line, *fields = head.decode("latin-1").split("\r\n")
            found = dict(f.lower().split(": ", 1) for f in fields)
            assert found.get("connection") != "close", head
            length = int(found["content-length"])
            while len(self.buffer) < length:
                self._more()
            self.buffer = self.buffer[length:]
        except TimeoutError as e:
            raise AssertionError(f"no answer to POST {path} in {ANSWER_SECONDS} s") from e
        return int(status_line.split()[1])

    def _more(self) -> None:
        data = self.sock.recv(65536)
        assert data, "the server closed a connection its answer said it kept"
        self.buffer += data

    def close(self) -> None:
        self.sock.close()


def test_raw_bodies_arriving_after_the_refusal_never_wedge_the_connection(
    target: Target,
) -> None:
    """Deterministic form of the race: the body arrives a few ms after the head, by which
    time the server has decided to refuse. This wedged the connection at the first round."""
    cookie = "; ".join(f"{name}={value}" for name, value in target.owner.cookies.items())
    csrf = target.owner.headers["X-CSRF-Token"]
    refusals = [
        ("/api/kv", {"Cookie": cookie}, 403),  # CSRF token missing
        ("/api/kv", {}, 401),  # not signed in
        ("/api/nowhere", {"Cookie": cookie, "X-CSRF-Token": csrf}, 404),
    ]
    written: set[str] = set()
    raw = _Raw(target)
    try:
        with target.bystander():
            for i in range(ROUNDS):
                path, headers, status = refusals[i % len(refusals)]
                body = json.dumps({"key": f"refused-{i}", "value": "x" * (i % 7) * 1000})
                pause = (0.0, 0.002, 0.01)[i % 3]
                assert raw.request(path, body.encode(), headers, pause) == status, i
                key = f"raw-{i}"
                accepted = json.dumps({"key": key, "value": i}).encode()
                auth = {"Cookie": cookie, "X-CSRF-Token": csrf}
                assert raw.request("/api/kv", accepted, auth, (0.0, 0.002)[i % 2]) == 200, i
                written.add(key)
    finally:
        raw.close()
    _assert_no_close_wait(target)
    keys = _kv_keys(target)
    assert written <= keys
    assert not any(key.startswith("refused-") for key in keys)
    assert target.healthy()
