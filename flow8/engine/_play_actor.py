"""PlayActors: each loads a claimed play, runs it, then parks it or records its end."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from flow8 import events as ev
from flow8.domain import Flow, LayerState, Play, PlayLayer, PlayState, WaitReason
from flow8.logs import bind_log_context, get_logger, reset_log_context
from flow8.store import Collection

from ._host import PlayHost
from ._journal import Created
from ._kv import PlayKv
from ._ledger import PlayLedger
from ._local import LocalPlays
from ._records import describe_crash, layer_from_doc, play_from_doc
from ._redact import Redactor
from ._runner import PlayRun

log = get_logger("flow8.engine")


@attrs.frozen
class PlayActors:
    """Runs plays on this instance, each in a task of its own (a PlayActor): from its claim
    to its end or its next suspension, counting a crash of it against the play."""

    # Other services are left out of the repr (repr=False): a traceback rendered with its
    # locals (the console log) walks an attrs object's fields, and through them the store.
    host: PlayHost = attrs.field(repr=False)
    ledger: PlayLedger = attrs.field(repr=False)
    local: LocalPlays = attrs.field(repr=False)

    async def launch(
        self,
        company_id: str,
        play_id: str,
        fresh: Play | None = None,
        created: Created | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        """Start the PlayActor of a play this instance holds the lease of (see :meth:`run`)."""

        async def run(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await self.run(company_id, play_id, fresh, created, secrets)

        await self.local.launch(company_id, play_id, run)

    async def run(
        self,
        company_id: str,
        play_id: str,
        fresh: Play | None = None,
        created: Created | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        """The PlayActor body: run a play this instance holds the lease of, to its end or
        its next suspension. ``fresh`` is a play this instance has just created (and
        claimed): it has no layers or approvals to load yet.

        Every line it logs (its steps' too) says which play, and the request that started
        it: bound here, in the actor's own task, over whatever the task that started it had
        bound (a play started by an HTTP request starts in that request's task)."""
        cancel = self.local.hold(play_id, company_id)
        bound = bind_log_context(play_id=play_id, company_id=company_id, **_log_fields(fresh))
        try:
            await self._run(company_id, play_id, fresh, cancel, created, secrets)
        except Exception as crash:
            # Recorded before the supervisor hears of it, so that a play which crashes its
            # actor every time (a poison play) ends instead of being re-claimed forever.
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await self._after_crash(company_id, play_id, crash)
            raise
        finally:
            self.local.release(play_id)
            reset_log_context(bound)

    async def _after_crash(self, company_id: str, play_id: str, crash: Exception) -> None:
        """Count a crash of the play's actor. Below ``max_play_crashes`` the play runs again
        after a back-off (1, 2, 4 ... s, through its lease lapsing); at the limit, or when a
        cancel was asked for, it ends here with the last error."""
        try:
            doc = await self.ledger.count_crash(company_id, play_id)
            if doc is None:
                return  # no longer ours (cancelled, or another instance took it)
            # The cause may quote the play's data: masked like everything it records.
            reason = Redactor(doc.get("secrets") or ()).text(describe_crash(crash))
            crashes = int(doc.get("crashes") or 0)
            if doc.get("cancel_requested"):
                await self.end_unheld(company_id, doc, PlayState.CANCEL, "cancelled")
            elif crashes >= self.host.settings.max_play_crashes:
                error = f"PLAY_CRASHED: the play crashed {crashes} times; last error: {reason}"
                await self.end_unheld(company_id, doc, PlayState.FAIL, error)
            else:
                retry_at = time.time() + 2.0 ** (crashes - 1)
                await self.ledger.back_off(company_id, play_id, retry_at, reason)
            log.warning("play_crashed", play_id=play_id, crashes=crashes, error=reason)
        except Exception:
            # The store itself may be what failed: the lease lapses and the play is resumed.
            log.exception("play_crash_not_recorded", play_id=play_id)

    async def end_unheld(
        self,
        company_id: str,
        doc: dict[str, Any],
        state: PlayState,
        error: str,
        *,
        lapsed: bool = False,
    ) -> Play | None:
        """End a RUN play that no actor is running (cancelled, or crashed too often): the
        update is conditional on the lease it was seen with, so a play another instance has
        just claimed is left to it (None is returned). Its unfinished layers fail with
        ``error``."""
        now = time.time()
        ended = await self.ledger.end_unheld(company_id, doc, state, error, now, lapsed=lapsed)
        if ended is None:
            return None
        await self._layers(company_id).update_many(
            {
                "play_id": doc["_id"],
                "state": {"$in": [LayerState.RUN.value, LayerState.WAIT.value]},
            },
            {"$set": {"state": LayerState.FAIL.value, "error": error, "finished_at": now}},
        )
        play = play_from_doc(ended)
        self.local.remember_finished(play)
        data = {
            "state": state.value,
            "output": None,
            "error": error,
            "trigger": play.trigger.kind.value,
        }
        self.host.events.publish(ev.Event(ev.PLAY_FAILED, company_id, play.flow_id, play.id, data))
        return play

    def _layers(self, company_id: str) -> Collection:
        return self.host.store.tenant(company_id).collection("play_layers")

    async def _run(
        self,
        company_id: str,
        play_id: str,
        fresh: Play | None,
        cancel: trio.CancelScope,
        created: Created | None,
        secrets: Sequence[str] = (),
    ) -> None:
        """``secrets``: what a play just created here knows from birth (a subflow's
        parent's); a play read back from the store brings its own."""
        host, ledger = self.host, self.ledger
        doc: dict[str, Any] = {}
        if fresh is None:
            found_doc = await ledger.read(company_id, play_id)
            if found_doc is None or not ledger.holds(found_doc):
                return
            doc = found_doc
            if doc.get("cancel_requested"):
                # Before anything that could fail: a play cancelled while it was not running
                # (e.g. between crashes) ends without being run again.
                await self.end_unheld(company_id, doc, PlayState.CANCEL, "cancelled")
                return
        play = fresh or play_from_doc(doc, real=True)
        if fresh is None:  # read back: its flow and trace are known from here on
            bind_log_context(**_log_fields(play))
        redactor = Redactor(doc.get("secrets") or secrets)
        flow = await host.flows.get(company_id, play.flow_id, play.flow_version)
        plan = host.plans.get(flow)
        layers: dict[str, PlayLayer] = {}
        if fresh is None:
            for layer in await self._read_layers(company_id, play_id):
                layers[layer.key] = layer
        run = PlayRun(
            host,
            plan,
            play,
            layers,
            _play_kv(host, flow, play, redactor),
            doc.get("approvals") or {},
            created,
            redactor,
            approve_first=bool(doc.get("approve_first")),
        )
        if play.retry_of and not layers and play.resume_from:
            await self._reuse_layers(run, play.retry_of, play.resume_from)
        now = time.time()
        if play.started_at is None:
            play = attrs.evolve(play, started_at=now)
            run.play = play
            ledger.start(run.journal, now)
            run.publish(ev.PLAY_STARTED, _started(play))
        elif fresh is not None:
            run.publish(ev.PLAY_STARTED, _started(play))
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
        if self.local.was_lost(play_id):
            log.warning("play_lease_lost", play_id=play_id, owner=ledger.owner)
            return
        if cancel.cancelled_caught:
            state, output, error, suspended = PlayState.CANCEL, None, "cancelled", None
            _abort_layers(run, "cancelled")
        # Still listed as running while its end is written: waiters need not read the store.
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            if suspended is not None:
                self.local.release(play_id)  # a parked play holds nothing here
                await self._park(run, suspended.layer, suspended.reason, suspended.wake_at)
            else:
                await self._finish(run, state, output, error)

    async def _reuse_layers(self, run: PlayRun, old_play_id: str, from_ref: str) -> None:
        order = run.plan.order()
        reuse = set(order[: order.index(from_ref)]) if from_ref in order else set()
        old = await self.ledger.read(run.play.company_id, old_play_id)
        run.redactor.learn((old or {}).get("secrets") or [])  # what it reused, it masks too
        for layer in await self._read_layers(run.play.company_id, old_play_id):
            if layer.ref in reuse and layer.state in (LayerState.DONE, LayerState.FILTERED):
                # Reused, not run again: what it spent stays the old play's. It keeps its
                # place in the order the layers ran; the steps run now come after it.
                run.record(attrs.evolve(layer, play_id=run.play.id, usage=()))
                run.seq = max(run.seq, layer.seq)

    async def _read_layers(self, company_id: str, play_id: str) -> list[PlayLayer]:
        """Every layer of a play, read back in chunks that let other tasks run in between (a
        play of 100,000 iterations has as many layers to decode)."""
        docs = await self._layers(company_id).find({"play_id": play_id})
        layers: list[PlayLayer] = []
        for start in range(0, len(docs), 1000):
            layers.extend(layer_from_doc(d, real=True) for d in docs[start : start + 1000])
            await trio.lowlevel.checkpoint()
        return layers

    async def _park(
        self, run: PlayRun, layer: PlayLayer, reason: WaitReason, wake_at: float | None
    ) -> None:
        run.write_usage()
        self.ledger.park(run.journal, reason, layer.ref, wake_at)
        await run.journal.barrier()
        run.publish(
            ev.PLAY_WAITING,
            {
                "ref": layer.ref,
                "iteration": list(layer.iteration),
                "reason": reason.value,
                "wakeAt": wake_at,
            },
        )

    async def _finish(self, run: PlayRun, state: PlayState, output: Any, error: str | None) -> None:
        if state is not PlayState.DONE:
            # e.g. a sibling parked for approval while another step failed the play
            _abort_layers(run, f"not finished: the play ended ({state.value})")
        run.skip_unreached()
        now = time.time()
        # What everyone sees of the play's end (waiters, events, the API): its secrets masked.
        output = run.redactor.mask(output)
        error = run.redactor.text(error) if error else error
        play = run.play
        sealed = None
        if self.host.settings.encrypt_play_data:
            sealed = {"input": run.redactor.mask(play.input), "output": output}
        run.write_usage()
        self.ledger.finish(
            run.journal,
            state,
            output=output,
            error=error,
            now=now,
            data=sealed,
            clear_wait=play.wait_reason is not None or play.wake_at is not None,
        )
        await run.journal.barrier()
        # Before anyone hears of the end: whoever waited for it finds what the play held
        # (a temporary directory) already released.
        await run.release()
        usage = run.usage if run.usage.calls else play.usage
        self.local.remember_finished(
            attrs.evolve(
                play, state=state, output=output, error=error, finished_at=now, usage=usage
            )
        )
        data = {
            "state": state.value,
            "output": output,
            "error": error,
            "trigger": play.trigger.kind.value,
        }
        run.publish(ev.PLAY_COMPLETED if state is PlayState.DONE else ev.PLAY_FAILED, data)
        if run.plan.flow.definition.execution.max_concurrent and await self.ledger.promote(
            play.company_id, play.flow_id
        ):
            self.local.wake()


def _log_fields(play: Play | None) -> dict[str, str | None]:
    """What a play's log lines say besides its id and company: its flow, and the request
    that started it (None: not known yet, or none; a value bound before is hidden)."""
    trace = play.trace if play is not None else None
    return {
        "flow_id": play.flow_id if play is not None else None,
        "correlation_id": trace.correlation_id if trace is not None else None,
        "trace_id": trace.trace_id if trace is not None else None,
    }


def _started(play: Play) -> dict[str, Any]:
    return {"flowVersion": play.flow_version, "trigger": play.trigger.kind.value}


def _abort_layers(run: PlayRun, why: str) -> None:
    for layer in list(run.layers.values()):
        if layer.state in (LayerState.RUN, LayerState.WAIT):
            run.record(
                attrs.evolve(layer, state=LayerState.FAIL, error=why, finished_at=time.time())
            )


def _play_kv(host: PlayHost, flow: Flow, play: Play, redactor: Redactor) -> PlayKv:
    d = flow.definition
    return PlayKv(
        host.kv,
        play.company_id,
        play.flow_id,
        d.group,
        play.kv_parents,
        d.kv_inherit,
        d.kv_conflict,
        on_secret=redactor.learn,
    )
