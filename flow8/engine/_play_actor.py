"""The PlayActor's body: load a claimed play, run it, then park it or record its end."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import trio

from flow8.domain import Flow, LayerState, Play, PlayLayer, PlayState, WaitReason
from flow8.logs import get_logger

from . import _events as ev
from ._commands import end_unheld_play
from ._journal import Created
from ._kv import PlayKv
from ._records import layer_from_doc, play_from_doc
from ._redact import Redactor
from ._runner import PlayRun

if TYPE_CHECKING:
    from ._engine import Engine

log = get_logger("flow8.engine")


async def run_play_body(
    engine: Engine,
    company_id: str,
    play_id: str,
    fresh: Play | None,
    cancel: trio.CancelScope,
    created: Created | None,
    secrets: Sequence[str] = (),
) -> None:
    """``secrets``: what a play just created here knows from birth (a subflow's parent's);
    a play read back from the store brings its own."""
    doc: dict[str, Any] = {}
    if fresh is None:
        found_doc = await engine._plays(company_id).find_one({"_id": play_id})
        if found_doc is None or found_doc.get("lease_owner") != engine.owner:
            return
        doc = found_doc
        if doc.get("cancel_requested"):
            # Before anything that could fail: a play cancelled while it was not running
            # (e.g. between crashes) ends without being run again.
            await end_unheld_play(engine, company_id, doc, PlayState.CANCEL, "cancelled")
            return
    play = fresh or play_from_doc(doc, real=True)
    redactor = Redactor(doc.get("secrets") or secrets)
    flow = await engine.flows.get(company_id, play.flow_id, play.flow_version)
    plan = engine.plans.get(flow)
    layers: dict[str, PlayLayer] = {}
    if fresh is None:
        for layer in await _read_layers(engine, company_id, play_id):
            layers[layer.key] = layer
    run = PlayRun(
        engine,
        plan,
        play,
        layers,
        _play_kv(engine, flow, play, redactor),
        doc.get("approvals") or {},
        created,
        redactor,
    )
    if play.retry_of and not layers and play.resume_from:
        await _reuse_layers(engine, run, play.retry_of, play.resume_from)
    now = time.time()
    if play.started_at is None:
        play = attrs.evolve(play, started_at=now)
        run.play = play
        run.journal.play({"started_at": now}, lease_owner=engine.owner)
        run._publish(ev.PLAY_STARTED, {"flowVersion": play.flow_version})
    elif fresh is not None:
        run._publish(ev.PLAY_STARTED, {"flowVersion": play.flow_version})
    timeout = flow.definition.execution.timeout_seconds
    deadline = (play.started_at or now) + timeout if timeout else math.inf
    if doc.get("cancel_requested"):
        cancel.cancel()
    state, output, error, suspended = PlayState.FAIL, None, None, None
    with cancel:
        with trio.move_on_after(max(0.0, deadline - time.time())) as timer:
            state, output, error, suspended = await run.execute()
        if timer.cancelled_caught:
            state, error = PlayState.FAIL, f"play timed out after {timeout:g} s"
            _abort_layers(run, f"play timed out after {timeout:g} s")
    if play_id in engine._lost:
        engine._lost.discard(play_id)
        log.warning("play_lease_lost", play_id=play_id, owner=engine.owner)
        return
    if cancel.cancelled_caught:
        state, output, error, suspended = PlayState.CANCEL, None, "cancelled", None
        _abort_layers(run, "cancelled")
    # Still listed as running while its end is written: waiters need not read the store.
    with trio.CancelScope(shield=True), trio.move_on_after(30):
        if suspended is not None:
            engine._release(play_id)  # a parked play holds nothing here
            await _park(engine, run, suspended.layer, suspended.reason, suspended.wake_at)
        else:
            await _finish(engine, run, state, output, error)


def _abort_layers(run: PlayRun, why: str) -> None:
    for layer in list(run.layers.values()):
        if layer.state in (LayerState.RUN, LayerState.WAIT):
            run._record(
                attrs.evolve(layer, state=LayerState.FAIL, error=why, finished_at=time.time())
            )


def _play_kv(engine: Engine, flow: Flow, play: Play, redactor: Redactor) -> PlayKv:
    d = flow.definition
    return PlayKv(
        engine.kv,
        play.company_id,
        play.flow_id,
        d.group,
        play.kv_parents,
        d.kv_inherit,
        d.kv_conflict,
        on_secret=redactor.learn,
    )


async def _reuse_layers(engine: Engine, run: PlayRun, old_play_id: str, from_ref: str) -> None:
    order = run.plan.order()
    reuse = set(order[: order.index(from_ref)]) if from_ref in order else set()
    old = await engine._plays(run.play.company_id).find_one({"_id": old_play_id})
    run.redactor.learn((old or {}).get("secrets") or [])  # what it reused, it masks too
    for layer in await _read_layers(engine, run.play.company_id, old_play_id):
        if layer.ref in reuse and layer.state in (LayerState.DONE, LayerState.FILTERED):
            run._record(attrs.evolve(layer, play_id=run.play.id))


async def _read_layers(engine: Engine, company_id: str, play_id: str) -> list[PlayLayer]:
    """Every layer of a play, read back in chunks that let other tasks run in between (a
    play of 100,000 iterations has as many layers to decode)."""
    docs = await engine._layers(company_id).find({"play_id": play_id})
    layers: list[PlayLayer] = []
    for start in range(0, len(docs), 1000):
        layers.extend(layer_from_doc(d, real=True) for d in docs[start : start + 1000])
        await trio.lowlevel.checkpoint()
    return layers


async def _park(
    engine: Engine, run: PlayRun, layer: PlayLayer, reason: WaitReason, wake_at: float | None
) -> None:
    run.journal.play(
        {
            "status": PlayState.WAIT.value,
            "wait_reason": reason.value,
            "wait_ref": layer.ref,
            "wake_at": wake_at,
            "lease_owner": None,
            "lease_expires_at": None,
        },
        lease_owner=engine.owner,
    )
    await run.journal.barrier()
    run._publish(
        ev.PLAY_WAITING,
        {
            "ref": layer.ref,
            "iteration": list(layer.iteration),
            "reason": reason.value,
            "wakeAt": wake_at,
        },
    )


async def _finish(
    engine: Engine, run: PlayRun, state: PlayState, output: Any, error: str | None
) -> None:
    if state is not PlayState.DONE:
        # e.g. a sibling parked for approval while another step failed the play
        _abort_layers(run, f"not finished: the play ended ({state.value})")
    run.skip_unreached()
    now = time.time()
    # What everyone sees of the play's end (waiters, events, the API): its secrets masked.
    output = run.redactor.mask(output)
    error = run.redactor.text(error) if error else error
    fields: dict[str, Any] = {
        "status": state.value,
        "output": output,
        "error": error,
        "finished_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if engine.settings.encrypt_play_data:
        fields["output"] = None
        fields["data"] = {"input": run.redactor.mask(run.play.input), "output": output}
    if run.play.wait_reason is not None or run.play.wake_at is not None:
        fields.update({"wait_reason": None, "wait_ref": None, "wake_at": None})
    run.journal.play(fields, lease_owner=engine.owner)
    await run.journal.barrier()
    play = run.play
    engine.remember_finished(
        attrs.evolve(play, state=state, output=output, error=error, finished_at=now)
    )
    data = {"state": state.value, "output": output, "error": error}
    run._publish(ev.PLAY_COMPLETED if state is PlayState.DONE else ev.PLAY_FAILED, data)
    if run.plan.flow.definition.execution.max_concurrent:
        await engine._promote_deferred(play.company_id, play.flow_id)
