"""Operator commands on plays: cancel, approve or reject, retry from a step."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flow8.domain import LayerState, Play, PlayState, Trigger, TriggerKind, WaitReason
from flow8.store import ReturnDocument

from . import _events as ev
from ._exceptions import PlayStateError
from ._records import play_from_doc

if TYPE_CHECKING:
    from ._engine import Engine


async def cancel_play(engine: Engine, company_id: str, play_id: str) -> Play:
    """Cancel a play that has not finished. A running play is cancelled through its
    cancel scope (here, or by the instance holding it, at its next lease renewal)."""
    plays = engine._plays(company_id)
    now = time.time()
    doc = await plays.find_one_and_update(
        {"_id": play_id, "status": {"$in": ["NEW", "DEFERRED", "WAIT"]}},
        {
            "$set": {
                "status": PlayState.CANCEL.value,
                "error": "cancelled",
                "finished_at": now,
                "lease_owner": None,
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    if doc is not None:
        play = play_from_doc(doc)
        # Its waiting step ends now (a step parked for a back-off held its wake time).
        await engine._layers(company_id).update_many(
            {"play_id": play_id, "state": LayerState.WAIT.value},
            {"$set": {"state": LayerState.FAIL.value, "error": "cancelled", "finished_at": now}},
        )
        engine.events.publish(
            ev.Event(
                ev.PLAY_FAILED,
                company_id,
                play.flow_id,
                play.id,
                {"state": "CANCEL", "output": None, "error": "cancelled"},
            )
        )
        return play
    doc = await plays.find_one_and_update(
        {"_id": play_id, "status": PlayState.RUN.value},
        {"$set": {"cancel_requested": True}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        play = await engine.get_play(company_id, play_id)
        raise PlayStateError(f"play {play_id!r} is {play.state} and cannot be cancelled")
    scope = engine._running.get(play_id)
    if scope is not None:
        scope.cancel()
        return play_from_doc(doc)
    # No actor of this instance runs it. If nobody else holds it either (its lease lapsed,
    # or it is ours and its actor crashed), end it here: a play whose actor keeps crashing
    # must still be cancellable. One held by another live instance is cancelled there at its
    # next lease renewal.
    lapsed = (doc.get("lease_expires_at") or 0.0) < time.time()
    if doc.get("lease_owner") == engine.owner or lapsed:
        ended = await end_unheld_play(
            engine, company_id, doc, PlayState.CANCEL, "cancelled", lapsed=lapsed
        )
        if ended is not None:
            return ended
    return play_from_doc(doc)


async def end_unheld_play(
    engine: Engine,
    company_id: str,
    doc: dict[str, Any],
    state: PlayState,
    error: str,
    *,
    lapsed: bool = False,
) -> Play | None:
    """End a RUN play that no actor is running (cancelled, or crashed too often): the
    update is conditional on the lease it was seen with, so a play another instance has just
    claimed is left to it (None is returned). Its unfinished layers fail with ``error``."""
    plays = engine._plays(company_id)
    now = time.time()
    held: dict[str, Any] = {"_id": doc["_id"], "status": PlayState.RUN.value}
    held["lease_owner"] = doc.get("lease_owner")
    if lapsed:
        held["lease_expires_at"] = doc.get("lease_expires_at")
    ended = await plays.find_one_and_update(
        held,
        {
            "$set": {
                "status": state.value,
                "error": error,
                "output": None,
                "finished_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    if ended is None:
        return None
    await engine._layers(company_id).update_many(
        {"play_id": doc["_id"], "state": {"$in": [LayerState.RUN.value, LayerState.WAIT.value]}},
        {"$set": {"state": LayerState.FAIL.value, "error": error, "finished_at": now}},
    )
    play = play_from_doc(ended)
    engine.remember_finished(play)
    data = {"state": state.value, "output": None, "error": error}
    engine.events.publish(ev.Event(ev.PLAY_FAILED, company_id, play.flow_id, play.id, data))
    return play


async def decide(
    engine: Engine, company_id: str, play_id: str, *, approve: bool, by: str | None = None
) -> Play:
    """Approve or reject the step a play waits on. Approval resumes the play (here when
    this instance runs plays, else at any dispatcher); rejection fails it."""
    plays = engine._plays(company_id)
    play = await engine.get_play(company_id, play_id)
    if play.state is not PlayState.WAIT or play.wait_reason is not WaitReason.APPROVAL:
        raise PlayStateError(f"play {play_id!r} is not waiting for an approval")
    waiting = await engine._layers(company_id).find(
        {"play_id": play_id, "state": LayerState.WAIT.value}
    )
    keys = [d["_id"] for d in waiting]
    now = time.time()
    if approve:
        fields: dict[str, Any] = {f"approvals.{_field(k)}": "approved" for k in keys}
        fields.update({"status": PlayState.RUN.value, "wait_reason": None, "wait_ref": None})
        local = engine._spawn is not None
        fields["lease_owner"] = engine.owner if local else None
        fields["lease_expires_at"] = now + engine.settings.lease_seconds if local else 0.0
        doc = await plays.find_one_and_update(
            {"_id": play_id, "status": PlayState.WAIT.value},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise PlayStateError(f"play {play_id!r} is no longer waiting")
        if local:
            await engine._launch(company_id, play_id)
        else:
            engine._wake.set()
        return play_from_doc(doc)
    error = f"rejected by {by}" if by else "rejected"
    doc = await plays.find_one_and_update(
        {"_id": play_id, "status": PlayState.WAIT.value},
        {
            "$set": {
                "status": PlayState.FAIL.value,
                "error": error,
                "finished_at": now,
                "wait_reason": None,
                "wait_ref": None,
            }
        },
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        raise PlayStateError(f"play {play_id!r} is no longer waiting")
    for k in keys:
        await engine._layers(company_id).update_one(
            {"_id": k},
            {"$set": {"state": LayerState.FAIL.value, "error": error, "finished_at": now}},
        )
    failed = play_from_doc(doc)
    engine.events.publish(
        ev.Event(
            ev.PLAY_FAILED,
            company_id,
            failed.flow_id,
            failed.id,
            {"state": "FAIL", "output": None, "error": error},
        )
    )
    return failed


async def retry_play(engine: Engine, company_id: str, play_id: str, from_ref: str) -> Play:
    """Start a new play of the latest flow version with the failed play's input,
    reusing the outputs of the steps before ``from_ref``."""
    # The real input (a play that knew secrets shows it masked), and those secrets.
    old, secrets = await engine.read_play(company_id, play_id, real=True)
    if old.state not in (PlayState.FAIL, PlayState.CANCEL):
        raise PlayStateError(f"only failed or cancelled plays can be retried ({old.state})")
    flow = await engine.flows.get(company_id, old.flow_id)
    if from_ref not in engine.plans.get(flow).order():
        raise PlayStateError(f"the latest version of the flow has no step {from_ref!r}")
    return await engine.start_play(
        company_id,
        old.flow_id,
        old.input,
        trigger=Trigger(TriggerKind.RETRY, play_id),
        retry_of=play_id,
        resume_from=from_ref,
        secrets=secrets,
    )


def _field(key: str) -> str:
    # Layer keys become field names under `approvals`: no dots allowed there.
    return key.replace(".", "_")
