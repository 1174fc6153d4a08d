"""The engine: starting, claiming, running, suspending and finishing plays.

One :class:`Engine` per instance. Plays run as PlayActors (tasks under the ``plays`` dynamic
supervisor once :meth:`Engine.attach` gave it one; otherwise in the dispatcher's own nursery,
as in the CLI and benchmarks). Every play is claimed with a lease on its document; the
dispatcher renews the leases of this instance's plays in one batched write, claims new,
woken and orphaned plays, and promotes DEFERRED plays when their flow has room.

The engine wires the parts and keeps none of their state: every change of a play's state
and lease is the :class:`PlayLedger`'s, what this process holds of its plays (running ones,
their cancel scopes, waiters' answers) is in :class:`LocalPlays`; :class:`PlayActors` run
plays, :class:`PlayCommands` cancel and decide them, the :class:`Dispatcher` claims them.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import attrs
import trio

from flow8 import events as ev
from flow8.domain import (
    Play,
    PlayLayer,
    PlayState,
    PlayTrace,
    Trigger,
    TriggerKind,
)
from flow8.events import EventBus, EventFilter
from flow8.logs import get_logger
from flow8.modules import ModuleRegistry, default_registry
from flow8.store import Collection, DuplicateKey, Pipeline, Store, new_id, prepare_value

from ._admission import Admission
from ._big import json_size, off_the_loop_if_big
from ._commands import PlayCommands
from ._dispatcher import Dispatcher
from ._fair import FairGate
from ._journal import Created
from ._ledger import PlayLedger
from ._local import LocalPlays
from ._plan import PlanCache
from ._play_actor import PlayActors
from ._records import (
    MAX_ERROR_LENGTH,
    elided,
    layer_from_doc,
    play_doc,
    play_from_doc,
    request_fingerprint,
)
from ._redact import Redactor
from ._settings import EngineSettings
from ._sources import BudgetSource, ComponentSource, CredentialSource, FlowSource, KvStorage
from .exceptions import (
    FlowDisabled,
    IdempotencyKeyReused,
    InvalidInput,
    PlayLimitReached,
    PlayNotFound,
    PlayStateError,
    StartTimedOut,
    StepError,
)

log = get_logger("flow8.engine")


def _launch_failed(play_id: str, error: Exception) -> None:
    """A play stored but not launched here is handed back to the dispatchers (another
    instance, or this one's next poll, runs it); say why, since nothing else will."""
    log.warning("play.launch_failed_handed_back", play_id=play_id, error=repr(error)[:200])


# How long a subflow step waits for its child to be stored (a stalled database) before it
# fails; the start itself is not interrupted by a cancellation (see run_subflow).
SUBFLOW_START_TIMEOUT = 30.0


class Engine:
    """Plays over one store. Thread-unsafe; lives in one Trio run.

    The flows it runs are read from ``flows`` and the KV entries its plays use are kept in
    ``kv``: both are stored by the services above the engine (``FlowRepository``,
    ``KvStore``), which the composition root hands in. ``registry`` must be the one the flows
    were validated against.
    """

    def __init__(
        self,
        store: Store,
        events: EventBus | None = None,
        settings: EngineSettings | None = None,
        registry: ModuleRegistry | None = None,
        *,
        flows: FlowSource,
        kv: KvStorage,
        components: ComponentSource | None = None,
        credentials: CredentialSource | None = None,
        budgets: BudgetSource | None = None,
    ) -> None:
        self.store = store
        self.events = events or EventBus()
        self.settings = settings or EngineSettings()
        self.registry = registry or default_registry()
        self.plans = PlanCache(self.registry)
        self.flows = flows
        self.kv = kv
        # None: steps that need a component or a credential fail saying so (engine tests).
        self.components = components
        self.credentials = credentials
        self.budgets = budgets  # None: metered steps run unbudgeted
        self.owner = self.settings.instance_id
        self.admission = Admission(
            self.settings.company_plays_per_second, self.settings.company_running_plays
        )
        # Fair across companies under load: see FairGate.
        self.starts = FairGate(
            self.settings.max_starting,
            min(self.settings.max_starting_per_company, self.settings.max_starting),
            crowd=self.settings.max_queued_starts_per_company,
        )
        self.started_plays = 0
        self.ledger = PlayLedger(store, self.owner, self.settings.lease_seconds)
        self.local = LocalPlays(self.admission)
        self.actors = PlayActors(self, self.ledger, self.local)
        self.commands = PlayCommands(self.ledger, self.local, self.actors, self.events, store)

    # -- wiring ---------------------------------------------------------------------------

    def attach(self, plays_supervisor: Any) -> None:
        """Run plays as temporary children of ``plays_supervisor`` (an
        ``actors.DynamicSupervisorRef``), so they appear in the actor tree."""

        async def spawn(
            play_id: str, run: Callable[[trio.TaskStatus[Any]], Awaitable[None]]
        ) -> None:
            await plays_supervisor.start_task(f"play-{play_id}", run, shutdown=2.0)

        self.local.attach(spawn)

    @property
    def running(self) -> int:
        return len(self.local)

    # -- starting plays -------------------------------------------------------------------

    def _layers(self, company_id: str) -> Collection:
        return self.store.tenant(company_id).collection("play_layers")

    async def start_play(
        self,
        company_id: str,
        flow_id: str,
        input: Any = None,
        *,
        trigger: Trigger | None = None,
        idempotency_key: str | None = None,
        version: int | None = None,
        parent: Play | None = None,
        retry_of: str | None = None,
        resume_from: str | None = None,
        timeout: float | None = None,
        secrets: Sequence[str] = (),
        approve_first: bool = False,
        force: bool = False,
        trace: PlayTrace | None = None,
        shield: bool = False,
    ) -> Play:
        """Queue a play of ``flow_id`` (latest version unless ``version``) and, when this
        instance is running plays, start it right away.

        With ``idempotency_key``, a play of the same flow started with the same key in the
        last 24 h is returned instead of starting another; IdempotencyKeyReused if that play
        was started with another input or ``version`` (a subflow's child: never).

        At most ``settings.max_starting`` starts are in progress at once, and
        ``settings.max_starting_per_company`` of one company; later ones wait their turn,
        companies in turn and each in arrival order (see :class:`FairGate`).
        The company's start rate is admitted first: a start from outside is refused over it
        (PlayLimitReached), a subflow waits for its turn.

        With ``timeout``: a start still in progress after that many seconds answers the play
        as it was handed to the store (it is being stored and runs), or raises
        StartTimedOut if nothing was handed to the store yet (a retry is safe then).

        With ``shield``, a cancellation from outside does not reach the start: it completes
        (or meets its ``timeout``) and the caller learns of the play it started.

        With ``approve_first``, the play waits for an approval (``decide``) before its first
        step(s), as before a step with ``needsApproval`` (an MCP route requiring a human).

        A disabled flow (``enabled: false``) is refused with FlowDisabled unless ``force``
        (a person starting it on purpose) or ``retry_of`` (an operator's retry).

        ``trace``: the request that started it (its correlation id, the W3C trace it
        carried), which the play logs and passes on in its outbound requests; a subflow's
        child has its parent's.
        """
        if parent is None:
            self.admission.admit(company_id)
        else:
            await self.admission.admit_waiting(company_id)
            if trace is None:
                trace = parent.trace
        submitted: list[Play] = []
        start = functools.partial(
            self._start_play,
            company_id,
            flow_id,
            input,
            trigger=trigger,
            idempotency_key=idempotency_key,
            version=version,
            parent=parent,
            retry_of=retry_of,
            resume_from=resume_from,
            submitted=submitted.append,
            secrets=secrets,
            approve_first=approve_first,
            force=force or retry_of is not None,
            trace=trace or None,  # an empty trace is no trace
        )
        if timeout is None and not shield:  # no cancel scope to open and close every time
            async with self.starts.hold(company_id):
                return await start()
        # One scope for both the deadline and the shield: a play tree growing by the
        # thousand has as many starts in progress, each scope one more for the collector.
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        with trio.CancelScope(deadline=deadline, shield=shield):
            async with self.starts.hold(company_id):
                return await start()
        if submitted:
            return submitted[0]
        raise StartTimedOut(f"starting a play of flow {flow_id!r} took longer than {timeout:g} s")

    async def _start_play(
        self,
        company_id: str,
        flow_id: str,
        input: Any,
        *,
        trigger: Trigger | None,
        idempotency_key: str | None,
        version: int | None,
        parent: Play | None,
        retry_of: str | None,
        resume_from: str | None,
        submitted: Callable[[Play], None],
        secrets: Sequence[str],
        approve_first: bool = False,
        force: bool = False,
        trace: PlayTrace | None = None,
    ) -> Play:
        flow = await self.flows.get(company_id, flow_id, version)
        if not force:
            # The switch is the flow's, not a version's: a pinned version asks the latest.
            latest = flow if version is None else await self.flows.get(company_id, flow_id)
            if not latest.definition.enabled:
                raise FlowDisabled(flow_id)
        plan = self.plans.get(flow)  # fails early for a flow that does not compile
        if plan.input_validator is not None:
            problems = plan.input_validator.problems(input)
            if problems:
                text = "; ".join(f"{p or 'input'}: {m}" for p, m in problems)
                raise InvalidInput(f"input does not match the flow's inputSchema: {text}")
        # Checked for the store now (a value it refuses is the caller's error), off the loop
        # when big; the insert then takes it without walking it again.
        size = json_size(input)
        input = await off_the_loop_if_big(size, prepare_value, input, "input")
        plays = self.ledger.plays(company_id)
        now = time.time()
        stored_key = f"{flow_id}:{idempotency_key}" if idempotency_key else None
        # A start from outside is the same request as the one its key stands for only with
        # the same input and version: the key is stored with the request's fingerprint. A
        # subflow's child is not compared: its key is its parent's step, and a step re-run
        # after a crash must find its child even if its arguments now resolve differently.
        fingerprint = None
        if idempotency_key:
            if parent is None:
                fingerprint = await off_the_loop_if_big(
                    size, request_fingerprint, flow_id, version, input
                )
            existing = await self._existing(plays, flow_id, idempotency_key, fingerprint, now)
            if existing is not None:
                return existing
        if parent is not None:
            await self._count_descendant(plays, parent)
        play_id = new_id()
        max_concurrent = flow.definition.execution.max_concurrent
        state = PlayState.NEW
        if (
            max_concurrent
            and await self.ledger.count_running(company_id, flow_id) >= max_concurrent
        ):
            state = PlayState.DEFERRED
        play = Play(
            id=play_id,
            company_id=company_id,
            flow_id=flow_id,
            flow_version=flow.version,
            state=state,
            input=input,
            trigger=trigger or Trigger(),
            parent_play_id=parent.id if parent else None,
            root_play_id=(parent.root_play_id or parent.id) if parent else None,
            depth=parent.depth + 1 if parent else 0,
            idempotency_key=idempotency_key,
            created_at=now,
            retry_of=retry_of,
            resume_from=resume_from,
            kv_parents=(parent.flow_id, *parent.kv_parents) if parent else (),
            trace=trace,
        )
        # A play born knowing secrets (a subflow's, a retry's) records its input masked.
        redactor = Redactor(secrets)
        shown = attrs.evolve(play, input=redactor.mask(input)) if redactor else play
        doc = play_doc(
            shown,
            encrypt=self.settings.encrypt_play_data,
            real=play if shown is not play and shown.input is not play.input else None,
        )
        if redactor:
            doc["secrets"] = redactor.secrets
        # Every play carries a key so that the unique index never sees two nulls.
        doc["idempotency_key"] = stored_key or f"play:{play_id}"
        if fingerprint is not None:
            doc["idempotency_fingerprint"] = fingerprint
        doc["max_concurrent"] = max_concurrent
        if approve_first:
            # Read back by whichever PlayActor runs it: such a play is not launched at birth
            # (the dispatcher claims it at once), so every run of it reads this flag.
            doc["approve_first"] = True
        runnable = state is PlayState.NEW and self.local.runs_plays and not approve_first
        runnable = runnable and len(self.local) < self.settings.max_running_plays
        runnable = runnable and self.admission.has_room(company_id)
        pipe = self.store.pipeline()
        if runnable:
            # Claimed at birth: no dispatcher round trip for a play this instance can run.
            self.ledger.create_claimed(pipe, company_id, doc, now)
        else:
            self.ledger.create(pipe, company_id, doc)
        if runnable and stored_key is None:
            # The play starts while its insert commits (it cannot collide: its key is its
            # own id). Its first durability barrier waits for the insert, so no effect that
            # needs durability precedes it; the caller hears back once it is durable.
            # The play's own wait for its insert: whoever started it may stop waiting
            # (a deadline, see start_play) without the play losing track of it.
            created = Created(pipe.synced())
            running = attrs.evolve(play, state=PlayState.RUN, started_at=now)
            submitted(running)
            try:
                await self.actors.launch(company_id, play_id, running, created, redactor.secrets)
            except BaseException as e:
                self._hand_back(pipe, company_id, play_id)
                if not isinstance(e, Exception):
                    raise  # cancelled: the play is the dispatcher's now, nothing is lost
                _launch_failed(play_id, e)
                await pipe.sync()
                return play
            self.started_plays += 1
            await pipe.sync()
            return running
        submitted(play)
        try:
            await pipe.sync()
        except DuplicateKey:
            if not idempotency_key:
                raise
            existing = await self._existing(plays, flow_id, idempotency_key, fingerprint, now)
            if existing is None:
                raise
            return existing
        except BaseException:
            if runnable:  # claimed at birth, but its actor will not be started here
                self._hand_back(pipe, company_id, play_id)
            raise
        self.started_plays += 1
        if runnable:
            running = attrs.evolve(play, state=PlayState.RUN, started_at=now)
            try:
                await self.actors.launch(company_id, play_id, running, secrets=redactor.secrets)
            except BaseException as e:
                self._hand_back(pipe, company_id, play_id)
                if not isinstance(e, Exception):
                    raise
                _launch_failed(play_id, e)
                await pipe.sync()
                return play
            return running
        self.local.wake()
        return play

    async def _count_descendant(self, plays: Collection, parent: Play) -> None:
        """Count one more play in the parent's tree, on the root play's document; refused at
        ``max_descendant_plays`` (a flow starting itself stops there)."""
        root = parent.root_play_id or parent.id
        limit = self.settings.max_descendant_plays
        counted = await plays.find_one_and_update(
            {
                "_id": root,
                "$or": [{"descendants": {"$exists": False}}, {"descendants": {"$lt": limit}}],
            },
            {"$inc": {"descendants": 1}},
        )
        if counted is None:
            raise PlayLimitReached(
                "PLAY_TREE_LIMIT",
                f"PLAY_TREE_LIMIT: play {root} and its subflows have started {limit} plays, "
                "the most one play may start",
            )

    def _hand_back(self, pipe: Pipeline, company_id: str, play_id: str) -> None:
        """A play claimed at birth whose PlayActor will not start here (the plays supervisor
        is stopping, or the start was cancelled): release it to any dispatcher now, instead
        of leaving it to the lapse of a lease nobody holds. Queued behind its insert, without
        waiting, so that even a cancelled start hands it back."""
        self.ledger.hand_back(pipe, company_id, play_id)
        self.local.wake()

    async def _existing(
        self, plays: Collection, flow_id: str, key: str, fingerprint: str | None, now: float
    ) -> Play | None:
        """The play of ``flow_id`` that ``key`` stands for within the window, or None.
        Raises IdempotencyKeyReused when it was started by a different request
        (``fingerprint``); a key stored without a fingerprint (a subflow's child, or a play
        started before keys had them) answers its play whatever the request."""
        stored_key = f"{flow_id}:{key}"
        doc = await plays.find_one({"idempotency_key": stored_key})
        if doc is None:
            return None
        if doc["created_at"] >= now - self.settings.idempotency_window_seconds:
            stored = doc.get("idempotency_fingerprint")
            if fingerprint is not None and stored is not None and stored != fingerprint:
                raise IdempotencyKeyReused(key, doc["_id"])
            return play_from_doc(doc)
        # Older than the window: retire its key so that the new play can take it.
        await plays.update_one(
            {"_id": doc["_id"], "idempotency_key": stored_key},
            {"$set": {"idempotency_key": f"{stored_key}#expired#{doc['_id']}"}},
        )
        return None

    # -- subflows -------------------------------------------------------------------------

    async def run_subflow(
        self,
        parent: Play,
        flow_id: str,
        args: Any,
        *,
        key: str,
        wait: bool,
        timeout: float | None,
        attempt: int = 1,
        secrets: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Start ``flow_id`` as a child of ``parent`` for attempt ``attempt`` of the step
        whose layer key is ``key`` (also the child's idempotency key: a re-run attempt finds
        the same child, a retry starts another). With ``wait``, returns ``{state: DONE,
        playId, out, error: None}`` once the child is done, cancelling it after ``timeout``
        seconds; a child that fails or is cancelled fails the step (StepError naming the
        child and its error). Without, returns ``{state, playId, out: None}`` at once."""
        ref = key.split(":")[1]
        if parent.depth + 1 > self.settings.max_subflow_depth:
            raise StepError(
                ref,
                f"SUBFLOW_DEPTH_LIMIT: subflow depth limit ({self.settings.max_subflow_depth})"
                " reached",
            )
        # The first attempt keeps the key plays started before retries had their own.
        child_key = f"subflow:{key}" if attempt <= 1 else f"subflow:{key}#{attempt}"
        # Starting the child is one step: a cancellation meanwhile (a sibling step failed,
        # the play was cancelled) lets it complete, so that the step records the child it
        # started rather than leave a child nobody knows of.
        child = await self.start_play(
            parent.company_id,
            flow_id,
            args,
            trigger=Trigger(TriggerKind.SUBFLOW, parent.id),
            idempotency_key=child_key,
            parent=parent,
            secrets=secrets,
            timeout=SUBFLOW_START_TIMEOUT,
            shield=True,
        )
        if not wait:
            return {"state": child.state.value, "playId": child.id, "out": None}
        try:
            done = await self.wait_play(parent.company_id, child.id, timeout=timeout)
        except TimeoutError:
            await self.cancel_play(parent.company_id, child.id)
            raise StepError(
                ref, f"subflow play {child.id} did not finish in {timeout:g} s"
            ) from None
        except trio.Cancelled:
            # A child waited for exists only for this step: it ends with it.
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(10),
                contextlib.suppress(PlayStateError),  # it ended meanwhile
            ):
                await self.cancel_play(parent.company_id, child.id)
            raise
        if done.state is not PlayState.DONE:
            # The step waited for the child's output and there is none: it fails as any
            # step does (retried by its policy, failing the play after that), rather than
            # hand the next steps a failure dressed as an output.
            raise StepError(ref, _child_failed(done, flow_id))
        return {"state": done.state.value, "playId": done.id, "out": done.output, "error": None}

    async def wait_play(
        self, company_id: str, play_id: str, *, timeout: float | None = None
    ) -> Play:
        """Wait until the play is final; raises TimeoutError after ``timeout`` seconds."""
        flt = EventFilter(
            company_id, play_id=play_id, types=frozenset({ev.PLAY_COMPLETED, ev.PLAY_FAILED})
        )
        try:
            return await self._wait_play(company_id, play_id, flt, timeout)
        except trio.TooSlowError:
            raise TimeoutError(f"play {play_id} did not finish in {timeout:g} s") from None

    async def _wait_play(
        self, company_id: str, play_id: str, flt: EventFilter, timeout: float | None
    ) -> Play:
        with trio.fail_after(timeout if timeout else math.inf):
            async with self.events.subscribe(flt, buffer=8) as events:
                while True:
                    done = self.local.finished(play_id)
                    if done is not None and done.company_id == company_id:
                        return done
                    if play_id not in self.local:
                        play = await self.get_play(company_id, play_id)
                        if play.state.final:
                            return play
                    # Events answer fast in-process; the poll covers other instances.
                    with trio.move_on_after(1.0):
                        await events.receive()

    # -- queries and commands -------------------------------------------------------------

    async def get_play(self, company_id: str, play_id: str) -> Play:
        """The play as everyone sees it (its secrets masked)."""
        play, _ = await self.read_play(company_id, play_id)
        return play

    async def read_play(
        self, company_id: str, play_id: str, *, real: bool = False
    ) -> tuple[Play, list[str]]:
        """The play (with ``real``, its data unmasked, as the engine runs it) and the
        secrets it knows."""
        doc = await self.ledger.read(company_id, play_id)
        if doc is None:
            raise PlayNotFound(f"play {play_id!r} not found")
        return play_from_doc(doc, real=real), list(doc.get("secrets") or [])

    async def list_plays(
        self,
        company_id: str,
        *,
        flow_id: str | None = None,
        state: PlayState | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        skip: int = 0,
        limit: int = 25,
    ) -> tuple[list[Play], int]:
        """Plays newest first; ``created_from`` is inclusive, ``created_before`` exclusive."""
        flt: dict[str, Any] = {}
        if flow_id:
            flt["flow_id"] = flow_id
        if state:
            flt["status"] = state.value
        window: dict[str, float] = {}  # plays keep epoch seconds
        if created_from is not None:
            window["$gte"] = created_from.timestamp()
        if created_before is not None:
            window["$lt"] = created_before.timestamp()
        if window:
            flt["created_at"] = window
        coll = self.ledger.plays(company_id)
        docs = await coll.find(flt, sort=[("created_at", -1)], skip=skip, limit=limit)
        return [play_from_doc(d) for d in docs], await coll.count(flt)

    async def get_layers(
        self, company_id: str, play_id: str, *, skip: int = 0, limit: int = 0
    ) -> list[PlayLayer]:
        """The play's layers in execution order; ``skip`` / ``limit`` (0: all) page them in
        the store, so a play of 100,000 iterations is read a page at a time."""
        docs = await self._layers(company_id).find(
            {"play_id": play_id}, sort=[("seq", 1)], skip=skip, limit=limit
        )
        return [layer_from_doc(d) for d in docs]

    async def count_layers(self, company_id: str, play_id: str) -> int:
        return int(await self._layers(company_id).count({"play_id": play_id}))

    async def count_in_state(self, state: PlayState) -> int:
        """Every company's plays in ``state``, on every instance: one count over the
        (status, ...) indexes (the metrics' queue depths)."""
        return int(await self.ledger.all_plays.count({"status": state.value}))

    async def cancel_play(self, company_id: str, play_id: str) -> Play:
        """Cancel a play that has not finished. A running play is cancelled through its
        cancel scope (here, or by the instance holding it, at its next lease renewal)."""
        return await self.commands.cancel(company_id, play_id)

    async def decide(
        self, company_id: str, play_id: str, *, approve: bool, by: str | None = None
    ) -> Play:
        """Approve or reject the step a play waits on. Approval resumes the play (here when
        this instance runs plays, else at any dispatcher); rejection fails it."""
        return await self.commands.decide(company_id, play_id, approve=approve, by=by)

    async def retry_play(
        self, company_id: str, play_id: str, from_ref: str, *, trace: PlayTrace | None = None
    ) -> Play:
        """Start a new play of the latest flow version with the failed play's input,
        reusing the outputs of the steps before ``from_ref``; ``trace``: the request asking
        for it (see :meth:`start_play`)."""
        # The real input (a play that knew secrets shows it masked), and those secrets.
        old, secrets = await self.read_play(company_id, play_id, real=True)
        if old.state not in (PlayState.FAIL, PlayState.CANCEL):
            raise PlayStateError(f"only failed or cancelled plays can be retried ({old.state})")
        flow = await self.flows.get(company_id, old.flow_id)
        if from_ref not in self.plans.get(flow).order():
            raise PlayStateError(f"the latest version of the flow has no step {from_ref!r}")
        return await self.start_play(
            company_id,
            old.flow_id,
            old.input,
            trigger=Trigger(TriggerKind.RETRY, play_id),
            retry_of=play_id,
            resume_from=from_ref,
            secrets=secrets,
            trace=trace,
        )

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The dispatcher (see :class:`Dispatcher`)."""
        dispatcher = Dispatcher(self.ledger, self.local, self.actors, self.settings)
        await dispatcher.serve(task_status=task_status)


def _child_failed(child: Play, flow_id: str) -> str:
    """``subflow play <id> of flow '<flow>' failed: <its error>``. The child's error may
    quote its own child's, and so on down a chain of subflows: its middle is cut when long,
    so that the root cause (last) still reaches the top play."""
    ended = "was cancelled" if child.state is PlayState.CANCEL else "failed"
    text = f"subflow play {child.id} of flow {flow_id!r} {ended}"
    if child.error and child.error != "cancelled":
        text += f": {elided(child.error, MAX_ERROR_LENGTH - 300)}"
    return text
