"""One instance's metrics: the registry, what feeds it, and its text exposition."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from flow8.engine import Engine
from flow8.events import EventBus
from flow8.logs import get_logger
from flow8.store import Store, StoreError

from ._collectors import QUEUED, ActorCollector, InstanceCollector, PlayCollector, StoreCollector
from ._http import RequestMeter
from ._plays import PlayMeter
from ._workers import WorkerPeers, merge_expositions

log = get_logger("flow8.metrics")


def _no_tree() -> Mapping[str, Any]:
    return {}


@attrs.define
class Metrics:
    """The metrics `GET /metrics` serves, in a registry of their own (not prometheus-client's
    global one: a process may hold several apps, tests do).

    Counted as things happen: plays and steps (`plays`, an observer of the event bus) and HTTP
    requests (`requests`, fed by the HTTP middleware). Read at scrape time: running plays and
    the play queue, the actor tree, the store's commits, the process (CPU, memory, files)."""

    registry: CollectorRegistry
    requests: RequestMeter
    plays: PlayMeter
    _engine: Engine
    _queue: PlayCollector
    # The classic text format every scraper reads (Prometheus 2 and 3, promtool, agents);
    # flow8's names need none of 1.0.0's UTF-8 escaping, so the text is the same.
    content_type: str = CONTENT_TYPE_PLAIN_0_0_4
    # Set in a worker of `flow8 serve --workers N`: a scrape serves every worker's metrics.
    peers: WorkerPeers | None = None

    @classmethod
    def of(
        cls,
        engine: Engine,
        bus: EventBus,
        store: Store,
        actor_tree: Callable[[], Mapping[str, Any]] = _no_tree,
        heartbeats: Callable[[], Iterable[tuple[str, int, float]]] = tuple,
    ) -> Metrics:
        registry = CollectorRegistry()
        plays = PlayMeter.on(registry)
        plays.watch(bus)
        queue = PlayCollector(lambda: engine.running)
        registry.register(queue)
        registry.register(ActorCollector(actor_tree))
        registry.register(StoreCollector(store.statistics))
        registry.register(InstanceCollector(heartbeats))
        ProcessCollector(registry=registry)
        return cls(registry, RequestMeter.on(registry), plays, engine, queue)

    async def render(self) -> bytes:
        """The text exposition format: this instance's, or with workers every worker's
        (labelled ``worker``)."""
        own = await self.render_own()
        if self.peers is None:
            return own
        others = await self.peers.gather()
        return merge_expositions([(self.peers.worker, own), *others])

    async def render_own(self) -> bytes:
        """This process's metrics, the play queue counted first."""
        await self._count_queue()
        return generate_latest(self.registry)

    async def _count_queue(self) -> None:
        counts: dict[str, int] = {}
        try:
            for state in QUEUED:
                counts[state.value] = await self._engine.count_in_state(state)
        except StoreError as e:  # the rest of the metrics still say what they know
            log.warning("metrics_queue_not_counted", error=str(e))
            counts = {}
        self._queue.queued = counts
