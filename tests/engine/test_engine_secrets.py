"""Secrets a play uses are masked in everything it records and reports, while its steps get
the real values — also after a resume; and play data can be encrypted at rest."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from engine_testkit import (
    COMPANY,
    layers_by_ref,
    make_flow,
    run,
    running_engine,
    spec,
)
from support.waits import wait_for_play

from flow8.domain import PlayState
from flow8.engine import Engine
from flow8.events import EventFilter
from flow8.modules import ModuleContext
from flow8.store import Store

TOKEN = "tok-7f3a9c-secret"


def _raw_database(tmp_path: Path) -> str:
    """Everything the database file and its WAL hold, as text."""
    assert (tmp_path / "flow8.db").exists(), "no sqlite database: nothing would be checked"
    out = []
    for name in ("flow8.db", "flow8.db-wal"):
        path = tmp_path / name
        if path.exists():
            out.append(path.read_bytes().decode("latin-1"))
    with sqlite3.connect(tmp_path / "flow8.db") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            out.extend(str(row) for row in db.execute(f'SELECT doc, bulk FROM "{table}"'))
    return "\n".join(out)


def _capture(engine: Engine, seen: list[Any]) -> None:
    async def capture(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        seen.append(args.get("value"))
        return {"used": args.get("value")}

    engine.registry.register(spec("capture", capture), replace=True)


async def _secret(engine: Engine) -> None:
    await engine.kv.set(COMPANY, "global", "token", TOKEN, None, secret=True)
    await engine.kv.set(COMPANY, "global", "plain", "not-a-secret", None)


@pytest.mark.wall_clock  # its last check reads sqlite's file
async def test_a_secret_kv_value_is_masked_in_records_and_events(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    engine = sqlite_engine
    await _secret(engine)
    seen: list[Any] = []
    _capture(engine, seen)
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "get", "appId": "kv-get", "args": {"key": "token", "scope": "global"}},
                {
                    "ref": "use",
                    "appId": "capture",
                    "args": {"value": "Bearer {{ $prev.get.value }}"},
                },
                {"ref": "expr", "appId": "set", "args": {"value": "{{ $kvGlobal('token') }}"}},
                {"ref": "other", "appId": "kv-get", "args": {"key": "plain", "scope": "global"}},
            ]
        },
    )
    frames: list[str] = []
    async with engine.events.subscribe(EventFilter(COMPANY), buffer=64) as events:
        done = await run(engine, flow)
        while True:
            try:
                frames.append(str(events.receive_nowait().to_json()))
            except trio.WouldBlock:
                break
    assert seen == [f"Bearer {TOKEN}"]  # the step got the real value
    assert done.state is PlayState.DONE
    assert done.output == {"value": "not-a-secret", "found": True}
    layers = await layers_by_ref(engine, done)
    assert layers["get"].output == {"value": "***", "found": True}
    assert layers["use"].args == {"value": "Bearer ***"}
    assert layers["use"].output == {"used": "Bearer ***"}
    assert layers["expr"].output == "***"
    assert frames
    assert not any(TOKEN in f for f in frames)
    assert TOKEN not in _raw_database(tmp_path)


async def test_a_resumed_play_gives_later_steps_the_real_value(engine: Engine) -> None:
    """Across an approval (no actor held, the play re-read from the store), the step after
    it still receives the secret itself, not its mask."""
    await _secret(engine)
    seen: list[Any] = []
    _capture(engine, seen)
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "get", "appId": "kv-get", "args": {"key": "token", "scope": "global"}},
                {"ref": "gate", "appId": "noop", "needsApproval": True},
                {"ref": "use", "appId": "capture", "args": {"value": "{{ $prev.get.value }}"}},
                {"ref": "echo", "appId": "set", "args": {"value": "x{{ $prev.get.value }}"}},
            ]
        },
    )
    play = await engine.start_play(COMPANY, flow.id)
    await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
    await engine.decide(COMPANY, play.id, approve=True)
    done = await engine.wait_play(COMPANY, play.id, timeout=10)
    assert done.state is PlayState.DONE
    assert seen == [TOKEN]
    assert done.output == "x***"  # and what it learned before the wait is still masked
    layers = await layers_by_ref(engine, done)
    assert layers["use"].args == {"value": "***"}


async def test_kv_set_secret_masks_the_value_it_stores(engine: Engine) -> None:
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {
                    "ref": "save",
                    "appId": "kv-set",
                    "args": {"key": "k", "value": "{{ $prev.args.pw }}", "secret": True},
                },
                {"ref": "echo", "appId": "set", "args": {"value": "{{ $prev.args }}"}},
            ]
        },
    )
    done = await run(engine, flow, {"pw": "hunter2-pass"})
    layers = await layers_by_ref(engine, done)
    assert layers["save"].args["value"] == "***"
    assert done.output == {"pw": "***"}
    assert await engine.kv.entry(COMPANY, f"flow:{flow.id}", "k") == (True, "hunter2-pass", True)


async def test_a_subflow_is_born_knowing_its_parents_secrets(engine: Engine) -> None:
    await _secret(engine)
    child = await make_flow(
        engine,
        {"flowlets": [{"ref": "echo", "appId": "set", "args": {"value": "{{ $prev.args }}"}}]},
    )
    parent = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "get", "appId": "kv-get", "args": {"key": "token", "scope": "global"}},
                {
                    "ref": "sub",
                    "appId": "subflow",
                    "args": {"flowId": child.id, "args": {"t": "{{ $prev.get.value }}"}},
                },
            ]
        },
    )
    done = await run(engine, parent)
    assert done.state is PlayState.DONE
    child_id = done.output["playId"]
    child_play = await engine.get_play(COMPANY, child_id)
    assert child_play.input == {"t": "***"}
    assert child_play.output == {"t": "***"}


@pytest.mark.wall_clock  # reads sqlite's file
async def test_play_data_can_be_encrypted_at_rest(sqlite_store: Store, tmp_path: Path) -> None:
    async with running_engine(sqlite_store, encrypt_play_data=True) as engine:
        flow = await make_flow(
            engine,
            {
                "flowlets": [
                    {"ref": "a", "appId": "set", "args": {"value": "{{ $prev.args.note }}"}},
                    {"ref": "gate", "appId": "noop", "needsApproval": True},
                    {"ref": "b", "appId": "set", "args": {"value": "{{ $prev.a }}!"}},
                ]
            },
        )
        play = await engine.start_play(COMPANY, flow.id, {"note": "plain-text-canary"})
        await wait_for_play(engine, COMPANY, play.id, PlayState.WAIT)
        await engine.decide(COMPANY, play.id, approve=True)  # resumed from stored data
        done = await engine.wait_play(COMPANY, play.id, timeout=10)
        assert done.state is PlayState.DONE
        stored = await engine.get_play(COMPANY, play.id)
        assert stored.input == {"note": "plain-text-canary"}
        assert stored.output == "plain-text-canary!"
        layers = await layers_by_ref(engine, stored)
        assert layers["a"].output == "plain-text-canary"
        assert layers["b"].args == {"value": "plain-text-canary!"}
        assert "plain-text-canary" not in _raw_database(tmp_path)


@pytest.mark.parametrize("short", ["abc", "1"])
async def test_texts_too_short_to_mask_are_not_masked(engine: Engine, short: str) -> None:
    await engine.kv.set(COMPANY, "global", "s", short, None, secret=True)
    flow = await make_flow(
        engine,
        {"flowlets": [{"ref": "get", "appId": "kv-get", "args": {"key": "s", "scope": "global"}}]},
    )
    done = await run(engine, flow)
    assert done.output == {"value": short, "found": True}


async def test_a_retry_reuses_the_real_values_and_keeps_them_masked(engine: Engine) -> None:
    await _secret(engine)
    seen: list[Any] = []
    attempts = 0

    async def flaky(_ctx: ModuleContext, args: Mapping[str, Any]) -> Any:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError(f"upstream refused {args['value']}")
        seen.append(args["value"])
        return "ok"

    engine.registry.register(spec("flaky", flaky), replace=True)
    flow = await make_flow(
        engine,
        {
            "flowlets": [
                {"ref": "get", "appId": "kv-get", "args": {"key": "token", "scope": "global"}},
                {"ref": "call", "appId": "flaky", "args": {"value": "{{ $prev.get.value }}"}},
            ]
        },
    )
    failed = await run(engine, flow)
    assert failed.state is PlayState.FAIL
    assert failed.error == "step 'call': upstream refused ***"
    retried = await engine.retry_play(COMPANY, failed.id, "call")
    done = await engine.wait_play(COMPANY, retried.id, timeout=10)
    assert done.state is PlayState.DONE
    assert seen == [TOKEN]  # the reused kv-get layer gave the real value
    layers = await layers_by_ref(engine, done)
    assert layers["get"].output == {"value": "***", "found": True}
