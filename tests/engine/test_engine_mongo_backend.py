"""The engine on the mongo backend (pymongo API through mongomock): claims with `$or`,
dotted approval fields, idempotency keys, parked delays, KV read-modify-write."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import mongomock
import pytest
import trio
from engine_testkit import COMPANY, fast_settings, make_flow, new_engine
from support.waits import wait_until

from flow8.domain import PlayState
from flow8.events import EventBus
from flow8.store import Keyring, open_store


@pytest.mark.wall_clock  # the mongo backend works in worker threads, as on a real server
async def test_a_representative_flow_runs_on_the_mongo_backend(tmp_path: Path) -> None:
    keys = Keyring.parse("k1:" + base64.b64encode(os.urandom(32)).decode())
    async with (
        open_store(
            "mongodb://localhost/flow8test",
            data_dir=tmp_path,
            encryption=keys,
            mongo_client=mongomock.MongoClient(),
        ) as store,
        trio.open_nursery() as nursery,
    ):
        engine = new_engine(store, EventBus(), fast_settings(hold_delay_seconds=0.2))
        await nursery.start(engine.serve)
        flow = await make_flow(
            engine,
            {
                "flowlets": [
                    {"ref": "it", "appId": "iterator", "args": {"items": [1, 2]}},
                    {
                        "ref": "x",
                        "appId": "set",
                        "index": 2,
                        "args": {"value": "{{ $prev.it.item * 10 }}"},
                    },
                    {
                        "ref": "y",
                        "appId": "kv-append",
                        "index": 2,
                        "args": {"key": "seen", "value": "{{ $prev.it.item }}"},
                    },
                    {
                        "ref": "agg",
                        "appId": "aggregator",
                        "args": {"sourceRef": "it", "field": "x"},
                    },
                    {"ref": "nap", "appId": "delay", "args": {"ms": 400}},
                    {"ref": "ok", "appId": "noop", "needsApproval": True},
                    {
                        "ref": "out",
                        "appId": "set",
                        "args": {
                            "value": {"agg": "{{ $prev.agg.items }}", "kv": "{{ $kv('seen') }}"}
                        },
                    },
                ]
            },
        )
        play = await engine.start_play(COMPANY, flow.id, idempotency_key="once")
        assert (await engine.start_play(COMPANY, flow.id, idempotency_key="once")).id == play.id

        async def waits_for_approval() -> bool:
            current = await engine.get_play(COMPANY, play.id)
            return current.wait_reason is not None and current.wait_reason.value == "approval"

        await wait_until(waits_for_approval, what="the play waiting for approval")
        await engine.decide(COMPANY, play.id, approve=True)
        done = await engine.wait_play(COMPANY, play.id, timeout=10)
        nursery.cancel_scope.cancel()
    assert done.state is PlayState.DONE, done.error
    assert done.output == {"agg": [10, 20], "kv": [1, 2]}
