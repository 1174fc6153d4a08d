"""``flow8 run`` and ``flow8 plays approve|reject``: plays started, watched and decided from the
command line, in-process, through the play service the REST API uses.

Every start is audited as ``play_started`` (as the API's run route audits it) and every
decision as ``play_approved`` / ``play_rejected``, with the CLI as the actor. While a play
waits for an approval, whoever watches it is told (once per wait), so a command does not sit
silent; a timeout bounds the watch and leaves the play as it is, to be decided and finished
by any instance.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from flow8.domain import Play, PlayState, TriggerKind, WaitReason
from flow8.engine import Engine, EngineSettings
from flow8.events import PLAY_COMPLETED, PLAY_FAILED, PLAY_WAITING, EventBus, EventFilter
from flow8.flow_files import FlowFiles
from flow8.modules import default_registry
from flow8.services.audit import StoreAuditSink, cli_entry, os_user, write_now
from flow8.services.flows import FlowRepository, FlowService
from flow8.services.kv import KvStore
from flow8.services.plays import PlayService
from flow8.store import Keyring, Store, open_store

# The one company of the throwaway store a flow file runs on.
THROWAWAY_COMPANY = "local"
# Events answer at once in-process; the store is read this often too, for a play another
# instance finishes (one approved through a server resumes there).
_POLL_SECONDS = 1.0
_WATCHED = frozenset({PLAY_WAITING, PLAY_COMPLETED, PLAY_FAILED})

OnApproval = Callable[[Play], None]


@attrs.frozen
class Watched:
    """How a watched play stood when the command stopped watching it."""

    play: Play
    gave_up: bool = False  # the timeout passed before the play ended

    def result(self) -> dict[str, Any]:
        """What ``flow8 run`` prints: ``{playId, state, out, error}``."""
        play = self.play
        return {"playId": play.id, "state": play.state.value, "out": play.output,
                "error": play.error}  # fmt: skip


async def run_play(
    store: Store,
    company_id: str,
    flow_id: str,
    input: Any,
    *,
    settings: EngineSettings,
    on_approval: OnApproval,
    timeout: float | None = None,
    approvable: bool = True,
) -> Watched:
    """Start a play of the flow's latest version on an engine in this process, audit the
    start, and watch it until it ends, or for at most ``timeout`` seconds.

    ``on_approval`` is called each time the play comes to wait for an approval. With
    ``approvable`` False (nobody else can reach the store) the watch ends there instead.
    Raises what starting raises (``FlowNotFound``, ``InvalidInput``, ...).
    """
    engine = _engine(store, settings)
    async with trio.open_nursery() as nursery:
        # The dispatcher runs the plays of an engine no supervision tree holds.
        await nursery.start(engine.serve)
        try:
            play = await PlayService(engine).start(
                company_id, flow_id, input, trigger=TriggerKind.CLI
            )
            entry = cli_entry(
                "play_started",
                company_id,
                target_type="play",
                target_id=play.id,
                details={"flowId": flow_id},
            )
            await write_now(store, entry)
            watched = await _watch(engine, play, on_approval, approvable, timeout)
        finally:
            # Stopping the engine leaves the play as it stands in the store: parked, or
            # running under a lease that lapses, so another instance resumes it.
            nursery.cancel_scope.cancel()
    return watched


async def run_file(
    data: Any,
    input: Any,
    *,
    settings: EngineSettings,
    on_approval: OnApproval,
    timeout: float | None = None,
) -> Watched:
    """Store the flow JSON ``data`` in a throwaway store and run it there.

    Nothing outlives the command, so nothing can approve a step: a play that comes to
    wait for an approval is reported (``on_approval``) and answered as it stands (WAIT).
    Raises ``FlowValidationError`` listing every problem of ``data``.
    """
    with tempfile.TemporaryDirectory() as directory:
        # A throwaway key too: no key file, and no warning about one, is written.
        async with open_store(
            f"sqlite:///{Path(directory) / 'flow8.db'}",
            data_dir=directory,
            encryption=Keyring.generate("run"),
        ) as store:
            files = FlowFiles(FlowService.over(store), THROWAWAY_COMPANY, StoreAuditSink(store))
            flow = await files.import_(data)
            return await run_play(
                store,
                THROWAWAY_COMPANY,
                flow["id"],
                input,
                settings=settings,
                on_approval=on_approval,
                timeout=timeout,
                approvable=False,
            )


async def decide(
    store: Store, company_id: str, play_id: str, *, approve: bool, settings: EngineSettings
) -> Play:
    """Approve or reject the step ``play_id`` waits on, and audit the decision.

    The engine here runs nothing: an approved play is resumed by the dispatcher of whichever
    instance claims it first (a server, or the ``flow8 run`` watching it).
    """
    service = PlayService(_engine(store, settings))
    by = f"cli:{os_user()}"
    if approve:
        play = await service.approve(company_id, play_id, by=by)
    else:
        play = await service.reject(company_id, play_id, by=by)
    action = "play_approved" if approve else "play_rejected"
    entry = cli_entry(
        action, company_id, target_type="play", target_id=play_id,
        after={"state": play.state.value},
    )  # fmt: skip
    await write_now(store, entry)
    return play


def _engine(store: Store, settings: EngineSettings) -> Engine:
    """An engine of this process, wired as the server's: the flows it runs and the KV its
    plays use are the flows' and kv services' stores."""
    registry = default_registry()
    flows, kv = FlowRepository(store, registry), KvStore(store)
    return Engine(store, EventBus(), settings, registry, flows=flows, kv=kv)


async def _watch(
    engine: Engine, play: Play, on_approval: OnApproval, approvable: bool, timeout: float | None
) -> Watched:
    with trio.move_on_after(math.inf if timeout is None else timeout):
        return Watched(await _until_end(engine, play, on_approval, approvable))
    current = await engine.get_play(play.company_id, play.id)
    # A play that ended just as time ran out is answered as ended.
    return Watched(current, gave_up=not current.state.final)


async def _until_end(engine: Engine, play: Play, on_approval: OnApproval, approvable: bool) -> Play:
    told: str | None = None  # the step the watcher was last told about
    flt = EventFilter(play.company_id, play_id=play.id, types=_WATCHED)
    async with engine.events.subscribe(flt, buffer=8) as events:
        while True:
            # Read after subscribing: an event published since is not missed.
            current = await engine.get_play(play.company_id, play.id)
            if current.state.final:
                return current
            if _awaits_approval(current):
                if current.wait_ref != told:
                    told = current.wait_ref
                    on_approval(current)
                if not approvable:
                    return current
            else:
                told = None
            try:
                with trio.move_on_after(_POLL_SECONDS):
                    await events.receive()
            except trio.EndOfChannel:  # fell behind and was dropped: the poll alone
                await trio.sleep(_POLL_SECONDS)


def _awaits_approval(play: Play) -> bool:
    return play.state is PlayState.WAIT and play.wait_reason is WaitReason.APPROVAL
