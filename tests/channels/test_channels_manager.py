"""The channels subtree: channels start, stop and restart live with their stored state, a
crash of one channel restarts that channel only, and the tree shows each channel's counts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
from channel_fixtures import ChannelEnv, channel, free_port, open_channel_env, route
from support.waits import wait_until

from flow8.channels import child_id
from flow8.services.channels import ChannelKind
from flow8.store import Store


async def _connects(port: int | None) -> bool:
    assert port is not None
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    await stream.aclose()
    return True


async def _post(port: int | None, path: str = "/p") -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return await client.post(path, json={"x": 1})


async def _within_a_second(check: Any) -> None:
    await wait_until(check, timeout=1, what="the socket change")


async def test_enable_disable_delete_open_and_close_the_socket_within_a_second(
    env: ChannelEnv,
) -> None:
    ch = env.source.put(
        channel("c1", ChannelKind.HTTP, [route("p", [env.flows["echo"]], path="/p")])
    )
    assert not await _connects(ch.port) or True  # (may race the first round; checked below)
    await _within_a_second(lambda: _connects(ch.port))
    assert (await _post(ch.port)).status_code == 200

    env.source.update("c1", enabled=False)

    async def closed() -> bool:
        return not await _connects(ch.port)

    await _within_a_second(closed)
    assert "c1" not in env.manager.listening()

    env.source.update("c1", enabled=True)
    await _within_a_second(lambda: _connects(ch.port))
    assert (await _post(ch.port)).status_code == 200

    env.source.delete("c1")
    await _within_a_second(closed)
    assert env.manager.listening() == {}


async def test_a_changed_channel_restarts_with_its_new_routes_and_port(env: ChannelEnv) -> None:
    ch = env.source.put(
        channel("c1", ChannelKind.HTTP, [route("p", [env.flows["echo"]], path="/p")])
    )
    await env.settle()
    assert (await _post(ch.port, "/q")).status_code == 404
    env.source.update("c1", routes=(route("q", [env.flows["echo"]], path="/q"),))
    await env.settle()
    assert (await _post(ch.port, "/q")).status_code == 200
    assert (await _post(ch.port, "/p")).status_code == 404
    new_port = free_port()
    env.source.update("c1", port=new_port)
    await env.settle()
    assert not await _connects(ch.port)
    assert (await _post(new_port, "/q")).status_code == 200


async def test_changes_made_elsewhere_are_picked_up_by_the_periodic_read(store: Store) -> None:
    async with open_channel_env(store, resync_seconds=0.3) as env:
        env.source.on_change = None  # another instance's change: nobody tells this manager
        ch = env.source.put(channel("c1", ChannelKind.TCP, [route("p", [env.flows["echo"]])]))
        await wait_until(lambda: _connects(ch.port), timeout=2, what="listening")
        env.source.update("c1", enabled=False)

        async def closed() -> bool:
            return not await _connects(ch.port)

        await wait_until(closed, timeout=2, what="closed")


async def test_a_crashed_channel_restarts_alone_while_another_keeps_serving(
    env: ChannelEnv,
) -> None:
    routes = [route("p", [env.flows["echo"]], path="/p")]
    one = env.source.put(channel("c1", ChannelKind.HTTP, routes))
    two = env.source.put(channel("c2", ChannelKind.HTTP, routes))
    await env.settle()
    stats_two = env.manager.stats("c2")
    assert stats_two is not None
    listener = env.manager.listener("c1")
    assert listener is not None
    assert listener.socket is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{two.port}", timeout=10) as keep:
        assert (await keep.post("/p", json={})).status_code == 200
        # The socket fails under the listener (as a broken network would): it crashes.
        await listener.socket.aclose()

        def restarted() -> bool:
            fresh = env.manager.listener("c1")
            return _node(env, "c1")["restarts"] == 1 and fresh not in (None, listener)

        await wait_until(restarted, timeout=2, what="the channel's restart")
        assert (await _post(one.port)).status_code == 200  # back, on the same port
        # The other channel was not touched: same incarnation, same keep-alive connection.
        assert _node(env, "c2")["restarts"] == 0
        assert (await keep.post("/p", json={})).status_code == 200
    assert stats_two.connections_total == 1
    stats_one = env.manager.stats("c1")
    assert stats_one is not None
    assert stats_one.requests == 1  # counts survive the restart


def _node(env: ChannelEnv, channel_id: str) -> dict[str, Any]:
    tree = env.runtime.tree()

    def find(node: dict[str, Any]) -> dict[str, Any] | None:
        if node["name"] == child_id(channel_id):
            return node
        for child in node["children"]:
            found = find(child)
            if found is not None:
                return found
        return None

    found = find(tree)
    assert found is not None, json.dumps(tree, default=str)[:2000]
    return found


async def test_the_tree_shows_each_channel_and_its_counts(env: ChannelEnv) -> None:
    ch = env.source.put(
        channel("c1", ChannelKind.HTTP, [route("p", [env.flows["echo"]], path="/p")])
    )
    await env.settle()
    assert (await _post(ch.port)).status_code == 200
    assert (await _post(ch.port, "/missing")).status_code == 404
    node = _node(env, "c1")
    assert node["path"].endswith("channels/listeners/channel-c1")
    assert node["restart"] == "transient"
    info = node["info"]
    assert (info["channelId"], info["kind"], info["port"]) == ("c1", "http", ch.port)
    assert info["requests"] == 2
    assert info["playsStarted"] == 1
    assert info["rejected"]["notFound"] == 1
    assert info["connectionsTotal"] == 2


async def test_a_port_taken_by_something_else_is_retried(env: ChannelEnv) -> None:
    port = free_port()
    squatter = trio.socket.socket()
    await squatter.bind(("127.0.0.1", port))
    squatter.listen()
    try:
        env.source.put(
            channel("c1", ChannelKind.HTTP, [route("p", [env.flows["echo"]])], port=port)
        )
        await trio.sleep(0.2)
        assert "c1" not in env.manager.listening()
    finally:
        squatter.close()
    env.manager.changed("company-a", "c1")  # or the next periodic read
    await env.settle()
    assert (await _post(port, "/")).status_code == 200


async def test_a_change_lets_requests_in_progress_finish_and_closes_idle_ones(
    env: ChannelEnv,
) -> None:
    routes = [route("b", [env.flows["brief"]], path="/b")]
    ch = env.source.put(channel("c1", ChannelKind.HTTP, routes))
    await env.settle()
    assert ch.port is not None
    idle = await trio.open_tcp_stream("127.0.0.1", ch.port)
    answers: list[httpx.Response] = []

    async def request() -> None:
        answers.append(await _post(ch.port, "/b"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(request)
        stats = env.manager.stats("c1")
        assert stats is not None
        await wait_until(lambda: stats.plays_started == 1, timeout=2, what="the play started")
        env.source.update("c1", name="renamed")  # a change: the channel restarts
        with trio.fail_after(1):
            assert await idle.receive_some(100) == b""  # the idle connection was closed
    await idle.aclose()
    assert answers[0].status_code == 200
    assert answers[0].json() == "answered"
    await env.settle()
    assert (await _post(ch.port, "/b")).status_code == 200
