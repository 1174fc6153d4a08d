"""Operator commands on plays: cancel, approve or reject."""

from __future__ import annotations

import time

import attrs

from flow8 import events as ev
from flow8.domain import LayerState, Play, PlayState, WaitReason
from flow8.events import EventBus
from flow8.store import Collection, Store

from ._ledger import PlayLedger
from ._local import LocalPlays
from ._play_actor import PlayActors
from ._records import play_from_doc
from .exceptions import PlayNotFound, PlayStateError


@attrs.frozen
class PlayCommands:
    """Cancel, approve or reject a play: changes asked for from outside (the API, the CLI,
    a parent play), wherever the play runs."""

    # Other services are left out of the repr (repr=False): a traceback rendered with its
    # locals (the console log) walks an attrs object's fields, and through them the store.
    ledger: PlayLedger = attrs.field(repr=False)
    local: LocalPlays = attrs.field(repr=False)
    actors: PlayActors = attrs.field(repr=False)
    events: EventBus = attrs.field(repr=False)
    store: Store = attrs.field(repr=False)

    async def cancel(self, company_id: str, play_id: str) -> Play:
        """Cancel a play that has not finished. A running play is cancelled through its
        cancel scope (here, or by the instance holding it, at its next lease renewal)."""
        now = time.time()
        doc = await self.ledger.cancel(company_id, play_id, now)
        if doc is not None:
            play = play_from_doc(doc)
            # Its waiting step ends now (a step parked for a back-off held its wake time).
            await self._layers(company_id).update_many(
                {"play_id": play_id, "state": LayerState.WAIT.value},
                {
                    "$set": {
                        "state": LayerState.FAIL.value,
                        "error": "cancelled",
                        "finished_at": now,
                    }
                },
            )
            self.events.publish(
                ev.Event(
                    ev.PLAY_FAILED,
                    company_id,
                    play.flow_id,
                    play.id,
                    {
                        "state": "CANCEL",
                        "output": None,
                        "error": "cancelled",
                        "trigger": play.trigger.kind.value,
                    },
                )
            )
            return play
        doc = await self.ledger.request_cancel(company_id, play_id)
        if doc is None:
            play = await self._play(company_id, play_id)
            raise PlayStateError(f"play {play_id!r} is {play.state} and cannot be cancelled")
        if self.local.cancel(play_id):
            return play_from_doc(doc)
        # No actor of this instance runs it. If nobody else holds it either (its lease
        # lapsed, or it is ours and its actor crashed), end it here: a play whose actor keeps
        # crashing must still be cancellable. One held by another live instance is cancelled
        # there at its next lease renewal.
        lapsed = (doc.get("lease_expires_at") or 0.0) < time.time()
        if self.ledger.holds(doc) or lapsed:
            ended = await self.actors.end_unheld(
                company_id, doc, PlayState.CANCEL, "cancelled", lapsed=lapsed
            )
            if ended is not None:
                return ended
        return play_from_doc(doc)

    async def decide(
        self, company_id: str, play_id: str, *, approve: bool, by: str | None = None
    ) -> Play:
        """Approve or reject the step a play waits on. Approval resumes the play (here when
        this instance runs plays, else at any dispatcher); rejection fails it."""
        play = await self._play(company_id, play_id)
        if play.state is not PlayState.WAIT or play.wait_reason is not WaitReason.APPROVAL:
            raise PlayStateError(f"play {play_id!r} is not waiting for an approval")
        layers = self._layers(company_id)
        waiting = await layers.find({"play_id": play_id, "state": LayerState.WAIT.value})
        keys = [d["_id"] for d in waiting]
        now = time.time()
        if approve:
            here = self.local.runs_plays
            approvals = {_field(k): "approved" for k in keys}
            doc = await self.ledger.wake(company_id, play_id, approvals, now, here=here)
            if doc is None:
                raise PlayStateError(f"play {play_id!r} is no longer waiting")
            if here:
                await self.actors.launch(company_id, play_id)
            else:
                self.local.wake()
            return play_from_doc(doc)
        error = f"rejected by {by}" if by else "rejected"
        doc = await self.ledger.reject(company_id, play_id, error, now)
        if doc is None:
            raise PlayStateError(f"play {play_id!r} is no longer waiting")
        for k in keys:
            await layers.update_one(
                {"_id": k},
                {"$set": {"state": LayerState.FAIL.value, "error": error, "finished_at": now}},
            )
        failed = play_from_doc(doc)
        self.events.publish(
            ev.Event(
                ev.PLAY_FAILED,
                company_id,
                failed.flow_id,
                failed.id,
                {
                    "state": "FAIL",
                    "output": None,
                    "error": error,
                    "trigger": failed.trigger.kind.value,
                },
            )
        )
        return failed

    async def _play(self, company_id: str, play_id: str) -> Play:
        doc = await self.ledger.read(company_id, play_id)
        if doc is None:
            raise PlayNotFound(f"play {play_id!r} not found")
        return play_from_doc(doc)

    def _layers(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection("play_layers")


def _field(key: str) -> str:
    # Layer keys become field names under `approvals`: no dots allowed there.
    return key.replace(".", "_")
