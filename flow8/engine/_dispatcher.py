"""The dispatcher: claims runnable plays, renews this instance's leases, promotes DEFERRED
plays and stops plays whose lease another instance took.

It rides out a store outage (a MongoDB election, a database that went away): a round that
cannot reach the store is retried after a growing pause (``OutagePause``), rather than
crashing the actor into the same outage until its supervisor gives up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from flow8.domain import PlayState
from flow8.logs import get_logger
from flow8.store import UNREACHABLE, Document, OutagePause

from ._ledger import PlayLedger
from ._local import LocalPlays
from ._play_actor import PlayActors
from ._settings import EngineSettings

log = get_logger("flow8.engine")


@attrs.frozen
class Dispatcher:
    """One per engine; ``serve`` is the ``dispatcher`` actor's body."""

    # Other services are left out of the repr (repr=False): a traceback rendered with its
    # locals (the console log) walks an attrs object's fields, and through them the store.
    ledger: PlayLedger = attrs.field(repr=False)
    local: LocalPlays = attrs.field(repr=False)
    actors: PlayActors = attrs.field(repr=False)
    settings: EngineSettings

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The dispatcher: claims runnable plays, renews leases, promotes deferred plays."""
        async with trio.open_nursery() as nursery:
            fallback = nursery

            async def spawn(
                play_id: str, run: Callable[[trio.TaskStatus[Any]], Awaitable[None]]
            ) -> None:
                fallback.start_soon(self._guarded, play_id, run)

            # Plays run here unless a plays supervisor was attached.
            self.local.attach(spawn, replace=False)
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

    def _outage(self, loop: str) -> OutagePause:
        return OutagePause(loop, self.settings.poll_interval, self.settings.lease_seconds / 3)

    async def _dispatch(self) -> None:
        outage = self._outage("dispatcher")
        while True:
            try:
                claimed = await self._claim_and_launch()
                if claimed == 0:
                    await self._promote_all()
            except UNREACHABLE as e:
                await outage.wait(e)
                continue
            outage.over()
            if claimed == 0:
                await self.local.nap(self.settings.poll_interval)

    async def _claim_and_launch(self) -> int:
        """Claim and start plays while this instance has room; how many were claimed."""
        claimed = 0
        while len(self.local) < self.settings.max_running_plays:
            # The plays of a company at its cap on running plays wait until one of its
            # running plays ends here.
            doc = await self.ledger.claim(skip_companies=self.local.admission.full_companies())
            if doc is None:
                break
            claimed += 1
            if await self._defer_if_full(doc):
                continue
            await self.actors.launch(doc["company_id"], doc["_id"])
        return claimed

    async def _defer_if_full(self, doc: Document) -> bool:
        limit = doc.get("max_concurrent") or 0
        if not limit or doc.get("status") != PlayState.NEW.value:
            return False
        running = await self.ledger.count_running(doc["company_id"], doc["flow_id"])
        if running <= limit:  # the count includes the play just claimed
            return False
        await self.ledger.defer(doc["company_id"], doc["_id"])
        return True

    async def _promote_all(self) -> None:
        for company_id, flow_id in await self.ledger.deferred_flows(limit=100):
            if await self.ledger.promote(company_id, flow_id):
                self.local.wake()

    async def _renew_leases(self) -> None:
        interval = self.settings.lease_seconds / 3
        outage = self._outage("dispatcher.renew")
        while True:
            await trio.sleep(interval)
            while self.local:
                try:
                    await self._renew_round()
                except UNREACHABLE as e:
                    # Retried sooner than the interval: a lease lapses at lease_seconds.
                    await outage.wait(e)
                    continue
                outage.over()
                break

    async def _renew_round(self) -> None:
        # Only plays with an actor here: one whose actor is gone (crashed, or its end
        # could not be written) must lapse to a dispatcher, not be held while others run.
        await self.ledger.renew(self.local.ids())
        # Cancel requests made through another instance reach us here.
        for play_id in await self.ledger.cancels_asked():
            self.local.cancel(play_id)
        await self._drop_lost_leases()

    async def _drop_lost_leases(self) -> None:
        """Stop running plays another instance has claimed (our lease lapsed, e.g. after a
        long stall): they must not run twice. They end silently; the new owner reports."""
        for play_id in await self.ledger.taken(self.local.ids()):
            self.local.lose(play_id)
