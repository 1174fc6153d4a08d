"""/ws across processes: two real `flow8 serve` on one data dir (one sqlite file), as two
workers of `flow8 serve --workers 2` or two instances on one store are. A play started
through the first runs there; a browser whose socket landed on the second still sees its
events, read back from the store (flow8.services.play_watch), each once."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from support.serving import flow8_serve
from trio_websocket import open_websocket_url

pytestmark = pytest.mark.wall_clock
OWNER = {"company": "Acme", "email": "ops@example.com", "password": "a-long-password"}
FLOW = {
    "name": "slow",
    "flowlets": [
        {"ref": "first", "appId": "noop"},
        {"ref": "wait", "appId": "delay", "args": {"ms": 1500}},
        {"ref": "last", "appId": "noop"},
    ],
}
ORDER = ["first", "wait", "last"]


def _owner(base: str) -> httpx.Client:
    """A client signed in as the company's owner (installing the company on first use)."""
    client = httpx.Client(base_url=base, timeout=15)
    client.post("/api/install", json=OWNER)
    login = client.post("/api/auth/login", json={k: OWNER[k] for k in ("email", "password")})
    assert login.status_code == 200, login.text
    client.headers["X-CSRF-Token"] = login.json()["csrfToken"]
    return client


async def _frames_until(ws: Any, done: Any, *, quiet: float) -> list[dict[str, Any]]:
    """Frames until ``done(frames)``, then any that come within ``quiet`` seconds."""
    frames: list[dict[str, Any]] = []
    with trio.fail_after(20):
        while not done(frames):
            frames.append(json.loads(await ws.get_message()))
    with trio.move_on_after(quiet):
        while True:
            frames.append(json.loads(await ws.get_message()))
    return frames


def _key(frame: dict[str, Any]) -> tuple[Any, ...]:
    data = frame["data"]
    return (frame["type"], data.get("ref"), data.get("state"), data.get("attempt"))


def _shown(frame: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in frame.items() if k not in ("at", "subscription")}


def _ended(sub: str) -> Any:
    return lambda frames: any(
        f["type"] == "play:completed" and f.get("subscription") == sub for f in frames
    )


async def test_a_socket_on_another_process_sees_the_play_events_each_once(
    tmp_path: Path,
) -> None:
    with (
        flow8_serve(tmp_path, LOG_LEVEL="warning") as first,
        flow8_serve(tmp_path, LOG_LEVEL="warning") as second,
        contextlib.closing(_owner(first["base"])) as one,
    ):
        key = one.post("/api/auth/api-keys", json={"name": "ws", "scopes": ["api"]}).json()["key"]
        flow_id = one.post("/api/flows", json=FLOW).json()["id"]
        headers = [(b"authorization", f"Bearer {key}".encode())]
        remote_url = second["base"].replace("http://", "ws://") + "/ws"
        local_url = first["base"].replace("http://", "ws://") + "/ws"
        async with (
            open_websocket_url(remote_url, extra_headers=headers) as ws,
            open_websocket_url(local_url, extra_headers=headers) as here,
        ):
            await ws.send_message(json.dumps({"action": "subscribe", "company": True}))
            assert json.loads(await ws.get_message())["type"] == "subscribed"  # s1

            started = one.post(f"/api/flows/{flow_id}/run", json={})  # runs on the first
            assert started.status_code == 202, started.text
            play_id = started.json()["id"]
            await ws.send_message(json.dumps({"action": "subscribe", "playId": play_id}))
            await here.send_message(json.dumps({"action": "subscribe", "playId": play_id}))
            got: dict[str, list[dict[str, Any]]] = {}

            async def collect(name: str, socket: Any, done: Any) -> None:
                got[name] = await _frames_until(socket, done, quiet=1.5)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    collect, "remote", ws, lambda f: _ended("s1")(f) and _ended("s2")(f)
                )
                nursery.start_soon(collect, "local", here, _ended("s1"))
    remote, local = got["remote"], got["local"]

    # The socket on the process running the play: the bus's events, each once.
    assert local[0]["type"] == "subscribed"
    local_keys = [_key(f) for f in local[1:]]
    assert len(local_keys) == len(set(local_keys))
    assert local[-1]["type"] == "play:completed"
    assert remote[0]["type"] == "subscribed"
    assert remote[0]["subscription"] == "s2"
    of_play = [f for f in remote if f.get("subscription") == "s2"]
    assert {f["playId"] for f in of_play} == {play_id}
    layers = [
        (f["type"], f["data"]["ref"], f["data"]["state"])
        for f in of_play
        if f["type"].startswith("play:layer:")
    ]
    assert len(layers) == len(set(layers))  # each once
    # In order: those that ended after the subscription (the delay had not, then).
    refs = [ref for kind, ref, _ in layers if kind == "play:layer:completed"]
    assert refs == ORDER[len(ORDER) - len(refs) :]
    assert refs[-2:] == ["wait", "last"]
    assert {state for kind, _, state in layers if kind == "play:layer:completed"} == {"DONE"}
    ends = [f for f in of_play if f["type"] in ("play:completed", "play:failed")]
    assert len(ends) == 1
    assert ends[0] is of_play[-1]  # after every layer event, and nothing after it
    assert ends[0]["data"]["state"] == "DONE"
    assert ends[0]["data"]["trigger"] == "api"
    assert ends[0]["flowId"] == flow_id
    # The very frames the bus gave the other socket, but for their time and subscription.
    same = {_key(f): _shown(f) for f in local[1:]}
    assert [_shown(f) for f in of_play[1:]] == [same[_key(f)] for f in of_play[1:]]

    # The company subscription (play events only, from another process) saw it too, once.
    of_company = [f for f in remote if f.get("subscription") == "s1"]
    assert [(f["type"], f["playId"]) for f in of_company] == [
        ("play:started", play_id),
        ("play:completed", play_id),
    ]
