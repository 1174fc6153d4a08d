"""Introspection: snapshots and the JSON tree served at GET /admin/actors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import trio
import trio.testing
from actors_testkit import Log, Worker, node, settle, worker

import actors

NODE_KEYS = {
    "name",
    "path",
    "kind",
    "strategy",
    "state",
    "restart",
    "restarts",
    "mailbox",
    "messagesHandled",
    "startedAt",
    "uptimeSeconds",
    "registeredName",
    "maxChildren",
    "childCount",
    "children",
}


def walk(tree: dict[str, object]) -> list[dict[str, object]]:
    out = [tree]
    for child in tree["children"]:  # type: ignore[attr-defined]
        out.extend(walk(child))
    return out


async def test_tree_json_shape(autojump_clock: trio.abc.Clock) -> None:
    log = Log()

    async def http(task_status: trio.TaskStatus[object]) -> None:
        task_status.started()
        await actors.stop_requested().wait()

    spec = actors.SupervisorSpec(
        [
            worker(log, "store", capacity=8, registered="store"),
            actors.supervisor(
                "engine",
                [worker(log, "dispatcher"), actors.dynamic_supervisor("plays", max_children=50)],
                strategy=actors.Strategy.REST_FOR_ONE,
            ),
            actors.task("http", http),
        ],
        strategy=actors.Strategy.ONE_FOR_ALL,
    )
    async with actors.open_runtime(spec) as rt:
        store = rt.actor("store")
        await store.call("x")
        store.send_nowait("block")
        store.send_nowait("queued")
        await settle()
        await rt.dynamic_supervisor("engine/plays").start_actor("p1", lambda: Worker(log, "p1"))
        await trio.sleep(3)
        tree = rt.tree()
        json.dumps(tree)  # JSON-ready
        nodes = walk(tree)
        assert all(set(n) == NODE_KEYS for n in nodes)
        assert [n["path"] for n in nodes] == [
            "root",
            "root/store",
            "root/engine",
            "root/engine/dispatcher",
            "root/engine/plays",
            "root/engine/plays/p1",
            "root/http",
        ]
        assert tree["kind"] == "supervisor"
        assert tree["strategy"] == "one_for_all"
        s = node(tree, "store")
        assert s["kind"] == "actor"
        assert s["strategy"] is None
        assert s["state"] == "running"
        assert s["mailbox"] == {"depth": 1, "capacity": 8}
        assert s["messagesHandled"] == 1
        assert s["registeredName"] == "store"
        assert s["uptimeSeconds"] == pytest.approx(3)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(s["startedAt"]))
        assert node(tree, "engine")["strategy"] == "rest_for_one"
        plays = node(tree, "engine/plays")
        assert plays["kind"] == "dynamic_supervisor"
        assert plays["strategy"] == "simple_one_for_one"
        assert plays["maxChildren"] == 50
        assert node(tree, "engine/plays/p1")["restart"] == "temporary"
        h = node(tree, "http")
        assert h["kind"] == "task"
        assert h["mailbox"] == {"depth": 0, "capacity": 0}
    final = rt.tree()
    assert {n["state"] for n in walk(final)} == {"stopped"}
    assert node(final, "engine/plays")["children"] == []


async def test_states_seen_while_restarting_and_stopping(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    spec = actors.SupervisorSpec(
        [worker(log, "slow", stop_delay=2), worker(log, "a")],
        strategy=actors.Strategy.ONE_FOR_ALL,
        intensity=5,
    )
    async with actors.open_runtime(spec) as rt:
        rt.actor("a").send_nowait("crash")
        await trio.sleep(1)  # "slow" is stopping for 2 s; "a" waits for its restart
        states = {c.name: c.state for c in rt.stats().children}
        assert states == {"slow": actors.State.STOPPING, "a": actors.State.RESTARTING}
        await trio.sleep(2)
        states = {c.name: c.state for c in rt.stats().children}
        assert states == {"slow": actors.State.RUNNING, "a": actors.State.RUNNING}


async def test_runtime_ref_lookup_errors(autojump_clock: trio.abc.Clock) -> None:
    log = Log()
    async with actors.open_runtime(actors.SupervisorSpec([worker(log, "a")])) as rt:
        assert rt.ref("root/a") is rt.ref("a")
        assert rt.root.children() == [rt.ref("a")]
        with pytest.raises(actors.ChildNotFound):
            rt.ref("nope")
        with pytest.raises(actors.ChildNotFound):
            rt.ref("a/deeper")
        with pytest.raises(actors.ChildNotFound):
            rt.dynamic_supervisor("a")


def test_tree_can_be_rendered_after_the_trio_run_ended() -> None:
    log = Log()

    async def run() -> actors.Runtime:
        async with actors.open_runtime(actors.SupervisorSpec([worker(log, "a")])) as rt:
            return rt

    rt = trio.run(run)
    tree = rt.tree()
    assert tree["state"] == "stopped"
    assert tree["uptimeSeconds"] is None


def test_the_readme_documents_exactly_the_node_keys() -> None:
    readme = (Path(actors.__file__).parent / "README.md").read_text()
    block = readme.split("Every node of `runtime.tree()` has these keys")[1]
    example = json.loads(block.split("```json")[1].split("```")[0])
    assert set(example) == NODE_KEYS
    assert set(example["mailbox"]) == {"depth", "capacity"}


async def test_tree_limit_caps_listed_children_but_not_the_count(
    autojump_clock: trio.abc.Clock,
) -> None:
    log = Log()
    async with actors.open_runtime(actors.SupervisorSpec([actors.dynamic_supervisor("d")])) as rt:
        d = rt.dynamic_supervisor("d")
        for i in range(5):
            await d.start_actor(f"p{i}", lambda: Worker(log, "p"))
        full = node(rt.tree(), "d")
        assert full["childCount"] == 5
        assert len(full["children"]) == 5
        capped = node(rt.tree(limit=2), "d")
        assert capped["childCount"] == 5
        assert [c["name"] for c in capped["children"]] == ["p0", "p1"]
        assert rt.tree(limit=0)["children"] == []
        assert rt.tree(limit=0)["childCount"] == 1
        with pytest.raises(ValueError, match="limit"):
            rt.tree(limit=-1)
