"""The ``channels`` subtree: a dynamic supervisor of channel actors, and the manager task
that keeps it in line with the stored channels.

::

    channels                 supervisor, one_for_all (a restarted manager starts from scratch)
    ├── listeners            dynamic supervisor: one child ``channel-<id>`` per listening channel
    │   └── channel-<id>     task, TRANSIENT: a crash restarts this channel only
    └── manager              reads ``source.listeners()`` and starts / stops / restarts children

The manager reconciles at once when told (``changed``, the channel service's ``on_change``:
non-blocking, it only sets an event) and every ``resync_seconds`` anyway, for changes made
through another instance. A channel whose ``rev`` or port moved is restarted with its new
settings; a disabled or deleted one is stopped (its socket closes). A channel whose port
cannot be bound is retried at the next round.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import trio

import actors
from flow8.logs import get_logger
from flow8.services.audit import AuditEntry
from flow8.services.channels import Channel
from flow8.services.events import EventService
from flow8.services.plays import PlayService

from ._context import ChannelContext, Limits
from ._launch import Launcher
from ._listener import Listener
from ._ratelimit import RateLimiter
from ._routing import Router
from ._source import ChannelSource
from ._stats import ChannelStats

log = get_logger("flow8.channels")
SUPERVISOR_ID = "channels"
LISTENERS_ID = "listeners"
# How long a stopped channel's requests in progress may take to be answered: a change
# takes effect within a second, drain included.
DRAIN_SECONDS = 0.5


def child_id(channel_id: str) -> str:
    return f"channel-{channel_id}"


@attrs.define
class _Slot:
    """A listening channel as the manager started it; outlives the actor's restarts."""

    channel: Channel
    stats: ChannelStats
    listener: Listener | None = None


@attrs.define
class ChannelManager:
    source: ChannelSource
    plays: PlayService
    events: EventService
    record: Callable[[AuditEntry], None]
    host: str = "0.0.0.0"
    # The workers of one `flow8 serve --workers N` each listen on every channel port of
    # their block (SO_REUSEPORT); a lone instance binds its ports for itself.
    shared_ports: bool = False
    limits: Limits = attrs.field(factory=Limits)
    resync_seconds: float = 2.0
    _slots: dict[str, _Slot] = attrs.field(factory=dict)
    _dirty: trio.Event = attrs.field(factory=trio.Event)
    _attached: trio.Event = attrs.field(factory=trio.Event)
    _supervisor: actors.DynamicSupervisorRef | None = None
    rounds: int = 0

    # -- wiring ---------------------------------------------------------------------------

    def child(self) -> actors.ChildSpec:
        """The ``channels`` subtree's spec (attach the runtime once it is open)."""
        return actors.supervisor(
            SUPERVISOR_ID,
            [
                actors.dynamic_supervisor(LISTENERS_ID, intensity=20, period=10.0),
                actors.task("manager", self._run, shutdown=1.0),
            ],
            strategy=actors.Strategy.ONE_FOR_ALL,
            intensity=3,
            period=30.0,
        )

    def attach(self, runtime: actors.Runtime, path: str | None = None) -> None:
        """Give the manager its dynamic supervisor (the tree's ``channels/listeners``, or
        ``path``); it starts channels once attached."""
        self._supervisor = runtime.dynamic_supervisor(path or f"{SUPERVISOR_ID}/{LISTENERS_ID}")
        self._attached.set()

    def changed(self, company_id: str, channel_id: str) -> None:
        """A channel was created, changed or deleted: reconcile now. Non-blocking (safe to
        call from the service's write path); the arguments are for the log only."""
        log.debug("channel.changed", company_id=company_id, channel_id=channel_id)
        self._dirty.set()

    # -- introspection ----------------------------------------------------------------------

    def listening(self) -> dict[str, Channel]:
        """The channels with an actor now, by id."""
        return {cid: slot.channel for cid, slot in self._slots.items()}

    def stats(self, channel_id: str) -> ChannelStats | None:
        slot = self._slots.get(channel_id)
        return slot.stats if slot is not None else None

    def listener(self, channel_id: str) -> Listener | None:
        """The live listener of a channel's current incarnation (None between restarts)."""
        slot = self._slots.get(channel_id)
        return slot.listener if slot is not None else None

    # -- the manager task -------------------------------------------------------------------

    async def _run(self, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        self._slots = {}  # a restarted subtree starts with no channel children
        task_status.started()
        await self._attached.wait()
        while True:
            self._dirty = trio.Event()  # a change during this round makes another round
            await self.reconcile()
            with trio.move_on_after(self.resync_seconds):
                await self._dirty.wait()

    async def reconcile(self) -> None:
        supervisor = self._supervisor
        assert supervisor is not None
        self.rounds += 1
        try:
            channels = await self.source.listeners()
        except Exception as e:  # the store is down: keep what runs, try again later
            log.warning("channels.read_failed", error=repr(e)[:200])
            return
        wanted = {c.id: c for c in channels if c.enabled and c.kind.listens and c.port is not None}
        for cid, slot in list(self._slots.items()):
            new = wanted.get(cid)
            if new is not None and (new.rev, new.port) == (slot.channel.rev, slot.channel.port):
                continue
            del self._slots[cid]
            with contextlib.suppress(actors.ChildNotFound):
                await supervisor.terminate_child(child_id(cid))
            log.info("channel.stopped", channel_id=cid, reason="changed" if new else "gone")
        for cid, channel in wanted.items():
            if cid in self._slots:
                continue
            slot = _Slot(channel, ChannelStats(channel))
            spec = actors.task(
                child_id(cid),
                partial(self._serve, slot),
                restart=actors.Restart.TRANSIENT,
                shutdown=DRAIN_SECONDS,
                info=slot.stats.info,
            )
            try:
                await supervisor.start_child(spec)
            except (actors.ChildStartFailed, actors.DuplicateChild) as e:
                log.warning(
                    "channel.start_failed",
                    channel_id=cid,
                    port=channel.port,
                    error=repr(e.__cause__ or e)[:200],
                )
                continue
            self._slots[cid] = slot

    def context(self, slot: _Slot) -> ChannelContext:
        channel = slot.channel
        return ChannelContext(
            channel=channel,
            launcher=Launcher(channel, self.plays, slot.stats),
            events=self.events,
            router=Router.of(channel.routes),
            limiter=RateLimiter(channel.rate_per_second),
            stats=slot.stats,
            record=self.record,
            limits=self.limits,
        )

    async def _serve(self, slot: _Slot, task_status: trio.TaskStatus[Any]) -> None:
        listener = Listener(self.context(slot), self.host, shared=self.shared_ports)
        slot.listener = listener
        try:
            await listener.serve(task_status=task_status)
        finally:
            if slot.listener is listener:
                slot.listener = None


def channels_child(
    source: ChannelSource,
    plays: PlayService,
    events: EventService,
    audit: Callable[[AuditEntry], None],
    *,
    host: str = "0.0.0.0",
    max_body_bytes: int = 1_048_576,
    allowed_origins: tuple[str, ...] = (),
    resync_seconds: float = 2.0,
    shared_ports: bool = False,
) -> tuple[actors.ChildSpec, ChannelManager]:
    """The ``channels`` child of the tree and its manager: pass ``manager.changed`` as the
    channel service's ``on_change`` and call ``manager.attach(runtime)`` once the runtime
    is open."""
    manager = ChannelManager(
        source,
        plays,
        events,
        audit,
        host=host,
        shared_ports=shared_ports,
        limits=Limits(max_body_bytes=max_body_bytes, allowed_origins=tuple(allowed_origins)),
        resync_seconds=resync_seconds,
    )
    return manager.child(), manager
