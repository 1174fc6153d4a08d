"""What every answer carries, whatever route produced it: security headers, a correlation id,
CORS for allowed origins only, and one audit entry per request."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import attrs
import httpx
import pytest
import trio
from http_fixtures import OWNER_EMAIL, OWNER_PASSWORD, ApiEnv, start_app
from support.waits import wait_until

from flow8.http import HttpSettings, _middleware, _serve

# Connections are what these tests are about: the app as deployed (a real socket, sqlite),
# on the real clock (see conftest).
pytestmark = pytest.mark.wall_clock

_EVERY_ANSWER = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
}


async def test_api_answers_success_and_error_carry_the_security_headers(
    installed: ApiEnv,
) -> None:
    async with installed.client() as client:
        for r in (
            await client.get("/api/install"),  # 200 from a route
            await client.get("/api/auth/me"),  # 401 from the auth check
            await client.get("/api/no-such-route"),  # 404 from routing
        ):
            for name, value in _EVERY_ANSWER.items():
                assert r.headers[name] == value, (r.url, name)
            assert r.headers["cache-control"] == "no-store"
            assert "strict-transport-security" not in r.headers
            # each header once: defaults never duplicate what a route or error set
            assert len(r.headers.get_list("content-security-policy")) == 1
        health = await client.get("/healthz")
        assert health.headers["x-frame-options"] == "DENY"
        assert "cache-control" not in health.headers  # only API answers are no-store


async def test_hsts_only_when_served_over_tls(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    app, _, _ = await start_app(nursery, store, HttpSettings(secure_cookies=True))
    url = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/api/install")
    assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    # the server does not name its software to whoever asks
    assert "server" not in r.headers


async def test_correlation_id_is_echoed_or_made_and_lands_in_the_audit_trail(
    installed: ApiEnv,
) -> None:
    async with installed.client() as client:
        made = await client.get("/api/install")
        assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
        other = await client.get("/api/install")
        assert other.headers["x-request-id"] != made.headers["x-request-id"]
        sent = await client.get("/api/install", headers={"X-Request-Id": "trace-42.a:b"})
        assert sent.headers["x-request-id"] == "trace-42.a:b"
        bad = await client.get("/api/install", headers={"X-Request-Id": "no spaces <allowed>"})
        assert re.fullmatch(r"[0-9a-f]{16}", bad.headers["x-request-id"])
    async with installed.session("owner@example.com", "owner-password-1") as owner:
        r = await owner.get("/api/auth/me", headers={"X-Request-Id": "me-call-1"})
        company = r.json()["companyId"]
        user = r.json()["user"]["id"]
    await installed.audit.wait_idle()
    logs = installed.store.tenant(company).collection("audit_logs")
    entry = await logs.find_one({"correlation_id": "me-call-1"})
    assert entry is not None
    assert entry["action"] == "http_request"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/api/auth/me", 200)
    assert entry["user_id"] == user
    assert entry["user_email"] == "owner@example.com"
    assert entry["duration_ms"] >= 0
    assert entry["ip"] == "127.0.0.1"
    # anonymous requests go to the system trail, probes to none
    system = installed.store.system.collection("system_audit_logs")
    assert await system.find_one({"correlation_id": "trace-42.a:b", "path": "/api/install"})
    assert await system.count({"path": "/healthz"}) == 0


async def test_cors_headers_on_answers_to_allowed_origins_only(installed: ApiEnv) -> None:
    async with installed.client() as client:
        ok = await client.get("/api/install", headers={"Origin": "https://ui.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ui.example"
        assert ok.headers["access-control-allow-credentials"] == "true"
        assert ok.headers["access-control-expose-headers"] == "X-Request-Id, Retry-After"
        assert ok.headers["vary"] == "Origin"
        foreign = await client.get("/api/install", headers={"Origin": "https://evil.x"})
        assert "access-control-allow-origin" not in foreign.headers
        assert "access-control-expose-headers" not in foreign.headers


async def test_requests_made_with_an_api_key_record_which_key(installed: ApiEnv) -> None:
    async with installed.session("owner@example.com", "owner-password-1") as owner:
        created = await owner.post("/api/auth/api-keys", json={"name": "ci", "scopes": ["api"]})
        key, key_id = created.json()["key"], created.json()["id"]
        company = (await owner.get("/api/auth/me")).json()["companyId"]
    async with installed.client(headers={"Authorization": f"Bearer {key}"}) as client:
        r = await client.get("/api/auth/me", headers={"X-Request-Id": "by-key-1"})
        assert r.status_code == 200
    await installed.audit.wait_idle()
    logs = installed.store.tenant(company).collection("audit_logs")
    entry = await logs.find_one({"correlation_id": "by-key-1"})
    assert entry is not None
    assert entry["details"] == {"keyId": key_id}
    assert key not in str(await logs.find({}))  # the key itself never


async def _audited(store: Any, audit: Any, correlation_id: str) -> dict[str, Any]:
    await audit.wait_idle()
    entry = await store.system.collection("system_audit_logs").find_one(
        {"correlation_id": correlation_id}
    )
    assert entry is not None, correlation_id
    return dict(entry)


async def test_answers_given_before_routing_carry_the_headers_and_are_audited(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    settings = HttpSettings(max_body_bytes=1000, allowed_origins=("https://ui.example",))
    app, _, audit = await start_app(nursery, store, settings)
    url = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client:
        big = await client.post(
            "/api/auth/login",
            content=b"{" + b" " * 2000 + b"}",
            headers={"Content-Type": "application/json", "X-Request-Id": "big-1"},
        )
        preflight = await client.options(
            "/api/flows",
            headers={
                "Origin": "https://ui.example",
                "Access-Control-Request-Method": "POST",
                "X-Request-Id": "pre-1",
            },
        )
    assert big.status_code == 413
    assert big.json() == {
        "error": "PAYLOAD_TOO_LARGE",
        "message": "request body exceeds 1000 bytes",
        "statusCode": 413,
    }
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://ui.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    for r, correlation_id in ((big, "big-1"), (preflight, "pre-1")):
        for name, value in _EVERY_ANSWER.items():
            assert r.headers[name] == value, (r.request.method, name)
        assert r.headers["x-request-id"] == correlation_id
    assert (await _audited(store, audit, "big-1"))["status"] == 413
    assert (await _audited(store, audit, "pre-1"))["method"] == "OPTIONS"


async def test_an_unexpected_error_is_a_bare_500_with_the_headers_and_an_audit_entry(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    app, _, audit = await start_app(nursery, store, HttpSettings())

    async def broken() -> None:
        raise RuntimeError("detail only the log may see")

    app.add_url_rule("/api/broken", view_func=broken, methods=["GET"])
    url = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/api/broken", headers={"X-Request-Id": "broken-1"})
    assert r.status_code == 500
    assert r.json()["error"] == "INTERNAL_ERROR"
    assert "detail" not in r.text
    for name, value in _EVERY_ANSWER.items():
        assert r.headers[name] == value
    assert r.headers["x-request-id"] == "broken-1"
    entry = await _audited(store, audit, "broken-1")
    assert (entry["path"], entry["status"]) == ("/api/broken", 500)


async def test_a_request_the_client_gives_up_on_is_audited_as_499(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    app, _, audit = await start_app(nursery, store, HttpSettings())
    entered = trio.Event()

    async def slow() -> None:
        entered.set()
        await trio.sleep_forever()

    app.add_url_rule("/api/slow", view_func=slow, methods=["GET"])
    url = await serve(app)
    async with httpx.AsyncClient(base_url=url) as client, trio.open_nursery() as inner:
        inner.start_soon(partial(client.get, "/api/slow", headers={"X-Request-Id": "gone-1"}))
        await entered.wait()
        inner.cancel_scope.cancel()  # the client hangs up mid-request

    async def audited() -> Any:
        await audit.wait_idle()
        return await store.system.collection("system_audit_logs").find_one(
            {"correlation_id": "gone-1"}
        )

    found = await wait_until(audited, timeout=5, what="the request audited")
    assert (found["path"], found["status"]) == ("/api/slow", 499)


# --- Keep-alive connections after refused requests -------------------------------------------
#
# A request refused before its body was read (401/403 from authentication, CSRF or RBAC, 404,
# 405, 415, 413, any error raised before the route reads) used to leave its keep-alive
# connection wedged about one time in two: the next request on it never got an answer and the
# server's socket stayed in CLOSE-WAIT once the client gave up (see `_middleware._Inflow`).

_LIMIT = 64 * 1024
_ANSWER_SECONDS = 5.0
_JSON = {"Content-Type": "application/json"}


@attrs.frozen
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


class _Raw:
    """One client connection written by hand, so a test decides how a request's headers and
    body reach the server: together, or the body some time after the headers (which is how a
    client's separate writes of headers and body arrive when the server is quick to refuse)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str) -> AsyncIterator[_Raw]:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        try:
            yield cls(stream)
        finally:
            await stream.aclose()

    async def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        pause: float | None = None,
        chunked: bool = False,
        declared: int | None = None,
        end: bool = True,
    ) -> None:
        """Write one request; with `pause`, the body goes that many seconds after the head.
        `declared` overrides the Content-Length; `end=False` leaves a chunked body unended."""
        lines = [f"{method} {path} HTTP/1.1", "Host: flow8.test"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            half = len(body) // 2
            payload = b"".join(
                b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]) if part
            )
            payload += b"0\r\n\r\n" if end else b""
        else:
            lines.append(f"Content-Length: {len(body) if declared is None else declared}")
            payload = body
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        if pause is None:
            await self.stream.send_all(head + payload)
        else:
            await self.stream.send_all(head)
            await trio.sleep(pause)
            # A server may answer the head alone and close: the answer is read all the same.
            with contextlib.suppress(trio.BrokenResourceError):
                await self.stream.send_all(payload)

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    async def answer(self) -> _Answer:
        """The next answer on this connection; fails the test unless it comes in time."""
        with trio.fail_after(_ANSWER_SECONDS):
            while b"\r\n\r\n" not in self.buffer:
                await self._more()
            head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
            self.buffer[:] = rest
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers["content-length"])  # every answer here has one
            while len(self.buffer) < length:
                await self._more()
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
        return _Answer(int(status_line.split()[1]), headers, body)

    async def closed_by_server(self) -> bool:
        """True once the server has closed the connection (within the answer timeout)."""
        with trio.move_on_after(_ANSWER_SECONDS):
            try:
                while True:
                    await self._more()
            except (EOFError, trio.BrokenResourceError):
                return True
        return False


@attrs.frozen
class _Signed:
    url: str
    cookie: str
    csrf: str
    env: ApiEnv

    def auth(self, *, csrf: bool = True, json: bool = True) -> dict[str, str]:
        headers = {"Cookie": self.cookie}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        headers["Content-Type"] = "application/json" if json else "text/plain"
        return headers


async def _signed_in(nursery: trio.Nursery, store: Any, serve: Any, limit: int = _LIMIT) -> _Signed:
    """The app with a body limit of `limit` on a real socket, installed, and its owner's
    session cookie and CSRF token."""
    app, identity, audit = await start_app(nursery, store, HttpSettings(max_body_bytes=limit))
    url = await serve(app)
    env = ApiEnv(url, store, identity, audit, app)
    async with env.client() as client:
        r = await client.post(
            "/api/install",
            json={"company": "Acme", "email": OWNER_EMAIL, "password": OWNER_PASSWORD},
        )
        assert r.status_code == 201, r.text
    async with env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        cookie = "; ".join(f"{c.name}={c.value}" for c in owner.cookies.jar)
        return _Signed(url, cookie, owner.headers["X-CSRF-Token"], env)


def _kv(key: str, pad: int = 0) -> bytes:
    return json.dumps({"key": key, "value": key + "x" * pad, "scope": "global"}).encode()


async def _kv_keys(signed: _Signed) -> set[str]:
    keys: set[str] = set()
    async with signed.env.session(OWNER_EMAIL, OWNER_PASSWORD) as owner:
        page = 0
        while True:
            r = await owner.get(f"/api/kv?scope=global&size=100&page={page}")
            assert r.status_code == 200, r.text
            keys.update(entry["key"] for entry in r.json()["data"])
            page += 1
            if page >= r.json()["pages"]:
                return keys


# Every way a request is refused before its body is read:
# (what, status, method, path, who: "owner" | "no-csrf" (session cookie only) | "anonymous",
#  JSON content type)
_REFUSALS: list[tuple[str, int, str, str, str, bool]] = [
    ("csrf token missing", 403, "POST", "/api/kv", "no-csrf", True),
    ("not signed in", 401, "POST", "/api/kv", "anonymous", True),
    ("unknown route", 404, "POST", "/api/no-such-route", "owner", True),
    ("method not allowed", 405, "PATCH", "/api/kv", "owner", True),
    ("not JSON", 415, "POST", "/api/kv", "owner", False),
]


async def test_refused_requests_alternating_with_accepted_ones_on_one_raw_connection(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    """200 rounds on ONE connection: a refused request carrying a body (each kind, small and
    large bodies, sent with the head or after it, by length or chunked), then an accepted KV
    write. Every answer comes in time, the connection is never dropped, every write is there."""
    signed = await _signed_in(nursery, store, serve)
    written: set[str] = set()
    async with _Raw.connect(signed.url) as raw:
        for i in range(200):
            name, status, method, path, who, json_type = _REFUSALS[i % len(_REFUSALS)]
            variant = i // len(_REFUSALS)
            if who == "anonymous":
                headers = {"Content-Type": "application/json"}
            else:
                headers = signed.auth(csrf=who == "owner", json=json_type)
            await raw.send(
                method,
                path,
                _kv(f"refused-{i}", pad=(0, 40_000)[variant % 2]),
                headers,
                pause=(None, 0.0, 0.002, 0.01)[variant % 4],
                chunked=variant % 3 == 2,
            )
            refused = await raw.answer()
            assert refused.status == status, (i, name, refused)
            assert not refused.closes, (i, name)
            key = f"k{i}"
            await raw.send(
                "POST",
                "/api/kv",
                _kv(key, pad=(0, 2_000)[i % 2]),
                signed.auth(),
                pause=(None, 0.001)[i % 2],
                chunked=i % 4 == 3,
            )
            accepted = await raw.answer()
            assert accepted.status == 200, (i, accepted)
            assert not accepted.closes
            written.add(key)
    keys = await _kv_keys(signed)
    assert written <= keys
    assert not any(k.startswith("refused-") for k in keys)


async def test_bodies_over_the_limit_are_answered_and_the_connection_closed(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    """A body over the limit that is still coming is not waited for: the answer says
    `Connection: close` and the server closes the connection after it (it used to leave it
    open and half-read, or close it with an answer that claimed keep-alive)."""
    signed = await _signed_in(nursery, store, serve)
    over = _kv("big", pad=2 * _LIMIT)
    declared = 10 * _LIMIT  # only part of which is ever sent
    cases = [
        # declared over the limit: the middleware's 413, before anything reads the body
        ("declared", signed.auth(), False, 413),
        # chunked over the limit, read by the route: Quart's MAX_CONTENT_LENGTH cuts it off
        ("chunked, read", signed.auth(), True, 413),
        # chunked over the limit, refused before it is read
        ("chunked, refused", signed.auth(csrf=False), True, 403),
    ]
    for name, headers, chunked, status in cases:
        for pause in (None, 0.005):
            async with _Raw.connect(signed.url) as raw:
                await raw.send("POST", "/api/kv", _kv("before"), signed.auth())
                assert (await raw.answer()).status == 200
                await raw.send(
                    "POST",
                    "/api/kv",
                    over,
                    headers,
                    pause=pause,
                    chunked=chunked,
                    declared=declared,
                    end=False,
                )
                answer = await raw.answer()
                assert answer.status == status, (name, answer)
                assert answer.closes, name
                assert await raw.closed_by_server(), name
    # The same bodies sent whole: each answer either says it closes (and the server does) or
    # the connection goes on serving.
    for name, headers, chunked, status in cases:
        async with _Raw.connect(signed.url) as raw:
            await raw.send("POST", "/api/kv", over, headers, chunked=chunked)
            answer = await raw.answer()
            assert answer.status == status, (name, answer)
            if answer.closes:
                assert await raw.closed_by_server(), name
            else:
                await raw.send("POST", "/api/kv", _kv(f"after {name}"), signed.auth())
                assert (await raw.answer()).status == 200, name
    keys = await _kv_keys(signed)
    assert "before" in keys
    assert "big" not in keys


async def test_a_body_that_stops_coming_is_given_up_on_with_connection_close(
    serve: Any, store: Any, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused request whose client stops half-way through its body gets its answer after
    DRAIN_SECONDS, with `Connection: close`, and the connection is closed."""
    monkeypatch.setattr(_middleware, "DRAIN_SECONDS", 0.3)
    signed = await _signed_in(nursery, store, serve)
    async with _Raw.connect(signed.url) as raw:
        body = _kv("never", pad=1000)
        head = (
            f"POST /api/kv HTTP/1.1\r\nHost: flow8.test\r\nCookie: {signed.cookie}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        await raw.stream.send_all(head.encode() + body[:100])  # and no more
        started = trio.current_time()
        answer = await raw.answer()
        assert answer.status == 403
        assert answer.closes
        assert trio.current_time() - started >= 0.3
        assert await raw.closed_by_server()


async def test_httpx_alternating_refused_and_accepted_requests_keeps_one_connection(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    """The reported case: httpx with session cookies, refused and accepted body-carrying
    requests in turn. All on one connection, except right after a 413 (whose answer closes)."""
    signed = await _signed_in(nursery, store, serve)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # (the connection's stream, which httpx keeps for as long as it keeps the connection)
    streams: list[tuple[object, int]] = []
    written: set[str] = set()
    async with httpx.AsyncClient(
        base_url=signed.url, timeout=_ANSWER_SECONDS, limits=limits
    ) as client:
        client.cookies.set(*signed.cookie.split("=", 1))
        csrf = {"X-CSRF-Token": signed.csrf}

        for i in range(200):
            kind = i % 5
            if kind == 0:
                r = await client.post("/api/kv", json={"key": f"r{i}", "value": 1})
                assert r.status_code == 403, r.text
            elif kind == 1:
                r = await client.post(
                    "/api/kv", json={"key": f"r{i}"}, headers={"Authorization": "Bearer nope"}
                )
                assert r.status_code == 401, r.text
            elif kind == 2:
                r = await client.put("/api/nowhere", json={"pad": "x" * 30_000}, headers=csrf)
                assert r.status_code == 404, r.text
            elif kind == 3:
                r = await client.post("/api/kv", content=b"key=v", headers=csrf)
                assert r.status_code == 415, r.text
            elif i % 50 == 49:  # declared over the limit
                r = await client.post("/api/kv", json={"pad": "x" * _LIMIT}, headers=csrf)
                assert r.status_code == 413, r.text
            else:  # read, then refused
                r = await client.post("/api/kv", json={"value": 1}, headers=csrf)
                assert r.status_code == 422, r.text
            streams.append((r.extensions["network_stream"], r.status_code))
            key = f"k{i}"
            r = await client.post("/api/kv", json={"key": key, "value": i}, headers=csrf)
            assert r.status_code == 200, r.text
            written.add(key)
            streams.append((r.extensions["network_stream"], r.status_code))
    # a new connection only after an answer that said it closes
    for (before, status), (after, _) in itertools.pairwise(streams):
        assert before is after or status == 413, status
    assert len({id(stream) for stream, _ in streams}) == 1 + 200 // 50
    assert written <= await _kv_keys(signed)


def _keep_alive(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Serve with a keep-alive timeout of `seconds` (75 s as shipped)."""
    production = _serve.hypercorn_config

    def quick(host: str, port: int, graceful_timeout: float, **more: Any) -> Any:
        config = production(host, port, graceful_timeout, **more)
        config.keep_alive_timeout = seconds
        return config

    monkeypatch.setattr(_serve, "hypercorn_config", quick)


async def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    serve: Any, store: Any, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hypercorn re-arms its keep-alive timer at the end of every answer, in the app's task;
    quart-trio's teardown used to cancel that nearly every time (199 of 200 requests), so an
    idle connection that had served a request was never closed."""
    _keep_alive(monkeypatch, 0.5)
    app, _, _ = await start_app(nursery, store, HttpSettings())
    async with _Raw.connect(await serve(app)) as raw:
        for i in range(10):
            await raw.send("GET", "/api/install")
            assert (await raw.answer()).status == 200
            await raw.send("POST", "/api/auth/login", b'{"email": "a@b.c"}', _JSON)
            assert (await raw.answer()).status in (400, 401, 422), i
        assert await raw.closed_by_server()


async def test_the_keep_alive_timeout_counts_from_the_last_answer_and_never_during_a_request(
    serve: Any, store: Any, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection's timer (`flow8.serving._KeepAliveTimer`) moves its deadline instead of
    being started again: requests 0.3 s apart keep a connection with a 0.5 s timeout open for
    well over 0.5 s, and a request whose body takes 0.8 s to arrive is answered on it."""
    _keep_alive(monkeypatch, 0.5)
    app, _, _ = await start_app(nursery, store, HttpSettings())
    async with _Raw.connect(await serve(app)) as raw:
        for _ in range(6):  # 1.8 s in all
            await raw.send("GET", "/api/install")
            assert (await raw.answer()).status == 200
            await trio.sleep(0.3)
        for _ in range(2):
            await raw.send("POST", "/api/auth/login", b'{"email": "a@b.c"}', _JSON, pause=0.8)
            assert (await raw.answer()).status in (400, 401, 422)
        await raw.send("GET", "/api/install")
        assert (await raw.answer()).status == 200
        began = trio.current_time()
        assert await raw.closed_by_server()
        assert trio.current_time() - began >= 0.4  # from the last answer, not an earlier one


async def test_a_stopping_server_closes_idle_connections_at_once_and_busy_ones_after_answering(
    store: Any, nursery: trio.Nursery
) -> None:
    """Told to stop, the server closes an idle keep-alive connection at once (its timer waits
    for the stop as well as the timeout: not 75 s, nor the grace period), answers a request
    whose body is still arriving, then closes that connection too, and returns."""
    app, _, _ = await start_app(nursery, store, HttpSettings())
    stop, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await _serve.serve_http(
                app, "127.0.0.1", 0, shutdown_event=stop, graceful_timeout=5.0,
                task_status=task_status,
            )  # fmt: skip
        finally:
            stopped.set()

    url = (await nursery.start(run))[0]
    async with _Raw.connect(url) as idle, _Raw.connect(url) as busy:
        for raw in (idle, busy):
            await raw.send("GET", "/api/install")
            assert (await raw.answer()).status == 200
        async with trio.open_nursery() as sending:
            login = partial(busy.send, "POST", "/api/auth/login", b'{"email": "a@b.c"}', _JSON)
            sending.start_soon(partial(login, pause=0.6))  # its body comes after the stop
            await trio.sleep(0.2)
            began = trio.current_time()
            stop.set()
            assert await idle.closed_by_server()
            assert trio.current_time() - began < 0.3
        assert (await busy.answer()).status in (400, 401, 422)
        assert await busy.closed_by_server()
    with trio.fail_after(2):
        await stopped.wait()
    assert trio.current_time() - began < 2.0  # well inside the grace period (5 s)


def _close_wait(port: int) -> int:
    """Server sockets (local port `port`) in CLOSE-WAIT: their client closed, the server not."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "08":
                    count += 1
    return count


async def test_a_connection_its_client_closes_is_closed_by_the_server_at_once(
    serve: Any, store: Any, nursery: trio.Nursery
) -> None:
    """With the keep-alive timer re-armed after every answer, Hypercorn's trio worker held a
    connection whose client had closed it in CLOSE-WAIT until the timer fired (75 s)."""
    signed = await _signed_in(nursery, store, serve)
    port = int(signed.url.rsplit(":", 1)[1])
    for i in range(5):
        async with _Raw.connect(signed.url) as raw:
            await raw.send("GET", "/healthz")
            assert (await raw.answer()).status == 200
            await raw.send("POST", "/api/kv", _kv(f"c{i}"), signed.auth(csrf=i % 2 == 0))
            assert (await raw.answer()).status in (200, 403)
    # the kernel's view of the sockets: polled, for up to 3 s
    await wait_until(
        lambda: not _close_wait(port), timeout=3, what="no server socket left in CLOSE-WAIT"
    )
