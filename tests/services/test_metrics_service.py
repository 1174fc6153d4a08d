"""The metrics read at scrape time (actor tree, store commits) and the play meter's handling of
what the bus carries, without the HTTP layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from flow8 import events as ev
from flow8.services.metrics import PlayMeter
from flow8.services.metrics._collectors import ActorCollector, StoreCollector
from flow8.store import open_store

TREE: dict[str, Any] = {
    "name": "root",
    "path": "root",
    "kind": "supervisor",
    "restarts": 0,
    "mailbox": {"depth": 0, "capacity": 0},
    "children": [
        {
            "name": "store",
            "path": "root/store",
            "kind": "task",
            "restarts": 2,
            "mailbox": {"depth": 0, "capacity": 0},
            "children": [],
        },
        {
            "name": "manager",
            "path": "root/channels/manager",
            "kind": "actor",
            "restarts": 1,
            "mailbox": {"depth": 3, "capacity": 64},
            "children": [],
        },
        {
            "name": "plays",
            "path": "root/engine/plays",
            "kind": "dynamic_supervisor",
            "restarts": 0,
            "childCount": 2,
            "mailbox": {"depth": 0, "capacity": 0},
            "children": [
                {"name": "play-0123", "path": "root/engine/plays/play-0123", "restarts": 0},
                {"name": "play-4567", "path": "root/engine/plays/play-4567", "restarts": 0},
            ],
        },
    ],
}


def _samples(registry: CollectorRegistry) -> list[Sample]:
    text = generate_latest(registry).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _by_actor(samples: list[Sample], name: str) -> dict[str, float]:
    return {s.labels["actor"]: s.value for s in samples if s.name == name}


def test_actor_tree_restarts_and_mailboxes_by_path_without_play_ids() -> None:
    registry = CollectorRegistry()
    registry.register(ActorCollector(lambda: TREE))
    samples = _samples(registry)
    assert _by_actor(samples, "flow8_actor_restarts_total") == {
        "root": 0,
        "root/store": 2,
        "root/channels/manager": 1,
        "root/engine/plays": 0,
    }
    assert _by_actor(samples, "flow8_actor_mailbox_depth") == {"root/channels/manager": 3}
    assert _by_actor(samples, "flow8_actor_mailbox_capacity") == {"root/channels/manager": 64}
    assert _by_actor(samples, "flow8_actor_children") == {"root/engine/plays": 2}
    assert "play-0123" not in generate_latest(registry).decode()


def test_no_tree_yet_is_no_actor_samples() -> None:
    registry = CollectorRegistry()
    registry.register(ActorCollector(dict))
    assert _samples(registry) == []


async def test_sqlite_commits_as_batch_size_and_latency(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path / 'm.db'}", data_dir=tmp_path) as store:
        registry = CollectorRegistry()
        registry.register(StoreCollector(store.statistics))
        before = _samples(registry)
        kv = store.tenant("c1").collection("kv")
        for n in range(5):
            await kv.insert_one({"key": f"k{n}", "value": n})
        after = _samples(registry)

    def value(samples: list[Sample], name: str, **labels: str) -> float:
        found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    commits = value(after, "flow8_store_commit_batch_size_count")
    assert commits - value(before, "flow8_store_commit_batch_size_count") == 5  # one at a time
    assert value(after, "flow8_store_commit_batch_size_sum") >= commits
    assert value(after, "flow8_store_commit_duration_seconds_count") == commits
    assert value(after, "flow8_store_commit_duration_seconds_bucket", le="+Inf") == commits
    assert value(after, "flow8_store_commit_duration_seconds_sum") > 0
    assert value(after, "flow8_store_queued_writes") == 0


def test_memory_store_statistics_leave_commits_out() -> None:
    registry = CollectorRegistry()
    registry.register(StoreCollector(lambda: {"backend": "mongo"}))
    assert _samples(registry) == []


def test_play_meter_counts_what_the_events_say() -> None:
    registry = CollectorRegistry()
    meter = PlayMeter.on(registry)
    bus = ev.EventBus()
    meter.watch(bus)

    def publish(type_: str, **data: Any) -> None:
        bus.publish(ev.Event(type_, "c1", "f1", "p1", data))

    publish(ev.PLAY_STARTED, flowVersion=1, trigger="schedule")
    layer = {"ref": "a", "appId": "curl", "startedAt": 10.0, "finishedAt": 10.5}
    publish(ev.LAYER_COMPLETED, state="DONE", **layer)
    publish(ev.LAYER_COMPLETED, state="FILTERED", **layer)  # did not run: not a duration
    publish(ev.LAYER_STARTED, state="RUN", **layer)  # not observed
    publish(ev.LAYER_FAILED, state="FAIL", **{**layer, "finishedAt": 13.0})
    publish(ev.PLAY_FAILED, state="FAIL", trigger="schedule")
    publish(ev.PLAY_COMPLETED, state="DONE")  # no trigger said: still counted
    samples = _samples(registry)

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value for s in samples if s.name == name and labels.items() <= s.labels.items()
        )

    assert value("flow8_plays_started_total", trigger="schedule") == 1
    assert value("flow8_plays_finished_total", state="FAIL", trigger="schedule") == 1
    assert value("flow8_plays_finished_total", state="DONE", trigger="unknown") == 1
    assert value("flow8_step_duration_seconds_count", module="curl") == 2
    assert value("flow8_step_duration_seconds_sum", module="curl", state="DONE") == 0.5
    assert value("flow8_step_duration_seconds_bucket", module="curl", state="FAIL", le="2.5") == 0
    assert value("flow8_step_duration_seconds_bucket", module="curl", state="FAIL", le="5.0") == 1


def test_an_observer_that_raises_does_not_stop_the_event() -> None:
    bus = ev.EventBus()
    seen: list[str] = []

    def broken(event: ev.Event) -> None:
        raise RuntimeError("bug")

    bus.observe([ev.PLAY_STARTED], broken)
    bus.observe([ev.PLAY_STARTED], lambda e: seen.append(e.type))
    assert bus.wants(ev.PLAY_STARTED, "c1", None, "p1")
    assert not bus.wants(ev.LAYER_STARTED, "c1", None, "p1")
    bus.publish(ev.Event(ev.PLAY_STARTED, "c1", "f1", "p1"))
    assert seen == [ev.PLAY_STARTED]


def test_the_expositions_of_several_workers_merge_into_one_labelled_by_worker() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from flow8.services.metrics import merge_expositions

    def exposition(done: int, seconds: float) -> bytes:
        registry = CollectorRegistry()
        Counter("flow8_plays_finished", "Plays.", ["state"], registry=registry).labels("DONE").inc(
            done
        )
        Histogram("flow8_step_seconds", "Steps.", registry=registry).observe(seconds)
        return generate_latest(registry)

    merged = merge_expositions([(1, exposition(3, 0.2)), (2, exposition(5, 2.0))]).decode()
    assert merged.count("# TYPE flow8_plays_finished_total counter") == 1
    families = {f.name: f for f in text_string_to_metric_families(merged)}
    done = {
        s.labels["worker"]: s.value
        for s in families["flow8_plays_finished"].samples
        if s.name == "flow8_plays_finished_total"
    }
    assert done == {"1": 3.0, "2": 5.0}
    counts = {
        s.labels["worker"]: s.value
        for s in families["flow8_step_seconds"].samples
        if s.name == "flow8_step_seconds_count"
    }
    assert counts == {"1": 1.0, "2": 1.0}
