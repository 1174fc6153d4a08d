"""What is read at scrape time from the statistics the parts already keep: nothing is counted
twice, and nothing costs anything between scrapes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from flow8.domain import PlayState

# The states a play waits in before (or between) runs: the play queue.
QUEUED = (PlayState.NEW, PlayState.DEFERRED, PlayState.WAIT)


@attrs.define(eq=False)  # registered by identity
class ActorCollector(Collector):
    """Restarts and mailboxes of the supervision tree's nodes, by path (`engine/dispatcher`).

    The children of a dynamic supervisor (one per play, one per channel listener) are not
    listed, only their number: their names carry ids, a series each would outlive them."""

    tree: Callable[[], Mapping[str, Any]]

    def collect(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "flow8_actor_restarts",
            "Times the supervision tree's node was started again by its supervisor.",
            labels=["actor"],
        )
        depth = GaugeMetricFamily(
            "flow8_actor_mailbox_depth", "Messages waiting in the node's mailbox.", labels=["actor"]
        )
        capacity = GaugeMetricFamily(
            "flow8_actor_mailbox_capacity", "Size of the node's mailbox.", labels=["actor"]
        )
        children = GaugeMetricFamily(
            "flow8_actor_children",
            "Children of a dynamic supervisor (running plays, channel listeners).",
            labels=["actor"],
        )
        pending = [self.tree()]
        while pending:
            node = pending.pop()
            if not node:
                continue
            path = str(node.get("path") or node.get("name") or "")
            restarts.add_metric([path], float(node.get("restarts") or 0))
            mailbox = node.get("mailbox") or {}
            if mailbox.get("capacity"):
                depth.add_metric([path], float(mailbox.get("depth") or 0))
                capacity.add_metric([path], float(mailbox["capacity"]))
            if node.get("kind") == "dynamic_supervisor":
                children.add_metric([path], float(node.get("childCount") or 0))
            else:
                pending.extend(node.get("children") or ())
        yield from (restarts, depth, capacity, children)


@attrs.define(eq=False)  # registered by identity
class StoreCollector(Collector):
    """The store's write queue and group commits (the sqlite backend keeps them; a backend
    that does not, MongoDB's, leaves them out)."""

    statistics: Callable[[], Mapping[str, Any]]

    def collect(self) -> Iterator[Metric]:
        stats = self.statistics()
        if "queued_writes" in stats:
            yield GaugeMetricFamily(
                "flow8_store_queued_writes",
                "Writes waiting for the store's next group commit.",
                value=float(stats["queued_writes"]),
            )
        if "commits" not in stats:
            return
        commits = int(stats["commits"])
        yield SummaryMetricFamily(
            "flow8_store_commit_batch_size",
            "Writes per group commit (count: commits; sum: the writes they committed).",
            count_value=commits,
            sum_value=float(stats.get("committed_ops") or 0),
        )
        if "lock_waits" in stats:
            yield SummaryMetricFamily(
                "flow8_store_lock_wait_seconds",
                "Group commits that waited for another process on the same database file "
                "(count) and the time they waited (sum).",
                count_value=int(stats["lock_waits"]),
                sum_value=float(stats["lock_wait_seconds"]),
            )
        le = stats.get("commit_seconds_le")
        if le is not None:
            yield HistogramMetricFamily(
                "flow8_store_commit_duration_seconds",
                "Time of each group commit in the database, its fsync included.",
                buckets=[*((bound, float(n)) for bound, n in le.items()), ("+Inf", float(commits))],
                sum_value=float(stats.get("commit_seconds") or 0.0),
            )


@attrs.define(eq=False)  # registered by identity
class PlayCollector(Collector):
    """Plays running on this instance, and the play queue of every instance by state. The
    queue is counted in the store (async) just before each scrape: `refresh`."""

    running: Callable[[], int]
    queued: dict[str, int] = attrs.field(factory=dict)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "flow8_plays_running",
            "Plays running on this instance now.",
            value=float(self.running()),
        )
        if self.queued:
            queue = GaugeMetricFamily(
                "flow8_play_queue_depth",
                "Plays of every instance waiting by state: NEW (to be claimed), DEFERRED (their "
                "flow at its maxConcurrent), WAIT (a delay, a retry back-off or an approval).",
                labels=["state"],
            )
            for state, n in self.queued.items():
                queue.add_metric([state], float(n))
            yield queue


@attrs.define(eq=False)  # registered by identity
class InstanceCollector(Collector):
    """How long ago each live instance sharing the store last heartbeated, as this instance
    read the registry at its own last heartbeat (``flow8.services.instances``): an age that
    keeps growing is an instance about to lose its index and have its plays taken over."""

    # (instance id, instance index, seconds since its heartbeat) of each live instance
    heartbeats: Callable[[], Iterable[tuple[str, int, float]]]

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "flow8_instance_heartbeat_age_seconds",
            "Seconds since each live instance's last heartbeat.",
            labels=["instance", "index"],
        )
        for instance, index, seconds in self.heartbeats():
            age.add_metric([instance, str(index)], seconds)
        yield age
