"""The channels subtree on the real channel service (sqlite): a channel created, changed,
disabled and deleted through the service is served, restarted and closed by the manager,
told through the service's ``on_change``."""

from __future__ import annotations

import httpx
import trio
from channel_fixtures import COMPANY, free_port, open_channel_env
from support.waits import wait_until

from flow8.config import PortRange
from flow8.modules import default_registry
from flow8.services.channels import ChannelService
from flow8.services.flows import FlowRepository
from flow8.store import Store

TOKEN = "service-token-4f8a2c71e9"


async def _connects(port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    await stream.aclose()
    return True


async def test_service_changes_reach_the_listening_socket_within_a_second(store: Store) -> None:
    port = free_port()
    service = ChannelService(
        store, FlowRepository(store, default_registry()), PortRange(port, port)
    )
    async with open_channel_env(store) as env:
        env.manager.source = service
        service.on_change = env.manager.changed
        channel = await service.create(
            COMPANY,
            {"name": "hooks", "kind": "http", "authMode": "header_token", "authToken": TOKEN},
        )
        assert channel.port == port
        await service.add_route(
            COMPANY,
            channel.id,
            {
                "name": "orders",
                "httpMethod": "POST",
                "path": "/orders/{id}",
                "targetFlowIds": [env.flows["echo"]],
                "responseMode": "sync",
            },
        )

        # The route's change restarts the channel: wait for the incarnation that has it.
        def serving_the_route() -> bool:
            listening = env.manager.listening().get(channel.id)
            return listening is not None and bool(listening.routes)

        await wait_until(serving_the_route, timeout=1, what="the route served")
        await wait_until(lambda: _connects(port), timeout=1, what="listening")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            r = await client.post(
                "/orders/9", json={"a": 1}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert r.status_code == 200, r.text
            assert r.json()["params"] == {"id": "9"}
            r = await client.post("/orders/9", json={})
            assert r.status_code == 401

        async def closed() -> bool:
            return not await _connects(port)

        await service.update(COMPANY, channel.id, {"enabled": False})
        await wait_until(closed, timeout=1, what="closed when disabled")
        await service.update(COMPANY, channel.id, {"enabled": True})
        await wait_until(lambda: _connects(port), timeout=1, what="listening again")
        await service.delete(COMPANY, channel.id)
        await wait_until(closed, timeout=1, what="closed when deleted")
