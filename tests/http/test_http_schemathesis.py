"""Property-based API fuzzing with schemathesis against the live app (real Hypercorn and a real
sqlite store, in a server process of its own): no server errors, no answer outside the OpenAPI
document."""

from __future__ import annotations

import http.cookiejar
import multiprocessing
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import trio
from http_fixtures import start_app
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from flow8.http import HttpSettings, serve_http
from flow8.store import Keyring, open_store

# A real server in a process of its own, fuzzed over a real socket, on the real clock. In a
# thread of the test's process it would share the test's GIL: each answer waited for the
# fuzzer's case generation and the other way round, and the test took half again as long.
pytestmark = pytest.mark.wall_clock


def _serve(data_dir: Path, ready: Any, stop: Any) -> None:
    """The server process: the whole app on a free port; puts ``(url, key)`` on ``ready``,
    or the reason it could not start, and serves until ``stop`` is set."""

    async def main() -> None:
        async with (
            open_store(
                f"sqlite:///{data_dir / 'flow8.db'}",
                data_dir=data_dir,
                durability="normal",
                encryption=Keyring.generate(),
            ) as store,
            trio.open_nursery() as nursery,
        ):
            app, identity, _ = await start_app(nursery, store, HttpSettings())
            await identity.install("Fuzz Co", "owner@fuzz.example", "owner-password-1")
            result = await identity.login(
                "owner@fuzz.example", "owner-password-1", ip="127.0.0.1", user_agent="setup"
            )
            created = await identity.create_api_key(result.principal, "fuzz", ["api"])
            shutdown = trio.Event()
            binds = await nursery.start(
                partial(serve_http, app, "127.0.0.1", 0, shutdown_event=shutdown)
            )
            ready.put((binds[0], created.key))
            await trio.to_thread.run_sync(stop.wait)
            shutdown.set()
            await trio.sleep(0.2)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseException as e:  # the test must learn why the server did not start
        ready.put(f"the fuzzed server failed: {e!r}")
        raise


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A cookie jar that keeps nothing: each fuzzed case is authenticated by the key alone."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    # spawn, not fork: the test process has threads (and Trio state) a fork would copy.
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(
        target=_serve, args=(tmp_path_factory.mktemp("fuzz"), ready, stop), daemon=True
    )
    server.start()
    try:
        started = ready.get(timeout=60)
        if isinstance(started, str):
            raise RuntimeError(started)
        yield started
    finally:
        stop.set()
        server.join(timeout=30)
        if server.is_alive():
            server.kill()
            server.join()


def test_api_conforms_to_its_openapi_document(live: tuple[str, str]) -> None:
    url, key = live
    schema = schemathesis.openapi.from_url(f"{url}/api/openapi.json")
    auth = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    # One keep-alive connection for every case (without a session each case opens and closes
    # a connection of its own), holding no cookie from one case to the next.
    session = requests.Session()
    session.cookies.set_policy(_NoCookies())
    assert len(operations) >= 17
    for operation in operations:
        excluded = [checks.ignored_auth]
        free_form = (
            operation.path.startswith("/api/kv") or operation.path == "/api/flows/{flowId}/run"
        )
        # The OAuth2 callback's state must be one this server handed out (400 otherwise), and
        # the usage report's days must be real days in order (2026-02-30 fits the pattern).
        by_design = operation.path in ("/auth/callback", "/api/usage")
        writes = operation.method.upper() in ("POST", "PUT")
        checked_beyond_schema = operation.path.startswith(
            ("/api/flows", "/api/components", "/api/retention-policies", "/api/channels")
        )
        if free_form or by_design or (checked_beyond_schema and writes):
            # Flows are checked far beyond what a JSON schema says (known modules, each
            # module's args, expressions, step references), and free-form JSON values (KV
            # values, play inputs) must also fit the store (64-bit integers; keys without
            # "$", "." or ""), and a KV scope of flow or flow_group needs its scopeKey, a
            # dependency between query parameters that OpenAPI cannot state. A component's
            # config is checked against its provider's schema (GET /api/components/providers),
            # and the ai kind is registered but refused until AI components exist. A retention
            # policy's fields depend on each other (maxAgeDays >= enforcedMinimumDays >= the
            # configured floor, targetId by target). A channel's auth fields depend on its
            # authMode, a route's toolName on its channel's kind, and its targetFlowIds must
            # be flows of the company, and its path free on the channel. Such
            # refusals are 422 by design. All other checks still run.
            excluded.append(checks.positive_data_acceptance)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case[Any]) -> None:
            # ignored_auth would send our valid bearer key beside a bogus cookie and call the
            # 2xx a bypass; authentication is covered by test_http_auth instead.
            case.call_and_validate(
                session=session,
                headers=auth,
                excluded_checks=excluded,  # noqa: B023
            )

        fuzz()
