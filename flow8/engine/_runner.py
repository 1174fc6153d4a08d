"""Executing one play: groups in order, parallel steps, loops, filters, retries, timeouts,
approvals, suspension, and the layer records of all of it.

A run is a replay: layers already recorded (from before a crash, a WAIT, or a retried play)
are reused instead of re-executed, so resuming is just running again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import trio
from jsonata.jsonata import Jsonata

from flow8 import events as ev
from flow8.components import (
    CallRecorder,
    ComponentHandle,
    ComponentUnavailable,
    basic_token,
)
from flow8.domain import (
    MAX_RETRY_COUNT,
    AiUsage,
    Attempt,
    LayerState,
    Play,
    PlayLayer,
    PlayState,
    UsageTotals,
    WaitReason,
    layer_key,
)
from flow8.expressions import (
    ExpressionError,
    ExpressionLimit,
    FilterError,
    filters_pass_async,
    to_json_value,
)
from flow8.logs import get_logger
from flow8.modules import InvalidArgs, ModuleSpec
from flow8.store import InvalidDocument, InvalidQuery, prepare_value

from ._big import json_size, off_the_loop_if_big
from ._host import PlayHost
from ._journal import Created, Journal
from ._kv import PlayKv
from ._plan import Group, Loop, Node, Plan, Step
from ._records import error_text
from ._redact import Redactor
from .exceptions import BudgetExceeded, Interrupted, OutputTooLarge, StepError, StepTimeout

log = get_logger("flow8.engine")
_rng = random.Random()
RELEASE_SECONDS = 10.0
# How long a play runs on the loop before it lets others run. Every checkpoint also lets the
# store's writer start a commit of what is queued, so under durability=full a play that
# yields often finishes behind a commit still in flight: at 1 ms, bench (a) full cost 0.218
# ms/step against 0.179 with no yields; at 5 ms, 0.184. Another company's 1-step plays
# beside a 30,000-item loop took the same either way (p50 9-13 ms, p90 15-20 ms), well
# inside the 50 ms the loop may be held.
YIELD_EVERY_SECONDS = 0.005
E = TypeVar("E", bound=BaseException)


class Suspend(Exception):
    """Raised inside a step to park the play (WAIT) until ``wake_at`` or an approval."""

    def __init__(self, reason: WaitReason, wake_at: float | None) -> None:
        self.reason = reason
        self.wake_at = wake_at
        super().__init__(reason.value)


class _Suspended(Exception):
    def __init__(self, layer: PlayLayer, reason: WaitReason, wake_at: float | None) -> None:
        self.layer = layer
        self.reason = reason
        self.wake_at = wake_at


@attrs.define(eq=False)
class StepContext:
    """What a module sees while it runs (``flow8.modules.ModuleContext``)."""

    run: PlayRun
    step: Step
    iteration: tuple[int, ...]
    wake_at: float | None
    attempt: int = 1  # numbered across resumes, as the layer's attempts are
    recorder: CallRecorder | None = None  # this attempt's component calls, when recorded
    usage: list[AiUsage] = attrs.field(factory=list)  # what its provider calls spent

    @property
    def company_id(self) -> str:
        return self.run.play.company_id

    @property
    def flow_id(self) -> str:
        return self.run.play.flow_id

    @property
    def play_id(self) -> str:
        return self.run.play.id

    @property
    def ref(self) -> str:
        return self.step.ref

    @property
    def component_config_ids(self) -> Mapping[str, str]:
        return self.step.flowlet.component_config_ids

    @property
    def kv(self) -> PlayKv:
        return self.run.kv

    async def component(self, kind: str) -> ComponentHandle:
        """The component this step uses for ``kind`` (its ``componentConfigIds`` choice, the
        company's default, or the built-in default), recording its calls when asked to, its
        providers' requests sent with the play's trace when it has one."""
        source = self.run.engine.components
        if source is None:
            raise ComponentUnavailable("this server runs no components")
        choice = self.step.flowlet.component_config_ids.get(kind)
        handle = await source.resolve(self.company_id, kind, choice)
        trace = self.run.play.trace
        traced = trace is not None and trace.trace_id is not None
        if self.recorder is not None or traced:
            trace_source = self.traceparent if traced else None
            return attrs.evolve(handle, recorder=self.recorder, trace=trace_source)
        return handle

    async def credential(self, credential_id: str) -> tuple[str, dict[str, Any]]:
        """(type, data) of a stored credential of the company. Every text of its data (and
        the Basic form of a username and password) is masked in all the play records from
        now on: it is applied on the wire and shown nowhere else."""
        source = self.run.engine.credentials
        if source is None:
            raise ComponentUnavailable("this server has no credentials")
        type_, data = await source.for_step(self.company_id, credential_id)
        self.run.redactor.learn(data)
        if type_ == "basic":
            self.run.redactor.learn(basic_token(data["username"], data["password"]))
        return type_, data

    def record_usage(self, usage: AiUsage) -> None:
        """What a provider call of this step spent: kept with this attempt, written on the
        step's layer with its end (``Runner._attempts``)."""
        self.usage.append(usage)

    def traceparent(self) -> str | None:
        """A W3C ``traceparent`` for one outbound request: the play's trace (the one the
        request that started it carried), a fresh span id; None for a play without one."""
        trace = self.run.play.trace
        return trace.traceparent() if trace is not None else None

    def log_line(self, line: Mapping[str, Any]) -> None:
        """Stream a console line to whoever watches the play (the step's output keeps it)."""
        shown = self.run.redactor.mask(dict(line)) if self.run.redactor else dict(line)
        self.run.publish(ev.PLAY_LOG, {"ref": self.step.ref, **shown})

    async def sleep(self, seconds: float) -> None:
        now = time.time()
        if self.wake_at is None:
            self.wake_at = now + seconds
        remaining = self.wake_at - now
        if remaining <= 0:
            return
        timeout = self.step.flowlet.timeout
        if remaining > self.run.engine.settings.hold_delay_seconds and (
            timeout is None or timeout >= remaining
        ):
            raise Suspend(WaitReason.DELAY, self.wake_at)
        # A step timeout shorter than the wait ends the step in time (parked, nothing would
        # be there to end it): wait here, and the step's timeout fires.
        await trio.sleep(remaining)

    async def run_subflow(
        self, flow_id: str, args: Any, *, wait: bool, timeout: float | None
    ) -> dict[str, Any]:
        return await self.run.engine.run_subflow(
            self.run.play,
            flow_id,
            args,
            key=layer_key(self.run.play.id, self.step.ref, self.iteration),
            wait=wait,
            timeout=timeout,
            attempt=self.attempt,
            secrets=self.run.redactor.secrets if self.run.redactor else (),
        )


class PlayRun:
    """One execution attempt of a play by this instance (holding its lease)."""

    def __init__(
        self,
        engine: PlayHost,
        plan: Plan,
        play: Play,
        layers: dict[str, PlayLayer],
        kv: PlayKv,
        approvals: Mapping[str, Any],
        created: Created | None = None,
        redactor: Redactor | None = None,
        approve_first: bool = False,
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.play = play
        self.layers = layers
        self.kv = kv
        self.approvals = approvals
        # A play started with ``approve_first`` (an MCP route requiring a human's approval)
        # parks before its first step(s) exactly as before a step with ``needsApproval``.
        self._approve_first = _first_refs(plan) if approve_first else frozenset()
        self.redactor = redactor if redactor is not None else Redactor()
        self.journal = Journal(
            engine.store,
            play.company_id,
            play.id,
            created,
            encrypt=engine.settings.encrypt_play_data,
        )
        self._stored: set[str] = set(layers)
        self.seq = max((la.seq for la in layers.values()), default=0)
        self.last_output: Any = None
        self._base = {"flowId": play.flow_id, "playId": play.id}
        self._max_output = engine.settings.max_output_bytes
        self._last_yield = time.perf_counter()
        # What the play's metered calls spent, this run's and its earlier runs' (layers read
        # back on resume): kept on the play document as each call is recorded.
        self.usage = UsageTotals().plus(u for la in layers.values() for u in la.usage)

    # -- events ---------------------------------------------------------------------------

    def publish(self, type_: str, data: dict[str, Any]) -> None:
        p = self.play
        self.engine.events.publish(ev.Event(type_, p.company_id, p.flow_id, p.id, data))

    def _publish_layer(self, type_: str, layer: PlayLayer) -> None:
        p = self.play
        if self.engine.events.wants(type_, p.company_id, p.flow_id, p.id):
            event = _layer_event(layer)
            if self.redactor and layer.error:
                event["error"] = self.redactor.text(layer.error)
            self.publish(type_, event)

    def shown(self, layer: PlayLayer) -> PlayLayer:
        """The layer as it is recorded and reported: every secret the play knows masked
        (the very same layer when there is nothing to mask)."""
        r = self.redactor
        if not r:
            return layer
        args, output = r.mask(layer.args), r.mask(layer.output)
        error = r.text(layer.error) if layer.error else layer.error
        attempts = tuple(
            attrs.evolve(a, error=r.text(a.error)) if a.error else a for a in layer.attempts
        )
        if (
            args is layer.args
            and output is layer.output
            and error is layer.error
            and all(a is b for a, b in zip(attempts, layer.attempts, strict=True))
        ):
            return layer
        return attrs.evolve(layer, args=args, output=output, error=error, attempts=attempts)

    def _write(self, layer: PlayLayer, key: str) -> None:
        shown = self.shown(layer)
        real = layer if shown is not layer else None
        masked = bool(self.redactor)
        self.journal.layer(shown, new=key not in self._stored, real=real, masked=masked)
        if self.redactor.unsaved():  # kept (encrypted) so that a resumed play masks them too
            self.journal.play({"secrets": self.redactor.secrets})

    def record(self, layer: PlayLayer) -> PlayLayer:
        """Write a layer state; a value the store refuses (an integer beyond 64 bits, JSON
        nested too deeply, text that is not valid Unicode) fails the step, not the play's
        actor: the store checks a write before queueing it, so the refusal surfaces here."""
        key = layer.key
        try:
            self._write(layer, key)
        except (InvalidDocument, InvalidQuery) as e:
            error = _unstorable(e)
            failed = attrs.evolve(
                layer, state=LayerState.FAIL, args=None, output=None, error=error,
                finished_at=time.time(),
            )  # fmt: skip
            self._write(failed, key)
            self._keep(key, failed)
            self._stored.add(key)
            self._publish_layer(ev.LAYER_FAILED, failed)
            raise StepError(layer.ref, error) from None
        self._keep(key, layer)
        self._stored.add(key)
        return layer

    def _note(self, layer: PlayLayer) -> PlayLayer:
        """Keep a layer state in memory only (its final state will be written)."""
        self._keep(layer.key, layer)
        return layer

    def _keep(self, key: str, layer: PlayLayer) -> None:
        """Remember a layer for the rest of the run, unless it is a finished iteration:
        nothing looks one up again in this run (a resumed run reads layers back from the
        store), and a loop of 100,000 iterations would otherwise keep 100,000 layers and
        their attempts alive, which every full garbage collection walks while it holds the
        GIL (measured: 60-110 ms pauses of the event loop and of the store's writer)."""
        if layer.iteration and layer.state.final:
            self.layers.pop(key, None)
        else:
            self.layers[key] = layer

    async def release(self) -> None:
        """The play has ended: steps that hold something until then let go of it (see
        ``ModuleSpec.at_play_end``). Best effort, bounded: a failure is logged, never the
        play's."""
        for step in self.plan.steps():
            release = step.module.at_play_end
            if release is None:
                continue
            with trio.move_on_after(RELEASE_SECONDS):
                try:
                    await release(StepContext(self, step, (), None))
                except Exception:
                    log.warning(
                        "play.release_failed", play_id=self.play.id, ref=step.ref, exc_info=True
                    )

    def skip_unreached(self) -> None:
        """Record SKIP for the steps outside loops that the play never reached (a failed or
        cancelled play, or steps of a loop whose iterator was filtered)."""
        for node in self.plan.nodes:
            steps = node.steps if isinstance(node, Group) else (node.iterator, node.aggregator)
            for step in steps:
                if step is None or layer_key(self.play.id, step.ref, ()) in self.layers:
                    continue
                self.record(
                    PlayLayer(
                        play_id=self.play.id,
                        company_id=self.play.company_id,
                        ref=step.ref,
                        state=LayerState.SKIP,
                        app_id=step.module.app_id,
                        seq=self._next_seq(),
                    )
                )

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def _share_the_loop(self) -> None:
        """Let other plays and requests run every few milliseconds: steps that complete
        without awaiting anything (pure modules, replayed layers, long iterations) would
        otherwise hold the event loop for as long as the play runs. And keep the play's
        queue of writes short, so that others' writes are not queued behind it."""
        await self.journal.keep_pace()
        now = time.perf_counter()
        if now - self._last_yield > YIELD_EVERY_SECONDS:
            await trio.lowlevel.checkpoint()
            self._last_yield = time.perf_counter()

    # -- the whole play -------------------------------------------------------------------

    async def execute(self) -> tuple[PlayState, Any, str | None, _Suspended | None]:
        """Run to an end or a suspension; returns (state, output, error, suspension)."""
        outputs: dict[str, Any] = {"args": self.play.input}
        try:
            await self._nodes(self.plan.nodes, outputs, ())
        except _Suspended as s:
            return PlayState.WAIT, None, None, _without_traceback(s)
        except StepError as e:
            return PlayState.FAIL, None, str(_without_traceback(e)), None
        return PlayState.DONE, self.last_output, None, None

    async def _nodes(
        self, nodes: tuple[Node, ...], outputs: dict[str, Any], it: tuple[int, ...]
    ) -> None:
        for node in nodes:
            if isinstance(node, Group):
                await self._group(node, outputs, it)
            else:
                await self._loop(node, outputs, it)

    async def _group(self, group: Group, outputs: dict[str, Any], it: tuple[int, ...]) -> None:
        if group.starts_plays and self.engine.starts.crowded(self.play.company_id):
            # Its company's starts queue up: wait here, a small parked play, rather than
            # queue one more chain of coroutines per subflow step (see FairGate.hold_back).
            await self.engine.starts.hold_back(self.play.company_id)
        if len(group.steps) == 1:
            step = group.steps[0]
            if await self._step(step, outputs, it):
                self.last_output = outputs[step.ref]
            return
        done: dict[str, Any] = {}
        suspended: list[_Suspended] = []
        failures: list[StepError] = []

        async def one(step: Step, nursery: trio.Nursery) -> None:
            try:
                if await self._step(step, outputs, it):
                    done[step.ref] = outputs[step.ref]
            except _Suspended as s:
                suspended.append(_without_traceback(s))  # siblings run on; the play parks after
            except StepError as e:
                failures.append(_without_traceback(e))
                nursery.cancel_scope.cancel()  # a failing step cancels unfinished siblings

        async with trio.open_nursery() as nursery:
            for step in group.steps:
                nursery.start_soon(one, step, nursery)
        if failures:
            for step in group.steps:
                layer = self.layers.get(layer_key(self.play.id, step.ref, it))
                if layer is not None and layer.state is LayerState.RUN:
                    self.record(
                        attrs.evolve(
                            layer,
                            state=LayerState.FAIL,
                            error=f"cancelled: sibling {failures[0].ref!r} failed",
                            finished_at=time.time(),
                        )
                    )
            raise failures[0]
        if suspended:
            raise suspended[0]
        if done:
            self.last_output = {s.ref: done[s.ref] for s in group.steps if s.ref in done}

    async def _loop(self, loop: Loop, outputs: dict[str, Any], it: tuple[int, ...]) -> None:
        if not await self._step(loop.iterator, outputs, it):
            return  # the iterator was filtered: nothing in its body is reached
        self.last_output = outputs[loop.iterator.ref]
        items = outputs[loop.iterator.ref].get("items") or []
        total = len(items)
        iterations: list[dict[str, Any]] = []
        body_refs = [s.ref for s in Plan(self.plan.flow, loop.body).steps()]
        last_body_ref = body_refs[-1] if body_refs else ""
        scope: dict[str, Any] = outputs
        for index, item in enumerate(items):
            await self._share_the_loop()
            scope = dict(outputs)
            scope[loop.iterator.ref] = {
                "item": item,
                "index": index,
                "total": total,
                "isLast": index == total - 1,
            }
            await self._nodes(loop.body, scope, (*it, index))
            iterations.append({r: scope[r] for r in body_refs if r in scope})
        if loop.aggregator is None:
            outputs.update(scope)
            return
        extra = {"iterations": iterations, "lastRef": last_body_ref}
        if await self._step(loop.aggregator, outputs, it, extra_args=extra):
            self.last_output = outputs[loop.aggregator.ref]

    # -- one step -------------------------------------------------------------------------

    def _bindings(self, outputs: dict[str, Any]) -> dict[str, Any]:
        b: dict[str, Any] = dict(self._base)
        b["prev"] = outputs
        return b

    async def _resolve(self, step: Step, bindings: dict[str, Any]) -> Any:
        if not step.args.uses_kv:
            # On the loop within a slice of the budget, else again in a worker thread.
            return await step.args.resolve_async(bindings)
        # $kv reads the store, which is async: evaluate in a worker thread that calls back.
        kv = self.kv

        def kv_get(scope: str) -> Any:
            def lookup(key: Any) -> Any:
                found, value = trio.from_thread.run(kv.get, scope, str(key))
                return value if found else None

            return Jsonata.JLambda(lookup)

        full = dict(bindings, kv=kv_get("flow"), kvGlobal=kv_get("global"))
        return await step.args.resolve_in_thread(full)

    async def _step(
        self,
        step: Step,
        outputs: dict[str, Any],
        it: tuple[int, ...],
        extra_args: dict[str, Any] | None = None,
    ) -> bool:
        """Run (or replay) ``step``; True if it produced an output (DONE), False if filtered."""
        await self._share_the_loop()
        key = layer_key(self.play.id, step.ref, it)
        existing = self.layers.get(key)
        wake_at: float | None = None
        approved = False
        if existing is not None:
            if existing.state is LayerState.DONE:
                outputs[step.ref] = existing.output
                return True
            if existing.state is LayerState.FILTERED:
                return False
            if existing.state in (LayerState.FAIL, LayerState.SKIP):
                raise StepError(step.ref, existing.error or "failed")
            if existing.state is LayerState.WAIT:
                if not _waits_to_retry(existing):
                    wake_at = existing.finished_at  # a parked delay keeps its wake time here
                approved = self.approvals.get(key.replace(".", "_")) == "approved"
            elif (
                existing.state is LayerState.RUN
                and existing.attempts
                and not step.module.is_idempotent(existing.args)
            ):
                layer = self.record(
                    attrs.evolve(
                        existing,
                        state=LayerState.FAIL,
                        error=f"interrupted: {step.module.app_id} is not idempotent and was "
                        "running when its instance stopped; retry the play from this step",
                        finished_at=time.time(),
                    )
                )
                self._publish_layer(ev.LAYER_FAILED, layer)
                raise Interrupted(step.ref, layer.error or "interrupted")
        bindings = self._bindings(outputs)
        now = time.time()
        self.seq += 1
        base = PlayLayer(
            play_id=self.play.id,
            company_id=self.play.company_id,
            ref=step.ref,
            state=LayerState.RUN,
            iteration=it,
            app_id=step.module.app_id,
            started_at=existing.started_at if existing else now,
            seq=existing.seq if existing else self.seq,
            attempts=existing.attempts if existing else (),
        )
        try:
            if step.filters and not await filters_pass_async(step.filters, bindings):
                filtered = self.record(
                    attrs.evolve(base, state=LayerState.FILTERED, finished_at=now)
                )
                self._publish_layer(ev.LAYER_COMPLETED, filtered)
                return False
            args = await self._resolve(step, bindings)
            if step.module.secrets_of is not None and isinstance(args, Mapping):
                # Before anything records the arguments: they are masked from the start.
                self.redactor.learn(step.module.secrets_of(args))
        except ExpressionLimit as e:
            raise self._fail(base, limit_error(e)) from e
        except (ExpressionError, FilterError) as e:
            raise self._fail(base, f"{e}") from e
        needs_approval = step.flowlet.needs_approval or (not it and step.ref in self._approve_first)
        if needs_approval and not approved:
            layer = self.record(attrs.evolve(base, state=LayerState.WAIT, args=args))
            raise _Suspended(layer, WaitReason.APPROVAL, None)
        module_args = args if extra_args is None else {**args, **extra_args}
        if not step.args.constant or extra_args is not None:
            # Constant args were fully validated with the flow; only resolved ones need it.
            size = json_size(args)
            if self._max_output and size is not None and size > self._max_output:
                raise self._fail(
                    base, f"arguments are larger than the {self._max_output} bytes allowed"
                )
            try:  # before the step runs: its input is checked at its boundary, as its output
                args = await off_the_loop_if_big(size, prepare_value, args, "args")
            except InvalidDocument as e:
                raise self._fail(base, _unstorable(e)) from None
            module_args = args if extra_args is None else {**args, **extra_args}
            try:
                step.module.check_args(module_args)
            except InvalidArgs as e:
                raise self._fail(attrs.evolve(base, args=args), str(e)) from e
        return await self._attempts(
            step, attrs.evolve(base, args=args), module_args, outputs, it, wake_at
        )

    def _fail(self, layer: PlayLayer, error: str) -> StepError:
        failed = self.record(
            attrs.evolve(layer, state=LayerState.FAIL, error=error, finished_at=time.time())
        )
        self._publish_layer(ev.LAYER_FAILED, failed)
        return StepError(layer.ref, error)

    async def _attempts(
        self,
        step: Step,
        layer: PlayLayer,
        args: Any,
        outputs: dict[str, Any],
        it: tuple[int, ...],
        wake_at: float | None,
    ) -> bool:
        module: ModuleSpec = step.module
        idempotent = module.is_idempotent(args)
        retry = step.flowlet.retry
        attempts = list(layer.attempts)
        ctx = StepContext(self, step, it, wake_at)
        # Attempts are numbered across resumes, so a step never gets more than its policy
        # allows in all (and its attempt list stays that long); flows saved before the
        # bound existed are held to it too.
        allowed = min(retry.count, MAX_RETRY_COUNT) + 1
        if attempts and attempts[-1].finished_at is None:
            attempts.pop()  # one that was suspended (a parked delay) resumes as itself
        error: str | None = None
        recording = self.plan.flow.definition.execution.record_calls
        while len(attempts) < allowed:
            number = len(attempts) + 1
            ctx.attempt = number
            if recording:
                ctx.recorder = CallRecorder(self.redactor.mask)
            started = time.time()
            attempts.append(Attempt(number, started))
            running = attrs.evolve(layer, state=LayerState.RUN, attempts=tuple(attempts))
            # An idempotent step's RUN state is only announced (an event), not written: if
            # the instance dies, it simply runs again. Its end state is written.
            layer = self.record(running) if not idempotent else self._note(running)
            self._publish_layer(ev.LAYER_STARTED, layer)
            if not idempotent:
                # Output commit: everything before a side effect is durable, and so is the
                # RUN record that stops it from being silently re-run after a crash.
                await self.journal.barrier()
            error = None
            try:
                if module.metered:
                    await self._within_budget(step)
                try:
                    output = await self._invoke(step, ctx, args)
                finally:  # what it spent is recorded however the attempt ended
                    layer = self._spent(layer, ctx)
            except Suspend as s:
                layer = self.record(
                    attrs.evolve(layer, state=LayerState.WAIT, finished_at=s.wake_at)
                )
                raise _Suspended(layer, s.reason, s.wake_at) from None
            except BudgetExceeded as e:  # not retried: the budget is spent until its period ends
                attempts[-1] = Attempt(number, started, time.time(), e.message)
                raise self._fail(attrs.evolve(layer, attempts=tuple(attempts)), e.message) from e
            except StepError as e:
                error = error_text(e.message)
            except ExpressionLimit as e:  # a transform's: the same again would fail the same
                attempts[-1] = Attempt(number, started, time.time(), limit_error(e))
                failed = attrs.evolve(layer, attempts=tuple(attempts))
                raise self._fail(failed, limit_error(e)) from e
            except Exception as e:  # any module error fails the layer, never the engine
                error = error_text(f"{type(e).__name__}: {e}" if not str(e) else str(e))
            finished = time.time()
            attempts[-1] = Attempt(number, started, finished, error)
            if ctx.recorder is not None:
                layer = attrs.evolve(layer, calls=tuple(ctx.recorder.to_json()))
            if error is None:
                done = self.record(
                    attrs.evolve(
                        layer,
                        state=LayerState.DONE,
                        output=output,
                        error=None,
                        attempts=tuple(attempts),
                        finished_at=finished,
                    )
                )
                outputs[step.ref] = output
                self._publish_layer(ev.LAYER_COMPLETED, done)
                return True
            layer = attrs.evolve(layer, attempts=tuple(attempts), error=error)
            if number < allowed:
                delay = retry.delay_seconds(number, _rng)
                if delay > self.engine.settings.hold_delay_seconds:
                    # A long back-off parks the play (no actor held) until it is due.
                    wake = time.time() + delay
                    waiting = self.record(
                        attrs.evolve(layer, state=LayerState.WAIT, finished_at=wake)
                    )
                    raise _Suspended(waiting, WaitReason.RETRY, wake)
                self.record(layer)
                await trio.sleep(delay)
        raise self._fail(layer, error or "failed")

    async def _within_budget(self, step: Step) -> None:
        """Refuse a metered step once its company's or flow's budget is spent (before the
        provider is called: the barrier before a non-idempotent step made every earlier
        call's usage durable, so the count includes them)."""
        budgets = self.engine.budgets
        if budgets is None:
            return
        refusal = await budgets.refusal(self.play.company_id, self.play.flow_id)
        if refusal is not None:
            await budgets.refused(self.play.company_id, self.play.flow_id, self.play.id, step.ref)
            raise BudgetExceeded(step.ref, f"BUDGET_EXCEEDED: {refusal}")

    def _spent(self, layer: PlayLayer, ctx: StepContext) -> PlayLayer:
        """Move what this attempt's provider calls spent onto the layer, the play's totals
        and the company's daily counts (written with the layer, in the same pipeline: the
        budgets read them before the next metered step)."""
        if not ctx.usage:
            return layer
        spent, ctx.usage = tuple(ctx.usage), []
        self.usage = self.usage.plus(spent)
        self.journal.count_usage(self.play.flow_id, spent, time.time())
        return attrs.evolve(layer, usage=layer.usage + spent)

    def write_usage(self) -> None:
        """Write the play's totals, when it made metered calls (as it parks or ends: a run
        that dies before sums its layers again when it resumes, so no call is lost; writing
        them with every call cost a second write per call)."""
        if self.usage.calls:
            self.journal.play({"usage": attrs.asdict(self.usage)})

    async def _invoke(self, step: Step, ctx: StepContext, args: Any) -> Any:
        timeout = step.flowlet.timeout
        if timeout:
            try:
                with trio.fail_after(timeout):
                    raw = await step.module.run(ctx, args)
            except trio.TooSlowError:
                raise StepTimeout(step.ref, f"timed out after {timeout:g} s") from None
        else:
            raw = await step.module.run(ctx, args)
        size = json_size(raw)
        if self._max_output and size is not None and size > self._max_output:
            raise self._too_big(step)
        try:
            output = await off_the_loop_if_big(size, _storable_output, raw)
        except TypeError as e:
            raise StepError(step.ref, str(e)) from e
        except InvalidDocument as e:
            raise StepError(step.ref, _unstorable(e)) from None
        if size is None and self._max_output and (json_size(output) or 0) > self._max_output:
            raise self._too_big(step)  # its size could only be known once it was plain JSON
        return output

    def _too_big(self, step: Step) -> OutputTooLarge:
        return OutputTooLarge(
            step.ref, f"output is larger than the {self._max_output} bytes allowed"
        )


def _storable_output(raw: Any) -> Any:
    """A module's result as plain JSON, normalised for the store (``prepare_value``): raises
    TypeError for what is not JSON, InvalidDocument for what the store refuses."""
    return prepare_value(to_json_value(raw, "output"), "output")


def _waits_to_retry(layer: PlayLayer) -> bool:
    """A layer parked for a retry's back-off (its last attempt failed), rather than by its
    module (a delay) or for an approval."""
    return bool(layer.attempts) and layer.attempts[-1].error is not None


def limit_error(error: ExpressionLimit) -> str:
    """A step stopped by an expression's limit: ``EXPRESSION_LIMIT: <where>: expression
    {{ ... }} exceeded a limit: it ran longer than 250 ms``."""
    return error_text(f"EXPRESSION_LIMIT: {error}")


def _unstorable(error: Exception) -> str:
    """What the store refused, in the words of the step: ``its output cannot be stored:
    output.a: integer ... does not fit in 64 bits``."""
    reason = str(error)
    if reason.startswith("play_layers."):  # the collection, as the store names paths
        reason = reason.split(".", 1)[1]
    field = {"args": "its arguments", "output": "its output"}.get(
        reason.split(".", 1)[0].split(":", 1)[0].split("[", 1)[0], "it"
    )
    return f"{field} cannot be stored: {reason}"


def _layer_event(layer: PlayLayer) -> dict[str, Any]:
    return {
        "ref": layer.ref,
        "iteration": list(layer.iteration),
        "state": layer.state.value,
        "appId": layer.app_id,
        "error": layer.error,
        "attempt": len(layer.attempts),
        "startedAt": layer.started_at,
        "finishedAt": layer.finished_at,
    }


def _first_refs(plan: Plan) -> frozenset[str]:
    """The steps a play runs first: the first group's steps, or the first loop's iterator."""
    if not plan.nodes:
        return frozenset()
    first = plan.nodes[0]
    if isinstance(first, Group):
        return frozenset(s.ref for s in first.steps)
    return frozenset({first.iterator.ref})


def _without_traceback(error: E) -> E:
    """Forget where ``error`` (and what caused it) was raised. Its traceback holds the frames
    it passed through, and one of them (a parallel group's) holds the list of failures that
    holds the error: a reference cycle that keeps a failed play's whole run (its layers, its
    attempts, its nursery) alive until a full garbage collection, which then walks and frees
    it with the event loop stopped (measured: 1,000 failed plays left 83,000 such objects
    and a 160 ms pause). Without the traceback, reference counting frees them at once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        if current.__cause__ is not None:
            _without_traceback(current.__cause__)
        current = current.__context__
    return error
