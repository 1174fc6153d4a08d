"""The dispatcher: claims runnable plays, renews this instance's leases, promotes DEFERRED
plays and stops plays whose lease another instance took."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from flow8.domain import PlayState
from flow8.logs import get_logger
from flow8.store import ReturnDocument

if TYPE_CHECKING:
    from ._engine import Engine

log = get_logger("flow8.engine")


@attrs.define
class Dispatcher:
    """One per engine; ``serve`` is the ``dispatcher`` actor's body."""

    engine: Engine

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The dispatcher: claims runnable plays, renews leases, promotes deferred plays."""
        async with trio.open_nursery() as nursery:
            if self.engine._spawn is None:
                fallback = nursery

                async def spawn(
                    play_id: str, run: Callable[[trio.TaskStatus[Any]], Awaitable[None]]
                ) -> None:
                    fallback.start_soon(self._guarded, play_id, run)

                self.engine._spawn = spawn
            nursery.start_soon(self._renew_leases)
            task_status.started()
            try:
                await self._dispatch()
            finally:
                nursery.cancel_scope.cancel()

    async def _guarded(
        self, play_id: str, run: Callable[[trio.TaskStatus[Any]], Awaitable[None]]
    ) -> None:
        try:
            await run(trio.TASK_STATUS_IGNORED)
        except Exception:
            # As a supervised temporary child would (the engine has counted the crash).
            log.exception("play_actor_crashed", play_id=play_id)

    async def _dispatch(self) -> None:
        plays = self.engine.store.cross_tenant.collection("plays")
        while True:
            claimed = 0
            while len(self.engine._running) < self.engine.settings.max_running_plays:
                doc = await self._claim(plays)
                if doc is None:
                    break
                claimed += 1
                if await self._defer_if_full(doc):
                    continue
                await self.engine._launch(doc["company_id"], doc["_id"])
            if claimed == 0:
                await self._promote_all(plays)
                self.engine._wake = trio.Event()
                with trio.move_on_after(self.engine.settings.poll_interval):
                    await self.engine._wake.wait()

    async def _claim(self, plays: Any) -> dict[str, Any] | None:
        now = time.time()
        runnable: dict[str, Any] = {
            "$or": [
                {"status": PlayState.NEW.value},
                {"status": PlayState.RUN.value, "lease_expires_at": {"$lt": now}},
                {"status": PlayState.WAIT.value, "wake_at": {"$lte": now}},
            ]
        }
        full = self.engine.admission.full_companies()
        if full:  # their plays wait until one of their running plays ends here
            runnable = {"$and": [runnable, {"company_id": {"$nin": full}}]}
        doc: dict[str, Any] | None = await plays.find_one_and_update(
            runnable,
            {
                "$set": {
                    "status": PlayState.RUN.value,
                    "lease_owner": self.engine.owner,
                    "lease_expires_at": now + self.engine.settings.lease_seconds,
                    "wait_reason": None,
                    "wait_ref": None,
                }
            },
            sort=[("created_at", 1)],
            return_document=ReturnDocument.BEFORE,
        )
        return doc

    async def _defer_if_full(self, doc: dict[str, Any]) -> bool:
        limit = doc.get("max_concurrent") or 0
        if not limit or doc.get("status") != PlayState.NEW.value:
            return False
        plays = self.engine._plays(doc["company_id"])
        running = await plays.count({"flow_id": doc["flow_id"], "status": PlayState.RUN.value})
        if running <= limit:  # the count includes the play just claimed
            return False
        await plays.update_one(
            {"_id": doc["_id"], "lease_owner": self.engine.owner},
            {
                "$set": {
                    "status": PlayState.DEFERRED.value,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
            },
        )
        return True

    async def _promote_all(self, plays: Any) -> None:
        deferred = await plays.find(
            {"status": PlayState.DEFERRED.value}, sort=[("created_at", 1)], limit=100
        )
        seen: set[tuple[str, str]] = set()
        for d in deferred:
            key = (d["company_id"], d["flow_id"])
            if key not in seen:
                seen.add(key)
                await self.engine._promote_deferred(*key)

    async def _renew_leases(self) -> None:
        plays = self.engine.store.cross_tenant.collection("plays")
        interval = self.engine.settings.lease_seconds / 3
        while True:
            await trio.sleep(interval)
            if not self.engine._running:
                continue
            # Only plays with an actor here: one whose actor is gone (crashed, or its end
            # could not be written) must lapse to a dispatcher, not be held while others run.
            ids = list(self.engine._running)
            expires = time.time() + self.engine.settings.lease_seconds
            renewed = {"$set": {"lease_expires_at": expires}}
            for start in range(0, len(ids), 500):
                await plays.update_many(
                    {
                        "_id": {"$in": ids[start : start + 500]},
                        "lease_owner": self.engine.owner,
                        "status": PlayState.RUN.value,
                    },
                    renewed,
                )
            # Cancel requests made through another instance reach us here.
            for d in await plays.find(
                {"lease_owner": self.engine.owner, "cancel_requested": True},
                projection={"_id": 1},
            ):
                scope = self.engine._running.get(d["_id"])
                if scope is not None:
                    scope.cancel()
            await self._drop_lost_leases(plays)

    async def _drop_lost_leases(self, plays: Any) -> None:
        """Stop running plays another instance has claimed (our lease lapsed, e.g. after a
        long stall): they must not run twice. They end silently; the new owner reports."""
        ids = list(self.engine._running)
        for start in range(0, len(ids), 500):
            for d in await plays.find(
                {
                    "_id": {"$in": ids[start : start + 500]},
                    "status": PlayState.RUN.value,
                    "lease_owner": {"$ne": self.engine.owner},
                },
                projection={"_id": 1},
            ):
                scope = self.engine._running.get(d["_id"])
                if scope is not None:
                    self.engine._lost.add(d["_id"])
                    scope.cancel()
