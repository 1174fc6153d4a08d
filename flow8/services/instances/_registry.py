"""The instance registry: who is serving, and which instance index each holds.

Every ``flow8 serve`` process is an *instance*: it writes a document to ``instances`` (id,
host, pid, version, when it started, its last heartbeat) and refreshes it every
``heartbeat_seconds``. Instances are grouped: the workers of one ``flow8 serve --workers N``
form one group (one host, one set of listening sockets), a plain ``flow8 serve`` is a group of
one. A group holds one *instance index*, the lowest free one, claimed atomically in
``instance_indexes`` (``_id`` = the index as text, the group, an expiry). The index picks the
group's channel port block (:func:`channel_block`).

* Claim: for index 1, 2, ...: take the index where it is the group's already or its claim
  expired (find-and-modify), else insert it (the unique ``_id`` lets one inserter win). Two
  groups starting at once get different indexes; the workers of one group the same.
* Heartbeat: each instance renews its document and its group's claim. A claim that was lost
  (the process stalled past the expiry and another group took the index) is claimed again,
  possibly a different index; ``on_change`` tells the channel manager to follow.
* Lapse: an instance that stops heartbeating (killed, frozen, cut off) loses its document and,
  once the last of its group is gone, its index, after ``ttl_seconds``; the next group to
  start takes the index and serves its channels. Its plays' leases lapse on their own (the
  engine's dispatcher resumes them) and so do schedule ticks and OAuth refreshes, which are
  claimed per tick and per refresh, never per instance.
* Clean stop: the instance deletes its document; the last one of its group releases the index
  at once (each counts its group's remaining members after deleting its own, so whichever
  deletes last sees none left).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import attrs
import trio

from flow8.logs import get_logger
from flow8.store import Collection, DuplicateKey, ReturnDocument, Store, StoreError, new_id

log = get_logger("flow8.instances")
INSTANCES = "instances"
INDEXES = "instance_indexes"
MAX_INDEX = 500  # CHANNEL_PORT_RANGE's blocks run out long before


def _version() -> str:
    try:
        return metadata.version("flow8")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


@attrs.frozen
class InstanceInfo:
    """One instance as ``GET /api/instances`` and the admin tree show it."""

    id: str
    group: str
    index: int
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    worker: int | None  # 1..N under ``--workers N``; None for a plain ``flow8 serve``

    def heartbeat_age(self, now: datetime) -> float:
        return max(0.0, (now - self.heartbeat_at).total_seconds())


@attrs.define
class InstanceRegistry:
    """This process's membership in the registry (see the module docstring)."""

    store: Store
    instance_id: str = attrs.field(factory=new_id)
    group: str = ""  # empty: a group of one, named after the instance
    worker: int | None = None
    heartbeat_seconds: float = 5.0
    ttl_seconds: float = 20.0
    # Called (non-blocking) when this instance's index changed after it was first claimed.
    on_change: Callable[[], None] = lambda: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    index: int | None = attrs.field(default=None, init=False)
    started_at: datetime | None = attrs.field(default=None, init=False)
    heartbeat_at: datetime | None = attrs.field(default=None, init=False)
    heartbeats: int = attrs.field(default=0, init=False)
    failed_heartbeats: int = attrs.field(default=0, init=False)
    # The live instances as the last heartbeat read them (the admin tree's node shows them).
    peers: list[InstanceInfo] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        if not self.group:
            self.group = self.instance_id

    @property
    def _instances(self) -> Collection:
        return self.store.system.collection(INSTANCES)

    @property
    def _indexes(self) -> Collection:
        return self.store.system.collection(INDEXES)

    # -- life cycle ---------------------------------------------------------------------------

    async def register(self) -> int:
        """Claim the group's index and write this instance's document; returns the index."""
        now = self.clock()
        self.started_at = now
        self.index = await self._claim(now)
        await self._write_instance(now)
        self.peers = await self.live()
        log.info(
            "instance_registered",
            instance=self.instance_id,
            group=self.group,
            index=self.index,
            worker=self.worker,
        )
        return self.index

    async def heartbeat(self) -> None:
        """Renew this instance's document and its group's claim (claiming again if lost)."""
        now = self.clock()
        assert self.index is not None, "register() first"
        renewed = await self._indexes.update_one(
            {"_id": str(self.index), "group": self.group},
            {"$set": {"expires_at": now + self._ttl}},
        )
        if renewed.matched_count == 0:
            lost = self.index
            self.index = await self._claim(now)
            log.warning(
                "instance_index_lost", instance=self.instance_id, lost=lost, index=self.index
            )
            if self.index != lost:
                self.on_change()
        await self._write_instance(now)
        self.heartbeats += 1
        self.peers = await self.live()

    async def release(self) -> None:
        """A clean stop: remove this instance; the last of its group releases the index."""
        await self._instances.delete_one({"_id": self.instance_id})
        if self.index is None:
            return
        if await self._instances.count({"group": self.group}) == 0:
            await self._indexes.delete_one({"_id": str(self.index), "group": self.group})
        log.info("instance_released", instance=self.instance_id, index=self.index)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ``instance`` actor: registers, heartbeats until stopped, then releases."""
        if self.index is None:
            await self.register()
        task_status.started()
        try:
            while True:
                await trio.sleep(self.heartbeat_seconds)
                try:
                    await self.heartbeat()
                except StoreError as e:
                    # The database is away: keep trying; the claim lapses only if it stays
                    # away past the expiry, and then the next heartbeat claims again.
                    self.failed_heartbeats += 1
                    log.warning("instance_heartbeat_failed", error=str(e))
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                try:
                    await self.release()
                except StoreError as e:
                    log.warning("instance_release_failed", error=str(e))
                self.index = None

    # -- reading ------------------------------------------------------------------------------

    async def live(self) -> list[InstanceInfo]:
        """Every instance whose heartbeat has not lapsed, by index then start."""
        now = self.clock()
        docs = await self._instances.find(
            {"expires_at": {"$gt": now}}, sort=[("index", 1), ("started_at", 1)], limit=1000
        )
        return [_info(d) for d in docs]

    def heartbeat_ages(self) -> list[tuple[str, int, float]]:
        """(id, index, seconds since its heartbeat) of each live instance, as of this
        instance's last heartbeat (for the metrics; no store read)."""
        now = self.clock()
        return [(p.id, p.index, round(p.heartbeat_age(now), 3)) for p in self.peers]

    def statistics(self) -> dict[str, Any]:
        """This instance's node in the admin tree."""
        return {
            "instance": self.instance_id,
            "group": self.group,
            "index": self.index,
            "worker": self.worker,
            "heartbeatAt": self.heartbeat_at.isoformat() if self.heartbeat_at else None,
            "heartbeats": self.heartbeats,
            "failedHeartbeats": self.failed_heartbeats,
            "instances": [
                {"id": p.id, "index": p.index, "host": p.host, "pid": p.pid, "worker": p.worker}
                for p in self.peers
            ],
        }

    # -- internals ----------------------------------------------------------------------------

    @property
    def _ttl(self) -> timedelta:
        return timedelta(seconds=self.ttl_seconds)

    async def _claim(self, now: datetime) -> int:
        expires = now + self._ttl
        for index in range(1, MAX_INDEX + 1):
            key = str(index)
            taken = await self._indexes.find_one_and_update(
                {"_id": key, "$or": [{"group": self.group}, {"expires_at": {"$lte": now}}]},
                {"$set": {"group": self.group, "expires_at": expires}},
                return_document=ReturnDocument.AFTER,
            )
            if taken is not None:
                return index
            try:
                await self._indexes.insert_one(
                    {"_id": key, "group": self.group, "expires_at": expires}
                )
            except DuplicateKey:
                continue  # held by a live group, or another inserter won it just now
            return index
        raise StoreError(f"every instance index up to {MAX_INDEX} is held by a live instance")

    async def _write_instance(self, now: datetime) -> None:
        assert self.started_at is not None
        assert self.index is not None
        await self._instances.update_one(
            {"_id": self.instance_id},
            {
                "$set": {
                    "group": self.group,
                    "index": self.index,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "version": _version(),
                    "worker": self.worker,
                    "started_at": self.started_at,
                    "heartbeat_at": now,
                    "expires_at": now + self._ttl,
                }
            },
            upsert=True,
        )
        self.heartbeat_at = now


def _info(doc: dict[str, Any]) -> InstanceInfo:
    return InstanceInfo(
        id=doc["_id"],
        group=doc["group"],
        index=doc["index"],
        host=doc["host"],
        pid=doc["pid"],
        version=doc["version"],
        started_at=doc["started_at"],
        heartbeat_at=doc["heartbeat_at"],
        worker=doc.get("worker"),
    )
